// A whole run from simulated steps: totals, phases, the comparison with published figures and
// the --json contract, on a small scenario with the synthetic cost model.
#include <catch2/catch.hpp>

#include "config/scenario.hpp"
#include "model/layer_split.hpp"
#include "model/memory.hpp"
#include "linear_cost.hpp"
#include "report/run_report.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {
Scenario small_scenario() {
  const auto dir = ts_test::temp_dir("run");
  ts_test::write_file(dir / "s.toml", R"(name = "small"
model = ")" + ts_test::data("models/deepseek-v2-lite.toml").string() + R"("
[cluster]
gpu = "h800"
gpus = 64
gpus_per_node = 8
[plan]
dp = 16
pp = 4
ep = 16
zero = 1
comm_sms = 20
schedule = "dualpipe"
layer_split = [6, 7, 7, 7]
[training]
seq_len = 4096
global_batch = 256
tokens = 2e10
batch_ramp = { start = 128, tokens = 5e9 }
[[phases]]
name = "ctx"
kind = "context_extension"
seq_len = 16384
global_batch = 128
steps = 50
plan = { dp = 8, cp = 2 }
[reference]
source = "made up for the test"
gpu_hours = { pretraining = 1000, total = 1200 }
gpu_hours_per_trillion_tokens = 50000
)");
  return load_scenario((dir / "s.toml").string());
}
}  // namespace

TEST_CASE("Run totals are the sums of the phases; a phase in steps costs steps x step time", "[run]") {
  const Scenario sc = small_scenario();
  const ts_test::LinearCost cost(132);
  const RunReport r = build_run_report(sc, cost);
  REQUIRE(r.phases.size() == 2);
  double hours = 0, usd = 0;
  for (const auto& p : r.phases) {
    hours += p.result.gpu_hours;
    usd += p.result.cost_usd;
  }
  CHECK(r.run.gpu_hours == Approx(hours).epsilon(1e-12));
  CHECK(r.run.cost_usd == Approx(usd).epsilon(1e-12));
  // Context phase: 50 steps at its (fixed) batch on 64 GPUs, $2/GPU-hour (h800.toml).
  const auto& ctx = r.phases[1];
  CHECK(ctx.result.gpu_hours == Approx(50 * ctx.step.step_s * 64 / 3600).epsilon(1e-9));
  CHECK(ctx.result.cost_usd == Approx(ctx.result.gpu_hours * 2.0).epsilon(1e-12));
  CHECK(ctx.result.tokens == 50.0 * 128 * 16384);
  // Pre-training per trillion tokens.
  CHECK(r.run.gpu_hours_per_trillion_tokens == Approx(r.phases[0].result.gpu_hours / 0.02).epsilon(1e-12));
  // The ramp makes pre-training cost more than 2e10 tokens at the final batch's step time would
  // not: early steps are smaller, with the same bubble: cost per token is higher.
  const double at_final = 2e10 / (256.0 * 4096) * r.phases[0].step.step_s * 64 / 3600;
  CHECK(r.phases[0].result.gpu_hours > at_final);
}

TEST_CASE("The memory a run reports is that of the layer split its step runs", "[run][memory]") {
  // DeepSeek-V3 as DualPipeV on PP8 with the balanced split: the step balances each rank's two
  // stages by calibrated costs (step/stage_split.cpp), the memory model's own split weighs single
  // stages by a roofline (model/layer_split.hpp), and here the two differ. The run's memory, per
  // phase, must be the memory model's figure for the layers each rank of the simulated step holds.
  const Scenario sc = load_scenario(ts_test::data("scenarios/deepseek-v3-h800.toml").string(),
                                    {"plan.dp=256", "plan.pp=8", "plan.schedule=dualpipev", "plan.layer_split=balanced",
                                     "phases.1.plan.dp=32", "phases.2.plan.dp=8"});
  const ts_test::LinearCost cost(132);
  const RunReport r = build_run_report(sc, cost);
  REQUIRE(r.phases.size() == sc.phases.size());
  REQUIRE(r.phases[0].step.layer_split != stage_layers(sc, sc.plan, sc.training));  // the case this test is about
  for (std::size_t i = 0; i < sc.phases.size(); ++i) {
    INFO("phase " << i);
    Scenario one = sc;
    one.plan = sc.phases[i].plan;
    one.training = sc.phases[i].training;
    const MemoryReport m = memory_per_gpu(one, r.phases[i].step.layer_split);
    CHECK(r.phases[i].memory.peak == m.peak);
    CHECK(r.phases[i].memory.fits == m.fits);
    if (i == 0) CHECK(memory_per_gpu(one).peak != m.peak);  // the roofline split's figure is another
  }
}

TEST_CASE("Comparison rows: published, predicted and the gap in percent", "[run]") {
  const Scenario sc = small_scenario();
  const ts_test::LinearCost cost(132);
  const RunReport r = build_run_report(sc, cost);
  REQUIRE(r.comparisons.size() == 3);
  CHECK(r.comparisons[0].published == 1000);
  CHECK(r.comparisons[0].predicted == r.phases[0].result.gpu_hours);
  CHECK(r.comparisons[0].gap_pct() == Approx((r.phases[0].result.gpu_hours - 1000) / 1000 * 100));
  CHECK(r.comparisons[1].predicted == Approx(r.run.gpu_hours));
  CHECK(r.comparisons[2].what.find("per trillion") != std::string::npos);
}

TEST_CASE("run --json carries every key of the contract", "[run]") {
  const Scenario sc = small_scenario();
  const ts_test::LinearCost cost(132);
  const auto j = run_json(build_run_report(sc, cost));
  for (const char* k : {"step_time_s", "tokens_per_step", "tokens_per_s_per_gpu", "mfu", "bubble_fraction",
                        "exposed_comm_fraction", "peak_memory_gib", "fits_memory", "gpu_hours",
                        "gpu_hours_per_trillion_tokens", "wall_clock_days", "cost_usd", "energy_mwh", "phases"}) {
    INFO(k);
    CHECK(j.contains(k));
  }
  CHECK(j["energy_mwh"].is_null());  // no [energy] assumptions in the scenario
  for (const auto& p : j["phases"])
    for (const char* k : {"name", "tokens", "steps", "gpu_hours", "cost_usd"}) CHECK(p.contains(k));
  CHECK(j["tokens_per_step"].get<double>() == 256.0 * 4096);
}
