#pragma once
// Pipeline schedules: each rank's op order, chosen by name from a registry, and its replay.
//
// A schedule is only an order per rank (graph::Op lists) over a PipelineTopology; timing comes
// from replaying it on the task graph with op times. The registry is a plain table
// {name, citation, summary, check, builder}; schedule_rules.hpp exposes its rules to config/.

#include <string>
#include <string_view>
#include <vector>

#include "core/time.hpp"
#include "graph/op.hpp"
#include "graph/task_graph.hpp"
#include "schedule/schedule_rules.hpp"

namespace trainsim::schedule {

struct Schedule {
  std::string kind;
  ScheduleParams params;
  graph::PipelineTopology topo;
  std::vector<std::vector<graph::Op>> order;  // [rank] in program order
  // Copies of the model's parameters the pipeline holds: DualPipe 2 (every stage on two
  // ranks, one per direction); every other schedule 1, DualPipeV included.
  int weight_copies = 1;
  // Pipeline stages (model chunks) each rank holds: vpp for interleaved, 2 for DualPipe and
  // DualPipeV, 1 otherwise. The stage of (rank, chunk) is topo.position_of(rank, chunk).
  int stages_per_rank = 1;
};

struct ScheduleInfo {
  const char* name;
  const char* citation;
  const char* summary;
  // The family's own rules on top of the common ones (schedule_rules.hpp); nullptr: none.
  std::optional<ParamProblem> (*check)(const ScheduleParams&);
  Schedule (*build)(const ScheduleParams&);  // called only with params that pass the checks
};

// The registered schedules in a fixed order.
const std::vector<ScheduleInfo>& registry();
// Throws UsageError naming --kind and listing the known names.
const ScheduleInfo& find(std::string_view name);
// Throws UsageError naming the refused option (--kind, --pp, --microbatches, --vpp).
Schedule build(std::string_view name, const ScheduleParams& params);

// Memory proxy: the most micro-batches whose activations a rank holds at once, counted in
// program order: a forward (alone or in an F&B) adds one before the op; a full backward, or
// the W of a split backward, releases one after it.
std::vector<int> peak_inflight(const Schedule& s);

struct Result {
  Schedule schedule;
  graph::OpTimes times;
  Time p2p;
  graph::Replay replay;
  std::vector<int> peak_inflight;
  double bubble_fraction = 0;  // sum of bubbles / (ranks * makespan)
};

// Builds the schedule, its task graph, and replays it. Throws UsageError/InputError/DeadlockError.
Result run(std::string_view name, const ScheduleParams& params, const graph::OpTimes& times, Time p2p);
Result run(Schedule s, const graph::OpTimes& times, Time p2p);
// The same with the schedule's task graph already built with these times and p2p (e.g.
// TaskGraph::retimed of a graph of this schedule).
Result run(Schedule s, const graph::TaskGraph& tg, const graph::OpTimes& times, Time p2p);
// The Result of a replay of that graph already made (e.g. graph::replay_times with its critical
// path): peak in-flight and bubble fraction as run() computes them.
Result result_of(Schedule s, graph::Replay replay, const graph::OpTimes& times, Time p2p);

}  // namespace trainsim::schedule
