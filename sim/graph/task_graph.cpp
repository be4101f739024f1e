#include "graph/task_graph.hpp"

#include <algorithm>
#include <map>
#include <mutex>
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

std::string part_name(int chunk, int mb, Part p) {
  switch (p) {
    case Part::Fwd: return fmt::format("F{}:{}", chunk, mb);
    case Part::Bwd: return fmt::format("B{}:{} (or I{}:{})", chunk, mb, chunk, mb);
    case Part::Wgt: return fmt::format("W{}:{}", chunk, mb);
  }
  return "?";
}

constexpr std::uint32_t kNone = 0xffffffffu;

// Which node provides each (rank, chunk, micro-batch, part): a flat array over the micro-batch
// range the order uses when that is small (every schedule's), a hash map otherwise.
class Provides {
 public:
  Provides(int ranks, int chunks, const std::vector<std::vector<Op>>& order) : ranks_(ranks), chunks_(chunks) {
    std::size_t n = 0;
    bool any = false;
    for (const auto& ops : order)
      for (const Op& op : ops) {
        ++n;
        for (int mb : {op.mb, op.kind == OpKind::FB ? op.mb2 : op.mb}) {
          lo_ = any ? std::min(lo_, mb) : mb;
          hi_ = any ? std::max(hi_, mb) : mb;
          any = true;
        }
      }
    const auto span = any ? static_cast<std::int64_t>(hi_) - lo_ + 1 : 0;
    const auto cells = static_cast<std::int64_t>(ranks) * chunks * span * 3;
    dense_ = any && cells <= static_cast<std::int64_t>(8 * n + 4096);
    if (dense_) flat_.assign(static_cast<std::size_t>(cells), kNone);
  }
  // False if the key already has a node.
  bool insert(int rank, int chunk, int mb, Part p, std::uint32_t v) {
    std::uint32_t& slot =
        dense_ ? flat_[index(rank, chunk, mb, p)] : map_.try_emplace(Key{rank, chunk, mb, static_cast<int>(p)}, kNone).first->second;
    if (slot != kNone) return false;
    slot = v;
    return true;
  }
  std::uint32_t find(int rank, int chunk, int mb, Part p) const {
    if (dense_) {
      if (rank < 0 || rank >= ranks_ || chunk < 0 || chunk >= chunks_ || mb < lo_ || mb > hi_) return kNone;
      return flat_[index(rank, chunk, mb, p)];
    }
    auto it = map_.find(Key{rank, chunk, mb, static_cast<int>(p)});
    return it == map_.end() ? kNone : it->second;
  }

 private:
  std::size_t index(int rank, int chunk, int mb, Part p) const {
    const auto span = static_cast<std::size_t>(static_cast<std::int64_t>(hi_) - lo_ + 1);
    return ((static_cast<std::size_t>(rank) * static_cast<std::size_t>(chunks_) + static_cast<std::size_t>(chunk)) * span +
            static_cast<std::size_t>(static_cast<std::int64_t>(mb) - lo_)) * 3 + static_cast<std::size_t>(p);
  }
  using Key = std::tuple<int, int, int, int>;  // rank, chunk, mb, part
  int ranks_, chunks_;
  int lo_ = 0, hi_ = -1;
  bool dense_ = false;
  std::vector<std::uint32_t> flat_;
  std::map<Key, std::uint32_t> map_;
};
}  // namespace

struct TaskGraph::Lazy {
  std::once_flag once;
  Graph g;
};

