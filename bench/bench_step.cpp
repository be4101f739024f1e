// One simulated DeepSeek-V3 training step (2048 H800, PP16 DualPipe, EP64, 61 layers, 120
// micro-batches), and the whole run of the scenario (every phase and the batch ramp).
// Target (issue 6): one step <= 100 ms on the 2-core build machine.
//
// The simulator memoises what repeats (core/memo.hpp, sim/step/caches.hpp): the plain
// benchmarks empty every memo before each iteration (cold: what one `trainsim run` does), the
// *Warm ones repeat the same work with the memos kept.
#include <benchmark/benchmark.h>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "core/memo.hpp"
#include "report/run_report.hpp"
#include "step/step.hpp"

namespace {

const trainsim::Scenario& deepseek() {
  static const trainsim::Scenario sc =
      trainsim::load_scenario((trainsim::data_dir() / "scenarios" / "deepseek-v3-h800.toml").string());
  return sc;
}

void step(benchmark::State& state, bool cold) {
  const auto& sc = deepseek();
  const auto cost = trainsim::calibration::load_cost_model(sc.hardware, trainsim::data_dir());
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      trainsim::clear_memos();
      state.ResumeTiming();
    }
    auto r = trainsim::step::simulate_step(sc, 0, sc.training.global_batch, *cost);
    benchmark::DoNotOptimize(r.step_s);
  }
}
void BM_DeepSeekV3Step(benchmark::State& state) { step(state, true); }
void BM_DeepSeekV3StepWarm(benchmark::State& state) { step(state, false); }
BENCHMARK(BM_DeepSeekV3Step)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DeepSeekV3StepWarm)->Unit(benchmark::kMillisecond);

void whole_run(benchmark::State& state, bool cold) {
  const auto& sc = deepseek();
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      trainsim::clear_memos();
      state.ResumeTiming();
    }
    auto r = trainsim::build_run_report(sc);
    benchmark::DoNotOptimize(r.run.gpu_hours);
  }
}
void BM_DeepSeekV3WholeRun(benchmark::State& state) { whole_run(state, true); }
void BM_DeepSeekV3WholeRunWarm(benchmark::State& state) { whole_run(state, false); }
BENCHMARK(BM_DeepSeekV3WholeRun)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DeepSeekV3WholeRunWarm)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
