#include "calibration/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/reader.hpp"
#include "core/error.hpp"

namespace trainsim::calibration {

namespace {
double d(std::int64_t v) { return static_cast<double>(v); }

bool is_membound_class(const std::string& c) {
  return c == "norm" || c == "elementwise" || c == "permute" || c == "quant_cast";
}

struct TableData {
  std::vector<GemmPoint> gemm;
  std::vector<double> mem_bandwidth_gbs;
  std::vector<std::string> mem_sources;
  std::string source;
  std::string kind;  // "DeepGEMM FP8 table" | "FlashMLA table"
};

TableData read_table(const std::string& path, std::int64_t sms) {
  const toml::table root = parse_toml_file(path);
  Section top(root, "", path);
  TableData t;
  top.string("gpu");
  t.source = top.string("source");
  top.allow("row");
  top.finish();
  const toml::array* rows = root["row"].as_array();
  if (rows == nullptr || rows->empty()) top.fail("row", "expected [[row]] entries");
  std::size_t i = 0;
  for (const toml::node& el : *rows) {
    const std::string prefix = fmt::format("row[{}]", i++);
    const toml::table* tb = el.as_table();
    if (tb == nullptr) throw ConfigError(pos_of(el, path), prefix, "expected a table ([[row]])");
    Section s(*tb, prefix, path);
    if (s.has("layout")) {  // DeepGEMM
      t.kind = "DeepGEMM FP8 table";
      const std::string layout = s.choice("layout", {"dense", "contiguous", "masked"});
      GemmPoint p;
      p.groups = s.integer("groups", 1, 1 << 20);
      p.m = s.integer("m", 1, INT64_MAX / 4);
      p.n = s.integer("n", 1, INT64_MAX / 4);
      p.k = s.integer("k", 1, INT64_MAX / 4);
      const double tflops = s.number("tflops", 1e-6, 1e6);
      s.number("tflops_initial", 0, 1e6);
      const std::string src = s.string("source");
      s.finish();
      // Masked rows are decode kernels with M padded per group: not training shapes.
      if (layout == "masked") continue;
      p.sms = sms;
      p.time_us = 2.0 * d(p.m) * d(p.n) * d(p.k) * d(p.groups) / (tflops * 1e12) * 1e6;
      p.source = fmt::format("DeepGEMM {} g={} m={} n={} k={} ({} TFLOPS; {})", layout, p.groups, p.m, p.n, p.k,
                             tflops, src);
      t.gemm.push_back(std::move(p));
    } else {  // FlashMLA
      t.kind = "FlashMLA table";
      s.string("kernel");
      const std::string bound = s.choice("bound", {"memory", "compute"});
      const std::string src = s.string("source");
      if (bound == "memory") {
        t.mem_bandwidth_gbs.push_back(s.number("achieved_gbs", 1e-3, 1e9));
        t.mem_sources.push_back(src);
      } else {
        s.number("achieved_tflops", 1e-6, 1e6);
      }
      s.finish();
    }
  }
  return t;
}

}  // namespace

std::int64_t kernel_sms(const KernelRecord& k) {
  std::int64_t sms = k.sms_available;
  const std::int64_t blocks = std::max<std::int64_t>(k.grid[0], 1) * std::max<std::int64_t>(k.grid[1], 1) *
                              std::max<std::int64_t>(k.grid[2], 1);
  if (k.grid[0] > 0 && blocks < sms) sms = blocks;
  return std::max<std::int64_t>(sms, 1);
}

double attention_flops(const Shape& s, std::int64_t v_head_dim, bool backward) {
  const double full = 2.0 * d(s.m) * d(s.n) * d(std::max<std::int64_t>(s.groups, 1)) * d(s.k + v_head_dim);
  return (backward ? 2.0 : 1.0) * full / 2.0;
}

std::vector<std::vector<std::size_t>> attention_bwd_ops(const Profile& p) {
  std::map<std::int64_t, std::vector<std::size_t>> open;  // per stream, the op being collected
  std::vector<std::vector<std::size_t>> ops;
  for (std::size_t i = 0; i < p.kernels.size(); ++i) {
    const auto& k = p.kernels[i];
    if (k.op_class != "attn_bwd") continue;
    auto& cur = open[k.stream];
    if (k.name.find("Preprocess") != std::string::npos && !cur.empty()) {
      ops.push_back(std::move(cur));
      cur.clear();
    }
    cur.push_back(i);
  }
  for (auto& [s, cur] : open)
    if (!cur.empty()) ops.push_back(std::move(cur));
  std::sort(ops.begin(), ops.end());
  return ops;
}

CalibrateResult calibrate(const CalibrateInputs& in) {
  CalibrateResult r;
  Calibration& c = r.cal;
  c.gpu = in.gpu;
  c.sms = in.sms;
  c.command = in.command;

  std::vector<double> mem_gbs;
  std::vector<std::string> mem_src, gemm_src;
  for (const auto& path : in.table_paths) {
    TableData t = read_table(path, in.sms);
    c.inputs.push_back(fmt::format("{} ({}; {})", path, t.kind, t.source));
    if (!t.gemm.empty()) gemm_src.push_back(fmt::format("{} dense+contiguous rows of {} ({} SMs)", t.gemm.size(), path, in.sms));
    for (auto& g : t.gemm) r.gemm_points.push_back(std::move(g));
    mem_gbs.insert(mem_gbs.end(), t.mem_bandwidth_gbs.begin(), t.mem_bandwidth_gbs.end());
    for (const auto& s : t.mem_sources) mem_src.push_back(s);
  }

  std::vector<GapSample> gaps;
  std::vector<double> mem_durations;
  std::size_t trace_gemms = 0, trace_dense = 0, trace_wgrad = 0;
  std::string profile_names;
  for (const auto& path : in.profile_paths) {
    const Profile p = read_profile(path);
    c.inputs.push_back(fmt::format("{} (kernel profile, {} kernels; {})", path, p.kernels.size(), p.provenance.source));
    profile_names += (profile_names.empty() ? "" : ", ") + path;
    std::map<std::int64_t, const KernelRecord*> last;  // per stream
    for (std::size_t i = 0; i < p.kernels.size(); ++i) {
      const KernelRecord& k = p.kernels[i];
      if (auto it = last.find(k.stream); it != last.end())
        gaps.push_back(GapSample{it->second->ts_us + it->second->dur_us, k.launch_ts_us, k.ts_us});
      last[k.stream] = &k;
      if (is_membound_class(k.op_class)) mem_durations.push_back(k.dur_us);
      const bool dense = k.op_class == "fp8_gemm";
      if ((k.op_class == "fp8_grouped_gemm" || dense) && k.shape.m > 0 && k.shape.n > 0 && k.shape.k > 0 && k.dur_us > 0) {
        GemmPoint g;
        g.m = k.shape.m, g.n = k.shape.n, g.k = k.shape.k, g.groups = std::max<std::int64_t>(k.shape.groups, 1);
        g.sms = kernel_sms(k);
        g.time_us = k.dur_us;
        // Weight-gradient kernels: the shape rule names the op's pass (attn(W): "... bwd_weight").
        g.wgrad = k.shape.how.find("bwd_weight") != std::string::npos;
        g.source = fmt::format("{} kernel #{} ({}, {} SMs{})", path, i, k.phase, g.sms, g.wgrad ? ", wgrad" : "");
        if (g.wgrad) ++trace_wgrad;
        r.gemm_points.push_back(std::move(g));
        ++(dense ? trace_dense : trace_gemms);
      }
      if (k.op_class == "attn_fwd" && k.shape.m > 0 && k.dur_us > 0) {
        if (in.v_head_dim <= 0) throw UsageError("calibrate: the profile has attention kernels; give --model for the value head dim");
        r.attn_fwd_points.push_back(AttnPoint{attention_flops(k.shape, in.v_head_dim, false), kernel_sms(k), k.dur_us,
                                              fmt::format("{} kernel #{} ({})", path, i, k.phase)});
      }
    }
    for (const auto& op : attention_bwd_ops(p)) {
      double t = 0;
      const KernelRecord* main = nullptr;
      for (std::size_t i : op) {
        t += p.kernels[i].dur_us;
        if (main == nullptr || p.kernels[i].dur_us > main->dur_us) main = &p.kernels[i];
      }
      if (main->shape.m <= 0) continue;
      if (in.v_head_dim <= 0) throw UsageError("calibrate: the profile has attention kernels; give --model for the value head dim");
      r.attn_bwd_points.push_back(AttnPoint{attention_flops(main->shape, in.v_head_dim, true), kernel_sms(*main), t,
                                            fmt::format("{} kernels #{}..#{} ({} kernels, {})", path, op.front(),
                                                        op.back(), op.size(), main->phase)});
    }
  }
  if (trace_gemms > 0) gemm_src.push_back(fmt::format("{} FP8 grouped GEMM kernels with inferred shapes from {} (SMs = "
                                                      "min(sms_available, blocks))", trace_gemms, profile_names));
  if (trace_dense > 0) gemm_src.push_back(fmt::format("{} non-grouped FP8 GEMM kernels with shapes from the layer-order "
                                                      "rules from {}", trace_dense, profile_names));

  // GEMM
  const GemmFit gf = fit_gemm(r.gemm_points);
  c.gemm_fp8 = gf.params;
  r.gemm_rel = gf.rel;
  c.gemm_fp8_fit.residuals = gf.residuals;
  for (const auto& s : gemm_src) c.gemm_fp8_fit.source += (c.gemm_fp8_fit.source.empty() ? "" : "; ") + s;
  c.gemm_fp8_wgrad_factor = gf.wgrad_factor;
  c.gemm_fp8_wgrad_fit.residuals = gf.wgrad_residuals;
  c.gemm_fp8_wgrad_fit.source =
      trace_wgrad == 0 ? std::string("no weight-gradient GEMM kernel with a shape in the inputs (factor 1)")
                       : fmt::format("{} FP8 weight-gradient GEMM kernels (shape rule names pass bwd_weight: attn(W)) from {}; "
                                     "factor = least squares of relative error with the [gemm_fp8] curve fixed",
                                     trace_wgrad, profile_names);
  c.gemm_fp8_wgrad_fit.notes =
      "a different kernel (fp8_dptp128c_acc: dW = X^T dY, K = tokens, 128x1 rescaled tiles); applied to model ops with "
      "pass bwd_weight, dense and grouped (assumption for grouped: no grouped wgrad kernel has a shape in the trace); "
      "the [gemm_fp8] curve is fitted to the other points only";
  c.gemm_fp8_fit.notes =
      "residuals over all points, weight-gradient points with the [gemm_fp8_wgrad] factor (curve fitted to the "
      "non-wgrad points: rms " + fmt::format("{:.4g}, bias {:.4g}", gf.main_residuals.rms_rel, gf.main_residuals.mean_rel) +
      "); tile size chosen from {64,128,256}^2 by smallest RMS; DeepGEMM masked (decode) rows excluded; BF16/other dtypes "
      "use this fit x peak ratio (assumption: no large-shape BF16 GEMM was measured)";

  // Attention
  if (r.attn_fwd_points.empty() || r.attn_bwd_points.empty())
    throw DataError(SourcePos{}, "calibrate: no attention forward/backward kernels with shapes in the profiles");
  const AttnFit af = fit_attention(r.attn_fwd_points), ab = fit_attention(r.attn_bwd_points);
  c.attn_fwd_flops_per_sm_us = af.flops_per_sm_us;
  c.attn_bwd_flops_per_sm_us = ab.flops_per_sm_us;
  r.attn_fwd_rel = af.rel;
  r.attn_bwd_rel = ab.rel;
  c.attn_fwd_fit.residuals = af.residuals;
  c.attn_bwd_fit.residuals = ab.residuals;
  c.attn_fwd_fit.source = fmt::format("{} FlashAttention-3 forward kernels of {}", af.rel.size(), profile_names);
  c.attn_bwd_fit.source = fmt::format("{} FlashAttention-3 backward ops (preprocess + main + postprocess kernels) of {}",
                                      ab.rel.size(), profile_names);
  const std::string one_shape = fmt::format(
      "FLOPs = model FLOPs (causal; bwd = 2x fwd) with v_head_dim {} from the model config; all points share one "
      "shape, so the scaling with sequence and heads is by FLOPs (assumption, not fitted)",
      in.v_head_dim);
  c.attn_fwd_fit.notes = c.attn_bwd_fit.notes = one_shape;

  // Memory-bound
  if (mem_gbs.empty()) throw DataError(SourcePos{}, "calibrate: no memory-bound bandwidth measurement (FlashMLA table)");
  c.mem_bytes_per_us = *std::max_element(mem_gbs.begin(), mem_gbs.end()) * 1e9 / 1e6;
  if (mem_durations.empty()) throw DataError(SourcePos{}, "calibrate: no memory-bound kernels in the profiles");
  std::sort(mem_durations.begin(), mem_durations.end());
  c.mem_overhead_us = mem_durations[mem_durations.size() / 10];
  c.mem_fit.residuals.points = 0;
  c.mem_fit.source = fmt::format("bandwidth: best achieved by a tuned memory-bound kernel ({}); overhead: 10th percentile "
                                 "of {} memory-bound kernel durations (norm, elementwise, permute, quant_cast) in {}",
                                 fmt::join(mem_src, "; "), mem_durations.size(), profile_names);
  c.mem_fit.notes = "no residuals: the trace's memory-bound kernels carry no byte counts, so the bandwidth cannot be "
                    "checked against them; the FlashMLA figure is a decode kernel, an upper bound for simple kernels";

  // Gaps
  const GapFit g = fit_gaps(gaps);
  c.kernel_gap_us = g.gap_us;
  c.launch_latency_us = g.launch_latency_us;
  c.gap_fit.residuals.points = g.gap_points + g.latency_points;
  c.gap_fit.source = fmt::format("median start - previous end over {} back-to-back kernel pairs (next launched before the "
                                 "previous ended) and median start - launch over {} kernels launched onto an idle stream, "
                                 "in {}",
                                 g.gap_points, g.latency_points, profile_names);
  c.gap_fit.notes = "trace times are rounded to 1 us";
  return r;
}

}  // namespace trainsim::calibration
