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
  virtual ~CostModel() = default;
  // Time of `op` on `sms` SMs (1 <= sms <= the GPU's SM count). Deterministic.
  virtual OpCost op_time(const Op& op, int sms) const = 0;
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
};

// Loads <data_dir>/profiles/<target.name>/calibration.toml if it exists (costs: Fitted), else
// <data_dir>/profiles/h800/calibration.toml carried over to `target` by the transfer rules
// (costs: Transferred), the source GPU's specs read from <data_dir>/profiles/hardware/. Throws
// ConfigError when neither file can be read. (Added by the calibration helper.)
std::unique_ptr<CostModel> load_cost_model(const HardwareConfig& target, const std::filesystem::path& data_dir);

}  // namespace trainsim::calibration
