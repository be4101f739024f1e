// Fits (sim/calibration/fit.hpp): synthetic points generated from a known formula must give
// back the formula's parameters; the calibration file must round-trip and be read strictly.
#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "calibration/calibration_file.hpp"
#include "calibration/fit.hpp"
#include "core/error.hpp"

using namespace trainsim::calibration;

TEST_CASE("GEMM fit recovers a known wave-quantised formula, tile size included") {
  // Truth: tile 128x128, t0 = 4 us, a = 0.0009 us per K per wave, b = 0.5 us per wave,
  // c = 3e-7 us per byte (3.3 TB/s). Points: DeepGEMM-like shapes on 132 SMs and grouped
  // shapes on 112/123 SMs (the trace's SMs left by communication).
  const GemmParams truth{128, 128, 4.0, 0.0009, 0.5, 3e-7};
  std::vector<GemmPoint> pts;
  for (std::int64_t m : {64, 128, 4096})
    for (auto [n, k] : std::vector<std::pair<std::int64_t, std::int64_t>>{{2112, 7168}, {24576, 1536}, {32768, 512}, {7168, 16384}, {4096, 7168}, {7168, 2048}})
      pts.push_back(GemmPoint{m, n, k, 1, 132, gemm_time_us(truth, m, n, k, 1, 132), "synthetic"});
  for (std::int64_t sms : {112, 123, 132})
    for (auto [n, k] : std::vector<std::pair<std::int64_t, std::int64_t>>{{4096, 7168}, {7168, 2048}, {2048, 7168}, {7168, 4096}})
      pts.push_back(GemmPoint{8192, n, k, 4, sms, gemm_time_us(truth, 8192, n, k, 4, sms), "synthetic"});
  const GemmFit f = fit_gemm(pts);
  CHECK(f.params.tile_m == 128);
  CHECK(f.params.tile_n == 128);
  CHECK(f.params.t0_us == Approx(truth.t0_us).epsilon(1e-6));
  CHECK(f.params.a_us == Approx(truth.a_us).epsilon(1e-6));
  CHECK(f.params.b_us == Approx(truth.b_us).epsilon(1e-6));
  CHECK(f.params.c_us_per_byte == Approx(truth.c_us_per_byte).epsilon(1e-6));
  CHECK(f.residuals.max_rel < 1e-9);
  CHECK(f.residuals.points == static_cast<std::int64_t>(pts.size()));
}

TEST_CASE("GEMM fit recovers a known weight-gradient factor") {
  // Truth: the main curve of the test above; weight-gradient kernels (dW = X^T dY, K = tokens)
  // take 1.4x the main curve's time. The main curve must come back unbiased by the wgrad points
  // and the factor exactly.
  const GemmParams truth{128, 128, 4.0, 0.0009, 0.5, 3e-7};
  const double factor = 1.4;
  std::vector<GemmPoint> pts;
  for (std::int64_t m : {64, 128, 4096})
    for (auto [n, k] : std::vector<std::pair<std::int64_t, std::int64_t>>{{2112, 7168}, {24576, 1536}, {32768, 512}, {7168, 16384}})
      pts.push_back(GemmPoint{m, n, k, 1, 132, gemm_time_us(truth, m, n, k, 1, 132), "synthetic", false});
  // attn(W)-like shapes: M x N = weight, K = 4096 tokens, on the SMs left by communication.
  for (std::int64_t sms : {112, 132})
    for (auto [m, n] : std::vector<std::pair<std::int64_t, std::int64_t>>{{7168, 16384}, {32768, 512}, {24576, 1536}, {576, 7168}, {1536, 7168}})
      pts.push_back(GemmPoint{m, n, 4096, 1, sms, factor * gemm_time_us(truth, m, n, 4096, 1, sms), "synthetic wgrad", true});
  const GemmFit f = fit_gemm(pts);
  CHECK(f.params.tile_m == 128);
  CHECK(f.params.tile_n == 128);
  CHECK(f.params.a_us == Approx(truth.a_us).epsilon(1e-6));
  CHECK(f.params.t0_us == Approx(truth.t0_us).epsilon(1e-6));
  CHECK(f.wgrad_factor == Approx(factor).epsilon(1e-9));
  CHECK(f.residuals.max_rel < 1e-9);
  CHECK(f.wgrad_residuals.points == 10);
  CHECK(f.main_residuals.points == static_cast<std::int64_t>(pts.size()) - 10);
  // The one-curve fit (wgrad points unflagged) is biased: what the factor removes.
  std::vector<GemmPoint> unflagged = pts;
  for (auto& p : unflagged) p.wgrad = false;
  const GemmFit one = fit_gemm(unflagged);
  CHECK(one.wgrad_factor == 1.0);
  CHECK(one.residuals.rms_rel > 0.05);
  // No wgrad points: factor 1.
  std::vector<GemmPoint> main_only(pts.begin(), pts.end() - 10);
  CHECK(fit_gemm(main_only).wgrad_factor == 1.0);
}