TaskGraph TaskGraph::build(const PipelineTopology& topo, const std::vector<std::vector<Op>>& order,
                           const OpTimes& times, Time p2p) {
  TaskGraph tg;
  tg.ranks_ = static_cast<int>(order.size());
  TS_ASSERT(tg.ranks_ == topo.ranks(), "order and topology disagree on the number of ranks");
  auto shape = std::make_shared<Shape>();
  std::size_t total = 0;
  for (const auto& ops : order) total += ops.size();
  TS_ASSERT(total < kNone, "task graph too large");
  shape->nodes.reserve(total);
  tg.durations_.reserve(total);
  tg.p2p_ = p2p;
  Provides provides(topo.ranks(), topo.chunks(), order);

  auto provide = [&](int chunk, int mb, Part p, std::uint32_t v, int rank, const Op& op) {
    if (!provides.insert(rank, chunk, mb, p, v))
      throw InputError(fmt::format("rank {} runs {} twice (or overlaps it with another op)", rank, to_string(op)));
  };
  // Nodes.
  for (int r = 0; r < tg.ranks_; ++r) {
    const auto& ops = order[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const Op& op = ops[i];
      const Time d = times.duration(r, op);
      if (d < Time::zero()) throw InputError(fmt::format("{} has a negative duration", to_string(op)));
      const auto v = static_cast<std::uint32_t>(shape->nodes.size());
      shape->nodes.push_back(Node{r, static_cast<int>(i), op});
      tg.durations_.push_back(d);
      (void)topo.flow_of(r, op.chunk);  // throws for a chunk this rank does not hold
      switch (op.kind) {
        case OpKind::F: provide(op.chunk, op.mb, Part::Fwd, v, r, op); break;
        case OpKind::B: provide(op.chunk, op.mb, Part::Bwd, v, r, op); break;
        case OpKind::I: provide(op.chunk, op.mb, Part::Bwd, v, r, op); break;
        case OpKind::W: provide(op.chunk, op.mb, Part::Wgt, v, r, op); break;
        case OpKind::FB:
          (void)topo.flow_of(r, op.chunk2);
          provide(op.chunk, op.mb, Part::Fwd, v, r, op);
          provide(op.chunk2, op.mb2, Part::Bwd, v, r, op);
          break;
      }
    }
  }
  auto& nodes = shape->nodes;
  auto& edges = shape->edges;
  edges.reserve(3 * total);
  auto need = [&](std::uint32_t v, int rank, int chunk, int mb, Part p, EdgeKind kind, bool remote) {
    const std::uint32_t from = provides.find(rank, chunk, mb, p);
    if (from == kNone)
      throw InputError(fmt::format("rank {} op {} needs {} on rank {}, which no rank runs", nodes[v].rank,
                                   to_string(nodes[v].op), part_name(chunk, mb, p), rank));
    edges.push_back(Edge{from, v, kind, remote});
  };
  auto forward_deps = [&](std::uint32_t v, int r, int chunk, int mb) {
    const int flow = topo.flow_of(r, chunk);
    const int pos = topo.position_of(r, chunk);
    if (pos == 0) return;
    const Stage& prev = topo.path(flow)[static_cast<std::size_t>(pos - 1)];
    need(v, prev.rank, prev.chunk, mb, Part::Fwd, EdgeKind::Activation, prev.rank != r);
  };
  auto backward_deps = [&](std::uint32_t v, int r, int chunk, int mb) {
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
  const auto n = static_cast<std::uint32_t>(nodes.size());
  for (std::uint32_t v = 0; v < n; ++v) {
    const int r = nodes[v].rank;
    const Op op = nodes[v].op;
    switch (op.kind) {
      case OpKind::F: forward_deps(v, r, op.chunk, op.mb); break;
      case OpKind::B:
      case OpKind::I: backward_deps(v, r, op.chunk, op.mb); break;
      case OpKind::W: {
        const std::uint32_t from = provides.find(r, op.chunk, op.mb, Part::Bwd);
        if (from == kNone || nodes[from].op.kind != OpKind::I)
          throw InputError(fmt::format("rank {} runs W{}:{} without a matching I{}:{}", r, op.chunk, op.mb,
                                       op.chunk, op.mb));
        edges.push_back(Edge{from, v, EdgeKind::WeightGrad, false});
        break;
      }
      case OpKind::FB:
        forward_deps(v, r, op.chunk, op.mb);
        backward_deps(v, r, op.chunk2, op.mb2);
        break;
    }
    if (v + 1 < n && nodes[v + 1].rank == r) edges.push_back(Edge{v, v + 1, EdgeKind::ProgramOrder, false});
  }
  // Out-edge lists (a stable counting sort by source keeps each source's edges in the order
  // above, the order Boost.Graph's add_edge kept them in) and in-degrees.
  shape->out_begin.assign(n + 1, 0);
  shape->in_degree.assign(n, 0);
  for (const Edge& e : edges) {
    ++shape->out_begin[e.src + 1];
    ++shape->in_degree[e.dst];
  }
  for (std::uint32_t v = 0; v < n; ++v) shape->out_begin[v + 1] += shape->out_begin[v];
  shape->out_edges.resize(edges.size());
  std::vector<std::uint32_t> fill(shape->out_begin.begin(), shape->out_begin.end() - 1);
  for (std::uint32_t i = 0; i < edges.size(); ++i) shape->out_edges[fill[edges[i].src]++] = i;
  tg.shape_ = std::move(shape);
  tg.lazy_ = std::make_shared<Lazy>();
  return tg;
}

TaskGraph TaskGraph::retimed(const TaskGraph& base, const OpTimes& times, Time p2p) {
  TaskGraph tg;
  tg.shape_ = base.shape_;
  tg.ranks_ = base.ranks_;
  tg.p2p_ = p2p;
  tg.lazy_ = std::make_shared<Lazy>();
  tg.durations_.reserve(base.shape_->nodes.size());
  for (const Node& nd : base.shape_->nodes) {
    const Time d = times.duration(nd.rank, nd.op);
    if (d < Time::zero()) throw InputError(fmt::format("{} has a negative duration", to_string(nd.op)));
    tg.durations_.push_back(d);
  }
  return tg;
}

TaskGraph TaskGraph::retimed(const TaskGraph& base, std::vector<Time> durations, Time p2p) {
  TS_ASSERT(durations.size() == base.shape_->nodes.size(), "retimed: one duration per node");
  for (std::size_t v = 0; v < durations.size(); ++v)
    if (durations[v] < Time::zero())
      throw InputError(fmt::format("{} has a negative duration", to_string(base.shape_->nodes[v].op)));
  TaskGraph tg;
  tg.shape_ = base.shape_;
  tg.ranks_ = base.ranks_;
  tg.p2p_ = p2p;
  tg.lazy_ = std::make_shared<Lazy>();
  tg.durations_ = std::move(durations);
  return tg;
}

const Graph& TaskGraph::graph() const {
  std::call_once(lazy_->once, [&] {
    Graph& g = lazy_->g;
    const Shape& sh = *shape_;
    for (std::size_t v = 0; v < sh.nodes.size(); ++v) {
      const Node& nd = sh.nodes[v];
      boost::add_vertex(TaskNode{nd.rank, nd.index, nd.op, durations_[v]}, g);
    }
    for (const Edge& e : sh.edges) boost::add_edge(e.src, e.dst, TaskEdge{e.kind, delay(e)}, g);
  });
  return lazy_->g;
}

namespace {
std::optional<std::vector<Vertex>> first_cycle(const TaskGraph::Shape& sh);
}  // namespace

std::optional<std::vector<Vertex>> TaskGraph::find_cycle() const {
  std::call_once(shape_->cycle_once, [&] { shape_->cycle = first_cycle(*shape_); });
  return shape_->cycle;
}

namespace {
std::optional<std::vector<Vertex>> first_cycle(const TaskGraph::Shape& sh) {
  // Iterative DFS with colours; a grey target is a back edge, and the DFS stack from it to the
  // current vertex is the cycle. Vertices and edges are visited in index order: deterministic.
  const std::size_t n = sh.nodes.size();
  enum : std::uint8_t { White, Grey, Black };
  std::vector<std::uint8_t> colour(n, White);
  struct Frame {
    Vertex v;
    std::uint32_t it, end;
  };
  std::vector<Frame> stack;
  for (Vertex s = 0; s < n; ++s) {
    if (colour[s] != White) continue;
    stack.push_back({s, sh.out_begin[s], sh.out_begin[s + 1]});
    colour[s] = Grey;
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.it == f.end) {
        colour[f.v] = Black;
        stack.pop_back();
        continue;
      }
      const Vertex t = sh.edges[sh.out_edges[f.it]].dst;
      ++f.it;
      if (colour[t] == Grey) {
        std::vector<Vertex> cycle;
        auto from = std::find_if(stack.begin(), stack.end(), [&](const Frame& x) { return x.v == t; });
        for (auto i = from; i != stack.end(); ++i) cycle.push_back(i->v);
        return cycle;
      }
      if (colour[t] == White) {
        colour[t] = Grey;
        stack.push_back({t, sh.out_begin[t], sh.out_begin[t + 1]});
      }
    }
  }
  return std::nullopt;
}
}  // namespace

