#include "step/op_lists.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "core/error.hpp"
#include "model/recompute.hpp"

namespace trainsim::step {

namespace {

using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, std::string_view p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
std::string base(const std::string& name) { return starts_with(name, "mtp.") ? name.substr(4) : name; }
// The same as a view (no copy): what the name tests below read.
std::string_view base_view(const std::string& name) {
  const std::string_view v(name);
  return v.starts_with("mtp.") ? v.substr(4) : v;
}

void apply_tp(Op& o, i64 tp, bool sp) {
  if (tp <= 1) return;
  const bool gemm = o.cls == OpClass::Gemm || o.cls == OpClass::GroupedGemm;
  const std::string n = base(o.name);
  if (gemm && (column_parallel(n) || row_parallel(n))) {
    // The split dimension is N of the forward GEMM for column-parallel layers and K for
    // row-parallel ones; the backward GEMMs permute (M, N, K) as model_math.hpp documents.
    const bool col = column_parallel(n);
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
  } else if (ends_with(n, ".swiglu") || ends_with(n, ".gelu") || ends_with(n, ".sqrelu") || ends_with(n, ".rope")) {
    o.bytes /= d(tp);
  } else if (ends_with(n, ".quant")) {
    // Casts of a split GEMM's operands are split with it; those of a hidden-width input only
    // under sequence parallelism.
    const std::string g = n.substr(0, n.size() - 6);
    if (row_parallel(g) || sp) o.bytes /= d(tp);
  } else if (sp && (o.cls == OpClass::Norm || ends_with(n, ".residual"))) {
    o.bytes /= d(tp);
  }
}

}  // namespace

bool column_parallel(const std::string& name) {
  const std::string_view n = base_view(name);
  for (const char* s : {"attn.qkv", "attn.q", "attn.q_b", "attn.kv_b", ".up_gate", ".up"})
    if (n.ends_with(s)) return true;
  return n == "head" || n.ends_with(".head");
}
bool row_parallel(const std::string& name) {
  const std::string_view n = base_view(name);
  return n.ends_with("attn.o") || n.ends_with(".down");
}

int part_of(const std::string& name) {
  const std::string_view n = base_view(name);
  if (n.starts_with("moe.experts") || n.starts_with("moe.shared") || n.starts_with("mlp.")) return 1;
  if (n.starts_with("moe.unpermute") || n.starts_with("ffn.residual")) return 2;
  return 0;
}

bool is_shared_expert(const std::string& name) { return base_view(name).starts_with("moe.shared"); }

GradParams grad_params(const Op& o) {
  GradParams g;
  if (o.pass != Pass::BackwardWeight || (o.cls != OpClass::Gemm && o.cls != OpClass::GroupedGemm)) return g;
  // dW = Xᵀ·dY has the weight's shape: (k x n) of the forward GEMM = (m x n) of this op, per group.
  const double w = d(o.m) * d(o.n) * d(o.groups);
  (o.cls == OpClass::GroupedGemm ? g.expert : g.dense) = w;
  return g;
}

OpContext gpu_op_context(const PlanConfig& p, const TrainingConfig& tr) {
  OpContext oc;
  oc.micro_batch = p.micro_batch;
  oc.seq_len = tr.seq_len / p.cp;
  oc.gemm_dtype = tr.precision.gemm;
  return oc;
}

std::vector<Op> unfused_attention(const Op& core) {
  TS_ASSERT(core.cls == OpClass::Attention, "unfused_attention needs an attention-core op");
  const i64 s = core.m, skv = core.n, g = core.groups, dqk = core.k;
  // The value head dim: the fused op's full FLOPs are 2·g·s·skv·(d_qk + d_v) per forward.
  const double fwd_full = core.pass == Pass::Forward ? core.flops_full : core.flops_full / 2;
  const i64 dv = std::max<i64>(1, static_cast<i64>(std::llround(fwd_full / (2.0 * d(g) * d(s) * d(skv)))) - dqk);
  const double scores = d(g) * d(s) * d(skv);  // elements of one [g, s, skv] score matrix
  std::vector<Op> out;
  auto gemm = [&](const char* part, i64 mm, i64 nn, i64 kk) {
    Op o;
    o.name = core.name + "." + part;
    o.cls = OpClass::Gemm;
    o.pass = core.pass;
    // Batched over the g = batch x heads matrices: m counts rows over all of them (model_math.hpp's
    // grouped-GEMM convention, which the cost model divides back per group).
    o.m = mm * g, o.n = nn, o.k = kk, o.groups = g;
    o.dtype = "bf16";
    o.flops_full = 2.0 * d(g) * d(mm) * d(nn) * d(kk);
    o.flops = o.flops_full * (core.flops / core.flops_full);  // the model's causal convention, as the fused op
    o.bytes = 2.0 * d(g) * (d(mm) * d(kk) + d(nn) * d(kk) + d(mm) * d(nn));
    out.push_back(std::move(o));
  };
  auto membound = [&](const char* part, double bytes_per_score) {
    Op o;
    o.name = core.name + "." + part;
    o.cls = OpClass::Elementwise;
    o.pass = core.pass;
    o.dtype = "bf16";
    o.bytes = bytes_per_score * scores;
    out.push_back(std::move(o));
  };
  if (core.pass == Pass::Forward) {
    gemm("scores", s, skv, dqk);   // baddbmm: Q·Kᵀ, the full [s, skv] matrix written (2 B each)
    // ScaledUpperTriangMaskedSoftmax: reads the causal half, writes whole rows (zeros above the
    // diagonal): 2·½ + 2 bytes per score (megatron/fused_kernels/scaled_upper_triang_masked_softmax.h).
    membound("softmax", 3.0);
    // torch.nn.Dropout on the probabilities: reads 2 B, writes 2 B and a 1-byte mask.
    membound("dropout", 5.0);
    gemm("context", s, dv, skv);   // bmm: P·V
  } else {
    gemm("context_dgrad", s, skv, dv);  // dP = dO·Vᵀ
    gemm("context_vgrad", skv, dv, s);  // dV = Pᵀ·dO
    membound("dropout", 5.0);           // reads dP (2 B) and the mask (1 B), writes 2 B
    // softmax backward: reads the output and the gradient on the causal half, writes whole rows.
    membound("softmax", 4.0);
    gemm("scores_qgrad", s, dqk, skv);  // dQ = dS·K
    gemm("scores_kgrad", skv, dqk, s);  // dK = dSᵀ·Q
  }
  return out;
}

std::vector<Op> for_gpu(const ModelConfig& m, const PlanConfig& p, const TrainingConfig& tr, std::vector<Op> ops) {
  if (p.attention == "unfused") {
    std::vector<Op> expanded;
    expanded.reserve(ops.size() + 8);
    for (auto& o : ops) {
      if (o.cls != OpClass::Attention) {
        expanded.push_back(std::move(o));
        continue;
      }
      apply_tp(o, p.tp, p.sequence_parallel);  // heads over TP (cp > 1 is refused with unfused)
      for (auto& u : unfused_attention(o)) expanded.push_back(std::move(u));
    }
    ops = std::move(expanded);
    for (auto& o : ops) {
      if (o.cls == OpClass::GroupedGemm) o.groups = std::max<i64>(1, m.moe.routed_experts / p.ep);
      if (!starts_with(base(o.name), "attn.core")) apply_tp(o, p.tp, p.sequence_parallel);
    }
    return ops;
  }
  for (auto& o : ops) {
    if (o.cls == OpClass::GroupedGemm) o.groups = std::max<i64>(1, m.moe.routed_experts / p.ep);
    if (o.cls == OpClass::Attention && p.cp > 1) {
      // seq/cp queries attend to all seq keys: cp x the per-rank attention of a seq/cp sequence.
      o.n = tr.seq_len;
      o.flops *= d(p.cp);
      o.flops_full *= d(p.cp);
    }
    apply_tp(o, p.tp, p.sequence_parallel);
  }
  return ops;
}

std::vector<LayerOps> stage_ops(const ModelConfig& m, const PlanConfig& p, const TrainingConfig& tr,
                                const std::vector<i64>& split, i64 stage) {
  const i64 nstages = static_cast<i64>(split.size());
  const OpContext oc = gpu_op_context(p, tr);
  const i64 first = std::accumulate(split.begin(), split.begin() + stage, i64{0});
  std::vector<LayerOps> out;
  if (stage == 0) {
    LayerOps L{"embed", -1, false, false, Recompute::None, for_gpu(m, p, tr, embedding_ops(m, oc)), 0};
    L.embedding_params = embedding_params(m) / d(p.tp);
    out.push_back(std::move(L));
  }
  for (i64 l = first; l < first + split[static_cast<std::size_t>(stage)]; ++l)
    out.push_back(LayerOps{fmt::format("L{}", l), l, m.is_moe_layer(l), true, layer_recompute(p, l - first),
                           for_gpu(m, p, tr, layer_ops(m, l, oc)), 0});
  if (stage == nstages - 1) {
    for (i64 i = 0; i < m.mtp_depth; ++i) {
      LayerOps L{"mtp", m.layers, m.is_moe_layer(m.layers - 1), true, p.recompute, for_gpu(m, p, tr, mtp_ops(m, oc)), 0};
      out.push_back(std::move(L));
    }
    out.push_back(LayerOps{"head", -1, false, false, Recompute::None, for_gpu(m, p, tr, head_ops(m, oc)), 0});
  }
  return out;
}

}  // namespace trainsim::step
