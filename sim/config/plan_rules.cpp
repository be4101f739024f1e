#include "config/plan_rules.hpp"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "core/limits.hpp"
#include "schedule/schedule_rules.hpp"

namespace trainsim {

namespace {
std::optional<PlanProblem> plan_at(const char* key, std::string message) {
  return PlanProblem{false, key, std::move(message)};
}
std::optional<PlanProblem> training_at(const char* key, std::string message) {
  return PlanProblem{true, key, std::move(message)};
}
// Pipeline stages (model chunks), as config/scenario.hpp pipeline_stage_count.
std::int64_t stages_of(const PlanConfig& p) { return p.schedule == "dualpipev" ? 2 * p.pp : p.pp * p.vpp; }
}  // namespace

const char* recompute_name(Recompute r) {
  switch (r) {
    case Recompute::None: return "none";
    case Recompute::Selective: return "selective";
    case Recompute::DeepSeek: return "deepseek";
    case Recompute::Full: return "full";
  }
  return "?";
}

std::string effective_grad_buckets(const PlanConfig& p) {
  if (!p.grad_buckets.empty()) return p.grad_buckets;
  return p.schedule == "dualpipe" || p.schedule == "dualpipev" ? "uniform" : "megatron-core";
}

std::optional<PlanProblem> plan_key_problem(const PlanConfig& p) {
  if (p.grad_buckets == "megatron-core" && (p.schedule == "dualpipe" || p.schedule == "dualpipev"))
    return plan_at("grad_buckets", fmt::format("grad_buckets = \"megatron-core\" is Megatron-Core DDP's bucketing, and "
                                               "Megatron-Core does not run schedule \"{}\"; give grad_buckets = \"uniform\" "
                                               "(the default for DualPipe) or another schedule",
                                               p.schedule));
  if (p.recompute_num_layers > 0 && p.recompute != Recompute::Full)
    return plan_at("recompute_num_layers", fmt::format("recompute_num_layers applies to recompute = \"full\" (recompute is '{}')",
                                                       recompute_name(p.recompute)));
  if (p.tp_comm_overlap && !p.sequence_parallel)
    return plan_at("tp_comm_overlap", "tp_comm_overlap (TransformerEngine userbuffers) needs sequence_parallel = true");
  if (p.overlap_param_gather && p.zero < 1)
    return plan_at("overlap_param_gather", "overlap_param_gather needs a sharded optimizer (zero >= 1)");
  if (p.vpp > 1 && p.schedule != "interleaved")
    return plan_at("vpp", fmt::format("vpp {} needs schedule 'interleaved' (schedule is '{}')", p.vpp, p.schedule));
  return std::nullopt;
}

std::optional<PlanProblem> phase_layout_problem(const PlanRuleContext& c, const PlanConfig& p, const TrainingConfig& t) {
  const ModelConfig& m = c.model;
  const std::int64_t product = p.dp * p.tp * p.pp * p.cp;
  if (product != c.cluster.gpus)
    return plan_at("dp", fmt::format("dp*tp*pp*cp = {}*{}*{}*{} = {} does not equal cluster.gpus = {}", p.dp, p.tp, p.pp,
                                     p.cp, product, c.cluster.gpus));
  if (p.ep > 1) {
    if (!m.moe.enabled) return plan_at("ep", fmt::format("ep = {} but model '{}' has no experts", p.ep, m.name));
    if (m.moe.routed_experts % p.ep != 0)
      return plan_at("ep", fmt::format("ep = {} does not divide the {} routed experts", p.ep, m.moe.routed_experts));
    const std::int64_t group = p.dp * p.tp * p.cp;
    if (group % p.ep != 0)
      return plan_at("ep", fmt::format("ep = {} does not fit the dp*tp*cp = {} GPUs of a pipeline stage (must divide it)",
                                       p.ep, group));
  }
  if (m.attention.heads % p.tp != 0)
    return plan_at("tp", fmt::format("tp = {} does not divide the {} attention heads", p.tp, m.attention.heads));
  if (t.seq_len % p.cp != 0) return plan_at("cp", fmt::format("cp = {} does not divide seq_len {}", p.cp, t.seq_len));
  if (p.comm_sms >= c.hardware.sms)
    return plan_at("comm_sms", fmt::format("comm_sms = {} leaves no SM for compute ({} has {})", p.comm_sms,
                                           c.hardware.name, c.hardware.sms));
  const std::int64_t per_step = p.dp * p.micro_batch;
  if (t.global_batch % per_step != 0)
    return training_at("global_batch", fmt::format("global_batch {} is not divisible by dp*micro_batch = {}*{} = {}",
                                                   t.global_batch, p.dp, p.micro_batch, per_step));
  if (t.ramp && t.ramp->start % per_step != 0)
    return training_at("batch_ramp.start",
                       fmt::format("ramp start {} is not divisible by dp*micro_batch = {}", t.ramp->start, per_step));
  const std::int64_t mbs = t.global_batch / per_step;
  // The schedule's own rules (sim/schedule/schedule_rules.hpp) at the phase's final batch;
  // smaller batches of a ramp are extrapolated from the fewest micro-batches it runs.
  const schedule::ScheduleParams sp{static_cast<int>(p.pp), static_cast<int>(std::min<std::int64_t>(mbs, 1 << 30)),
                                    static_cast<int>(p.vpp)};
  if (const auto problem = schedule::check_params(p.schedule, sp)) {
    switch (problem->param) {
      case schedule::Param::Pp: return plan_at("pp", fmt::format("{}, got {}", problem->need, p.pp));
      case schedule::Param::Vpp: return plan_at("vpp", fmt::format("{}, got {}", problem->need, p.vpp));
      case schedule::Param::Microbatches:
        return plan_at("schedule", fmt::format("{}; global_batch/(dp*micro_batch) = {}", problem->need, mbs));
    }
  }
  const std::int64_t stages = stages_of(p);
  if (p.layer_split.empty()) {
    if (m.layers < stages)
      return plan_at("pp", fmt::format("{} layers cannot fill {} pipeline stages (every stage needs a layer)", m.layers,
                                       stages));
    if (p.split_rule == "even" && m.layers % stages != 0)
      return plan_at("layer_split", fmt::format("layer_split = \"even\": {} layers cannot be split evenly over {} "
                                                "pipeline stages; use \"balanced\" or give {} entries",
                                                m.layers, stages, stages));
  } else {
    if (static_cast<std::int64_t>(p.layer_split.size()) != stages)
      return plan_at("layer_split",
                     fmt::format("has {} entries but the plan has {} pipeline stages{}", p.layer_split.size(), stages,
                                 p.schedule == "dualpipev"
                                     ? fmt::format(" (dualpipev: 2 stages on each of the pp = {} ranks; or \"balanced\")", p.pp)
                                     : ""));
    const std::int64_t sum = std::accumulate(p.layer_split.begin(), p.layer_split.end(), std::int64_t{0});
    if (sum != m.layers) return plan_at("layer_split", fmt::format("sums to {} layers but the model has {}", sum, m.layers));
  }
  // Work limits, and the 32-bit integers the step simulation uses (core/limits.hpp).
  const std::int64_t slots = mbs * p.pp * p.vpp;  // < 2^40 * 2^12 * 2^10: no overflow
  if (slots > kMaxPipelineSlots)
    return training_at("global_batch",
                       fmt::format("{} micro-batches per step (global_batch / (dp*micro_batch) = {} / {}) on pp = {} ranks x "
                                   "vpp = {} chunks is {} pipeline slots per step; the work limit is {} (docs/limits.md)",
                                   mbs, t.global_batch, per_step, p.pp, p.vpp, slots, kMaxPipelineSlots));
  if (p.ep > kMaxNetworkGpus)
    return plan_at("ep", fmt::format("ep = {} GPUs in one expert-parallel group; the network model's work limit is {} "
                                     "(docs/limits.md)", p.ep, kMaxNetworkGpus));
  if (p.micro_batch * t.seq_len / p.cp > kMaxTokensPerMicrobatch)
    return plan_at("micro_batch",
                   fmt::format("micro_batch * seq_len / cp = {} * {} / {} tokens per micro-batch exceeds {} (docs/limits.md)",
                               p.micro_batch, t.seq_len, p.cp, kMaxTokensPerMicrobatch));
  return std::nullopt;
}

std::optional<PlanProblem> phase_switch_problem(const PlanRuleContext& c, const PlanConfig& p,
                                                std::span<const PlanConfig* const> phase_plans, bool cp_comm_written) {
  // Switches of the step models (sim/step/README.md) that would change nothing in every phase
  // are errors, not silently ignored (a base-plan key some phase uses is fine).
  const ModelConfig& m = c.model;
  const auto a2a = [&](const PlanConfig& q) { return m.moe.enabled && q.ep > 1; };
  const auto dp_group = [](const PlanConfig& q) { return q.dp * q.cp * (q.schedule == "dualpipe" ? 2 : 1); };
  const auto nowhere = [&](bool (*used)(const PlanConfig&)) {
    return std::none_of(phase_plans.begin(), phase_plans.end(), [&](const PlanConfig* q) { return used(*q); });
  };
  const auto nowhere_a2a = [&](std::span<const PlanConfig* const> plans) {
    return std::none_of(plans.begin(), plans.end(), [&](const PlanConfig* q) { return a2a(*q); });
  };
  if (p.sequence_parallel && nowhere([](const PlanConfig& q) { return q.tp > 1; }))
    return plan_at("sequence_parallel", "sequence_parallel splits activations over the tensor-parallel group; it needs tp > 1");
  if (p.ep_comm_overlap && p.schedule != "1f1b" && p.schedule != "interleaved")
    return plan_at("ep_comm_overlap",
                   fmt::format("ep_comm_overlap (Megatron's combined 1F1B) applies to schedule \"1f1b\" or \"interleaved\" "
                               "(schedule is '{}'{})",
                               p.schedule,
                               p.schedule == "dualpipe" || p.schedule == "dualpipev" ? ", which overlaps by its own F&B pairs" : ""));
  if (p.ep_dispatcher != "deepep" && nowhere_a2a(phase_plans))
    return plan_at("ep_dispatcher", fmt::format("ep_dispatcher = \"{}\" chooses how the MoE tokens are exchanged; no phase "
                                                "of this plan has an all-to-all (needs an MoE model and ep > 1)",
                                                p.ep_dispatcher));
  if (p.ep_comm_overlap && !a2a(p))
    return plan_at("ep_comm_overlap",
                   "ep_comm_overlap hides the expert-parallel all-to-all; this plan has none (needs an MoE model and ep > 1)");
  if (p.shared_expert_overlap && (!a2a(p) || m.moe.shared_experts == 0))
    return plan_at("shared_expert_overlap",
                   fmt::format("shared_expert_overlap computes the shared experts beside the all-to-all; model '{}' with ep = {} has {}",
                               m.name, p.ep,
                               !m.moe.enabled ? "no experts" : m.moe.shared_experts == 0 ? "no shared experts" : "no all-to-all"));
  if (p.overlap_grad_reduce && (dp_group(p) == 1 || p.zero >= 2))
    return plan_at("overlap_grad_reduce",
                   dp_group(p) == 1
                       ? std::string("overlap_grad_reduce overlaps the data-parallel gradient reduction; dp * cp = 1 has none")
                       : fmt::format("overlap_grad_reduce applies to the step's gradient reduction (zero 0 or 1); zero {} "
                                     "reduces every micro-batch and overlaps it already",
                                     p.zero));
  if (p.overlap_param_gather && p.zero >= 3)
    return plan_at("overlap_param_gather", "overlap_param_gather applies to zero 1 or 2; ZeRO-3 gathers each layer as it needs it");
  if (p.dp_bucket_params > 0 && (dp_group(p) == 1 || p.zero >= 2))
    return plan_at("dp_bucket_params",
                   "dp_bucket_params sizes the buckets of the step's gradient reduction (zero 0 or 1 and dp * cp > 1)");
  if (!p.grad_buckets.empty() && (dp_group(p) == 1 || p.zero >= 2))
    return plan_at("grad_buckets",
                   "grad_buckets decides how the step's gradient reduction is bucketed (zero 0 or 1 and dp * cp > 1)");
  if (p.overlap_param_gather && !p.overlap_grad_reduce && p.zero <= 1 && dp_group(p) > 1 &&
      effective_grad_buckets(p) == "megatron-core")
    return plan_at("overlap_param_gather",
                   "overlap_param_gather needs overlap_grad_reduce in Megatron-Core (megatron/training/arguments.py: "
                   "'Must use --overlap-param-gather with --overlap-grad-reduce'); give overlap_grad_reduce = true, or "
                   "grad_buckets = \"uniform\" for a framework that gathers without it (Apex distributed Adam)");
  if (p.dp_bucket_params > 0 && !p.overlap_grad_reduce && effective_grad_buckets(p) == "megatron-core")
    return plan_at("dp_bucket_params",
                   "dp_bucket_params has no effect here: without overlap_grad_reduce Megatron-Core DDP reduces each "
                   "gradient buffer as one bucket (grad_buckets = \"megatron-core\", the default); give "
                   "overlap_grad_reduce = true, or grad_buckets = \"uniform\" for buckets on every rank without overlap");
  if (p.cp == 1 && cp_comm_written && nowhere([](const PlanConfig& q) { return q.cp > 1; }))
    return plan_at("cp_comm", "cp_comm applies to context parallelism (cp > 1)");
  return std::nullopt;
}

std::optional<PlanProblem> phase_plan_problem(const PlanRuleContext& c, const PlanConfig& p, const TrainingConfig& t,
                                              std::span<const PlanConfig* const> phase_plans, bool cp_comm_written) {
  if (auto problem = phase_layout_problem(c, p, t)) return problem;
  return phase_switch_problem(c, p, phase_plans, cp_comm_written);
}

}  // namespace trainsim