std::vector<std::string> TaskGraph::describe(const std::vector<Vertex>& path) const {
  std::vector<std::string> out;
  for (Vertex v : path) out.push_back(fmt::format("rank {} {}", shape_->nodes[v].rank, to_string(shape_->nodes[v].op)));
  return out;
}

namespace {
struct ReplayState {
  const TaskGraph* tg = nullptr;
  std::vector<std::uint32_t> pending;
  std::vector<Time> start, end;
  std::vector<std::int64_t> binding;  // predecessor whose arrival released the op, -1 if none
  std::size_t done = 0;
};

void on_finish(engine::Simulation& sim, void* ctx, std::uint64_t arg);

void on_arrive(engine::Simulation& sim, void* ctx, std::uint64_t arg) {
  auto& st = *static_cast<ReplayState*>(ctx);
  const auto target = static_cast<std::size_t>(arg >> 32);
  const auto source = static_cast<std::size_t>(arg & 0xffffffffu);
  // Events arrive in (time, seq) order, so the last arrival is a latest one.
  st.binding[target] = static_cast<std::int64_t>(source);
  if (--st.pending[target] == 0) {
    st.start[target] = sim.now();
    sim.schedule_in(st.tg->duration(target), on_finish, ctx, target);
  }
}

void on_finish(engine::Simulation& sim, void* ctx, std::uint64_t arg) {
  auto& st = *static_cast<ReplayState*>(ctx);
  const auto v = static_cast<std::size_t>(arg);
  st.end[v] = sim.now();
  ++st.done;
  const TaskGraph::Shape& sh = st.tg->shape();
  for (std::uint32_t i = sh.out_begin[v]; i < sh.out_begin[v + 1]; ++i) {
    const TaskGraph::Edge& e = sh.edges[sh.out_edges[i]];
    sim.schedule_in(st.tg->delay(e), on_arrive, ctx, (static_cast<std::uint64_t>(e.dst) << 32) | v);
  }
}

// Every op's timing by rank, busy time, makespan and bubble from the ops' start and end times;
// `last` becomes the op that ends the makespan (the first, lowest rank, of the latest ops).
Replay timings(const TaskGraph& tg, const std::vector<Time>& start, const std::vector<Time>& end, std::size_t& last) {
  const TaskGraph::Shape& sh = tg.shape();
  const std::size_t n = sh.nodes.size();
  Replay out;
  out.ops.resize(static_cast<std::size_t>(tg.ranks()));
  out.busy.assign(static_cast<std::size_t>(tg.ranks()), Time::zero());
  for (auto& ops : out.ops) ops.reserve(n / std::max<std::size_t>(1, out.ops.size()) + 1);
  last = 0;
  for (std::size_t v = 0; v < n; ++v) {
    const TaskGraph::Node& nd = sh.nodes[v];
    const auto r = static_cast<std::size_t>(nd.rank);
    out.ops[r].push_back(OpTiming{nd.rank, nd.op, start[v], end[v]});
    out.busy[r] += tg.duration(v);
    if (end[v] > end[last]) last = v;
  }
  out.makespan = n ? end[last] : Time::zero();
  for (Time b : out.busy) out.bubble.push_back(out.makespan - b);
  return out;
}

// The critical path back from op `last`: pred(u) is the op whose end released u (-1: none); the
// dependency named is the first edge from the predecessor to the op (as boost::edge finds it).
template <class Pred>
std::vector<CriticalStep> path_back(const TaskGraph::Shape& sh, std::size_t last, const std::vector<Time>& start,
                                    const std::vector<Time>& end, Pred pred) {
  std::vector<CriticalStep> path;
  for (std::int64_t v = static_cast<std::int64_t>(last); v >= 0;) {
    const auto u = static_cast<std::size_t>(v);
    const TaskGraph::Node& nd = sh.nodes[u];
    CriticalStep s{nd.rank, nd.op, start[u], end[u], std::nullopt};
    const std::int64_t p = pred(u);
    if (p >= 0) {
      const auto pu = static_cast<std::size_t>(p);
      for (std::uint32_t i = sh.out_begin[pu]; i < sh.out_begin[pu + 1]; ++i) {
        const TaskGraph::Edge& e = sh.edges[sh.out_edges[i]];
        if (e.dst == u) {
          s.via = e.kind;
          break;
        }
      }
    }
    path.push_back(s);
    v = p;
  }
  std::reverse(path.begin(), path.end());
  return path;
}
}  // namespace

