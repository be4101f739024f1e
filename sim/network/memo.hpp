#pragma once
// The network model's results, memoised (core/memo.hpp): each keyed on the full topology spec
// and every argument of the call, so a hit is the very result the flow simulation would give.
// A sweep's points that share a cluster and a routing problem (another schedule, another
// batch, the next step of a batch ramp) simulate each all-to-all and collective once.
//
//   memo              key                                            capacity
//   "topology"        TopologySpec                                   16
//   "all-to-all"      TopologySpec + AllToAllSpec (every field)      1024
//   "collective"      kind + TopologySpec + ranks in order + bytes   8192
//   "routing sample"  (alltoall.cpp) the 2^16-token balanced-routing  64
//                     sample: EP, experts, node shape, top-k, node
//                     limit, skew, seed
//
// Thread-safe; a call that throws (an inconsistent spec) stores nothing and throws again on
// the next call.

#include <memory>
#include <vector>

#include "core/memo.hpp"
#include "network/alltoall.hpp"
#include "network/collectives.hpp"
#include "network/topology.hpp"

namespace trainsim::network {

// Appends every field of the spec (static_asserts in memo.cpp catch a field added later).
void add_key(KeyWriter& k, const NetworkConfig& n);
void add_key(KeyWriter& k, const TopologySpec& s);
void add_key(KeyWriter& k, const AllToAllSpec& s);

// The topology of `spec`, built once.
std::shared_ptr<const Topology> shared_topology(const TopologySpec& spec);

// simulate_alltoall(Topology(topo), spec).
AllToAllResult cached_alltoall(const TopologySpec& topo, const AllToAllSpec& spec);

// On Topology(topo): ReduceScatter = reduce_scatter, AllGather = all_gather, AllReduce =
// nccl_all_reduce (NCCL's algorithm choice), SendRecv = send_recv(ranks[0], ranks[1]).
CollectiveResult cached_collective(CollectiveKind kind, const TopologySpec& topo, const std::vector<int>& ranks,
                                   double bytes);

}  // namespace trainsim::network
