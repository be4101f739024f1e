#pragma once
// The per-operation cost model the simulator asks: how long does one model operation (an Op
// from model/model_math.hpp) take on this GPU, with `sms` streaming multiprocessors available
// to it (fewer than the GPU has while communication kernels hold some)?
//
// Every answer says where it came from, so reports can show it:
//   Measured     - a measured kernel of exactly this shape (a profile record or a table row)
//   Fitted       - a curve fitted to measured kernels of this class on this GPU
//   Transferred  - a fit from another GPU carried over by the documented transfer rules
//                  (same die: compute-bound kept, memory-bound scaled by HBM bandwidth;
//                  other architectures: roofline ratios per op class)
// Implementations are loaded from calibration data in profiles/<gpu>/ (see README.md).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/time.hpp"
#include "model/model_math.hpp"

namespace trainsim::calibration {

enum class CostSource { Measured, Fitted, Transferred };
const char* cost_source_name(CostSource s);  // "measured" | "fitted" | "transferred"

struct OpCost {
  Time time;
  CostSource source = CostSource::Fitted;
  std::string basis;  // e.g. "h800 fp8 GEMM fit (DeepGEMM table + trace)", "transferred h800->h200: HBM ratio"
};

class CostModel {
 public:
  CostModel();
  virtual ~CostModel() = default;
  // Time of `op` on `sms` SMs (1 <= sms <= the GPU's SM count). Deterministic.
  virtual OpCost op_time(const Op& op, int sms) const = 0;
  // The same answer as op_time, shared: FittedCostModel keeps one entry per distinct op (every
  // field of the Op) and SM count (memo "op cost"); the default computes op_time every time.
  virtual std::shared_ptr<const OpCost> op_cost(const Op& op, int sms) const;
  // For memo keys of results computed from this model's answers: two models with the same
  // identity answer every question alike. A new model gets a fresh number (never reused); a
  // copy keeps it; load_cost_model gives the one number to every model loaded from the same
  // inputs (a copy of the one kept model). So a model's answers must not change while it lives,
  // unless it takes a new identity (renew_identity).
  std::uint64_t identity() const { return identity_; }
  // Gap between consecutive kernels on one stream (launch/scheduling overhead), fitted.
  virtual Time kernel_gap() const = 0;
  // The GPU this model answers for, and a one-line description of its calibration data.
  virtual std::string gpu() const = 0;
  virtual std::string describe() const = 0;

  // A memory-bound pass of `bytes` (read + written) of one kind of kernel ("norm", "activation",
  // "rope", "cast", "permute", "router", "embedding", "loss", "elementwise", "optimizer", ...;
  // a kind without its own calibration takes the pooled memory-bound fit and says so). For
  // callers that cost memory-bound work that is not a model Op, e.g. the optimizer step's
  // multi-tensor passes. The default answers with an Elementwise op of those bytes.
  virtual OpCost memory_time(const std::string& kind, double bytes) const;

  // Where each op class's costs come from on this GPU, for reports (compare, run).
  struct ClassProvenance {
    std::string cls;        // "GEMM bf16", "GEMM fp8", "attention", "memory-bound", "NVLink", ...
    CostSource source = CostSource::Fitted;
    std::string basis;      // "measured", "same-die (h100-sxm)", "transferred from h100-sxm: ..."
    std::string data;       // the measured data behind it
    double heldout_rms = -1;  // held-out RMS relative error (-1: none)
  };
  virtual std::vector<ClassProvenance> provenance() const { return {}; }

 protected:
  CostModel(const CostModel&) = default;
  CostModel& operator=(const CostModel&) = default;
  void renew_identity();  // after a change to what the model answers

 private:
  std::uint64_t identity_;
};

// Loads <data_dir>/profiles/<target.name>/calibration.toml if it exists (costs: Fitted), else
// <data_dir>/profiles/h800/calibration.toml carried over to `target` by the transfer rules
// (costs: Transferred), the source GPU's specs read from <data_dir>/profiles/hardware/. Throws
// ConfigError when neither file can be read. (Added by the calibration helper.)
// Models are kept (memo "cost model", at most 32): a second load with the same data folder, the
// same bytes in every file the first load read, and the same GPU figures the model uses (name,
// SMs, the FP8/BF16/TF32/FP32 peaks, HBM bandwidth) returns a copy of the kept model, with its
// identity() and its op-cost memo, instead of parsing the files again.
std::unique_ptr<CostModel> load_cost_model(const HardwareConfig& target, const std::filesystem::path& data_dir);

}  // namespace trainsim::calibration
