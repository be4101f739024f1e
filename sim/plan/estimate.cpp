#include "plan/estimate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "config/plan_rules.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "cost/training_run.hpp"
#include "model/layer_split.hpp"
#include "model/memory.hpp"
#include "model/model_math.hpp"
#include "model/recompute.hpp"
#include "network/collectives.hpp"
#include "schedule/overlap.hpp"
#include "schedule/schedule.hpp"
#include "schedule/schedule_rules.hpp"
#include "step/comm_plan.hpp"
#include "step/op_lists.hpp"
#include "step/optimizer.hpp"
#include "step/overlap_policy.hpp"
#include "step/tail.hpp"

namespace trainsim::plan {

namespace {

using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }

// A thread-safe cache. A value is computed once, by the first thread to ask for it; a thread
// asking for a key another thread is computing waits for it (so two threads never build the same
// layer or run the same network simulation twice). Every value is a pure function of its key.
template <class K, class V>
class Memo {
 public:
  template <class F>
  const V& get(const K& k, F&& make) {
    std::shared_ptr<Entry> e;
    {
      std::lock_guard lk(mu_);
      auto& slot = map_[k];
      if (!slot) slot = std::make_shared<Entry>();
      e = slot;
    }
    std::call_once(e->once, [&] { e->value = std::make_unique<V>(make()); });
    return *e->value;
  }

 private:
  struct Entry {
    std::once_flag once;
    std::unique_ptr<V> value;
  };
  std::mutex mu_;
  std::map<K, std::shared_ptr<Entry>> map_;
};

// ---------------------------------------------------------------------------------------------
// One layer's ops, summed by the groups PhaseBuilder builds its phases from.

struct TT {
  Time full, shared;  // on all SMs; on the SMs communication kernels leave
  void add(Time f, Time s) {
    full += f;
    shared += s;
  }
};

enum Group {
  kFAttn, kFRouted, kFShared, kFOut,      // forward, by part (routed: routed experts or the dense MLP)
  kIAttn, kIRouted, kIShared, kIOut,      // backward-input
  kWAttn, kWRouted, kWShared,             // backward-weight
  kR0Sel, kR1Sel, kR0Ds, kR1Ds,           // recomputed forward ops (selective, deepseek), attention side / the rest
  kNtF, kNtI, kNtW,                       // embedding and head: all ops of a pass
  kGroups
};

struct LayerSums {
  bool transformer = false, moe = false, head = false;
  std::array<TT, kGroups> g{};
  Time gcol_attn, grow_attn, gcol_mlp, grow_mlp, core_f;  // forward: GEMMs by TP split, attention core (full SMs)
  Time grow_dg_attn, grow_dg_routed, grow_dg_shared, core_b;  // backward-input
  double held_dense = 0, held_expert = 0, fp8 = 0;  // parameters this GPU holds (as step/phases.cpp counts them)
};

struct CommTimes {
  bool ep = false;
  Time tp_ar, tp_ag, tp_rs, cp_send, cp_ag, cp_rs;
  step::AllToAllTimes a2a;
};

// A phase graph over cached sums: the tasks step::PhaseBuilder would make for one layer.
struct Mini {
  std::vector<schedule::Task> tasks;
  Time compute_paired, comm;
  std::array<Time, 5> stream_load{};  // communication per stream (1 EP, 2 TP, 3 CP)
  int add(int stream, Time alone, Time paired, std::vector<int> after) {
    after.erase(std::remove(after.begin(), after.end(), -1), after.end());
    std::sort(after.begin(), after.end());
    after.erase(std::unique(after.begin(), after.end()), after.end());
    schedule::Task t;
    t.stream = stream;
    t.duration = alone;
    t.after = std::move(after);
    t.priority = 1;
    tasks.push_back(std::move(t));
    if (stream == 0) compute_paired += paired;
    else {
      comm += alone;
      stream_load[static_cast<std::size_t>(stream)] += alone;
    }
    return static_cast<int>(tasks.size()) - 1;
  }
  int compute(const TT& t, bool beside, std::vector<int> after) { return add(0, beside ? t.shared : t.full, t.shared, std::move(after)); }
  int comm_on(int stream, Time t, std::vector<int> after) { return add(stream, t, t, std::move(after)); }
  Time makespan() const { return tasks.empty() ? Time::zero() : schedule::list_schedule(tasks).makespan; }
};
constexpr int kEp = 1, kTp = 2, kCp = 3;  // step/phases.cpp stream_of

Time residual(Time C, Time G, i64 n) {  // step/phases.cpp pipelined_residual
  if (C <= Time::zero()) return Time::zero();
  const Time hi = std::max(G, C), lo = std::min(G, C);
  return hi + lo / std::max<i64>(1, n) - G;
}

struct Flags {
  i64 tp = 1, cp = 1;
  bool sp = false, tpo = false, seo = false, ring = true;
  Recompute rc = Recompute::None;
};

TT sum(const TT& a, const TT& b) {
  TT t = a;
  t.add(b.full, b.shared);
  return t;
}

// step/phases.cpp layer_forward for one layer (ZeRO-3 gathers left to the closed form).
void forward(const LayerSums& L, const CommTimes& c, const Flags& f, Mini& g, std::vector<int>& fr) {
  const bool tp = f.tp > 1, sp = f.sp && tp, tpo = f.tpo && sp;
  const bool moe_comm = L.moe && c.ep;
  const bool shared_ov = f.seo && moe_comm;
  if (!L.transformer) {
    if (L.head && sp) fr = {g.comm_on(kTp, c.tp_ag, fr)};
    fr = {g.compute(L.g[kNtF], false, fr)};
    if (!L.head && tp) fr = {g.comm_on(kTp, sp ? c.tp_rs : c.tp_ar, fr)};
    return;
  }
  if (sp) fr = {g.comm_on(kTp, tpo ? residual(c.tp_ag, L.gcol_attn, f.tp) : c.tp_ag, fr)};
  fr = {g.compute(L.g[kFAttn], false, fr)};
  if (f.cp > 1) {
    Time t = c.cp_ag;
    if (f.ring) {
      const Time per_block = L.core_f / f.cp;
      t = c.cp_send > per_block ? (c.cp_send - per_block) * (f.cp - 1) : Time::zero();
    }
    fr = {g.comm_on(kCp, t, fr)};
  }
  if (tp) {
    Time t = sp ? c.tp_rs : c.tp_ar;
    if (tpo) t = residual(t, L.grow_attn, 4);
    fr = {g.comm_on(kTp, t, fr)};
  }
  if (sp) fr = {g.comm_on(kTp, tpo ? residual(c.tp_ag, L.gcol_mlp, f.tp) : c.tp_ag, fr)};
  const bool has_shared = L.g[kFShared].full > Time::zero() || L.g[kFShared].shared > Time::zero();
  if (moe_comm) {
    const std::vector<int> pre = fr;
    const int disp = g.comm_on(kEp, c.a2a.dispatch_fwd, pre);
    int shared = -1;
    if (shared_ov && has_shared) shared = g.compute(L.g[kFShared], true, pre);
    const int experts = g.compute(shared_ov ? L.g[kFRouted] : sum(L.g[kFRouted], L.g[kFShared]), false, {disp});
    const int comb = g.comm_on(kEp, c.a2a.combine_fwd, {experts});
    fr = {comb, shared};
  } else {
    fr = {g.compute(sum(L.g[kFRouted], L.g[kFShared]), false, fr)};
  }
  if (tp) {
    Time t = sp ? c.tp_rs : c.tp_ar;
    if (tpo) t = residual(t, L.grow_mlp, 4);
    fr = {g.comm_on(kTp, t, fr)};
  }
  if (L.g[kFOut].full > Time::zero()) fr = {g.compute(L.g[kFOut], false, fr)};
}

// step/phases.cpp layer_backward for one layer.
void backward(const LayerSums& L, const CommTimes& c, const Flags& f, bool input, bool weight, Mini& g,
              std::vector<int>& fr) {
  const bool tp = f.tp > 1 && input, sp = f.sp && tp, tpo = f.tpo && sp;
  const bool moe_comm = L.moe && c.ep && input;
  const bool shared_ov = f.seo && L.moe && c.ep;
  if (!L.transformer) {
    int dg = -1;
    if (input && !L.head && sp) fr = {g.comm_on(kTp, c.tp_ag, fr)};
    if (input) {
      dg = g.compute(L.g[kNtI], false, fr);
      fr = {dg};
    }
    std::vector<int> post;
    if (L.head && tp) post.push_back(g.comm_on(kTp, sp ? c.tp_rs : c.tp_ar, {dg}));
    if (weight && (L.g[kNtW].full > Time::zero())) post.push_back(g.compute(L.g[kNtW], input && tp, fr));
    if (!post.empty()) fr = post;
    return;
  }
  if (input && f.rc == Recompute::Full) {
    Flags rf = f;
    forward(L, c, rf, g, fr);
  }
  if (input && L.g[kIOut].full > Time::zero()) fr = {g.compute(L.g[kIOut], false, fr)};
  auto block = [&](const TT& dgrad, Time dgrad_row, const TT& wgrad, bool has_wgrad, const TT* rec, Time pre_comm,
                   Time post_comm, const TT* shared_ops, Time cp_comm) {
    std::vector<int> extra;
    if (input && sp) fr = {g.comm_on(kTp, tpo ? residual(c.tp_ag, dgrad_row, f.tp) : c.tp_ag, fr)};
    const std::vector<int> before_pre = fr;
    if (input && pre_comm > Time::zero()) fr = {g.comm_on(kEp, pre_comm, fr)};
    if (shared_ops) extra.push_back(g.compute(*shared_ops, true, before_pre));
    if (input && rec && f.rc != Recompute::Full) fr = {g.compute(*rec, false, fr)};
    if (input && cp_comm > Time::zero()) fr = {g.comm_on(kCp, cp_comm, fr)};
    const std::vector<int> before_dgrad = fr;
    int dg = -1;
    if (input) dg = g.compute(dgrad, false, fr);
    std::vector<int> post = extra;
    int gather_input = -1;
    if (tp) {
      if (sp) {
        gather_input = g.comm_on(kTp, c.tp_ag, before_dgrad);
        post.push_back(g.comm_on(kTp, c.tp_rs, {dg}));
      } else {
        post.push_back(g.comm_on(kTp, c.tp_ar, {dg}));
      }
    }
    if (input && post_comm > Time::zero()) post.push_back(g.comm_on(kEp, post_comm, {dg}));
    if (weight && has_wgrad) {
      const bool beside = input && (tp || post_comm > Time::zero());
      const std::vector<int> w_after = input ? std::vector<int>{dg, gather_input} : fr;
      post.push_back(g.compute(wgrad, beside, w_after));
    }
    if (input) post.push_back(dg);
    if (!post.empty()) fr = post;
  };
  // The MLP / experts block.
  const bool has_shared_i = L.g[kIShared].full > Time::zero(), has_shared_w = L.g[kWShared].full > Time::zero();
  TT mlp_i = L.g[kIRouted], mlp_w = L.g[kWRouted];
  Time mlp_i_row = L.grow_dg_routed;
  std::optional<TT> shared_bwd;
  if (shared_ov) {
    TT s = L.g[kIShared];
    bool any = has_shared_i;
    if (weight) {
      s = sum(s, L.g[kWShared]);
      any = any || has_shared_w;
    }
    if (!input) {
      any = false;
      mlp_w = sum(mlp_w, L.g[kWShared]);
    }
    if (any) shared_bwd = s;
  } else {
    mlp_i = sum(mlp_i, L.g[kIShared]);
    mlp_i_row += L.grow_dg_shared;
    mlp_w = sum(mlp_w, L.g[kWShared]);
  }
  const bool mlp_has_w = mlp_w.full > Time::zero() || (!shared_ov && has_shared_w);
  const TT* rec1 = nullptr;
  const TT* rec0 = nullptr;
  if (f.rc == Recompute::Selective) {
    rec0 = &L.g[kR0Sel];
    rec1 = &L.g[kR1Sel];
  } else if (f.rc == Recompute::DeepSeek) {
    rec0 = &L.g[kR0Ds];
    rec1 = &L.g[kR1Ds];
  }
  // An empty recompute list adds no phase.
  if (rec0 && rec0->full == Time::zero() && rec0->shared == Time::zero()) rec0 = nullptr;
  if (rec1 && rec1->full == Time::zero() && rec1->shared == Time::zero()) rec1 = nullptr;
  block(mlp_i, mlp_i_row, mlp_w, mlp_has_w, rec1, moe_comm ? c.a2a.combine_bwd : Time::zero(),
        moe_comm ? c.a2a.dispatch_bwd : Time::zero(), shared_bwd ? &*shared_bwd : nullptr, Time::zero());
  Time cp_t;
  if (f.cp > 1 && input) {
    cp_t = c.cp_ag + c.cp_rs;
    if (f.ring) {
      const Time per_block = L.core_b / f.cp;
      const Time kv2 = c.cp_send * 2;
      cp_t = kv2 > per_block ? (kv2 - per_block) * (f.cp - 1) : Time::zero();
    }
  }
  block(L.g[kIAttn], L.grow_dg_attn, L.g[kWAttn], L.g[kWAttn].full > Time::zero(), rec0, Time::zero(), Time::zero(),
        nullptr, cp_t);
}

Estimator::LayerTimes times_of(const LayerSums& L, const CommTimes& c, const Flags& f) {
  Estimator::LayerTimes t;
  {
    Mini g;
    std::vector<int> fr;
    forward(L, c, f, g, fr);
    t.f = g.makespan().seconds();
    t.fc = g.compute_paired.seconds();
    t.fa = g.comm.seconds();
    t.fe = g.stream_load[kEp].seconds();
    t.ft = g.stream_load[kTp].seconds();
    t.fcp = g.stream_load[kCp].seconds();
  }
  {
    Mini g;
    std::vector<int> fr;
    backward(L, c, f, true, true, g, fr);
    t.b = g.makespan().seconds();
    t.bc = g.compute_paired.seconds();
    t.ba = g.comm.seconds();
    t.be = g.stream_load[kEp].seconds();
    t.bt = g.stream_load[kTp].seconds();
    t.bcp = g.stream_load[kCp].seconds();
  }
  {
    Mini g;
    std::vector<int> fr;
    backward(L, c, f, true, false, g, fr);
    t.i = g.makespan().seconds();
  }
  {
    Mini g;
    std::vector<int> fr;
    backward(L, c, f, false, true, g, fr);
    t.w = g.makespan().seconds();
  }
  return t;
}


// The layer kinds.
enum Kind { kDense = 0, kMoe = 1, kEmbed = 2, kHead = 3, kMtp = 4, kKinds = 5 };

}  // namespace

