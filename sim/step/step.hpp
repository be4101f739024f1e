#pragma once
// One training step, simulated: the per-chunk op graph from the model math, each op costed by
// the GPU's calibrated cost model, the MoE all-to-all from the network model, replayed under
// the plan's pipeline schedule on the event engine, then the data-parallel gradient
// reduce-scatter and parameter all-gather (ZeRO) and the optimizer step.
//
// What a pipeline op costs (one micro-batch on one stage = model chunk):
//   * Each layer is a list of phases on two streams (DeepSeek-V3 §3.2.1, Figure 4):
//       forward   compute[attention, router]  comm[dispatch]  compute[experts]  comm[combine]  compute[rest]
//       backward  comm[combine]  compute[experts]  comm[dispatch]  compute[attention, router]
//     Dense layers are one compute phase. Compute phase time = the sum of its ops' calibrated
//     costs (cost model op_time with the SMs available), plus the fitted inter-kernel gap.
//   * An op run alone (F, B, I, W) runs its phases one after another: its all-to-all is exposed.
//   * An F&B pair (DualPipe) list-schedules the forward's and the backward's phases on a compute
//     and a communication stream, so each chunk's communication hides behind the other's
//     compute; while the pair runs the communication kernels hold plan.comm_sms SMs, and every
//     compute phase is costed on the SMs left.
//   * Embedding ops join the first stage's forward/backward, the output head (and MTP modules)
//     the last stage's.
//   * Pipeline point-to-point: one activation (tokens x hidden, BF16) over the sending GPU's NIC
//     (pipeline neighbours sit on different nodes).
// After the pipeline: ZeRO-1/2 reduce-scatter of gradients and all-gather of the updated
// parameters over each stage's data-parallel group (non-expert parameters over dp*cp ranks,
// expert parameters over the expert-data-parallel ranks), not overlapped with the pipeline (an
// assumption the report names), and the optimizer step as a memory-bound pass over the rank's
// shard of master weights, moments and gradients.
//
// Symmetric mode: one representative pipeline stands for all (balanced routing: every EP group
// sees the same traffic).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "schedule/schedule.hpp"

namespace trainsim::step {

struct Phase {
  int stream = 0;      // 0 compute, 1 communication
  std::string name;    // "L12.attn", "L12.dispatch", ...
  Time duration;       // on the SMs this phase gets (compute: all N, or N-K inside an F&B pair)
  Time duration_shared;  // compute phases: on N-K SMs (comm kernels resident); comm: same
};

// One stage's phases for one micro-batch.
struct StageCost {
  int stage = 0;
  std::vector<Phase> forward;
  std::vector<Phase> backward_input;   // I (incl. its all-to-all)
  std::vector<Phase> backward_weight;  // W (compute only)
  std::vector<Phase> backward;         // B = I and W phases merged per layer
  Time f, b, i, w;                     // alone: sums of the phases
  Time f_comm, b_comm;                 // all-to-all inside F and B
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

struct CostCounts {
  int measured = 0, fitted = 0, transferred = 0;
  std::vector<std::string> bases;  // distinct cost bases used, sorted
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
  std::vector<StageCost> stages;
  std::optional<schedule::Result> pipeline;  // the replayed schedule (timeline)
  CostCounts costs;
  double a2a_dispatch_s = 0, a2a_combine_s = 0;  // one layer, forward
  std::string a2a_bottleneck;
  double dp_reduce_scatter_s = 0, dp_all_gather_s = 0;
  std::vector<std::string> notes;  // assumptions and approximations used in this step
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

// Simulates one step of phase `phase` of the scenario at `global_batch` sequences.
StepResult simulate_step(const Scenario& sc, std::size_t phase, std::int64_t global_batch,
                         const calibration::CostModel& cost);

}  // namespace trainsim::step
