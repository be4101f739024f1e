// One simulated DeepSeek-V3 training step (2048 H800, PP16 DualPipe, EP64, 61 layers, 120
// micro-batches), and the whole run of the scenario (every phase and the batch ramp).
// Target (issue 6): one step <= 100 ms on the 2-core build machine.
#include <benchmark/benchmark.h>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "report/run_report.hpp"
#include "step/step.hpp"

namespace {

const trainsim::Scenario& deepseek() {
  static const trainsim::Scenario sc =
      trainsim::load_scenario((trainsim::data_dir() / "scenarios" / "deepseek-v3-h800.toml").string());
  return sc;
}

void BM_DeepSeekV3Step(benchmark::State& state) {
  const auto& sc = deepseek();
  const auto cost = trainsim::calibration::load_cost_model(sc.hardware, trainsim::data_dir());
  for (auto _ : state) {
    auto r = trainsim::step::simulate_step(sc, 0, sc.training.global_batch, *cost);
    benchmark::DoNotOptimize(r.step_s);
  }
}
BENCHMARK(BM_DeepSeekV3Step)->Unit(benchmark::kMillisecond);

void BM_DeepSeekV3WholeRun(benchmark::State& state) {
  const auto& sc = deepseek();
  for (auto _ : state) {
    auto r = trainsim::build_run_report(sc);
    benchmark::DoNotOptimize(r.run.gpu_hours);
  }
}
BENCHMARK(BM_DeepSeekV3WholeRun)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
