#include "model/recompute.hpp"

#include <string_view>

#include "core/error.hpp"

namespace trainsim {

namespace {
bool ends_with(std::string_view s, std::string_view p) { return s.size() >= p.size() && s.substr(s.size() - p.size()) == p; }
}  // namespace

const std::vector<RecomputeModel>& recompute_models() {
  static const std::vector<RecomputeModel> table = {
      {"none", Recompute::None, "Megatron-Core default (recompute_granularity = None)", "nothing recomputed"},
      {"selective", Recompute::Selective,
       "Korthikanti et al. 2022, arXiv:2205.05198 §4; Megatron-Core recompute_modules [\"core_attn\"]",
       "the attention core is re-run in the backward"},
      {"deepseek", Recompute::DeepSeek, "DeepSeek-V3 report §3.2.3, §3.3.3",
       "RMSNorms, MLA up-projections (with RoPE) and the SwiGLU output re-run in the backward"},
      {"full", Recompute::Full, "Megatron-LM recompute_granularity = \"full\" (Narayanan et al. SC21 §5.1)",
       "the whole layer forward re-run in the backward; recompute_num_layers: the first N of each stage"},
  };
  return table;
}

const RecomputeModel& recompute_model(Recompute mode) {
  for (const auto& r : recompute_models())
    if (r.mode == mode) return r;
  TS_ASSERT(false, "unknown recompute mode");
  return recompute_models().front();
}

bool recomputed(const std::string& op_name, OpClass cls, Recompute mode) {
  std::string_view n = op_name;
  if (n.rfind("mtp.", 0) == 0) n.remove_prefix(4);
  switch (mode) {
    case Recompute::None: return false;
    case Recompute::Full: return true;
    // The attention core, fused (one Attention op) or unfused (its "attn.core.*" GEMMs and softmax/dropout).
    case Recompute::Selective: return cls == OpClass::Attention || n.rfind("attn.core", 0) == 0;
    case Recompute::DeepSeek:
      return cls == OpClass::Norm || n == "attn.q_b" || n == "attn.kv_b" || n == "attn.rope" || ends_with(n, ".swiglu") ||
             ends_with(n, ".gelu") || ends_with(n, ".sqrelu");
  }
  return false;
}

Recompute layer_recompute(const PlanConfig& p, std::int64_t index_in_stage) {
  if (p.recompute == Recompute::Full && p.recompute_num_layers > 0 && index_in_stage >= p.recompute_num_layers)
    return Recompute::None;
  return p.recompute;
}

}  // namespace trainsim
