#include "cost/training_run.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.hpp"

namespace trainsim {

double Goodput::fraction(std::int64_t gpus) const {
  if (!enabled()) return 1.0;
  const double lambda = failures_per_gpu_day * static_cast<double>(gpus) / 86400.0;
  double lost = 0;
  if (checkpoint_interval_s > 0) lost += checkpoint_cost_s / checkpoint_interval_s;
  lost += lambda * (restart_s + checkpoint_interval_s / 2);
  return std::max(0.0, 1.0 - lost);
}

RunResult simulate_run(const std::vector<PhaseSpec>& phases, const RunCostInputs& in, const StepTimer& step) {
  TS_ASSERT(in.gpus > 0, "gpus must be positive");
  RunResult r;
  r.goodput = in.goodput.fraction(in.gpus);
  TS_ASSERT(r.goodput > 0, "goodput fraction must be positive");
  const double gpus = static_cast<double>(in.gpus);
  double energy_j = 0;
  const bool energy = in.idle_power_w.has_value() && in.pue.has_value();

  for (std::size_t pi = 0; pi < phases.size(); ++pi) {
    const PhaseSpec& ph = phases[pi];
    TS_ASSERT(ph.global_batch > 0 && ph.seq_len > 0, "phase needs batch and sequence length");
    std::map<std::int64_t, StepTime> cache;  // step time per batch size
    auto timed = [&](std::int64_t batch) -> const StepTime& {
      auto it = cache.find(batch);
      if (it == cache.end()) it = cache.emplace(batch, step(pi, batch)).first;
      return it->second;
    };
    PhaseResult pr;
    pr.name = ph.name;
    const double tokens_per_seq = static_cast<double>(ph.seq_len);
    double busy_s = 0, energy_phase_j = 0;
    auto account = [&](std::int64_t batch, double steps) {
      const StepTime& st = timed(batch);
      busy_s += steps * st.seconds;
      if (energy) {
        const double p = *in.idle_power_w + (in.tdp_w - *in.idle_power_w) * st.utilization;
        energy_phase_j += steps * st.seconds * p * gpus * *in.pue;
      }
    };
    double total_steps = 0;
    if (ph.steps > 0) {
      total_steps = static_cast<double>(ph.steps);
      pr.tokens = total_steps * static_cast<double>(ph.global_batch) * tokens_per_seq;
      account(ph.global_batch, total_steps);
    } else {
      pr.tokens = ph.tokens;
      double remaining = ph.tokens;
      if (ph.ramp_start > 0 && ph.ramp_tokens > 0) {
        const double ramp = std::min(ph.ramp_tokens, ph.tokens);
        const int n = std::max(1, in.ramp_segments);
        for (int i = 0; i < n; ++i) {
          const double seg = ramp / n;
          const double mid = (i + 0.5) / n;  // fraction of the ramp at the segment's midpoint
          const double b = static_cast<double>(ph.ramp_start) +
                           static_cast<double>(ph.global_batch - ph.ramp_start) * mid * ramp / ph.ramp_tokens;
          std::int64_t batch = static_cast<std::int64_t>(std::floor(b / static_cast<double>(ph.batch_multiple))) *
                               ph.batch_multiple;
          batch = std::clamp(batch, ph.ramp_start, ph.global_batch);
          const double steps = seg / (static_cast<double>(batch) * tokens_per_seq);
          total_steps += steps;
          account(batch, steps);
        }
        remaining -= ramp;
      }
      if (remaining > 0) {
        const double steps = remaining / (static_cast<double>(ph.global_batch) * tokens_per_seq);
        total_steps += steps;
        account(ph.global_batch, steps);
      }
    }
    pr.steps = static_cast<std::int64_t>(std::ceil(total_steps - 1e-9));
    pr.step_time_s = timed(ph.global_batch).seconds;
    pr.compute_s = busy_s;
    pr.wall_s = busy_s / r.goodput;
    pr.gpu_hours = pr.wall_s * gpus / 3600.0;
    pr.cost_usd = pr.gpu_hours * in.price_per_gpu_hour;
    if (energy) {
      // Goodput losses keep the GPUs powered; count them at idle power.
      const double idle_j = (pr.wall_s - busy_s) * *in.idle_power_w * gpus * *in.pue;
      pr.energy_mwh = (energy_phase_j + idle_j) / 3.6e9;
      energy_j += energy_phase_j + idle_j;
    }
    r.gpu_hours += pr.gpu_hours;
    r.cost_usd += pr.cost_usd;
    r.wall_clock_days += pr.wall_s / 86400.0;
    if (ph.pretraining) {
      r.pretraining_tokens += pr.tokens;
      r.pretraining_gpu_hours += pr.gpu_hours;
    }
    r.phases.push_back(std::move(pr));
  }
  if (r.pretraining_tokens > 0) r.gpu_hours_per_trillion_tokens = r.pretraining_gpu_hours / (r.pretraining_tokens / 1e12);
  if (energy) r.energy_mwh = energy_j / 3.6e9;
  return r;
}

}  // namespace trainsim
