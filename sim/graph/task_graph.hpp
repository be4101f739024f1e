#pragma once
// The task graph of one pipeline step (Boost.Graph) and its replay on the event engine.
//
// Nodes: one per op a rank runs, identified by (rank, chunk, micro-batch, kind) -- see op.hpp.
// Edges, each with the time that must pass between the end of the source and the start of the
// target:
//   Activation    F on the previous stage of the micro-batch's path -> F here (p2p delay when
//                 the stages are on different ranks)
//   Gradient      B/I on the next stage -> B/I here (p2p delay across ranks)
//   Loss          F -> B/I of the same micro-batch on the last stage of its path (local)
//   WeightGrad    I -> W of the same micro-batch and stage (local)
//   ProgramOrder  each op -> the next op of the same rank (each rank runs its list in order,
//                 one op at a time)
// An F&B node carries both its forward's and its backward's dependencies.
//
// A schedule whose order contradicts the dependencies has a cycle; build() succeeds, and
// find_cycle() / replay() report the cycle (DeadlockError) instead of hanging.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "core/error.hpp"
#include "core/time.hpp"
#include "graph/op.hpp"

namespace trainsim::graph {

// Op durations. Uniform: I = b - w; an F&B pair takes fb. All >= 0, w <= b.
// `per_op`, when set, gives each op on each rank its own duration instead (a training step
// whose stages differ: embedding on the first, output head on the last); the uniform fields
// are then unused.
struct OpTimes {
  Time f = Time::us(1);
  Time b = Time::us(2);
  Time w = Time::us(1);
  Time fb = Time::us(3);
  std::function<Time(int rank, const Op& op)> per_op;
  Time duration(const Op& op) const;
  Time duration(int rank, const Op& op) const { return per_op ? per_op(rank, op) : duration(op); }
};

enum class EdgeKind : std::uint8_t { Activation, Gradient, Loss, WeightGrad, ProgramOrder };
const char* edge_kind_name(EdgeKind k);

struct TaskNode {
  int rank = 0;
  int index = 0;  // position in the rank's op list
  Op op;
  Time duration;
};

struct TaskEdge {
  EdgeKind kind = EdgeKind::ProgramOrder;
  Time delay;
};

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, TaskNode, TaskEdge>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;

// The schedule deadlocks: `cycle` lists the ops of one dependency cycle in order, each as
// "rank r Op", the last depending on the first.
class DeadlockError : public InputError {
 public:
  explicit DeadlockError(std::vector<std::string> cycle);
  const std::vector<std::string>& cycle() const { return cycle_; }

 private:
  std::vector<std::string> cycle_;
};

class TaskGraph {
 public:
  // order[r] = rank r's ops in program order. p2p = transfer time of an activation or gradient
  // between two ranks. Throws InputError for an op that needs an op no rank runs, a duplicate
  // op, or an op on a (rank, chunk) outside the topology. O(V + E) (no tree maps: the ops a
  // node needs are found in a flat index).
  static TaskGraph build(const PipelineTopology& topo, const std::vector<std::vector<Op>>& order,
                         const OpTimes& times, Time p2p);
  // The graph of `shape` with other op times and another transfer time: the same nodes and
  // edges (checked when `shape` was built), shared, not built again; O(V). Throws InputError for
  // a negative duration, as build() does.
  static TaskGraph retimed(const TaskGraph& shape, const OpTimes& times, Time p2p);
  // The same with every node's duration given, in node order (rank by rank, program order).
  static TaskGraph retimed(const TaskGraph& shape, std::vector<Time> durations, Time p2p);

  // The graph as Boost.Graph, made on first use (the replay does not need it): vertices in node
  // order, edges in the order build() found them.
  const Graph& graph() const;
  int ranks() const { return ranks_; }
  std::size_t size() const { return shape_->nodes.size(); }

  // One dependency cycle if there is one (vertices in dependency order). O(V + E).
  std::optional<std::vector<Vertex>> find_cycle() const;
  std::vector<std::string> describe(const std::vector<Vertex>& path) const;

