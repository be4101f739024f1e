#pragma once
// What follows the pipeline on each rank (Megatron-Core's DDP and distributed optimizer):
//
//  * Gradient reduction (ZeRO 0: all-reduce, ZeRO 1: reduce-scatter) over each parameter's
//    data-parallel group, in buckets of dp_bucket_params parameters (default max(40M, 1M x dp),
//    Megatron), dense and expert parameters in separate buckets, one DP stream per rank. Which
//    chunks are bucketed follows grad_buckets (grad_bucket_params below): Megatron-Core buckets
//    only pipeline rank 0's first model chunk, and only with overlap_grad_reduce; every other
//    chunk reduces each of its gradient buffers (dense, expert) as one bucket.
//    overlap_grad_reduce: a bucket starts as soon as the rank's last backward has produced all its
//    gradients (the times come from the op timelines); otherwise every bucket starts when the
//    rank's pipeline work ends. DualPipe's two copies of a stage reduce together, so a bucket
//    waits for both holders. ZeRO-2/3 reduce per micro-batch inside the ops instead (phases.hpp).
//    The gradient-norm all-reduce synchronises every rank before the optimizer, so the tail
//    starts at T = max over ranks of (pipeline end, DP done); exposed = T - makespan
//    (the closed form: max(0, DP time - the window after the rank's last gradient it can hide in)).
//  * Parameter all-gather of the updated parameters (ZeRO 1-2), the same buckets, BF16: after the
//    optimizer (exposed), or with overlap_param_gather during the next step's first forward: each
//    rank gathers its buckets in forward order from the step's start and a layer's first forward
//    waits for its bucket; the step grows by the largest such wait over the ranks.

#include "step/comm_plan.hpp"
#include "step/step.hpp"

namespace trainsim::step {

struct TailTimes {
  DpParts dp;
  double sync_s = 0;  // when the optimizer starts (from the step's start)
};

TailTimes dp_tail(const CommPlan& comm, const PlanConfig& plan, const TrainingConfig& tr, const StepView& R);

// Parameters per gradient bucket of model chunk `chunk` (0 = the first, as Megatron numbers
// them) on pipeline rank `rank`; infinity = one bucket per gradient buffer. grad_buckets
// "uniform": dp_bucket_params (default max(40M, 1M x dp x cp)) everywhere. "megatron-core"
// (NVIDIA/Megatron-LM megatron/core/distributed/distributed_data_parallel.py: bucket_size = None
// when not overlap_grad_reduce, on pipeline ranks > 0, and with disable_bucketing, which
// megatron/training/training.py get_model sets for model chunks after the first): that size on
// rank 0's chunk 0 with overlap_grad_reduce, infinity elsewhere.
double grad_bucket_params(const PlanConfig& plan, int rank, int chunk);
// The size of a bucketed chunk's buckets: dp_bucket_params, default max(40M, 1M x dp x cp).
double grad_bucket_size(const PlanConfig& plan);

// The pipeline stages rank r holds, one per chunk.
std::vector<int> stages_of_rank(const graph::PipelineTopology& topo, int rank);

}  // namespace trainsim::step
