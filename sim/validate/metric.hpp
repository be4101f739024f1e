#pragma once
// The metrics a validation case compares, each computed from trainsim's output the way its
// source computes it from the measured run. Registered by name with their citation; a case
// table names one (validation/README.md).
//
//   megatron_eq3_tflops_per_gpu  F / (step time x GPUs), F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h))
//                                FLOPs per step: Narayanan et al., SC'21, eq. 3 (it counts the
//                                recomputed forward of full activation recomputation). B global
//                                batch (sequences), s sequence length, l layers, h hidden, V
//                                vocabulary. Defined for Megatron's GPT (MHA, GELU MLP of 4h).
//   tokens_per_s_per_gpu         global batch x seq / (step time x GPUs) (NeMo's performance
//                                summary; needs no FLOP convention).
//   step_time                    the step (iteration) time in seconds (DGX Cloud recipes,
//                                Nemotron-4 15B Table 2).
//   pretraining_gpu_hours        GPU-hours of the pre-training phases of the whole run, batch
//                                ramp included: GPUs x wall-clock hours (DeepSeek-V3 Table 1).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/scenario.hpp"
#include "core/units.hpp"

namespace trainsim::validate {

struct Metric {
  const char* name;        // registry key, e.g. "step_time"
  const char* label;       // for tables: "step time"
  const char* unit;        // display unit: "TFLOP/s", "s", "tokens/s", "GPU-hours"
  const char* definition;  // the formula, for reports
  const char* citation;    // where the definition comes from
  // How `published` is written in a case table: a quantity of this dimension ("137TFLOP/s",
  // "9.00s"), converted to the display unit by `to_display`; or, when empty, a plain number in
  // the display unit (tokens/s per GPU, GPU-hours: units the unit parser has no dimension for).
  std::optional<Dim> published_dim;
  double to_display = 1;   // display value = SI value x to_display
  bool whole_run = false;  // needs the whole run (every phase, the batch ramp), not one step
};

const std::vector<Metric>& metrics();  // every registered metric, in the order above
// The metric named `name`, or nullptr.
const Metric* find_metric(std::string_view name);

// Megatron's eq. 3 FLOPs per step: 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)).
double megatron_eq3_flops(double batch, double seq, double layers, double hidden, double vocab);

// Why the metric does not apply to this scenario's model or plan ("" if it does): eq. 3 is
// Megatron's GPT count (MHA, GELU MLP of 4 x hidden).
std::string metric_inapplicable(const Metric& m, const Scenario& sc);

// What trainsim's output gives for the metric, in its display unit. `step_s` is phase 0's
// simulated step at its global batch; `pretraining_gpu_hours` the whole run's (only read by
// whole-run metrics).
double metric_value(const Metric& m, const Scenario& sc, double step_s, double pretraining_gpu_hours);

}  // namespace trainsim::validate
