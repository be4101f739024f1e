#pragma once
// A synthetic RunReport for the HTML report tests: two phases, a small replayed 1F1B pipeline,
// two hardware rows, two published comparisons, memory for four pipeline ranks. Everything is
// filled by hand (no scenario, no simulation beyond the schedule replay), so these tests do not
// depend on the step simulator or the cost model.

#include <algorithm>
#include <string>

#include "report/run_report.hpp"
#include "schedule/schedule.hpp"

namespace ts_test {

inline trainsim::step::StepResult synthetic_step(double scale) {
  trainsim::step::StepResult s;
  s.breakdown.compute_s = 8.2 * scale;
  s.breakdown.exposed_ep_s = 1.1 * scale;
  s.breakdown.schedule_bubble_s = 2.4 * scale;
  s.breakdown.exposed_dp_s = 0.9 * scale;
  s.breakdown.optimizer_s = 0.35 * scale;
  s.breakdown.p2p_s = 0.05 * scale;
  s.step_s = 12.95 * scale;
  s.pipeline_s = 11.7 * scale;
  s.global_batch = 1024;
  s.microbatches = 8;
  s.mfu_causal = 0.412;
  s.mfu_full = 0.468;
  s.tokens_per_s_per_gpu = 3120;
  s.costs.measured = 41;
  s.costs.fitted = 12;
  s.costs.transferred = 3;
  s.costs.bases = {"h800/deepgemm", "h800/flashmla"};
  s.notes = {"DP collectives are not overlapped with the pipeline."};
  return s;
}

// `pipeline_kind`/`pp`/`microbatches`: the schedule replayed for phase 0's timeline.
inline trainsim::RunReport synthetic_report(const std::string& scenario = "Synthetic MoE run",
                                            const std::string& pipeline_kind = "1f1b", int pp = 4,
                                            int microbatches = 8) {
  using namespace trainsim;
  RunReport r;
  r.scenario_file = "scenarios/synthetic.toml";
  r.scenario = scenario;
  r.description = "A hand-made report for the HTML tests.";
  r.model = "toy-moe-16b";
  r.gpu = "H800";
  r.gpus = 256;
  r.price_per_gpu_hour = 2.0;
  r.cost_model = "H800: 41 measured, 12 fitted, 3 transferred op costs";

  graph::OpTimes times;
  times.f = Time::ms(300);
  times.b = Time::ms(600);
  times.w = Time::ms(250);
  times.fb = Time::ms(800);

  const char* names[] = {"pre-training", "long context"};
  const char* kinds[] = {"pretraining", "context_extension"};
  const double tokens[] = {1.0e12, 0.1e12};
  const std::int64_t steps[] = {60000, 3000};
  const double scales[] = {1.0, 1.6};
  for (int i = 0; i < 2; ++i) {
    PhaseReport p;
    p.name = names[i];
    p.kind = kinds[i];
    p.seq_len = i == 0 ? 4096 : 32768;
    p.global_batch = i == 0 ? 1024 : 128;
    p.plan = "dp16 tp1 pp4 ep16 cp1 1f1b";
    p.step = synthetic_step(scales[i]);
    p.result.name = p.name;
    p.result.tokens = tokens[i];
    p.result.steps = steps[i];
    p.result.step_time_s = p.step.step_s;
    p.result.compute_s = p.step.step_s * static_cast<double>(steps[i]);
    p.result.wall_s = p.result.compute_s;
    p.result.gpu_hours = p.result.wall_s / 3600.0 * static_cast<double>(r.gpus);
    p.result.cost_usd = p.result.gpu_hours * r.price_per_gpu_hour;
    p.result.energy_mwh = p.result.gpu_hours * 0.7 / 1000.0;
    r.run.gpu_hours += p.result.gpu_hours;
    r.run.cost_usd += p.result.cost_usd;
    r.run.wall_clock_days += p.result.wall_s / 86400.0;
    r.phases.push_back(std::move(p));
  }
  r.phases[0].step.pipeline =
      schedule::run(pipeline_kind, schedule::ScheduleParams{pp, microbatches, 1}, times, Time::ms(5));
  r.run.phases = {r.phases[0].result, r.phases[1].result};
  r.run.pretraining_tokens = 1.0e12;
  r.run.pretraining_gpu_hours = r.phases[0].result.gpu_hours;
  r.run.gpu_hours_per_trillion_tokens = r.run.pretraining_gpu_hours;
  r.run.energy_mwh = r.run.gpu_hours * 0.7 / 1000.0;
  r.run.goodput = 0.96;

  constexpr double GiB = 1073741824.0;
  r.memory.capacity = 80 * GiB;
  for (int k = 0; k < 4; ++k) {
    StageMemory m;
    m.rank = k;
    m.stages = {k};
    m.layers = 4;
    m.weights = 14 * GiB;
    m.gradients = 7 * GiB;
    m.optimizer = 10 * GiB;
    m.activations = (30.0 - 6.0 * k) * GiB;
    m.buffers = 2 * GiB;
    r.memory.peak = std::max(r.memory.peak, m.total());
    r.memory.ranks.push_back(m);
  }
  r.memory.fits = r.memory.peak <= r.memory.capacity;
  for (auto& p : r.phases) p.memory = r.memory;

  r.assumptions = {{"batch ramp", "linear in tokens"}, {"routing", "balanced (symmetric mode)"}};
  r.notes = {"Attention cost is fitted from FlashMLA measurements.", "Energy assumes PUE 1.2."};
  r.reference_source = "Synthetic paper, Table 1";
  r.comparisons = {{"GPU-hours, pre-training", 58000, r.phases[0].result.gpu_hours},
                   {"Step time (s)", 11.0, r.phases[0].step.step_s}};

  HardwareRow a;
  a.gpu = "H800";
  a.plan = "dp16 tp1 pp4 ep16";
  a.step_s = 12.95;
  a.gpu_hours = r.run.gpu_hours;
  a.days = r.run.wall_clock_days;
  a.cost_usd = r.run.cost_usd;
  a.mfu = 0.412;
  a.bottleneck = "pipeline bubble";
  HardwareRow b = a;
  b.gpu = "A100-80GB";
  b.plan = "dp8 tp2 pp8 ep8";
  b.replanned = true;
  b.replan_note = "the original plan needs 91 GiB per GPU";
  b.step_s = 31.2;
  b.gpu_hours = a.gpu_hours * 2.4;
  b.days = a.days * 2.4;
  b.cost_usd = b.gpu_hours * 1.3;
  b.mfu = 0.35;
  b.bottleneck = "all-to-all";
  r.hardware = {a, b};
  return r;
}

}  // namespace ts_test
