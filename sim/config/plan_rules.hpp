#pragma once
// The validity rules of a parallel plan, in one place, as functions that say what is wrong
// instead of throwing: the config reader (parse_plan, validate_scenario) throws a ConfigError at
// the key a rule names, and the plan search (sim/plan/) asks the same functions before it
// evaluates anything, so that every plan it evaluates is one the reader accepts and every plan
// it skips is one the reader refuses, with the same message.
//
//   plan_key_problem      rules between the keys of one [plan] table (parse_plan): a key that
//                         needs another (tp_comm_overlap needs sequence_parallel, ...)
//   phase_layout_problem  a phase's plan against the cluster, the model and the phase's batch:
//                         dp*tp*pp*cp = gpus, ep, tp, cp, comm_sms, batch divisibility, the
//                         schedule's own rules, the layer split, the work limits
//   phase_switch_problem  step-model switches that would change nothing (in every phase)
// validate_scenario runs layout then switch rules on every phase, in phase order; the first
// problem found is the error.

#include <optional>
#include <span>
#include <string>

#include "config/config.hpp"

namespace trainsim {

struct PlanProblem {
  bool training = false;  // the key is a training key ("global_batch", "batch_ramp.start"), else a plan key
  std::string key;        // "dp", "schedule", ...
  std::string message;
};

// The gradient bucketing a plan runs: its grad_buckets, or when not written "uniform" under
// DualPipe(V) (not a Megatron-Core schedule) and "megatron-core" otherwise.
std::string effective_grad_buckets(const PlanConfig& p);

// parse_plan's rules between keys. `p` as parsed.
std::optional<PlanProblem> plan_key_problem(const PlanConfig& p);

struct PlanRuleContext {
  const ModelConfig& model;
  const HardwareConfig& hardware;
  const ClusterConfig& cluster;
};

std::optional<PlanProblem> phase_layout_problem(const PlanRuleContext& c, const PlanConfig& p, const TrainingConfig& t);

// `phase_plans`: the plans of every phase of the scenario (a switch a base-plan key sets is fine
// when some phase uses it). `cp_comm_written`: whether this phase's plan sets cp_comm explicitly.
std::optional<PlanProblem> phase_switch_problem(const PlanRuleContext& c, const PlanConfig& p,
                                                std::span<const PlanConfig* const> phase_plans, bool cp_comm_written);

// Layout rules, then switch rules.
std::optional<PlanProblem> phase_plan_problem(const PlanRuleContext& c, const PlanConfig& p, const TrainingConfig& t,
                                              std::span<const PlanConfig* const> phase_plans, bool cp_comm_written);

// The recompute mode as plan.recompute writes it: "none" | "selective" | "deepseek" | "full".
const char* recompute_name(Recompute r);

// Value ranges of the integer [plan] keys (parse_plan reads them with these bounds).
struct PlanKeyRange {
  std::int64_t lo, hi;
};
inline constexpr PlanKeyRange kPlanDpRange{1, 10'000'000}, kPlanTpRange{1, 1024}, kPlanPpRange{1, 4096},
    kPlanEpRange{1, 1'000'000}, kPlanCpRange{1, 4096}, kPlanVppRange{1, 1024}, kPlanZeroRange{0, 3},
    kPlanMicroBatchRange{1, 1 << 20};

}  // namespace trainsim
