#pragma once
// The calibration file (profiles/<gpu>/calibration.toml): fitted per-class cost-model
// parameters with their residuals and provenance, written by `trainsim calibrate` and read
// strictly (unknown or missing keys are ConfigErrors with file/line/column) by
// load_cost_model(). Format documented in sim/calibration/README.md ("Calibration file").
#include <cstdint>
#include <string>
#include <vector>

#include "calibration/fit.hpp"

namespace trainsim::calibration {

struct ClassFit {
  Residuals residuals;
  std::string source;  // the measured data behind the parameters
  std::string notes;   // assumptions and limits, "" = none
};

struct Calibration {
  std::string gpu;                    // profiles/<gpu>/ key, e.g. "h800"
  std::int64_t sms = 0;               // SMs of that GPU
  std::string command;                // the command that produced the file
  std::vector<std::string> inputs;    // "path (what; source)" per input

  GemmParams gemm_fp8;                // FP8 GEMM, dense and grouped (per-group shape)
  ClassFit gemm_fp8_fit;               // residuals over all points (wgrad points with the factor)
  // Weight-gradient (backward-for-weights) FP8 GEMMs: time = gemm_fp8 curve x this factor.
  double gemm_fp8_wgrad_factor = 1.0;
  ClassFit gemm_fp8_wgrad_fit;        // residuals of the wgrad points only
  double attn_fwd_flops_per_sm_us = 0, attn_bwd_flops_per_sm_us = 0;
  ClassFit attn_fwd_fit, attn_bwd_fit;
  double mem_bytes_per_us = 0;        // achieved HBM bandwidth of memory-bound kernels
  double mem_overhead_us = 0;         // per-kernel fixed time of a memory-bound kernel
  ClassFit mem_fit;
  double kernel_gap_us = 0;           // back-to-back gap between kernels on one stream
  double launch_latency_us = 0;       // CPU launch call -> kernel start on an idle stream
  ClassFit gap_fit;
};

// Deterministic TOML text (fixed key order, shortest round-trip numbers).
std::string write_calibration(const Calibration& c);
Calibration read_calibration_text(const std::string& text, const std::string& file);
Calibration read_calibration(const std::string& path);

}  // namespace trainsim::calibration