  // The structure shared by a graph and its retimed copies.
  struct Node {
    int rank = 0;
    int index = 0;  // position in the rank's op list
    Op op;
  };
  struct Edge {
    std::uint32_t src = 0, dst = 0;
    EdgeKind kind = EdgeKind::ProgramOrder;
    bool remote = false;  // pays the p2p transfer time
  };
  struct Shape {
    std::vector<Node> nodes;
    std::vector<Edge> edges;                // in the order build() found them
    std::vector<std::uint32_t> out_begin;   // [v, v+1) of out_edges: v's edges, in that order
    std::vector<std::uint32_t> out_edges;   // edge indices
    std::vector<std::uint32_t> in_degree;
    // find_cycle's answer depends on the structure alone: found once per shape.
    mutable std::once_flag cycle_once;
    mutable std::optional<std::vector<Vertex>> cycle;
    // For replay_times, found once per shape: a topological order (Kahn's), each vertex's
    // out-edges in that order ([topo_out_begin[i], topo_out_begin[i+1]) of topo_out for the
    // i-th vertex of the order: dst | kRemoteBit when remote) and the in-edge lists
    // ([in_begin[v], in_begin[v+1]) of in_edges: v's edges in edge order).
    static constexpr std::uint32_t kRemoteBit = 0x80000000u;
    mutable std::once_flag topo_once;
    mutable std::vector<std::uint32_t> topo_order, topo_out_begin, topo_out, in_begin, in_edges;
  };
  const Shape& shape() const { return *shape_; }
  Time duration(std::size_t v) const { return durations_[v]; }
  Time delay(const Edge& e) const { return e.remote ? p2p_ : Time::zero(); }
  Time p2p() const { return p2p_; }

 private:
  struct Lazy;
  std::shared_ptr<const Shape> shape_;
  std::vector<Time> durations_;
  Time p2p_;
  int ranks_ = 0;
  std::shared_ptr<Lazy> lazy_;
};

// The shape's vertices in a topological order: Kahn's algorithm, ready vertices first in first
// out, so the order is a function of the shape alone (any valid order gives the same times).
// Empty when the graph has a cycle (replay_times reports it through find_cycle first). O(V + E).
std::vector<std::uint32_t> topological_order(const TaskGraph::Shape& sh);

struct OpTiming {
  int rank = 0;
  Op op;
  Time start;
  Time end;
};

// One op on the critical path and the dependency that made it start when it did (`via`;
// nullopt for the first op, which started at time 0).
struct CriticalStep {
  int rank = 0;
  Op op;
  Time start;
  Time end;
  std::optional<EdgeKind> via;
};

struct Replay {
  Time makespan;
  std::vector<std::vector<OpTiming>> ops;  // [rank] in program order
  std::vector<Time> busy;                  // [rank] sum of op durations
  std::vector<Time> bubble;                // [rank] makespan - busy
  std::vector<CriticalStep> critical_path; // from time 0 to the makespan
  std::uint64_t events = 0;                // engine events run
};

// Replays the graph on the discrete-event engine: an op starts when its last dependency has
// arrived. Throws DeadlockError (with the cycle) if the order cannot complete.
Replay replay(const TaskGraph& tg);

// The same replay without the engine: every op starts at the latest arrival over its
// dependencies, max over edges (u, v) of end(u) + delay, and ends `duration` later, evaluated
// once in a topological order of the shape (found once per shape). Integer picoseconds, max and
// + only: makespan, ops, busy, bubble and events (one per op finished and one per dependency
// arrived, as the engine counts them) are exactly replay()'s. With `critical_path`, also
// replay()'s critical path: the dependency that released an op is the arrival the engine runs
// last, and among arrivals at one instant the engine runs them in the order it scheduled them
// ((time, sequence) order, the sequence being the order of the handlers that scheduled them,
// then the order within a handler); that order is followed back through the events' causes
// until two differ in time. Without it critical_path is left empty. O(V + E) (plus, for the
// critical path, the walk back over equal instants). Throws DeadlockError as replay() does.
Replay replay_times(const TaskGraph& tg, bool critical_path = false);

}  // namespace trainsim::graph
