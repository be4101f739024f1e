#pragma once
// The cluster as a Boost.Graph graph: GPUs, one NVSwitch per node, and a fabric of switches.
//
// Vertices are GPUs (ids 0..gpus-1, node n holds n*G .. n*G+G-1), then NVSwitches, then fabric
// switches. One NVSwitch joins each NVLink domain: a node by default, or `nvlink_domain` GPUs of
// consecutive nodes (GB200 NVL72: 72 GPUs over 18 compute trays of 4; the last domain may be
// partial, e.g. 128 GPUs = 72 + 56). GPUs of one domain talk over NVLink, others over the fabric. Every physical link is two directed edges (one per direction), each with its own
// capacity in bytes/s (nominal x efficiency of its kind) and one-way latency in seconds; the
// edge's `id` indexes the capacity vector the flow solver uses. A GPU's NIC port is the edge
// GPU -> first switch (nics_per_gpu parallel edges when a GPU has several NICs).
//
// Fabrics (NetworkConfig::fabric):
//   single - every NIC on one switch (a small cluster, or an ideal non-blocking fabric);
//   rail   - rail-optimised: the NICs of local index r of every node on leaf r, leaves joined by
//            spines (cross-rail traffic climbs to a spine);
//   mpft   - DeepSeek's multi-plane two-layer fat-tree (ISCA25 §5.1): plane r holds NIC r of
//            every node; each plane is a leaf/spine fat-tree of `switch_ports`-port switches
//            (half the ports down, half up); planes are not joined, so a GPU reaches another
//            plane by NVLink first (PXN: forward to the GPU with the target's local index);
//   clos3  - three tiers (leaf, spine, core) as in Llama 3's RoCE cluster: pods of
//            `pod_leaves` leaves, `oversubscription` : 1 between spine and core.
// Paths are deterministic: where several equal-cost uplinks exist, a hash of (src, dst, flow)
// picks one (ECMP). Complexity: path() is O(hops); building is O(vertices + edges).

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "network/network_config.hpp"

namespace trainsim::network {

enum class LinkKind { NvLink, Nic, Fabric };
enum class VertexKind { Gpu, NvSwitch, Switch };

struct VertexProps {
  VertexKind kind = VertexKind::Gpu;
  int index = 0;  // GPU id, node id, or switch number
};
struct EdgeProps {
  int id = 0;
  LinkKind kind = LinkKind::Fabric;
  double capacity = 0;  // bytes/s, one direction, after efficiency
  double latency = 0;   // s
};

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, VertexProps, EdgeProps>;

struct TopologySpec {
  int gpus = 8;
  int gpus_per_node = 8;
  int nics_per_gpu = 1;
  int nvlink_domain = 0;        // GPUs per NVLink domain, a multiple of gpus_per_node; 0 = one node
  double nvlink_bidir = 400e9;  // bytes/s per GPU, both directions summed (vendor convention)
  double nic = 50e9;            // bytes/s per NIC, one direction
  NetworkConfig net;
};

class Topology {
 public:
  explicit Topology(const TopologySpec& spec);

  int gpus() const { return spec_.gpus; }
  int gpus_per_node() const { return spec_.gpus_per_node; }
  int nodes() const { return spec_.gpus / spec_.gpus_per_node; }
  int node_of(int gpu) const { return gpu / spec_.gpus_per_node; }
  int local_of(int gpu) const { return gpu % spec_.gpus_per_node; }
  int domain_size() const { return spec_.nvlink_domain > 0 ? spec_.nvlink_domain : spec_.gpus_per_node; }
  int domain_of(int gpu) const { return gpu / domain_size(); }
  int domains() const { return (spec_.gpus + domain_size() - 1) / domain_size(); }
  const TopologySpec& spec() const { return spec_; }
  const Graph& graph() const { return g_; }

  std::size_t link_count() const { return cap_.size(); }
  const std::vector<double>& capacities() const { return cap_; }
  double capacity(int link) const { return cap_[static_cast<std::size_t>(link)]; }
  double latency(int link) const { return lat_[static_cast<std::size_t>(link)]; }
  LinkKind kind(int link) const { return kind_[static_cast<std::size_t>(link)]; }
  std::string link_name(int link) const;
  // The GPU a link starts or ends at (NVLink and NIC links), or -1 for switch-to-switch links.
  int attached_gpu(int link) const;

  // Per-direction achieved bandwidths of the two GPU-attached link kinds.
  double nvlink_bw() const;  // bytes/s one way, after efficiency
  double nic_bw() const;     // bytes/s one way per GPU (all its NICs), after efficiency

  // Links from GPU src to GPU dst (empty when src == dst). `flow` seeds the ECMP choice.
  std::vector<int> path(int src, int dst, std::uint64_t flow = 0) const;
  void append_path(int src, int dst, std::uint64_t flow, std::vector<int>& out) const;
  double path_latency(const std::vector<int>& links) const;

  // The two GPU-attached links, for traffic models that account per GPU.
  int nvlink_up(int gpu) const { return nvl_up_[static_cast<std::size_t>(gpu)]; }
  int nvlink_down(int gpu) const { return nvl_down_[static_cast<std::size_t>(gpu)]; }

  std::string describe() const;

 private:
  int add_vertex(VertexKind k, int index);
  int add_link(int u, int v, LinkKind k, double cap, double lat);  // both directions; returns u->v id
  int link(int u, int v) const;                                    // id of u->v
  void fabric_path(int src, int dst, std::uint64_t h, std::vector<int>& out) const;

  TopologySpec spec_;
  Graph g_;
  std::vector<double> cap_, lat_;
  std::vector<LinkKind> kind_;
  std::vector<std::pair<int, int>> ends_;
  std::unordered_map<std::uint64_t, int> edge_of_;  // (u << 32 | v) -> first edge id u->v
  std::vector<int> nvl_up_, nvl_down_;
  // Fabric structure: vertex ids.
  std::vector<int> leaf_of_nic_;   // gpu * nics + k -> leaf vertex
  std::vector<int> leaves_;        // leaf vertices, by leaf number
  std::vector<int> spines_;        // spine vertices
  std::vector<int> cores_;         // core vertices (clos3)
  int leaves_per_group_ = 1;       // mpft/rail: leaves per plane; clos3: leaves per pod
  int spines_per_group_ = 0;       // spines per plane (mpft) or per pod (clos3)
  int first_nvswitch_ = 0;
};

// splitmix64: the one hash behind ECMP choices and seeded streams.
std::uint64_t mix64(std::uint64_t x);

}  // namespace trainsim::network
