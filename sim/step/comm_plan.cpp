#include "step/comm_plan.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "network/alltoall.hpp"
#include "network/memo.hpp"

namespace trainsim::step {

namespace {
using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }
int ceil_log2(int n) {
  int k = 0;
  while ((1 << k) < n) ++k;
  return k;
}
}  // namespace

network::TopologySpec topology_spec(const Scenario& sc, int gpus) {
  network::TopologySpec ts;
  ts.gpus_per_node = static_cast<int>(sc.cluster.gpus_per_node);
  ts.nvlink_domain = static_cast<int>(sc.cluster.nvlink_domain);
  const int unit = ts.gpus_per_node;
  ts.gpus = std::max(gpus, unit);
  if (ts.gpus % unit != 0) ts.gpus = (ts.gpus / unit + 1) * unit;
  ts.nics_per_gpu = static_cast<int>(sc.hardware.nics_per_gpu);
  ts.nvlink_bidir = sc.net.nvlink.value_or(sc.hardware.nvlink.value);
  ts.nic = sc.net.nic.value_or(sc.hardware.nic.value);
  ts.net = sc.net;
  return ts;
}

CommPlan::CommPlan(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr)
    : sc_(sc), plan_(plan), base_(topology_spec(sc, static_cast<int>(sc.cluster.gpus))) {
  const ModelConfig& m = sc.model;
  tokens_mb_ = d(plan.micro_batch) * d(tr.seq_len) / d(plan.cp);
  ep_comm_ = m.moe.enabled && plan.ep > 1;
  // DeepSeek-V3 §3.3.3: an FP8 run quantises the tokens before DeepEP's dispatch (and the
  // combine's gradient); a BF16 run, and Megatron-Core's alltoall dispatcher, move BF16.
  fp8_dispatch_ = plan.ep_dispatcher == "deepep" && tr.precision.gemm == "fp8";

  // TP: ring collectives of the activations over tp adjacent GPUs.
  if (plan.tp > 1) {
    const Group g{static_cast<int>(plan.tp), 1, 1, 0};
    const double S = tokens_mb_ * d(m.hidden) * 2.0;
    tp_all_reduce = Time::from_seconds(collective(network::CollectiveKind::AllReduce, g, S));
    tp_all_gather = Time::from_seconds(collective(network::CollectiveKind::AllGather, g, S));
    tp_reduce_scatter = Time::from_seconds(collective(network::CollectiveKind::ReduceScatter, g, S));
  }
  // CP: K and V of the local tokens (BF16, this TP rank's heads) to the next CP rank.
  if (plan.cp > 1) {
    const auto& a = m.attention;
    const double kv_per_token = a.kind == AttentionKind::MLA ? d(a.heads) * d(a.qk_dim() + a.v_dim())
                                                             : 2.0 * d(a.kv_heads) * d(a.head_dim);
    const double kv = tokens_mb_ * kv_per_token * 2.0 / d(plan.tp);
    const int stride = static_cast<int>(plan.tp);
    const network::TopologySpec t = nccl_spec(static_cast<int>(plan.cp * plan.tp));
    cp_kv_send = Time::from_seconds(network::cached_collective(network::CollectiveKind::SendRecv, t, {0, stride}, kv).seconds);
    const Group g{static_cast<int>(plan.cp), stride, 1, 0};
    cp_kv_all_gather = Time::from_seconds(collective(network::CollectiveKind::AllGather, g, kv * d(plan.cp)));
    cp_kv_reduce_scatter = Time::from_seconds(collective(network::CollectiveKind::ReduceScatter, g, kv * d(plan.cp)));
  }
  // PP: the next stage's GPU with the same position, dp·tp·cp GPUs on.
  if (plan.pp > 1) {
    const int stage_gpus = static_cast<int>(plan.dp * plan.tp * plan.cp);
    const network::TopologySpec ts = nccl_spec(2 * stage_gpus);
    p2p_bytes = tokens_mb_ * d(m.hidden) * 2.0 / d(plan.tp);
    p2p = Time::from_seconds(network::cached_collective(network::CollectiveKind::SendRecv, ts, {0, stage_gpus}, p2p_bytes).seconds);
    const auto t = network::shared_topology(ts);
    p2p_over_nic = t->domain_of(0) != t->domain_of(stage_gpus);
  }
  if (ep_comm_) {
    alltoall(0.0);  // fills the forward figures
  }
}

network::TopologySpec CommPlan::nccl_spec(int gpus) const { return network::nccl_topology_spec(topology_spec(sc_, gpus)); }

