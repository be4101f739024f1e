#include "model/memory.hpp"

#include <algorithm>
#include <numeric>

#include "model/layer_split.hpp"
#include "model/recompute.hpp"

namespace trainsim {

namespace {
using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }
}  // namespace

std::vector<SavedTensor> saved_tensors(const ModelConfig& m, i64 layer, const PrecisionConfig& p) {
  const double h = d(m.hidden);
  const bool fp8 = p.activation_cache == "fp8";
  // A cached GEMM input of width w: FP8 plus one FP32 scale per 128 values, or BF16.
  auto cache = [&](double w) { return fp8 ? w * (1.0 + 4.0 / 128.0) : 2.0 * w; };
  const double bf16 = 2.0;
  using S = TpSplit;
  std::vector<SavedTensor> t;
  auto add = [&](const char* what, std::string producer, OpClass cls, double bytes, TpSplit split) {
    t.push_back(SavedTensor{what, std::move(producer), cls, bytes, split});
  };
  add("layer input (residual stream)", "", OpClass::Elementwise, h * bf16, S::Sequence);
  // --- attention branch ---
  const auto& a = m.attention;
  add("attention-norm output", "attn.norm", OpClass::Norm, cache(h), S::Sequence);
  if (a.kind == AttentionKind::MLA) {
    const double H = d(a.heads);
    if (a.q_lora_rank > 0) {
      add("q latent", "attn.q_a", OpClass::Gemm, d(a.q_lora_rank) * bf16, S::Replicated);
      add("q-norm output", "attn.q_norm", OpClass::Norm, cache(d(a.q_lora_rank)), S::Replicated);
      add("q", "attn.q_b", OpClass::Gemm, H * d(a.qk_dim()) * bf16, S::Tensor);
    } else {
      add("q", "attn.q", OpClass::Gemm, H * d(a.qk_dim()) * bf16, S::Tensor);
    }
    add("kv latent + rope key", "attn.kv_a", OpClass::Gemm, d(a.kv_lora_rank + a.qk_rope_head_dim) * bf16, S::Replicated);
    add("kv-norm output", "attn.kv_norm", OpClass::Norm, cache(d(a.kv_lora_rank)), S::Replicated);
    add("k, v", "attn.kv_b", OpClass::Gemm, H * d(a.qk_dim() + a.v_dim()) * bf16, S::Tensor);
  } else {
    add("q, k, v", "attn.qkv", OpClass::Gemm, d(a.heads * a.head_dim + 2 * a.kv_heads * a.head_dim) * bf16, S::Tensor);
  }
  // O is the input of the output projection, which keeps it for its weight gradient; the
  // log-sum-exp is the attention core's own state (FlashAttention stores no score matrix).
  add("attention output O", "attn.o.input", OpClass::Gemm, d(a.heads * a.v_dim()) * bf16, S::Tensor);
  add("attention log-sum-exp", "attn.core", OpClass::Attention, d(a.heads) * 4.0, S::Tensor);
  // --- FFN branch ---
  add("residual after attention", "attn.residual", OpClass::Elementwise, h * bf16, S::Sequence);
  add("ffn-norm output", "ffn.norm", OpClass::Norm, cache(h), S::Sequence);
  auto mlp = [&](const std::string& name, double rows_per_token, i64 inter) {
    if (m.mlp.activation == Activation::SwiGLU) {
      add("SwiGLU input (gate, up)", name + ".up_gate", OpClass::Gemm, rows_per_token * cache(2.0 * d(inter)), S::Tensor);
      add("SwiGLU output", name + ".swiglu", OpClass::Elementwise, rows_per_token * cache(d(inter)), S::Tensor);
    } else {
      const char* act = m.mlp.activation == Activation::GELU ? ".gelu" : ".sqrelu";
      add("activation input", name + ".up", OpClass::Gemm, rows_per_token * cache(d(inter)), S::Tensor);
      add("activation output", name + act, OpClass::Elementwise, rows_per_token * cache(d(inter)), S::Tensor);
    }
  };
  if (m.is_moe_layer(layer)) {
    const auto& e = m.moe;
    add("router probabilities, top-k ids and weights", "moe.topk", OpClass::Router,
        d(e.routed_experts) * 4.0 + d(e.top_k) * 8.0, S::Replicated);
    add("dispatched token copies (expert GEMM input)", "moe.permute", OpClass::Permute, d(e.top_k) * cache(h), S::Tensor);
    mlp("moe.experts", d(e.top_k), e.expert_intermediate);
    if (e.shared_experts > 0) mlp("moe.shared", 1.0, e.shared_experts * e.expert_intermediate);
  } else {
    mlp("mlp", 1.0, m.mlp.intermediate);
  }
  return t;
}

double activation_bytes_per_token(const ModelConfig& m, i64 layer, Recompute rc, const PrecisionConfig& p, i64 tp,
                                  bool sequence_parallel) {
  double bytes = 0;
  for (const SavedTensor& t : saved_tensors(m, layer, p)) {
    // Kept unless its producer is re-run in the backward; full recomputation keeps the layer input only.
    if (!t.producer.empty() && (rc == Recompute::Full || recomputed(t.producer, t.cls, rc))) continue;
    double div = 1;
    if (t.split == TpSplit::Tensor || (t.split == TpSplit::Sequence && sequence_parallel)) div = d(tp);
    bytes += t.bytes_per_token / div;
  }
  return bytes;
}

