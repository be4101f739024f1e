#include "graph/task_graph.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "engine/engine.hpp"

namespace trainsim::graph {

Time OpTimes::duration(const Op& op) const {
  switch (op.kind) {
    case OpKind::F: return f;
    case OpKind::B: return b;
    case OpKind::I: return b - w;
    case OpKind::W: return w;
    case OpKind::FB: return fb;
  }
  return Time::zero();
}

const char* edge_kind_name(EdgeKind k) {
  switch (k) {
    case EdgeKind::Activation: return "activation";
    case EdgeKind::Gradient: return "gradient";
    case EdgeKind::Loss: return "loss";
    case EdgeKind::WeightGrad: return "weight-grad";
    case EdgeKind::ProgramOrder: return "program-order";
  }
  return "?";
}

namespace {
std::string join_cycle(const std::vector<std::string>& c) {
  std::string s;
  for (const auto& x : c) s += x + " -> ";
  return s + (c.empty() ? std::string() : c.front());
}
}  // namespace

DeadlockError::DeadlockError(std::vector<std::string> cycle)
    : InputError("schedule deadlocks; dependency cycle: " + join_cycle(cycle)), cycle_(std::move(cycle)) {}

namespace {
// What part of the work on one (rank, chunk, micro-batch) an op provides.
enum class Part : int { Fwd = 0, Bwd = 1, Wgt = 2 };
using Key = std::tuple<int, int, int, int>;  // rank, chunk, mb, part

Key key(int rank, int chunk, int mb, Part p) { return {rank, chunk, mb, static_cast<int>(p)}; }

std::string part_name(int chunk, int mb, Part p) {
  switch (p) {
    case Part::Fwd: return fmt::format("F{}:{}", chunk, mb);
    case Part::Bwd: return fmt::format("B{}:{} (or I{}:{})", chunk, mb, chunk, mb);
    case Part::Wgt: return fmt::format("W{}:{}", chunk, mb);
  }
  return "?";
}
}  // namespace

TaskGraph TaskGraph::build(const PipelineTopology& topo, const std::vector<std::vector<Op>>& order,
                           const OpTimes& times, Time p2p) {
  TaskGraph tg;
  tg.ranks_ = static_cast<int>(order.size());
  TS_ASSERT(tg.ranks_ == topo.ranks(), "order and topology disagree on the number of ranks");
  Graph& g = tg.g_;
  std::map<Key, Vertex> provides;

  auto provide = [&](const Key& k, Vertex v, int rank, const Op& op) {
    if (!provides.emplace(k, v).second)
      throw InputError(fmt::format("rank {} runs {} twice (or overlaps it with another op)", rank, to_string(op)));
  };
  // Nodes.
  for (int r = 0; r < tg.ranks_; ++r) {
    const auto& ops = order[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const Op& op = ops[i];
      const Time d = times.duration(r, op);
      if (d < Time::zero()) throw InputError(fmt::format("{} has a negative duration", to_string(op)));
      const Vertex v = boost::add_vertex(TaskNode{r, static_cast<int>(i), op, d}, g);
      (void)topo.flow_of(r, op.chunk);  // throws for a chunk this rank does not hold
      switch (op.kind) {
        case OpKind::F: provide(key(r, op.chunk, op.mb, Part::Fwd), v, r, op); break;
        case OpKind::B: provide(key(r, op.chunk, op.mb, Part::Bwd), v, r, op); break;
        case OpKind::I: provide(key(r, op.chunk, op.mb, Part::Bwd), v, r, op); break;
        case OpKind::W: provide(key(r, op.chunk, op.mb, Part::Wgt), v, r, op); break;
        case OpKind::FB:
          (void)topo.flow_of(r, op.chunk2);
          provide(key(r, op.chunk, op.mb, Part::Fwd), v, r, op);
          provide(key(r, op.chunk2, op.mb2, Part::Bwd), v, r, op);
          break;
      }
    }
  }
  auto need = [&](Vertex v, int rank, int chunk, int mb, Part p, EdgeKind kind, bool remote) {
    auto it = provides.find(key(rank, chunk, mb, p));
    if (it == provides.end())
      throw InputError(fmt::format("rank {} op {} needs {} on rank {}, which no rank runs", g[v].rank,
                                   to_string(g[v].op), part_name(chunk, mb, p), rank));
    boost::add_edge(it->second, v, TaskEdge{kind, remote ? p2p : Time::zero()}, g);
  };
  auto forward_deps = [&](Vertex v, int r, int chunk, int mb) {
    const int flow = topo.flow_of(r, chunk);
    const int pos = topo.position_of(r, chunk);
    if (pos == 0) return;
    const Stage& prev = topo.path(flow)[static_cast<std::size_t>(pos - 1)];
    need(v, prev.rank, prev.chunk, mb, Part::Fwd, EdgeKind::Activation, prev.rank != r);
  };
  auto backward_deps = [&](Vertex v, int r, int chunk, int mb) {
    const int flow = topo.flow_of(r, chunk);
    const auto pos = static_cast<std::size_t>(topo.position_of(r, chunk));
    const auto& path = topo.path(flow);
    if (pos + 1 == path.size()) {
      need(v, r, chunk, mb, Part::Fwd, EdgeKind::Loss, false);
    } else {
      const Stage& next = path[pos + 1];
      need(v, next.rank, next.chunk, mb, Part::Bwd, EdgeKind::Gradient, next.rank != r);
    }
  };
  // Dependency edges, then program order.
  const std::size_t n = boost::num_vertices(g);
  for (Vertex v = 0; v < n; ++v) {
    const int r = g[v].rank;
    const Op op = g[v].op;
    switch (op.kind) {
      case OpKind::F: forward_deps(v, r, op.chunk, op.mb); break;
      case OpKind::B:
      case OpKind::I: backward_deps(v, r, op.chunk, op.mb); break;
      case OpKind::W: {
        auto it = provides.find(key(r, op.chunk, op.mb, Part::Bwd));
        if (it == provides.end() || g[it->second].op.kind != OpKind::I)
          throw InputError(fmt::format("rank {} runs W{}:{} without a matching I{}:{}", r, op.chunk, op.mb,
                                       op.chunk, op.mb));
        boost::add_edge(it->second, v, TaskEdge{EdgeKind::WeightGrad, Time::zero()}, g);
        break;
      }
      case OpKind::FB:
        forward_deps(v, r, op.chunk, op.mb);
        backward_deps(v, r, op.chunk2, op.mb2);
        break;
    }
    if (v + 1 < n && g[v + 1].rank == r)
      boost::add_edge(v, v + 1, TaskEdge{EdgeKind::ProgramOrder, Time::zero()}, g);
  }
  return tg;
}

std::optional<std::vector<Vertex>> TaskGraph::find_cycle() const {
  // Iterative DFS with colours; a grey target is a back edge, and the DFS stack from it to the
  // current vertex is the cycle. Vertices and edges are visited in index order: deterministic.
  const std::size_t n = boost::num_vertices(g_);
  enum : std::uint8_t { White, Grey, Black };
  std::vector<std::uint8_t> colour(n, White);
  using OutIt = boost::graph_traits<Graph>::out_edge_iterator;
  struct Frame {
    Vertex v;
    OutIt it, end;
  };
  std::vector<Frame> stack;
  for (Vertex s = 0; s < n; ++s) {
    if (colour[s] != White) continue;
    auto [b, e] = boost::out_edges(s, g_);
    stack.push_back({s, b, e});
    colour[s] = Grey;
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.it == f.end) {
        colour[f.v] = Black;
        stack.pop_back();
        continue;
      }
      const Vertex t = boost::target(*f.it, g_);
      ++f.it;
      if (colour[t] == Grey) {
        std::vector<Vertex> cycle;
        auto from = std::find_if(stack.begin(), stack.end(), [&](const Frame& x) { return x.v == t; });
        for (auto i = from; i != stack.end(); ++i) cycle.push_back(i->v);
        return cycle;
      }
      if (colour[t] == White) {
        colour[t] = Grey;
        auto [tb, te] = boost::out_edges(t, g_);
        stack.push_back({t, tb, te});
      }
    }
  }
  return std::nullopt;
}