AllToAllTimes CommPlan::alltoall(double background) const {
  auto it = a2a_cache_.find(background);
  if (it != a2a_cache_.end()) return it->second;
  const ModelConfig& m = sc_.model;
  network::AllToAllSpec spec;
  spec.ep = static_cast<int>(plan_.ep);
  // With sequence parallelism each TP rank holds and exchanges its own 1/tp of the tokens
  // (Megatron-Core requires sequence parallelism for MoE with TP); without it every TP rank
  // holds them all and sends them all.
  const i64 shard = plan_.sequence_parallel && plan_.tp > 1 ? plan_.tp : 1;
  spec.tokens = static_cast<int>(std::max(1.0, tokens_mb_ / d(shard)));
  spec.hidden = static_cast<int>(m.hidden);
  spec.experts = static_cast<int>(m.moe.routed_experts);
  spec.topk = static_cast<int>(m.moe.top_k);
  // Node-limited routing: DeepSeek's expert groups are its nodes (8 groups on EP64 over 8
  // nodes), so "at most limited_groups groups" is "at most that many nodes".
  spec.max_nodes = static_cast<int>(m.moe.limited_groups);
  spec.balanced = true;
  spec.full_rank = false;  // symmetric: one representative group (balanced routing)
  spec.comm_sms = static_cast<int>(plan_.comm_sms);
  spec.background_nic_bytes = background;
  // DeepEP: two hops, one IB send per target node; Megatron-Core's alltoall dispatcher: one
  // all_to_all_single of the permuted (token, expert) rows, sent directly.
  spec.two_hop = plan_.ep_dispatcher == "deepep";
  spec.expert_rows = plan_.ep_dispatcher == "alltoall";
  spec.fp8_dispatch = fp8_dispatch_;
  // An NVLink domain larger than a node (NVL72) holding the whole EP group is one "node" to the
  // all-to-all: every token moves over NVLink.
  network::TopologySpec ts = topology_spec(sc_, std::max(static_cast<int>(plan_.ep), 2 * static_cast<int>(plan_.ep)));
  if (ts.nvlink_domain > 0 && plan_.ep <= ts.nvlink_domain) {
    ts.gpus_per_node = static_cast<int>(plan_.ep);
    ts.nvlink_domain = 0;
    ts.gpus = 2 * ts.gpus_per_node;
  } else if (ts.nvlink_domain > 0 && plan_.ep % ts.nvlink_domain == 0) {
    ts.gpus_per_node = ts.nvlink_domain;
    ts.nvlink_domain = 0;
    ts.gpus = static_cast<int>(plan_.ep) + ts.gpus_per_node;
  } else {
    ts.nvlink_domain = 0;
  }
  const network::AllToAllResult r = network::cached_alltoall(ts, spec);
  AllToAllTimes t;
  t.dispatch_fwd = Time::from_seconds(r.dispatch.seconds);
  t.combine_fwd = Time::from_seconds(r.combine.seconds);
  // Backward: the combine's gradient (token -> expert, dispatch paths) in the dispatch's
  // precision (FP8 in an FP8 run, DeepSeek-V3 §3.3.3), the dispatch's gradient (expert -> token,
  // combine paths) in BF16 like the combine.
  t.combine_bwd = Time::from_seconds(r.dispatch.seconds);
  t.dispatch_bwd = Time::from_seconds(r.combine.seconds);
  if (background == 0.0) {
    auto* self = const_cast<CommPlan*>(this);
    self->a2a_dispatch_s = r.dispatch.seconds;
    self->a2a_combine_s = r.combine.seconds;
    self->a2a_bottleneck = r.bottleneck_kind;
  }
  a2a_cache_.emplace(background, t);
  return t;
}

Group CommPlan::dense_dp_group() const {
  const int copies = plan_.schedule == "dualpipe" ? 2 : 1;
  const int stage = static_cast<int>(plan_.dp * plan_.tp * plan_.cp);
  return Group{static_cast<int>(plan_.dp * plan_.cp), static_cast<int>(plan_.tp), copies, stage};
}

Group CommPlan::expert_dp_group() const {
  const int copies = plan_.schedule == "dualpipe" ? 2 : 1;
  const int stage = static_cast<int>(plan_.dp * plan_.tp * plan_.cp);
  const int size = static_cast<int>(std::max<i64>(1, plan_.dp * plan_.tp * plan_.cp / plan_.ep));
  return Group{size, static_cast<int>(plan_.ep), copies, stage};
}

std::vector<int> CommPlan::ranks_of(const Group& g) const {
  std::vector<int> ids;
  for (int c = 0; c < g.copies; ++c)
    for (int i = 0; i < g.size; ++i) ids.push_back(c * g.copy_stride + i * g.stride);
  return ids;
}

double CommPlan::collective(network::CollectiveKind kind, const Group& g, double bytes) const {
  if (g.ranks() <= 1 || bytes <= 0) return 0;
  const auto key = std::make_tuple(static_cast<int>(kind), g, bytes);
  auto it = coll_cache_.find(key);
  if (it != coll_cache_.end()) return it->second;
  const std::vector<int> ids = ranks_of(g);
  TS_ASSERT(kind != network::CollectiveKind::SendRecv, "send/recv is not a group collective");
  const network::TopologySpec t = nccl_spec(*std::max_element(ids.begin(), ids.end()) + 1);
  const double s = network::cached_collective(kind, t, ids, bytes).seconds;
  coll_cache_.emplace(key, s);
  return s;
}

double CommPlan::small_all_reduce(int ranks) const {
  // NCCL's tree for a few bytes: up and down the depth of a binary tree over the nodes (fabric
  // hops) and inside a node (NVLink hops).
  const int G = static_cast<int>(sc_.cluster.gpus_per_node);
  const int nodes = std::max(1, (ranks + G - 1) / G);
  const network::NetworkConfig& net = sc_.net;
  const double inter = net.ib_latency + 2 * net.switch_latency;
  return 2.0 * (ceil_log2(nodes) * inter + ceil_log2(std::min(ranks, G)) * net.nvlink_latency);
}

}  // namespace trainsim::step