double inflight_microbatches(const PlanConfig& plan, i64 r, i64 M) {
  const i64 pp = plan.pp;
  if (plan.schedule == "gpipe") return d(M);
  // Combined 1F1B (ep_comm_overlap) runs the next forward beside each backward: one more in flight.
  const i64 extra = plan.ep_comm_overlap ? 1 : 0;
  if (plan.schedule == "1f1b" || plan.schedule == "zb1p") return d(std::min(M, pp - r + extra));
  if (plan.schedule == "interleaved") {
    const i64 v = plan.vpp;
    const i64 chunks = std::min(M * v, 2 * (pp - r - 1) + (v - 1) * pp + 1 + extra);
    return d(chunks) / d(v);
  }
  // dualpipe / dualpipev: PP+1 chunk activations per device (DeepSeek-V3 Table 2; DualPipe
  // README), PP the pipeline stages: pp for dualpipe, 2*pp for dualpipev, whose ranks each run M
  // forwards of each of their two chunks (so at most 2M are live).
  if (plan.schedule == "dualpipev") return d(std::min(2 * M, 2 * pp + 1));
  return d(std::min(M, pp + 1));
}

MemoryReport memory_per_gpu(const Scenario& s) { return memory_per_gpu(s, stage_layers(s, s.plan, s.training)); }

MemoryReport memory_per_gpu(const Scenario& s, const std::vector<i64>& split) {
  const auto& m = s.model;
  const auto& p = s.plan;
  const auto& prec = s.training.precision;
  MemoryReport rep;
  rep.capacity = s.hardware.hbm_capacity.value;

  std::vector<i64> first_layer(split.size(), 0);
  for (std::size_t i = 1; i < split.size(); ++i) first_layer[i] = first_layer[i - 1] + split[i - 1];
  const i64 nstages = static_cast<i64>(split.size());

  const bool dual = p.schedule == "dualpipe" || p.schedule == "dualpipev";
  const i64 M = s.microbatches_per_step(s.training.global_batch);
  const double tokens = d(p.micro_batch * s.training.seq_len) / d(p.cp);

  // Sharding degrees. DualPipe holds every stage twice (on ranks r and P-1-r); the two copies
  // reduce their gradients together, so ZeRO shards over both (step/README.md, "DP").
  const double copies = p.schedule == "dualpipe" ? 2.0 : 1.0;
  const double dense_dp = d(p.dp * p.cp) * copies;
  const double expert_dp = std::max(1.0, d(p.dp * p.tp * p.cp) / d(p.ep)) * copies;
  const double w_bytes = 2.0;  // BF16 working weights
  const double g_bytes = dtype_bytes(prec.gradients);
  const double o_bytes = (prec.master_weights == "fp32" ? 4.0 : 0.0) + 2.0 * dtype_bytes(prec.optimizer_moments);
  auto add_params = [&](StageMemory& sm, double params, double dp_degree) {
    sm.params += params;
    sm.weights += params * w_bytes / (p.zero >= 3 ? dp_degree : 1.0);
    sm.gradients += params * g_bytes / (p.zero >= 2 ? dp_degree : 1.0);
    sm.optimizer += params * o_bytes / (p.zero >= 1 ? dp_degree : 1.0);
  };

  for (i64 r = 0; r < p.pp; ++r) {
    StageMemory sm;
    sm.rank = r;
    if (dual) {
      sm.stages = {r, nstages - 1 - r};
    } else {
      for (i64 c = r; c < nstages; c += p.pp) sm.stages.push_back(c);
    }
    sm.inflight = inflight_microbatches(p, r, M);
    // Each held stage gets an equal share of the in-flight count.
    const double share = sm.inflight / d(sm.stages.size());
    for (i64 st : sm.stages) {
      const auto su = static_cast<std::size_t>(st);
      for (i64 l = first_layer[su]; l < first_layer[su] + split[su]; ++l) {
        ++sm.layers;
        const LayerParams lp = layer_params(m, l);
        add_params(sm, lp.dense / d(p.tp), dense_dp);
        add_params(sm, lp.routed / d(p.ep), expert_dp);
        const Recompute rc = layer_recompute(p, l - first_layer[su]);
        sm.activations += share * tokens * activation_bytes_per_token(m, l, rc, prec, p.tp, p.sequence_parallel);
      }
      if (st == 0) {
        sm.has_embedding = true;
        add_params(sm, embedding_params(m) / d(p.tp), dense_dp);
      }
      if (st == nstages - 1) {
        sm.has_head = true;
        add_params(sm, head_params(m) / d(p.tp), dense_dp);
        // Transient logits (BF16) and their FP32 gradient for one micro-batch.
        sm.activations += tokens * d(m.vocab) * (2.0 + 4.0) / d(p.tp);
        if (m.mtp_depth > 0) {
          sm.has_mtp = true;
          const LayerParams lp = layer_params(m, m.layers - 1);
          for (i64 i = 0; i < m.mtp_depth; ++i) {
            add_params(sm, (lp.dense + mtp_extra_params(m)) / d(p.tp), dense_dp);
            add_params(sm, lp.routed / d(p.ep), expert_dp);
            sm.activations += share * tokens *
                              (activation_bytes_per_token(m, m.layers - 1, p.recompute, prec, p.tp, p.sequence_parallel) +
                               2.0 * d(m.hidden) * 2.0 / d(p.tp));
          }
        }
      }
    }
    sm.buffers = p.comm_buffers;
    rep.peak = std::max(rep.peak, sm.total());
    rep.ranks.push_back(std::move(sm));
  }
  rep.fits = rep.peak <= rep.capacity;
  return rep;
}

}  // namespace trainsim
