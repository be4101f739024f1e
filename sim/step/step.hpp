#pragma once
// One training step, simulated as a real framework runs it (sim/step/README.md):
//
//   op_lists        the model's ops as one GPU of each pipeline stage runs them (TP, SP, EP, CP)
//   phases          each pipeline op (F, B, I, W) as a graph of compute and communication phases:
//                   recomputation, TP collectives (SP, tp_comm_overlap), the EP all-to-all
//                   (shared-expert overlap), the CP K/V exchange, ZeRO-2/3 DP traffic
//   comm_plan       what each communication costs on the cluster (network model)
//   overlap_policy  how an op's phases, or an F&B pair's, run on the GPU's streams (one list
//                   scheduler shared with `trainsim schedule`); combined 1F1B
//   (schedule/)     the plan's pipeline schedule replayed on the event engine with those op times
//   breakdown       the parts of the step measured from the replay's timeline: compute,
//                   recompute, exposed TP/EP/CP/PP/DP, schedule bubble vs stage imbalance
//   tail            what follows the pipeline: the DP gradient reduction (in buckets, overlapped
//                   with the backward when overlap_grad_reduce), the parameter all-gather
//                   (overlapped with the next forward when overlap_param_gather)
//   optimizer       the optimizer step as frameworks run it, on the rank with the largest shard
//
// Symmetric mode: one representative pipeline stands for all (balanced routing: every EP group
// sees the same traffic); every pipeline rank of it is replayed.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "schedule/schedule.hpp"
#include "step/overlap_policy.hpp"
#include "step/phases.hpp"

namespace trainsim::step {

// One stage's ops for one micro-batch.
struct StageCost {
  int stage = 0;
  std::vector<std::string> layers;     // labels, forward order
  StagePhases phases;
  Time f, b, i, w;                     // each op alone
  Time f_comm, b_comm;                 // communication busy inside F and B
  double flops_fwd = 0, flops_bwd = 0; // model FLOPs (causal) of the stage, one micro-batch
};

// The parts of one step, mean per GPU, in seconds; they add up to StepResult::step_s. The names
// that lines() gives are stable: text, --json ("breakdown_s"), Markdown and HTML use them.
struct Breakdown {
  double compute_s = 0;          // compute busy time of the model's ops (first execution)
  double recompute_s = 0;        // forward ops recomputed in the backward (plan.recompute)
  double exposed_tp_s = 0;       // tensor-parallel collectives not hidden behind compute
  double exposed_ep_s = 0;       // expert-parallel all-to-all not hidden behind compute
  double exposed_cp_s = 0;       // context-parallel K/V exchange not hidden behind compute
  double exposed_pp_s = 0;       // pipeline activation/gradient sends not hidden
  double exposed_dp_s = 0;       // data-parallel gradient and parameter collectives not hidden
  double optimizer_s = 0;        // the optimizer step
  double schedule_bubble_s = 0;  // idle in the pipeline that the schedule leaves with equal stages
  double imbalance_s = 0;        // idle in the pipeline because another stage is slower
  double p2p_s = 0;              // information, not a part: one activation transfer between neighbours

