#pragma once
// The per-stage op lists of a step: the model's ops (model/model_math.hpp) as one GPU of a
// pipeline stage runs them for one micro-batch, layer by layer, under the plan's parallelism.
//
//  * Tensor parallelism (Megatron, Shoeybi et al. 2019): column-parallel GEMMs split their output
//    dimension, row-parallel ones their inner dimension, attention its heads, activation
//    functions their width; with sequence parallelism (Korthikanti et al. 2022 §4.2.2) norms,
//    residual adds and the FP8 casts of the hidden-width inputs are split over the TP group too,
//    without it they run replicated on every TP rank.
//  * Expert parallelism: a GPU holds routed_experts/ep experts and, with balanced routing,
//    computes as many token-expert rows as its own tokens send (tokens x top_k).
//  * Context parallelism: seq/cp tokens per rank; causal attention is load-balanced over the CP
//    ranks (Megatron's 2·cp chunks), so each rank does 1/cp of the whole sequence's attention.
//  * The embedding joins the first stage, the output head, loss and MTP modules the last.
//  * Each transformer layer gets its recompute mode (model/recompute.hpp): recompute_num_layers
//    limits full recomputation to the first N layers of the stage.

#include <cstdint>
#include <string>
#include <vector>

#include "config/scenario.hpp"
#include "model/model_math.hpp"

namespace trainsim::step {

struct LayerOps {
  std::string label;   // "L12", "embed", "head", "mtp"
  std::int64_t layer = -1;  // model layer (an MTP block: m.layers); -1 embedding and head
  bool moe = false;
  bool transformer = false;  // attention + FFN block (layers and MTP blocks)
  Recompute recompute = Recompute::None;
  std::vector<Op> ops;       // as this GPU runs them
  double embedding_params = 0;  // parameters with no GEMM (the embedding table), held by this GPU
};

// Op context of one micro-batch on one GPU (seq/cp tokens).
OpContext gpu_op_context(const PlanConfig& p, const TrainingConfig& tr);

// plan.attention = "unfused" (Megatron-LM before FlashAttention, NVIDIA/Megatron-LM@de7dc40f88
// megatron/model/transformer.py ParallelAttention.forward): one attention-core op (forward or
// backward) as the kernels that framework ran, each on the GEMM or memory-bound cost class.
// Forward: scores = Q·Kᵀ (batched GEMM [s, d_qk]x[d_qk, s_kv] per head), the fused
// scale-mask-softmax (3 bytes per score), dropout (5 bytes per score: value in and out, 1-byte
// mask), context = P·V. Backward: dP = dO·Vᵀ, dV = Pᵀ·dO, dropout and softmax backward (5 and 4
// bytes per score), dQ = dS·K, dK = dSᵀ·Q. FLOPs sum to the fused op's (both conventions).
std::vector<Op> unfused_attention(const Op& core);

// Model ops as one GPU runs them under the plan (TP, EP, CP, SP adjustments above).
std::vector<Op> for_gpu(const ModelConfig& m, const PlanConfig& p, const TrainingConfig& tr, std::vector<Op> ops);

// The layers of pipeline stage `stage` (of `nstages`) under `split`, in forward order.
std::vector<LayerOps> stage_ops(const ModelConfig& m, const PlanConfig& p, const TrainingConfig& tr,
                                const std::vector<std::int64_t>& split, std::int64_t stage);

// Which part of a layer an op belongs to: 0 attention side (incl. ffn norm, router, permute),
// 1 experts or MLP, 2 after the combine. `shared_expert` tells the shared experts apart.
int part_of(const std::string& name);
bool is_shared_expert(const std::string& name);
// Megatron's split of a layer's GEMMs.
bool column_parallel(const std::string& name);
bool row_parallel(const std::string& name);

// Parameters whose gradient a backward-weight op produces (this GPU's share), split into dense
// (replicated over EP) and routed-expert parameters.
struct GradParams {
  double dense = 0, expert = 0;
};
GradParams grad_params(const Op& o);

}  // namespace trainsim::step
