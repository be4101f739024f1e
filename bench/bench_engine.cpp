// Events per second of the discrete-event engine (sim/engine) on two workloads:
//  * chain:   W independent chains; each event schedules its successor a varying delay later,
//             so the queue holds W events throughout (W = 1, 64, 4096).
//  * fan-out: each finishing "op" notifies `fanout` successors a few ns apart; one of them
//             continues, the rest are leaves, so the queue holds about `fanout` events
//             (fanout = 2, 8, 64).
// items_per_second is events run per second. Target: >= 10 M events/s on one core.
#include <cstdint>

#include <benchmark/benchmark.h>

#include "engine/engine.hpp"

namespace {

using trainsim::Time;
using trainsim::engine::Simulation;

struct ChainCtx {
  std::uint64_t remaining = 0;
};

void chain_step(Simulation& sim, void* ctx, std::uint64_t arg) {
  auto& c = *static_cast<ChainCtx*>(ctx);
  if (c.remaining == 0) return;
  --c.remaining;
  // Varying delays (1..16 ns) so that chains interleave in the heap.
  const std::uint64_t next = arg * 6364136223846793005ULL + 1442695040888963407ULL;
  sim.schedule_in(Time::ns(1 + static_cast<Time::rep>(next >> 60)), chain_step, ctx, next);
}

void BM_EngineChain(benchmark::State& state) {
  const auto width = static_cast<std::uint64_t>(state.range(0));
  constexpr std::uint64_t kEvents = 1'000'000;
  std::uint64_t total = 0;
  for (auto _ : state) {
    Simulation sim;
    sim.reserve(width + 1);
    ChainCtx ctx{kEvents - width};
    for (std::uint64_t i = 0; i < width; ++i) sim.schedule_at(Time::ns(static_cast<Time::rep>(i % 7)), chain_step, &ctx, i);
    total += sim.run();
    benchmark::DoNotOptimize(sim.now());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(BM_EngineChain)->Arg(1)->Arg(64)->Arg(4096)->Unit(benchmark::kMillisecond);

struct FanCtx {
  std::uint64_t budget = 0;
  std::uint64_t fanout = 0;
};

// An op finishing notifies `fanout` successors at slightly different times (as a task-graph
// node does); the first successor goes on to finish and fan out again, the others are leaves.
void fan_leaf(Simulation&, void*, std::uint64_t) {}

void fan_step(Simulation& sim, void* ctx, std::uint64_t arg) {
  auto& c = *static_cast<FanCtx*>(ctx);
  if (c.budget == 0) return;
  const std::uint64_t n = c.fanout < c.budget ? c.fanout : c.budget;
  c.budget -= n;
  sim.schedule_in(Time::ns(static_cast<Time::rep>(1 + arg % 5)), fan_step, ctx, arg + 1);
  for (std::uint64_t k = 1; k < n; ++k)
    sim.schedule_in(Time::ns(static_cast<Time::rep>((arg + k) % 7)), fan_leaf, ctx, arg + k);
}

void BM_EngineFanOut(benchmark::State& state) {
  constexpr std::uint64_t kEvents = 1'000'000;
  std::uint64_t total = 0;
  for (auto _ : state) {
    Simulation sim;
    FanCtx ctx{kEvents - 1, static_cast<std::uint64_t>(state.range(0))};
    sim.schedule_at(Time::zero(), fan_step, &ctx, 0);
    total += sim.run();
    benchmark::DoNotOptimize(sim.now());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(BM_EngineFanOut)->Arg(2)->Arg(8)->Arg(64)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