TEST_CASE("wave quantisation: fewer SMs means more waves, efficiency rises with size") {
  // 4 groups x 64 x 16 tiles of 128x128 = 4096 tiles -> ceil(4096/132) = 32, ceil(4096/112) = 37.
  CHECK(gemm_waves(8192, 2048, 4, 132, 128, 128) == 32.0);
  CHECK(gemm_waves(8192, 2048, 4, 112, 128, 128) == 37.0);
  const GemmParams p{128, 128, 4.0, 0.0009, 0.5, 0.0};
  auto eff = [&](std::int64_t m) { return 2.0 * double(m) * 4096 * 7168 / gemm_time_us(p, m, 4096, 7168, 1, 132); };
  CHECK(eff(128) < eff(1024));
  CHECK(eff(1024) < eff(16384));
  // Saturation: the per-wave K-loop rate, 2*128*128 FLOPs per K per SM in a us.
  const double limit = 2.0 * 128 * 128 * 132 / 0.0009;
  CHECK(eff(1 << 20) < limit);
  CHECK(eff(1 << 20) > 0.9 * limit);
}

TEST_CASE("attention and memory-bound fits recover their parameters") {
  std::vector<AttnPoint> a;
  const double rate = 5e6;  // FLOPs per SM per us
  for (double f : {1e11, 5e11, 2e12})
    for (std::int64_t sms : {100, 132}) a.push_back(AttnPoint{f, sms, f / (rate * double(sms)), "synthetic"});
  const AttnFit af = fit_attention(a);
  CHECK(af.flops_per_sm_us == Approx(rate).epsilon(1e-12));
  CHECK(af.residuals.max_rel < 1e-12);

  std::vector<MemPoint> m;
  for (double b : {1e6, 1e7, 1e8, 1e9}) m.push_back(MemPoint{b, 3.0 + b / 2.5e6});
  const MemFit mf = fit_membound(m);
  CHECK(mf.overhead_us == Approx(3.0).epsilon(1e-9));
  CHECK(mf.bytes_per_us == Approx(2.5e6).epsilon(1e-9));
}

TEST_CASE("kernel gap: medians of back-to-back gaps and idle-stream launch latencies") {
  std::vector<GapSample> s{{10, 5, 12}, {20, 15, 23}, {30, 29, 32},  // launched before end: gaps 2, 3, 2
                           {40, 50, 57}, {60, 70, 79}};              // idle stream: latencies 7, 9
  const GapFit g = fit_gaps(s);
  CHECK(g.gap_us == 2.0);
  CHECK(g.launch_latency_us == 8.0);
  CHECK(g.gap_points == 3);
  CHECK(g.latency_points == 2);
}

TEST_CASE("too few points is a DataError") {
  CHECK_THROWS_AS(fit_gemm({}), trainsim::DataError);
  CHECK_THROWS_AS(fit_attention({}), trainsim::DataError);
}

TEST_CASE("calibration file round-trips byte for byte and is read strictly") {
  Calibration c;
  c.gpu = "h800";
  c.sms = 132;
  c.command = "trainsim calibrate x --gpu h800 -o y";
  c.inputs = {"a (b; \"c\")"};
  c.gemm_fp8 = GemmParams{64, 128, 1.25, 0.0007, 0.13, 2.3e-7};
  c.gemm_fp8_fit.residuals = Residuals{38, 0.097, 0.19, -0.009};
  c.gemm_fp8_fit.source = "s";
  c.gemm_fp8_wgrad_factor = 1.45;
  c.gemm_fp8_wgrad_fit.residuals = Residuals{20, 0.089, 0.17, -0.008};
  c.gemm_fp8_wgrad_fit.source = "w";
  c.attn_fwd_flops_per_sm_us = 4.9e6;
  c.attn_bwd_flops_per_sm_us = 2.8e6;
  c.mem_bytes_per_us = 3e6;
  c.mem_overhead_us = 2;
  c.kernel_gap_us = 2;
  c.launch_latency_us = 9.5;
  const std::string text = write_calibration(c);
  const Calibration r = read_calibration_text(text, "mem.toml");
  CHECK(write_calibration(r) == text);
  CHECK(r.gemm_fp8.c_us_per_byte == c.gemm_fp8.c_us_per_byte);
  CHECK(r.gemm_fp8_wgrad_factor == 1.45);
  CHECK(r.gemm_fp8_wgrad_fit.residuals.points == 20);
  // Format version 2 only: a version-1 file (no [gemm_fp8_wgrad]) is rejected.
  std::string v1 = text;
  v1.replace(v1.find("version = 2"), 11, "version = 1");
  CHECK_THROWS_AS(read_calibration_text(v1, "v1.toml"), trainsim::ConfigError);
  std::string bad = text;
  bad.replace(bad.find("t0_us"), 5, "t1_us");
  try {
    read_calibration_text(bad, "bad.toml");
    FAIL("expected ConfigError");
  } catch (const trainsim::ConfigError& e) {
    CHECK(std::string(e.what()).find("bad.toml:") != std::string::npos);
  }
}
