#include "profile_plan.hpp"

#include <algorithm>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "core/error.hpp"
#include "model/model_math.hpp"

namespace trainsim::profiler {

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::vector<std::int64_t> measured_layers(const ModelConfig& model) {
  std::vector<std::int64_t> layers{0};
  if (model.moe.enabled && model.moe.first_dense_layers > 0 && model.moe.first_dense_layers < model.layers)
    layers.push_back(model.moe.first_dense_layers);
  return layers;
}

OpContext context(const PlanOptions& o, const std::string& gemm_dtype) {
  OpContext ctx;
  ctx.micro_batch = o.micro_batch;
  ctx.seq_len = o.seq_len;
  ctx.gemm_dtype = gemm_dtype;
  return ctx;
}

void plan_gemms(const ModelConfig& model, const PlanOptions& o, Plan& plan) {
  std::set<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::string>> done;
  const std::int64_t local_experts =
      model.moe.enabled ? std::max<std::int64_t>(1, model.moe.routed_experts / std::max<std::int64_t>(o.ep, 1)) : 1;
  for (const auto& dt : o.dtypes) {
    if (dt == "fp8" && !o.fp8_ok) {
      plan.notes.push_back("fp8 GEMMs and casts not measured: the device has no FP8 tensor cores (compute capability < 8.9)");
      continue;
    }
    for (auto layer : measured_layers(model)) {
      for (const Op& op : layer_ops(model, layer, context(o, dt))) {
        if (op.cls != OpClass::Gemm && op.cls != OpClass::GroupedGemm) continue;
        OpSpec s;
        s.dtype = op.dtype;
        s.n = op.n;
        s.k = op.k;
        if (op.cls == OpClass::GroupedGemm && op.groups > 1) {
          // layer_ops: m = rows over all groups (EP = 1). Per rank under EP, balanced routing:
          // all T * top_k (token, expert) rows over routed_experts / ep local experts.
          s.groups = local_experts;
          s.m = std::max<std::int64_t>(1, op.m / local_experts);
          if (op.pass == Pass::BackwardWeight) {  // dW = X^T dY: the inner dimension is the rows
            s.m = op.m;
            s.k = std::max<std::int64_t>(1, op.k / local_experts);
          }
        } else {
          s.m = op.m;
          s.groups = 1;
        }
        if (!done.insert({s.m, s.n, s.k, s.groups, s.dtype}).second) continue;
        s.name = fmt::format("{}/{}", op.name, pass_name(op.pass));
        s.op_class = s.dtype == "fp8" ? (s.groups > 1 ? "fp8_grouped_gemm" : "fp8_gemm") : "bf16_gemm";
        s.tokens = o.micro_batch * o.seq_len;
        s.how = s.groups > 1 ? fmt::format("launched: strided-batched cuBLASLt GEMM, {} groups (ep={}), TN; pass {}", s.groups,
                                           o.ep, pass_name(op.pass))
                             : fmt::format("launched: cuBLASLt GEMM, TN; pass {}", pass_name(op.pass));
        plan.ops.push_back(PlannedOp{s, "gemm", 0, 0});
      }
    }
  }
}

void plan_membound(const ModelConfig& model, const PlanOptions& o, Plan& plan) {
  const bool casts = o.fp8_ok && std::find(o.dtypes.begin(), o.dtypes.end(), "fp8") != o.dtypes.end();
  // layer_ops lists the BF16 -> FP8 casts only for FP8 GEMMs.
  const OpContext ctx = context(o, casts ? "fp8" : "bf16");
  const std::int64_t T = ctx.tokens();
  std::set<std::tuple<std::string, std::int64_t, std::int64_t>> seen;  // (kernel, rows, width)
  for (auto layer : measured_layers(model)) {
    const auto ops = layer_ops(model, layer, ctx);
    auto forward_of = [&](const std::string& name) -> const Op* {
      for (const Op& u : ops)
        if (u.name == name && u.pass == Pass::Forward) return &u;
      return nullptr;
    };
    for (const Op& op : ops) {
      std::string kernel, cls;
      std::int64_t rows = 0, width = 0;
      const std::string stem = op.name.substr(0, op.name.rfind('.'));
      const bool fwd = op.pass == Pass::Forward;
      if (op.cls == OpClass::Norm && fwd) {
        kernel = "rmsnorm", cls = "norm", rows = T, width = static_cast<std::int64_t>(op.bytes) / (4 * T);  // 2*T*w*2
      } else if (op.cls == OpClass::Elementwise && fwd && ends_with(op.name, ".swiglu")) {
        if (const Op* u = forward_of(stem + ".up_gate")) kernel = "swiglu", cls = "elementwise", rows = u->m, width = u->n / 2;
      } else if (op.cls == OpClass::Elementwise && fwd && (ends_with(op.name, ".gelu") || ends_with(op.name, ".sqrelu"))) {
        if (const Op* u = forward_of(stem + ".up"))
          kernel = ends_with(op.name, ".gelu") ? "gelu" : "sqrelu", cls = "elementwise", rows = u->m, width = u->n;
      } else if (op.cls == OpClass::Elementwise && fwd && ends_with(op.name, ".residual")) {
        kernel = "add", cls = "elementwise", rows = T, width = model.hidden;
      } else if (op.cls == OpClass::Elementwise && ends_with(op.name, ".quant") &&
                 (fwd || op.pass == Pass::BackwardInput)) {
        // Forward: X (m x k) before the GEMM; backward-input: dY (m x n). Both BF16 in.
        if (const Op* g = forward_of(stem))
          kernel = "quant", cls = "quant_cast", rows = g->m, width = fwd ? g->k : g->n;
      } else if (op.cls == OpClass::Permute && fwd && model.moe.enabled) {
        kernel = "permute", cls = "permute", rows = T * model.moe.top_k, width = model.hidden;
      }
      if (kernel.empty() || rows <= 0 || width <= 0) continue;
      if (!seen.insert({kernel, rows, width}).second) continue;
      const std::int64_t groups128 = rows * ((width + 127) / 128);
      std::int64_t bytes = 0;
      std::string what;
      if (kernel == "rmsnorm") {
        bytes = 2 * rows * width * 2 + width * 2, what = "RMSNorm: read x and w, write y (BF16)";
      } else if (kernel == "swiglu") {
        bytes = 3 * rows * width * 2, what = "SwiGLU: read gate|up, write y (BF16)";
      } else if (kernel == "gelu") {
        bytes = 2 * rows * width * 2, what = "GELU (tanh): read x, write y (BF16)";
      } else if (kernel == "sqrelu") {
        bytes = 2 * rows * width * 2, what = "squared ReLU: read x, write y (BF16)";
      } else if (kernel == "add") {
        bytes = 3 * rows * width * 2, what = "residual add: read a and b, write y (BF16)";
      } else if (kernel == "quant") {
        bytes = rows * width * 3 + groups128 * 4;
        what = "BF16 -> FP8 E4M3 cast, one FP32 scale per 1x128 group: read x, write y and scales";
      } else {
        bytes = 2 * rows * width * 2 + rows * 4;
        what = "row permutation y[r] = x[idx[r]]: read idx and x rows, write y (BF16)";
      }
      OpSpec s;
      s.name = fmt::format("{}/{}", op.name, pass_name(op.pass));
      s.op_class = cls;
      s.dtype = kernel == "quant" ? "fp8" : "bf16";
      s.tokens = rows;
      s.bytes = bytes;
      s.how = fmt::format("launched: {} (trainsim-profile kernel), {} x {}", what, rows, width);
      plan.ops.push_back(PlannedOp{s, kernel, rows, width});
    }
  }
  plan.notes.push_back("memory-bound ops measured with trainsim-profile's own untuned kernels, forward shapes only "
                       "(norm and activation backward kernels, RoPE, router top-k and the FP8 casts of the "
                       "weight-gradient pass not measured)");
}

void plan_collectives(const ModelConfig& model, const PlanOptions& o, Plan& plan) {
  const std::int64_t T = o.micro_batch * o.seq_len;
  auto add = [&](const std::string& name, const std::string& cls, const std::string& kernel, std::int64_t bytes) {
    OpSpec s;
    s.name = name;
    s.op_class = cls;
    s.comm = true;
    s.tokens = T;
    s.bytes = bytes;
    s.dtype = o.collective_dtype;
    s.how = fmt::format("launched: {} over {} GPUs (single process), {} bytes per GPU", name, o.world, bytes);
    plan.ops.push_back(PlannedOp{s, kernel, 0, 0});
  };
  add("nccl.all_reduce", "other", "all_reduce", T * model.hidden * 2);
  if (model.moe.enabled) add("nccl.all_to_all", "a2a_dispatch", "all_to_all", T * model.moe.top_k * model.hidden * 2);
}

}  // namespace

Plan plan_ops(const ModelConfig& model, const PlanOptions& o) {
  for (const auto& dt : o.dtypes)
    if (dt != "bf16" && dt != "fp8") throw InputError(fmt::format("--dtype: unknown dtype '{}' (bf16 or fp8)", dt));
  if (o.dtypes.empty()) throw InputError("--dtype: no dtype given (bf16, fp8 or bf16,fp8)");
  Plan plan;
  plan_gemms(model, o, plan);
  plan_membound(model, o, plan);
  if (o.collectives) plan_collectives(model, o, plan);
  return plan;
}

}  // namespace trainsim::profiler
