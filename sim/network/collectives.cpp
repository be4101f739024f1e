#include "network/collectives.hpp"

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "engine/engine.hpp"
#include "network/flow.hpp"

namespace trainsim::network {

double bus_factor(CollectiveKind k, int p) {
  const double pp = p;
  switch (k) {
    case CollectiveKind::AllReduce: return 2.0 * (pp - 1) / pp;
    case CollectiveKind::ReduceScatter:
    case CollectiveKind::AllGather: return (pp - 1) / pp;
    case CollectiveKind::SendRecv: return 1.0;
  }
  return 1.0;
}

double run_steps(const Topology& topo, const std::vector<std::vector<Transfer>>& steps) {
  engine::Simulation sim;
  FlowNetwork net(sim, topo.capacities());
  std::uint64_t flow = 0;
  for (const auto& step : steps) {
    for (const Transfer& t : step) {
      std::vector<int> links = topo.path(t.src, t.dst, flow++);
      const double lat = topo.path_latency(links);
      net.start(std::move(links), t.bytes, lat);
    }
    sim.run();  // the clock stops at the step's last delivery
  }
  return sim.now().seconds();
}

namespace {

CollectiveResult finish(CollectiveKind k, int p, double bytes, double seconds, int steps) {
  CollectiveResult r;
  r.seconds = seconds;
  r.steps = steps;
  r.algbw = seconds > 0 ? bytes / seconds : 0;
  r.busbw = r.algbw * bus_factor(k, p);
  return r;
}

// `count` ring steps in which every rank sends `chunk` bytes to its successor.
void ring_steps(const std::vector<int>& ranks, double chunk, int count, std::vector<std::vector<Transfer>>& out) {
  const std::size_t p = ranks.size();
  for (int s = 0; s < count; ++s) {
    std::vector<Transfer> step;
    for (std::size_t i = 0; i < p; ++i) step.push_back({ranks[i], ranks[(i + 1) % p], chunk});
    out.push_back(std::move(step));
  }
}

void check_ranks(const Topology& topo, const std::vector<int>& ranks) {
  TS_ASSERT(!ranks.empty(), "collective over no ranks");
  for (int r : ranks) TS_ASSERT(r >= 0 && r < topo.gpus(), "collective rank out of range");
}

}  // namespace

CollectiveResult reduce_scatter(const Topology& topo, const std::vector<int>& ranks, double bytes) {
  check_ranks(topo, ranks);
  const int p = static_cast<int>(ranks.size());
  std::vector<std::vector<Transfer>> steps;
  ring_steps(ranks, bytes / p, p - 1, steps);
  return finish(CollectiveKind::ReduceScatter, p, bytes, run_steps(topo, steps), p - 1);
}

CollectiveResult all_gather(const Topology& topo, const std::vector<int>& ranks, double bytes) {
  check_ranks(topo, ranks);
  const int p = static_cast<int>(ranks.size());
  std::vector<std::vector<Transfer>> steps;
  ring_steps(ranks, bytes / p, p - 1, steps);
  return finish(CollectiveKind::AllGather, p, bytes, run_steps(topo, steps), p - 1);
}

CollectiveResult send_recv(const Topology& topo, int src, int dst, double bytes) {
  return finish(CollectiveKind::SendRecv, 2, bytes, run_steps(topo, {{Transfer{src, dst, bytes}}}), 1);
}

CollectiveResult all_reduce(const Topology& topo, const std::vector<int>& ranks, double bytes, CollectiveAlgo algo) {
  check_ranks(topo, ranks);
  const int p = static_cast<int>(ranks.size());
  if (p == 1) return finish(CollectiveKind::AllReduce, 1, bytes, 0, 0);
  std::vector<std::vector<Transfer>> steps;
  switch (algo) {
    case CollectiveAlgo::Ring: {
      ring_steps(ranks, bytes / p, 2 * (p - 1), steps);  // reduce-scatter then all-gather
      return finish(CollectiveKind::AllReduce, p, bytes, run_steps(topo, steps), 2 * (p - 1));
    }
    case CollectiveAlgo::Tree: {
      // Double binary tree: tree A is the heap order over `ranks` (children of i: 2i+1, 2i+2),
      // tree B the same over the mirrored order, so most interior ranks of one are leaves of
      // the other. Each tree carries S/2; reduce (child->parent) and broadcast (parent->child)
      // stream concurrently in NCCL's pipeline, so all edges are one step of flows. The
      // pipeline fill is 2·depth hops of latency (up then down).
      std::vector<Transfer> step;
      int depth = 0;
      for (int tree = 0; tree < 2; ++tree)
        for (int i = 1; i < p; ++i) {
          const int parent = (i - 1) / 2;
          const int a = tree == 0 ? ranks[static_cast<std::size_t>(i)] : ranks[static_cast<std::size_t>(p - 1 - i)];
          const int b = tree == 0 ? ranks[static_cast<std::size_t>(parent)]
                                  : ranks[static_cast<std::size_t>(p - 1 - parent)];
          step.push_back({a, b, bytes / 2});
          step.push_back({b, a, bytes / 2});
          int d = 0;
          for (int j = i; j > 0; j = (j - 1) / 2) ++d;
          depth = std::max(depth, d);
        }
      // Bandwidth phase from the flows; latency of the fill from the deepest path, counted once
      // per hop beyond the one each flow already pays.
      const double bw_and_one_hop = run_steps(topo, {step});
      const double hop = topo.path_latency(topo.path(ranks[0], ranks[static_cast<std::size_t>(p - 1)]));
      return finish(CollectiveKind::AllReduce, p, bytes, bw_and_one_hop + (2 * depth - 1) * hop, 1);
    }
    case CollectiveAlgo::Hierarchical: {
      // Group ranks by node, keeping their order; every node must hold the same count G'.
      std::map<int, std::vector<int>> by_node;
      for (int r : ranks) by_node[topo.node_of(r)].push_back(r);
      const std::size_t g = by_node.begin()->second.size();
      for (const auto& [node, rs] : by_node) TS_ASSERT(rs.size() == g, "hierarchical all-reduce needs equal ranks per node");
      const int gl = static_cast<int>(g);
      const int n = static_cast<int>(by_node.size());
      // 1. reduce-scatter inside each node (all nodes at once): G-1 steps of S/G.
      for (int s = 0; s < gl - 1; ++s) {
        std::vector<Transfer> step;
        for (const auto& [node, rs] : by_node)
          for (std::size_t i = 0; i < g; ++i) step.push_back({rs[i], rs[(i + 1) % g], bytes / gl});
        steps.push_back(std::move(step));
      }
      // 2. ring all-reduce of S/G across nodes, one ring per local index (rail): 2(n-1) steps.
      for (int s = 0; s < 2 * (n - 1); ++s) {
        std::vector<Transfer> step;
        std::vector<const std::vector<int>*> nodes;
        for (const auto& [node, rs] : by_node) nodes.push_back(&rs);
        for (std::size_t i = 0; i < g; ++i)
          for (std::size_t k = 0; k < nodes.size(); ++k)
            step.push_back({(*nodes[k])[i], (*nodes[(k + 1) % nodes.size()])[i], bytes / gl / n});
        steps.push_back(std::move(step));
      }
      // 3. all-gather inside each node.
      for (int s = 0; s < gl - 1; ++s) {
        std::vector<Transfer> step;
        for (const auto& [node, rs] : by_node)
          for (std::size_t i = 0; i < g; ++i) step.push_back({rs[i], rs[(i + 1) % g], bytes / gl});
        steps.push_back(std::move(step));
      }
      const int nsteps = static_cast<int>(steps.size());
      return finish(CollectiveKind::AllReduce, p, bytes, run_steps(topo, steps), nsteps);
    }
  }
  return {};
}

}  // namespace trainsim::network
