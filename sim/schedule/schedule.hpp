#pragma once
// Pipeline schedules: each rank's op order, chosen by name from a registry, and its replay.
//
// A schedule is only an order per rank (graph::Op lists) over a PipelineTopology; timing comes
// from replaying it on the task graph with op times. The registry is a plain table
// {name, citation, summary, builder}.

#include <string>
#include <string_view>
#include <vector>

#include "core/time.hpp"
#include "graph/op.hpp"
#include "graph/task_graph.hpp"

namespace trainsim::schedule {

struct ScheduleParams {
  int pp = 0;            // pipeline ranks
  int microbatches = 0;  // micro-batches per step (DualPipe: both directions together)
  int vpp = 1;           // virtual stages (model chunks) per rank; interleaved only
};

struct Schedule {
  std::string kind;
  ScheduleParams params;
  graph::PipelineTopology topo;
  std::vector<std::vector<graph::Op>> order;  // [rank] in program order
  int weight_copies = 1;  // copies of one rank's parameters held (DualPipe: 2)
};

struct ScheduleInfo {
  const char* name;
  const char* citation;
  const char* summary;
  Schedule (*build)(const ScheduleParams&);  // throws UsageError for unsupported params
};

// The registered schedules in a fixed order.
const std::vector<ScheduleInfo>& registry();
// Throws UsageError naming --kind and listing the known names.
const ScheduleInfo& find(std::string_view name);
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

// Checks a parameter and throws UsageError "--option: message" when it fails.
void require(bool ok, std::string_view option, std::string_view message);

}  // namespace trainsim::schedule
