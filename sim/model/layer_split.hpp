#pragma once
// Which layers each pipeline stage holds.
//
//   plan.layer_split = [..]          as written (validated against the model in config/)
//   plan.layer_split = "even"        layers / stages each (must divide; Megatron's default)
//   plan.layer_split = "balanced"    (the default when no split is given) contiguous stages that
//                                    make the heaviest stage as light as possible, counting the
//                                    embedding on the first stage and the output head, loss and
//                                    MTP modules on the last; every stage holds at least one layer
//
// The balanced split minimises the maximum stage weight over all contiguous partitions (a
// linear-partition problem): bisection on the cap with a greedy feasibility check, which fills
// each stage as far as the cap allows while leaving one layer for every later stage. Greedy
// filling is optimal for feasibility, so the result is the minimal cap to within the bisection's
// 1e-12 relative tolerance; ties go to the earlier stages taking more layers. Complexity
// O(layers x 200). Weights are training FLOPs per token at the phase's sequence length by
// default (model_math.hpp); callers with per-layer times (step/) pass those instead.

#include <cstdint>
#include <vector>

#include "config/config.hpp"

namespace trainsim {

// Per-stage layer counts minimising max_s(extra_s + sum of the stage's layer weights), with
// extra_first on stage 0 and extra_last on the last stage. Needs stages <= layer_w.size().
std::vector<std::int64_t> balanced_split(const std::vector<double>& layer_w, double extra_first, double extra_last,
                                         std::int64_t stages);

// Training FLOPs per token (causal) of each transformer layer, of the first stage's extras
// (embedding: none) and of the last stage's (final norm, head, loss, MTP modules).
struct LayerWeights {
  std::vector<double> layers;
  double first = 0, last = 0;
};
LayerWeights layer_flop_weights(const ModelConfig& m, std::int64_t seq_len);

// Layers per pipeline stage (pipeline_stage_count(plan) entries) by the rules above.
std::vector<std::int64_t> stage_layers(const ModelConfig& m, const PlanConfig& p, std::int64_t seq_len);

}  // namespace trainsim
