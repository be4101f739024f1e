#pragma once
// Memory per GPU: weights, gradients, optimizer states, activations in flight, buffers.
//
// Activations are counted as the tensors a layer saves for its backward pass (per token), each
// tagged with the op that produces it: a tensor is not kept when recompute.hpp says its producer
// is re-run in the backward (the same op list the step simulator charges time for); full
// recomputation keeps the layer input only (recompute_num_layers: the first N layers of each
// stage, the others keep everything).
// Tensor parallelism: tensors split by heads or by the MLP width are /tp; hidden-width tensors
// (layer input, norm outputs, residuals) are replicated over the TP group unless sequence
// parallelism splits them (Korthikanti et al. 2022 §4.2.2); MLA latents are replicated.
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
//   combined 1F1B (ep_comm_overlap) holds one more.
// Sharding: ZeRO shards over the data-parallel group of each parameter (dense: dp·cp, experts:
// dp·tp·cp/ep), doubled under DualPipe, whose two copies of every stage reduce together.

#include <cstdint>
#include <string>
#include <vector>

#include "config/scenario.hpp"
#include "model/model_math.hpp"

namespace trainsim {

// How a saved tensor is split over the tensor-parallel group.
enum class TpSplit { Sequence, Tensor, Replicated };

// One tensor a transformer layer keeps for its backward: bytes per token of the layer (all TP
// ranks together), and the op producing it ("" for the layer input, always kept).
struct SavedTensor {
  const char* what;
  std::string producer;
  OpClass cls;
  double bytes_per_token = 0;
  TpSplit split = TpSplit::Tensor;
};
std::vector<SavedTensor> saved_tensors(const ModelConfig& m, std::int64_t layer, const PrecisionConfig& p);

// Saved-for-backward bytes per token of one transformer layer on one GPU of a TP group.
double activation_bytes_per_token(const ModelConfig& m, std::int64_t layer, Recompute rc, const PrecisionConfig& p,
                                  std::int64_t tp = 1, bool sequence_parallel = false);

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

// With the plan's layer split (stage_layers: the roofline-weighted balanced split when none is
// given), or with `split` (the step simulator's cost-balanced one: StepResult::layer_split).
MemoryReport memory_per_gpu(const Scenario& s);
MemoryReport memory_per_gpu(const Scenario& s, const std::vector<std::int64_t>& split);

}  // namespace trainsim