// ---------------------------------------------------------------------------------------------
struct Estimator::Impl {
  const Space& space;
  const Scenario& sc;
  const calibration::CostModel& cost;
  int sms = 0, shared_sms = 0;
  Time gap;
  double goodput = 1;
  double small_all_reduce = 0;
  std::map<std::string, Affine> opt_pass;  // optimizer passes by name
  i64 dense_layer = -1, moe_layer = -1;
  // Per phase, the first phase with the same op shapes (sequence length, precision, comm_sms,
  // cp_comm): layers are costed once for both.
  std::vector<std::size_t> shape_phase;

  // A probe communication plan for DP collectives (one instance: its caches are not thread-safe).
  PlanConfig probe_plan;
  std::unique_ptr<step::CommPlan> probe;
  std::mutex probe_mu;

  Memo<std::tuple<std::size_t, int, i64, i64, i64, i64, bool>, LayerSums> sums;
  Memo<std::tuple<std::size_t, i64, i64, i64, i64>, CommTimes> comms;
  Memo<std::tuple<std::size_t, int, i64, i64, i64, i64, bool, bool, bool, int>, LayerTimes> times;
  Memo<std::tuple<int, int, int, int, int>, Affine> colls;
  Memo<i64, Affine> p2ps;
  Memo<std::tuple<std::size_t, i64, int, std::string, std::vector<i64>>, std::vector<i64>> splits;
  Memo<std::tuple<std::size_t, int, int, i64, bool>, double> acts;  // bytes per token
  struct Counts {
    // Per rank: (kind, stage, stage2, count at M1, count at M2).
    struct Row {
      graph::OpKind kind;
      int s1, s2;
      double n1, n2;
    };
    std::vector<std::vector<Row>> ranks;
    i64 m1 = 0, m2 = 0;
  };
  Memo<std::tuple<std::string, i64, i64, i64, bool>, Counts> counts;
  // An interleaved step's op order as a flat dependency list for the estimate's replay
  // (interleaved_replay below): the nodes of graph::TaskGraph's graph of the order
  // (schedule/interleaved.cpp, combine_1f1b_order under combined 1F1B) in a topological order,
  // each with its in-edges (activation, gradient, loss, program order) and its op's
  // (kind, forward stage, backward stage).
  struct FlatOrder {
    static constexpr std::uint32_t kRemote = 0x80000000u;
    struct Combo {
      graph::OpKind kind;
      int s1, s2;
    };
    std::vector<Combo> combos;
    std::vector<std::uint32_t> combo;        // per node, in topological order
    std::vector<std::uint32_t> last;         // per rank: its last op's node
    std::vector<double> count;               // [rank x combos]: ops of each combo the rank runs
    std::vector<std::uint32_t> in_begin;     // node i's in-edges: in_src[in_begin[i], in_begin[i+1])
    std::vector<std::uint32_t> in_src;       // the source's topological index, | kRemote across ranks
    int ranks = 0;
  };
  Memo<std::tuple<i64, i64, i64, bool>, FlatOrder> flat_orders;
  struct Ramp {
    double s0 = 0, s1 = 0;  // sum of steps, sum of steps x micro-batches
    i64 final_m = 0;
  };
  Memo<std::pair<std::size_t, i64>, Ramp> ramps;

  Impl(const Space& s, const calibration::CostModel& c) : space(s), sc(s.scenario()), cost(c) {
    sms = static_cast<int>(sc.hardware.sms);
    gap = cost.kernel_gap();
    Goodput gp;
    if (sc.goodput) {
      gp.failures_per_gpu_day = sc.goodput->failures_per_gpu_day;
      gp.checkpoint_interval_s = sc.goodput->checkpoint_interval;
      gp.checkpoint_cost_s = sc.goodput->checkpoint_cost;
      gp.restart_s = sc.goodput->restart;
    }
    goodput = gp.fraction(sc.cluster.gpus);
    const ModelConfig& m = sc.model;
    for (i64 l = 0; l < m.layers; ++l) {
      if (m.is_moe_layer(l) && moe_layer < 0) moe_layer = l;
      if (!m.is_moe_layer(l) && dense_layer < 0) dense_layer = l;
    }
    for (std::size_t i = 0; i < sc.phases.size(); ++i) {
      std::size_t j = 0;
      const auto same = [&](std::size_t a, std::size_t b) {
        const TrainingConfig &x = sc.phases[a].training, &y = sc.phases[b].training;
        const PlanConfig &p = sc.phases[a].plan, &q = sc.phases[b].plan;
        return x.seq_len == y.seq_len && x.precision.gemm == y.precision.gemm &&
               x.precision.master_weights == y.precision.master_weights && x.precision.gradients == y.precision.gradients &&
               x.precision.optimizer_moments == y.precision.optimizer_moments &&
               x.precision.activation_cache == y.precision.activation_cache && p.comm_sms == q.comm_sms && p.cp_comm == q.cp_comm;
      };
      while (!same(i, j)) ++j;
      shape_phase.push_back(j);
    }
    probe_plan = sc.plan;
    probe_plan.dp = probe_plan.tp = probe_plan.pp = probe_plan.cp = probe_plan.ep = 1;
    probe = std::make_unique<step::CommPlan>(sc, probe_plan, sc.training);
    small_all_reduce = probe->small_all_reduce(static_cast<int>(sc.cluster.gpus));
    for (const char* name : step::kOptimizerPasses) {
      auto at = [&](double bytes) { return (cost.op_time(step::optimizer_pass_op(name, bytes), sms).time + gap).seconds(); };
      const double b1 = 1e9, b2 = 4e9, t1 = at(b1), t2 = at(b2);
      const double beta = (t2 - t1) / (b2 - b1);
      opt_pass[name] = Affine{t1 - beta * b1, beta};
    }
  }

  const PlanConfig& phase_base(std::size_t phase) const { return sc.phases[phase].plan; }
  const TrainingConfig& training(std::size_t phase) const { return sc.phases[phase].training; }

  Time op_cost(const Op& o, int n) const { return cost.op_time(o, n).time + gap; }

  const LayerSums& layer_sums(std::size_t phase, int kind, i64 tp, i64 cp, i64 mb, i64 ep, bool sp) {
    phase = shape_phase[phase];
    if (!uses_ep(kind)) ep = 1;
    return sums.get({phase, kind, tp, cp, mb, ep, sp}, [&] {
      const ModelConfig& m = sc.model;
      const TrainingConfig& tr = training(phase);
      PlanConfig p = phase_base(phase);
      p.tp = tp;
      p.cp = cp;
      p.micro_batch = mb;
      p.ep = ep;
      p.sequence_parallel = sp;
      const int shared_n = sms - static_cast<int>(p.comm_sms);
      const OpContext oc = step::gpu_op_context(p, tr);
      std::vector<Op> ops;
      LayerSums L;
      switch (kind) {
        case kDense: ops = layer_ops(m, dense_layer, oc); break;
        case kMoe: ops = layer_ops(m, moe_layer, oc); break;
        case kEmbed: ops = embedding_ops(m, oc); break;
        case kHead: ops = head_ops(m, oc); break;
        case kMtp: ops = mtp_ops(m, oc); break;
        default: TS_ASSERT(false, "layer kind");
      }
      ops = step::for_gpu(m, p, tr, std::move(ops));
      L.transformer = kind == kDense || kind == kMoe || kind == kMtp;
      L.moe = kind == kMoe || (kind == kMtp && m.is_moe_layer(m.layers - 1));
      L.head = kind == kHead;
      if (kind == kEmbed) L.held_dense = embedding_params(m) / d(tp);
      for (const Op& o : ops) {
        const Time full = op_cost(o, sms);
        const Time shared = shared_n == sms ? full : op_cost(o, shared_n);
        const step::GradParams gp = step::grad_params(o);
        L.held_dense += gp.dense;
        L.held_expert += gp.expert;
        if (o.dtype == "fp8") L.fp8 += gp.dense + gp.expert;
        const bool gemm = o.cls == OpClass::Gemm || o.cls == OpClass::GroupedGemm;
        if (!L.transformer) {
          L.g[o.pass == Pass::Forward ? kNtF : o.pass == Pass::BackwardInput ? kNtI : kNtW].add(full, shared);
          continue;
        }
        const int part = step::part_of(o.name);
        const bool sh = part == 1 && step::is_shared_expert(o.name);
        const bool row = step::row_parallel(o.name);
        switch (o.pass) {
          case Pass::Forward: {
            L.g[part == 0 ? kFAttn : part == 2 ? kFOut : sh ? kFShared : kFRouted].add(full, shared);
            if (gemm && part == 0) (row ? L.grow_attn : L.gcol_attn) += full;
            if (gemm && part == 1) (row ? L.grow_mlp : L.gcol_mlp) += full;
            if (o.cls == OpClass::Attention && part == 0) L.core_f += full;
            if (recomputed(o, Recompute::Selective)) L.g[part == 0 ? kR0Sel : kR1Sel].add(full, shared);
            if (recomputed(o, Recompute::DeepSeek)) L.g[part == 0 ? kR0Ds : kR1Ds].add(full, shared);
            break;
          }
          case Pass::BackwardInput:
            L.g[part == 0 ? kIAttn : part == 2 ? kIOut : sh ? kIShared : kIRouted].add(full, shared);
            if (gemm && row && part == 0) L.grow_dg_attn += full;
            if (gemm && row && part == 1) (sh ? L.grow_dg_shared : L.grow_dg_routed) += full;
            if (o.cls == OpClass::Attention && part == 0) L.core_b += full;
            break;
          case Pass::BackwardWeight:
            // Weight-gradient ops of the part after the combine (none in today's op lists) go with the MLP.
            L.g[part == 0 ? kWAttn : sh ? kWShared : kWRouted].add(full, shared);
            break;
        }
      }
      return L;
    });
  }