std::vector<std::string> TaskGraph::describe(const std::vector<Vertex>& path) const {
  std::vector<std::string> out;
  for (Vertex v : path) out.push_back(fmt::format("rank {} {}", g_[v].rank, to_string(g_[v].op)));
  return out;
}

namespace {
struct ReplayState {
  const Graph* g = nullptr;
  std::vector<std::uint32_t> pending;
  std::vector<Time> start, end;
  std::vector<std::int64_t> binding;  // predecessor whose arrival released the op, -1 if none
  std::size_t done = 0;
};

void on_finish(engine::Simulation& sim, void* ctx, std::uint64_t arg);

void on_arrive(engine::Simulation& sim, void* ctx, std::uint64_t arg) {
  auto& st = *static_cast<ReplayState*>(ctx);
  const auto target = static_cast<Vertex>(arg >> 32);
  const auto source = static_cast<Vertex>(arg & 0xffffffffu);
  // Events arrive in (time, seq) order, so the last arrival is a latest one.
  st.binding[target] = static_cast<std::int64_t>(source);
  if (--st.pending[target] == 0) {
    st.start[target] = sim.now();
    sim.schedule_in((*st.g)[target].duration, on_finish, ctx, target);
  }
}

void on_finish(engine::Simulation& sim, void* ctx, std::uint64_t arg) {
  auto& st = *static_cast<ReplayState*>(ctx);
  const auto v = static_cast<Vertex>(arg);
  st.end[v] = sim.now();
  ++st.done;
  for (auto [it, e] = boost::out_edges(v, *st.g); it != e; ++it) {
    const Vertex t = boost::target(*it, *st.g);
    sim.schedule_in((*st.g)[*it].delay, on_arrive, ctx, (static_cast<std::uint64_t>(t) << 32) | v);
  }
}
}  // namespace

