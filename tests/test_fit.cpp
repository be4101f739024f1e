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
      pts.push_back(GemmPoint{m, n, k, 1, 132, gemm_time_us(truth, m, n, k, 1, 132), "synthetic", false, ""});
  for (std::int64_t sms : {112, 123, 132})
    for (auto [n, k] : std::vector<std::pair<std::int64_t, std::int64_t>>{{4096, 7168}, {7168, 2048}, {2048, 7168}, {7168, 4096}})
      pts.push_back(GemmPoint{8192, n, k, 4, sms, gemm_time_us(truth, 8192, n, k, 4, sms), "synthetic", false, ""});
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
      pts.push_back(GemmPoint{m, n, k, 1, 132, gemm_time_us(truth, m, n, k, 1, 132), "synthetic", false, ""});
  // attn(W)-like shapes: M x N = weight, K = 4096 tokens, on the SMs left by communication.
  for (std::int64_t sms : {112, 132})
    for (auto [m, n] : std::vector<std::pair<std::int64_t, std::int64_t>>{{7168, 16384}, {32768, 512}, {24576, 1536}, {576, 7168}, {1536, 7168}})
      pts.push_back(GemmPoint{m, n, 4096, 1, sms, factor * gemm_time_us(truth, m, n, 4096, 1, sms), "synthetic wgrad", true, ""});
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
  // Truth: the wave model, tile 128: t = 3 + waves * (1.5 + kv * (4e-5 * (d_qk + d_v) + 3e-3)) us,
  // on FlashAttention-3-like shapes (16k tokens, heads = 2048 / head dim, masks on and off).
  AttnParams truth;
  truth.t0_us = 3.0, truth.c0_us = 1.5, truth.c1_us = 4e-5, truth.c2_us = 3e-3;
  std::vector<AttnPoint> a;
  for (std::int64_t d : {64, 128, 256})
    for (std::int64_t s : {512, 2048, 8192})
      for (bool causal : {false, true}) {
        const AttnShape sh{16384 / s, s, s, 2048 / d, d, d, causal};
        a.push_back(AttnPoint{sh, 132, attention_time_us(truth, sh, false, 132), "synthetic", "t"});
      }
  const AttnFit af = fit_attention(a, false);
  CHECK(af.params.model == "waves");
  CHECK(af.params.c1_us == Approx(truth.c1_us).epsilon(1e-6));
  CHECK(af.params.c2_us == Approx(truth.c2_us).epsilon(1e-6));
  CHECK(af.params.c0_us == Approx(truth.c0_us).epsilon(1e-5));
  CHECK(af.residuals.max_rel < 1e-9);
  // One shape only (a trace of one model): the rate model, FLOPs / (rate * sms).
  std::vector<AttnPoint> one;
  const AttnShape mla{1, 4096, 4096, 128, 192, 128, true};
  const double rate = 4.5e6;
  for (std::int64_t sms : {112, 132}) one.push_back(AttnPoint{mla, sms, mla.flops(false) / (rate * double(sms)), "trace", "t"});
  const AttnFit rf = fit_attention(one, false);
  CHECK(rf.params.model == "rate");
  CHECK(rf.params.flops_per_sm_us == Approx(rate).epsilon(1e-9));
  // Model FLOPs of a causal MLA layer: 2 * s^2 * heads * (192 + 128) / 2, twice that backward.
  CHECK(mla.flops(false) == Approx(4096.0 * 4096 * 128 * 320));
  CHECK(mla.flops(true) == Approx(2 * mla.flops(false)));

  std::vector<MemPoint> m;
  for (double b : {1e6, 1e7, 1e8, 1e9}) m.push_back(MemPoint{b, 3.0 + b / 2.5e6, "norm", "s", "g"});
  const MemFit mf = fit_membound(m);
  CHECK(mf.overhead_us == Approx(3.0).epsilon(1e-9));
  CHECK(mf.bytes_per_us == Approx(2.5e6).epsilon(1e-9));
}

TEST_CASE("link efficiency: least squares of relative error recovers a known efficiency") {
  // Modelled times at efficiency 1 and measurements taken at 0.7: the fit returns 0.7.
  std::vector<LinkPoint> p;
  for (double u : {100.0, 250.0, 900.0}) p.push_back(LinkPoint{"ib", u, u / 0.7, "synthetic"});
  const EfficiencyFit f = fit_efficiency(p);
  CHECK(f.efficiency == Approx(0.7).epsilon(1e-12));
  CHECK(f.residuals.max_rel < 1e-12);
}