  // TP and CP collectives of one micro-batch (step::CommPlan), and the all-to-all apart: it
  // depends on the micro-batch's tokens and ep only.
  const CommTimes& tp_cp_times(std::size_t phase, i64 tp, i64 cp, i64 mb) {
    return comms.get({phase, tp, cp, mb, 1}, [&] {
      PlanConfig p = phase_base(phase);
      p.dp = p.pp = p.ep = 1;
      p.tp = tp;
      p.cp = cp;
      p.micro_batch = mb;
      const step::CommPlan plan(sc, p, training(phase));
      CommTimes c;
      c.tp_ar = plan.tp_all_reduce;
      c.tp_ag = plan.tp_all_gather;
      c.tp_rs = plan.tp_reduce_scatter;
      c.cp_send = plan.cp_kv_send;
      c.cp_ag = plan.cp_kv_all_gather;
      c.cp_rs = plan.cp_kv_reduce_scatter;
      return c;
    });
  }
  // `shard`: tp with sequence parallelism (each TP rank exchanges its 1/tp of the tokens), else 1.
  const CommTimes& a2a_times(std::size_t phase, i64 cp, i64 mb, i64 ep, i64 shard) {
    return comms.get({phase, -shard, cp, mb, ep}, [&] {
      PlanConfig p = phase_base(phase);
      p.dp = p.pp = 1;
      p.tp = shard;
      p.sequence_parallel = shard > 1;
      p.cp = cp;
      p.micro_batch = mb;
      p.ep = ep;
      const step::CommPlan plan(sc, p, training(phase));
      CommTimes c;
      c.ep = plan.ep_comm();
      if (c.ep) c.a2a = plan.alltoall(0.0);
      return c;
    });
  }
  CommTimes comm_times(std::size_t phase, i64 tp, i64 cp, i64 mb, i64 ep, bool sp) {
    CommTimes c = tp_cp_times(phase, tp, cp, mb);
    if (ep > 1 && sc.model.moe.enabled) {
      const CommTimes& a = a2a_times(phase, cp, mb, ep, sp && tp > 1 ? tp : 1);
      c.ep = a.ep;
      c.a2a = a.a2a;
    }
    return c;
  }

  // Whether layers of `kind` see ep (expert GEMM groups, the all-to-all).
  bool uses_ep(int kind) const { return kind == kMoe || (kind == kMtp && sc.model.is_moe_layer(sc.model.layers - 1)); }

  const LayerTimes& layer(std::size_t phase, int kind, const PlanConfig& p, Recompute rc) {
    phase = shape_phase[phase];
    const bool sp = p.sequence_parallel && p.tp > 1;
    const bool tpo = p.tp_comm_overlap && sp;
    const bool moe = uses_ep(kind);
    const bool seo = p.shared_expert_overlap && moe;
    const i64 ep = moe ? p.ep : 1;
    return times.get({phase, kind, p.tp, p.cp, p.micro_batch, ep, sp, tpo, seo, static_cast<int>(rc)}, [&] {
      const LayerSums& L = layer_sums(phase, kind, p.tp, p.cp, p.micro_batch, ep, sp);
      const CommTimes c = comm_times(phase, p.tp, p.cp, p.micro_batch, ep, sp);
      Flags f;
      f.tp = p.tp;
      f.cp = p.cp;
      f.sp = sp;
      f.tpo = tpo;
      f.seo = seo;
      f.ring = p.cp_comm == "ring";
      f.rc = rc;
      return times_of(L, c, f);
    });
  }

  Affine coll(int kind, int size, int stride, int copies, int copy_stride) {
    if (size * copies <= 1) return Affine{};
    return colls.get({kind, size, stride, copies, copy_stride}, [&] {
      const step::Group g{size, stride, copies, copy_stride};
      const auto k = static_cast<network::CollectiveKind>(kind);
      std::lock_guard lk(probe_mu);
      const double b1 = 64e6, b2 = 256e6;
      const double t1 = probe->collective(k, g, b1), t2 = probe->collective(k, g, b2);
      const double beta = (t2 - t1) / (b2 - b1);
      return Affine{std::max(0.0, t1 - beta * b1), beta};
    });
  }

  Affine p2p(i64 stage_gpus) {
    return p2ps.get(stage_gpus, [&] {
      network::TopologySpec ts = network::nccl_topology_spec(step::topology_spec(sc, static_cast<int>(2 * stage_gpus)));
      const network::Topology t(ts);
      const double b1 = 8e6, b2 = 64e6;
      const double t1 = network::send_recv(t, 0, static_cast<int>(stage_gpus), b1).seconds;
      const double t2 = network::send_recv(t, 0, static_cast<int>(stage_gpus), b2).seconds;
      const double beta = (t2 - t1) / (b2 - b1);
      return Affine{std::max(0.0, t1 - beta * b1), beta};
    });
  }

  // The memory model's split (model/layer_split.hpp stage_layers) of `stages` stages under `rc`.
  const std::vector<i64>& split(std::size_t phase, i64 stages, const PlanConfig& p) {
    phase = shape_phase[phase];
    return splits.get({phase, stages, static_cast<int>(p.recompute), p.split_rule, p.layer_split}, [&] {
      PlanConfig q = p;
      q.schedule = "1f1b";
      q.pp = stages;
      q.vpp = 1;
      return stage_layers(sc, q, training(phase));
    });
  }

  double act(std::size_t phase, int kind, Recompute rc, i64 tp, bool sp) {
    phase = shape_phase[phase];
    return acts.get({phase, kind, static_cast<int>(rc), tp, sp}, [&] {
      const i64 l = kind == kDense ? dense_layer : kind == kMoe ? moe_layer : sc.model.layers - 1;
      return activation_bytes_per_token(sc.model, l, rc, training(phase).precision, tp, sp);
    });
  }

  const Counts& op_counts(const std::string& sched, i64 pp, i64 vpp, i64 m1, bool eco) {
    return counts.get({sched, pp, vpp, m1, eco}, [&] {
      Counts c;
      c.m1 = m1;
      const int next = schedule::fewest_microbatches(sched, static_cast<int>(pp), static_cast<int>(vpp), static_cast<int>(m1 + 1));
      c.m2 = next > 0 ? next : m1;
      c.ranks.resize(static_cast<std::size_t>(pp));
      for (int which = 0; which < (c.m2 != c.m1 ? 2 : 1); ++which) {
        const i64 M = which == 0 ? c.m1 : c.m2;
        schedule::Schedule s =
            schedule::build(sched, schedule::ScheduleParams{static_cast<int>(pp), static_cast<int>(M), static_cast<int>(vpp)});
        if (eco) s.order = step::combine_1f1b_order(s.order);
        for (std::size_t r = 0; r < s.order.size(); ++r) {
          auto& rows = c.ranks[r];
          for (const graph::Op& op : s.order[r]) {
            const int s1 = s.topo.position_of(static_cast<int>(r), op.chunk);
            const int s2 = op.kind == graph::OpKind::FB ? s.topo.position_of(static_cast<int>(r), op.chunk2) : -1;
            auto it = std::find_if(rows.begin(), rows.end(), [&](const Counts::Row& x) { return x.kind == op.kind && x.s1 == s1 && x.s2 == s2; });
            if (it == rows.end()) {
              rows.push_back(Counts::Row{op.kind, s1, s2, 0, 0});
              it = rows.end() - 1;
            }
            (which == 0 ? it->n1 : it->n2) += 1;
          }
        }
      }
      if (c.m2 == c.m1)
        for (auto& rows : c.ranks)
          for (auto& x : rows) x.n2 = x.n1;
      return c;
    });
  }

  const FlatOrder& flat_order(i64 pp, i64 vpp, i64 M, bool eco) {
    return flat_orders.get({pp, vpp, M, eco}, [&] {
      schedule::Schedule s =
          schedule::build("interleaved", schedule::ScheduleParams{static_cast<int>(pp), static_cast<int>(M), static_cast<int>(vpp)});
      if (eco) s.order = step::combine_1f1b_order(s.order);
      const graph::TaskGraph tg = graph::TaskGraph::build(s.topo, s.order, graph::OpTimes{}, Time::zero());
      const auto& sh = tg.shape();
      const std::size_t n = sh.nodes.size();
      // The order is acyclic: the schedule passed its checks.
      const std::vector<std::uint32_t> order = graph::topological_order(sh);
      TS_ASSERT(order.size() == n, "estimate: the interleaved order has a cycle");
      std::vector<std::uint32_t> pos(n, 0);
      for (std::uint32_t i = 0; i < n; ++i) pos[order[i]] = i;
      std::vector<std::vector<std::uint32_t>> in(n);
      for (const auto& e : sh.edges) in[pos[e.dst]].push_back(pos[e.src] | (e.remote ? FlatOrder::kRemote : 0u));
      FlatOrder f;
      std::vector<int> ranks_of;
      f.ranks = static_cast<int>(pp);
      f.in_begin.push_back(0);
      for (std::uint32_t i = 0; i < n; ++i) {
        const auto& node = sh.nodes[order[i]];
        const graph::Op& op = node.op;
        const int s1 = s.topo.position_of(node.rank, op.chunk);
        const int s2 = op.kind == graph::OpKind::FB ? s.topo.position_of(node.rank, op.chunk2) : -1;
        auto it = std::find_if(f.combos.begin(), f.combos.end(),
                               [&](const FlatOrder::Combo& c) { return c.kind == op.kind && c.s1 == s1 && c.s2 == s2; });
        if (it == f.combos.end()) {
          f.combos.push_back(FlatOrder::Combo{op.kind, s1, s2});
          it = f.combos.end() - 1;
        }
        f.combo.push_back(static_cast<std::uint32_t>(it - f.combos.begin()));
        ranks_of.push_back(node.rank);
        f.in_src.insert(f.in_src.end(), in[i].begin(), in[i].end());
        f.in_begin.push_back(static_cast<std::uint32_t>(f.in_src.size()));
      }
      f.last.assign(static_cast<std::size_t>(pp), 0);
      f.count.assign(static_cast<std::size_t>(pp) * f.combos.size(), 0.0);
      for (std::uint32_t i = 0; i < n; ++i) {
        const auto r = static_cast<std::size_t>(ranks_of[i]);
        if (sh.nodes[order[i]].index + 1 == static_cast<int>(s.order[r].size())) f.last[r] = i;
        f.count[r * f.combos.size() + f.combo[i]] += 1.0;
      }
      return f;
    });
  }

  // cost/training_run.hpp's segments of a phase for batch multiple q = dp x micro_batch.
  const Ramp& ramp(std::size_t phase, i64 q) {
    return ramps.get({phase, q}, [&] {
      const TrainingConfig& t = training(phase);
      Ramp r;
      r.final_m = t.global_batch / q;
      const double seq = d(t.seq_len);
      if (t.steps > 0) {
        r.s0 = d(t.steps);
        r.s1 = d(t.steps) * d(r.final_m);
        return r;
      }
      double remaining = t.tokens;
      if (t.ramp && t.ramp->start > 0 && t.ramp->tokens > 0) {
        const double rt = std::min(t.ramp->tokens, t.tokens);
        const int n = 16;  // RunCostInputs::ramp_segments
        for (int i = 0; i < n; ++i) {
          const double seg = rt / n;
          const double mid = (i + 0.5) / n;
          const double b = d(t.ramp->start) + d(t.global_batch - t.ramp->start) * mid * rt / t.ramp->tokens;
          i64 batch = static_cast<i64>(std::floor(b / d(q))) * q;
          batch = std::clamp(batch, t.ramp->start, t.global_batch);
          const double steps = seg / (d(batch) * seq);
          r.s0 += steps;
          r.s1 += steps * d(batch / q);
        }
        remaining -= rt;
      }
      if (remaining > 0) {
        const double steps = remaining / (d(t.global_batch) * seq);
        r.s0 += steps;
        r.s1 += steps * d(r.final_m);
      }
      return r;
    });
  }
};

// ---------------------------------------------------------------------------------------------
// A thread's front cache of the shared memos (no lock on a hit).
struct L1 {
  struct Hash {
    std::size_t operator()(const std::array<std::int64_t, 4>& k) const {
      std::uint64_t h = 1469598103934665603ull;
      for (auto v : k) h = (h ^ static_cast<std::uint64_t>(v)) * 1099511628211ull;
      return static_cast<std::size_t>(h);
    }
  };
  // Per layout shape (phase, tp, cp, micro-batch, ep): the layer times and sums its layouts ask for.
  struct Block {
    std::array<const Estimator::LayerTimes*, 5 * 4 * 2 * 2 * 2> times{};
    std::array<const LayerSums*, 5 * 2> sums{};
  };
  std::unordered_map<std::array<std::int64_t, 4>, Block, Hash> blocks;
  std::unordered_map<std::array<std::int64_t, 4>, const Estimator::LayerTimes*, Hash> times;
  std::unordered_map<std::array<std::int64_t, 4>, const LayerSums*, Hash> sums;
  std::unordered_map<std::array<std::int64_t, 4>, Affine, Hash> colls;
  std::unordered_map<std::array<std::int64_t, 4>, double, Hash> acts;
  std::unordered_map<std::array<std::int64_t, 4>, const std::vector<std::int64_t>*, Hash> splits;
  std::unordered_map<std::array<std::int64_t, 4>, const void*, Hash> ramps;  // Estimator::Impl::Ramp
  std::unordered_map<std::int64_t, Affine> p2ps;
};

