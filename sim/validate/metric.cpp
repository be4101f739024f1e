#include "validate/metric.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace trainsim::validate {

const std::vector<Metric>& metrics() {
  static const std::vector<Metric> all = {
      {"megatron_eq3_tflops_per_gpu", "TFLOP/s/GPU (eq. 3)", "TFLOP/s",
       "F / (step time x GPUs), F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) FLOPs per step (B batch in sequences, "
       "s sequence length, l layers, h hidden size, V vocabulary; the recomputed forward included)",
       "Narayanan et al., SC'21 (arXiv 2104.04473) §5.1, eq. 3", Dim::FlopRate, 1e-12, false},
      {"tokens_per_s_per_gpu", "tokens/s/GPU", "tokens/s", "global batch x sequence length / (step time x GPUs)",
       "NeMo performance summary (NVIDIA/NeMo docs/source/performance/performance_summary.md)", std::nullopt, 1,
       false},
      {"step_time", "step time", "s", "the simulated step (iteration) at the case's global batch",
       "DGX Cloud recipes' train_step_timing; Nemotron-4 15B report Table 2 iteration time", Dim::Duration, 1, false},
      {"pretraining_gpu_hours", "GPU-hours (pre-training)", "GPU-hours",
       "GPUs x wall-clock hours of the pre-training phases, the whole run simulated step by step with its batch ramp",
       "DeepSeek-V3 Technical Report Table 1", std::nullopt, 1, true},
  };
  return all;
}

const Metric* find_metric(std::string_view name) {
  for (const auto& m : metrics())
    if (name == m.name) return &m;
  return nullptr;
}

double megatron_eq3_flops(double B, double s, double l, double h, double V) {
  return 96.0 * B * s * l * h * h * (1.0 + s / (6.0 * h) + V / (16.0 * l * h));
}

std::string metric_inapplicable(const Metric& m, const Scenario& sc) {
  if (std::string_view(m.name) != "megatron_eq3_tflops_per_gpu") return "";
  const ModelConfig& md = sc.model;
  if (md.moe.enabled) return fmt::format("model '{}' is a mixture of experts", md.name);
  if (md.attention.kind != AttentionKind::MHA) return fmt::format("model '{}' does not use multi-head attention", md.name);
  if (md.mlp.activation != Activation::GELU || md.mlp.intermediate != 4 * md.hidden)
    return fmt::format("model '{}' does not have a GELU MLP of 4 x hidden", md.name);
  if (md.attention.heads * md.attention.head_dim != md.hidden)
    return fmt::format("model '{}' has heads x head_dim != hidden", md.name);
  return "";
}

double metric_value(const Metric& m, const Scenario& sc, double step_s, double pretraining_gpu_hours) {
  const std::string_view n = m.name;
  const double gpus = static_cast<double>(sc.cluster.gpus);
  const TrainingConfig& tr = sc.phases.front().training;
  const double batch = static_cast<double>(tr.global_batch), seq = static_cast<double>(tr.seq_len);
  if (n == "pretraining_gpu_hours") return pretraining_gpu_hours;
  TS_ASSERT(step_s > 0, "a validation metric needs a positive step time");
  if (n == "megatron_eq3_tflops_per_gpu") {
    const double f = megatron_eq3_flops(batch, seq, static_cast<double>(sc.model.layers),
                                        static_cast<double>(sc.model.hidden), static_cast<double>(sc.model.vocab));
    return f / (step_s * gpus) * m.to_display;
  }
  if (n == "tokens_per_s_per_gpu") return batch * seq / (step_s * gpus);
  if (n == "step_time") return step_s;
  TS_ASSERT(false, fmt::format("metric '{}' has no computation", m.name));
  return 0;
}

}  // namespace trainsim::validate
