#include "report/run_report.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "calibration/cost_model.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "core/table.hpp"
#include "graph/op.hpp"

namespace trainsim {

namespace {

using i64 = std::int64_t;
using json = nlohmann::json;

// The step's breakdown under its stable names, in seconds.
json breakdown_json(const step::Breakdown& b) {
  json j = json::object();
  for (const auto& l : b.lines()) j[l.name] = l.seconds;
  return j;
}
constexpr double kGiB = 1073741824.0;

std::string plan_string(const PlanConfig& p) {
  std::string s = fmt::format("dp{} tp{} pp{} ep{} cp{}", p.dp, p.tp, p.pp, p.ep, p.cp);
  if (p.vpp > 1) s += fmt::format(" vpp{}", p.vpp);
  return s + " " + p.schedule + fmt::format(" zero{} mb{}", p.zero, p.micro_batch);
}

// DualPipe runs an even number of at least 2*pp micro-batches, DualPipeV at least 2*pp,
// interleaved a multiple of pp (schedule_rules.hpp). A batch with a count the schedule does not
// run (early in a batch ramp) is simulated at the next two counts it runs and extrapolated
// linearly in the micro-batch count: the bubble is fixed and each further micro-batch adds the
// same work.
struct StepFn {
  const Scenario& sc;
  const calibration::CostModel& cost;
  std::map<std::pair<std::size_t, i64>, step::StepResult>* cache;
  std::vector<std::string>* notes;

  const step::StepResult& sim(std::size_t phase, i64 batch) {
    auto key = std::make_pair(phase, batch);
    auto it = cache->find(key);
    if (it == cache->end()) it = cache->emplace(key, step::simulate_step(sc, phase, batch, cost)).first;
    return it->second;
  }