// ---------------------------------------------------------------------------------------------
// One phase under one layout: memory and time for any knobs, with everything that does not
// depend on all of them memoised (the screening work per plan is then a few memo lookups and a
// loop over the pipeline ranks).
namespace {

struct StageSum {
  double f = 0, b = 0, i = 0, w = 0, fc = 0, fa = 0, bc = 0, ba = 0;
  double fe = 0, be = 0, ft = 0, bt = 0, fcp = 0, bcp = 0;  // communication by stream: EP, TP, CP
  double fd = 0, bd = 0;  // ZeRO-2/3 traffic of the ops (DP stream): blocking the backward's chain unless overlapped
};

// An F&B pair with the DP stream: the bound above, each chunk's chain including its DP traffic
// when it waits for it (ZeRO-3's gathers; ZeRO-2/3's reduce-scatters without
// overlap_grad_reduce), and the DP stream's own load.
double pair_dp(const StageSum& f, const StageSum& b, bool rs_blocks) {
  return std::max({f.fc + b.bc, f.fe + b.be, f.ft + b.bt, f.fcp + b.bcp, f.fd + b.bd, f.fc + f.fa + f.fd,
                   b.bc + b.ba + (rs_blocks ? b.bd : 0.0)});
}

struct Held {
  double dense = 0, expert = 0, fp8 = 0;
};

}  // namespace

class PhaseLayout {
 public:
  PhaseLayout(Estimator::Impl& E, L1* l1) : E_(E), l1_(l1) {}
  PhaseLayout(Estimator::Impl& E, L1* l1, std::size_t phase, const PlanConfig& base) : E_(E), l1_(l1) { reset(phase, base); }

  // Forget everything and take this phase and layout (the buffers are kept: no allocation).
  void reset(std::size_t phase, const PlanConfig& base) {
    Estimator::Impl& E = E_;
    phase_ = phase;
    base_ = base;
    plan_ = base;
    mem_.fill(std::nullopt);
    rc_ready_.fill(false);
    tail_ready_.fill(false);
    pipe_index_.fill(-1);
    pipes_.clear();
    pool_.clear();
    sums_local_.fill(nullptr);
    times_local_.fill(nullptr);
    block_ = nullptr;
    if (l1_) block_ = &l1_->blocks[{static_cast<std::int64_t>(E.shape_phase[phase]), base.tp * 8192 + base.cp, base.micro_batch, base.ep}];
    held_.clear();
    held_off_.clear();
    const TrainingConfig& tr = E.sc.phases[phase].training;
    P_ = base.pp;
    S_ = pipeline_stage_count(base);
    dual_ = base.schedule == "dualpipe" || base.schedule == "dualpipev";
    sched_ = base.schedule == "gpipe" ? Sched::GPipe : base.schedule == "interleaved" ? Sched::Interleaved
           : base.schedule == "zb1p" ? Sched::Zb1p : base.schedule == "dualpipe" ? Sched::DualPipe
           : base.schedule == "dualpipev" ? Sched::DualPipeV : Sched::OneF1B;
    if (l1_) {
      const std::array<std::int64_t, 4> key{static_cast<std::int64_t>(phase), base.dp * base.micro_batch, 0, 0};
      auto it = l1_->ramps.find(key);
      if (it == l1_->ramps.end()) it = l1_->ramps.emplace(key, &E.ramp(phase, base.dp * base.micro_batch)).first;
      ramp_ = static_cast<const Estimator::Impl::Ramp*>(it->second);
    } else {
      ramp_ = &E.ramp(phase, base.dp * base.micro_batch);
    }
    M_ = ramp_->final_m;
    copies_ = base.schedule == "dualpipe" ? 2 : 1;
    stage_gpus_ = base.dp * base.tp * base.cp;
    expert_size_ = static_cast<int>(std::max<i64>(1, base.dp * base.tp * base.cp / base.ep));
    tokens_ = d(base.micro_batch * tr.seq_len) / d(base.cp);
    gb_ = dtype_bytes(tr.precision.gradients);
    using CK = network::CollectiveKind;
    const int dsize = static_cast<int>(base.dp * base.cp), tp = static_cast<int>(base.tp), ep = static_cast<int>(base.ep),
              stage = static_cast<int>(stage_gpus_);
    ag_dense_ = coll(CK::AllGather, dsize, tp, stage);
    ag_expert_ = coll(CK::AllGather, expert_size_, ep, stage);
    rs_dense_ = coll(CK::ReduceScatter, dsize, tp, stage);
    rs_expert_ = coll(CK::ReduceScatter, expert_size_, ep, stage);
    ar_dense_ = coll(CK::AllReduce, dsize, tp, stage);
    ar_expert_ = coll(CK::AllReduce, expert_size_, ep, stage);
    p2p_ = 0;
    send1_ = 0;
    if (P_ > 1) {
      Affine send;
      if (l1_) {
        auto it = l1_->p2ps.find(stage_gpus_);
        if (it == l1_->p2ps.end()) it = l1_->p2ps.emplace(stage_gpus_, E.p2p(stage_gpus_)).first;
        send = it->second;
      } else {
        send = E.p2p(stage_gpus_);
      }
      send1_ = send.at(tokens_ * d(E.sc.model.hidden) * 2.0 / d(base.tp));
      p2p_ = 2.0 * d(P_ - 1) * send1_;
    }
    bucket_ = step::grad_bucket_size(base);
    mc_ = effective_grad_buckets(base) == "megatron-core";
    held_off_.push_back(0);
    for (i64 r = 0; r < P_; ++r) {
      if (dual_) {
        held_.push_back(r);
        held_.push_back(S_ - 1 - r);
      } else {
        for (i64 c = r; c < S_; c += P_) held_.push_back(c);
      }
      held_off_.push_back(held_.size());
    }
    for (std::size_t i = 0; i < opt_.size(); ++i) opt_[i] = E.opt_pass.at(step::kOptimizerPasses[i]);
    inflight_plan_[0] = base;
    inflight_plan_[0].ep_comm_overlap = false;
    inflight_plan_[1] = base;
    inflight_plan_[1].ep_comm_overlap = true;
  }

  struct Mem {
    bool fits = false;
    double peak = 0;
    int rank = 0;
  };

  const Mem& memory(const Knobs& k) {
    const bool sp = k.sequence_parallel;
    const int key = ((static_cast<int>(k.recompute) * 4 + k.zero) * 2 + (sp ? 1 : 0)) * 2 + (k.ep_comm_overlap ? 1 : 0);
    auto& slot = mem_[static_cast<std::size_t>(key)];
    if (slot) return *slot;
    const RcData& R = rc_data(k.recompute);
    const ModelConfig& m = E_.sc.model;
    const auto& prec = E_.sc.phases[phase_].training.precision;
    const double dense_dp = d(base_.dp * base_.cp) * copies_;
    const double expert_dp = std::max(1.0, d(base_.dp * base_.tp * base_.cp) / d(base_.ep)) * copies_;
    const double g_bytes = dtype_bytes(prec.gradients);
    const double o_bytes = (prec.master_weights == "fp32" ? 4.0 : 0.0) + 2.0 * dtype_bytes(prec.optimizer_moments);
    const auto per_param = [&](double deg) {
      return 2.0 / (k.zero >= 3 ? deg : 1.0) + g_bytes / (k.zero >= 2 ? deg : 1.0) + o_bytes / (k.zero >= 1 ? deg : 1.0);
    };
    const double bd = per_param(dense_dp), be = per_param(expert_dp);
    // Activations per layer kind and mode (bytes per token), model/memory.cpp.
    const i64 tp = base_.tp;
    double act_b[2][2] = {{0, 0}, {0, 0}};
    for (int kind : {kDense, kMoe})
      for (int pos = 0; pos < 2; ++pos)
        act_b[kind][pos] = (kind == kDense ? E_.dense_layer : E_.moe_layer) < 0
                               ? 0.0
                               : act(kind, pos == 0 ? R.mode : Recompute::None, tp, sp);
    const double mtp_act = m.mtp_depth > 0 ? act(kMtp, k.recompute, tp, sp) + 2.0 * d(m.hidden) * 2.0 / d(tp) : 0.0;
    const PlanConfig& q = inflight_plan_[k.ep_comm_overlap ? 1 : 0];
    Mem out;
    for (i64 r = 0; r < P_; ++r) {
      const auto& rk = R.ranks[static_cast<std::size_t>(r)];
      const double inflight = inflight_microbatches(q, r, M_);
      const double share = inflight / d(static_cast<i64>(held_off_[static_cast<std::size_t>(r) + 1] - held_off_[static_cast<std::size_t>(r)]));
      double a = 0;
      for (int kind = 0; kind < 2; ++kind)
        for (int pos = 0; pos < 2; ++pos) a += rk.layers[kind][pos] * act_b[kind][pos];
      double acts = share * tokens_ * a + rk.mtp * share * tokens_ * mtp_act;
      if (rk.last) acts += tokens_ * d(m.vocab) * (2.0 + 4.0) / d(tp);
      const double total = rk.mem_dense * bd + rk.mem_expert * be + acts + base_.comm_buffers;
      if (r == 0 || total > out.peak) {
        out.peak = total;
        out.rank = static_cast<int>(r);
      }
    }
    out.fits = out.peak <= E_.sc.hardware.hbm_capacity.value;
    slot = out;
    return *slot;
  }

