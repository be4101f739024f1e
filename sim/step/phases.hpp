#pragma once
// Phases: a pipeline op (F, B, I, W of one stage and micro-batch) as a small task graph of compute
// and communication phases on a GPU's streams, built from the stage's op lists (op_lists.hpp),
// the calibrated op costs and the communication plan (comm_plan.hpp). How the phases of one op,
// or of two ops run together, are scheduled is overlap_policy.hpp.
//
// One transformer layer, forward (square brackets: only when the plan has it):
//   [ZeRO-3 param all-gather, prefetched one layer ahead on the DP stream]
//   [SP all-gather] attention [CP K/V exchange] [TP reduce-scatter (SP) or all-reduce]
//   [SP all-gather] [dispatch] experts or MLP [combine] [TP reduce-scatter / all-reduce] residual
//   with shared_expert_overlap the shared experts run beside the dispatch instead of after it.
// Backward, layers in reverse:
//   [full recompute: the layer's forward again, its communication included]
//   residual; [SP all-gather of the gradient] [combine's gradient] [recomputed MLP-side ops]
//   MLP/experts input-gradient, then its weight-gradient beside the dispatch's gradient and the
//   TP collective of the input gradient (Megatron overlaps that collective with the weight-gradient
//   GEMM; with SP the all-gather of the saved input runs beside the input-gradient GEMM);
//   the same for the attention side, with the CP exchange of K/V and their gradients;
//   [ZeRO-2/3 gradient reduce-scatter of the layer on the DP stream].
// tp_comm_overlap (TransformerEngine userbuffers) pipelines the forward all-gather with the
// column-parallel GEMMs (ring exchange in tp chunks), the reduce-scatter with the row-parallel
// GEMM (4 chunks) and the backward gradient all-gather with the row-parallel input-gradient GEMM
// (ring exchange): what is left exposed of a collective C beside a GEMM G split in n chunks is
// max(G, C) + min(G, C)/n - G (two-stage pipeline), not zero.
// Context parallelism, ring (Megatron/TransformerEngine p2p): cp-1 steps each sending one K/V
// block while the attention of the previous block runs; exposed (cp-1)·max(0, t_kv - t_attn/cp)
// forward and (cp-1)·max(0, 2·t_kv - t_attn_bwd/cp) backward (K/V and their gradients travel).
// all_gather: the K/V all-gather before the attention (and again in the backward, plus the
// reduce-scatter of their gradients) is exposed.

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "core/time.hpp"
#include "step/comm_plan.hpp"
#include "step/op_lists.hpp"

namespace trainsim::step {

enum class PhaseKind : std::uint8_t { Compute, Tp, Ep, Cp, Dp };
const char* phase_kind_name(PhaseKind k);  // "compute", "TP", "EP", "CP", "DP"
int stream_of(PhaseKind k);                 // 0 compute, 1 EP, 2 TP, 3 CP, 4 DP

struct Phase {
  std::string name;           // "L12.attn", "L12.dispatch", ...
  PhaseKind kind = PhaseKind::Compute;
  bool recompute = false;     // part of a forward re-run in the backward
  bool beside_comm = false;   // compute that runs beside communication even in an op run alone
  Time alone;                 // compute: on all SMs (N-K when beside_comm); comm: its time
  Time paired;                // inside an F&B pair: compute on the N-K SMs the comm kernels leave
  std::vector<int> after;     // phases of the same list to wait for
  std::int64_t layer = -1;    // model layer, -1 for embedding and head
  double dense_grads = 0, expert_grads = 0;  // parameters whose gradients are complete at its end
};

// Per-layer parameters of a stage (this GPU), in forward order, for the DP buckets.
struct LayerParamsHeld {
  std::string label;
  double dense = 0, expert = 0;
  double fp8 = 0;                // of which GEMM weights used in FP8 (re-quantised every step)
  int first_forward_phase = -1;  // index in the stage's forward list
};

struct StagePhases {
  std::vector<Phase> forward, backward, backward_input, backward_weight;  // F, B (= I + W), I, W
  std::vector<LayerParamsHeld> params;
  double flops_fwd = 0, flops_bwd = 0;  // model FLOPs (causal), recomputation excluded
  int moe_layers = 0;
};

struct CostCounts {
  int measured = 0, fitted = 0, transferred = 0;
  std::vector<std::string> bases;  // distinct cost bases used, sorted
  // Op costs by (op class, source, basis), e.g. ("gemm", "fitted", "h800 fp8 GEMM fit ..."): the
  // reports' provenance table, one row per op class and basis.
  std::map<std::tuple<std::string, std::string, std::string>, int> by_class;
};

class PhaseBuilder {
 public:
  PhaseBuilder(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr, const calibration::CostModel& cost,
               const CommPlan& comm);

