#pragma once
// trainsim-profile, GPU-free: which ops to measure for a model, with their shapes and byte
// counts (what main.cpp launches, one OpSpec per op). Kept out of main.cpp so that the op list
// -- the shapes and bytes the profile will carry -- is tested without a GPU.
//
// From trainsim::layer_ops of layer 0 and, for MoE models, of the first MoE layer:
//   * GEMMs and grouped GEMMs of every pass, per dtype asked for (FP8 only where the device
//     has FP8 tensor cores). Grouped GEMMs under EP: routed_experts / ep local experts with
//     equal rows (balanced routing, all T * top_k rows of the rank): M per group. Identical
//     shapes are measured once (under the name of the first op with the shape).
//   * memory-bound ops of the forward pass: norms (RMSNorm), SwiGLU / GELU / squared ReLU,
//     residual adds, MoE permutations and the BF16 -> FP8 casts in front of FP8 GEMMs
//     (forward X and backward-input dY). `bytes` = what the kernel reads and writes.
//   * collectives (all-reduce of T x hidden, all-to-all of T x top_k x hidden for MoE), when
//     asked for (more than one GPU and NCCL).
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "profile_convert.hpp"

namespace trainsim::profiler {

struct PlanOptions {
  std::int64_t micro_batch = 1;
  std::int64_t seq_len = 4096;
  std::int64_t ep = 1;
  std::vector<std::string> dtypes{"bf16", "fp8"};  // GEMM dtypes
  bool fp8_ok = true;                              // device has FP8 tensor cores (cc >= 8.9)
  bool collectives = false;                        // plan NCCL collectives
  int world = 1;                                   // GPUs the collectives run over
  std::string collective_dtype = "bf16";           // 16-bit element type NCCL uses
};

// What main.cpp runs for one op: `kernel` is one of gemm, rmsnorm, swiglu, gelu, sqrelu, add,
// quant, permute, all_reduce, all_to_all; `rows` x `width` for the memory-bound kernels.
struct PlannedOp {
  OpSpec spec;
  std::string kernel;
  std::int64_t rows = 0, width = 0;
};

struct Plan {
  std::vector<PlannedOp> ops;
  std::vector<std::string> notes;  // what is not measured and why
};

// Throws InputError for a dtype other than bf16 / fp8 (naming --dtype).
Plan plan_ops(const ModelConfig& model, const PlanOptions& o);

}  // namespace trainsim::profiler