  // Time of the plan with knobs `k` (memory() must have been asked first when `mem` is used).
  void evaluate(const Knobs& k, PhaseEstimate& out) {
    const Mem& mem = memory(k);
    out.fits = mem.fits;
    out.peak_bytes = mem.peak;
    out.peak_rank = mem.rank;
    const Pipe& pp = pipe(k);
    const std::size_t nt = rc_data(k.recompute).rtypes.size();
    const double* b_r = &pool_[pp.offset];
    const double* f_r = b_r + nt;
    // The tail after the pipeline (step/tail.cpp, step/optimizer.cpp in closed form).
    double exposed_grad = 0, exposed_param = 0;
    const bool grad_step = k.zero <= 1, gather_step = k.zero == 1 || k.zero == 2;
    const Tail& t = tail(k.recompute);
    // Megatron-Core bucketing: without overlap_grad_reduce one bucket per chunk everywhere; with
    // it, ranks q > 0 reduce one bucket per chunk from their last backward, which ends before
    // the pipeline's by the last backwards of ranks 0..q-1 (the cool-down), and gather it before
    // their first forward, which follows the first forwards of ranks 0..q-1.
    const auto before = [&](std::size_t r, const double* per_type) {
      double x = 0;
      for (std::size_t u = 0; u < nt; ++u) x += t.below[r][u] * per_type[u];
      return x;
    };
    // Interleaved under Megatron-Core each of a rank's v chunks is its own bucket per buffer
    // (rank 0's chunk 0 cut into buckets), ready when that chunk's last backward ends. The
    // cool-down runs the last round's backwards chunk by chunk, v-1 first, P micro-batches each,
    // so chunk k's gradients are ready P (b_0 + ... + b_{k-1}) before the rank's last backward
    // (b_c: chunk c's backward) and the DP stream takes them in that order. The chunks above 0
    // finish Q = max_k (g_1 + ... + g_k - P (b_0 + ... + b_{k-1})) after the rank's last
    // backward (g_c: chunk c's reduction); chunk 0 follows: exposed = max(0, Q) + g_0, or for the
    // bucketed chunk max(last bucket, total - b_0, Q + total). The gather mirrors it in the
    // warm-up: chunk c is first needed P (f_0 + ... + f_{c-1}) after the rank's first forward.
    const bool per_chunk = sched_ == Sched::Interleaved && mc_;
    const double* chunk_bf = per_chunk ? &pool_[pp.chunk_offset] : nullptr;
    const auto chunk_grad = [&](std::size_t r, std::size_t z, bool cut, std::size_t at) {
      const auto& g = t.chunk_grad[z][r];
      const double* b = chunk_bf + at;
      double q = -std::numeric_limits<double>::infinity(), sum_g = 0, sum_b = 0;
      for (std::size_t c = 1; c < g.size(); ++c) {
        sum_g += g[c];
        sum_b += b[c - 1];
        q = std::max(q, sum_g - d(P_) * sum_b);
      }
      if (!cut) return std::max(0.0, q) + g[0];
      const auto [total, last] = t.chunk0_grad[z][r];
      return std::max({last, total - b[0], q + total});
    };
    const auto chunk_gather = [&](std::size_t r, bool cut, std::size_t at) {
      const auto& gam = t.chunk_gather[r];
      const double* f = chunk_bf + at + gam.size();
      const auto [total, first] = t.chunk0_gather[r];
      double done = cut ? total : gam[0];
      double worst = cut ? std::max(first, total - f[0]) : gam[0], need = 0;
      for (std::size_t c = 1; c < gam.size(); ++c) {
        done += gam[c];
        need += d(P_) * f[c - 1];
        worst = std::max(worst, done - need);
      }
      return worst;
    };
    if (grad_step) {
      const auto z = static_cast<std::size_t>(k.zero);
      if (!k.overlap_grad_reduce) exposed_grad = mc_ ? t.single_max[z] : t.grad_max[z];
      else
        for (std::size_t r = 0, at = 0; r < nt; ++r) {
          if (per_chunk) {
            if (t.has0[r]) exposed_grad = std::max(exposed_grad, chunk_grad(r, z, true, at));
            if (t.qmin[r] > 0) exposed_grad = std::max(exposed_grad, chunk_grad(r, z, false, at) - before(r, b_r));
            at += 2 * t.chunk_gather[r].size();
            continue;
          }
          if (!mc_ || t.has0[r]) exposed_grad = std::max(exposed_grad, std::max(t.grad_last[z][r], t.grad[z][r] - b_r[r]));
          if (mc_ && t.qmin[r] > 0) exposed_grad = std::max(exposed_grad, t.grad_single[z][r] - before(r, b_r));
        }
    }
    if (gather_step) {
      if (!k.overlap_param_gather) exposed_param = mc_ && !k.overlap_grad_reduce ? t.gather_single_max : t.gather_max;
      else
        for (std::size_t r = 0, at = 0; r < nt; ++r) {
          const bool cut0 = !mc_ || k.overlap_grad_reduce;  // rank 0's first chunk in buckets
          if (per_chunk) {
            if (t.has0[r]) exposed_param = std::max(exposed_param, chunk_gather(r, cut0, at));
            if (t.qmin[r] > 0) exposed_param = std::max(exposed_param, chunk_gather(r, false, at) - before(r, f_r));
            at += 2 * t.chunk_gather[r].size();
            continue;
          }
          if (!mc_ || (t.has0[r] && cut0))
            exposed_param = std::max(exposed_param, std::max(t.gather_first[r], t.gather[r] - f_r[r]));
          else if (t.has0[r]) exposed_param = std::max(exposed_param, t.gather_single[r]);
          if (mc_ && t.qmin[r] > 0) exposed_param = std::max(exposed_param, t.gather_single[r] - before(r, f_r));
        }
    }
    const double optimizer = t.optimizer[k.zero >= 1 ? 1 : 0];
    const double p2p = pp.sends_inside ? 0.0 : p2p_;
    const double fixed = pp.bubble + p2p + exposed_grad + exposed_param + optimizer + pp.intercept;
    out.step_s = fixed + pp.slope * d(M_);
    out.busy_s = fixed * ramp_->s0 + pp.slope * ramp_->s1;
    out.work_s = pp.intercept + pp.slope * d(M_);
    out.bubble_s = pp.bubble;
    out.p2p_s = p2p;
    out.dp_s = exposed_grad + exposed_param;
    out.optimizer_s = optimizer;
  }

 private:
  struct RankData {
    double layers[2][2] = {{0, 0}, {0, 0}};  // [dense, moe][the plan's mode, none (recompute_num_layers)] layers held
    double mtp = 0;                          // MTP modules held
    bool last = false;                       // holds the last stage (logits)
    double mem_dense = 0, mem_expert = 0;    // parameters, as model/memory.cpp counts them
  };
  struct RankType {
    int rep = 0;   // the first rank of the type
    int mult = 0;  // ranks of the type
  };
  struct RcData {
    Recompute mode = Recompute::None;
    std::vector<std::array<std::array<int, 2>, 2>> stage_layers;  // [stage][kind][pos]
    // Stages with the same layers and ends cost the same: their type.
    std::vector<int> stype;
    std::vector<std::tuple<std::array<std::array<int, 2>, 2>, bool, bool>> types;
    // Ranks holding stages of the same types cost the same: their type, with a representative.
    std::vector<int> rtype;
    std::vector<RankType> rtypes;
    std::vector<std::vector<std::pair<int, double>>> rtype_stages;  // per rank type: (stage type, stages held)
    std::vector<RankData> ranks;
  };
  struct Pipe {
    double intercept = 0, slope = 0, bubble = 0;
    bool sends_inside = false;  // the replay priced the pipeline sends (interleaved): no p2p_ term
    std::size_t chunk_offset = 0;  // interleaved: per rank type, each chunk's backward then forward (pool_)
    std::size_t offset = 0;  // into pool_: one chunk's backward, then forward, on each rank (overlap windows)
  };
  struct Tail {
    // Per rank type; zero 0 (all-reduce), 1 (reduce-scatter). `grad`, `gather`: the chunks
    // bucketed as the bucketing with overlap_grad_reduce cuts them; `*_single`: one bucket per
    // chunk (Megatron-Core without the overlap, and its ranks > 0).
    std::array<std::vector<double>, 2> grad, grad_last, grad_single;
    std::array<double, 2> grad_max{}, single_max{};
    std::vector<double> gather, gather_first, gather_single;  // gather_single: the first chunk's whole gather
    // Interleaved under Megatron-Core, per rank type and chunk (Megatron's order): each chunk's
    // gradient reduction as one bucket per buffer ([z][type][chunk]) and parameter gather
    // ([type][chunk]); chunk 0 of pipeline rank 0 cut into buckets: (total, last bucket) of the
    // reduction, (total, first bucket) of the gather.
    std::array<std::vector<std::vector<double>>, 2> chunk_grad;
    std::array<std::vector<std::pair<double, double>>, 2> chunk0_grad;
    std::vector<std::vector<double>> chunk_gather;
    std::vector<std::pair<double, double>> chunk0_gather;
    double gather_max = 0, gather_single_max = 0;
    std::vector<bool> has0;  // the type holds pipeline rank 0
    std::vector<int> qmin;   // its first rank q > 0 (0: none)
    std::vector<std::vector<double>> below;  // per type: how many ranks of each type come before q
    std::array<double, 2> optimizer{};  // not sharded, sharded (zero >= 1)
  };

  Affine coll(network::CollectiveKind kind, int size, int stride, int stage) {
    if (!l1_) return E_.coll(static_cast<int>(kind), size, stride, copies_, stage);
    const std::array<std::int64_t, 4> key{static_cast<std::int64_t>(kind) * 4 + copies_, size, stride, stage};
    auto it = l1_->colls.find(key);
    if (it != l1_->colls.end()) return it->second;
    const Affine a = E_.coll(static_cast<int>(kind), size, stride, copies_, stage);
    l1_->colls.emplace(key, a);
    return a;
  }

  double act(int kind, Recompute rc, i64 tp, bool sp) {
    if (!l1_) return E_.act(phase_, kind, rc, tp, sp);
    const std::array<std::int64_t, 4> key{static_cast<std::int64_t>(phase_), kind * 8 + static_cast<int>(rc) * 2 + (sp ? 1 : 0), tp, 0};
    auto it = l1_->acts.find(key);
    if (it != l1_->acts.end()) return it->second;
    const double v = E_.act(phase_, kind, rc, tp, sp);
    l1_->acts.emplace(key, v);
    return v;
  }

  // The memory model's split for this layout's stages and the current plan_ (its recompute).
  const std::vector<i64>& split_l1() {
    if (!l1_ || plan_.split_rule != "balanced") return E_.split(phase_, S_, plan_);
    const std::array<std::int64_t, 4> key{static_cast<std::int64_t>(E_.shape_phase[phase_]), S_, static_cast<std::int64_t>(plan_.recompute), 0};
    auto it = l1_->splits.find(key);
    if (it == l1_->splits.end()) it = l1_->splits.emplace(key, &E_.split(phase_, S_, plan_)).first;
    return *it->second;
  }

  const LayerSums& sums(int kind, bool sp) {
    const std::size_t idx = static_cast<std::size_t>(kind * 2 + (sp ? 1 : 0));
    const LayerSums*& local = block_ ? block_->sums[idx] : sums_local_[idx];
    if (local) return *local;
    local = &sums_l1(kind, sp);
    return *local;
  }
  const LayerSums& sums_l1(int kind, bool sp) {
    const std::array<std::int64_t, 4> key{static_cast<std::int64_t>(phase_) * 16 + kind * 2 + (sp ? 1 : 0), base_.tp * 8192 + base_.cp,
                                          base_.micro_batch, base_.ep};
    if (l1_) {
      auto it = l1_->sums.find(key);
      if (it != l1_->sums.end()) return *it->second;
    }
    const LayerSums& L = E_.layer_sums(phase_, kind, base_.tp, base_.cp, base_.micro_batch, base_.ep, sp);
    if (l1_) l1_->sums.emplace(key, &L);
    return L;
  }

  const Estimator::LayerTimes& times(int kind, Recompute rc, bool sp, bool tpo, bool seo) {
    const std::size_t idx = static_cast<std::size_t>((((kind * 4 + static_cast<int>(rc)) * 2 + sp) * 2 + tpo) * 2 + seo);
    const Estimator::LayerTimes*& local = block_ ? block_->times[idx] : times_local_[idx];
    if (local) return *local;
    local = &times_l1(kind, rc, sp, tpo, seo);
    return *local;
  }
  const Estimator::LayerTimes& times_l1(int kind, Recompute rc, bool sp, bool tpo, bool seo) {
    const std::array<std::int64_t, 4> key{
        static_cast<std::int64_t>(phase_) * 1024 + ((((kind * 4 + static_cast<int>(rc)) * 2 + sp) * 2 + tpo) * 2 + seo),
        base_.tp * 8192 + base_.cp, base_.micro_batch, base_.ep};
    if (l1_) {
      auto it = l1_->times.find(key);
      if (it != l1_->times.end()) return *it->second;
    }
    plan_.sequence_parallel = sp;
    plan_.tp_comm_overlap = tpo;
    plan_.shared_expert_overlap = seo;
    const Estimator::LayerTimes& t = E_.layer(phase_, kind, plan_, rc);
    if (l1_) l1_->times.emplace(key, &t);
    return t;
  }

