// Sweep throughput (issue 6, point 8: >= 500 points/s on the 2-core build machine).
//   cmake --build build-bench --target bench_sweep && build-bench/bin/bench_sweep
// items_per_second is points per second. The small sweep is scenarios/sweeps/llama3-8b-plans.toml
// (Llama-3-8B on 64 GPUs, 90 points, about 40% of them infeasible as in a real sweep); the
// DeepSeek sweep is scenarios/sweeps/deepseek-v3-what-if.toml (2048 GPUs, DualPipe, 4 phases).
//
// Reuse (issue 13): the simulator memoises op costs, network results, stage setups and pipeline
// replays on their full inputs (core/memo.hpp, sim/step/caches.hpp). The DeepSeek benchmarks say
// what they start from:
//   BM_EvaluateDeepSeek        every memo emptied before each iteration (cold), 2 points
//   BM_EvaluateDeepSeekRepeat  the same point again and again (warm)
//   BM_EvaluateDeepSeekVaried  bench/deepseek-v3-varied.toml: 12 points (3 GPUs x 2 schedules x
//                              2 batches) one after another, memos emptied before each pass
//   BM_EvaluateDeepSeekWhatIf  the 24 points of the what-if sweep, memos emptied before each pass
// Counters, for every memo: <memo>_hit% (hits / lookups) and <memo>_hits, <memo>_misses: over
// the last pass for the cold ones (the memos are emptied and their counters zeroed before each
// pass), per evaluation for BM_EvaluateDeepSeekRepeat.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>

#include "core/memo.hpp"
#include "sweep/runner.hpp"
#include "sweep/spec.hpp"
#include "sweep/store.hpp"

namespace {

std::string source(const std::string& rel) { return std::string(TRAINSIM_DATA_DIR) + "/" + rel; }

// Evaluating the points alone (load, memory check, whole-run simulation), one thread.
void evaluate_all(benchmark::State& state, const std::string& sweep_file, std::size_t limit) {
  const auto spec = trainsim::sweep::load_sweep(source(sweep_file));
  auto points = trainsim::sweep::all_points(spec);
  if (points.size() > limit) points.resize(limit);
  for (auto _ : state)
    for (const auto& p : points) benchmark::DoNotOptimize(trainsim::sweep::evaluate_point(spec, p));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * points.size()));
}

void BM_EvaluateSmall(benchmark::State& state) { evaluate_all(state, "scenarios/sweeps/llama3-8b-plans.toml", 1000); }

// The memos' counters as benchmark counters (see the top of the file).
void memo_counters(benchmark::State& state, bool per_iteration) {
  const auto flags = per_iteration ? benchmark::Counter::kAvgIterations : benchmark::Counter::kDefaults;
  for (const auto& m : trainsim::memo_stats()) {
    std::string n = m.name;
    std::replace(n.begin(), n.end(), ' ', '_');
    state.counters[n + "_hit%"] = 100.0 * m.hit_rate();
    state.counters[n + "_hits"] = benchmark::Counter(static_cast<double>(m.hits), flags);
    state.counters[n + "_misses"] = benchmark::Counter(static_cast<double>(m.misses), flags);
  }
}

// Points evaluated in order, every memo emptied (and its counters zeroed) before each pass, so
// each iteration is one process's first pass over the points.
void evaluate_cold(benchmark::State& state, const std::string& sweep_file, std::size_t limit) {
  const auto spec = trainsim::sweep::load_sweep(source(sweep_file));
  auto points = trainsim::sweep::all_points(spec);
  if (points.size() > limit) points.resize(limit);
  for (auto _ : state) {
    state.PauseTiming();
    trainsim::clear_memos();
    state.ResumeTiming();
    for (const auto& p : points) {
      const auto r = trainsim::sweep::evaluate_point(spec, p);
      if (r.status == "error") state.SkipWithError(r.reason.c_str());
      benchmark::DoNotOptimize(r);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * points.size()));
  memo_counters(state, false);
}

void BM_EvaluateDeepSeek(benchmark::State& state) { evaluate_cold(state, "scenarios/sweeps/deepseek-v3-what-if.toml", 2); }
void BM_EvaluateDeepSeekVaried(benchmark::State& state) { evaluate_cold(state, "bench/deepseek-v3-varied.toml", 1000); }
void BM_EvaluateDeepSeekWhatIf(benchmark::State& state) {
  evaluate_cold(state, "scenarios/sweeps/deepseek-v3-what-if.toml", 1000);
}

// One point (the published setup: dualpipe x h800 x 400Gb/s) evaluated once before timing, then
// again and again: the counters are those of the timed evaluations.
void BM_EvaluateDeepSeekRepeat(benchmark::State& state) {
  const auto spec = trainsim::sweep::load_sweep(source("scenarios/sweeps/deepseek-v3-what-if.toml"));
  const auto point = trainsim::sweep::point_at(spec, 1);
  trainsim::clear_memos();
  benchmark::DoNotOptimize(trainsim::sweep::evaluate_point(spec, point));
  trainsim::reset_memo_counters();
  for (auto _ : state) benchmark::DoNotOptimize(trainsim::sweep::evaluate_point(spec, point));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  memo_counters(state, true);
}

// The whole command's work: evaluate on N worker threads and store every row in a fresh SQLite
// database (WAL, one IMMEDIATE transaction per point: sweep/store.hpp).
void BM_SweepSmall(benchmark::State& state) {
  const auto spec = trainsim::sweep::load_sweep(source("scenarios/sweeps/llama3-8b-plans.toml"));
  const auto db = std::filesystem::temp_directory_path() / ("bench-sweep-" + std::to_string(::getpid()) + ".sqlite");
  trainsim::sweep::RunOptions opt;
  opt.jobs = static_cast<unsigned>(state.range(0));
  opt.progress = false;
  for (auto _ : state) {
    state.PauseTiming();
    for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + ext);
    state.ResumeTiming();
    trainsim::sweep::Store store(db.string());
    benchmark::DoNotOptimize(trainsim::sweep::run_sweep(spec, store, opt));
  }
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + ext);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * spec.size()));
}

}  // namespace

BENCHMARK(BM_EvaluateSmall)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SweepSmall)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EvaluateDeepSeek)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_EvaluateDeepSeekRepeat)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EvaluateDeepSeekVaried)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_EvaluateDeepSeekWhatIf)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_MAIN();
