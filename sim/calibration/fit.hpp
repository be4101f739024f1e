#pragma once
// Least-squares fits (Eigen) of per-class kernel cost models to measured points. Each fit
// returns its parameters and the relative residuals of every point, so `trainsim calibrate` can
// print them and tests can recover known parameters from synthetic points. The models are
// documented in sim/calibration/README.md ("Cost models").
#include <cstdint>
#include <string>
#include <vector>

namespace trainsim::calibration {

// Relative residuals (predicted / measured - 1) of a fit.
struct Residuals {
  std::int64_t points = 0;
  double rms_rel = 0;   // root mean square
  double max_rel = 0;   // largest |residual|
  double mean_rel = 0;  // signed mean (bias)
};
Residuals summarize(const std::vector<double>& rel);

// ---- GEMM (dense and grouped), one dtype ---------------------------------------------------
// t = t0 + waves * (a * K + b) + c * bytes,
//   waves = ceil(groups * ceil(M / tile_m) * ceil(N / tile_n) / sms),
//   bytes = groups * (M*K + N*K) * in_bytes + groups * M * N * 2 (operands in, BF16 out).
// M, N, K are per group. c: time per operand byte (1 / achieved bandwidth; small-M GEMMs are
// bound by reading the weights). a: time per unit of K of one wave of output tiles (the tensor-core
// rate of the SMs), b: per-wave fixed cost (prologue, epilogue, pipeline fill), t0: per-kernel
// fixed cost. Efficiency rises with size (t0, b amortised) and saturates at tile_m*tile_n*2/a
// FLOPs per SM per us; the ceil() terms give tile and wave quantisation over the SMs available.
struct GemmParams {
  std::int64_t tile_m = 128, tile_n = 128;
  double t0_us = 0, a_us = 0, b_us = 0, c_us_per_byte = 0;
};
double gemm_bytes(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t groups, double in_bytes);
struct GemmPoint {
  std::int64_t m = 0, n = 0, k = 0, groups = 1;
  std::int64_t sms = 0;
  double time_us = 0;
  std::string source;  // where the point came from (table row, trace kernel)
  // A weight-gradient kernel (dW = X^T dY, K = tokens): a different kernel, fitted as the main
  // curve times wgrad_factor (see fit_gemm).
  bool wgrad = false;
};
double gemm_waves(std::int64_t m, std::int64_t n, std::int64_t groups, std::int64_t sms,
                  std::int64_t tile_m, std::int64_t tile_n);
// FP8 operands (in_bytes = 1); the K-loop term may be scaled (other dtypes, see cost model).
double gemm_time_us(const GemmParams& p, std::int64_t m, std::int64_t n, std::int64_t k,
                    std::int64_t groups, std::int64_t sms, double in_bytes = 1.0, double compute_scale = 1.0);
struct GemmFit {
  GemmParams params;
  // Weight-gradient GEMMs: t_wgrad = wgrad_factor * gemm_time_us(params, ...); 1 when no point
  // is a wgrad point.
  double wgrad_factor = 1.0;
  std::vector<double> rel;  // per point, same order as the input (wgrad points with the factor)
  Residuals residuals;      // all points
  Residuals main_residuals, wgrad_residuals;  // the non-wgrad points / the wgrad points
};
// Weighted linear least squares (relative error) for t0, a, b, c on the non-wgrad points at each
// candidate tile size, then wgrad_factor = argmin_f sum (f * pred_i / t_i - 1)^2 over the wgrad
// points (closed form); keeps the tile with the smallest RMS relative residual over all points
// (ties: first candidate). Throws DataError with fewer than 4 non-wgrad points.
GemmFit fit_gemm(const std::vector<GemmPoint>& pts,
                 const std::vector<std::int64_t>& tile_m_candidates = {64, 128, 256},
                 const std::vector<std::int64_t>& tile_n_candidates = {64, 128, 256});

// ---- Attention ------------------------------------------------------------------------------
// t = flops / (rate_per_sm * sms): model FLOPs (causal convention; backward = 2x forward) at a
// fitted per-SM rate, separately for forward and backward kernels.
struct AttnPoint {
  double flops = 0;
  std::int64_t sms = 0;
  double time_us = 0;
  std::string source;
};
struct AttnFit {
  double flops_per_sm_us = 0;  // FLOPs per SM per microsecond
  std::vector<double> rel;
  Residuals residuals;
};
AttnFit fit_attention(const std::vector<AttnPoint>& pts);

// ---- Memory-bound ops -----------------------------------------------------------------------
// t = overhead + bytes / bandwidth. With >= 2 distinct byte counts both are fitted (weighted
// linear least squares); fit_overhead() with a bandwidth given fits only the overhead.
struct MemPoint {
  double bytes = 0;
  double time_us = 0;
};
struct MemFit {
  double overhead_us = 0;
  double bytes_per_us = 0;
  std::vector<double> rel;
  Residuals residuals;
};
MemFit fit_membound(const std::vector<MemPoint>& pts);

// ---- Kernel gap and launch latency ----------------------------------------------------------
// From consecutive kernels on one stream: when the next kernel was launched (CPU) before the
// previous one ended, the GPU was the bottleneck and ts_next - end_prev is the kernel gap; when
// it was launched after the stream went idle, ts_next - launch_next is the launch latency.
// Both are medians (robust to the trace's 1 us rounding).
struct GapSample {
  double prev_end_us = 0;
  double launch_us = 0;
  double start_us = 0;
};
struct GapFit {
  double gap_us = 0;
  double launch_latency_us = 0;
  std::int64_t gap_points = 0, latency_points = 0;
};
GapFit fit_gaps(const std::vector<GapSample>& samples);

double median(std::vector<double> v);  // 0 for an empty vector

}  // namespace trainsim::calibration