  const RcData& rc_data(Recompute rc) {
    RcData& R = rc_[static_cast<std::size_t>(rc)];
    if (rc_ready_[static_cast<std::size_t>(rc)]) return R;
    rc_ready_[static_cast<std::size_t>(rc)] = true;
    R.stype.clear();
    R.types.clear();
    R.ranks.clear();
    R.rtype.clear();
    R.rtypes.clear();
    R.rtype_stages.clear();
    const ModelConfig& m = E_.sc.model;
    plan_.recompute = rc;
    R.mode = rc;
    const std::vector<i64>& split = !base_.layer_split.empty() ? base_.layer_split : split_l1();
    R.stage_layers.assign(static_cast<std::size_t>(S_), {});
    i64 first = 0;
    for (i64 s = 0; s < S_; ++s) {
      const auto su = static_cast<std::size_t>(s);
      for (i64 l = first; l < first + split[su]; ++l) {
        const int kind = m.is_moe_layer(l) ? kMoe : kDense;
        const int pos = layer_recompute(plan_, l - first) == rc ? 0 : 1;
        ++R.stage_layers[su][static_cast<std::size_t>(kind)][static_cast<std::size_t>(pos)];
      }
      first += split[su];
      const auto t = std::make_tuple(R.stage_layers[su], s == 0, s == S_ - 1);
      auto it = std::find(R.types.begin(), R.types.end(), t);
      R.stype.push_back(static_cast<int>(it - R.types.begin()));
      if (it == R.types.end()) R.types.push_back(t);
    }
    const LayerParams lp_dense = E_.dense_layer >= 0 ? layer_params(m, E_.dense_layer) : LayerParams{};
    const LayerParams lp_moe = E_.moe_layer >= 0 ? layer_params(m, E_.moe_layer) : LayerParams{};
    const LayerParams lp_last = layer_params(m, m.layers - 1);
    const double tp = d(base_.tp), ep = d(base_.ep);
    for (i64 r = 0; r < P_; ++r) {
      RankData rk;
      for (std::size_t h = held_off_[static_cast<std::size_t>(r)]; h < held_off_[static_cast<std::size_t>(r) + 1]; ++h) {
        const i64 s = held_[h];
        const auto& sl = R.stage_layers[static_cast<std::size_t>(s)];
        for (int kind = 0; kind < 2; ++kind)
          for (int pos = 0; pos < 2; ++pos) {
            const double n = sl[static_cast<std::size_t>(kind)][static_cast<std::size_t>(pos)];
            rk.layers[kind][pos] += n;
            const LayerParams& lp = kind == kMoe ? lp_moe : lp_dense;
            rk.mem_dense += n * (lp.dense / tp);
            rk.mem_expert += n * (lp.routed / ep);
          }
        if (s == 0) rk.mem_dense += embedding_params(m) / tp;
        if (s == S_ - 1) {
          rk.last = true;
          rk.mem_dense += head_params(m) / tp;
          rk.mtp += d(m.mtp_depth);
          rk.mem_dense += d(m.mtp_depth) * ((lp_last.dense + mtp_extra_params(m)) / tp);
          rk.mem_expert += d(m.mtp_depth) * (lp_last.routed / ep);
        }
      }
      R.ranks.push_back(rk);
      // The rank's type: the stage types it holds (DualPipe's ranks run different op counts: each its own).
      int ty = -1;
      if (!dual_) {
        const std::size_t h0 = held_off_[static_cast<std::size_t>(r)], h1 = held_off_[static_cast<std::size_t>(r) + 1];
        for (std::size_t t = 0; t < R.rtypes.size() && ty < 0; ++t) {
          const auto rep = static_cast<std::size_t>(R.rtypes[t].rep);
          const std::size_t g0 = held_off_[rep], g1 = held_off_[rep + 1];
          if (g1 - g0 != h1 - h0) continue;
          bool same = true;
          for (std::size_t x = 0; x < h1 - h0 && same; ++x)
            same = R.stype[static_cast<std::size_t>(held_[h0 + x])] == R.stype[static_cast<std::size_t>(held_[g0 + x])];
          if (same) ty = static_cast<int>(t);
        }
      }
      if (ty < 0) {
        ty = static_cast<int>(R.rtypes.size());
        R.rtypes.push_back(RankType{static_cast<int>(r), 0});
        std::vector<std::pair<int, double>> held_types;
        for (std::size_t h = held_off_[static_cast<std::size_t>(r)]; h < held_off_[static_cast<std::size_t>(r) + 1]; ++h) {
          const int sty = R.stype[static_cast<std::size_t>(held_[h])];
          auto it = std::find_if(held_types.begin(), held_types.end(), [&](const auto& x) { return x.first == sty; });
          if (it == held_types.end()) held_types.emplace_back(sty, 1.0);
          else it->second += 1.0;
        }
        R.rtype_stages.push_back(std::move(held_types));
      }
      ++R.rtypes[static_cast<std::size_t>(ty)].mult;
      R.rtype.push_back(ty);
    }
    return R;
  }

  const Pipe& pipe(const Knobs& k) {
    const bool sp = k.sequence_parallel && base_.tp > 1, tpo = k.tp_comm_overlap && sp, seo = k.shared_expert_overlap;
    const std::string& sched = base_.schedule;
    const bool interleaved = sched_ == Sched::Interleaved, zb = sched_ == Sched::Zb1p;
    const bool combined = k.ep_comm_overlap && (sched_ == Sched::OneF1B || interleaved);
    const int zc = k.zero <= 1 ? 0 : k.zero == 2 ? 1 : 2;
    const bool ogr = zc > 0 && k.overlap_grad_reduce;
    const bool rs_blocks = zc > 0 && !ogr;
    const int key = ((((((static_cast<int>(k.recompute) * 2 + sp) * 2 + tpo) * 2 + seo) * 2 + combined) * 3 + zc) * 2 + ogr);
    if (pipe_index_[static_cast<std::size_t>(key)] >= 0) return pipes_[static_cast<std::size_t>(pipe_index_[static_cast<std::size_t>(key)])];
    const RcData& R = rc_data(k.recompute);
    cur_rc_ = &R;
    const ModelConfig& m = E_.sc.model;
    // Per layer kind and mode: times alone and in pairs, with the ZeRO-2/3 traffic inside ops.
    struct KindT {
      Estimator::LayerTimes t;
      double gather = 0;
      double fd = 0, bd = 0;  // DP traffic in the forward, in the backward
    };
    auto kind_t = [&](int kind, Recompute rc) {
      KindT x;
      x.t = times(kind, rc, sp, tpo, seo);
      if (zc == 0) return x;
      const LayerSums& L = sums(kind, sp);
      double rs = 0;
      if (k.zero >= 3) x.gather = ag_dense_.at(L.held_dense * 2.0) + ag_expert_.at(L.held_expert * 2.0);
      rs = rs_dense_.at(L.held_dense * gb_) + rs_expert_.at(L.held_expert * gb_);
      auto& t = x.t;
      if (k.zero >= 3) {
        t.f = std::max(t.f, x.gather);
        t.i = std::max(t.i, x.gather);
      }
      t.b = ogr ? std::max(t.b, x.gather + rs) : std::max(t.b, x.gather) + rs;
      t.w = ogr ? std::max(t.w, rs) : t.w + rs;
      x.fd = x.gather;
      x.bd = x.gather + rs;
      return x;
    };
    KindT layer_t[2][2];
    for (int kind = 0; kind < 2; ++kind)
      for (int pos = 0; pos < 2; ++pos)
        if ((kind == kDense ? E_.dense_layer : E_.moe_layer) >= 0) layer_t[kind][pos] = kind_t(kind, pos == 0 ? R.mode : Recompute::None);
    const KindT embed = kind_t(kEmbed, Recompute::None), head = kind_t(kHead, Recompute::None);
    const KindT mtp = m.mtp_depth > 0 ? kind_t(kMtp, k.recompute) : KindT{};
    // Stage sums, once per stage type (stages of a type hold the same layers and ends).
    type_sum_.assign(R.types.size(), StageSum{});
    for (std::size_t ty = 0; ty < R.types.size(); ++ty) {
      const auto& [sl, is_first, is_last] = R.types[ty];
      StageSum& x = type_sum_[ty];
      double gather = 0;
      auto add = [&](const KindT& kt, double n) {
        if (n <= 0) return;
        x.f += n * kt.t.f;
        x.b += n * kt.t.b;
        x.i += n * kt.t.i;
        x.w += n * kt.t.w;
        x.fc += n * kt.t.fc;
        x.fa += n * kt.t.fa;
        x.bc += n * kt.t.bc;
        x.ba += n * kt.t.ba;
        x.fe += n * kt.t.fe;
        x.be += n * kt.t.be;
        x.ft += n * kt.t.ft;
        x.bt += n * kt.t.bt;
        x.fcp += n * kt.t.fcp;
        x.bcp += n * kt.t.bcp;
        x.fd += n * kt.fd;
        x.bd += n * kt.bd;
        if (gather == 0) gather = kt.gather;  // the stage's first gather is exposed
      };
      if (is_first) add(embed, 1);
      for (int kind = 0; kind < 2; ++kind)
        for (int pos = 0; pos < 2; ++pos) add(layer_t[kind][pos], sl[static_cast<std::size_t>(kind)][static_cast<std::size_t>(pos)]);
      if (is_last) {
        add(mtp, d(m.mtp_depth));
        add(head, 1);
      }
      x.f += gather;
    }
    const auto st = [&](i64 stage) -> const StageSum& { return type_sum_[static_cast<std::size_t>(R.stype[static_cast<std::size_t>(stage)])]; };
    // The pipeline.
    const Estimator::Impl::Counts* cnt = dual_ ? &E_.op_counts(sched, P_, base_.vpp, M_, false) : nullptr;
    // Combined 1F1B (step/overlap_policy.hpp combine_1f1b_order): every backward followed by a
    // forward becomes one F&B op. In the 1F1B order (schedule/one_f_one_b.cpp) a rank runs
    // `warmup` = min(P-r-1, M) forwards, then forward-backward pairs, then `warmup` backwards, so
    // all but the last steady backward pair up: max(0, M - warmup - 1) F&B ops. (Interleaved,
    // combined or not, is replayed below: pp >= 2 always, schedule/interleaved.cpp.)
    const i64 m_next = interleaved ? M_ + P_ : M_ + 1;
    const auto fb_count = [&](i64 M, i64 r) -> double { return d(std::max<i64>(0, M - std::min(P_ - r - 1, M) - 1)); };
    // Per rank type (ranks of a type cost the same; DualPipe: one rank each).
    const std::size_t nt = R.rtypes.size();
    busy1_.assign(nt, 0.0);
    busy2_.assign(nt, 0.0);
    x_r_.assign(nt, 0.0);
    w_r_.assign(nt, 0.0);
    Pipe out;
    if (interleaved) {
      // Each chunk's backward and forward (one micro-batch), for the DP tail's windows.
      out.chunk_offset = pool_.size();
      for (std::size_t t = 0; t < nt; ++t) {
        const auto r = static_cast<std::size_t>(R.rtypes[t].rep);
        for (std::size_t h = held_off_[r]; h < held_off_[r + 1]; ++h) pool_.push_back(st(held_[h]).b);
        for (std::size_t h = held_off_[r]; h < held_off_[r + 1]; ++h) pool_.push_back(st(held_[h]).f);
      }
    }
    out.offset = pool_.size();
    pool_.resize(pool_.size() + 2 * nt);
    double* b_r = &pool_[out.offset];
    double* f_r = b_r + nt;
    for (std::size_t t = 0; t < nt; ++t) {
      const auto r = static_cast<std::size_t>(R.rtypes[t].rep);
      const std::size_t h0 = held_off_[r], h1 = held_off_[r + 1];
      double F = 0, B = 0, I = 0, W = 0;
      for (const auto& [sty, cnt_held] : R.rtype_stages[t]) {
        const StageSum& x = type_sum_[static_cast<std::size_t>(sty)];
        F += cnt_held * x.f;
        B += cnt_held * x.b;
        I += cnt_held * x.i;
        W += cnt_held * x.w;
      }
      const double nst = d(static_cast<i64>(h1 - h0));
      f_r[t] = F / nst;
      b_r[t] = B / nst;
      w_r_[t] = W / nst;
      if (interleaved) continue;  // the replay below times the pipeline
      if (zb) x_r_[t] = F + I + W;
      else if (dual_) {
        const StageSum& a = st(held_[h0]);
        const StageSum& b = st(held_[h0 + 1]);
        const double fb = 0.5 * (pair_dp(a, b, rs_blocks) + pair_dp(b, a, rs_blocks));
        x_r_[t] = fb + B / nst - 3.0 * W / nst;
      } else {
        x_r_[t] = F + B;
      }
      if (cnt) {
        for (const auto& row : cnt->ranks[r]) {
          const StageSum& x = st(row.s1);
          double tm = 0;
          switch (row.kind) {
            case graph::OpKind::F: tm = x.f; break;
            case graph::OpKind::B: tm = x.b; break;
            case graph::OpKind::I: tm = x.i; break;
            case graph::OpKind::W: tm = x.w; break;
            case graph::OpKind::FB: {
              const StageSum& y = st(row.s2);
              tm = pair_dp(x, y, rs_blocks);
              break;
            }
          }
          busy1_[t] += row.n1 * tm;
          busy2_[t] += row.n2 * tm;
        }
      } else if (combined) {  // 1F1B: one stage per rank
        const StageSum& a = st(held_[h0]);
        const double saving = a.f + a.b - pair_dp(a, a, rs_blocks);
        // fb_count depends on the rank (its warm-up); the type's first rank warms up longest.
        busy1_[t] = d(M_) * (F + B) - fb_count(M_, static_cast<i64>(r)) * saving;
        busy2_[t] = d(m_next) * (F + B) - fb_count(m_next, static_cast<i64>(r)) * saving;
      } else {
        busy1_[t] = d(M_) * (zb ? F + I + W : F + B);
        busy2_[t] = busy1_[t];
      }
    }
    std::size_t kb = 0;
    for (std::size_t t = 1; t < nt; ++t)
      if (busy1_[t] > busy1_[kb]) kb = t;
    if (P_ > 1 && !interleaved) {
      double mean = 0, mean_w = 0;
      for (std::size_t t = 0; t < nt; ++t) {
        const double n = d(R.rtypes[t].mult) - (t == kb ? 1.0 : 0.0);
        mean += n * x_r_[t];
        mean_w += n * w_r_[t];
      }
      mean /= d(P_ - 1);
      mean_w /= d(P_ - 1);
      const double pm1 = d(P_ - 1);
      switch (sched_) {
        case Sched::GPipe:
        case Sched::OneF1B: out.bubble = pm1 * mean; break;
        case Sched::Interleaved: break;  // replayed below
        case Sched::Zb1p: out.bubble = pm1 * std::max(0.0, mean - 2.0 * mean_w); break;
        case Sched::DualPipe: out.bubble = (d(P_) / 2.0 - 1.0) * std::max(0.0, mean); break;
        case Sched::DualPipeV: out.bubble = pm1 * std::max(0.0, mean); break;
      }
    }
    const i64 m1 = cnt ? cnt->m1 : M_, m2 = cnt ? cnt->m2 : combined ? m_next : M_;
    out.slope = m2 != m1 ? (busy2_[kb] - busy1_[kb]) / d(m2 - m1) : (M_ > 0 ? busy1_[kb] / d(M_) : 0.0);
    out.intercept = busy1_[kb] - out.slope * d(m1);
    if (interleaved) {
      // Interleaved: the op order replayed over the stage sums (interleaved_replay), so that the
      // waits of uneven chunks (the split's ends, a layer more here than there) are the
      // schedule's, not the closed form's (P-1)(F+B)/v. The step grows by one round of P
      // micro-batches at a time; beyond 3P micro-batches it is extrapolated from 2P and 3P.
      const auto at = [&](i64 M) { return interleaved_replay(flat_order(M, combined), rs_blocks); };
      std::pair<double, double> a, b;
      i64 ma = M_, mb = m_next;
      if (M_ > 3 * P_) {
        ma = 2 * P_;
        mb = 3 * P_;
      }
      a = at(ma);
      b = at(mb);
      out.slope = (b.first - a.first) / d(mb - ma);
      const double mk = a.first + out.slope * d(M_ - ma);
      const double work = a.second + (b.second - a.second) / d(mb - ma) * d(M_ - ma);
      out.bubble = mk - work;
      out.intercept = work - out.slope * d(M_);
      out.sends_inside = true;
    }
    pipe_index_[static_cast<std::size_t>(key)] = static_cast<int>(pipes_.size());
    pipes_.push_back(out);
    return pipes_.back();
  }

