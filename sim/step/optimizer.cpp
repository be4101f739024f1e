#include "step/optimizer.hpp"

#include <algorithm>

#include "step/tail.hpp"

namespace trainsim::step {

namespace {
Time pass(PhaseBuilder& costs, const char* name, double bytes, int sms) {
  if (bytes <= 0) return Time::zero();
  Op o;
  o.name = name;
  o.cls = OpClass::Elementwise;
  o.pass = Pass::Forward;
  o.dtype = "fp32";
  o.bytes = bytes;
  return costs.op_time(o, sms);
}
}  // namespace

OptimizerParts optimizer_step(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                              const CommPlan& comm, const StepView& R, PhaseBuilder& costs) {
  const auto& topo = *R.topo;
  const int P = topo.ranks();
  const double dense_dp = plan.zero >= 1 ? comm.dense_dp_group().ranks() : 1;
  const double expert_dp = plan.zero >= 1 ? comm.expert_dp_group().ranks() : 1;
  const double g = dtype_bytes(tr.precision.gradients);
  const double mw = tr.precision.master_weights == "fp32" ? 4.0 : 0.0;
  const double mo = 2.0 * dtype_bytes(tr.precision.optimizer_moments);
  const int sms = static_cast<int>(sc.hardware.sms);
  OptimizerParts best;
  for (int r = 0; r < P; ++r) {
    double shard = 0, local = 0, fp8 = 0;
    for (int s : stages_of_rank(topo, r)) {
      for (const auto& lp : (*R.stages)[static_cast<std::size_t>(s)].phases.params) {
        shard += lp.dense / dense_dp + lp.expert / expert_dp;
        local += lp.dense + lp.expert;
        fp8 += lp.fp8;
      }
    }
    OptimizerParts o;
    o.rank = r;
    o.shard_params = shard;
    o.local_params = local;
    o.grad_norm_s = (pass(costs, "optimizer.grad_norm", shard * g, sms)).seconds() +
                    comm.small_all_reduce(static_cast<int>(sc.cluster.gpus));
    o.clip_s = pass(costs, "optimizer.clip", shard * 2 * g, sms).seconds();
    o.adamw_s = pass(costs, "optimizer.adamw", shard * (g + 2 * (mw + mo)), sms).seconds();
    o.param_copy_s = pass(costs, "optimizer.param_copy", shard * ((mw > 0 ? mw : 2.0) + 2.0), sms).seconds();
    if (tr.precision.gemm == "fp8")
      o.requant_s = pass(costs, "optimizer.fp8_requant", fp8 * (2.0 + 2.0 * (1.0 + 4.0 / (128.0 * 128.0))), sms).seconds();
    o.total_s = o.grad_norm_s + o.clip_s + o.adamw_s + o.param_copy_s + o.requant_s;
    if (r == 0 || o.total_s > best.total_s) best = o;
  }
  return best;
}

}  // namespace trainsim::step
