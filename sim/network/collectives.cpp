#include "network/collectives.hpp"

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "engine/engine.hpp"
#include "network/flow.hpp"

namespace trainsim::network {

TopologySpec nccl_topology_spec(TopologySpec spec) {
  spec.net.nvlink_efficiency = kNcclNvlinkEfficiency;
  spec.net.ib_efficiency = kNcclNicEfficiency;
  return spec;
}

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

namespace {

// One step of concurrent transfers; `with_latency`: each delivery adds its path latency.
double run_step(const Topology& topo, const std::vector<Transfer>& step, bool with_latency) {
  engine::Simulation sim;
  FlowNetwork net(sim, topo.capacities());
  std::uint64_t flow = 0;
  for (const Transfer& t : step) {
    std::vector<int> links = topo.path(t.src, t.dst, flow++);
    const double lat = with_latency ? topo.path_latency(links) : 0.0;
    net.start(std::move(links), t.bytes, lat);
  }
  sim.run();
  return sim.now().seconds();
}

CollectiveResult finish(CollectiveKind k, int p, double bytes, double seconds, int steps, int channels) {
  CollectiveResult r;
  r.seconds = seconds;
  r.steps = steps;
  r.channels = channels;
  r.algbw = seconds > 0 ? bytes / seconds : 0;
  r.busbw = r.algbw * bus_factor(k, p);
  return r;
}

void check_ranks(const Topology& topo, const std::vector<int>& ranks) {
  TS_ASSERT(!ranks.empty(), "collective over no ranks");
  for (int r : ranks) TS_ASSERT(r >= 0 && r < topo.gpus(), "collective rank out of range");
}

// Members per domain in order of first appearance, and whether every domain has the same count.
std::vector<std::vector<int>> by_domain(const Topology& topo, const std::vector<int>& ranks) {
  std::vector<std::vector<int>> out;
  std::map<int, std::size_t> index;
  for (int r : ranks) {
    const int d = topo.domain_of(r);
    auto it = index.find(d);
    if (it == index.end()) {
      it = index.emplace(d, out.size()).first;
      out.emplace_back();
    }
    out[it->second].push_back(r);
  }
  return out;
}

bool uniform(const std::vector<std::vector<int>>& groups) {
  for (const auto& g : groups)
    if (g.size() != groups.front().size()) return false;
  return true;
}

// A ring collective of `steps` identical steps, each rank sending `chunk` bytes (split over the
// channels) to its successor in every channel.
CollectiveResult ring(CollectiveKind kind, const Topology& topo, const std::vector<int>& ranks, double bytes,
                      double chunk, int steps) {
  check_ranks(topo, ranks);
  const int p = static_cast<int>(ranks.size());
  if (p == 1 || steps == 0) return finish(kind, p, bytes, 0, 0, 1);
  const auto rings = ring_channels(topo, ranks);
  std::vector<Transfer> step;
  const double per_channel = chunk / static_cast<double>(rings.size());
  for (const auto& rg : rings)
    for (std::size_t i = 0; i < rg.size(); ++i) step.push_back({rg[i], rg[(i + 1) % rg.size()], per_channel});
  const double one = run_step(topo, step, true);
  return finish(kind, p, bytes, one * steps, steps, static_cast<int>(rings.size()));
}

}  // namespace

std::vector<std::vector<int>> ring_channels(const Topology& topo, const std::vector<int>& ranks) {
  const auto groups = by_domain(topo, ranks);
  const std::size_t m = groups.front().size();
  if (groups.size() < 2 || m < 2 || !uniform(groups)) return {ranks};
  std::vector<std::vector<int>> rings;
  for (std::size_t c = 0; c < m; ++c) {
    std::vector<int> rg;
    for (std::size_t k = 0; k < groups.size(); ++k)
      for (std::size_t j = 0; j < m; ++j) {
        // Even domains run forward from member c (leaving through member c-1), odd ones backward
        // from member c-1 (leaving through member c): every domain boundary joins one rail.
        const std::size_t idx = k % 2 == 0 ? (c + j) % m : (c + m - 1 - j) % m;
        rg.push_back(groups[k][idx]);
      }
    rings.push_back(std::move(rg));
  }
  return rings;
}

double run_steps(const Topology& topo, const std::vector<std::vector<Transfer>>& steps) {
  double t = 0;
  for (const auto& step : steps) t += run_step(topo, step, true);
  return t;
}

CollectiveResult reduce_scatter(const Topology& topo, const std::vector<int>& ranks, double bytes) {
  const int p = static_cast<int>(ranks.size());
  return ring(CollectiveKind::ReduceScatter, topo, ranks, bytes, bytes / p, p - 1);
}

CollectiveResult all_gather(const Topology& topo, const std::vector<int>& ranks, double bytes) {
  const int p = static_cast<int>(ranks.size());
  return ring(CollectiveKind::AllGather, topo, ranks, bytes, bytes / p, p - 1);
}

CollectiveResult send_recv(const Topology& topo, int src, int dst, double bytes) {
  return finish(CollectiveKind::SendRecv, 2, bytes, run_step(topo, {Transfer{src, dst, bytes}}, true), 1, 1);
}

CollectiveResult nccl_all_reduce(const Topology& topo, const std::vector<int>& ranks, double bytes) {
  const auto groups = by_domain(topo, ranks);
  const bool hier = groups.size() > 1 && groups.front().size() > 1 && uniform(groups);
  return all_reduce(topo, ranks, bytes, hier ? CollectiveAlgo::Hierarchical : CollectiveAlgo::Ring);
}

CollectiveResult all_reduce(const Topology& topo, const std::vector<int>& ranks, double bytes, CollectiveAlgo algo) {
  check_ranks(topo, ranks);
  const int p = static_cast<int>(ranks.size());
  if (p == 1) return finish(CollectiveKind::AllReduce, 1, bytes, 0, 0, 1);
  switch (algo) {
    case CollectiveAlgo::Ring: return ring(CollectiveKind::AllReduce, topo, ranks, bytes, bytes / p, 2 * (p - 1));
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
      const double bw_and_one_hop = run_step(topo, step, true);
      const double hop = topo.path_latency(topo.path(ranks[0], ranks[static_cast<std::size_t>(p - 1)]));
      return finish(CollectiveKind::AllReduce, p, bytes, bw_and_one_hop + (2 * depth - 1) * hop, 1, 2);
    }
    case CollectiveAlgo::Hierarchical: {
      const auto groups = by_domain(topo, ranks);
      TS_ASSERT(uniform(groups), "hierarchical all-reduce needs equal ranks per NVLink domain");
      const std::size_t m = groups.front().size();
      const std::size_t n = groups.size();
      const double gm = static_cast<double>(m), gn = static_cast<double>(n);
      // Pipelined: the intra-domain reduce-scatter and all-gather (each rank sends 2(m-1)/m·S to
      // its ring successor) and the per-rail ring across domains (2(n-1)/n·S/m to the same
      // member of the next domain) stream at once.
      std::vector<Transfer> step;
      for (const auto& g : groups)
        for (std::size_t i = 0; i < m && m > 1; ++i) step.push_back({g[i], g[(i + 1) % m], 2.0 * (gm - 1) / gm * bytes});
      for (std::size_t i = 0; i < m && n > 1; ++i)
        for (std::size_t k = 0; k < n; ++k)
          step.push_back({groups[k][i], groups[(k + 1) % n][i], 2.0 * (gn - 1) / gn * bytes / gm});
      const double bw = run_step(topo, step, false);
      // Pipeline fill: the latency of every step of the three phases.
      const double a_in = m > 1 ? topo.path_latency(topo.path(groups[0][0], groups[0][1])) : 0.0;
      const double a_out = n > 1 ? topo.path_latency(topo.path(groups[0][0], groups[1][0])) : 0.0;
      const double lat = 2.0 * (gm - 1) * a_in + 2.0 * (gn - 1) * a_out;
      const int nsteps = static_cast<int>(2 * (m - 1) + 2 * (n - 1));
      return finish(CollectiveKind::AllReduce, p, bytes, bw + lat, nsteps, static_cast<int>(m));
    }
  }
  return {};
}

}  // namespace trainsim::network
