#include "calibration/cost_model.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "calibration/fitted_model.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"

namespace trainsim::calibration {

const char* cost_source_name(CostSource s) {
  switch (s) {
    case CostSource::Measured: return "measured";
    case CostSource::Fitted: return "fitted";
    case CostSource::Transferred: return "transferred";
  }
  return "?";
}

const char* transfer_kind_name(TransferKind k) {
  switch (k) {
    case TransferKind::None: return "none";
    case TransferKind::SameDie: return "same-die";
    case TransferKind::CrossArch: return "cross-architecture";
  }
  return "?";
}

namespace {
bool close(double a, double b) { return std::abs(a - b) <= 0.01 * std::max(std::abs(a), std::abs(b)); }
double d(std::int64_t v) { return static_cast<double>(v); }
}  // namespace

TransferKind transfer_kind(const HardwareConfig& source, const HardwareConfig& target) {
  if (source.name == target.name) return TransferKind::None;
  if (source.sms == target.sms && close(source.bf16.value, target.bf16.value) &&
      close(source.peak_flops("fp8"), target.peak_flops("fp8")))
    return TransferKind::SameDie;
  return TransferKind::CrossArch;
}

FittedCostModel::FittedCostModel(Calibration cal, HardwareConfig source, HardwareConfig target)
    : cal_(std::move(cal)), source_(std::move(source)), target_(std::move(target)),
      kind_(transfer_kind(source_, target_)) {
  TS_ASSERT(target_.sms >= 1 && source_.sms >= 1, "cost model: GPU without SMs");
  TS_ASSERT(source_.hbm_bandwidth.value > 0 && target_.hbm_bandwidth.value > 0, "cost model: GPU without HBM bandwidth");
  gemm_ = cal_.gemm_fp8;
  attn_fwd_ = cal_.attn_fwd_flops_per_sm_us;
  attn_bwd_ = cal_.attn_bwd_flops_per_sm_us;
  mem_bw_ = cal_.mem_bytes_per_us;
  const double bw_ratio = target_.hbm_bandwidth.value / source_.hbm_bandwidth.value;
  switch (kind_) {
    case TransferKind::None: break;
    case TransferKind::SameDie:
      // GEMM and attention are compute-bound classes: kept whole (their operand-byte term too).
      mem_bw_ *= bw_ratio;
      transfer_note_ = fmt::format("transferred {}->{} (same die): compute-bound kept, memory-bound x HBM {:.3g}/{:.3g} TB/s",
                                   source_.name, target_.name, source_.hbm_bandwidth.value / 1e12,
                                   target_.hbm_bandwidth.value / 1e12);
      break;
    case TransferKind::CrossArch: {
      // Per-SM tensor rate ratio (roofline): a wave of tiles runs at the target's per-SM peak.
      const double fp8_sm = (target_.peak_flops("fp8") / d(target_.sms)) / (source_.peak_flops("fp8") / d(source_.sms));
      const double bf16_sm = (target_.bf16.value / d(target_.sms)) / (source_.bf16.value / d(source_.sms));
      gemm_.a_us /= fp8_sm;
      gemm_.b_us /= fp8_sm;
      gemm_.c_us_per_byte /= bw_ratio;
      attn_fwd_ *= bf16_sm;
      attn_bwd_ *= bf16_sm;
      mem_bw_ *= bw_ratio;
      transfer_note_ = fmt::format(
          "transferred {}->{} (cross-architecture roofline ratios): GEMM per-SM FP8 rate x{:.3g} on {} SMs, attention "
          "per-SM BF16 rate x{:.3g}, memory-bound x HBM {:.3g}",
          source_.name, target_.name, fp8_sm, target_.sms, bf16_sm, bw_ratio);
      break;
    }
  }
}

double FittedCostModel::dtype_scale(const std::string& dtype) const {
  if (dtype.empty() || dtype == "fp8") return 1.0;
  const double p = target_.peak_flops(dtype);
  TS_ASSERT(p > 0, "cost model: GPU has no peak for dtype " + dtype);
  return target_.peak_flops("fp8") / p;
}

OpCost FittedCostModel::op_time(const Op& op, int sms_in) const {
  TS_ASSERT(sms_in >= 1, "op_time: sms must be at least 1");
  const std::int64_t sms = std::min<std::int64_t>(sms_in, target_.sms);
  const CostSource src = kind_ == TransferKind::None ? CostSource::Fitted : CostSource::Transferred;
  const std::string gpu_tag = cal_.gpu;
  auto finish = [&](double us, std::string basis) {
    OpCost c;
    c.time = Time::from_us(std::max(us, 0.0));
    c.source = src;
    c.basis = kind_ == TransferKind::None ? std::move(basis) : basis + "; " + transfer_note_;
    return c;
  };
  switch (op.cls) {
    case OpClass::Gemm:
    case OpClass::GroupedGemm: {
      const std::int64_t g = std::max<std::int64_t>(op.groups, 1);
      // Per-group shape: forward / input-gradient ops spread rows m over the groups; the weight
      // gradient of a grouped GEMM reduces over the rows (k = rows over all groups).
      std::int64_t M = op.m, N = op.n, K = op.k;
      if (g > 1) {
        if (op.pass == Pass::BackwardWeight) K = std::max<std::int64_t>(1, op.k / g);
        else M = std::max<std::int64_t>(1, op.m / g);
      }
      const double scale = dtype_scale(op.dtype);
      const double in_bytes = op.dtype == "fp8" || op.dtype.empty() ? 1.0 : op.dtype == "fp32" ? 4.0 : 2.0;
      const bool wgrad = op.pass == Pass::BackwardWeight;
      const double wf = wgrad ? cal_.gemm_fp8_wgrad_factor : 1.0;
      const double us = gemm_time_us(gemm_, M, N, K, g, sms, in_bytes, scale) * wf;
      std::string basis = fmt::format("{} FP8 GEMM fit (wave model, {} SMs)", gpu_tag, sms);
      if (wgrad) {
        basis += fmt::format("; weight gradient: x{:.3g} (wgrad factor fitted to {} measured dense wgrad kernels)", wf,
                             cal_.gemm_fp8_wgrad_fit.residuals.points);
        if (g > 1) basis += "; grouped wgrad uses the dense wgrad factor (assumption: no grouped wgrad kernel measured)";
      }
      if (scale != 1.0)
        basis += fmt::format("; {} has no measured large-shape fit: FP8 fit x peak ratio fp8/{} = {:.3g} (assumption)",
                             op.dtype, op.dtype, scale);
      return finish(us, basis);
    }
    case OpClass::Attention: {
      const bool bwd = op.pass != Pass::Forward;
      const double r = bwd ? attn_bwd_ : attn_fwd_;
      const double us = op.flops / (r * d(sms));
      return finish(us, fmt::format("{} attention {} fit (FLOPs per SM, one measured shape; scaling with sequence "
                                    "and heads by FLOPs is an assumption)",
                                    gpu_tag, bwd ? "bwd" : "fwd"));
    }
    case OpClass::Norm:
    case OpClass::Elementwise:
    case OpClass::Router:
    case OpClass::Permute:
    case OpClass::Embedding:
    case OpClass::Loss: {
      const double us = cal_.mem_overhead_us + op.bytes / mem_bw_;
      return finish(us, fmt::format("{} memory-bound: bytes / {:.4g} TB/s achieved + {:.3g} us per kernel", gpu_tag,
                                    mem_bw_ * 1e6 / 1e12, cal_.mem_overhead_us));
    }
  }
  throw InternalError("op_time: unknown op class");
}

Time FittedCostModel::kernel_gap() const { return Time::from_us(cal_.kernel_gap_us); }

std::string FittedCostModel::describe() const {
  std::string s = fmt::format("{} kernel cost model from {} calibration ({} inputs)", target_.name, cal_.gpu,
                              cal_.inputs.size());
  if (kind_ != TransferKind::None) s += "; " + transfer_note_;
  return s;
}

std::unique_ptr<CostModel> load_cost_model(const HardwareConfig& target, const std::filesystem::path& data_dir) {
  const auto own = data_dir / "profiles" / target.name / "calibration.toml";
  const auto hw = [&](const std::string& name) {
    return load_hardware((data_dir / "profiles" / "hardware" / (name + ".toml")).string());
  };
  if (std::filesystem::exists(own)) {
    Calibration c = read_calibration(own.string());
    if (c.gpu != target.name)
      throw ConfigError(SourcePos{own.string(), 0, 0}, "gpu",
                        fmt::format("calibration is for '{}', expected '{}'", c.gpu, target.name));
    return std::make_unique<FittedCostModel>(std::move(c), target, target);
  }
  const auto base = data_dir / "profiles" / "h800" / "calibration.toml";
  Calibration c = read_calibration(base.string());
  HardwareConfig source = hw(c.gpu);
  return std::make_unique<FittedCostModel>(std::move(c), std::move(source), target);
}

}  // namespace trainsim::calibration
