#pragma once
// Activation recomputation: which forward ops of a transformer layer are re-run in the backward.
// One op list decides both what the recomputation costs in time (step/: the recomputed ops run
// again before the layer's backward) and what it saves in memory (model/memory.cpp: a tensor is
// not kept when the op that produces it is recomputed).
//
// Models, registered by name (plan.recompute), with their citations:
//   none       nothing recomputed (Megatron-Core's default: recompute_granularity = None)
//   selective  the attention core (softmax(QKᵀ)V): Korthikanti et al. 2022, "Reducing Activation
//              Recomputation in Large Transformer Models" (arXiv:2205.05198) §4; Megatron-Core
//              recompute_granularity = "selective" with its default recompute_modules ["core_attn"].
//              With FlashAttention the attention scores are never stored, so this saves only the
//              log-sum-exp and costs one more attention forward.
//   deepseek   every RMSNorm, the MLA up-projections (q_b, kv_b, with RoPE) and the SwiGLU output
//              (DeepSeek-V3 report §3.2.3 and §3.3.3); Megatron-Core recompute_modules
//              ["layernorm", "mla_up_proj", "moe_act"] is the same set
//   full       the whole layer forward, its communication included; only the layer input is kept
//              (Megatron recompute_granularity = "full"). With recompute_num_layers = N (Megatron's
//              "block" method) only the first N layers of each pipeline stage are recomputed, the
//              others not at all.

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "model/model_math.hpp"

namespace trainsim {

struct RecomputeModel {
  const char* name;      // plan.recompute value
  Recompute mode;
  const char* citation;
  const char* summary;
};
const std::vector<RecomputeModel>& recompute_models();
const RecomputeModel& recompute_model(Recompute mode);

// Whether a forward op (by its name and class, as model_math.hpp builds them; an "mtp." prefix
// is ignored) is recomputed under `mode`.
bool recomputed(const std::string& op_name, OpClass cls, Recompute mode);
inline bool recomputed(const Op& op, Recompute mode) {
  return op.pass == Pass::Forward && recomputed(op.name, op.cls, mode);
}

// The mode of the layer at position `index_in_stage` (0-based) of a pipeline stage (model chunk):
// recompute_num_layers limits full recomputation to the first N layers of each stage.
Recompute layer_recompute(const PlanConfig& p, std::int64_t index_in_stage);

}  // namespace trainsim
