#include "model/memory.hpp"

#include <algorithm>
#include <numeric>

#include "model/layer_split.hpp"

namespace trainsim {

namespace {
using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }
}  // namespace

double activation_bytes_per_token(const ModelConfig& m, i64 layer, Recompute rc, const PrecisionConfig& p) {
  const double h = d(m.hidden);
  const bool fp8 = p.activation_cache == "fp8";
  // A cached GEMM input of width w: FP8 plus one FP32 scale per 128 values, or BF16.
  auto cache = [&](double w) { return fp8 ? w * (1.0 + 4.0 / 128.0) : 2.0 * w; };
  const double bf16 = 2.0;

  double bytes = h * bf16;  // the layer input (residual stream): always kept
  if (rc == Recompute::Full) return bytes;
  const bool norms_recomputed = rc != Recompute::None;  // selective, deepseek
  const bool act_recomputed = rc != Recompute::None;
  const bool mla_up_recomputed = rc == Recompute::DeepSeek;

  // --- attention branch ---
  const auto& a = m.attention;
  if (!norms_recomputed) bytes += cache(h);  // attention-norm output, input of the first GEMMs
  if (a.kind == AttentionKind::MLA) {
    const double H = d(a.heads);
    if (a.q_lora_rank > 0) {
      bytes += d(a.q_lora_rank) * bf16;                              // q latent (q_norm input)
      if (!norms_recomputed) bytes += cache(d(a.q_lora_rank));       // q_norm output (q_b input)
    }
    bytes += d(a.kv_lora_rank + a.qk_rope_head_dim) * bf16;          // kv latent + rope key
    if (!norms_recomputed) bytes += cache(d(a.kv_lora_rank));        // kv_norm output (kv_b input)
    if (!mla_up_recomputed) bytes += H * d(2 * a.qk_dim() + a.v_dim()) * bf16;  // q, k, v
  } else {
    bytes += d(a.heads * a.head_dim + 2 * a.kv_heads * a.head_dim) * bf16;      // q, k, v
  }
  bytes += d(a.heads * a.v_dim()) * bf16 + d(a.heads) * 4.0;  // attention output O (o-proj input) + LSE

  // --- FFN branch ---
  bytes += h * bf16;                         // residual stream after attention (ffn-norm input)
  if (!norms_recomputed) bytes += cache(h);  // ffn-norm output (input of up / router / shared)
  auto mlp = [&](double rows_per_token, i64 inter) {
    if (m.mlp.activation == Activation::SwiGLU) {
      double b = cache(2.0 * d(inter));           // SwiGLU input (gate and up)
      if (!act_recomputed) b += cache(d(inter));  // SwiGLU output (down input)
      return rows_per_token * b;
    }
    double b = cache(d(inter));
    if (!act_recomputed) b += cache(d(inter));
    return rows_per_token * b;
  };
  if (m.is_moe_layer(layer)) {
    const auto& e = m.moe;
    bytes += d(e.routed_experts) * 4.0 + d(e.top_k) * 8.0;  // router probabilities, top-k ids/weights
    bytes += d(e.top_k) * cache(h);                         // dispatched copies: expert GEMM input
    bytes += mlp(d(e.top_k), e.expert_intermediate);
    if (e.shared_experts > 0) bytes += mlp(1.0, e.shared_experts * e.expert_intermediate);
  } else {
    bytes += mlp(1.0, m.mlp.intermediate);
  }
  return bytes;
}

double inflight_microbatches(const PlanConfig& plan, i64 r, i64 M) {
  const i64 pp = plan.pp;
  if (plan.schedule == "gpipe") return d(M);
  if (plan.schedule == "1f1b" || plan.schedule == "zb1p") return d(std::min(M, pp - r));
  if (plan.schedule == "interleaved") {
    const i64 v = plan.vpp;
    const i64 chunks = std::min(M * v, 2 * (pp - r - 1) + (v - 1) * pp + 1);
    return d(chunks) / d(v);
  }
  // dualpipe / dualpipev: PP+1 chunk activations per device (DeepSeek-V3 Table 2; DualPipe
  // README), PP the pipeline stages: pp for dualpipe, 2*pp for dualpipev, whose ranks each run M
  // forwards of each of their two chunks (so at most 2M are live).
  if (plan.schedule == "dualpipev") return d(std::min(2 * M, 2 * pp + 1));
  return d(std::min(M, pp + 1));
}

MemoryReport memory_per_gpu(const Scenario& s) {
  const auto& m = s.model;
  const auto& p = s.plan;
  const auto& prec = s.training.precision;
  MemoryReport rep;
  rep.capacity = s.hardware.hbm_capacity.value;

  const std::vector<i64> split = stage_layers(m, p, s.training.seq_len);
  std::vector<i64> first_layer(split.size(), 0);
  for (std::size_t i = 1; i < split.size(); ++i) first_layer[i] = first_layer[i - 1] + split[i - 1];
  const i64 nstages = static_cast<i64>(split.size());

  const bool dual = p.schedule == "dualpipe" || p.schedule == "dualpipev";
  const i64 M = s.microbatches_per_step(s.training.global_batch);
  const double tokens = d(p.micro_batch * s.training.seq_len) / d(p.cp);

  // Sharding degrees.
  const double dense_dp = d(p.dp * p.cp);
  const double expert_dp = std::max(1.0, d(p.dp * p.tp * p.cp) / d(p.ep));
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
        sm.activations += share * tokens * activation_bytes_per_token(m, l, p.recompute, prec) / d(p.tp);
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
                              (activation_bytes_per_token(m, m.layers - 1, p.recompute, prec) + 2.0 * d(m.hidden) * 2.0) /
                              d(p.tp);
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
