#pragma once
// The cost-based balanced split: layer_split = "balanced" (the default when no split is given)
// places layers so that the slowest pipeline stage is as fast as possible, by the linear
// partition of model/layer_split.hpp over per-layer costs measured the way the schedule runs
// them, with the calibrated op costs and the communication plan:
//   * schedules that overlap a forward and a backward (DualPipe, DualPipeV, combined 1F1B): a
//     layer costs max(its compute on the SMs the communication kernels leave, its communication),
//     forward and backward together (inside a pair the communication hides behind the other
//     chunk's compute);
//   * the others: the layer's forward and backward each run alone, their exposed communication
//     included.
// The embedding weighs on the first stage, the output head, loss and MTP modules on the last.
// An explicit layer_split or "even" is returned as the plan says.

#include <cstdint>
#include <vector>

#include "step/phases.hpp"

namespace trainsim::step {

std::vector<std::int64_t> cost_balanced_split(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                                              PhaseBuilder& builder);

}  // namespace trainsim::step
