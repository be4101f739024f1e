#pragma once
// The breakdown of a step, measured from the replay's timeline rather than re-derived:
//
//  * inside the pipeline ops, each op's own timeline (overlap_policy.hpp) splits its duration
//    into compute, recompute and the exposed waits for TP, EP, CP and DP communication;
//  * the idle time of each rank (makespan - its busy time) is split by replaying the same
//    schedule twice more: with free pipeline sends (what remains is idle the sends do not cause)
//    and with every stage's op times replaced by their mean over the stages (what remains is the
//    schedule's own bubble). exposed PP = idle - idle without sends, imbalance = idle without
//    sends - idle with equal stages, schedule bubble = idle with equal stages. A difference that
//    comes out negative (a slower stage can happen to fill a gap) is clamped to 0 and its time
//    left in the next part, so the three still add up to the idle time;
//  * after the pipeline: exposed DP of the gradient reduction and parameter all-gather (tail.hpp)
//    and the optimizer (optimizer.hpp).
// Every part is a mean over the pipeline ranks, so the parts add up to the step time.

#include <vector>

#include "graph/task_graph.hpp"
#include "step/step.hpp"

namespace trainsim::step {

struct IdleSplit {
  double exposed_pp = 0, imbalance = 0, bubble = 0;
};

// Splits one rank's (or the mean) idle time: `idle` with sends, `no_sends` without, `equal` with
// equal stages and no sends.
IdleSplit split_idle(double idle, double no_sends, double equal);

// Adds the per-op parts of every op in the replay (mean over ranks) to `b`.
void add_op_parts(const StepView& R, const graph::Replay& rep, Breakdown& b);

}  // namespace trainsim::step