Replay replay(const TaskGraph& tg) {
  if (auto cycle = tg.find_cycle()) throw DeadlockError(tg.describe(*cycle));
  const Graph& g = tg.graph();
  const std::size_t n = boost::num_vertices(g);
  TS_ASSERT(n < (std::size_t{1} << 32), "task graph too large");
  ReplayState st;
  st.g = &g;
  st.pending.resize(n);
  st.start.assign(n, Time::zero());
  st.end.assign(n, Time::zero());
  st.binding.assign(n, -1);
  engine::Simulation sim;
  for (Vertex v = 0; v < n; ++v) {
    st.pending[v] = static_cast<std::uint32_t>(boost::in_degree(v, g));
    if (st.pending[v] == 0) sim.schedule_at(g[v].duration, on_finish, &st, v);
  }
  sim.run();
  // Acyclic graphs always complete; this guards the engine itself.
  TS_ASSERT(st.done == n, "replay stopped before every op ran");

  Replay out;
  out.events = sim.events_run();
  out.ops.resize(static_cast<std::size_t>(tg.ranks()));
  out.busy.assign(static_cast<std::size_t>(tg.ranks()), Time::zero());
  Vertex last = 0;
  for (Vertex v = 0; v < n; ++v) {
    const auto r = static_cast<std::size_t>(g[v].rank);
    out.ops[r].push_back(OpTiming{g[v].rank, g[v].op, st.start[v], st.end[v]});
    out.busy[r] += g[v].duration;
    if (st.end[v] > st.end[last]) last = v;  // first (lowest rank) of the latest ops
  }
  out.makespan = n ? st.end[last] : Time::zero();
  for (Time b : out.busy) out.bubble.push_back(out.makespan - b);
  // Critical path: follow binding predecessors back from the last op to finish.
  if (n) {
    std::int64_t v = static_cast<std::int64_t>(last);
    while (v >= 0) {
      const auto u = static_cast<Vertex>(v);
      CriticalStep s{g[u].rank, g[u].op, st.start[u], st.end[u], std::nullopt};
      const std::int64_t p = st.binding[u];
      if (p >= 0) s.via = g[boost::edge(static_cast<Vertex>(p), u, g).first].kind;
      out.critical_path.push_back(s);
      v = p;
    }
    std::reverse(out.critical_path.begin(), out.critical_path.end());
  }
  return out;
}

}  // namespace trainsim::graph