  // E_.flat_order for this layout's pp and vpp, through a small cache of this worker's (the
  // shared memo takes a lock).
  const Estimator::Impl::FlatOrder& flat_order(i64 M, bool eco) {
    for (const auto& [key, ptr] : flat_cache_)
      if (ptr && key[0] == P_ && key[1] == base_.vpp && key[2] == M && key[3] == (eco ? 1 : 0)) return *ptr;
    const auto& f = E_.flat_order(P_, base_.vpp, M, eco);
    flat_cache_[flat_next_] = {std::array<i64, 4>{P_, base_.vpp, M, eco ? 1 : 0}, &f};
    flat_next_ = (flat_next_ + 1) % flat_cache_.size();
    return f;
  }

  // (makespan, the busiest rank's busy time) of an interleaved step in `o`'s order over this
  // layout's stage sums (type_sum_, set by pipe()): every op starts at the latest arrival over
  // its in-edges (a send across ranks adds send1_), as graph::replay_times does, and takes its
  // stage's F or B, or the F&B pair's bound. O(ops).
  std::pair<double, double> interleaved_replay(const Estimator::Impl::FlatOrder& o, bool rs_blocks) {
    const RcData* R = cur_rc_;
    const auto st = [&](int stage) -> const StageSum& { return type_sum_[static_cast<std::size_t>(R->stype[static_cast<std::size_t>(stage)])]; };
    combo_t_.resize(o.combos.size());
    for (std::size_t c = 0; c < o.combos.size(); ++c) {
      const auto& x = o.combos[c];
      combo_t_[c] = x.kind == graph::OpKind::F ? st(x.s1).f : x.kind == graph::OpKind::B ? st(x.s1).b : pair_dp(st(x.s1), st(x.s2), rs_blocks);
    }
    const std::size_t n = o.combo.size();
    replay_end_.resize(n);
    double* end = replay_end_.data();
    const double* ct = combo_t_.data();
    const std::uint32_t* ib = o.in_begin.data();
    const std::uint32_t* src = o.in_src.data();
    const std::uint32_t* cb = o.combo.data();
    const double bias[2] = {0.0, send1_};  // by the kRemote bit
    for (std::size_t i = 0; i < n; ++i) {
      double start = 0;
      for (std::uint32_t e = ib[i]; e < ib[i + 1]; ++e) {
        const std::uint32_t u = src[e];
        start = std::max(start, end[u & 0x7fffffffu] + bias[u >> 31]);
      }
      end[i] = start + ct[cb[i]];
    }
    double makespan = 0, busy = 0;
    const std::size_t nc = o.combos.size();
    for (int r = 0; r < o.ranks; ++r) {
      makespan = std::max(makespan, end[o.last[static_cast<std::size_t>(r)]]);
      double b = 0;
      for (std::size_t c = 0; c < nc; ++c) b += o.count[static_cast<std::size_t>(r) * nc + c] * ct[c];
      busy = std::max(busy, b);
    }
    return {makespan, busy};
  }

  // Per rank type: the DP tail's parts and the optimizer.
  const Tail& tail(Recompute rc) {
    Tail& t = tails_[static_cast<std::size_t>(rc)];
    if (tail_ready_[static_cast<std::size_t>(rc)]) return t;
    tail_ready_[static_cast<std::size_t>(rc)] = true;
    const RcData& R = rc_data(rc);
    const ModelConfig& m = E_.sc.model;
    const TrainingConfig& tr = E_.sc.phases[phase_].training;
    // Held parameters per rank type (step/phases.cpp: GEMM weights per GPU, the embedding table).
    const std::size_t nt = R.rtypes.size();
    held_sum_.assign(nt, Held{});
    const LayerSums* k_sums[kKinds] = {};
    for (int kind = 0; kind < kKinds; ++kind) {
      if (kind == kDense && E_.dense_layer < 0) continue;
      if (kind == kMoe && E_.moe_layer < 0) continue;
      if (kind == kMtp && m.mtp_depth == 0) continue;
      k_sums[kind] = &sums(kind, false);
    }
    {
      for (std::size_t ty = 0; ty < nt; ++ty) {
        const auto r = static_cast<std::size_t>(R.rtypes[ty].rep);
        const auto& rk = R.ranks[r];
        Held& h = held_sum_[ty];
        auto add = [&](int kind, double n) {
          if (!k_sums[kind] || n <= 0) return;
          h.dense += n * k_sums[kind]->held_dense;
          h.expert += n * k_sums[kind]->held_expert;
          h.fp8 += n * k_sums[kind]->fp8;
        };
        for (int kind = 0; kind < 2; ++kind) add(kind, rk.layers[kind][0] + rk.layers[kind][1]);
        for (std::size_t x = held_off_[r]; x < held_off_[r + 1]; ++x) {
          if (held_[x] == 0) add(kEmbed, 1);
          if (held_[x] == S_ - 1) add(kHead, 1);
        }
        add(kMtp, rk.mtp);
      }
    }
    // Per rank type: the parameters of one chunk (held / chunks), bucketed (step/tail.cpp
    // grad_bucket_params) or one bucket per chunk. Uniform bucketing buckets every chunk;
    // Megatron-Core only rank 0's first chunk, with overlap_grad_reduce.
    t.has0.assign(nt, false);
    t.qmin.assign(nt, 0);
    t.below.assign(nt, std::vector<double>(nt, 0.0));
    std::vector<double> seen(nt, 0.0);  // ranks of each type before r
    for (i64 r = 0; r < P_; ++r) {
      const auto ty = static_cast<std::size_t>(R.rtype[static_cast<std::size_t>(r)]);
      if (r == 0) t.has0[ty] = true;
      else if (t.qmin[ty] == 0) {
        t.qmin[ty] = static_cast<int>(r);
        t.below[ty] = seen;
      }
      seen[ty] += 1.0;
    }
    // (total time, time of the last bucket) of `params` over `chunks` equal chunks, each one
    // bucket except the first when `cut_first` (cut into buckets of bucket_).
    const auto buckets = [&](double params, const Affine& a, double bytes_per, double chunks, bool cut_first) {
      if (params <= 0) return std::pair<double, double>{0.0, 0.0};
      const double per = params / chunks;
      if (!cut_first) return std::pair<double, double>{chunks * a.alpha + a.beta * params * bytes_per, a.at(per * bytes_per)};
      const double n = std::ceil(per / bucket_ - 1e-9);
      const double last = per - (n - 1) * bucket_;
      return std::pair<double, double>{(n + chunks - 1) * a.alpha + a.beta * params * bytes_per, a.at(last * bytes_per)};
    };
    // The embedding's gradients reduced in buckets, all ready at once.
    const double embed_held = k_sums[kEmbed]->held_dense;
    const auto embed_grad = [&](const Affine& a) { return buckets(embed_held, a, gb_, 1.0, true).first; };
    const auto chunks_of = [&](std::size_t ty) {
      const auto r = static_cast<std::size_t>(R.rtypes[ty].rep);
      return d(static_cast<i64>(held_off_[r + 1] - held_off_[r]));
    };
    for (int z = 0; z < 2; ++z) {
      const Affine& ad = z == 0 ? ar_dense_ : rs_dense_;
      const Affine& ae = z == 0 ? ar_expert_ : rs_expert_;
      const auto zu = static_cast<std::size_t>(z);
      t.grad[zu].clear();
      t.grad_last[zu].clear();
      t.grad_single[zu].clear();
      t.grad_max[zu] = 0;
      t.single_max[zu] = 0;
      for (std::size_t ty = 0; ty < nt; ++ty) {
        const Held& h = held_sum_[ty];
        // Uniform: the rank's chunks cut as one sequence (ignoring each chunk's partial last bucket).
        const double ch = mc_ ? chunks_of(ty) : 1.0;
        const auto [td, ld] = buckets(h.dense, ad, gb_, ch, true);
        const auto [te, le] = buckets(h.expert, ae, gb_, ch, true);
        t.grad[zu].push_back(td + te);
        // The embedding's gradient comes last in the backward (step/tail.cpp: a phase completes
        // all its buckets at once), so pipeline rank 0 ends with its whole reduction exposed.
        t.grad_last[zu].push_back(std::max({ld, le, t.has0[ty] ? embed_grad(ad) : 0.0}));
        t.grad_max[zu] = std::max(t.grad_max[zu], td + te);
        if (!mc_) continue;  // the one-bucket figures are Megatron-Core's only
        const double single = buckets(h.dense, ad, gb_, ch, false).first + buckets(h.expert, ae, gb_, ch, false).first;
        t.grad_single[zu].push_back(single);
        t.single_max[zu] = std::max(t.single_max[zu], single);
      }
    }
    t.gather.clear();
    t.gather_first.clear();
    t.gather_single.clear();
    t.gather_max = 0;
    t.gather_single_max = 0;
    for (std::size_t ty = 0; ty < nt; ++ty) {
      const Held& h = held_sum_[ty];
      // Uniform: the rank's chunks cut as one sequence (ignoring each chunk's partial last bucket).
      const double ch = mc_ ? chunks_of(ty) : 1.0;
      const double all = buckets(h.dense, ag_dense_, 2.0, ch, true).first + buckets(h.expert, ag_expert_, 2.0, ch, true).first;
      t.gather.push_back(all);
      t.gather_max = std::max(t.gather_max, all);
      t.gather_first.push_back(ag_dense_.at(std::min(bucket_, h.dense / ch) * 2.0));
      if (!mc_) continue;
      const auto [sd, sld] = buckets(h.dense, ag_dense_, 2.0, ch, false);
      const auto [se, sle] = buckets(h.expert, ag_expert_, 2.0, ch, false);
      // One bucket per chunk: the first forward waits for its chunk's whole gather.
      t.gather_single.push_back(sld + sle);
      t.gather_single_max = std::max(t.gather_single_max, sd + se);
    }
    if (sched_ == Sched::Interleaved && mc_) {
      // Each chunk's held parameters (the held sums above, stage by stage).
      for (int z = 0; z < 2; ++z) {
        t.chunk_grad[static_cast<std::size_t>(z)].assign(nt, {});
        t.chunk0_grad[static_cast<std::size_t>(z)].assign(nt, {0.0, 0.0});
      }
      t.chunk_gather.assign(nt, {});
      t.chunk0_gather.assign(nt, {0.0, 0.0});
      for (std::size_t ty = 0; ty < nt; ++ty) {
        const auto r = static_cast<std::size_t>(R.rtypes[ty].rep);
        for (std::size_t x = held_off_[r]; x < held_off_[r + 1]; ++x) {
          const i64 stage = held_[x];
          Held h;
          auto add = [&](int kind, double n) {
            if (!k_sums[kind] || n <= 0) return;
            h.dense += n * k_sums[kind]->held_dense;
            h.expert += n * k_sums[kind]->held_expert;
          };
          const auto& sl = R.stage_layers[static_cast<std::size_t>(stage)];
          for (int kind = 0; kind < 2; ++kind) add(kind, d(sl[static_cast<std::size_t>(kind)][0] + sl[static_cast<std::size_t>(kind)][1]));
          if (stage == 0) add(kEmbed, 1);
          if (stage == S_ - 1) {
            add(kHead, 1);
            add(kMtp, d(m.mtp_depth));
          }
          const bool cut = stage == 0;  // pipeline rank 0's chunk 0
          for (int z = 0; z < 2; ++z) {
            const auto zu = static_cast<std::size_t>(z);
            const Affine& ad = z == 0 ? ar_dense_ : rs_dense_;
            const Affine& ae = z == 0 ? ar_expert_ : rs_expert_;
            t.chunk_grad[zu][ty].push_back(ad.at(h.dense * gb_) + ae.at(h.expert * gb_));
            if (cut) {
              const auto [td, ld] = buckets(h.dense, ad, gb_, 1.0, true);
              const auto [te, le] = buckets(h.expert, ae, gb_, 1.0, true);
              t.chunk0_grad[zu][ty] = {td + te, std::max({ld, le, embed_grad(ad)})};
            }
          }
          t.chunk_gather[ty].push_back(ag_dense_.at(h.dense * 2.0) + ag_expert_.at(h.expert * 2.0));
          if (cut)
            t.chunk0_gather[ty] = {buckets(h.dense, ag_dense_, 2.0, 1.0, true).first + buckets(h.expert, ag_expert_, 2.0, 1.0, true).first,
                                   ag_dense_.at(std::min(bucket_, h.dense) * 2.0)};
        }
      }
    }
    for (int sharded = 0; sharded < 2; ++sharded) {
      const double dense_dp = sharded ? d(base_.dp * base_.cp) * copies_ : 1.0;
      const double expert_dp = sharded ? d(expert_size_) * copies_ : 1.0;
      double worst = 0;
      for (const Held& h : held_sum_) {
        const double shard = h.dense / dense_dp + h.expert / expert_dp;
        const std::array<double, 5> bytes = step::optimizer_pass_bytes(shard, h.fp8, tr);
        double x = opt_[0].at(bytes[0]) + E_.small_all_reduce + opt_[1].at(bytes[1]) + opt_[2].at(bytes[2]) +
                   opt_[3].at(bytes[3]);
        x += opt_[4].at(bytes[4]);
        worst = std::max(worst, x);
      }
      t.optimizer[static_cast<std::size_t>(sharded)] = worst;
    }
    return t;
  }

