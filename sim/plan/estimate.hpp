#pragma once
// The screening estimate of a plan (docs/plan.md "The fast estimate"): a closed form over the
// same per-operation costs (calibration::CostModel) and the same network model (network/, via
// step::CommPlan) as the event-level simulation, with no event replay. Per-shape work is cached,
// so that the work per plan is arithmetic.
//
// One layer of each kind (dense, MoE, the embedding, the head, an MTP module) is built from the
// model's op lists as one GPU of the plan runs it (step::for_gpu); its ops are costed once per
// shape (tp, cp, micro-batch, ep, sequence parallelism). Its forward, backward, input-gradient
// and weight-gradient times alone are the list schedule (schedule::list_schedule) of the same
// phase graph step::PhaseBuilder builds for one layer, here over the cached sums, so a layer
// alone costs what the step simulator makes it cost (tests/test_plan.cpp checks this); its cost
// inside an F&B pair is the bound max(Fc + Bc, per communication stream Fs + Bs, Fc + Fa, Bc + Ba)
// over compute (on the SMs the communication kernels leave) and communication: each stream's load
// and each chunk's own chain (step/stage_split.cpp weighs layers by the same bound, one stream).
//
// A stage is the sum of its layers (the memory model's split, model/layer_split.hpp). ZeRO-2/3
// traffic inside the ops: a layer's forward takes max(F, gather), its backward
// max(B, gather) + reduce-scatter (max(B, gather + reduce-scatter) with overlap_grad_reduce).
// The pipeline: each rank's busy time is its op count times its op times (counts from the
// schedule's order for DualPipe and DualPipeV, closed form for combined 1F1B, M otherwise), plus the
// schedule's bubble at the mean op times of the other ranks — (P-1)(F+B) for GPipe and 1F1B,
// (P-1)(F+B-2W) ZB-H1, (P/2-1)(F&B+B-3W) DualPipe,
// (P-1)(F&B+B-3W) DualPipeV — plus 2(P-1) activation sends; the step is the busiest rank's.
// Interleaved instead replays the schedule's op order over the stage sums (the sends at their
// time; extrapolated beyond 3P micro-batches from the replays at 2P and 3P). The
// tail: the DP gradient reduction in buckets (exposed, or what the rank's last backward cannot
// hide), the parameter all-gather (exposed, or what its first forward cannot hide), the
// optimizer's five memory-bound passes on the rank with the largest shard. Collectives, sends
// and optimizer passes are affine fits (alpha + beta x bytes) of the network and cost models
// at two sizes per group. Memory is model/memory.cpp's, per rank (the same formula; tested
// equal to memory_per_gpu).
//
// A run: each phase's steps over its batch ramp (the segments of cost/training_run.hpp), step
// time affine in the micro-batch count, goodput as the run model applies it.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "calibration/cost_model.hpp"
#include "plan/space.hpp"

namespace trainsim::plan {

struct PhaseEstimate {
  bool fits = false;
  double peak_bytes = 0;  // the largest rank's memory
  int peak_rank = 0;
  double step_s = 0;      // at the phase's final batch
  double busy_s = 0;      // the phase's simulated time (sum of its steps), before goodput
  // step_s in parts (seconds): the busiest rank's work, its bubble, the sends, the tail.
  double work_s = 0, bubble_s = 0, p2p_s = 0, dp_s = 0, optimizer_s = 0;
};

struct PlanEstimate {
  bool fits = false;
  int unfit_phase = -1;   // the first phase that does not fit
  double peak_bytes = 0;  // over phases
  double capacity = 0;
  double step_s = 0;      // main phase, final batch
  double days = 0, gpu_hours = 0, cost_usd = 0;
  std::vector<PhaseEstimate> phases;
};

// Affine in bytes: alpha + beta x bytes (seconds).
struct Affine {
  double alpha = 0, beta = 0;
  double at(double bytes) const { return bytes > 0 ? alpha + beta * bytes : 0.0; }
};

class Estimator {
 public:
  // `space` and `cost` must outlive the estimator. Thread-safe after construction.
  Estimator(const Space& space, const calibration::CostModel& cost);
  ~Estimator();
  Estimator(const Estimator&) = delete;
  Estimator& operator=(const Estimator&) = delete;

  const Space& space() const { return space_; }

  // Every part of one candidate (any candidate, the published one too).
  PlanEstimate estimate(const Candidate& c) const;

  // Screening: the estimates of `codes` (valid knob codes of `layout`), each handed to `sink`
  // with phases left empty. One Worker per thread; it keeps the per-layout work of phases that
  // repeat across layouts (a phase with its own dp and cp) while consecutive layouts share it.
  class Worker {
   public:
    explicit Worker(const Estimator& e);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    void screen(const Layout& layout, const std::vector<int>& codes,
                const std::function<void(int code, const PlanEstimate&)>& sink);

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };

  // --- pieces, public for the tests -------------------------------------------------------------
  // One layer alone and in pairs, seconds.
  struct LayerTimes {
    double f = 0, b = 0, i = 0, w = 0;   // alone
    double fc = 0, fa = 0, bc = 0, ba = 0;  // F&B pair weights: compute (shared SMs), communication
    double fe = 0, be = 0, ft = 0, bt = 0, fcp = 0, bcp = 0;  // communication by stream: EP, TP, CP
  };
  // The layer of `kind` (0 dense, 1 MoE, 2 embedding, 3 head, 4 MTP) of phase `phase` under
  // `plan` (its tp, cp, micro_batch, ep, sequence_parallel, tp_comm_overlap,
  // shared_expert_overlap, cp_comm, comm_sms; ZeRO-2/3 traffic excluded), with recompute `rc`.
  LayerTimes layer_times(std::size_t phase, int kind, const PlanConfig& plan, Recompute rc) const;
  Affine collective_fit(int kind, int size, int stride, int copies, int copy_stride) const;

  struct Impl;

 private:
  const Space& space_;
  const calibration::CostModel& cost_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trainsim::plan
