#pragma once
// The CostModel implementation: per-class curves from a Calibration (fitted on one GPU, the
// "source"), answered for a target GPU either directly (target == source: Fitted) or through
// the transfer rules of sim/calibration/README.md ("Transfer to other GPUs": Transferred).
#include <string>

#include "calibration/calibration_file.hpp"
#include "calibration/cost_model.hpp"
#include "config/config.hpp"

namespace trainsim::calibration {

enum class TransferKind { None, SameDie, CrossArch };
const char* transfer_kind_name(TransferKind k);  // "none" | "same-die" | "cross-architecture"

// Same die: equal SM count and equal BF16 and FP8 dense peaks (within 1%).
TransferKind transfer_kind(const HardwareConfig& source, const HardwareConfig& target);

class FittedCostModel final : public CostModel {
 public:
  // `source`: the GPU the calibration was fitted on; `target`: the GPU to answer for.
  FittedCostModel(Calibration cal, HardwareConfig source, HardwareConfig target);

  OpCost op_time(const Op& op, int sms) const override;
  Time kernel_gap() const override;
  std::string gpu() const override { return target_.name; }
  std::string describe() const override;

  const Calibration& calibration() const { return cal_; }
  TransferKind transfer() const { return kind_; }
  // The target's effective parameters after the transfer rules (== the calibration's when
  // target == source): for reports and tests.
  const GemmParams& gemm_fp8() const { return gemm_; }
  double attn_flops_per_sm_us(bool backward) const { return backward ? attn_bwd_ : attn_fwd_; }
  double mem_bytes_per_us() const { return mem_bw_; }
  double mem_overhead_us() const { return cal_.mem_overhead_us; }
  // Time multiplier of a GEMM's K-loop term for `dtype` relative to FP8 on the target.
  double dtype_scale(const std::string& dtype) const;

 private:
  Calibration cal_;
  HardwareConfig source_, target_;
  TransferKind kind_;
  GemmParams gemm_;
  double attn_fwd_ = 0, attn_bwd_ = 0, mem_bw_ = 0;
  std::string transfer_note_;
};

}  // namespace trainsim::calibration
