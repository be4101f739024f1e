#pragma once
// The communication plan of a step: what every communication of the step costs on this cluster,
// from the network model (sim/network/), for the plan's process groups as Megatron lays them out
// (tensor-parallel ranks adjacent, then context-parallel, then data-parallel; a pipeline stage's
// dp·tp·cp GPUs consecutive; EP groups of ep consecutive GPUs inside a stage).
//
//   EP all-to-all  DeepEP-style dispatch/combine per MoE layer and micro-batch (network/alltoall):
//                  forward dispatch FP8, combine BF16; backward: the gradient of the combine
//                  travels the dispatch paths in FP8 and that of the dispatch the combine paths in
//                  BF16 (DeepSeek-V3 §3.3.3, public-figures.md A3); comm_sms limits the bandwidth
//                  as DeepEP's SM count does; the pipeline sends of the neighbouring stages share
//                  the NIC while it runs (background traffic, flow model).
//   TP             ring all-reduce / all-gather / reduce-scatter of one micro-batch's activations
//                  (tokens x hidden, BF16) over the TP group.
//   CP             K/V of the local tokens to the next CP rank (ring attention), or the all-gather
//                  of all K/V (cp_comm = "all_gather").
//   PP             one activation (tokens x hidden / tp, BF16) to the next stage.
//   DP             NCCL reduce-scatter / all-gather / all-reduce of a bucket over a parameter's
//                  data-parallel group (multi-channel rings, hierarchical all-reduce): collective().
// Collectives run on a topology with NCCL's link efficiencies (network/collectives.hpp); results
// are memoised on the whole topology spec and the call's arguments (network/memo.hpp), so the
// steps of a batch ramp and the points of a sweep on one cluster simulate each once.

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "config/scenario.hpp"
#include "core/time.hpp"
#include "network/collectives.hpp"
#include "network/topology.hpp"

namespace trainsim::step {

// GPUs of one collective: `size` ranks `stride` GPU ids apart, repeated in `copies` blocks
// `copy_stride` apart (DualPipe's two holders of a stage).
struct Group {
  int size = 1, stride = 1, copies = 1, copy_stride = 0;
  int ranks() const { return size * copies; }
  friend bool operator<(const Group& a, const Group& b) {
    return std::tie(a.size, a.stride, a.copies, a.copy_stride) < std::tie(b.size, b.stride, b.copies, b.copy_stride);
  }
};

struct AllToAllTimes {
  Time dispatch_fwd, combine_fwd, dispatch_bwd, combine_bwd;  // one MoE layer, one micro-batch
};

class CommPlan {
 public:
  CommPlan(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr);

  // --- per layer and micro-batch ------------------------------------------------------------
  bool ep_comm() const { return ep_comm_; }
  // `background_pp_bytes`: pipeline-send bytes per GPU and direction in flight beside each phase.
  AllToAllTimes alltoall(double background_pp_bytes) const;
  double a2a_dispatch_s = 0, a2a_combine_s = 0;  // forward, alone (no background)
  std::string a2a_bottleneck;

  // One TP collective of the activations (tokens x hidden, BF16).
  Time tp_all_reduce, tp_all_gather, tp_reduce_scatter;
  // Context parallelism: one K/V block send (ring), or the all-gather / reduce-scatter of all K/V.
  Time cp_kv_send, cp_kv_all_gather, cp_kv_reduce_scatter;
  // One activation or gradient to the neighbouring stage, and its bytes.
  Time p2p;
  double p2p_bytes = 0;
  bool p2p_over_nic = false;

  // --- data parallelism ---------------------------------------------------------------------
  Group dense_dp_group() const;   // non-expert parameters: dp·cp ranks tp apart (x2 under DualPipe)
  Group expert_dp_group() const;  // routed experts: dp·tp·cp/ep ranks ep apart (x2 under DualPipe)
  double collective(network::CollectiveKind kind, const Group& g, double bytes) const;  // seconds
  // A few bytes all-reduced over every GPU (the gradient norm): NCCL's tree latency.
  double small_all_reduce(int ranks) const;

  const network::TopologySpec& spec() const { return base_; }

 private:
  network::TopologySpec nccl_spec(int gpus) const;  // `gpus` GPUs of the cluster, NCCL's efficiencies
  std::vector<int> ranks_of(const Group& g) const;

  const Scenario& sc_;
  const PlanConfig& plan_;
  network::TopologySpec base_;
  bool ep_comm_ = false;
  bool fp8_dispatch_ = false;  // the dispatch payload in FP8 (DeepEP in an FP8 run)
  double tokens_mb_ = 0;
  mutable std::map<std::tuple<int, Group, double>, double> coll_cache_;
  mutable std::map<double, AllToAllTimes> a2a_cache_;
};

// The cluster as the network model sees it, `gpus` GPUs (rounded up to whole nodes).
network::TopologySpec topology_spec(const Scenario& sc, int gpus);

}  // namespace trainsim::step
