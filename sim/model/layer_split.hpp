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
// 1e-12 relative tolerance. Many splits reach that cap; of those it takes the most even, the
// least sum of squared stage weights (a dynamic program under the cap), so that the stages below
// the slowest are as alike as the layers allow: the greedy fill's own answer would put every
// earlier stage at the cap and the remainder on the last (61 layers on 10 stages: [7 x 8, 4, 1]),
// and a rank running several such stages (interleaved) waits on the uneven ones. Remaining ties
// go to the earlier stages taking more layers. Complexity O(layers x 200 + stages x layers x
// layers per stage).
//
// Weights. stage_layers(scenario, plan, training) weighs each layer by its time on the scenario's
// GPU by a roofline of every op of the layer's forward, backward and recomputed forward (GEMMs
// and attention at the peak of their dtype, everything else at the HBM bandwidth, the max of the
// two per op), so memory-bound and FP8 ops weigh what they cost, not their FLOPs; the plan
// estimate and memory_per_gpu(scenario) split by it. The step simulator splits by calibrated
// costs instead (step/stage_split.hpp; under DualPipe a rank's two stages together), and what
// `trainsim run`, `compare`, the sweep and the plan's re-runs report as memory is that of the
// step's split (report/run_report.hpp memory_as_run). What the simulated step still shows as
// stage imbalance is reported as "imbalance". The older stage_layers(model, plan, seq_len)
// weighs training FLOPs.

#include <cstdint>
#include <vector>

#include "config/config.hpp"

namespace trainsim {

// Per-stage layer counts minimising max_s(extra_s + sum of the stage's layer weights), with
// extra_first on stage 0 and extra_last on the last stage. Needs stages <= layer_w.size().
std::vector<std::int64_t> balanced_split(const std::vector<double>& layer_w, double extra_first, double extra_last,
                                         std::int64_t stages);

// The same with two costs per layer (e.g. compute and communication that can overlap) and a
// stage costing the larger of its two sums: minimises max_s max(sum_s c, sum_s a). The stage cost
// grows with every layer added, so the same bisection and greedy fill are exact.
struct Cost2 {
  double c = 0, a = 0;
};
std::vector<std::int64_t> balanced_split(const std::vector<Cost2>& layer_w, Cost2 extra_first, Cost2 extra_last,
                                         std::int64_t stages);

// Training FLOPs per token (causal) of each transformer layer, of the first stage's extras
// (embedding: none) and of the last stage's (final norm, head, loss, MTP modules).
struct LayerWeights {
  std::vector<double> layers;
  double first = 0, last = 0;
};
LayerWeights layer_flop_weights(const ModelConfig& m, std::int64_t seq_len);

// Roofline seconds of each transformer layer (one sequence of seq_len tokens, F + B + recomputed
// forward under the plan's mode) on `hw`, of the first stage's extras and of the last stage's.
LayerWeights layer_time_weights(const ModelConfig& m, const HardwareConfig& hw, const PlanConfig& p,
                                const TrainingConfig& tr);

// Layers per pipeline stage (pipeline_stage_count(plan) entries) by the rules above, FLOP-weighted.
std::vector<std::int64_t> stage_layers(const ModelConfig& m, const PlanConfig& p, std::int64_t seq_len);

struct Scenario;
// Layers per pipeline stage of a phase's plan and training, time-weighted on the scenario's GPU:
// the split the step and memory use.
std::vector<std::int64_t> stage_layers(const Scenario& sc, const PlanConfig& p, const TrainingConfig& tr);

}  // namespace trainsim