Replay replay(const TaskGraph& tg) {
  if (auto cycle = tg.find_cycle()) throw DeadlockError(tg.describe(*cycle));
  const TaskGraph::Shape& sh = tg.shape();
  const std::size_t n = sh.nodes.size();
  TS_ASSERT(n < (std::size_t{1} << 32), "task graph too large");
  ReplayState st;
  st.tg = &tg;
  st.pending.assign(sh.in_degree.begin(), sh.in_degree.end());
  st.start.assign(n, Time::zero());
  st.end.assign(n, Time::zero());
  st.binding.assign(n, -1);
  engine::Simulation sim;
  for (std::size_t v = 0; v < n; ++v)
    if (st.pending[v] == 0) sim.schedule_at(tg.duration(v), on_finish, &st, v);
  sim.run();
  // Acyclic graphs always complete; this guards the engine itself.
  TS_ASSERT(st.done == n, "replay stopped before every op ran");

  std::size_t last = 0;
  Replay out = timings(tg, st.start, st.end, last);
  out.events = sim.events_run();
  // Critical path: follow binding predecessors back from the last op to finish; the dependency
  // named is the first edge from the predecessor to the op (as boost::edge finds it).
  if (n) out.critical_path = path_back(sh, last, st.start, st.end, [&](std::size_t u) { return st.binding[u]; });
  return out;
}

