// Plan-search speed (issue 13 point 3), on the 2-core build machine:
//   cmake --build build-bench --target bench_plan && build-bench/bin/bench_plan
//
// BM_ScreenGPT3_1024A100: the whole screening of GPT-3 175B (models/gpt3-175b.toml) on 1024
//   A100 (scenarios/gpt3-175b-1024xa100.toml) on one thread: every valid plan enumerated (the
//   config rules), its memory checked, the time and cost of those that fit estimated, the caches
//   built from nothing. items_per_second = plans per CPU-second (target >= 20,000; Calculon
//   reports ~118 plans/CPU-s, llm-analysis ~2,400 per thread).
// BM_ScreenJobs/N: the same screening on N threads, real time (UseRealTime): the ratio of /2 to
//   /1 is the --jobs scaling (target >= 1.8x on 2 cores).
// BM_PlanDeepSeekV3/2: `trainsim plan scenarios/deepseek-v3-h800.toml --objective cost --jobs 2`'s
//   work (screening, the event-level re-runs in an in-memory store, ranking), real time (target:
//   under a minute on 2 cores).
#include <algorithm>
#include <map>
#include <string>

#include <benchmark/benchmark.h>

#include "config/scenario.hpp"
#include "plan/search.hpp"

namespace {

const trainsim::Scenario& scenario(const char* name) {
  static std::map<std::string, trainsim::Scenario> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, trainsim::load_scenario((trainsim::data_dir() / "scenarios" / name).string())).first;
  return it->second;
}

void screen(benchmark::State& state, const char* name, unsigned jobs) {
  const auto& sc = scenario(name);
  trainsim::plan::SearchOptions o;
  o.screen_only = true;
  o.jobs = jobs;
  std::size_t plans = 0;
  double total = 0, busiest = 0;
  for (auto _ : state) {
    const auto r = trainsim::plan::search(sc, (trainsim::data_dir() / "scenarios" / name).string(), o);
    plans += r.stats.plans;
    for (double t : r.stats.thread_cpu_s) total += t;
    busiest += *std::max_element(r.stats.thread_cpu_s.begin(), r.stats.thread_cpu_s.end());
    benchmark::DoNotOptimize(r.screened_best.size());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(plans));
  // The CPU time of all screening threads over that of the busiest one: the speed-up the split of
  // the work allows on idle cores (the real-time ratio of /2 to /1 is the speed-up measured).
  state.counters["cpu_balance"] = busiest > 0 ? total / busiest : 0;
}

void BM_ScreenGPT3_1024A100(benchmark::State& state) { screen(state, "gpt3-175b-1024xa100.toml", 1); }
void BM_ScreenJobs(benchmark::State& state) {
  screen(state, "gpt3-175b-1024xa100.toml", static_cast<unsigned>(state.range(0)));
}

void BM_PlanDeepSeekV3(benchmark::State& state) {
  const auto& sc = scenario("deepseek-v3-h800.toml");
  trainsim::plan::SearchOptions o;
  o.jobs = static_cast<unsigned>(state.range(0));
  for (auto _ : state) {
    const auto r = trainsim::plan::search(sc, (trainsim::data_dir() / "scenarios" / "deepseek-v3-h800.toml").string(), o);
    benchmark::DoNotOptimize(r.reruns.size());
  }
}

}  // namespace

BENCHMARK(BM_ScreenGPT3_1024A100)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_ScreenJobs)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_PlanDeepSeekV3)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK_MAIN();
