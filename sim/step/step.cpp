#include "step/step.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "core/error.hpp"
#include "model/layer_split.hpp"
#include "model/memory.hpp"
#include "model/model_math.hpp"
#include "network/alltoall.hpp"
#include "network/collectives.hpp"
#include "network/topology.hpp"

namespace trainsim::step {

namespace {

using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, std::string_view p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// --- tensor parallelism: Megatron's column/row split of a layer's GEMMs ----------------------
bool column_parallel(const std::string& n) {
  for (const char* s : {"attn.qkv", "attn.q", "attn.q_b", "attn.kv_b", ".up_gate", ".up"})
    if (ends_with(n, s)) return true;
  return n == "head" || ends_with(n, ".head");
}
bool row_parallel(const std::string& n) { return ends_with(n, "attn.o") || ends_with(n, ".down"); }

void apply_tp(Op& o, i64 tp) {
  if (tp <= 1) return;
  const bool gemm = o.cls == OpClass::Gemm || o.cls == OpClass::GroupedGemm;
  if (gemm && (column_parallel(o.name) || row_parallel(o.name))) {
    // The split dimension is N of the forward GEMM for column-parallel layers and K for
    // row-parallel ones; the backward GEMMs permute (M, N, K) as model_math.hpp documents.
    const bool col = column_parallel(o.name);
    i64* dim = nullptr;
    switch (o.pass) {
      case Pass::Forward: dim = col ? &o.n : &o.k; break;
      case Pass::BackwardInput: dim = col ? &o.k : &o.n; break;
      case Pass::BackwardWeight: dim = col ? &o.n : &o.m; break;
    }
    *dim = std::max<i64>(1, *dim / tp);
    o.flops = o.flops_full = 2.0 * d(o.m) * d(o.n) * d(o.k);
    o.bytes /= d(tp);
  } else if (o.cls == OpClass::Attention) {
    o.groups = std::max<i64>(1, o.groups / tp);
    o.flops /= d(tp);
    o.flops_full /= d(tp);
    o.bytes /= d(tp);
  } else if (ends_with(o.name, ".swiglu") || ends_with(o.name, ".gelu") || ends_with(o.name, ".sqrelu") || ends_with(o.name, ".rope") ||
             ends_with(o.name, ".quant")) {
    o.bytes /= d(tp);
  }
}

// Which part of a layer an op belongs to: 0 attention side (incl. ffn norm, router, permute),
// 1 experts or MLP, 2 after the combine.
int part_of(const std::string& name) {
  const std::string n = starts_with(name, "mtp.") ? name.substr(4) : name;
  if (starts_with(n, "moe.experts") || starts_with(n, "moe.shared") || starts_with(n, "mlp.")) return 1;
  if (starts_with(n, "moe.unpermute") || starts_with(n, "ffn.residual")) return 2;
  return 0;
}

struct LayerOps {
  std::string label;  // "L12", "embed", "head", "mtp"
  bool moe = false;
  std::vector<Op> ops;
};

struct Ctx {
  const Scenario& sc;
  const PlanConfig& plan;
  const TrainingConfig& tr;
  const calibration::CostModel& cost;
  int sms = 0, shared_sms = 0;
  Time gap;
  CostCounts* counts;
  std::set<std::string>* bases;
};

// The op context of one micro-batch on one GPU: seq/cp tokens per rank (context parallelism).
OpContext gpu_op_context(const Ctx& c) {
  OpContext oc;
  oc.micro_batch = c.plan.micro_batch;
  oc.seq_len = c.tr.seq_len / c.plan.cp;
  oc.gemm_dtype = c.tr.precision.gemm;
  return oc;
}

// Model ops as one GPU runs them under the plan.
std::vector<Op> for_gpu(const Ctx& c, std::vector<Op> ops) {
  const ModelConfig& m = c.sc.model;
  const PlanConfig& p = c.plan;
  for (auto& o : ops) {
    if (o.cls == OpClass::GroupedGemm) {
      // Expert parallelism: this GPU holds routed/ep experts and (balanced routing) receives
      // as many token-expert rows as it sends, so the rows stay tokens*top_k.
      o.groups = std::max<i64>(1, m.moe.routed_experts / p.ep);
    }
    if (o.cls == OpClass::Attention && p.cp > 1) {
      // CP: seq/cp queries attend to all seq keys (ring attention): cp x the per-rank
      // attention of a seq/cp sequence.
      o.n = c.tr.seq_len;
      o.flops *= d(p.cp);
      o.flops_full *= d(p.cp);
    }
    apply_tp(o, p.tp);
  }
  return ops;
}

// The ops one GPU runs for one micro-batch of one stage, layer by layer.
std::vector<LayerOps> stage_ops(const Ctx& c, i64 stage, i64 nstages) {
  const ModelConfig& m = c.sc.model;
  const PlanConfig& p = c.plan;
  const OpContext oc = gpu_op_context(c);
  auto adjust = [&](std::vector<Op> ops) { return for_gpu(c, std::move(ops)); };
  const std::vector<i64> split = stage_layers(m, p, c.tr.seq_len);
  const i64 first = std::accumulate(split.begin(), split.begin() + stage, i64{0});
  std::vector<LayerOps> out;
  if (stage == 0) out.push_back({"embed", false, adjust(embedding_ops(m, oc))});
  for (i64 l = first; l < first + split[static_cast<std::size_t>(stage)]; ++l)
    out.push_back({fmt::format("L{}", l), m.is_moe_layer(l), adjust(layer_ops(m, l, oc))});
  if (stage == nstages - 1) {
    for (i64 i = 0; i < m.mtp_depth; ++i) out.push_back({"mtp", m.is_moe_layer(m.layers - 1), adjust(mtp_ops(m, oc))});
    out.push_back({"head", false, adjust(head_ops(m, oc))});
  }
  return out;
}

Time op_cost(const Ctx& c, const Op& o, int sms) {
  const calibration::OpCost oc = c.cost.op_time(o, sms);
  switch (oc.source) {
    case calibration::CostSource::Measured: ++c.counts->measured; break;
    case calibration::CostSource::Fitted: ++c.counts->fitted; break;
    case calibration::CostSource::Transferred: ++c.counts->transferred; break;
  }
  c.bases->insert(oc.basis);
  return oc.time + c.gap;
}

struct A2A {
  Time dispatch_fwd, combine_fwd, dispatch_bwd, combine_bwd;
};

// Adds one compute phase (sum of `ops` on all and on shared SMs), if any op is in it.
void add_compute(const Ctx& c, std::vector<Phase>& out, const std::string& name, const std::vector<const Op*>& ops) {
  if (ops.empty()) return;
  Phase ph;
  ph.stream = 0;
  ph.name = name;
  for (const Op* o : ops) {
    ph.duration += op_cost(c, *o, c.sms);
    ph.duration_shared += op_cost(c, *o, c.shared_sms);
  }
  out.push_back(std::move(ph));
}
void add_comm(std::vector<Phase>& out, const std::string& name, Time t) {
  if (t <= Time::zero()) return;
  out.push_back(Phase{1, name, t, t});
}

// Phases of one layer for a pass. mask: which passes' ops to include (bit 1<<Pass).
void layer_phases(const Ctx& c, const LayerOps& L, bool forward, int mask, const A2A& a2a, bool ep_comm,
                  Time tp_comm, std::vector<Phase>& out) {
  std::array<std::vector<const Op*>, 3> parts;
  for (const auto& o : L.ops)
    if (mask & (1 << static_cast<int>(o.pass))) parts[static_cast<std::size_t>(part_of(o.name))].push_back(&o);
  const bool comm = L.moe && ep_comm;
  const bool any_bwd_input = (mask & (1 << static_cast<int>(Pass::BackwardInput))) != 0;
  if (forward) {
    add_compute(c, out, L.label + ".attn", parts[0]);
    add_comm(out, L.label + ".tp_ar", tp_comm);
    if (comm) add_comm(out, L.label + ".dispatch", a2a.dispatch_fwd);
    add_compute(c, out, L.label + (L.moe ? ".experts" : ".mlp"), parts[1]);
    if (comm) add_comm(out, L.label + ".combine", a2a.combine_fwd);
    add_comm(out, L.label + ".tp_ar", tp_comm);
    add_compute(c, out, L.label + ".out", parts[2]);
  } else {
    add_compute(c, out, L.label + ".out", parts[2]);
    if (comm && any_bwd_input) add_comm(out, L.label + ".combine", a2a.combine_bwd);
    if (any_bwd_input) add_comm(out, L.label + ".tp_ar", tp_comm);
    add_compute(c, out, L.label + (L.moe ? ".experts" : ".mlp"), parts[1]);
    if (comm && any_bwd_input) add_comm(out, L.label + ".dispatch", a2a.dispatch_bwd);
    if (any_bwd_input) add_comm(out, L.label + ".tp_ar", tp_comm);
    add_compute(c, out, L.label + ".attn", parts[0]);
  }
}

Time sum(const std::vector<Phase>& ph, int stream = -1) {
  Time t;
  for (const auto& p : ph)
    if (stream < 0 || p.stream == stream) t += p.duration;
  return t;
}

// List-schedules two chunks' phases on a compute and a communication stream (an F&B pair):
// each chunk runs its phases in order; each stream runs one phase at a time; the phase that
// can start earliest goes first, ties to the backward chunk. Compute phases use their
// shared-SM durations (communication kernels resident). Returns the pair's duration and the
// compute-stream busy time.
struct PairResult {
  Time duration, compute;
};
PairResult overlap(const std::vector<Phase>& fwd, const std::vector<Phase>& bwd) {
  const std::array<const std::vector<Phase>*, 2> ch = {&fwd, &bwd};
  std::array<std::size_t, 2> next = {0, 0};
  std::array<Time, 2> ready = {Time::zero(), Time::zero()};
  std::array<Time, 2> free = {Time::zero(), Time::zero()};
  PairResult r;
  while (next[0] < fwd.size() || next[1] < bwd.size()) {
    int best = -1;
    Time best_start = Time::max();
    for (int k = 1; k >= 0; --k) {
      const auto ki = static_cast<std::size_t>(k);
      if (next[ki] >= ch[ki]->size()) continue;
      const Phase& ph = (*ch[ki])[next[ki]];
      const Time st = std::max(ready[ki], free[static_cast<std::size_t>(ph.stream)]);
      if (st < best_start) {
        best_start = st;
        best = k;
      }
    }
    const auto bi = static_cast<std::size_t>(best);
    const Phase& ph = (*ch[bi])[next[bi]];
    const Time dur = ph.stream == 0 ? ph.duration_shared : ph.duration;
    const Time end = best_start + dur;
    ready[bi] = end;
    free[static_cast<std::size_t>(ph.stream)] = end;
    if (ph.stream == 0) r.compute += dur;
    ++next[bi];
    r.duration = std::max(r.duration, end);
  }
  return r;
}

network::TopologySpec topo_spec(const Scenario& sc, int gpus) {
  network::TopologySpec ts;
  ts.gpus_per_node = static_cast<int>(sc.cluster.gpus_per_node);
  ts.gpus = std::max(gpus, ts.gpus_per_node);
  if (ts.gpus % ts.gpus_per_node != 0) ts.gpus = (ts.gpus / ts.gpus_per_node + 1) * ts.gpus_per_node;
  ts.nics_per_gpu = static_cast<int>(sc.hardware.nics_per_gpu);
  ts.nvlink_bidir = sc.net.nvlink.value_or(sc.hardware.nvlink.value);
  ts.nic = sc.net.nic.value_or(sc.hardware.nic.value);
  ts.net = sc.net;
  return ts;
}

// Ring collective time over `ranks` GPUs spaced `stride` apart (one stage's GPUs laid out
// consecutively, tp fastest, then dp/cp), from the network model.
double dp_collective(const Scenario& sc, network::CollectiveKind kind, int ranks, int stride, double bytes) {
  if (ranks <= 1 || bytes <= 0) return 0;
  const network::Topology topo(topo_spec(sc, ranks * stride));
  std::vector<int> ids;
  for (int i = 0; i < ranks; ++i) ids.push_back(i * stride);
  switch (kind) {
    case network::CollectiveKind::ReduceScatter: return network::reduce_scatter(topo, ids, bytes).seconds;
    case network::CollectiveKind::AllGather: return network::all_gather(topo, ids, bytes).seconds;
    case network::CollectiveKind::AllReduce: return network::all_reduce(topo, ids, bytes).seconds;
    case network::CollectiveKind::SendRecv: break;
  }
  return 0;
}

}  // namespace

std::vector<Breakdown::Line> Breakdown::lines() const {
  return {{"compute", "compute", compute_s},
          {"recompute", "recompute", recompute_s},
          {"exposed_tp", "exposed TP", exposed_tp_s},
          {"exposed_ep", "exposed EP all-to-all", exposed_ep_s},
          {"exposed_cp", "exposed CP", exposed_cp_s},
          {"exposed_pp", "exposed PP", exposed_pp_s},
          {"exposed_dp", "exposed DP", exposed_dp_s},
          {"optimizer", "optimizer", optimizer_s},
          {"schedule_bubble", "schedule bubble", schedule_bubble_s},
          {"imbalance", "imbalance", imbalance_s}};
}

double Breakdown::total() const {
  double t = 0;
  for (const auto& l : lines()) t += l.seconds;
  return t;
}

namespace {

struct A2AInfo {
  A2A times;
  double dispatch_s = 0, combine_s = 0;
  std::string bottleneck;
};

A2AInfo alltoall_times(const Scenario& sc, const PlanConfig& plan, double tokens_mb) {
  const ModelConfig& m = sc.model;
  A2AInfo out;
  network::AllToAllSpec spec;
  spec.ep = static_cast<int>(plan.ep);
  spec.tokens = static_cast<int>(tokens_mb);
  spec.hidden = static_cast<int>(m.hidden);
  spec.experts = static_cast<int>(m.moe.routed_experts);
  spec.topk = static_cast<int>(m.moe.top_k);
  // Node-limited routing: DeepSeek's expert groups are its nodes (8 groups on EP64 over 8
  // nodes), so "at most limited_groups groups" is "at most that many nodes".
  spec.max_nodes = static_cast<int>(m.moe.limited_groups);
  spec.balanced = true;
  spec.full_rank = false;  // symmetric: one representative rank (balanced routing)
  spec.comm_sms = static_cast<int>(plan.comm_sms);
  const network::Topology topo(topo_spec(sc, static_cast<int>(plan.ep)));
  const network::AllToAllResult r = network::simulate_alltoall(topo, spec);
  // Forward: dispatch in FP8 (+ scales), combine in BF16. Backward: the gradient of the
  // combine travels the dispatch paths and that of the dispatch the combine paths, both in
  // BF16 (DeepSeek-V3 §3.3.3); bandwidth-bound, so the dispatch-direction time scales with
  // the payload per token.
  const double bf16_over_fp8 = r.combine_bytes_per_token / std::max(1.0, r.dispatch_bytes_per_token);
  out.times.dispatch_fwd = Time::from_seconds(r.dispatch.seconds);
  out.times.combine_fwd = Time::from_seconds(r.combine.seconds);
  out.times.combine_bwd = Time::from_seconds(r.dispatch.seconds * bf16_over_fp8);
  out.times.dispatch_bwd = Time::from_seconds(r.combine.seconds);
  out.dispatch_s = r.dispatch.seconds;
  out.combine_s = r.combine.seconds;
  out.bottleneck = r.bottleneck_kind;
  return out;
}

}  // namespace

ChunkPairResult simulate_chunk_pair(const Scenario& sc, int moe_layers, const calibration::CostModel& cost) {
  const trainsim::Phase& sp = sc.phases.front();
  const PlanConfig& plan = sp.plan;
  const TrainingConfig& tr = sp.training;
  const ModelConfig& m = sc.model;
  TS_ASSERT(m.moe.enabled, "a chunk pair of MoE layers needs an MoE model");
  CostCounts counts;
  std::set<std::string> bases;
  const int sms = static_cast<int>(sc.hardware.sms);
  Ctx c{sc, plan, tr, cost, sms, sms - static_cast<int>(plan.comm_sms), cost.kernel_gap(), &counts, &bases};
  const double tokens_mb = d(plan.micro_batch) * d(tr.seq_len) / d(plan.cp);
  const bool ep_comm = plan.ep > 1;
  A2AInfo a2a;
  if (ep_comm) a2a = alltoall_times(sc, plan, tokens_mb);
  const OpContext oc = gpu_op_context(c);
  std::vector<LayerOps> layers;
  for (int i = 0; i < moe_layers; ++i) {
    const i64 l = m.moe.first_dense_layers + i;
    layers.push_back(LayerOps{fmt::format("L{}", l), true, for_gpu(c, layer_ops(m, l, oc))});
  }
  const int all = 7;
  std::vector<Phase> fwd, bwd;
  for (const auto& L : layers) layer_phases(c, L, true, 1 << static_cast<int>(Pass::Forward), a2a.times, ep_comm, Time{}, fwd);
  for (auto it = layers.rbegin(); it != layers.rend(); ++it)
    layer_phases(c, *it, false, all & ~(1 << static_cast<int>(Pass::Forward)), a2a.times, ep_comm, Time{}, bwd);
  const PairResult pr = overlap(fwd, bwd);
  ChunkPairResult r;
  for (const auto& L : layers)
    for (const auto& o : L.ops) {
      const char* g = o.cls == OpClass::Gemm ? "dense GEMM"
                    : o.cls == OpClass::GroupedGemm ? "grouped GEMM"
                    : o.cls == OpClass::Attention ? "attention" : "memory-bound";
      r.compute_by_group_s[g] += cost.op_time(o, sms).time.seconds();
    }
  r.span_s = pr.duration.seconds();
  r.compute_busy_s = pr.compute.seconds();
  r.comm_busy_s = (sum(fwd, 1) + sum(bwd, 1)).seconds();
  r.exposed_comm_s = std::max(0.0, r.span_s - r.compute_busy_s);
  r.forward_compute_s = sum(fwd, 0).seconds();
  r.backward_compute_s = sum(bwd, 0).seconds();
  r.dispatch_s = a2a.dispatch_s;
  r.combine_s = a2a.combine_s;
  return r;
}

StepResult simulate_step(const Scenario& sc, std::size_t phase_index, i64 global_batch,
                         const calibration::CostModel& cost) {
  TS_ASSERT(phase_index < sc.phases.size(), "phase index out of range");
  const trainsim::Phase& sp = sc.phases[phase_index];
  const PlanConfig& plan = sp.plan;
  const TrainingConfig& tr = sp.training;
  const ModelConfig& m = sc.model;
  StepResult R;
  R.global_batch = global_batch;
  R.microbatches = global_batch / (plan.dp * plan.micro_batch);
  TS_ASSERT(R.microbatches >= 1, "a step needs at least one micro-batch");
  R.tokens = d(global_batch) * d(tr.seq_len);

  CostCounts counts;
  std::set<std::string> bases;
  const int sms = static_cast<int>(sc.hardware.sms);
  Ctx c{sc, plan, tr, cost, sms, sms - static_cast<int>(plan.comm_sms), cost.kernel_gap(), &counts, &bases};

  // --- communication costs of one layer -------------------------------------------------------
  const double tokens_mb = d(plan.micro_batch) * d(tr.seq_len) / d(plan.cp);
  A2A a2a;
  const bool ep_comm = m.moe.enabled && plan.ep > 1;
  if (ep_comm) {
    const A2AInfo info = alltoall_times(sc, plan, tokens_mb);
    a2a = info.times;
    R.a2a_dispatch_s = info.dispatch_s;
    R.a2a_combine_s = info.combine_s;
    R.a2a_bottleneck = info.bottleneck;
  }
  Time tp_comm;
  if (plan.tp > 1) {
    const double bytes = tokens_mb * d(m.hidden) * 2.0;
    tp_comm = Time::from_seconds(
        dp_collective(sc, network::CollectiveKind::AllReduce, static_cast<int>(plan.tp), 1, bytes));
    R.notes.push_back("tensor parallelism: two ring all-reduces of the activations per layer and pass, not overlapped");
  }

  // --- per-stage phases ----------------------------------------------------------------------
  const i64 nstages = pipeline_stage_count(plan);
  const int fwd = 1 << static_cast<int>(Pass::Forward);
  const int bin = 1 << static_cast<int>(Pass::BackwardInput);
  const int bwt = 1 << static_cast<int>(Pass::BackwardWeight);
  for (i64 st = 0; st < nstages; ++st) {
    StageCost S;
    S.stage = static_cast<int>(st);
    const auto layers = stage_ops(c, st, nstages);
    for (const auto& L : layers) {
      layer_phases(c, L, true, fwd, a2a, ep_comm, tp_comm, S.forward);
      for (const auto& o : L.ops) (o.pass == Pass::Forward ? S.flops_fwd : S.flops_bwd) += o.flops;
    }
    // Backward runs the layers in reverse.
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
      layer_phases(c, *it, false, bin | bwt, a2a, ep_comm, tp_comm, S.backward);
      layer_phases(c, *it, false, bin, a2a, ep_comm, tp_comm, S.backward_input);
    }
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
      std::vector<const Op*> w;
      for (const auto& o : it->ops)
        if (o.pass == Pass::BackwardWeight) w.push_back(&o);
      add_compute(c, S.backward_weight, it->label + ".wgrad", w);
    }
    S.f = sum(S.forward);
    S.b = sum(S.backward);
    S.i = sum(S.backward_input);
    S.w = sum(S.backward_weight);
    S.f_comm = sum(S.forward, 1);
    S.b_comm = sum(S.backward, 1);
    R.stages.push_back(std::move(S));
  }

  // --- pipeline -------------------------------------------------------------------------------
  schedule::ScheduleParams sp_params;
  sp_params.pp = static_cast<int>(plan.pp);
  sp_params.microbatches = static_cast<int>(R.microbatches);
  sp_params.vpp = static_cast<int>(plan.vpp);
  schedule::Schedule sched = schedule::build(plan.schedule, sp_params);
  const graph::PipelineTopology ptopo = sched.topo;  // a copy: sched is moved into the replay
  auto stage_of = [&](int rank, int chunk) { return ptopo.position_of(rank, chunk); };
  std::map<std::pair<int, int>, PairResult> pairs;
  auto pair = [&](int sf, int sb) -> const PairResult& {
    auto key = std::make_pair(sf, sb);
    auto it = pairs.find(key);
    if (it == pairs.end())
      it = pairs.emplace(key, overlap(R.stages[static_cast<std::size_t>(sf)].forward,
                                      R.stages[static_cast<std::size_t>(sb)].backward)).first;
    return it->second;
  };
  graph::OpTimes times;
  times.per_op = [&](int rank, const graph::Op& op) -> Time {
    const StageCost& S = R.stages[static_cast<std::size_t>(stage_of(rank, op.chunk))];
    switch (op.kind) {
      case graph::OpKind::F: return S.f;
      case graph::OpKind::B: return S.b;
      case graph::OpKind::I: return S.i;
      case graph::OpKind::W: return S.w;
      case graph::OpKind::FB: return pair(stage_of(rank, op.chunk), stage_of(rank, op.chunk2)).duration;
    }
    return Time::zero();
  };
  // Activations (BF16) to the neighbouring stage, over the sender's NIC: pipeline neighbours
  // are dp*tp*cp GPUs apart, on different nodes.
  Time p2p;
  if (plan.pp > 1) {
    const network::Topology t2(topo_spec(sc, 2 * static_cast<int>(sc.cluster.gpus_per_node)));
    const double bytes = tokens_mb * d(m.hidden) * 2.0 / d(plan.tp);
    p2p = Time::from_seconds(network::send_recv(t2, 0, static_cast<int>(sc.cluster.gpus_per_node), bytes).seconds);
  }
  R.breakdown.p2p_s = p2p.seconds();
  R.pipeline = schedule::run(std::move(sched), times, p2p);
  const auto& rep = R.pipeline->replay;
  R.pipeline_s = rep.makespan.seconds();

  // Compute vs exposed all-to-all per rank, from the ops each rank ran.
  double compute_sum = 0, exposed_sum = 0;
  for (std::size_t r = 0; r < rep.ops.size(); ++r) {
    for (const auto& ot : rep.ops[r]) {
      const graph::Op& op = ot.op;
      const StageCost& S = R.stages[static_cast<std::size_t>(stage_of(static_cast<int>(r), op.chunk))];
      Time comp;
      switch (op.kind) {
        case graph::OpKind::F: comp = sum(S.forward, 0); break;
        case graph::OpKind::B: comp = sum(S.backward, 0); break;
        case graph::OpKind::I: comp = sum(S.backward_input, 0); break;
        case graph::OpKind::W: comp = sum(S.backward_weight, 0); break;
        case graph::OpKind::FB: comp = pair(stage_of(static_cast<int>(r), op.chunk), stage_of(static_cast<int>(r), op.chunk2)).compute; break;
      }
      const Time dur = ot.end - ot.start;
      compute_sum += comp.seconds();
      exposed_sum += std::max(0.0, (dur - comp).seconds());
    }
  }
  const double nranks = d(static_cast<i64>(rep.ops.size()));
  R.breakdown.compute_s = compute_sum / nranks;
  R.breakdown.exposed_ep_s = exposed_sum / nranks;  // TP all-reduces included (step/ rewrite splits them)
  double bubble = 0;
  for (Time b : rep.bubble) bubble += b.seconds();
  R.breakdown.schedule_bubble_s = bubble / nranks;

  // --- data parallelism and the optimizer ---------------------------------------------------
  // Parameters of the busiest pipeline rank (from the memory model, which knows the placement).
  const MemoryReport mem = memory_per_gpu(sc);
  double dense = 0, routed = 0;
  {
    const std::vector<i64> split = stage_layers(m, plan, tr.seq_len);
    std::vector<i64> first(split.size(), 0);
    for (std::size_t i = 1; i < split.size(); ++i) first[i] = first[i - 1] + split[i - 1];
    for (const auto& rk : mem.ranks) {
      double dn = 0, rt = 0;
      for (i64 st : rk.stages) {
        const auto su = static_cast<std::size_t>(st);
        for (i64 l = first[su]; l < first[su] + split[su]; ++l) {
          const LayerParams lp = layer_params(m, l);
          dn += lp.dense / d(plan.tp);
          rt += lp.routed / d(plan.ep);
        }
        if (st == 0) dn += embedding_params(m) / d(plan.tp);
        if (st == nstages - 1) {
          dn += head_params(m) / d(plan.tp);
          if (m.mtp_depth > 0) {
            const LayerParams lp = layer_params(m, m.layers - 1);
            dn += d(m.mtp_depth) * (lp.dense + mtp_extra_params(m)) / d(plan.tp);
            rt += d(m.mtp_depth) * lp.routed / d(plan.ep);
          }
        }
      }
      if (dn + rt > dense + routed) {
        dense = dn;
        routed = rt;
      }
    }
  }
  const int dense_dp = static_cast<int>(plan.dp * plan.cp);
  const int expert_dp = static_cast<int>(std::max<i64>(1, plan.dp * plan.tp * plan.cp / plan.ep));
  const double gbytes = dtype_bytes(tr.precision.gradients);
  double rs = 0, ag = 0;
  if (plan.zero >= 1) {
    rs = dp_collective(sc, network::CollectiveKind::ReduceScatter, dense_dp, static_cast<int>(plan.tp), dense * gbytes) +
         dp_collective(sc, network::CollectiveKind::ReduceScatter, expert_dp, static_cast<int>(plan.ep), routed * gbytes);
    ag = dp_collective(sc, network::CollectiveKind::AllGather, dense_dp, static_cast<int>(plan.tp), dense * 2.0) +
         dp_collective(sc, network::CollectiveKind::AllGather, expert_dp, static_cast<int>(plan.ep), routed * 2.0);
  } else {
    rs = dp_collective(sc, network::CollectiveKind::AllReduce, dense_dp, static_cast<int>(plan.tp), dense * gbytes) +
         dp_collective(sc, network::CollectiveKind::AllReduce, expert_dp, static_cast<int>(plan.ep), routed * gbytes);
  }
  R.dp_reduce_scatter_s = rs;
  R.dp_all_gather_s = ag;
  R.breakdown.exposed_dp_s = rs + ag;
  R.notes.push_back("data-parallel gradient reduce-scatter and parameter all-gather run after the pipeline, not "
                    "overlapped with it");
  // Optimizer: AdamW over this rank's shard: read gradient, master weight and two moments,
  // write master, moments and the BF16 working weight.
  {
    const double mw = tr.precision.master_weights == "fp32" ? 4.0 : 0.0;
    const double mo = 2.0 * dtype_bytes(tr.precision.optimizer_moments);
    const double per_param = gbytes + 2 * (mw + mo) + 2.0;
    const double shard = plan.zero >= 1 ? dense / dense_dp + routed / expert_dp : dense + routed;
    Op o;
    o.name = "optimizer.adamw";
    o.cls = OpClass::Elementwise;
    o.pass = Pass::Forward;
    o.dtype = "fp32";
    o.bytes = shard * per_param;
    R.breakdown.optimizer_s = op_cost(c, o, sms).seconds();
  }

  // --- totals -------------------------------------------------------------------------------
  R.step_s = R.pipeline_s + R.breakdown.exposed_dp_s + R.breakdown.optimizer_s;
  const FlopsPerToken fpt = flops_per_token(m, tr.seq_len, true);
  R.flops_per_step_causal = fpt.train_causal * R.tokens;
  R.flops_per_step_full = fpt.train_full * R.tokens;
  const double gpus = d(sc.cluster.gpus);
  R.mfu_peak_flops = sc.hardware.bf16.value;
  R.mfu_causal = R.flops_per_step_causal / (R.step_s * gpus * R.mfu_peak_flops);
  R.mfu_full = R.flops_per_step_full / (R.step_s * gpus * R.mfu_peak_flops);
  R.tokens_per_s_per_gpu = R.tokens / R.step_s / gpus;
  R.utilization = R.breakdown.compute_s / R.step_s;
  R.bubble_fraction = (R.breakdown.schedule_bubble_s + R.breakdown.imbalance_s) / R.step_s;
  R.exposed_comm_fraction = (R.breakdown.exposed_tp_s + R.breakdown.exposed_ep_s + R.breakdown.exposed_cp_s +
                              R.breakdown.exposed_pp_s + R.breakdown.exposed_dp_s) / R.step_s;
  R.costs = counts;
  R.costs.bases.assign(bases.begin(), bases.end());
  return R;
}

}  // namespace trainsim::step