std::vector<std::uint32_t> topological_order(const TaskGraph::Shape& sh) {
  const auto n = static_cast<std::uint32_t>(sh.nodes.size());
  std::vector<std::uint32_t> pending(sh.in_degree.begin(), sh.in_degree.end());
  std::vector<std::uint32_t> order;
  order.reserve(n);
  for (std::uint32_t v = 0; v < n; ++v)
    if (pending[v] == 0) order.push_back(v);
  for (std::size_t head = 0; head < order.size(); ++head) {
    const std::uint32_t v = order[head];
    for (std::uint32_t i = sh.out_begin[v]; i < sh.out_begin[v + 1]; ++i) {
      const std::uint32_t t = sh.edges[sh.out_edges[i]].dst;
      if (--pending[t] == 0) order.push_back(t);
    }
  }
  if (order.size() != n) order.clear();
  return order;
}

namespace {
// The events of a replay (see replay() above): an op's finish, or a dependency's arrival.
struct Event {
  bool arrival = false;
  std::uint32_t x = 0;  // the op (finish) or the edge (arrival)
  bool operator==(const Event&) const = default;
};

// Which of two events of one replay the engine runs first. An arrival is scheduled by its
// source's finish (in out-edge order, which is edge order among one source's edges); an op's
// finish by the arrival that released it, or before the run (ops without dependencies, in
// node order), ahead of every other event.
class EventOrder {
 public:
  EventOrder(const TaskGraph& tg, const std::vector<Time>& end, const std::vector<std::uint32_t>& released_by)
      : tg_(tg), sh_(tg.shape()), end_(end), released_by_(released_by) {}
  bool before(Event a, Event b) const {
    for (;;) {
      const Time ta = time(a), tb = time(b);
      if (ta != tb) return ta < tb;
      const bool ia = initial(a), ib = initial(b);
      if (ia || ib) return ia && ib ? a.x < b.x : ia;
      const Event pa = cause(a), pb = cause(b);
      if (pa == pb) return a.x < b.x;  // two arrivals scheduled by one finish: edge order
      a = pa;
      b = pb;
    }
  }

 private:
  Time time(Event e) const {
    if (!e.arrival) return end_[e.x];
    const TaskGraph::Edge& ed = sh_.edges[e.x];
    return end_[ed.src] + tg_.delay(ed);
  }
  bool initial(Event e) const { return !e.arrival && sh_.in_degree[e.x] == 0; }
  Event cause(Event e) const {
    return e.arrival ? Event{false, sh_.edges[e.x].src} : Event{true, released_by_[e.x]};
  }
  const TaskGraph& tg_;
  const TaskGraph::Shape& sh_;
  const std::vector<Time>& end_;
  const std::vector<std::uint32_t>& released_by_;
};
}  // namespace

