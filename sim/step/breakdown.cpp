#include "step/breakdown.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace trainsim::step {

std::vector<Breakdown::Line> Breakdown::lines() const {
  return {{"compute", "compute", compute_s},
          {"recompute", "recompute", recompute_s},
          {"exposed_tp", "exposed TP", exposed_tp_s},
          {"exposed_ep", "exposed EP all-to-all", exposed_ep_s},
          {"exposed_cp", "exposed CP", exposed_cp_s},
          {"exposed_pp", "exposed PP", exposed_pp_s},
          {"exposed_dp", "exposed DP", exposed_dp_s},
          {"optimizer", "optimizer", optimizer_s},
          {"schedule_bubble", "schedule bubble", schedule_bubble_s},
          {"imbalance", "imbalance", imbalance_s}};
}

double Breakdown::total() const {
  double t = 0;
  for (const auto& l : lines()) t += l.seconds;
  return t;
}

IdleSplit split_idle(double idle, double no_sends, double equal) {
  IdleSplit s;
  s.exposed_pp = std::max(0.0, idle - no_sends);
  const double rest = idle - s.exposed_pp;
  s.imbalance = std::clamp(rest - equal, 0.0, std::max(0.0, rest));
  s.bubble = rest - s.imbalance;
  return s;
}

void add_op_parts(const StepView& R, const graph::Replay& rep, Breakdown& b) {
  const double n = static_cast<double>(rep.ops.size());
  Time compute, recompute, tp, ep, cp, dp;
  for (std::size_t r = 0; r < rep.ops.size(); ++r)
    for (std::size_t i = 0; i < rep.ops[r].size(); ++i) {
      const OpRun* run = R.per_op ? (*R.per_op)[r][i] : R.op_run(static_cast<int>(r), rep.ops[r][i].op);
      TS_ASSERT(run != nullptr, "op run missing");
      compute += run->compute;
      recompute += run->recompute;
      tp += run->exposed_tp;
      ep += run->exposed_ep;
      cp += run->exposed_cp;
      dp += run->exposed_dp;
    }
  b.compute_s = compute.seconds() / n;
  b.recompute_s = recompute.seconds() / n;
  b.exposed_tp_s = tp.seconds() / n;
  b.exposed_ep_s = ep.seconds() / n;
  b.exposed_cp_s = cp.seconds() / n;
  b.exposed_dp_s = dp.seconds() / n;
}

}  // namespace trainsim::step
