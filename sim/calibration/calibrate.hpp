#pragma once
// `trainsim calibrate`: turns measured inputs (kernel profiles, microbenchmark tables) into a
// Calibration. Which input feeds which class is documented in sim/calibration/README.md.
#include <cstdint>
#include <string>
#include <vector>

#include "calibration/calibration_file.hpp"
#include "calibration/fit.hpp"
#include "calibration/profile.hpp"

namespace trainsim::calibration {

struct CalibrateInputs {
  std::string gpu;                          // "h800"
  std::int64_t sms = 0;                     // the GPU's SM count (table rows ran on all of them)
  std::int64_t v_head_dim = 0;              // attention value head dim (from the model config)
  std::vector<std::string> profile_paths;   // *.profile.jsonl
  std::vector<std::string> table_paths;     // *.toml: DeepGEMM rows or FlashMLA rows
  std::string command;
};

struct CalibrateResult {
  Calibration cal;
  // The points behind each fit with their relative residuals, for the printed table.
  std::vector<GemmPoint> gemm_points;
  std::vector<double> gemm_rel;
  std::vector<AttnPoint> attn_fwd_points, attn_bwd_points;
  std::vector<double> attn_fwd_rel, attn_bwd_rel;
};

// SMs a kernel could use: the SMs not held by communication, and no more than its blocks
// (DeepGEMM's persistent kernels launch one block per SM they were told to use).
std::int64_t kernel_sms(const KernelRecord& k);

// Attention model FLOPs of a trace kernel (causal; backward = 2x forward), from its shape
// (m = n = tokens, k = q/k head dim, groups = heads) and the value head dim.
double attention_flops(const Shape& s, std::int64_t v_head_dim, bool backward);

// Attention backward ops in a profile: each FlashAttention backward is a preprocess, main and
// postprocess kernel; one op = a run of attn_bwd kernels on one stream starting at a
// preprocess kernel. Returns index groups into p.kernels.
std::vector<std::vector<std::size_t>> attention_bwd_ops(const Profile& p);

CalibrateResult calibrate(const CalibrateInputs& in);

}  // namespace trainsim::calibration
