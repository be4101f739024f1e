#pragma once
// What simulate_step reuses between the steps of a batch ramp, the phases of a run and the
// points of a sweep (issue 13). Every memo (core/memo.hpp) is keyed on the full inputs of what
// it holds, so a hit is exactly the value a fresh computation gives and the step's output bytes
// never depend on what was simulated before:
//
//   memo               holds                                   keyed on
//   "step time"        a step's time and utilisation           step_inputs_key + the global batch
//   "step setup"       layer split, every stage's phases and   step_inputs_key: the cost model's
//                      op runs alone, F&B pair runs (on first  identity, the model, GPU, cluster and
//                      use), the all-to-all figures, the op-   [network] figures, the phase's plan
//                      cost counts of the split and stages     and its sequence length and precision
//   "schedule"         the pipeline order of a schedule        schedule name, pp, micro-batches, vpp,
//                                                              combined 1F1B
//   "task graph"       its task graph (structure only)         the same
//   "schedule runs"    which op run each of its ops takes      the same
//   "pipeline replay"  the schedule replayed with sends, times  the schedule's key, every op run's
//                      only (and, on first use, with its       duration (the stage-time vector) and the
//                      critical path, with free sends          p2p time
//                      and with equal stages)
// Below them the op costs ("op cost", per cost model) and the network results ("all-to-all",
// "collective", "topology": network/memo.hpp) are memoised too. Capacities: 4096 step times, 32
// setups, 256 schedules, task graphs and schedule runs, 64 replays.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "core/memo.hpp"
#include "graph/task_graph.hpp"
#include "schedule/schedule.hpp"
#include "step/overlap_policy.hpp"
#include "step/phases.hpp"
#include "step/step.hpp"

namespace trainsim::step {

// Every field of each description (SourcePos excluded: positions only name where an error is);
// static_asserts in caches.cpp catch a field added later.
void add_key(KeyWriter& k, const ModelConfig& m);
void add_key(KeyWriter& k, const HardwareConfig& h);
void add_key(KeyWriter& k, const ClusterConfig& c);
void add_key(KeyWriter& k, const PlanConfig& p);
void add_key(KeyWriter& k, const PrecisionConfig& p);

// Everything a step of this phase reads besides its global batch: the cost model's identity, the
// model, GPU, cluster and [network] figures, the phase's plan, its sequence length and precision
// (not its batch, tokens, ramp, name or kind: nothing in sim/step reads them).
std::string step_inputs_key(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                            const calibration::CostModel& cost);

// (op kind, stage, second stage of an F&B pair or -1), as StepResult::op_runs.
using OpRunKey = std::tuple<int, int, int>;

// The part of a step that does not depend on its global batch.
struct StepSetup {
  std::vector<std::int64_t> layer_split;
  std::vector<StageCost> stages;
  double a2a_dispatch_s = 0, a2a_combine_s = 0;
  std::string a2a_bottleneck;
  CostCounts counts;  // op costs asked for by the split and the stages

  // The op run of `key`: F, B, I, W alone are made with the stages, an F&B pair on first use.
  std::shared_ptr<const OpRun> op_run(const OpRunKey& key) const;

 private:
  friend std::shared_ptr<const StepSetup> step_setup(const Scenario&, const PlanConfig&, const TrainingConfig&,
                                                     const calibration::CostModel&);
  struct Runs {
    std::mutex mu;
    std::map<OpRunKey, std::shared_ptr<const OpRun>> map;
  };
  std::shared_ptr<Runs> runs_ = std::make_shared<Runs>();
};

// Memo "step setup".
std::shared_ptr<const StepSetup> step_setup(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                                            const calibration::CostModel& cost);

// Memo "schedule": schedule::build(plan.schedule, {pp, microbatches, vpp}), its order turned into
// combined 1F1B when `combined`.
std::shared_ptr<const schedule::Schedule> step_schedule(const PlanConfig& plan, int microbatches, bool combined);

// Memo "task graph": the schedule's task graph (nodes and edges; times are set per replay with
// TaskGraph::retimed).
std::shared_ptr<const graph::TaskGraph> step_task_graph(const PlanConfig& plan, int microbatches, bool combined);

// Which op run each op of a schedule takes: the distinct keys (op kind, stage, second stage or
// -1) in order of first use, rank by rank in program order, and each op's index into them.
struct ScheduleRuns {
  std::vector<OpRunKey> keys;
  std::vector<std::vector<std::uint32_t>> of_op;  // [rank][op in program order] -> index in keys
};

// Memo "schedule runs": ScheduleRuns of the schedule step_schedule gives (same key).
std::shared_ptr<const ScheduleRuns> step_schedule_runs(const PlanConfig& plan, int microbatches, bool combined);

struct PipelineReplays {
  std::shared_ptr<const schedule::Schedule> schedule;
  // The schedule replayed with the p2p sends, its times only (graph::replay_times: no critical
  // path), what a step's time, breakdown and tail read.
  graph::Replay replay;
  // The same replay as a schedule::Result with its critical path (what a report shows:
  // StepResult::pipeline; graph::replay_times, replay()'s exactly), made on first use.
  const schedule::Result& pipeline() const;
  // The two replays that split the idle time (step/breakdown.hpp), times only, made on first
  // use: a step whose result is only its time (step_seconds) does not need them.
  const graph::Replay& free_sends() const;    // sends take no time
  const graph::Replay& equal_stages() const;  // every op kind at its mean over the op runs

  struct Lazy {
    std::once_flag pipeline_once, idle_once;
    std::shared_ptr<const graph::TaskGraph> shape;
    graph::OpTimes times, equal;
    std::vector<Time> node_times;
    Time p2p;
    std::optional<schedule::Result> pipeline;
    graph::Replay free_sends, equal_stages;
  };
  std::shared_ptr<Lazy> lazy;

 private:
  const Lazy& idle_made() const;
};

// Memo "pipeline replay". `durations`: every op run the schedule uses, by key (the memo's key);
// `node_times`: the same per op of the schedule, rank by rank in program order (what it follows
// from `durations`, to replay without looking each op up).
std::shared_ptr<const PipelineReplays> pipeline_replays(const PlanConfig& plan, int microbatches, bool combined,
                                                        const std::map<OpRunKey, Time>& durations,
                                                        const std::vector<Time>& node_times, Time p2p);

}  // namespace trainsim::step
