#pragma once
// The calibration file (profiles/<gpu>/calibration.toml): fitted per-class cost-model
// parameters with their in-sample residuals, held-out errors and provenance, written by
// `trainsim calibrate` and read strictly (unknown or missing keys are ConfigErrors with
// file/line/column) by load_cost_model(). Format documented in sim/calibration/README.md
// ("Calibration file").
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "calibration/fit.hpp"

namespace trainsim::calibration {

// Where a class's parameters come from, on the GPU the file is for.
enum class Basis {
  Measured,     // fitted to measurements on this GPU
  SameDie,      // fitted to measurements on a GPU with the same die (SMs, tensor peaks, HBM)
  Transferred,  // fitted on another GPU and carried over by a documented rule
};
const char* basis_name(Basis b);  // "measured" | "same-die" | "transferred"

struct ClassFit {
  Residuals residuals;             // in-sample: the fit's own points
  std::vector<HeldOut> heldout;    // points the fit did not see (empty: none could be formed)
  std::string source;              // the measured data behind the parameters
  std::string notes;               // assumptions and limits, "" = none
  Basis basis = Basis::Measured;
  std::string measured_on;         // profiles/hardware name of the GPU the data was measured on
  std::string transfer;            // the rule applied when basis != Measured, "" otherwise
  bool present = false;            // the class was calibrated (optional classes)
};

struct GemmClass {
  GemmParams params;
  ClassFit fit;
};

struct MemClass {
  double bytes_per_us = 0;         // achieved bandwidth of this kind of kernel
  double overhead_us = 0;          // per-kernel fixed time
  ClassFit fit;
};

struct LinkClass {
  double efficiency = 0;           // achieved / nominal bandwidth of communication kernels
  ClassFit fit;
};

// Memory-bound kinds: `default` (all memory-bound points pooled) and the kinds with their own
// measurements. Model ops map to kinds in cost_model.cpp (memory_kind()).
const std::vector<std::string>& memory_kinds();  // default, norm, activation, rope, cast, ...

struct Calibration {
  std::string gpu;                    // profiles/<gpu>/ key, e.g. "h800"
  std::int64_t sms = 0;               // SMs of that GPU
  std::string command;                // the command that produced the file
  std::vector<std::string> inputs;    // "path (what; source)" per input

  // GEMM by operand dtype ("fp8", "bf16"): dense and grouped (per-group shape). At least one.
  std::map<std::string, GemmClass> gemm;
  // Weight-gradient FP8 GEMMs (DeepGEMM's dW kernels): time = FP8 curve x this factor.
  double gemm_fp8_wgrad_factor = 1.0;
  ClassFit gemm_fp8_wgrad_fit;
  AttnParams attn_fwd, attn_bwd;
  ClassFit attn_fwd_fit, attn_bwd_fit;
  // The one-rate summary of the kernel profiles' attention kernels (FLOPs per SM per us), what
  // `trainsim replay` costs them with; 0 when no profile had attention kernels.
  double attn_fwd_flops_per_sm_us = 0, attn_bwd_flops_per_sm_us = 0;
  std::map<std::string, MemClass> mem;  // by kind; "default" always present
  double kernel_gap_us = 0;           // back-to-back gap between kernels on one stream
  double launch_latency_us = 0;       // CPU launch call -> kernel start on an idle stream
  ClassFit gap_fit;
  LinkClass nvlink, ib;               // network link efficiencies (optional)

  // The FP8 GEMM curve, a copy of gemm.at("fp8").params kept in step by write/read/calibrate
  // (what `trainsim replay` costs the trace's FP8 GEMMs with); zero without an FP8 fit.
  GemmParams gemm_fp8;
  bool has_gemm(const std::string& dtype) const { return gemm.count(dtype) > 0; }
};

// Deterministic TOML text (fixed key order, shortest round-trip numbers).
std::string write_calibration(const Calibration& c);
Calibration read_calibration_text(const std::string& text, const std::string& file);
Calibration read_calibration(const std::string& path);

}  // namespace trainsim::calibration