  Estimator::Impl& E_;
  L1* l1_;
  std::size_t phase_;
  PlanConfig base_;
  PlanConfig plan_;  // base_ with the knobs of the current question (scratch)
  std::array<PlanConfig, 2> inflight_plan_;  // without and with combined 1F1B
  i64 P_ = 1, S_ = 1, M_ = 1, stage_gpus_ = 1;
  bool dual_ = false;
  int copies_ = 1, expert_size_ = 1;
  double tokens_ = 0, gb_ = 4, p2p_ = 0, bucket_ = 0, send1_ = 0;
  std::vector<double> replay_end_, combo_t_;  // interleaved_replay's scratch
  const RcData* cur_rc_ = nullptr;                          // pipe()'s recompute data
  std::array<std::pair<std::array<i64, 4>, const Estimator::Impl::FlatOrder*>, 8> flat_cache_{};
  std::size_t flat_next_ = 0;
  bool mc_ = false;  // Megatron-Core bucketing (step/tail.hpp grad_bucket_params)
  const Estimator::Impl::Ramp* ramp_ = nullptr;
  Affine ag_dense_, ag_expert_, rs_dense_, rs_expert_, ar_dense_, ar_expert_;
  std::vector<i64> held_;               // the stages each rank holds, rank after rank
  std::vector<std::size_t> held_off_;   // rank r: held_[held_off_[r] .. held_off_[r+1])
  std::array<std::optional<Mem>, 64> mem_{};
  std::array<RcData, 4> rc_{};
  std::array<bool, 4> rc_ready_{};
  std::array<Tail, 4> tails_{};
  std::array<bool, 4> tail_ready_{};
  std::array<int, 384> pipe_index_{};
  std::vector<Pipe> pipes_;
  std::vector<double> pool_;
  std::vector<StageSum> type_sum_;
  std::vector<Held> held_sum_;
  std::array<Affine, 5> opt_{};  // the optimizer's passes (Estimator::Impl::opt_pass)
  std::vector<double> busy1_, busy2_, x_r_, w_r_;
  L1::Block* block_ = nullptr;  // the thread's layer cache of this layout's shape
  std::array<const LayerSums*, kKinds * 2> sums_local_{};
  std::array<const Estimator::LayerTimes*, kKinds * 4 * 2 * 2 * 2> times_local_{};
  enum class Sched { GPipe, OneF1B, Interleaved, Zb1p, DualPipe, DualPipeV } sched_ = Sched::OneF1B;
};

Estimator::Estimator(const Space& space, const calibration::CostModel& cost)
    : space_(space), cost_(cost), impl_(std::make_unique<Impl>(space, cost)) {}
Estimator::~Estimator() = default;

Estimator::LayerTimes Estimator::layer_times(std::size_t phase, int kind, const PlanConfig& plan, Recompute rc) const {
  return impl_->layer(phase, kind, plan, rc);
}

Affine Estimator::collective_fit(int kind, int size, int stride, int copies, int copy_stride) const {
  return impl_->coll(kind, size, stride, copies, copy_stride);
}

namespace {
// The knobs of a phase plan.
Knobs knobs_of(const PlanConfig& p) {
  Knobs k;
  k.recompute = p.recompute;
  k.zero = static_cast<int>(p.zero);
  k.sequence_parallel = p.sequence_parallel;
  k.tp_comm_overlap = p.tp_comm_overlap;
  k.ep_comm_overlap = p.ep_comm_overlap;
  k.shared_expert_overlap = p.shared_expert_overlap;
  k.overlap_grad_reduce = p.overlap_grad_reduce;
  k.overlap_param_gather = p.overlap_param_gather;
  return k;
}

void total(const Scenario& sc, double goodput, PlanEstimate& e) {
  double wall = 0;
  e.fits = true;
  e.unfit_phase = -1;
  e.peak_bytes = 0;
  for (std::size_t i = 0; i < e.phases.size(); ++i) {
    const PhaseEstimate& ph = e.phases[i];
    if (!ph.fits && e.fits) {
      e.fits = false;
      e.unfit_phase = static_cast<int>(i);
    }
    e.peak_bytes = std::max(e.peak_bytes, ph.peak_bytes);
    wall += ph.busy_s / goodput;
  }
  e.capacity = sc.hardware.hbm_capacity.value;
  e.step_s = e.phases.empty() ? 0 : e.phases.front().step_s;
  e.days = wall / 86400.0;
  e.gpu_hours = wall * d(sc.cluster.gpus) / 3600.0;
  e.cost_usd = e.gpu_hours * sc.hardware.price.value;
}
}  // namespace

PlanEstimate Estimator::estimate(const Candidate& c) const {
  PlanEstimate e;
  for (std::size_t i = 0; i < space_.phase_count(); ++i) {
    PlanConfig p;
    const bool ok = space_.phase_plan(c, i, p);
    TS_ASSERT(ok, "estimate of a candidate whose phase cannot fill the GPUs");
    PhaseLayout pl(*impl_, nullptr, i, p);
    PhaseEstimate ph;
    pl.evaluate(knobs_of(p), ph);
    e.phases.push_back(ph);
  }
  total(space_.scenario(), impl_->goodput, e);
  return e;
}

// ---------------------------------------------------------------------------------------------
struct Estimator::Worker::Impl {
  const Estimator& e;
  L1 l1;
  // Per phase, the last few layouts it was evaluated under (a phase with its own dp and cp
  // repeats across the main phase's cp and dp, which the enumeration varies fastest); the oldest
  // is reset for a new layout, so its buffers are reused.
  struct Slot {
    std::array<std::int64_t, 8> key{};
    std::unique_ptr<PhaseLayout> layout;
  };
  std::vector<std::vector<Slot>> cache;
  std::vector<std::size_t> next;
  std::vector<PlanConfig> plans;
  std::vector<PhaseLayout*> pls;
  PlanEstimate est;
  explicit Impl(const Estimator& x)
      : e(x), cache(x.space().phase_count()), next(x.space().phase_count(), 0), plans(x.space().phase_count()) {}
};

Estimator::Worker::Worker(const Estimator& e) : impl_(std::make_unique<Impl>(e)) {}
Estimator::Worker::~Worker() = default;

void Estimator::Worker::screen(const Layout& layout, const std::vector<int>& codes,
                               const std::function<void(int, const PlanEstimate&)>& sink) {
  Impl& W = *impl_;
  const Space& space = W.e.space();
  Estimator::Impl& E = *W.e.impl_;
  const std::size_t n = space.phase_count();
  std::vector<PhaseLayout*>& pls = W.pls;
  pls.assign(n, nullptr);
  Candidate c;
  c.layout = layout;
  for (std::size_t i = 0; i < n; ++i) {
    const bool ok = space.phase_plan(c, i, W.plans[i]);
    TS_ASSERT(ok, "screen: a layout whose phase cannot fill the GPUs");
    const PlanConfig& p = W.plans[i];
    const auto sched = std::find(space.schedules().begin(), space.schedules().end(), p.schedule) - space.schedules().begin();
    const std::array<std::int64_t, 8> key{p.dp, p.tp, p.pp, p.cp, p.ep, p.vpp, p.micro_batch, sched};
    auto& cache = W.cache[i];
    PhaseLayout* found = nullptr;
    for (auto& sl : cache)
      if (sl.key == key) found = sl.layout.get();
    if (!found) {
      constexpr std::size_t kSlots = 8;
      if (cache.size() < kSlots) {
        cache.push_back(Impl::Slot{key, std::make_unique<PhaseLayout>(E, &W.l1, i, p)});
        found = cache.back().layout.get();
      } else {
        Impl::Slot& victim = cache[W.next[i]];
        W.next[i] = (W.next[i] + 1) % kSlots;
        victim.key = key;
        victim.layout->reset(i, p);
        found = victim.layout.get();
      }
    }
    pls[i] = found;
  }
  PlanEstimate& est = W.est;
  est.phases.resize(n);
  for (int code : codes) {
    c.knobs = Knobs::from_code(code);
    bool fits = true;
    for (std::size_t i = 0; i < n && fits; ++i) {
      const PhaseLayout::Mem& mem = pls[i]->memory(space.phase_knobs(i, c.knobs));
      if (!mem.fits) {
        fits = false;
        est.fits = false;
        est.unfit_phase = static_cast<int>(i);
        est.peak_bytes = mem.peak;
        est.capacity = E.sc.hardware.hbm_capacity.value;
      }
    }
    if (fits) {
      for (std::size_t i = 0; i < n; ++i) pls[i]->evaluate(space.phase_knobs(i, c.knobs), est.phases[i]);
      total(E.sc, E.goodput, est);
    }
    sink(code, est);
  }
}

}  // namespace trainsim::plan
