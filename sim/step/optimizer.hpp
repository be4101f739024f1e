#pragma once
// The optimizer step as frameworks run it (Megatron-Core's distributed optimizer with
// TransformerEngine FP8), after the gradient reduction, on every rank at once; the step waits
// for the rank with the largest shard (the parameters it updates), not the largest parameter
// count: under ZeRO a rank updates its share of each parameter's data-parallel group, and
// DualPipe's two copies of a stage share one optimizer shard.
//
//   1. gradient norm: a multi-tensor L2 norm over the shard's gradients (read), then an
//      all-reduce of one scalar over every GPU (data- and model-parallel groups: NCCL's tree
//      latency; Megatron clip_grad_norm_fp32);
//   2. clipping: the gradients scaled by min(1, clip / norm) (multi_tensor_scale: read + write);
//   3. AdamW over the shard (fused multi-tensor Adam): read the gradient, the master weight and
//      both moments, write the master weight and both moments;
//   4. the updated master weights written to the BF16 working copy (read FP32 + write BF16);
//   5. FP8 recipe only: every GEMM weight this rank holds re-quantised to FP8 (and its transpose,
//      for the backward), read BF16 + write 2 x FP8 with one scale per 128 x 128 block
//      (DeepSeek-V3 §3.3.2; TransformerEngine casts the weights once per step).
// Each pass is a memory-bound op costed by the GPU's calibrated memory-bound model (the
// multi-tensor kernels stream the tensors at the fitted bandwidth) plus one kernel gap.

#include "step/comm_plan.hpp"
#include "step/phases.hpp"
#include "step/step.hpp"

#include <array>

namespace trainsim::step {

// The five passes above by name, in order, and the bytes each touches for a rank updating
// `shard` parameters and holding `fp8_weights` GEMM weights (the re-quantisation is 0 without the
// FP8 recipe); the plan estimate costs the same passes (plan/estimate.cpp).
inline constexpr std::array<const char*, 5> kOptimizerPasses = {
    "optimizer.grad_norm", "optimizer.clip", "optimizer.adamw", "optimizer.param_copy", "optimizer.fp8_requant"};
std::array<double, 5> optimizer_pass_bytes(double shard, double fp8_weights, const TrainingConfig& tr);
// One pass as the memory-bound op the cost model prices.
Op optimizer_pass_op(const char* name, double bytes);

OptimizerParts optimizer_step(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                              const CommPlan& comm, const StepView& R, PhaseBuilder& costs);

}  // namespace trainsim::step
