#pragma once
// Collectives as NCCL runs them, simulated as fluid flows on a Topology.
//
// Each algorithm is a sequence of steps; a step is a set of concurrent point-to-point transfers
// that share links max-min fairly (flow.hpp) and ends when its last transfer is delivered
// (bandwidth term + path latency α). Closed forms for an uncongested ring of p ranks, per-rank
// link bandwidth B and per-step latency α (Thakur, Rabenseifner & Gropp, "Optimization of
// Collective Communication Operations in MPICH", IJHPCA 2005; NCCL's docs/PERFORMANCE.md):
//   ring all-reduce      2(p-1)/p · S/B + 2(p-1)·α
//   reduce-scatter       (p-1)/p · S/B + (p-1)·α     (S = the full buffer, output S/p)
//   all-gather           (p-1)/p · S/B + (p-1)·α     (S = the full output)
//   send/recv            S/B + α
//   tree all-reduce      NCCL's double binary tree: two trees each carry S/2, reduce and
//                        broadcast pipelined concurrently; + 2·depth·α to fill the pipeline
//
// Every step of a ring moves the same pattern (each rank sends one chunk to its successor), so
// one step is simulated and multiplied by the step count: exact for the fluid model.
//
// Several GPUs per NVLink domain (a node, or an NVL72 rack): NCCL builds one ring per channel
// and rotates each ring's order inside every domain so that each channel leaves a domain
// through a different GPU's NIC, onto the same rail of the next domain (NCCL's ring search on
// rail-optimised fabrics). With m group members per domain there are m channels, each carrying
// S/m: every member sends (m-1)/m of its ring traffic over NVLink and 1/m over its own NIC, so
// all the domain's NICs carry traffic. Bus bandwidth across domains is then ~ m x (NIC).
//
// Hierarchical all-reduce (NCCL's tree across nodes, NVLS-tree on NVSwitch systems): reduce-
// scatter inside each domain, all-reduce of S/m across domains per rail, all-gather inside each
// domain; NCCL pipelines the three in chunks, so their flows run at once:
//   max( 2(m-1)/m · S / B_nvlink , 2(n-1)/n · (S/m) / B_nic ) + latencies
// for n domains of m members. nccl_all_reduce picks it for groups spanning several domains with
// more than one member each, and the ring otherwise.
//
// Bus bandwidth (nccl-tests convention): busbw = algbw · f with algbw = S/t and
//   f = 2(p-1)/p (all-reduce), (p-1)/p (reduce-scatter, all-gather), 1 (send/recv).
//
// Link efficiencies: NCCL's kernels reach a different fraction of the nominal link bandwidth
// than DeepEP's all-to-all (network_config.hpp). nccl_topology_spec() applies the NCCL figures
// below, each derived from one published nccl-tests bus bandwidth and checked against others it
// was not derived from (tests/test_network.cpp, sim/network/README.md "NCCL check").

#include <string>
#include <vector>

#include "network/topology.hpp"

namespace trainsim::network {

enum class CollectiveKind { AllReduce, ReduceScatter, AllGather, SendRecv };
enum class CollectiveAlgo { Ring, Tree, Hierarchical };

// NCCL ring all_reduce on 8 H200 (NVLink 4, 450 GB/s one way): 368 GB/s busbw [MLE-net,
// stas00/ml-engineering@744d01e network/README.md] -> 368 / 450.
inline constexpr double kNcclNvlinkEfficiency = 368.0 / 450.0;
// NCCL all_gather on 2 x 8 H100 (GCP A3 Mega, 8 x 200 Gb/s GPUDirect-TCPXO NICs per node), ring
// across nodes: 188.82 GB/s busbw at 8 GiB (sim/network/README.md "NCCL check") = 8 NICs x 25 GB/s
// x 0.944.
inline constexpr double kNcclNicEfficiency = 188.82 / 200.0;

// The spec with NCCL's link efficiencies instead of the all-to-all's.
TopologySpec nccl_topology_spec(TopologySpec spec);

struct Transfer {
  int src = 0, dst = 0;
  double bytes = 0;
};

struct CollectiveResult {
  double seconds = 0;
  double algbw = 0;  // bytes/s: S / t
  double busbw = 0;  // bytes/s: algbw · bus factor
  int steps = 0;
  int channels = 1;  // rings run at once
};

// nccl-tests bus factor.
double bus_factor(CollectiveKind k, int p);

// Runs steps one after another (each starts when the previous one is delivered); returns the
// total time in seconds.
double run_steps(const Topology& topo, const std::vector<std::vector<Transfer>>& steps);

// The rings NCCL runs over `ranks` (in ring order): one per channel, rotated per NVLink domain as
// described above; a single ring when the group has one member per domain or lies in one domain.
std::vector<std::vector<int>> ring_channels(const Topology& topo, const std::vector<int>& ranks);

// `ranks`: the GPUs taking part, in ring order. `bytes`: S as defined above.
CollectiveResult all_reduce(const Topology& topo, const std::vector<int>& ranks, double bytes,
                            CollectiveAlgo algo = CollectiveAlgo::Ring);
CollectiveResult reduce_scatter(const Topology& topo, const std::vector<int>& ranks, double bytes);
CollectiveResult all_gather(const Topology& topo, const std::vector<int>& ranks, double bytes);
CollectiveResult send_recv(const Topology& topo, int src, int dst, double bytes);
// All-reduce with NCCL's algorithm choice: hierarchical across domains with several members each,
// ring otherwise.
CollectiveResult nccl_all_reduce(const Topology& topo, const std::vector<int>& ranks, double bytes);

}  // namespace trainsim::network