TEST_CASE("held-out helpers: k-fold and hold-out predict points the fit did not see") {
  // A model whose fit is the mean time: every held-out point is predicted by the mean of the
  // others, computed here by hand.
  struct P {
    double time_us;
  };
  const std::vector<P> pts = {{1}, {2}, {3}, {4}};
  auto fit = [](const std::vector<P>& tr) {
    double s = 0;
    for (const auto& p : tr) s += p.time_us;
    return s / double(tr.size());
  };
  auto predict = [](double mean, const P&) { return mean; };
  const auto rel = kfold_rel(pts, 4, fit, predict);  // leave-one-out
  REQUIRE(rel.size() == 4);
  CHECK(rel[0] == Approx((2.0 + 3 + 4) / 3 / 1 - 1));
  CHECK(rel[3] == Approx((1.0 + 2 + 3) / 3 / 4 - 1));
  const auto h = holdout_rel(pts, [](const P& p) { return p.time_us > 3; }, fit, predict);
  REQUIRE(h.size() == 1);
  CHECK(h[0] == Approx(2.0 / 4 - 1));
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
  CHECK_THROWS_AS(fit_attention({}, false), trainsim::DataError);
  CHECK_THROWS_AS(fit_efficiency({}), trainsim::DataError);
}

TEST_CASE("calibration file round-trips byte for byte and is read strictly") {
  Calibration c;
  c.gpu = "h800";
  c.sms = 132;
  c.command = "trainsim calibrate x --gpu h800 -o y";
  c.inputs = {"a (b; \"c\")"};
  GemmClass g;
  g.params = GemmParams{64, 128, 1.25, 0.0007, 0.13, 2.3e-7};
  g.fit.residuals = Residuals{38, 0.097, 0.19, -0.009};
  g.fit.heldout = {HeldOut{"5-fold", Residuals{38, 0.1, 0.2, -0.01}}, HeldOut{"largest 20% by FLOPs", Residuals{8, 0.12, 0.3, 0.02}}};
  g.fit.source = "s";
  g.fit.measured_on = "h800";
  c.gemm["fp8"] = g;
  g.fit.basis = Basis::SameDie;
  g.fit.measured_on = "h100-sxm";
  g.fit.transfer = "same die";
  c.gemm["bf16"] = g;
  c.gemm_fp8 = c.gemm.at("fp8").params;
  c.gemm_fp8_wgrad_factor = 1.45;
  c.gemm_fp8_wgrad_fit.residuals = Residuals{20, 0.089, 0.17, -0.008};
  c.gemm_fp8_wgrad_fit.source = "w";
  c.attn_fwd.c1_us = 3e-5;
  c.attn_bwd.model = "rate";
  c.attn_bwd.flops_per_sm_us = 2.8e6;
  c.attn_fwd_flops_per_sm_us = 4.9e6;
  MemClass m;
  m.bytes_per_us = 3e6;
  m.overhead_us = 2;
  c.mem["default"] = m;
  m.bytes_per_us = 1e6;
  c.mem["norm"] = m;
  c.kernel_gap_us = 2;
  c.launch_latency_us = 9.5;
  c.ib.efficiency = 0.74;
  c.ib.fit.present = true;
  c.ib.fit.source = "deepep";
  const std::string text = write_calibration(c);
  const Calibration r = read_calibration_text(text, "mem.toml");
  CHECK(write_calibration(r) == text);
  CHECK(r.gemm.at("fp8").params.c_us_per_byte == c.gemm.at("fp8").params.c_us_per_byte);
  CHECK(r.gemm_fp8.a_us == c.gemm.at("fp8").params.a_us);
  CHECK(r.gemm.at("bf16").fit.basis == Basis::SameDie);
  CHECK(r.gemm.at("fp8").fit.heldout.size() == 2);
  CHECK(r.gemm.at("fp8").fit.heldout[1].residuals.points == 8);
  CHECK(r.gemm_fp8_wgrad_factor == 1.45);
  CHECK(r.mem.at("norm").bytes_per_us == 1e6);
  CHECK(r.ib.fit.present);
  CHECK_FALSE(r.nvlink.fit.present);
  // Format version 3 only: an older file is rejected with a message naming the regeneration.
  std::string v2 = text;
  v2.replace(v2.find("version = 3"), 11, "version = 2");
  try {
    read_calibration_text(v2, "v2.toml");
    FAIL("expected ConfigError");
  } catch (const trainsim::ConfigError& e) {
    CHECK(std::string(e.what()).find("v2.toml:") != std::string::npos);
    CHECK(std::string(e.what()).find("trainsim calibrate") != std::string::npos);
  }
  std::string bad = text;
  bad.replace(bad.find("t0_us"), 5, "t1_us");
  try {
    read_calibration_text(bad, "bad.toml");
    FAIL("expected ConfigError");
  } catch (const trainsim::ConfigError& e) {
    CHECK(std::string(e.what()).find("bad.toml:") != std::string::npos);
  }
  // A class that is not measured must say what it was transferred by.
  std::string nobasis = text;
  const auto at = nobasis.find("transfer = \"same die\"\n");
  REQUIRE(at != std::string::npos);
  nobasis.erase(at, std::string("transfer = \"same die\"\n").size());
  CHECK_THROWS_AS(read_calibration_text(nobasis, "nb.toml"), trainsim::ConfigError);
  // Held-out arrays of unequal length are an error naming the key.
  std::string uneven = text;
  const auto hp = uneven.find("heldout_points = [38, 8]");
  REQUIRE(hp != std::string::npos);
  uneven.replace(hp, std::string("heldout_points = [38, 8]").size(), "heldout_points = [38]");
  CHECK_THROWS_AS(read_calibration_text(uneven, "u.toml"), trainsim::ConfigError);
}
