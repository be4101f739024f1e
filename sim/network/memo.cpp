#include "network/memo.hpp"

#include "core/error.hpp"

namespace trainsim::network {

// A field added to one of these structs must join its key below; the sizes (x86-64, the
// Itanium C++ ABI that both g++ and clang++ follow) make the build say so.
static_assert(sizeof(NetworkConfig) == 104, "NetworkConfig changed: add the new field to add_key(TopologySpec)");
static_assert(sizeof(TopologySpec) == 136, "TopologySpec changed: add the new field to add_key(TopologySpec)");
static_assert(sizeof(AllToAllSpec) == 72, "AllToAllSpec changed: add the new field to add_key(AllToAllSpec)");

void add_key(KeyWriter& k, const TopologySpec& s) {
  k.add(s.gpus).add(s.gpus_per_node).add(s.nics_per_gpu).add(s.nvlink_domain).add(s.nvlink_bidir).add(s.nic);
  add_key(k, s.net);
}

void add_key(KeyWriter& k, const NetworkConfig& n) {
  k.add(static_cast<int>(n.fabric)).add(n.nvlink_latency).add(n.ib_latency).add(n.switch_latency).add(n.switch_ports);
  k.add(n.oversubscription).add(n.pod_leaves).add(n.nvlink_efficiency).add(n.ib_efficiency);
  k.add(n.nvlink.has_value()).add(n.nvlink.value_or(0.0)).add(n.nic.has_value()).add(n.nic.value_or(0.0));
}

void add_key(KeyWriter& k, const AllToAllSpec& s) {
  k.add(s.ep).add(s.tokens).add(s.hidden).add(s.experts).add(s.topk).add(s.max_nodes).add(s.skew);
  k.add(s.balanced).add(s.two_hop).add(s.expert_rows).add(s.fp8_dispatch).add(s.full_rank).add(s.comm_sms).add(s.calibration_sms);
  k.add(s.background_nic_bytes).add(s.sm_bandwidth).add(static_cast<std::uint64_t>(s.seed));
}

namespace {
std::string topo_key(const TopologySpec& s) {
  KeyWriter k;
  add_key(k, s);
  return k.take();
}
}  // namespace

std::shared_ptr<const Topology> shared_topology(const TopologySpec& spec) {
  static StringMemo<Topology> memo("topology", 16);
  return memo.get(topo_key(spec), [&] { return Topology(spec); });
}

AllToAllResult cached_alltoall(const TopologySpec& topo, const AllToAllSpec& spec) {
  static StringMemo<AllToAllResult> memo("all-to-all", 1024);
  KeyWriter k;
  add_key(k, topo);
  add_key(k, spec);
  return *memo.get(k.str(), [&] { return simulate_alltoall(*shared_topology(topo), spec); });
}

CollectiveResult cached_collective(CollectiveKind kind, const TopologySpec& topo, const std::vector<int>& ranks,
                                   double bytes) {
  static StringMemo<CollectiveResult> memo("collective", 8192);
  KeyWriter k;
  k.add(static_cast<int>(kind));
  add_key(k, topo);
  k.add(ranks).add(bytes);
  return *memo.get(k.str(), [&] {
    const auto t = shared_topology(topo);
    switch (kind) {
      case CollectiveKind::ReduceScatter: return reduce_scatter(*t, ranks, bytes);
      case CollectiveKind::AllGather: return all_gather(*t, ranks, bytes);
      case CollectiveKind::AllReduce: return nccl_all_reduce(*t, ranks, bytes);
      case CollectiveKind::SendRecv:
        TS_ASSERT(ranks.size() == 2, "send/recv takes two ranks");
        return send_recv(*t, ranks[0], ranks[1], bytes);
    }
    throw InternalError("cached_collective: unknown kind");
  });
}

}  // namespace trainsim::network