  StepTime operator()(std::size_t phase, i64 batch) {
    const PlanConfig& p = sc.phases[phase].plan;
    const i64 per_mb = p.dp * p.micro_batch;
    const i64 M = batch / per_mb;
    // The fewest micro-batches the schedule runs from M up, and the next count it runs.
    const auto fewest = [&](i64 at_least) -> i64 {
      const int n = schedule::fewest_microbatches(p.schedule, static_cast<int>(p.pp), static_cast<int>(p.vpp),
                                                  static_cast<int>(at_least));
      TS_ASSERT(n > 0, "no micro-batch count the schedule runs");
      return n;
    };
    const i64 lo = fewest(M);
    if (lo == M) {
      const auto& r = sim(phase, batch);
      return {r.step_s, r.utilization};
    }
    const i64 step_mb = fewest(lo + 1) - lo;
    const auto& a = sim(phase, lo * per_mb);
    const auto& b = sim(phase, (lo + step_mb) * per_mb);
    const double slope = (b.step_s - a.step_s) / static_cast<double>(step_mb);
    const double t = a.step_s + slope * static_cast<double>(M - lo);
    const std::string note = fmt::format(
        "{}: batches with fewer micro-batches than {} can run (e.g. {} at batch {}) are extrapolated "
        "linearly from {} and {} micro-batches",
        sc.phases[phase].training.name, p.schedule, M, batch, lo, lo + step_mb);
    if (std::none_of(notes->begin(), notes->end(), [&](const std::string& n) {
          return n.rfind(sc.phases[phase].training.name + ": batches with fewer", 0) == 0;
        }))
      notes->push_back(note);
    return {t, a.utilization};
  }
};

std::string fmt_hours(double h) {
  if (h >= 1e6) return fmt::format("{:.3f}M", h / 1e6);
  if (h >= 1e3) return fmt::format("{:.1f}K", h / 1e3);
  return fmt::format("{:.0f}", h);
}
std::string fmt_usd(double v) {
  if (v >= 1e6) return fmt::format("${:.3f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("${:.1f}K", v / 1e3);
  return fmt::format("${:.0f}", v);
}
std::string fmt_tokens(double t) {
  if (t >= 1e12) return fmt::format("{:.2f}T", t / 1e12);
  if (t >= 1e9) return fmt::format("{:.1f}B", t / 1e9);
  return fmt::format("{:.3g}", t);
}

}  // namespace

RunReport build_run_report(const Scenario& sc) {
  const auto cost = calibration::load_cost_model(sc.hardware, data_dir());
  return build_run_report(sc, *cost);
}

RunReport build_run_report(const Scenario& sc, const calibration::CostModel& cost_model) {
  const calibration::CostModel* cost = &cost_model;
  RunReport r;
  r.scenario_file = sc.file;
  r.scenario = sc.name;
  r.description = sc.description;
  r.model = sc.model.name;
  r.gpu = sc.hardware.name;
  r.gpus = sc.cluster.gpus;
  r.price_per_gpu_hour = sc.hardware.price.value;
  r.assumptions = sc.assumptions;
  r.cost_model = cost->describe();

  std::vector<PhaseSpec> specs;
  for (const auto& ph : sc.phases) {
    PhaseSpec s;
    s.name = ph.training.name;
    s.seq_len = ph.training.seq_len;
    s.global_batch = ph.training.global_batch;
    s.tokens = ph.training.tokens;
    s.steps = ph.training.steps;
    if (ph.training.ramp) {
      s.ramp_start = ph.training.ramp->start;
      s.ramp_tokens = ph.training.ramp->tokens;
    }
    s.batch_multiple = ph.plan.dp * ph.plan.micro_batch;
    s.pretraining = ph.training.kind == PhaseKind::Pretraining;
    specs.push_back(std::move(s));
  }
  RunCostInputs in;
  in.gpus = sc.cluster.gpus;
  in.price_per_gpu_hour = sc.hardware.price.value;
  in.tdp_w = sc.hardware.tdp.value;
  in.idle_power_w = sc.energy.idle_power;
  in.pue = sc.energy.pue;
  if (sc.goodput) {
    in.goodput.failures_per_gpu_day = sc.goodput->failures_per_gpu_day;
    in.goodput.checkpoint_interval_s = sc.goodput->checkpoint_interval;
    in.goodput.checkpoint_cost_s = sc.goodput->checkpoint_cost;
    in.goodput.restart_s = sc.goodput->restart;
  }
  std::map<std::pair<std::size_t, i64>, step::StepResult> cache;
  StepFn fn{sc, *cost, &cache, &r.notes};
  r.run = simulate_run(specs, in, [&](std::size_t p, i64 b) { return fn(p, b); });

  for (std::size_t i = 0; i < sc.phases.size(); ++i) {
    const auto& ph = sc.phases[i];
    PhaseReport pr;
    pr.name = ph.training.name;
    pr.kind = phase_kind_name(ph.training.kind);
    pr.seq_len = ph.training.seq_len;
    pr.global_batch = ph.training.global_batch;
    pr.plan = plan_string(ph.plan);
    pr.result = r.run.phases[i];
    pr.step = fn.sim(i, ph.training.global_batch);
    for (const auto& n : pr.step.notes)
      if (std::find(r.notes.begin(), r.notes.end(), n) == r.notes.end()) r.notes.push_back(n);
    r.phases.push_back(std::move(pr));
  }
  r.memory = memory_per_gpu(sc);

  if (sc.reference) {
    const auto& ref = *sc.reference;
    r.reference_source = ref.source;
    std::map<std::string, double> hours, usd;
    for (const auto& p : r.phases) {
      hours[p.kind] += p.result.gpu_hours;
      usd[p.kind] += p.result.cost_usd;
    }
    hours["total"] = r.run.gpu_hours;
    usd["total"] = r.run.cost_usd;
    const std::map<std::string, std::string> label = {{"pretraining", "pre-training"},
                                                      {"context_extension", "context extension"},
                                                      {"post_training", "post-training"},
                                                      {"total", "total"}};
    for (const char* k : {"pretraining", "context_extension", "post_training", "total"}) {
      if (auto it = ref.gpu_hours.find(k); it != ref.gpu_hours.end())
        r.comparisons.push_back({"GPU-hours, " + label.at(k), it->second, hours[k]});
    }
    if (ref.gpu_hours_per_trillion_tokens)
      r.comparisons.push_back({"GPU-hours per trillion tokens (pre-training)", *ref.gpu_hours_per_trillion_tokens,
                               r.run.gpu_hours_per_trillion_tokens});
    for (const char* k : {"pretraining", "context_extension", "post_training", "total"}) {
      if (auto it = ref.cost_usd.find(k); it != ref.cost_usd.end())
        r.comparisons.push_back({"USD, " + label.at(k), it->second, usd[k]});
    }
  }
  return r;
}

json run_json(const RunReport& r) {
  json j;
  const step::StepResult& s = r.phases.front().step;
  j["scenario"] = r.scenario;
  j["model"] = r.model;
  j["gpu"] = r.gpu;
  j["gpus"] = r.gpus;
  j["step_time_s"] = s.step_s;
  j["tokens_per_step"] = s.tokens;
  j["tokens_per_s_per_gpu"] = s.tokens_per_s_per_gpu;
  j["mfu"] = s.mfu_causal;
  j["mfu_full_attention"] = s.mfu_full;
  j["mfu_peak_tflops"] = s.mfu_peak_flops / 1e12;
  j["bubble_fraction"] = s.bubble_fraction;
  j["exposed_comm_fraction"] = s.exposed_comm_fraction;
  j["peak_memory_gib"] = r.memory.peak / kGiB;
  j["fits_memory"] = r.memory.fits;
  j["gpu_hours"] = r.run.gpu_hours;
  j["gpu_hours_per_trillion_tokens"] = r.run.gpu_hours_per_trillion_tokens;
  j["wall_clock_days"] = r.run.wall_clock_days;
  j["cost_usd"] = r.run.cost_usd;
  j["energy_mwh"] = r.run.energy_mwh ? json(*r.run.energy_mwh) : json(nullptr);
  j["goodput"] = r.run.goodput;
  json phases = json::array();
  for (const auto& p : r.phases) {
    const auto& b = p.step.breakdown;
    phases.push_back({{"name", p.name},
                      {"kind", p.kind},
                      {"seq_len", p.seq_len},
                      {"global_batch", p.global_batch},
                      {"plan", p.plan},
                      {"tokens", p.result.tokens},
                      {"steps", p.result.steps},
                      {"step_time_s", p.step.step_s},
                      {"gpu_hours", p.result.gpu_hours},
                      {"cost_usd", p.result.cost_usd},
                      {"wall_clock_days", p.result.wall_s / 86400.0},
                      {"energy_mwh", p.result.energy_mwh ? json(*p.result.energy_mwh) : json(nullptr)},
                      {"mfu", p.step.mfu_causal},
                      {"breakdown_s", breakdown_json(b)},
                      {"cost_sources",
                       {{"measured", p.step.costs.measured},
                        {"fitted", p.step.costs.fitted},
                        {"transferred", p.step.costs.transferred}}}});
  }
  j["phases"] = phases;
  if (!r.comparisons.empty()) {
    json c = json::array();
    for (const auto& x : r.comparisons)
      c.push_back({{"what", x.what}, {"published", x.published}, {"predicted", x.predicted}, {"gap_pct", x.gap_pct()}});
    j["comparison"] = {{"source", r.reference_source}, {"rows", c}};
  }
  if (!r.hardware.empty()) {
    json h = json::array();
    for (const auto& x : r.hardware)
      h.push_back({{"gpu", x.gpu},
                   {"plan", x.plan},
                   {"replanned", x.replanned},
                   {"replan_note", x.replan_note},
                   {"step_time_s", x.step_s},
                   {"gpu_hours", x.gpu_hours},
                   {"wall_clock_days", x.days},
                   {"cost_usd", x.cost_usd},
                   {"mfu", x.mfu},
                   {"memory_peak_gib", x.memory_gib},
                   {"fits", x.fits},
                   {"bottleneck", x.bottleneck},
                   {"provenance", [&] {
                      json p = json::array();
                      for (const auto& c : x.provenance)
                        p.push_back({{"class", c.cls},
                                     {"source", calibration::cost_source_name(c.source)},
                                     {"basis", c.basis},
                                     {"data", c.data},
                                     {"heldout_rms", c.heldout_rms >= 0 ? json(c.heldout_rms) : json(nullptr)}});
                      return p;
                    }()},
                   {"setup", x.setup}});
    j["hardware"] = h;
  }
  j["cost_model"] = r.cost_model;
  j["assumptions"] = r.assumptions;
  j["notes"] = r.notes;
  return j;
}

std::string run_text(const RunReport& r) {
  std::string out;
  out += fmt::format("trainsim run: {}  ({})\n", r.scenario, r.scenario_file);
  if (!r.description.empty()) out += fmt::format("  {}\n", r.description);
  out += fmt::format("  model {} on {} x {} at ${:.2f} per GPU-hour\n", r.model, r.gpus, r.gpu, r.price_per_gpu_hour);
  out += fmt::format("  costs: {}\n", r.cost_model);

  if (!r.comparisons.empty()) {
    out += fmt::format("\nPrediction vs published ({})\n", r.reference_source);
    TextTable t({"", "published", "trainsim", "gap"}, {false, true, true, true});
    for (const auto& c : r.comparisons) {
      const bool usd = c.what.rfind("USD", 0) == 0;
      t.add_row({c.what, usd ? fmt_usd(c.published) : fmt_hours(c.published),
                 usd ? fmt_usd(c.predicted) : fmt_hours(c.predicted), fmt::format("{:+.1f}%", c.gap_pct())});
    }
    out += t.str();
  }

  out += "\nPhases\n";
  TextTable pt({"phase", "plan", "seq", "batch", "tokens", "steps", "step time", "GPU-hours", "days", "cost"},
               {false, false, true, true, true, true, true, true, true, true});
  for (const auto& p : r.phases)
    pt.add_row({p.name, p.plan, std::to_string(p.seq_len), std::to_string(p.global_batch), fmt_tokens(p.result.tokens),
                std::to_string(p.result.steps), fmt::format("{:.2f} s", p.step.step_s), fmt_hours(p.result.gpu_hours),
                fmt::format("{:.1f}", p.result.wall_s / 86400.0), fmt_usd(p.result.cost_usd)});
  pt.add_rule();
  pt.add_row({"total", "", "", "", "", "", "", fmt_hours(r.run.gpu_hours), fmt::format("{:.1f}", r.run.wall_clock_days),
              fmt_usd(r.run.cost_usd)});
  out += pt.str();
  if (r.run.gpu_hours_per_trillion_tokens > 0)
    out += fmt::format("  pre-training: {} GPU-hours per trillion tokens\n", fmt_hours(r.run.gpu_hours_per_trillion_tokens));
  if (r.run.energy_mwh) out += fmt::format("  energy: {:.0f} MWh\n", *r.run.energy_mwh);
  if (r.run.goodput < 1) out += fmt::format("  goodput: {:.1f}% of wall-clock time is useful work\n", r.run.goodput * 100);

  out += "\nOne step at the final batch, per phase (mean per GPU)\n";
  // One column per part of the breakdown that is non-zero in some phase (stable names in --json).
  const auto proto = step::Breakdown{}.lines();
  std::vector<std::size_t> cols;
  for (std::size_t k = 0; k < proto.size(); ++k)
    for (const auto& p : r.phases)
      if (p.step.breakdown.lines()[k].seconds > 0) {
        cols.push_back(k);
        break;
      }
  std::vector<std::string> head = {"phase", "step"};
  std::vector<bool> right = {false, true};
  for (std::size_t k : cols) {
    head.push_back(proto[k].label);
    right.push_back(true);
  }
  for (const char* h : {"MFU", "tokens/s/GPU"}) {
    head.push_back(h);
    right.push_back(true);
  }
  TextTable bt(head, right);
  for (const auto& p : r.phases) {
    const auto lines = p.step.breakdown.lines();
    const double st = p.step.step_s;
    auto pc = [&](double x) { return fmt::format("{:.2f}s {:>3.0f}%", x, 100 * x / st); };
    std::vector<std::string> row = {p.name, fmt::format("{:.2f}s", st)};
    for (std::size_t k : cols) row.push_back(pc(lines[k].seconds));
    row.push_back(fmt::format("{:.1f}%", 100 * p.step.mfu_causal));
    row.push_back(fmt::format("{:.0f}", p.step.tokens_per_s_per_gpu));
    bt.add_row(row);
  }
  out += bt.str();
  out += fmt::format("  MFU: model FLOPs (causal attention, MTP included) over the dense BF16 peak ({:.0f} TFLOPS)\n",
                     r.phases.front().step.mfu_peak_flops / 1e12);
  const auto& s0 = r.phases.front().step;
  if (s0.a2a_dispatch_s > 0)
    out += fmt::format("  all-to-all per layer and micro-batch: dispatch {:.0f} us, combine {:.0f} us (bottleneck: {})\n",
                       s0.a2a_dispatch_s * 1e6, s0.a2a_combine_s * 1e6, s0.a2a_bottleneck);
  out += fmt::format("  op costs: {} fitted, {} measured, {} transferred\n", s0.costs.fitted, s0.costs.measured,
                     s0.costs.transferred);

  out += fmt::format("\nMemory per GPU: peak {:.1f} GiB of {:.1f} GiB: {}\n", r.memory.peak / kGiB,
                     r.memory.capacity / kGiB, r.memory.fits ? "fits" : "DOES NOT FIT");
  if (!r.assumptions.empty()) {
    out += "\nAssumptions named in the scenario\n";
    for (const auto& [k, v] : r.assumptions) out += fmt::format("  {}: {}\n", k, v);
  }
  if (!r.notes.empty()) {
    out += "\nApproximations in this simulation\n";
    for (const auto& n : r.notes) out += fmt::format("  - {}\n", n);
  }
  return out;
}

std::string run_markdown(const RunReport& r) {
  std::string out;
  out += fmt::format("# trainsim report: {}\n\n", r.scenario);
  if (!r.description.empty()) out += r.description + "\n\n";
  out += fmt::format("Model **{}** on **{} x {}** at ${:.2f} per GPU-hour. Scenario file `{}`.\n\n", r.model, r.gpus,
                     r.gpu, r.price_per_gpu_hour, r.scenario_file);
  out += fmt::format("Op costs: {}.\n\n", r.cost_model);
  if (!r.comparisons.empty()) {
    out += fmt::format("## Prediction vs published\n\nSource: {}\n\n| | published | trainsim | gap |\n|---|---:|---:|---:|\n",
                       r.reference_source);
    for (const auto& c : r.comparisons) {
      const bool usd = c.what.rfind("USD", 0) == 0;
      out += fmt::format("| {} | {} | {} | {:+.1f}% |\n", c.what, usd ? fmt_usd(c.published) : fmt_hours(c.published),
                         usd ? fmt_usd(c.predicted) : fmt_hours(c.predicted), c.gap_pct());
    }
    out += "\n";
  }
  out += "## Phases\n\n| phase | plan | seq | batch | tokens | steps | step time | GPU-hours | days | cost |\n"
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& p : r.phases)
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {:.2f} s | {} | {:.1f} | {} |\n", p.name, p.plan, p.seq_len,
                       p.global_batch, fmt_tokens(p.result.tokens), p.result.steps, p.step.step_s,
                       fmt_hours(p.result.gpu_hours), p.result.wall_s / 86400.0, fmt_usd(p.result.cost_usd));
  out += fmt::format("| **total** | | | | | | | **{}** | **{:.1f}** | **{}** |\n\n", fmt_hours(r.run.gpu_hours),
                     r.run.wall_clock_days, fmt_usd(r.run.cost_usd));
  out += "## One step (final batch), mean per GPU\n\n| phase | step |";
  for (const auto& l : step::Breakdown{}.lines()) out += fmt::format(" {} |", l.label);
  out += " MFU |\n|---|---:|";
  for (std::size_t k = 0; k < step::Breakdown{}.lines().size(); ++k) out += "---:|";
  out += "---:|\n";
  for (const auto& p : r.phases) {
    out += fmt::format("| {} | {:.3f} s |", p.name, p.step.step_s);
    for (const auto& l : p.step.breakdown.lines()) out += fmt::format(" {:.3f} s |", l.seconds);
    out += fmt::format(" {:.1f}% |\n", 100 * p.step.mfu_causal);
  }
  out += fmt::format("\nMemory per GPU: peak {:.1f} GiB of {:.1f} GiB ({}).\n", r.memory.peak / kGiB,
                     r.memory.capacity / kGiB, r.memory.fits ? "fits" : "does not fit");
  if (!r.hardware.empty()) {
    out += "\n## Hardware comparison\n\n| GPU | plan | step | memory/GPU | GPU-hours | days | cost | MFU | bottleneck |\n"
           "|---|---|---:|---:|---:|---:|---:|---:|---|\n";
    for (const auto& h : r.hardware)
      out += fmt::format("| {} | {}{} | {:.2f} s | {:.1f} GiB | {} | {:.1f} | {} | {:.1f}% | {} |\n", h.gpu, h.plan,
                         h.replanned ? " (re-planned)" : "", h.step_s, h.memory_gib, fmt_hours(h.gpu_hours), h.days,
                         fmt_usd(h.cost_usd), 100 * h.mfu, h.bottleneck);
  }
  if (!r.assumptions.empty()) {
    out += "\n## Assumptions\n\n";
    for (const auto& [k, v] : r.assumptions) out += fmt::format("- **{}**: {}\n", k, v);
  }
  if (!r.notes.empty()) {
    out += "\n## Approximations\n\n";
    for (const auto& n : r.notes) out += fmt::format("- {}\n", n);
  }
  return out;
}

void write_run_outputs(const RunReport& r, const std::string& dir) {
  // Render everything first, then write all four files or none (core/output.hpp).
  check_output_dir("--out", dir);
  write_files_atomic(dir,
                     {{"report.md", run_markdown(r)},
                      {"report.html", run_html(r)},
                      {"metrics.json", run_json(r).dump(2) + "\n"},
                      {"timeline.json", run_timeline(r).dump() + "\n"}},
                     "--out");
}

}  // namespace trainsim

