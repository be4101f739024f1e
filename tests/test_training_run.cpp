// Whole-run integration against closed forms.
#include <catch2/catch.hpp>

#include "cost/training_run.hpp"

using namespace trainsim;

namespace {
PhaseSpec phase(double tokens, std::int64_t batch, std::int64_t seq) {
  PhaseSpec p;
  p.name = "pretrain";
  p.seq_len = seq;
  p.global_batch = batch;
  p.tokens = tokens;
  p.batch_multiple = 1;
  p.pretraining = true;
  return p;
}
RunCostInputs inputs(std::int64_t gpus, double price) {
  RunCostInputs in;
  in.gpus = gpus;
  in.price_per_gpu_hour = price;
  in.tdp_w = 700;
  return in;
}
}  // namespace

TEST_CASE("Constant step time: GPU-hours = steps x step time x GPUs", "[cost]") {
  // 1e12 tokens, 1024 sequences of 4096 tokens per step -> 1e12 / 4194304 steps of 2.5 s on 512 GPUs.
  const auto r = simulate_run({phase(1e12, 1024, 4096)}, inputs(512, 2.0),
                              [](std::size_t, std::int64_t) { return StepTime{2.5, 0.5}; });
  const double steps = 1e12 / (1024.0 * 4096);
  const double gpu_h = steps * 2.5 * 512 / 3600;
  CHECK(r.gpu_hours == Approx(gpu_h).epsilon(1e-12));
  CHECK(r.cost_usd == Approx(gpu_h * 2.0).epsilon(1e-12));
  CHECK(r.wall_clock_days == Approx(steps * 2.5 / 86400).epsilon(1e-12));
  CHECK(r.gpu_hours_per_trillion_tokens == Approx(gpu_h).epsilon(1e-12));
  CHECK(r.phases[0].steps == static_cast<std::int64_t>(std::ceil(steps)));
  CHECK_FALSE(r.energy_mwh.has_value());  // no idle power / PUE given
}

TEST_CASE("A batch ramp costs nothing extra when step time is proportional to batch", "[cost]") {
  // t(B) = a·B: every token costs a/seq seconds whatever the batch, so the ramp's total time is
  // a·tokens/seq exactly, with or without the ramp.
  const double a = 1e-3;
  auto p = phase(100e9, 4096, 4096);
  p.ramp_start = 512;
  p.ramp_tokens = 30e9;
  p.batch_multiple = 64;
  const auto r = simulate_run({p}, inputs(64, 1.0), [&](std::size_t, std::int64_t b) {
    return StepTime{a * static_cast<double>(b), 1.0};
  });
  CHECK(r.phases[0].compute_s == Approx(a * 100e9 / 4096).epsilon(1e-9));
}

TEST_CASE("A ramp with constant step time takes more steps: closed form for the batches used", "[cost]") {
  // Segments of 10e9/4 tokens at midpoint batches 1000 + 1000·(0.125, 0.375, 0.625, 0.875),
  // rounded down to multiples of 100: 1100, 1300, 1600, 1800; then 10e9 tokens at 2000.
  auto p = phase(20e9, 2000, 1000);
  p.ramp_start = 1000;
  p.ramp_tokens = 10e9;
  p.batch_multiple = 100;
  RunCostInputs in = inputs(8, 1.0);
  in.ramp_segments = 4;
  const auto r = simulate_run({p}, in, [](std::size_t, std::int64_t) { return StepTime{1.0, 1.0}; });
  const double seg = 2.5e9 / 1000;  // sequences per segment
  const double steps = seg / 1100 + seg / 1300 + seg / 1600 + seg / 1800 + 10e9 / 1000 / 2000;
  CHECK(r.phases[0].compute_s == Approx(steps).epsilon(1e-12));
}

TEST_CASE("Goodput follows the first-order Young/Daly model", "[cost]") {
  RunCostInputs in = inputs(1000, 2.0);
  in.goodput.failures_per_gpu_day = 0.001;   // one failure per 1000 GPU-days -> 1 per day on 1000 GPUs
  in.goodput.checkpoint_interval_s = 3600;
  in.goodput.checkpoint_cost_s = 60;
  in.goodput.restart_s = 600;
  const double lambda = 0.001 * 1000 / 86400;
  const double g = 1 - 60.0 / 3600 - lambda * (600 + 1800);
  const auto r = simulate_run({phase(1e9, 100, 1000)}, in, [](std::size_t, std::int64_t) { return StepTime{1, 1}; });
  CHECK(r.goodput == Approx(g).epsilon(1e-12));
  CHECK(r.phases[0].wall_s == Approx(1e9 / 1e5 / g).epsilon(1e-12));
}

TEST_CASE("Energy from power at the simulated utilisation, times PUE", "[cost]") {
  RunCostInputs in = inputs(100, 2.0);
  in.idle_power_w = 100;
  in.pue = 1.25;
  // 1e4 steps of 2 s at 60% utilisation: P = 100 + 600·0.6 = 460 W per GPU.
  const auto r = simulate_run({phase(1e4 * 10 * 100, 10, 100)}, in,
                              [](std::size_t, std::int64_t) { return StepTime{2.0, 0.6}; });
  REQUIRE(r.energy_mwh.has_value());
  CHECK(*r.energy_mwh == Approx(1e4 * 2.0 * 460 * 100 * 1.25 / 3.6e9).epsilon(1e-12));
}

TEST_CASE("Phases given as steps, and only pre-training counts per trillion tokens", "[cost]") {
  auto pre = phase(1e12, 1000, 1000);
  PhaseSpec ext;
  ext.name = "ctx32k";
  ext.seq_len = 32768;
  ext.global_batch = 1920;
  ext.steps = 1000;
  const auto r = simulate_run({pre, ext}, inputs(10, 1.0), [](std::size_t i, std::int64_t) {
    return StepTime{i == 0 ? 1.0 : 4.0, 1};
  });
  CHECK(r.phases[1].tokens == 1000.0 * 1920 * 32768);
  CHECK(r.phases[1].gpu_hours == Approx(1000 * 4.0 * 10 / 3600));
  CHECK(r.gpu_hours_per_trillion_tokens == Approx(1e12 / 1e6 * 1.0 * 10 / 3600));
}
