#include "model/model_math.hpp"

namespace trainsim {

const char* pass_name(Pass p) {
  switch (p) {
    case Pass::Forward: return "fwd";
    case Pass::BackwardInput: return "bwd_input";
    case Pass::BackwardWeight: return "bwd_weight";
  }
  return "?";
}

const char* op_class_name(OpClass c) {
  switch (c) {
    case OpClass::Gemm: return "gemm";
    case OpClass::GroupedGemm: return "grouped_gemm";
    case OpClass::Attention: return "attention";
    case OpClass::Norm: return "norm";
    case OpClass::Elementwise: return "elementwise";
    case OpClass::Router: return "router";
    case OpClass::Permute: return "permute";
    case OpClass::Embedding: return "embedding";
    case OpClass::Loss: return "loss";
  }
  return "?";
}

const char* layer_kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::Dense: return "dense";
    case LayerKind::Moe: return "moe";
    case LayerKind::Mtp: return "mtp";
    case LayerKind::Embedding: return "embedding";
    case LayerKind::Head: return "head";
  }
  return "?";
}

namespace {

using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }

// Norm parameters for a vector of width w.
double norm_params(const ModelConfig& m, i64 w) { return m.norm == NormKind::RMSNorm ? d(w) : 2.0 * d(w); }

double attention_params(const ModelConfig& m) {
  const auto& a = m.attention;
  const double h = d(m.hidden);
  if (a.kind == AttentionKind::MLA) {
    const double H = d(a.heads);
    double p = 0;
    if (a.q_lora_rank > 0)
      p += h * d(a.q_lora_rank) + norm_params(m, a.q_lora_rank) + d(a.q_lora_rank) * H * d(a.qk_dim());
    else
      p += h * H * d(a.qk_dim());
    p += h * d(a.kv_lora_rank + a.qk_rope_head_dim) + norm_params(m, a.kv_lora_rank);
    p += d(a.kv_lora_rank) * H * d(a.qk_nope_head_dim + a.v_head_dim);
    p += H * d(a.v_head_dim) * h;
    return p;
  }
  const double q = d(a.heads * a.head_dim), kv = d(a.kv_heads * a.head_dim);
  double p = h * q + 2 * h * kv + q * h;
  if (a.qkv_bias) p += q + 2 * kv;
  if (a.bias) p += h;  // the output projection's bias
  return p;
}

double mlp_params(const ModelConfig& m, i64 inter, bool bias) {
  const double h = d(m.hidden), I = d(inter);
  if (m.mlp.activation == Activation::SwiGLU) return 3 * h * I + (bias ? 2 * I + h : 0);
  return 2 * h * I + (bias ? I + h : 0);
}

double gate_params(const ModelConfig& m) {
  // Router weights, plus the per-expert score-correction bias of sigmoid gating (DeepSeek-V3's
  // auxiliary-loss-free balancing).
  return d(m.hidden) * d(m.moe.routed_experts) + (m.moe.gate == "sigmoid" ? d(m.moe.routed_experts) : 0);
}

}  // namespace

double embedding_params(const ModelConfig& m) {
  return d(m.vocab) * d(m.hidden) + (m.learned_positions ? d(m.max_position) * d(m.hidden) : 0);
}

double head_params(const ModelConfig& m) {
  return (m.tied_embeddings ? 0.0 : d(m.vocab) * d(m.hidden)) + norm_params(m, m.hidden);
}

LayerParams layer_params(const ModelConfig& m, i64 layer) {
  LayerParams lp;
  lp.dense = attention_params(m) + 2 * norm_params(m, m.hidden);
  if (m.is_moe_layer(layer)) {
    const double expert = mlp_params(m, m.moe.expert_intermediate, m.mlp.bias);
    lp.dense += d(m.moe.shared_experts) * expert + gate_params(m);
    lp.routed = d(m.moe.routed_experts) * expert;
  } else {
    lp.dense += mlp_params(m, m.mlp.intermediate, m.mlp.bias);
  }
  return lp;
}

