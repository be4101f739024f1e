#include "step/phases.hpp"

#include <algorithm>
#include <bit>
#include <string_view>

#include "core/error.hpp"
#include "model/recompute.hpp"

namespace trainsim::step {

namespace {


bool is_gemm(const Op& o) { return o.cls == OpClass::Gemm || o.cls == OpClass::GroupedGemm; }

// What is left exposed of a collective C pipelined in n chunks with a GEMM G (two-stage flow
// shop: the first chunk of one and the last of the other cannot overlap).
Time pipelined_residual(Time C, Time G, int n) {
  if (C <= Time::zero()) return Time::zero();
  const Time hi = std::max(G, C), lo = std::min(G, C);
  return hi + lo / std::max(1, n) - G;
}
}  // namespace

const char* phase_kind_name(PhaseKind k) {
  switch (k) {
    case PhaseKind::Compute: return "compute";
    case PhaseKind::Tp: return "TP";
    case PhaseKind::Ep: return "EP";
    case PhaseKind::Cp: return "CP";
    case PhaseKind::Dp: return "DP";
  }
  return "?";
}

int stream_of(PhaseKind k) {
  switch (k) {
    case PhaseKind::Compute: return 0;
    case PhaseKind::Ep: return 1;
    case PhaseKind::Tp: return 2;
    case PhaseKind::Cp: return 3;
    case PhaseKind::Dp: return 4;
  }
  return 0;
}

struct PhaseBuilder::Chain {
  std::vector<int> frontier;  // what the next phase of the chain waits for
  // ZeRO-3 prefetch, one layer ahead: layer l's all-gather starts when layer l-1 starts, i.e.
  // when the phases of layer l-2 are done.
  std::vector<std::vector<int>> layer_ends;
  std::vector<int> prefetch_gate() const {
    return layer_ends.size() >= 2 ? layer_ends[layer_ends.size() - 2] : std::vector<int>{};
  }
  std::vector<int> grad_rs;   // ZeRO-2/3 gradient reduce-scatters (the op ends after them)
};

PhaseBuilder::PhaseBuilder(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                           const calibration::CostModel& cost, const CommPlan& comm)
    : sc_(sc), plan_(plan), tr_(tr), cost_(cost), comm_(comm) {
  sms_ = static_cast<int>(sc.hardware.sms);
  shared_sms_ = sms_ - static_cast<int>(plan.comm_sms);
  gap_ = cost.kernel_gap();
}

std::int32_t* PhaseBuilder::stage_slot(const Op& o, int sms) {
  if (!in_stage_) return nullptr;
  const int slot = sms == sms_ ? 0 : sms == shared_sms_ ? 1 : -1;
  if (slot < 0) return nullptr;
  for (const OpRange& r : stage_ranges_)
    if (&o >= r.begin && &o < r.end)
      return &stage_slots_[2 * (r.base + static_cast<std::size_t>(&o - r.begin)) + static_cast<std::size_t>(slot)];
  return nullptr;
}

Time PhaseBuilder::op_time(const Op& o, int sms) {
  std::int32_t* slot = stage_slot(o, sms);
  if (slot != nullptr && *slot >= 0) {
    Tally& tl = tallies_[static_cast<std::size_t>(*slot)];
    ++tl.n;
    return tl.cost->time + gap_;
  }
  std::size_t index = 0;
  auto sh = shape_tally_.find(OpRef{&o, sms});
  if (sh != shape_tally_.end()) {
    index = sh->second;
  } else {
    std::shared_ptr<const calibration::OpCost> oc = cost_.op_cost(o, sms);
    // The op class is part of the memo's key, so one answer always belongs to one class. The
    // tally holds the answer, so its address is not reused while counted.
    auto [it, fresh] = tally_of_.emplace(oc.get(), tallies_.size());
    if (fresh) tallies_.push_back(Tally{std::move(oc), o.cls, 0});
    TS_ASSERT(tallies_[it->second].cls == o.cls, "one op cost answered for two op classes");
    index = it->second;
    shape_tally_.emplace(OpShape{o, sms}, index);
  }
  if (slot != nullptr) *slot = static_cast<std::int32_t>(index);
  Tally& tl = tallies_[index];
  ++tl.n;
  return tl.cost->time + gap_;
}

std::size_t PhaseBuilder::OpShapeHash::hash(const Op& o, int sms) {
  std::size_t h = std::hash<std::string_view>()(o.name);
  const auto mix = [&](std::uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
  mix(std::hash<std::string_view>()(o.dtype));
  mix(static_cast<std::uint64_t>(o.cls) << 8 | static_cast<std::uint64_t>(o.pass));
  for (std::int64_t v : {o.m, o.n, o.k, o.groups}) mix(static_cast<std::uint64_t>(v));
  for (double v : {o.flops, o.flops_full, o.bytes}) mix(std::bit_cast<std::uint64_t>(v));
  mix(static_cast<std::uint64_t>(sms));
  return h;
}

bool PhaseBuilder::OpShapeEq::same(const Op& a, int sa, const Op& b, int sb) {
  const auto bits = [](double v) { return std::bit_cast<std::uint64_t>(v); };
  return sa == sb && a.cls == b.cls && a.pass == b.pass && a.m == b.m && a.n == b.n && a.k == b.k &&
         a.groups == b.groups && bits(a.flops) == bits(b.flops) && bits(a.flops_full) == bits(b.flops_full) &&
         bits(a.bytes) == bits(b.bytes) && a.name == b.name && a.dtype == b.dtype;
}

CostCounts PhaseBuilder::counts() const {
  CostCounts c;
  std::set<std::string> bases;
  for (const Tally& tl : tallies_) {
    const calibration::OpCost& oc = *tl.cost;
    switch (oc.source) {
      case calibration::CostSource::Measured: c.measured += tl.n; break;
      case calibration::CostSource::Fitted: c.fitted += tl.n; break;
      case calibration::CostSource::Transferred: c.transferred += tl.n; break;
    }
    bases.insert(oc.basis);
    c.by_class[{op_class_name(tl.cls), calibration::cost_source_name(oc.source), oc.basis}] += tl.n;
  }
  c.bases.assign(bases.begin(), bases.end());
  return c;
}

int PhaseBuilder::add(std::vector<Phase>& out, Phase ph, std::vector<int> after) {
  after.erase(std::remove(after.begin(), after.end(), -1), after.end());
  std::sort(after.begin(), after.end());
  after.erase(std::unique(after.begin(), after.end()), after.end());
  ph.after = std::move(after);
  out.push_back(std::move(ph));
  return static_cast<int>(out.size()) - 1;
}

Phase PhaseBuilder::compute(const std::string& name, const std::vector<const Op*>& ops, bool beside_comm,
                            bool recompute) {
  Phase ph;
  ph.name = name;
  ph.kind = PhaseKind::Compute;
  ph.recompute = recompute;
  ph.beside_comm = beside_comm;
  for (const Op* o : ops) {
    const Time full = op_time(*o, sms_);
    const Time shared = shared_sms_ == sms_ ? full : op_time(*o, shared_sms_);
    ph.alone += beside_comm ? shared : full;
    ph.paired += shared;
    if (!recompute) {
      const GradParams g = grad_params(*o);
      ph.dense_grads += g.dense;
      ph.expert_grads += g.expert;
    }
  }
  return ph;
}

Phase PhaseBuilder::comm(const std::string& name, PhaseKind kind, Time t) {
  Phase ph;
  ph.name = name;
  ph.kind = kind;
  ph.alone = ph.paired = t;
  return ph;
}

Time PhaseBuilder::gemm_time(const std::vector<const Op*>& ops) {
  Time t;
  for (const Op* o : ops)
    if (is_gemm(*o)) t += op_time(*o, sms_);
  return t;
}

namespace {

struct Parts {
  std::vector<const Op*> attn, routed, shared, out;  // parts 0, 1 (routed / shared experts), 2
  std::vector<const Op*> all;
};

// The ops of `L` in `pass`; recompute_only: only the forward ops its recompute mode re-runs.
Parts parts_of(const LayerOps& L, Pass pass, bool recompute_only, bool split_shared) {
  Parts p;
  for (const Op& o : L.ops) {
    if (o.pass != pass) continue;
    if (recompute_only && !recomputed(o, L.recompute)) continue;
    p.all.push_back(&o);
    switch (part_of(o.name)) {
      case 0: p.attn.push_back(&o); break;
      case 1: (split_shared && is_shared_expert(o.name) ? p.shared : p.routed).push_back(&o); break;
      default: p.out.push_back(&o); break;
    }
  }
  return p;
}

std::vector<const Op*> gemms(const std::vector<const Op*>& ops, bool row) {
  std::vector<const Op*> out;
  for (const Op* o : ops)
    if (is_gemm(*o) && row_parallel(o->name) == row) out.push_back(o);
  return out;
}

double held_dense(const LayerOps& L) {
  double p = L.embedding_params;
  for (const Op& o : L.ops) p += grad_params(o).dense;
  return p;
}
double held_expert(const LayerOps& L) {
  double p = 0;
  for (const Op& o : L.ops) p += grad_params(o).expert;
  return p;
}

}  // namespace

void PhaseBuilder::layer_forward(const LayerOps& L, bool rec, Chain& c, std::vector<Phase>& out) {
  const bool tp = plan_.tp > 1, sp = plan_.sequence_parallel && tp, tpo = plan_.tp_comm_overlap && sp;
  const bool moe_comm = L.moe && comm_.ep_comm();
  const bool shared_ov = plan_.shared_expert_overlap && moe_comm;
  const Parts p = parts_of(L, Pass::Forward, false, shared_ov);
  const int ntp = static_cast<int>(plan_.tp);
  auto tag = [&](Phase ph) {
    ph.recompute = rec;
    ph.layer = L.layer;
    return ph;
  };
  // ZeRO-3: this layer's parameters gathered on the DP stream, one layer ahead of the compute.
  int gather = -1;
  if (plan_.zero >= 3 && !rec) {
    const double t = comm_.collective(network::CollectiveKind::AllGather, comm_.dense_dp_group(), held_dense(L) * 2.0) +
                     comm_.collective(network::CollectiveKind::AllGather, comm_.expert_dp_group(), held_expert(L) * 2.0);
    gather = add(out, tag(comm(L.label + ".param_gather", PhaseKind::Dp, Time::from_seconds(t))), c.prefetch_gate());
  }
  auto wait = [&](std::vector<int> v) {
    v.push_back(gather);
    return v;
  };
  if (!L.transformer) {
    // Embedding (vocab-parallel: its output is all-reduced / reduce-scattered over TP) or the
    // output head (column-parallel over the vocabulary, its input all-gathered under SP).
    const bool head = L.label == "head";
    if (head && sp) c.frontier = {add(out, tag(comm("head.tp_gather", PhaseKind::Tp, comm_.tp_all_gather)), wait(c.frontier))};
    const int k = add(out, tag(compute(L.label, p.all, false, rec)), wait(c.frontier));
    c.frontier = {k};
    if (!head && tp)
      c.frontier = {add(out, tag(comm("embed.tp_" + std::string(sp ? "reduce_scatter" : "all_reduce"), PhaseKind::Tp,
                                      sp ? comm_.tp_reduce_scatter : comm_.tp_all_reduce)),
                        c.frontier)};
    if (!rec) c.layer_ends.push_back(c.frontier);
    return;
  }
  // --- attention block ---
  if (sp) {
    const Time t = tpo ? pipelined_residual(comm_.tp_all_gather, gemm_time(gemms(p.attn, false)), ntp) : comm_.tp_all_gather;
    c.frontier = {add(out, tag(comm(L.label + ".tp_gather", PhaseKind::Tp, t)), c.frontier)};
  }
  const int attn = add(out, tag(compute(L.label + ".attn", p.attn, false, rec)), wait(c.frontier));
  c.frontier = {attn};
  if (plan_.cp > 1) {
    Time t = comm_.cp_kv_all_gather;
    if (plan_.cp_comm == "ring") {
      Time core;
      for (const Op* o : p.attn)
        if (o->cls == OpClass::Attention) core += op_time(*o, sms_);
      const Time per_block = core / plan_.cp;
      t = comm_.cp_kv_send > per_block ? (comm_.cp_kv_send - per_block) * (plan_.cp - 1) : Time::zero();
    }
    c.frontier = {add(out, tag(comm(L.label + ".cp_kv", PhaseKind::Cp, t)), c.frontier)};
  }
  if (tp) {
    Time t = sp ? comm_.tp_reduce_scatter : comm_.tp_all_reduce;
    if (tpo) t = pipelined_residual(t, gemm_time(gemms(p.attn, true)), 4);
    c.frontier = {add(out, tag(comm(L.label + (sp ? ".tp_reduce_scatter" : ".tp_all_reduce"), PhaseKind::Tp, t)), c.frontier)};
  }
  // --- MLP / MoE block ---
  if (sp) {
    std::vector<const Op*> mlp = p.routed;
    mlp.insert(mlp.end(), p.shared.begin(), p.shared.end());
    const Time t = tpo ? pipelined_residual(comm_.tp_all_gather, gemm_time(gemms(mlp, false)), ntp) : comm_.tp_all_gather;
    c.frontier = {add(out, tag(comm(L.label + ".tp_gather", PhaseKind::Tp, t)), c.frontier)};
  }
  std::vector<const Op*> routed_and_rest = p.routed;
  if (moe_comm) {
    const std::vector<int> pre = c.frontier;
    const int disp = add(out, tag(comm(L.label + ".dispatch", PhaseKind::Ep, a2a_.dispatch_fwd)), pre);
    int shared = -1;
    if (shared_ov && !p.shared.empty()) shared = add(out, tag(compute(L.label + ".shared_experts", p.shared, true, rec)), pre);
    const int experts = add(out, tag(compute(L.label + ".experts", p.routed, false, rec)), {disp});
    const int comb = add(out, tag(comm(L.label + ".combine", PhaseKind::Ep, a2a_.combine_fwd)), {experts});
    c.frontier = {comb, shared};
  } else {
    std::vector<const Op*> mlp = p.routed;
    mlp.insert(mlp.end(), p.shared.begin(), p.shared.end());
    c.frontier = {add(out, tag(compute(L.label + (L.moe ? ".experts" : ".mlp"), mlp, false, rec)), c.frontier)};
  }
  if (tp) {
    std::vector<const Op*> mlp = p.routed;
    mlp.insert(mlp.end(), p.shared.begin(), p.shared.end());
    Time t = sp ? comm_.tp_reduce_scatter : comm_.tp_all_reduce;
    if (tpo) t = pipelined_residual(t, gemm_time(gemms(mlp, true)), 4);
    c.frontier = {add(out, tag(comm(L.label + (sp ? ".tp_reduce_scatter" : ".tp_all_reduce") + ".mlp", PhaseKind::Tp, t)),
                      c.frontier)};
  }
  if (!p.out.empty()) c.frontier = {add(out, tag(compute(L.label + ".out", p.out, false, rec)), c.frontier)};
  if (!rec) c.layer_ends.push_back(c.frontier);
}

void PhaseBuilder::layer_backward(const LayerOps& L, bool input, bool weight, Chain& c, std::vector<Phase>& out) {
  const bool tp = plan_.tp > 1 && input, sp = plan_.sequence_parallel && tp, tpo = plan_.tp_comm_overlap && sp;
  const bool moe_comm = L.moe && comm_.ep_comm() && input;
  const bool shared_ov = plan_.shared_expert_overlap && L.moe && comm_.ep_comm();
  const Parts pi = parts_of(L, Pass::BackwardInput, false, shared_ov);
  const Parts pw = parts_of(L, Pass::BackwardWeight, false, shared_ov);
  const Parts pr = parts_of(L, Pass::Forward, true, false);
  const int ntp = static_cast<int>(plan_.tp);
  auto tag = [&](Phase ph) {
    ph.layer = L.layer;
    return ph;
  };
  int gather = -1;
  if (plan_.zero >= 3 && input) {
    const double t = comm_.collective(network::CollectiveKind::AllGather, comm_.dense_dp_group(), held_dense(L) * 2.0) +
                     comm_.collective(network::CollectiveKind::AllGather, comm_.expert_dp_group(), held_expert(L) * 2.0);
    gather = add(out, tag(comm(L.label + ".param_gather", PhaseKind::Dp, Time::from_seconds(t))), c.prefetch_gate());
    c.frontier.push_back(gather);
  }
  std::vector<int> wgrads;
  if (!L.transformer) {
    const bool head = L.label == "head";
    if (input && !head && sp)
      c.frontier = {add(out, tag(comm("embed.tp_gather_grad", PhaseKind::Tp, comm_.tp_all_gather)), c.frontier)};
    int dg = -1;
    if (input) {
      dg = add(out, tag(compute(L.label + ".dgrad", pi.all, false, false)), c.frontier);
      if (!head) {
        out[static_cast<std::size_t>(dg)].dense_grads += L.embedding_params;
        wgrads.push_back(dg);
      }
      c.frontier = {dg};
    }
    std::vector<int> post;
    if (head && tp)
      post.push_back(add(out, tag(comm("head.tp_" + std::string(sp ? "reduce_scatter" : "all_reduce"), PhaseKind::Tp,
                                       sp ? comm_.tp_reduce_scatter : comm_.tp_all_reduce)),
                         {dg}));
    if (weight && !pw.all.empty()) {
      const int wg = add(out, tag(compute(L.label + ".wgrad", pw.all, input && tp, false)), c.frontier);
      post.push_back(wg);
      wgrads.push_back(wg);
    }
    if (!post.empty()) c.frontier = post;
  } else {
    if (input && L.recompute == Recompute::Full) layer_forward(L, true, c, out);
    if (input && !pi.out.empty()) {
      const int o = add(out, tag(compute(L.label + ".out.dgrad", pi.out, false, false)), c.frontier);
      c.frontier = {o};
    }
    // One block's backward: [SP all-gather of the output gradient] [pre-comm] [recomputed ops]
    // dgrad, then {weight-gradient, dgrad's TP collective, post-comm} side by side.
    auto block = [&](const std::string& name, const std::vector<const Op*>& dgrad_ops, const std::vector<const Op*>& wgrad_ops,
                     const std::vector<const Op*>& rec_ops, Time pre_comm, Time post_comm,
                     PhaseKind comm_kind, const std::vector<const Op*>& shared_ops, Time cp_comm) {
      std::vector<int> extra;  // phases the block's end waits for besides the chain
      if (input && sp) {
        Time t = comm_.tp_all_gather;
        if (tpo) {
          Time g;
          for (const Op* o : dgrad_ops)
            if (is_gemm(*o) && row_parallel(o->name)) g += op_time(*o, sms_);
          t = pipelined_residual(t, g, ntp);
        }
        c.frontier = {add(out, tag(comm(L.label + name + ".tp_gather_grad", PhaseKind::Tp, t)), c.frontier)};
      }
      const std::vector<int> before_pre = c.frontier;
      if (input && pre_comm > Time::zero())
        c.frontier = {add(out, tag(comm(L.label + ".combine_grad", comm_kind, pre_comm)), c.frontier)};
      if (!shared_ops.empty()) extra.push_back(add(out, tag(compute(L.label + ".shared_experts.bwd", shared_ops, true, false)), before_pre));
      if (input && !rec_ops.empty() && L.recompute != Recompute::Full) {
        Phase r = tag(compute(L.label + name + ".recompute", rec_ops, false, true));
        c.frontier = {add(out, std::move(r), c.frontier)};
      }
      if (input && cp_comm > Time::zero())
        c.frontier = {add(out, tag(comm(L.label + ".cp_kv_grad", PhaseKind::Cp, cp_comm)), c.frontier)};
      const std::vector<int> before_dgrad = c.frontier;
      int dg = -1;
      if (input) {
        dg = add(out, tag(compute(L.label + name + ".dgrad", dgrad_ops, false, false)), c.frontier);
      }
      std::vector<int> post = extra;
      int gather_input = -1;
      if (tp) {
        if (sp) {
          // The saved (sequence-split) input is all-gathered again for the weight gradient, beside
          // the input-gradient GEMM; the input gradient is reduce-scattered beside the wgrad GEMM.
          gather_input = add(out, tag(comm(L.label + name + ".tp_gather_input", PhaseKind::Tp, comm_.tp_all_gather)), before_dgrad);
          post.push_back(add(out, tag(comm(L.label + name + ".tp_reduce_scatter_grad", PhaseKind::Tp, comm_.tp_reduce_scatter)), {dg}));
        } else {
          post.push_back(add(out, tag(comm(L.label + name + ".tp_all_reduce_grad", PhaseKind::Tp, comm_.tp_all_reduce)), {dg}));
        }
      }
      if (input && post_comm > Time::zero())
        post.push_back(add(out, tag(comm(L.label + ".dispatch_grad", comm_kind, post_comm)), {dg}));
      if (weight && !wgrad_ops.empty()) {
        const bool beside = input && (tp || post_comm > Time::zero());
        std::vector<int> w_after = input ? std::vector<int>{dg, gather_input} : c.frontier;
        const int wg = add(out, tag(compute(L.label + name + ".wgrad", wgrad_ops, beside, false)), w_after);
        post.push_back(wg);
        wgrads.push_back(wg);
      }
      if (input) post.push_back(dg);
      if (!post.empty()) c.frontier = post;
    };
    const AllToAllTimes& a = a2a_;
    std::vector<const Op*> mlp_i = pi.routed, mlp_w = pw.routed, shared_bwd;
    if (shared_ov) {
      shared_bwd = pi.shared;
      if (weight) shared_bwd.insert(shared_bwd.end(), pw.shared.begin(), pw.shared.end());
      if (!input) shared_bwd.clear();
      if (!input) mlp_w.insert(mlp_w.end(), pw.shared.begin(), pw.shared.end());
    } else {
      mlp_i.insert(mlp_i.end(), pi.shared.begin(), pi.shared.end());
      mlp_w.insert(mlp_w.end(), pw.shared.begin(), pw.shared.end());
    }
    std::vector<const Op*> rec1, rec0;
    for (const Op* o : pr.all) (part_of(o->name) == 0 ? rec0 : rec1).push_back(o);
    block(L.moe ? ".experts" : ".mlp", mlp_i, mlp_w, rec1, moe_comm ? a.combine_bwd : Time::zero(),
          moe_comm ? a.dispatch_bwd : Time::zero(), PhaseKind::Ep, shared_bwd, Time::zero());
    Time cp_t;
    if (plan_.cp > 1 && input) {
      cp_t = comm_.cp_kv_all_gather + comm_.cp_kv_reduce_scatter;
      if (plan_.cp_comm == "ring") {
        Time core;
        for (const Op* o : pi.attn)
          if (o->cls == OpClass::Attention) core += op_time(*o, sms_);
        const Time per_block = core / plan_.cp;
        const Time kv2 = comm_.cp_kv_send * 2;
        cp_t = kv2 > per_block ? (kv2 - per_block) * (plan_.cp - 1) : Time::zero();
      }
    }
    block(".attn", pi.attn, pw.attn, rec0, Time::zero(), Time::zero(), PhaseKind::Ep, {}, cp_t);
  }
  c.layer_ends.push_back(c.frontier);
  // ZeRO-2/3: this layer's gradients reduce-scattered on the DP stream once its wgrads are done;
  // without overlap_grad_reduce the next layer's backward waits for it.
  if (plan_.zero >= 2 && weight && !wgrads.empty()) {
    const double gb = dtype_bytes(tr_.precision.gradients);
    const double t =
        comm_.collective(network::CollectiveKind::ReduceScatter, comm_.dense_dp_group(), held_dense(L) * gb) +
        comm_.collective(network::CollectiveKind::ReduceScatter, comm_.expert_dp_group(), held_expert(L) * gb);
    const int rs = add(out, tag(comm(L.label + ".grad_reduce_scatter", PhaseKind::Dp, Time::from_seconds(t))), wgrads);
    if (plan_.overlap_grad_reduce) c.grad_rs.push_back(rs);
    else c.frontier = {rs};
  }
}

StagePhases PhaseBuilder::stage(const std::vector<LayerOps>& layers, double background_pp_bytes) {
  struct InStage {  // the per-call tallies by op position (see phases.hpp), emptied on any exit
    PhaseBuilder& b;
    InStage(PhaseBuilder& pb, const std::vector<LayerOps>& layers) : b(pb) {
      std::size_t n = 0;
      for (const auto& L : layers) {
        b.stage_ranges_.push_back(OpRange{L.ops.data(), L.ops.data() + L.ops.size(), n});
        n += L.ops.size();
      }
      b.stage_slots_.assign(2 * n, -1);
      b.in_stage_ = true;
    }
    ~InStage() {
      b.in_stage_ = false;
      b.stage_ranges_.clear();
      b.stage_slots_.clear();
    }
  } in_stage(*this, layers);
  StagePhases S;
  int moe = 0;
  for (const auto& L : layers) moe += L.moe && comm_.ep_comm() ? 1 : 0;
  S.moe_layers = moe;
  // Pipeline sends of the neighbouring stages cross the NIC beside this stage's all-to-all: one
  // activation in and one out per op, spread over its 2 x (MoE layers) all-to-all phases.
  const double bg = background_pp_bytes >= 0 ? background_pp_bytes
                    : comm_.p2p_over_nic && moe > 0 ? comm_.p2p_bytes / (2.0 * moe) : 0.0;
  if (comm_.ep_comm()) a2a_ = comm_.alltoall(bg);
  Chain f;
  for (const auto& L : layers) {
    LayerParamsHeld lp{L.label, held_dense(L), held_expert(L), 0, -1};
    for (const Op& o : L.ops)
      if (o.dtype == "fp8") {
        const GradParams g = grad_params(o);
        lp.fp8 += g.dense + g.expert;
      }
    const std::size_t before = S.forward.size();
    layer_forward(L, false, f, S.forward);
    for (std::size_t i = before; i < S.forward.size(); ++i)
      if (S.forward[i].kind == PhaseKind::Compute) {
        lp.first_forward_phase = static_cast<int>(i);
        break;
      }
    S.params.push_back(lp);
    for (const auto& o : L.ops) (o.pass == Pass::Forward ? S.flops_fwd : S.flops_bwd) += o.flops;
  }
  auto backward = [&](bool input, bool weight, std::vector<Phase>& out) {
    Chain b;
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) layer_backward(*it, input, weight, b, out);
    (void)b.grad_rs;
  };
  backward(true, true, S.backward);
  backward(true, false, S.backward_input);
  backward(false, true, S.backward_weight);
  return S;
}

}  // namespace trainsim::step