  // `background_pp_bytes` < 0: the pipeline sends' share of the NIC from the stage's MoE layers.
  StagePhases stage(const std::vector<LayerOps>& layers, double background_pp_bytes = -1);

  // Time of one op on `sms` SMs (plus the fitted inter-kernel gap), counted by source.
  Time op_time(const Op& o, int sms);
  CostCounts counts() const;

 private:
  struct Chain;
  void layer_forward(const LayerOps& L, bool recompute, Chain& c, std::vector<Phase>& out);
  void layer_backward(const LayerOps& L, bool input, bool weight, Chain& c, std::vector<Phase>& out);
  int add(std::vector<Phase>& out, Phase ph, std::vector<int> after);
  Phase compute(const std::string& name, const std::vector<const Op*>& ops, bool beside_comm, bool recompute);
  Phase comm(const std::string& name, PhaseKind kind, Time t);
  Time gemm_time(const std::vector<const Op*>& ops);

  [[maybe_unused]] const Scenario& sc_;  // kept with the other inputs; no phase reads it yet
  const PlanConfig& plan_;
  const TrainingConfig& tr_;
  const calibration::CostModel& cost_;
  const CommPlan& comm_;
  int sms_ = 0, shared_sms_ = 0;
  Time gap_;
  AllToAllTimes a2a_;
  // Op costs asked for, counted per distinct answer (the cost model's memo shares one answer
  // per op shape); counts() sums them by source, basis and op class.
  struct Tally {
    std::shared_ptr<const calibration::OpCost> cost;
    OpClass cls;
    int n = 0;
  };
  std::unordered_map<const calibration::OpCost*, std::size_t> tally_of_;
  std::vector<Tally> tallies_;
  // While stage() runs, every op asked about is an element of its `layers` (alive and unchanged
  // for the call): each op's tally on all SMs and on the SMs communication leaves is kept by the
  // op's position, so repeated questions skip any lookup by content. Emptied when stage() returns.
  struct OpRange {
    const Op* begin;
    const Op* end;
    std::size_t base;
  };
  bool in_stage_ = false;
  std::vector<OpRange> stage_ranges_;
  std::vector<std::int32_t> stage_slots_;  // [2 * position + (0: all SMs, 1: shared SMs)], -1 unknown
  std::int32_t* stage_slot(const Op& o, int sms);  // null when the op or SM count has no slot
  // Every question asked of this builder, by the op's content (every field the cost model's memo
  // keys on, doubles by their bits) and SMs: the stages of a step repeat the same op shapes, and
  // this lookup needs no key string and no lock.
  struct OpShape {
    Op op;
    int sms;
  };
  struct OpRef {
    const Op* op;
    int sms;
  };
  struct OpShapeHash {
    using is_transparent = void;
    std::size_t operator()(const OpShape& k) const { return hash(k.op, k.sms); }
    std::size_t operator()(const OpRef& k) const { return hash(*k.op, k.sms); }
    static std::size_t hash(const Op& o, int sms);
  };
  struct OpShapeEq {
    using is_transparent = void;
    static bool same(const Op& a, int sa, const Op& b, int sb);
    bool operator()(const OpShape& a, const OpShape& b) const { return same(a.op, a.sms, b.op, b.sms); }
    bool operator()(const OpShape& a, const OpRef& b) const { return same(a.op, a.sms, *b.op, b.sms); }
    bool operator()(const OpRef& a, const OpShape& b) const { return same(*a.op, a.sms, b.op, b.sms); }
  };
  std::unordered_map<OpShape, std::size_t, OpShapeHash, OpShapeEq> shape_tally_;
};

}  // namespace trainsim::step
