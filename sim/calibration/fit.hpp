#pragma once
// Least-squares fits (Eigen) of per-class kernel cost models to measured points. Each fit
// returns its parameters and the relative residuals of every point, so `trainsim calibrate` can
// print them and tests can recover known parameters from synthetic points. The models are
// documented in sim/calibration/README.md ("Cost models").
#include <cstdint>
#include <exception>
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
// ceiling: a measured throughput bound, FLOPs per SM per us (0 = none): t is at least
// 2*groups*M*N*K * compute_scale / (ceiling * sms). Set only on classes transferred from another
// GPU (the target's measured MAMF, profiles/mamf.toml); a fit never sets it.
struct GemmParams {
  std::int64_t tile_m = 128, tile_n = 128;
  double t0_us = 0, a_us = 0, b_us = 0, c_us_per_byte = 0;
  double ceiling_flops_per_sm_us = 0;
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
  std::string group;   // the source the point belongs to (a table, a trace): leave-one-source-out
};
double gemm_waves(std::int64_t m, std::int64_t n, std::int64_t groups, std::int64_t sms,
                  std::int64_t tile_m, std::int64_t tile_n);
// FP8 operands (in_bytes = 1); the K-loop term may be scaled (other dtypes, see cost model), and
// the ceiling with it.
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
// `in_bytes`: operand bytes per element of the points (1 FP8, 2 BF16) in the byte term.
GemmFit fit_gemm(const std::vector<GemmPoint>& pts, double in_bytes = 1.0,
                 const std::vector<std::int64_t>& tile_m_candidates = {64, 128, 256},
                 const std::vector<std::int64_t>& tile_n_candidates = {64, 128, 256});

// ---- Attention ------------------------------------------------------------------------------
// FlashAttention-style kernels: one CTA per (sequence, head, tile of `tile` query rows) walks the
// keys; a wave of CTAs (one per SM) costs c0 (prologue: load Q, write O) + c1 per key and unit of
// head dim (the two GEMMs QK^T and PV: d_qk + d_v) + c2 per key (softmax: exponentials, max and
// sum do not depend on the head dim), plus t0 per kernel:
//   t = t0 + waves * (c0 + kv * (c1 * (d_qk + d_v) + c2)),
//   waves = ceil(batch * heads * ceil(s_q / tile) / sms),
//   kv = s_kv (no mask) or the mean unmasked keys of a causal tile, (s_kv + tile) / 2.
// A rate-only model ("rate": t = FLOPs / (r * sms), FLOPs in the causal model convention) is
// fitted when the points hold fewer than 3 shapes (a trace of one model), so c0..c2 would not
// be determined.
struct AttnParams {
  std::string model = "waves";  // "waves" | "rate"
  std::int64_t tile = 128;
  double t0_us = 0, c0_us = 0, c1_us = 0, c2_us = 0;
  double flops_per_sm_us = 0;   // the rate model
};
struct AttnShape {
  std::int64_t batch = 1, seq_q = 0, seq_kv = 0, heads = 0, d_qk = 0, d_v = 0;
  bool causal = true;
  // Model FLOPs (causal convention: half the score matrix with a mask); the backward counts 2x.
  double flops(bool backward) const;
};
double attention_time_us(const AttnParams& p, const AttnShape& s, bool backward, std::int64_t sms);
struct AttnPoint {
  AttnShape shape;
  std::int64_t sms = 0;
  double time_us = 0;
  std::string source;
  std::string group;  // leave-one-source-out
};
struct AttnFit {
  AttnParams params;
  std::vector<double> rel;
  Residuals residuals;
};
// Weighted linear least squares (relative error) of t0, c0, c1, c2; the rate model when the
// points have fewer than 3 distinct shapes, or when the 4-parameter fit gives a non-positive c1.
// `backward` selects the FLOP convention of the rate model. Throws DataError without points.
AttnFit fit_attention(const std::vector<AttnPoint>& pts, bool backward);

// ---- Memory-bound ops -----------------------------------------------------------------------
// t = overhead + bytes / bandwidth. With >= 2 distinct byte counts both are fitted (weighted
// linear least squares); fit_overhead() with a bandwidth given fits only the overhead.
struct MemPoint {
  double bytes = 0;
  double time_us = 0;
  std::string kind;    // norm | activation | rope | cast | ... (see calibrate.hpp)
  std::string source;
  std::string group;   // leave-one-source-out
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

// ---- Link efficiencies (network) --------------------------------------------------------------
// A measured transfer whose modelled time at efficiency 1 is t_unit: predicted time = t_unit / e.
// One efficiency per link type, least squares of relative error: 1/e = sum z / sum z^2,
// z = t_unit / t_measured.
struct LinkPoint {
  std::string link;      // "nvlink" | "ib"
  double unit_us = 0;    // modelled time at efficiency 1 on this link alone
  double time_us = 0;    // measured
  std::string source;
};
struct EfficiencyFit {
  double efficiency = 0;
  std::vector<double> rel;
  Residuals residuals;
};
EfficiencyFit fit_efficiency(const std::vector<LinkPoint>& pts);

// ---- Held-out error ----------------------------------------------------------------------------
// A held-out figure: the relative errors of points predicted by a fit that did not see them.
struct HeldOut {
  std::string method;   // "5-fold", "largest 20% by FLOPs", "leave-one-source-out", ...
  Residuals residuals;
};

// k-fold cross-validation: point i is in fold i % k; every fold is predicted by `fit` on the
// others. `fit(train)` returns a model, `predict(model, point)` a time. Returns the held-out
// relative errors in point order (folds whose training set `fit` rejects are skipped).
template <class P, class Fit, class Predict>
std::vector<double> kfold_rel(const std::vector<P>& pts, int k, Fit fit, Predict predict) {
  std::vector<double> rel;
  for (int f = 0; f < k; ++f) {
    std::vector<P> train;
    std::vector<const P*> test;
    for (std::size_t i = 0; i < pts.size(); ++i) {
      if (static_cast<int>(i % static_cast<std::size_t>(k)) == f) test.push_back(&pts[i]);
      else train.push_back(pts[i]);
    }
    if (test.empty()) continue;
    try {
      const auto model = fit(train);
      for (const P* p : test) rel.push_back(predict(model, *p) / p->time_us - 1.0);
    } catch (const std::exception&) {
      continue;  // too few points left to fit: this fold is not scored
    }
  }
  return rel;
}

// Train on the points `held(p)` is false for, predict the others. Empty when either side is.
template <class P, class Held, class Fit, class Predict>
std::vector<double> holdout_rel(const std::vector<P>& pts, Held held, Fit fit, Predict predict) {
  std::vector<P> train;
  std::vector<const P*> test;
  for (const auto& p : pts) (held(p) ? test.push_back(&p) : train.push_back(p));
  std::vector<double> rel;
  if (train.empty() || test.empty()) return rel;
  try {
    const auto model = fit(train);
    for (const P* p : test) rel.push_back(predict(model, *p) / p->time_us - 1.0);
  } catch (const std::exception&) {
    rel.clear();
  }
  return rel;
}

}  // namespace trainsim::calibration
