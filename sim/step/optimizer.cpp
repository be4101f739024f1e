#include "step/optimizer.hpp"

#include <algorithm>

#include "step/tail.hpp"

namespace trainsim::step {

std::array<double, 5> optimizer_pass_bytes(double shard, double fp8_weights, const TrainingConfig& tr) {
  const double g = dtype_bytes(tr.precision.gradients);
  const double mw = tr.precision.master_weights == "fp32" ? 4.0 : 0.0;
  const double mo = 2.0 * dtype_bytes(tr.precision.optimizer_moments);
  return {shard * g, shard * 2 * g, shard * (g + 2 * (mw + mo)), shard * ((mw > 0 ? mw : 2.0) + 2.0),
          tr.precision.gemm == "fp8" ? fp8_weights * (2.0 + 2.0 * (1.0 + 4.0 / (128.0 * 128.0))) : 0.0};
}

Op optimizer_pass_op(const char* name, double bytes) {
  Op o;
  o.name = name;
  o.cls = OpClass::Elementwise;
  o.pass = Pass::Forward;
  o.dtype = "fp32";
  o.bytes = bytes;
  return o;
}

namespace {
Time pass(PhaseBuilder& costs, std::size_t which, const std::array<double, 5>& bytes, int sms) {
  if (bytes[which] <= 0) return Time::zero();
  return costs.op_time(optimizer_pass_op(kOptimizerPasses[which], bytes[which]), sms);
}
}  // namespace

OptimizerParts optimizer_step(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                              const CommPlan& comm, const StepView& R, PhaseBuilder& costs) {
  const auto& topo = *R.topo;
  const int P = topo.ranks();
  const double dense_dp = plan.zero >= 1 ? comm.dense_dp_group().ranks() : 1;
  const double expert_dp = plan.zero >= 1 ? comm.expert_dp_group().ranks() : 1;
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
    const std::array<double, 5> bytes = optimizer_pass_bytes(shard, fp8, tr);
    o.grad_norm_s = pass(costs, 0, bytes, sms).seconds() + comm.small_all_reduce(static_cast<int>(sc.cluster.gpus));
    o.clip_s = pass(costs, 1, bytes, sms).seconds();
    o.adamw_s = pass(costs, 2, bytes, sms).seconds();
    o.param_copy_s = pass(costs, 3, bytes, sms).seconds();
    o.requant_s = pass(costs, 4, bytes, sms).seconds();
    o.total_s = o.grad_norm_s + o.clip_s + o.adamw_s + o.param_copy_s + o.requant_s;
    if (r == 0 || o.total_s > best.total_s) best = o;
  }
  return best;
}

}  // namespace trainsim::step
