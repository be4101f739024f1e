#include "calibration/fit.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "core/error.hpp"

namespace trainsim::calibration {

namespace {
double d(std::int64_t v) { return static_cast<double>(v); }
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

[[noreturn]] void too_few(const char* what, std::size_t have, std::size_t need) {
  throw DataError(SourcePos{}, fmt::format("{} fit: {} measured point(s), need at least {}", what, have, need));
}
}  // namespace

Residuals summarize(const std::vector<double>& rel) {
  Residuals r;
  r.points = static_cast<std::int64_t>(rel.size());
  if (rel.empty()) return r;
  double ss = 0, sum = 0;
  for (double x : rel) {
    ss += x * x;
    sum += x;
    r.max_rel = std::max(r.max_rel, std::abs(x));
  }
  r.rms_rel = std::sqrt(ss / d(r.points));
  r.mean_rel = sum / d(r.points);
  return r;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double gemm_waves(std::int64_t m, std::int64_t n, std::int64_t groups, std::int64_t sms,
                  std::int64_t tile_m, std::int64_t tile_n) {
  TS_ASSERT(sms >= 1 && tile_m >= 1 && tile_n >= 1, "gemm_waves: bad sms or tile");
  const std::int64_t tiles = std::max<std::int64_t>(groups, 1) * ceil_div(std::max<std::int64_t>(m, 1), tile_m) *
                             ceil_div(std::max<std::int64_t>(n, 1), tile_n);
  return d(ceil_div(tiles, sms));
}

double gemm_bytes(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t groups, double in_bytes) {
  const double g = d(std::max<std::int64_t>(groups, 1));
  return g * (d(m) * d(k) + d(n) * d(k)) * in_bytes + g * d(m) * d(n) * 2.0;
}

double gemm_time_us(const GemmParams& p, std::int64_t m, std::int64_t n, std::int64_t k,
                    std::int64_t groups, std::int64_t sms, double in_bytes, double compute_scale) {
  const double t = p.t0_us + gemm_waves(m, n, groups, sms, p.tile_m, p.tile_n) * (p.a_us * d(k) + p.b_us) * compute_scale +
                   p.c_us_per_byte * gemm_bytes(m, n, k, groups, in_bytes);
  if (!(p.ceiling_flops_per_sm_us > 0)) return t;
  const double flops = 2.0 * d(std::max<std::int64_t>(groups, 1)) * d(m) * d(n) * d(k);
  return std::max(t, flops * compute_scale / (p.ceiling_flops_per_sm_us * d(sms)));
}

GemmFit fit_gemm(const std::vector<GemmPoint>& pts, double in_bytes, const std::vector<std::int64_t>& tile_m_candidates,
                 const std::vector<std::int64_t>& tile_n_candidates) {
  std::vector<const GemmPoint*> main_pts, wgrad_pts;
  for (const auto& p : pts) {
    if (!(p.time_us > 0) || p.sms < 1 || p.m < 1 || p.n < 1 || p.k < 1)
      throw DataError(SourcePos{}, fmt::format("GEMM fit: point '{}' has no time, SMs or shape", p.source));
    (p.wgrad ? wgrad_pts : main_pts).push_back(&p);
  }
  if (main_pts.size() < 4) too_few("GEMM (non-weight-gradient points)", main_pts.size(), 4);
  GemmFit best;
  double best_rms = std::numeric_limits<double>::infinity();
  const auto rows = static_cast<Eigen::Index>(main_pts.size());
  for (std::int64_t tm : tile_m_candidates)
    for (std::int64_t tn : tile_n_candidates) {
      // Minimise sum ((pred - t) / t)^2: each row divided by its measured time.
      Eigen::MatrixXd A(rows, 4);
      Eigen::VectorXd y = Eigen::VectorXd::Ones(rows);
      for (Eigen::Index i = 0; i < rows; ++i) {
        const auto& p = *main_pts[static_cast<std::size_t>(i)];
        const double w = gemm_waves(p.m, p.n, p.groups, p.sms, tm, tn);
        A(i, 0) = 1.0 / p.time_us;
        A(i, 1) = w * d(p.k) / p.time_us;
        A(i, 2) = w / p.time_us;
        A(i, 3) = gemm_bytes(p.m, p.n, p.k, p.groups, in_bytes) / p.time_us;
      }
      const Eigen::VectorXd x = A.colPivHouseholderQr().solve(y);
      GemmFit f;
      f.params = GemmParams{tm, tn, x(0), x(1), x(2), x(3)};
      // Weight-gradient factor: minimise sum (f * z_i - 1)^2, z_i = pred_i / t_i -> f = sum z / sum z^2.
      double num = 0, den = 0;
      for (const GemmPoint* p : wgrad_pts) {
        const double z = gemm_time_us(f.params, p->m, p->n, p->k, p->groups, p->sms, in_bytes) / p->time_us;
        num += z;
        den += z * z;
      }
      if (!wgrad_pts.empty() && den > 0) f.wgrad_factor = num / den;
      std::vector<double> rel_main, rel_wgrad;
      for (const auto& p : pts) {
        const double pred = gemm_time_us(f.params, p.m, p.n, p.k, p.groups, p.sms, in_bytes) * (p.wgrad ? f.wgrad_factor : 1.0);
        f.rel.push_back(pred / p.time_us - 1.0);
        (p.wgrad ? rel_wgrad : rel_main).push_back(f.rel.back());
      }
      f.residuals = summarize(f.rel);
      f.main_residuals = summarize(rel_main);
      f.wgrad_residuals = summarize(rel_wgrad);
      // Physical: the per-K rate must be positive.
      if (f.params.a_us > 0 && f.params.c_us_per_byte >= 0 && f.wgrad_factor > 0 && f.residuals.rms_rel < best_rms - 1e-12) {
        best_rms = f.residuals.rms_rel;
        best = std::move(f);
      }
    }
  if (!std::isfinite(best_rms)) throw DataError(SourcePos{}, "GEMM fit: no tile size gives a positive per-K rate");
  return best;
}

double AttnShape::flops(bool backward) const {
  const double full = 2.0 * d(batch) * d(seq_q) * d(seq_kv) * d(heads) * d(d_qk + d_v);
  return (backward ? 2.0 : 1.0) * (causal ? full / 2.0 : full);
}

namespace {
// The three per-wave features of the wave model (c0, c1, c2) for a shape.
std::array<double, 3> attn_features(const AttnShape& s, std::int64_t tile, std::int64_t sms) {
  const double tiles = d(std::max<std::int64_t>(s.batch, 1) * std::max<std::int64_t>(s.heads, 1)) *
                       d(ceil_div(std::max<std::int64_t>(s.seq_q, 1), tile));
  const double waves = std::ceil(tiles / d(std::max<std::int64_t>(sms, 1)));
  const double kv = s.causal ? (d(s.seq_kv) + d(tile)) / 2.0 : d(s.seq_kv);
  return {waves, waves * kv * d(s.d_qk + s.d_v), waves * kv};
}
}  // namespace

double attention_time_us(const AttnParams& p, const AttnShape& s, bool backward, std::int64_t sms) {
  TS_ASSERT(sms >= 1, "attention_time_us: sms must be at least 1");
  if (p.model == "rate") return s.flops(backward) / (p.flops_per_sm_us * d(sms));
  const auto f = attn_features(s, p.tile, sms);
  return p.t0_us + p.c0_us * f[0] + p.c1_us * f[1] + p.c2_us * f[2];
}

AttnFit fit_attention(const std::vector<AttnPoint>& pts, bool backward) {
  if (pts.empty()) too_few("attention", 0, 1);
  for (const auto& p : pts)
    if (!(p.time_us > 0) || p.sms < 1 || p.shape.seq_q < 1 || p.shape.seq_kv < 1 || p.shape.heads < 1 ||
        p.shape.d_qk + p.shape.d_v < 1)
      throw DataError(SourcePos{}, fmt::format("attention fit: point '{}' has no time, SMs or shape", p.source));
  AttnFit f;
  // Distinct shapes (the wave model needs the time to vary with sequence and head dim).
  std::vector<std::array<std::int64_t, 5>> shapes;
  for (const auto& p : pts) {
    const std::array<std::int64_t, 5> k{p.shape.seq_q, p.shape.seq_kv, p.shape.d_qk + p.shape.d_v, p.shape.causal, p.sms};
    if (std::find(shapes.begin(), shapes.end(), k) == shapes.end()) shapes.push_back(k);
  }
  bool waves = shapes.size() >= 3 && pts.size() >= 4;
  if (waves) {
    const auto rows = static_cast<Eigen::Index>(pts.size());
    Eigen::MatrixXd A(rows, 4);
    Eigen::VectorXd y = Eigen::VectorXd::Ones(rows);
    for (Eigen::Index i = 0; i < rows; ++i) {
      const auto& p = pts[static_cast<std::size_t>(i)];
      const auto ft = attn_features(p.shape, f.params.tile, p.sms);
      A(i, 0) = 1.0 / p.time_us;
      for (int j = 0; j < 3; ++j) A(i, j + 1) = ft[static_cast<std::size_t>(j)] / p.time_us;
    }
    const Eigen::VectorXd x = A.colPivHouseholderQr().solve(y);
    f.params.model = "waves";
    f.params.t0_us = x(0);
    f.params.c0_us = x(1);
    f.params.c1_us = x(2);
    f.params.c2_us = x(3);
    waves = f.params.c1_us > 0;
  }
  if (!waves) {
    // t = F / (r * sms): least squares of relative error in 1/r: minimise sum (u*F/(sms*t) - 1)^2.
    double num = 0, den = 0;
    for (const auto& p : pts) {
      const double z = p.shape.flops(backward) / (d(p.sms) * p.time_us);
      num += z;
      den += z * z;
    }
    f.params = AttnParams{};
    f.params.model = "rate";
    f.params.flops_per_sm_us = den / num;
  }
  for (const auto& p : pts) f.rel.push_back(attention_time_us(f.params, p.shape, backward, p.sms) / p.time_us - 1.0);
  f.residuals = summarize(f.rel);
  return f;
}

EfficiencyFit fit_efficiency(const std::vector<LinkPoint>& pts) {
  if (pts.empty()) too_few("link efficiency", 0, 1);
  double num = 0, den = 0;
  for (const auto& p : pts) {
    if (!(p.time_us > 0) || !(p.unit_us > 0))
      throw DataError(SourcePos{}, fmt::format("link efficiency fit: point '{}' has no time", p.source));
    const double z = p.unit_us / p.time_us;
    num += z;
    den += z * z;
  }
  EfficiencyFit f;
  f.efficiency = den / num;  // 1/e = num/den
  for (const auto& p : pts) f.rel.push_back(p.unit_us / f.efficiency / p.time_us - 1.0);
  f.residuals = summarize(f.rel);
  return f;
}

MemFit fit_membound(const std::vector<MemPoint>& pts) {
  if (pts.size() < 2) too_few("memory-bound", pts.size(), 2);
  const auto rows = static_cast<Eigen::Index>(pts.size());
  Eigen::MatrixXd A(rows, 2);
  Eigen::VectorXd y = Eigen::VectorXd::Ones(rows);
  for (Eigen::Index i = 0; i < rows; ++i) {
    const auto& p = pts[static_cast<std::size_t>(i)];
    if (!(p.time_us > 0) || p.bytes < 0) throw DataError(SourcePos{}, "memory-bound fit: a point has no time");
    A(i, 0) = 1.0 / p.time_us;
    A(i, 1) = p.bytes / p.time_us;
  }
  const Eigen::VectorXd x = A.colPivHouseholderQr().solve(y);
  if (!(x(1) > 0)) throw DataError(SourcePos{}, "memory-bound fit: bandwidth not positive (byte counts too similar)");
  MemFit f;
  f.overhead_us = x(0);
  f.bytes_per_us = 1.0 / x(1);
  for (const auto& p : pts) f.rel.push_back((f.overhead_us + p.bytes / f.bytes_per_us) / p.time_us - 1.0);
  f.residuals = summarize(f.rel);
  return f;
}

GapFit fit_gaps(const std::vector<GapSample>& samples) {
  std::vector<double> gaps, lat;
  for (const auto& s : samples) {
    if (s.launch_us < 0) continue;
    if (s.launch_us <= s.prev_end_us) gaps.push_back(s.start_us - s.prev_end_us);
    else lat.push_back(s.start_us - s.launch_us);
  }
  GapFit g;
  g.gap_us = std::max(0.0, median(gaps));
  g.launch_latency_us = std::max(0.0, median(lat));
  g.gap_points = static_cast<std::int64_t>(gaps.size());
  g.latency_points = static_cast<std::int64_t>(lat.size());
  return g;
}

}  // namespace trainsim::calibration
