#pragma once
// A whole training run from simulated steps: phases, batch-size ramp, goodput, GPU-hours, days,
// dollars and energy.
//
// The run model never invents a step time: it asks a StepTimer (the simulator) for the time of
// a step at a given global batch and sequence length, and integrates over the token budget.
//
// Batch ramp: the batch grows linearly in consumed tokens from `start` to the phase's global
// batch over `ramp.tokens` (DeepSeek-V3 §4.2 "gradually increased ... in the training of the
// first 469B tokens"; the shape of the increase is not published, linear is the assumption).
// The ramp is cut into `ramp_segments` equal token segments; each runs at the batch of its
// midpoint rounded down to a multiple of dp*micro_batch (never below `start`).
//
// Goodput (Young/Daly first-order model, off unless the scenario sets it): with a job failure
// rate λ = failures_per_gpu_day · gpus / 86400 s, checkpoint interval τ, checkpoint cost c and
// restart time R, the fraction of wall-clock time that is useful work is
//   g = 1 − c/τ − λ·(R + τ/2),
// and every phase's wall-clock time is its simulated time divided by g.
//
// Energy: GPU power P = P_idle + (TDP − P_idle)·u, with u the simulated compute utilisation
// of the step, times PUE; only when the scenario names both idle power and PUE.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace trainsim {

struct StepTime {
  double seconds = 0;
  double utilization = 0;  // fraction of GPU time the compute stream is busy (for energy)
};

// Simulated time of one step of `global_batch` sequences of `seq_len` tokens in phase `phase`.
using StepTimer = std::function<StepTime(std::size_t phase, std::int64_t global_batch)>;

struct PhaseSpec {
  std::string name;
  std::int64_t seq_len = 0;
  std::int64_t global_batch = 0;       // sequences per step (after any ramp)
  double tokens = 0;                   // tokens of the phase (0 if given as steps)
  std::int64_t steps = 0;              // steps of the phase (0 if given as tokens)
  std::int64_t ramp_start = 0;         // 0 = no ramp
  double ramp_tokens = 0;
  std::int64_t batch_multiple = 1;     // dp * micro_batch: every batch is a multiple of it
  bool pretraining = false;            // counts toward "GPU-hours per trillion tokens"
};

struct Goodput {
  double failures_per_gpu_day = 0;
  double checkpoint_interval_s = 0;
  double checkpoint_cost_s = 0;
  double restart_s = 0;
  bool enabled() const { return failures_per_gpu_day > 0 || checkpoint_cost_s > 0; }
  double fraction(std::int64_t gpus) const;  // g above; 1 when disabled
};

struct RunCostInputs {
  std::int64_t gpus = 0;
  double price_per_gpu_hour = 0;   // USD
  double tdp_w = 0;
  std::optional<double> idle_power_w;
  std::optional<double> pue;
  Goodput goodput;
  int ramp_segments = 16;
};

struct PhaseResult {
  std::string name;
  double tokens = 0;
  std::int64_t steps = 0;
  double step_time_s = 0;     // at the phase's final batch
  double compute_s = 0;       // simulated busy time (sum of step times)
  double wall_s = 0;          // with goodput losses
  double gpu_hours = 0;
  double cost_usd = 0;
  std::optional<double> energy_mwh;
};

struct RunResult {
  std::vector<PhaseResult> phases;
  double gpu_hours = 0;
  double cost_usd = 0;
  double wall_clock_days = 0;
  double pretraining_tokens = 0;
  double pretraining_gpu_hours = 0;
  double gpu_hours_per_trillion_tokens = 0;  // pre-training phases only
  double goodput = 1;
  std::optional<double> energy_mwh;
};

// Integrates the phases. Throws InternalError on inconsistent inputs (the config layer has
// validated user input already).
RunResult simulate_run(const std::vector<PhaseSpec>& phases, const RunCostInputs& in, const StepTimer& step);

}  // namespace trainsim
