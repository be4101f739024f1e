#pragma once
// Overlap policies: how the phases of a pipeline op run on the GPU's streams, all through the one
// list scheduler of sim/schedule/overlap.hpp.
//
//   alone      an F, B, I or W op by itself: its phases in dependency order on the compute, EP, TP,
//              CP and DP streams. Communication overlaps only what the op's own graph lets it
//              (shared experts beside the dispatch, weight gradients beside the input gradient's
//              collective, ZeRO-3 gathers one layer ahead); compute runs on all SMs except phases
//              marked beside_comm.
//   F&B pair   a forward and a backward chunk (DualPipe, DeepSeek-V3 §3.2.1; Megatron's combined
//              1F1B with overlap_moe_expert_parallel_comm): both graphs at once, so one chunk's
//              communication hides behind the other's compute; every compute phase on the N-K
//              SMs the communication kernels leave; of phases ready at once the one with the
//              longer chain ahead goes first (schedule/overlap.hpp), at equal chains the backward.
//
// The result of one op carries its parts for the breakdown, measured from its own timeline:
// compute-stream busy time split into model compute and recomputation, and the time the compute
// stream waits, attributed to the communication kinds in flight while it waits (shared equally
// when several are; a wait with none in flight goes to the kind that ended last), a recomputed
// forward's communication counted as recomputation.
//
// Combined 1F1B (combine_1f1b_order): in 1F1B and interleaved orders every backward that is
// followed by a forward on the same rank becomes one F&B op (the forward of the next micro-batch
// beside the backward of an earlier one, Megatron-Core combined_1f1b); the pipeline's task graph
// keeps both ops' dependencies.

#include <vector>

#include "core/time.hpp"
#include "graph/op.hpp"
#include "step/phases.hpp"

namespace trainsim::step {

struct Slice {
  int phase = 0;          // index into its list
  bool backward = false;  // the pair's backward list (alone: false)
  Time start, end;        // from the start of the op
};

struct GradEvent {
  Time at;  // from the start of the op
  double dense = 0, expert = 0;
};

struct OpRun {
  Time duration;
  Time compute, recompute;                    // compute-stream busy
  Time exposed_tp, exposed_ep, exposed_cp, exposed_dp;
  Time comm_busy;                             // all communication phases
  std::vector<Slice> slices;                  // in start order
  std::vector<GradEvent> grads;               // weight gradients complete, in time order
};

OpRun run_alone(const std::vector<Phase>& phases);
OpRun run_pair(const std::vector<Phase>& forward, const std::vector<Phase>& backward);

// Megatron's combined 1F1B order (see above).
std::vector<std::vector<graph::Op>> combine_1f1b_order(const std::vector<std::vector<graph::Op>>& order);

}  // namespace trainsim::step
