// Sweep throughput (issue 6, point 8: >= 500 points/s on the 2-core build machine).
//   cmake --build build-bench --target bench_sweep && build-bench/bin/bench_sweep
// items_per_second is points per second. The small sweep is scenarios/sweeps/llama3-8b-plans.toml
// (Llama-3-8B on 64 GPUs, 90 points, about 40% of them infeasible as in a real sweep); the
// DeepSeek sweep is scenarios/sweeps/deepseek-v3-what-if.toml (2048 GPUs, DualPipe, 4 phases).
#include <unistd.h>

#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>

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
void BM_EvaluateDeepSeek(benchmark::State& state) { evaluate_all(state, "scenarios/sweeps/deepseek-v3-what-if.toml", 2); }

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
BENCHMARK_MAIN();