Replay replay_times(const TaskGraph& tg, bool critical_path) {
  if (auto cycle = tg.find_cycle()) throw DeadlockError(tg.describe(*cycle));
  const TaskGraph::Shape& sh = tg.shape();
  const std::size_t n = sh.nodes.size();
  std::call_once(sh.topo_once, [&] {
    TS_ASSERT(n < TaskGraph::Shape::kRemoteBit, "task graph too large");
    sh.topo_order = topological_order(sh);
    sh.topo_out_begin.assign(1, 0);
    sh.topo_out.reserve(sh.edges.size());
    for (const std::uint32_t v : sh.topo_order) {
      for (std::uint32_t i = sh.out_begin[v]; i < sh.out_begin[v + 1]; ++i) {
        const TaskGraph::Edge& e = sh.edges[sh.out_edges[i]];
        sh.topo_out.push_back(e.dst | (e.remote ? TaskGraph::Shape::kRemoteBit : 0u));
      }
      sh.topo_out_begin.push_back(static_cast<std::uint32_t>(sh.topo_out.size()));
    }
    sh.in_begin.assign(n + 1, 0);
    for (const TaskGraph::Edge& e : sh.edges) ++sh.in_begin[e.dst + 1];
    for (std::size_t v = 0; v < n; ++v) sh.in_begin[v + 1] += sh.in_begin[v];
    sh.in_edges.resize(sh.edges.size());
    std::vector<std::uint32_t> fill(sh.in_begin.begin(), sh.in_begin.end() - 1);
    for (std::uint32_t i = 0; i < sh.edges.size(); ++i) sh.in_edges[fill[sh.edges[i].dst]++] = i;
  });
  TS_ASSERT(sh.topo_order.size() == n, "acyclic task graph without a topological order");
  // start[v] = max over in-edges of end(u) + delay (0 for an op with none: the engine starts
  // those at time 0); every end(u) is final when u comes up in the order.
  std::vector<Time> start(n, Time::zero()), end(n, Time::zero());
  const Time p2p = tg.p2p();
  for (std::size_t k = 0; k < n; ++k) {
    const std::uint32_t v = sh.topo_order[k];
    const Time e = start[v] + tg.duration(v);
    end[v] = e;
    const Time remote = e + p2p;
    for (std::uint32_t i = sh.topo_out_begin[k]; i < sh.topo_out_begin[k + 1]; ++i) {
      const std::uint32_t t = sh.topo_out[i];
      const std::uint32_t dst = t & ~TaskGraph::Shape::kRemoteBit;
      const Time arrive = (t & TaskGraph::Shape::kRemoteBit) != 0 ? remote : e;
      if (arrive > start[dst]) start[dst] = arrive;
    }
  }
  std::size_t last = 0;
  Replay out = timings(tg, start, end, last);
  out.events = static_cast<std::uint64_t>(n + sh.edges.size());
  if (!critical_path || n == 0) return out;

  // The arrival that released each op: of those at its start, the one the engine runs last.
  // In topological order, so the causes an order question walks back through are known.
  std::vector<std::uint32_t> released_by(n, kNone);
  const EventOrder order(tg, end, released_by);
  for (const std::uint32_t v : sh.topo_order) {
    std::uint32_t best = kNone;
    for (std::uint32_t i = sh.in_begin[v]; i < sh.in_begin[v + 1]; ++i) {
      const std::uint32_t e = sh.in_edges[i];
      const TaskGraph::Edge& ed = sh.edges[e];
      if (end[ed.src] + tg.delay(ed) != start[v]) continue;
      if (best == kNone || order.before(Event{true, best}, Event{true, e})) best = e;
    }
    released_by[v] = best;
  }
  // As replay(): back from the last op along the releasing dependencies; the dependency named is
  // the first edge from the predecessor to the op.
  out.critical_path = path_back(sh, last, start, end, [&](std::size_t u) {
    return released_by[u] == kNone ? std::int64_t{-1} : static_cast<std::int64_t>(sh.edges[released_by[u]].src);
  });
  return out;
}

}  // namespace trainsim::graph
