#pragma once
// Memory per GPU: weights, gradients, optimizer states, activations in flight, buffers.
//
// Activations are counted as the tensors a layer saves for its backward pass (per token), under
// the plan's recomputation level:
//   none       every tensor a backward needs is kept;
//   selective  norms and activation functions are recomputed (their outputs are not kept);
//   deepseek   selective + MLA up-projections recomputed from the cached latents and the
//              SwiGLU output recomputed from its cached input (DeepSeek-V3 §3.2.3, §3.3.3);
//   full       only each layer's input is kept; the layer is re-run in the backward pass.
// GEMM inputs are cached in FP8 with one FP32 scale per 128 values when the precision recipe
// says activation_cache = "fp8" (DeepSeek-V3's 1×128 tiles); the residual stream, latents and
// attention output stay BF16. MoE routing weights are assumed applied to the SwiGLU output on
// the expert side (so their gradient needs no extra saved tensor).
//
// In-flight micro-batches per rank (in units of one stage's activations of one micro-batch):
//   gpipe: M;  1f1b, zb1p: min(M, pp - r);  interleaved: min(M·v, 2(pp-r-1) + (v-1)pp + 1)/v;
//   dualpipe: pp + 1 (its two chunks, one per direction, hold (pp+1)/2 each on average);
//   dualpipev: 2pp + 1 = PP + 1 of its 2pp stages (rank r holds stages r and 2pp-1-r, one copy
//   of each stage's parameters in the whole pipeline), again shared equally by its two chunks.

#include <cstdint>
#include <string>
#include <vector>

#include "config/scenario.hpp"
#include "model/model_math.hpp"

namespace trainsim {

// Saved-for-backward bytes per token of one transformer layer.
double activation_bytes_per_token(const ModelConfig& m, std::int64_t layer, Recompute rc, const PrecisionConfig& p);

// Micro-batches' activations held at peak by pipeline rank r (see header comment).
double inflight_microbatches(const PlanConfig& plan, std::int64_t rank, std::int64_t microbatches);

struct StageMemory {
  std::int64_t rank = 0;
  std::vector<std::int64_t> stages;   // pipeline stages (chunks) this rank holds
  std::int64_t layers = 0;            // transformer layers on this rank
  bool has_embedding = false, has_head = false, has_mtp = false;
  double params = 0;                  // parameters held by this GPU
  double weights = 0, gradients = 0, optimizer = 0, activations = 0, buffers = 0;  // bytes
  double inflight = 0;                // micro-batches of activations held
  double total() const { return weights + gradients + optimizer + activations + buffers; }
};

struct MemoryReport {
  std::vector<StageMemory> ranks;  // one per pipeline rank
  double capacity = 0;             // HBM bytes
  double peak = 0;
  bool fits = false;
};

MemoryReport memory_per_gpu(const Scenario& s);

}  // namespace trainsim
