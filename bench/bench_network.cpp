// Network benchmarks: a 2048-GPU full-rank MoE all-to-all of one layer (32 EP64 groups at once
// on DeepSeek's MPFT fabric, every GPU simulated), and the max-min solver.
//   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release
//   cmake --build build-bench --target bench_network && build-bench/bin/bench_network
#include <benchmark/benchmark.h>

#include "network/alltoall.hpp"
#include "network/flow.hpp"

using namespace trainsim::network;

namespace {
TopologySpec cluster(int gpus) {
  TopologySpec s;
  s.gpus = gpus;
  s.gpus_per_node = 8;
  s.nvlink_bidir = 400e9;
  s.nic = 50e9;
  s.net.fabric = Fabric::MultiPlaneFatTree;
  return s;
}
}  // namespace

// Balanced routing: traffic from the expectation, then every GPU's flows routed and loaded.
static void BM_AllToAll2048FullRankBalanced(benchmark::State& state) {
  const Topology topo(cluster(2048));
  AllToAllSpec s;
  s.ep = 64;
  for (auto _ : state) benchmark::DoNotOptimize(simulate_alltoall(topo, s).dispatch.seconds);
}
BENCHMARK(BM_AllToAll2048FullRankBalanced)->Unit(benchmark::kMillisecond);

// Sampled skewed routing: 2048 x 4096 tokens routed one by one (Zipf 1.0).
static void BM_AllToAll2048FullRankSampledSkew(benchmark::State& state) {
  const Topology topo(cluster(2048));
  AllToAllSpec s;
  s.ep = 64;
  s.balanced = false;
  s.skew = 1.0;
  for (auto _ : state) benchmark::DoNotOptimize(simulate_alltoall(topo, s).dispatch.seconds);
}
BENCHMARK(BM_AllToAll2048FullRankSampledSkew)->Unit(benchmark::kMillisecond);

// Topology construction alone (Boost.Graph, 2048 GPUs, 8 planes).
static void BM_Topology2048(benchmark::State& state) {
  for (auto _ : state) {
    const Topology topo(cluster(2048));
    benchmark::DoNotOptimize(topo.link_count());
  }
}
BENCHMARK(BM_Topology2048)->Unit(benchmark::kMillisecond);

// Max-min solve of one EP64 group's two-hop flows on the fabric (symmetric: one level).
static void BM_MaxMinRing(benchmark::State& state) {
  const Topology topo(cluster(64));
  std::vector<std::vector<int>> paths;
  for (int g = 0; g < 64; ++g) paths.push_back(topo.path(g, (g + 8) % 64));
  std::vector<FlowDemand> d;
  for (const auto& p : paths) d.push_back(FlowDemand{&p, 0});
  for (auto _ : state) benchmark::DoNotOptimize(max_min_rates(topo.capacities(), d));
}
BENCHMARK(BM_MaxMinRing);

BENCHMARK_MAIN();