  struct Line {
    const char* name;   // stable key: compute, recompute, exposed_tp, exposed_ep, exposed_cp, exposed_pp,
                        // exposed_dp, optimizer, schedule_bubble, imbalance
    const char* label;  // for people: "exposed TP", ...
    double seconds;
  };
  std::vector<Line> lines() const;  // in the order above
  double total() const;             // sum of the lines
};

// The optimizer step on the rank with the largest shard (optimizer.hpp).
struct OptimizerParts {
  int rank = 0;                 // pipeline rank
  double shard_params = 0;      // parameters this rank updates
  double local_params = 0;      // parameters this rank holds
  double grad_norm_s = 0;       // local squared norm over the shard + all-reduce over every GPU
  double clip_s = 0;            // gradients scaled by the clip coefficient
  double adamw_s = 0;           // AdamW over the shard
  double param_copy_s = 0;      // updated master weights written to the BF16 working copy
  double requant_s = 0;         // FP8 copies (and transposes) of the GEMM weights re-quantised
  double total_s = 0;
};

// Data-parallel traffic after (or overlapped with) the pipeline (tail.hpp).
struct DpParts {
  double grad_reduce_s = 0;     // busy time of the gradient reduction on the slowest rank
  double param_gather_s = 0;    // busy time of the parameter all-gather on the slowest rank
  double exposed_grad_s = 0;    // past the end of the pipeline
  double exposed_param_s = 0;   // before the optimizer ends the step, or delaying the next forward
  int buckets = 0;              // gradient buckets per rank (dense + expert)
  double bucket_params = 0;     // parameters per bucket
};

struct StepResult {
  double step_s = 0;
  double pipeline_s = 0;        // schedule makespan
  std::int64_t global_batch = 0;
  std::int64_t microbatches = 0;
  double tokens = 0;            // per step
  double tokens_per_s_per_gpu = 0;
  double flops_per_step_causal = 0, flops_per_step_full = 0;  // model FLOPs, incl. MTP
  double mfu_causal = 0, mfu_full = 0;  // vs the dense BF16 peak
  double mfu_peak_flops = 0;            // the peak used (per GPU)
  double utilization = 0;       // compute-busy fraction of the step (for energy)
  double bubble_fraction = 0;
  double exposed_comm_fraction = 0;
  Breakdown breakdown;
  std::vector<std::int64_t> layer_split;  // layers per stage used
  std::vector<StageCost> stages;
  std::optional<schedule::Result> pipeline;  // the replayed schedule (timeline)
  // The op runs the replay used, by (op kind, stage, second stage of an F&B pair or -1).
  std::map<std::tuple<int, int, int>, OpRun> op_runs;
  const OpRun* op_run(int rank, const graph::Op& op) const;
  std::vector<double> rank_bubble_s, rank_imbalance_s, rank_exposed_pp_s;  // per pipeline rank
  CostCounts costs;
  double a2a_dispatch_s = 0, a2a_combine_s = 0;  // one layer, forward
  std::string a2a_bottleneck;
  double dp_reduce_scatter_s = 0, dp_all_gather_s = 0;  // busy (see dp)
  DpParts dp;
  OptimizerParts optimizer;
  std::vector<std::string> models;  // the step models in use: "name: citation"
  std::vector<std::string> notes;   // assumptions and approximations used in this step
};

// What the DP tail, the breakdown and the optimizer read of a step: the replayed pipeline, the
// stages and the op runs, by (op kind, stage, second stage of an F&B pair or -1). simulate_step
// points it at the memoised values (step/caches.hpp), so a step whose result is only its time
// copies none of them.
struct StepView {
  const graph::Replay* replay = nullptr;  // the pipeline's times (graph::replay_times)
  const graph::PipelineTopology* topo = nullptr;
  const std::vector<StageCost>* stages = nullptr;
  const std::map<std::tuple<int, int, int>, const OpRun*>* runs = nullptr;
  // per_op[r][i]: the run of rank r's i-th op in program order (the replay's rep.ops[r][i]).
  const std::vector<std::vector<const OpRun*>>* per_op = nullptr;
  const OpRun* op_run(int rank, const graph::Op& op) const;  // null if the step has none
};

// One DualPipe F&B pair of `moe_layers` MoE layers per chunk and one micro-batch per chunk,
// with no pipeline communication: the workload of DeepSeek's H800 profile (issue: predict a
// real profiled chunk from first principles). Costs from the model math, the cost model and
// the network model only.
struct ChunkPairResult {
  double span_s = 0;             // the pair's duration
  double compute_busy_s = 0;     // compute stream busy (on the SMs left to compute)
  double comm_busy_s = 0;        // all-to-all stream busy
  double exposed_comm_s = 0;     // span minus compute busy: communication not hidden
  double forward_compute_s = 0, backward_compute_s = 0;  // alone, on all SMs
  double dispatch_s = 0, combine_s = 0;                  // one layer, forward
  // Compute alone (all SMs, no gaps) by group: "dense GEMM", "grouped GEMM", "attention",
  // "memory-bound" (norms, casts, elementwise, routing, permutation).
  std::map<std::string, double> compute_by_group_s;
};
ChunkPairResult simulate_chunk_pair(const Scenario& sc, int moe_layers, const calibration::CostModel& cost);

// Simulates one step of phase `phase` of the scenario at `global_batch` sequences. What does not
// depend on the batch (the stages, the op runs) and what repeats (schedules, pipeline replays of
// an equal stage-time vector, op costs, network results) is memoised on its full inputs
// (step/caches.hpp): the result is the same whatever ran before.
StepResult simulate_step(const Scenario& sc, std::size_t phase, std::int64_t global_batch,
                         const calibration::CostModel& cost);

// simulate_step(...).step_s and .utilization, memoised (memo "step time"): what a run's batch
// ramp integrates.
struct StepSeconds {
  double step_s = 0;
  double utilization = 0;
};
StepSeconds step_seconds(const Scenario& sc, std::size_t phase, std::int64_t global_batch,
                         const calibration::CostModel& cost);

}  // namespace trainsim::step