double mtp_extra_params(const ModelConfig& m) {
  // DeepSeek-V3 MTP module (§2.2): RMSNorm of the hidden state and of the next token's
  // embedding (enorm, hnorm), the projection M_k of their concatenation (2h -> h), and the
  // shared head's own final norm. Embedding and output head are shared with the main model.
  const double h = d(m.hidden);
  return 2 * norm_params(m, m.hidden) + 2 * h * h + norm_params(m, m.hidden);
}

ParamCounts count_params(const ModelConfig& m) {
  ParamCounts c;
  c.embedding = embedding_params(m);
  c.head = head_params(m);
  const double expert = m.moe.enabled ? mlp_params(m, m.moe.expert_intermediate, m.mlp.bias) : 0;
  for (i64 l = 0; l < m.layers; ++l) {
    const double attn = attention_params(m) + 2 * norm_params(m, m.hidden);
    c.attention += attn;
    double lt = attn, la = attn;
    if (m.is_moe_layer(l)) {
      const double shared = d(m.moe.shared_experts) * expert;
      const double routed = d(m.moe.routed_experts) * expert;
      const double gate = gate_params(m);
      c.moe_shared += shared;
      c.moe_routed += routed;
      c.moe_gate += gate;
      lt += shared + routed + gate;
      la += shared + d(m.moe.top_k) * expert + gate;
    } else {
      const double mlp = mlp_params(m, m.mlp.intermediate, m.mlp.bias);
      c.dense_mlp += mlp;
      lt += mlp;
      la += mlp;
    }
    c.layer_total.push_back(lt);
    c.layer_active.push_back(la);
  }
  double layers_total = 0, layers_active = 0;
  for (std::size_t i = 0; i < c.layer_total.size(); ++i) {
    layers_total += c.layer_total[i];
    layers_active += c.layer_active[i];
  }
  c.total = c.embedding + c.head + layers_total;
  c.active = c.embedding + c.head + layers_active;
  if (m.mtp_depth > 0) {
    // An MTP module's transformer block has the architecture of the main model's last layer.
    const i64 last = m.layers - 1;
    const double block_total = c.layer_total[static_cast<std::size_t>(last)];
    const double block_active = c.layer_active[static_cast<std::size_t>(last)];
    c.mtp_total = d(m.mtp_depth) * (mtp_extra_params(m) + block_total);
    c.mtp_active = d(m.mtp_depth) * (mtp_extra_params(m) + block_active);
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
namespace {

struct OpBuilder {
  std::vector<Op>& ops;
  const std::string& prefix;

  // A linear layer: forward GEMM and its two backward GEMMs. `groups` > 1: grouped GEMM whose
  // rows `m` are spread over the groups (routed experts). Operand bytes: inputs in `dt`, output BF16.
  void linear(const std::string& name, i64 m, i64 n, i64 k, const std::string& dt, i64 groups = 1) {
    const double f = 2.0 * d(m) * d(n) * d(k);
    const double b = dtype_bytes(dt);
    const OpClass cls = groups > 1 ? OpClass::GroupedGemm : OpClass::Gemm;
    const double wbytes = d(n) * d(k) * d(groups);
    auto mk = [&](Pass p, i64 mm, i64 nn, i64 kk, double bytes) {
      Op o;
      o.name = prefix + name;
      o.cls = cls;
      o.pass = p;
      o.m = mm, o.n = nn, o.k = kk;
      o.groups = groups;
      o.dtype = dt;
      o.flops = o.flops_full = f;
      o.bytes = bytes;
      ops.push_back(std::move(o));
    };
    // fwd: read X (m×k) and W, write Y (m×n, BF16)
    mk(Pass::Forward, m, n, k, d(m) * d(k) * b + wbytes * b + d(m) * d(n) * 2);
    // dX = dY·Wᵀ: read dY (m×n) and W, write dX (m×k, BF16)
    mk(Pass::BackwardInput, m, k, n, d(m) * d(n) * b + wbytes * b + d(m) * d(k) * 2);
    // dW = Xᵀ·dY: for grouped GEMMs m counts rows over all groups; written as FP32 gradient.
    mk(Pass::BackwardWeight, k, n, m, d(m) * d(k) * b + d(m) * d(n) * b + wbytes * 4);
    if (dt == "fp8") {
      // FP8 GEMM inputs are quantised on the fly (DeepSeek-V3 §3.3.2: 1x128 activation tiles,
      // one FP32 scale per 128 values): memory-bound casts, one per operand that is not
      // already FP8. Forward: X (BF16 -> FP8). Backward-input: dY. Backward-weight: the
      // transposed tiles of X (from its FP8 cache) and of dY that the weight GEMM reads.
      const double q = 1.0 + 4.0 / 128.0;  // FP8 byte + scale share
      auto cast = [&](Pass p, double elems, double in_bytes) {
        Op o;
        o.name = prefix + name + ".quant";
        o.cls = OpClass::Elementwise;
        o.pass = p;
        o.dtype = "fp8";
        o.bytes = elems * (in_bytes + q);
        ops.push_back(std::move(o));
      };
      cast(Pass::Forward, d(m) * d(k), 2.0);
      cast(Pass::BackwardInput, d(m) * d(n), 2.0);
      cast(Pass::BackwardWeight, d(m) * d(k), q);
      cast(Pass::BackwardWeight, d(m) * d(n), 2.0);
    }
  }

  // A memory-bound op moving `bytes` forward; its backward moves `bwd_factor`× as much.
  void membound(const std::string& name, OpClass cls, double bytes, double bwd_factor = 2.0) {
    Op f;
    f.name = prefix + name;
    f.cls = cls;
    f.pass = Pass::Forward;
    f.dtype = "bf16";
    f.bytes = bytes;
    ops.push_back(f);
    if (bwd_factor > 0) {
      Op b = f;
      b.pass = Pass::BackwardInput;
      b.bytes = bytes * bwd_factor;
      ops.push_back(std::move(b));
    }
  }

  void attention(i64 b, i64 s, i64 heads, i64 qk, i64 v, i64 kv_heads) {
    const double full = 2.0 * d(b) * d(s) * d(s) * d(heads) * d(qk + v);
    const double causal = full / 2;
    Op f;
    f.name = prefix + "attn.core";
    f.cls = OpClass::Attention;
    f.pass = Pass::Forward;
    f.dtype = "bf16";
    f.m = s, f.n = s, f.k = qk, f.groups = b * heads;
    f.flops = causal;
    f.flops_full = full;
    // Q, K, V read and O written once (FlashAttention keeps S and P on chip).
    f.bytes = 2.0 * d(b) * d(s) * (d(heads) * d(qk) + d(kv_heads) * d(qk + v) + d(heads) * d(v));
    ops.push_back(f);
    Op bw = f;
    bw.pass = Pass::BackwardInput;
    bw.flops = 2 * causal;
    bw.flops_full = 2 * full;
    bw.bytes = 2 * f.bytes;
    ops.push_back(std::move(bw));
  }
};

void add_attention(const ModelConfig& m, OpBuilder& B, const OpContext& ctx) {
  const auto& a = m.attention;
  const i64 T = ctx.tokens(), h = m.hidden, H = a.heads;
  const std::string& dt = ctx.gemm_dtype;
  B.membound("attn.norm", OpClass::Norm, 2.0 * d(T) * d(h) * 2);
  if (a.kind == AttentionKind::MLA) {
    if (a.q_lora_rank > 0) {
      B.linear("attn.q_a", T, a.q_lora_rank, h, dt);
      B.membound("attn.q_norm", OpClass::Norm, 2.0 * d(T) * d(a.q_lora_rank) * 2);
      B.linear("attn.q_b", T, H * a.qk_dim(), a.q_lora_rank, dt);
    } else {
      B.linear("attn.q", T, H * a.qk_dim(), h, dt);
    }
    B.linear("attn.kv_a", T, a.kv_lora_rank + a.qk_rope_head_dim, h, dt);
    B.membound("attn.kv_norm", OpClass::Norm, 2.0 * d(T) * d(a.kv_lora_rank) * 2);
    B.linear("attn.kv_b", T, H * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank, dt);
    B.membound("attn.rope", OpClass::Elementwise, 2.0 * d(T) * d(H + 1) * d(a.qk_rope_head_dim) * 2);
  } else {
    B.linear("attn.qkv", T, (H + 2 * a.kv_heads) * a.head_dim, h, dt);
    if (!m.learned_positions)
      B.membound("attn.rope", OpClass::Elementwise, 2.0 * d(T) * d(H + a.kv_heads) * d(a.head_dim) * 2);
  }
  B.attention(ctx.micro_batch, ctx.seq_len, H, a.qk_dim(), a.v_dim(), a.kv_heads);
  B.linear("attn.o", T, h, H * a.v_dim(), dt);
  B.membound("attn.residual", OpClass::Elementwise, 3.0 * d(T) * d(h) * 2, 1.0);
}

void add_mlp(const ModelConfig& m, OpBuilder& B, const OpContext& ctx, const std::string& name, i64 rows,
             i64 inter, i64 groups) {
  const i64 h = m.hidden;
  const std::string& dt = ctx.gemm_dtype;
  if (m.mlp.activation == Activation::SwiGLU) {
    B.linear(name + ".up_gate", rows, 2 * inter, h, dt, groups);
    B.membound(name + ".swiglu", OpClass::Elementwise, 3.0 * d(rows) * d(inter) * 2);
  } else {
    // GELU or squared ReLU (Nemotron-4): one up projection, an elementwise activation.
    const char* act = m.mlp.activation == Activation::GELU ? ".gelu" : ".sqrelu";
    B.linear(name + ".up", rows, inter, h, dt, groups);
    B.membound(name + act, OpClass::Elementwise, 2.0 * d(rows) * d(inter) * 2);
  }
  B.linear(name + ".down", rows, h, inter, dt, groups);
}

void add_ffn(const ModelConfig& m, i64 layer, OpBuilder& B, const OpContext& ctx) {
  const i64 T = ctx.tokens(), h = m.hidden;
  B.membound("ffn.norm", OpClass::Norm, 2.0 * d(T) * d(h) * 2);
  if (m.is_moe_layer(layer)) {
    const auto& e = m.moe;
    // Gating runs in BF16 (DeepSeek-V3 §3.3.1 keeps it out of FP8).
    B.linear("moe.router", T, e.routed_experts, h, "bf16");
    B.membound("moe.topk", OpClass::Router, d(T) * d(e.routed_experts) * 4 + d(T) * d(e.top_k) * 8, 1.0);
    // Permute tokens into expert order (dispatch layout) and back (combine), BF16 rows.
    B.membound("moe.permute", OpClass::Permute, 2.0 * d(T) * d(e.top_k) * d(h) * 2, 1.0);
    add_mlp(m, B, ctx, "moe.experts", T * e.top_k, e.expert_intermediate, e.routed_experts);
    if (e.shared_experts > 0) add_mlp(m, B, ctx, "moe.shared", T, e.shared_experts * e.expert_intermediate, 1);
    B.membound("moe.unpermute", OpClass::Permute, 2.0 * d(T) * d(e.top_k) * d(h) * 2, 1.0);
  } else {
    add_mlp(m, B, ctx, "mlp", T, m.mlp.intermediate, 1);
  }
  B.membound("ffn.residual", OpClass::Elementwise, 3.0 * d(T) * d(h) * 2, 1.0);
}

}  // namespace

std::vector<Op> layer_ops(const ModelConfig& m, i64 layer, const OpContext& ctx) {
  std::vector<Op> ops;
  const std::string prefix;
  OpBuilder B{ops, prefix};
  add_attention(m, B, ctx);
  add_ffn(m, layer, B, ctx);
  return ops;
}

std::vector<Op> mtp_ops(const ModelConfig& m, const OpContext& ctx) {
  std::vector<Op> ops;
  const std::string prefix = "mtp.";
  OpBuilder B{ops, prefix};
  const i64 T = ctx.tokens(), h = m.hidden;
  B.membound("embed", OpClass::Embedding, 2.0 * d(T) * d(h) * 2, 1.0);
  B.membound("norms", OpClass::Norm, 2.0 * 2.0 * d(T) * d(h) * 2);
  B.linear("proj", T, h, 2 * h, ctx.gemm_dtype);
  auto block = layer_ops(m, m.layers - 1, ctx);
  for (auto& o : block) {
    o.name = prefix + o.name;
    ops.push_back(std::move(o));
  }
  for (auto& o : head_ops(m, ctx)) {
    o.name = prefix + o.name;
    ops.push_back(std::move(o));
  }
  return ops;
}

std::vector<Op> embedding_ops(const ModelConfig& m, const OpContext& ctx) {
  std::vector<Op> ops;
  const std::string prefix;
  OpBuilder B{ops, prefix};
  const i64 T = ctx.tokens(), h = m.hidden;
  B.membound("embed", OpClass::Embedding, 2.0 * d(T) * d(h) * 2, 1.0);
  return ops;
}

std::vector<Op> head_ops(const ModelConfig& m, const OpContext& ctx) {
  std::vector<Op> ops;
  const std::string prefix;
  OpBuilder B{ops, prefix};
  const i64 T = ctx.tokens(), h = m.hidden;
  B.membound("final_norm", OpClass::Norm, 2.0 * d(T) * d(h) * 2);
  // The output head stays in BF16 (DeepSeek-V3 §3.3.1).
  B.linear("head", T, m.vocab, h, "bf16");
  // Softmax cross-entropy over FP32 logits: read logits, write gradients.
  B.membound("loss", OpClass::Loss, 2.0 * d(T) * d(m.vocab) * 4, 0.0);
  return ops;
}

OpTotals totals(const std::vector<Op>& ops, int pass_mask) {
  OpTotals t;
  for (const auto& o : ops) {
    if (!(pass_mask & (1 << static_cast<int>(o.pass)))) continue;
    t.flops += o.flops;
    t.flops_full += o.flops_full;
    t.bytes += o.bytes;
  }
  return t;
}

FlopsPerToken flops_per_token(const ModelConfig& m, i64 seq_len, bool include_mtp) {
  OpContext ctx;
  ctx.micro_batch = 1;
  ctx.seq_len = seq_len;
  FlopsPerToken f;
  const double T = d(seq_len);
  auto add = [&](const std::vector<Op>& ops, bool is_mtp) {
    for (const auto& o : ops) {
      const double fc = o.flops / T, ff = o.flops_full / T;
      if (o.pass == Pass::Forward) {
        f.forward_causal += fc;
        f.forward_full += ff;
      }
      f.train_causal += fc;
      f.train_full += ff;
      if (o.cls == OpClass::Attention) f.attention_train_causal += fc;
      if (is_mtp) f.mtp_train_causal += fc;
    }
  };
  for (i64 l = 0; l < m.layers; ++l) add(layer_ops(m, l, ctx), false);
  add(embedding_ops(m, ctx), false);
  add(head_ops(m, ctx), false);
  if (include_mtp)
    for (i64 i = 0; i < m.mtp_depth; ++i) add(mtp_ops(m, ctx), true);
  return f;
}

}  // namespace trainsim
