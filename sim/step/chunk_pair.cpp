// simulate_chunk_pair: one DualPipe F&B pair of MoE layers, as in DeepSeek's profiled trace.
#include <fmt/format.h>

#include "core/error.hpp"
#include "model/model_math.hpp"
#include "model/recompute.hpp"
#include "step/comm_plan.hpp"
#include "step/op_lists.hpp"
#include "step/overlap_policy.hpp"
#include "step/phases.hpp"
#include "step/step.hpp"

namespace trainsim::step {

ChunkPairResult simulate_chunk_pair(const Scenario& sc, int moe_layers, const calibration::CostModel& cost) {
  const trainsim::Phase& sp = sc.phases.front();
  PlanConfig plan = sp.plan;
  plan.pp = 1;  // no pipeline communication: the pair alone
  const TrainingConfig& tr = sp.training;
  const ModelConfig& m = sc.model;
  TS_ASSERT(m.moe.enabled, "a chunk pair of MoE layers needs an MoE model");
  const CommPlan comm(sc, plan, tr);
  PhaseBuilder builder(sc, plan, tr, cost, comm);
  const OpContext oc = gpu_op_context(plan, tr);
  std::vector<LayerOps> layers;
  for (int i = 0; i < moe_layers; ++i) {
    const std::int64_t l = m.moe.first_dense_layers + i;
    layers.push_back(LayerOps{fmt::format("L{}", l), l, true, true, layer_recompute(plan, i),
                              for_gpu(m, plan, tr, layer_ops(m, l, oc)), 0});
  }
  const StagePhases S = builder.stage(layers);
  const OpRun pr = run_pair(S.forward, S.backward);
  ChunkPairResult r;
  const int sms = static_cast<int>(sc.hardware.sms);
  for (const auto& L : layers)
    for (const auto& o : L.ops) {
      const char* g = o.cls == OpClass::Gemm ? "dense GEMM"
                    : o.cls == OpClass::GroupedGemm ? "grouped GEMM"
                    : o.cls == OpClass::Attention ? "attention" : "memory-bound";
      r.compute_by_group_s[g] += cost.op_time(o, sms).time.seconds();
    }
  r.span_s = pr.duration.seconds();
  r.compute_busy_s = (pr.compute + pr.recompute).seconds();
  r.comm_busy_s = pr.comm_busy.seconds();
  r.exposed_comm_s = std::max(0.0, r.span_s - r.compute_busy_s);
  Time fc, bc;
  for (const auto& ph : S.forward)
    if (ph.kind == PhaseKind::Compute) fc += ph.alone;
  for (const auto& ph : S.backward)
    if (ph.kind == PhaseKind::Compute) bc += ph.alone;
  r.forward_compute_s = fc.seconds();
  r.backward_compute_s = bc.seconds();
  r.dispatch_s = comm.a2a_dispatch_s;
  r.combine_s = comm.a2a_combine_s;
  return r;
}

}  // namespace trainsim::step
