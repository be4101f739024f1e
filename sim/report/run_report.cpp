#include "report/run_report.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "calibration/cost_model.hpp"
#include "core/error.hpp"
#include "core/format.hpp"
#include "core/output.hpp"
#include "core/table.hpp"
#include "graph/op.hpp"
#include "step/caches.hpp"

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
    // The ramp needs only each step's time and utilisation (memoised: step::step_seconds).
    const auto timed = [&](i64 b) { return step::step_seconds(sc, phase, b, cost); };
    if (lo == M) {
      const auto r = timed(batch);
      return {r.step_s, r.utilization};
    }
    const i64 step_mb = fewest(lo + 1) - lo;
    const auto a = timed(lo * per_mb);
    const auto b = timed((lo + step_mb) * per_mb);
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

std::string fmt_hours(double h) { return format_count(h); }
std::string fmt_usd(double v) { return format_usd(v); }
std::string fmt_tokens(double t) { return format_tokens(t); }
std::string gib(double bytes) { return fmt::format("{:.1f} GiB", bytes / kGiB); }

// "context-128k needs 164.0 GiB on pipeline rank 0 of 74.5 GiB (short by 89.5 GiB)"
std::string shortfall_line(const PhaseReport& p) {
  const auto sf = shortfalls(p.memory);
  if (sf.empty()) return fmt::format("{} fits: peak {} of {}", p.name, gib(p.memory.peak), gib(p.memory.capacity));
  const auto worst = *std::max_element(sf.begin(), sf.end(), [](const auto& a, const auto& b) { return a.shortfall < b.shortfall; });
  return fmt::format("{} needs {} on pipeline rank {} of {} (short by {}){}", p.name, gib(worst.need), worst.rank,
                     gib(p.memory.capacity), gib(worst.shortfall),
                     sf.size() > 1 ? fmt::format("; {} of {} ranks do not fit", sf.size(), p.memory.ranks.size()) : "");
}

std::string provenance_text(const RunReport& r, const std::string& indent) {
  const auto& p = r.provenance;
  std::string out;
  out += fmt::format("{}command: {}\n", indent, p.command.empty() ? "(not recorded)" : p.command);
  if (p.overrides.empty()) {
    out += fmt::format("{}overrides: none (the scenario as written)\n", indent);
  } else {
    out += fmt::format("{}overrides:", indent);
    for (const auto& o : p.overrides) out += " --set " + o;
    out += "\n";
  }
  out += fmt::format("{}trainsim {}, commit {}; {}\n", indent, p.version.empty() ? TRAINSIM_VERSION : p.version,
                     p.commit.empty() ? "(not recorded)" : p.commit, p.date.empty() ? "date not recorded" : p.date);
  return out;
}

}  // namespace

std::string delta_value_text(const DeltaRow& d, const std::optional<double>& v) {
  if (!v) return "n/a";
  const double x = *v;
  if (d.unit == "s") return fmt::format("{:.2f} s", x);
  if (d.unit == "usd") return format_usd(x);
  if (d.unit == "hours") return format_count(x);
  if (d.unit == "days") return fmt::format("{:.1f}", x);
  if (d.unit == "pct") return fmt::format("{:.1f}%", 100 * x);
  if (d.unit == "gib") return fmt::format("{:.1f} GiB", x / kGiB);
  if (d.unit == "tokens_s") return fmt::format("{:.0f}", x);
  if (d.unit == "mwh") return fmt::format("{:.0f} MWh", x);
  if (d.unit == "bool") return x != 0 ? "yes" : "no";
  return fmt::format("{}", x);
}

std::string delta_change_text(const DeltaRow& d) {
  if (!d.baseline || !d.what_if) return "";
  const double a = *d.baseline, b = *d.what_if, x = b - a;
  if (d.unit == "bool") return a == b ? "" : "changed";
  std::string abs;
  if (d.unit == "s") abs = fmt::format("{:+.2f} s", x);
  else if (d.unit == "usd") abs = format_usd_delta(x);
  else if (d.unit == "hours") abs = format_count_delta(x);
  else if (d.unit == "days") abs = fmt::format("{:+.1f}", x);
  else if (d.unit == "pct") abs = fmt::format("{:+.1f} pt", 100 * x);
  else if (d.unit == "gib") abs = fmt::format("{:+.1f} GiB", x / kGiB);
  else if (d.unit == "mwh") abs = fmt::format("{:+.0f} MWh", x);
  else abs = fmt::format("{:+.0f}", x);
  if (abs == "+0.00 s" || abs == "-0.00 s") abs = "0.00 s";
  return d.unit == "pct" ? abs : abs + " (" + format_pct_change(a, b) + ")";
}


namespace {
RunReport build(const Scenario& sc, const calibration::CostModel& cost_model, bool even_if_unfit);
}

RunReport build_run_report(const Scenario& sc) {
  const auto cost = calibration::load_cost_model(sc.hardware, data_dir());
  return build(sc, *cost, false);
}

RunReport build_run_report(const Scenario& sc, const calibration::CostModel& cost) { return build(sc, cost, false); }

RunReport build_run_report_even_if_unfit(const Scenario& sc) {
  const auto cost = calibration::load_cost_model(sc.hardware, data_dir());
  return build(sc, *cost, true);
}

std::vector<RankShortfall> shortfalls(const MemoryReport& m) {
  std::vector<RankShortfall> out;
  for (const auto& s : m.ranks)
    if (s.total() > m.capacity) out.push_back({s.rank, s.total(), s.total() - m.capacity});
  return out;
}

MemoryReport memory_as_run(const Scenario& sc, const calibration::CostModel& cost) {
  return memory_per_gpu(sc, step::step_setup(sc, sc.plan, sc.training, cost)->layer_split);
}

std::vector<MemoryReport> memory_per_phase(const Scenario& sc, const calibration::CostModel& cost) {
  std::vector<MemoryReport> out;
  for (const auto& ph : sc.phases) {
    Scenario one = sc;  // memory_per_gpu reads the scenario's plan and training
    one.plan = ph.plan;
    one.training = ph.training;
    out.push_back(memory_as_run(one, cost));
  }
  return out;
}

std::vector<MemoryReport> memory_per_phase(const Scenario& sc) {
  return memory_per_phase(sc, *calibration::load_cost_model(sc.hardware, data_dir()));
}

bool RunReport::fits() const {
  // A phase without a memory report (a report assembled by hand) is not held against the run.
  for (const auto& p : phases)
    if (!p.memory.ranks.empty() && !p.memory.fits) return false;
  return memory.fits || memory.ranks.empty();
}

std::string RunReport::title() const {
  if (!what_if()) return scenario;
  std::string changes;
  for (const auto& o : provenance.overrides) changes += (changes.empty() ? "" : ", ") + o;
  return fmt::format("{} (what-if: {})", scenario, changes);
}

namespace {
RunReport build(const Scenario& sc, const calibration::CostModel& cost_model, bool even_if_unfit) {
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

  // Feasibility first: a plan that does not fit memory in some phase is not simulated or priced.
  const std::vector<MemoryReport> mem = memory_per_phase(sc, *cost);
  for (std::size_t i = 0; i < sc.phases.size() && !even_if_unfit; ++i) {
    if (mem[i].fits) continue;
    r.priced = false;
    for (std::size_t k = 0; k < sc.phases.size(); ++k) {
      const auto& ph = sc.phases[k];
      PhaseReport pr;
      pr.name = ph.training.name;
      pr.kind = phase_kind_name(ph.training.kind);
      pr.seq_len = ph.training.seq_len;
      pr.global_batch = ph.training.global_batch;
      pr.plan = plan_string(ph.plan);
      pr.memory = mem[k];
      r.phases.push_back(std::move(pr));
    }
    r.memory = mem[i];
    if (sc.reference) r.reference_source = sc.reference->source;
    return r;
  }

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
    pr.memory = mem[i];
    for (const auto& n : pr.step.notes)
      if (std::find(r.notes.begin(), r.notes.end(), n) == r.notes.end()) r.notes.push_back(n);
    r.phases.push_back(std::move(pr));
  }
  r.memory = mem.front();

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
}  // namespace

std::vector<DeltaRow> baseline_rows(const RunReport& w) {
  std::vector<DeltaRow> rows;
  if (!w.baseline) return rows;
  const RunReport& b = *w.baseline;
  using O = std::optional<double>;
  auto priced = [](const RunReport& r, double v) { return r.priced ? O(v) : O(); };
  rows.push_back({"fits memory", "bool", O(b.fits() ? 1 : 0), O(w.fits() ? 1 : 0)});
  const std::size_t n = std::max(b.phases.size(), w.phases.size());
  for (std::size_t i = 0; i < n; ++i) {
    const PhaseReport* pb = i < b.phases.size() ? &b.phases[i] : nullptr;
    const PhaseReport* pw = i < w.phases.size() ? &w.phases[i] : nullptr;
    const std::string name = pw ? pw->name : pb->name;
    auto get = [&](const RunReport& r, const PhaseReport* p, auto f) { return p && r.priced ? O(f(*p)) : O(); };
    auto add = [&](const std::string& what, const char* unit, auto f) {
      rows.push_back({name + ": " + what, unit, get(b, pb, f), get(w, pw, f)});
    };
    add("step time", "s", [](const PhaseReport& p) { return p.step.step_s; });
    const auto proto = step::Breakdown{}.lines();
    for (std::size_t k = 0; k < proto.size(); ++k) {
      const auto line = [k](const PhaseReport& p) { return p.step.breakdown.lines()[k].seconds; };
      const O vb = get(b, pb, line), vw = get(w, pw, line);
      if (vb.value_or(0) == 0 && vw.value_or(0) == 0) continue;  // a part neither run has
      rows.push_back({name + ": " + proto[k].label, "s", vb, vw});
    }
    add("MFU", "pct", [](const PhaseReport& p) { return p.step.mfu_causal; });
    add("tokens/s/GPU", "tokens_s", [](const PhaseReport& p) { return p.step.tokens_per_s_per_gpu; });
    add("peak memory", "gib", [](const PhaseReport& p) { return p.memory.peak; });
    add("GPU-hours", "hours", [](const PhaseReport& p) { return p.result.gpu_hours; });
    add("cost", "usd", [](const PhaseReport& p) { return p.result.cost_usd; });
  }
  rows.push_back({"total: GPU-hours", "hours", priced(b, b.run.gpu_hours), priced(w, w.run.gpu_hours)});
  rows.push_back({"total: days", "days", priced(b, b.run.wall_clock_days), priced(w, w.run.wall_clock_days)});
  rows.push_back({"total: cost", "usd", priced(b, b.run.cost_usd), priced(w, w.run.cost_usd)});
  if (b.run.energy_mwh || w.run.energy_mwh)
    rows.push_back({"total: energy", "mwh", b.priced ? b.run.energy_mwh : O(), w.priced ? w.run.energy_mwh : O()});
  return rows;
}

namespace {

json opt_json(bool have, double v) { return have ? json(v) : json(nullptr); }

json provenance_json(const RunReport& r) {
  const auto& p = r.provenance;
  return {{"command", p.command},
          {"overrides", p.overrides},
          {"version", p.version.empty() ? std::string(TRAINSIM_VERSION) : p.version},
          {"commit", p.commit},
          {"date", p.date}};
}

json memory_json(const RunReport& r) {
  json phases = json::array();
  for (const auto& p : r.phases) {
    json ranks = json::array();
    for (const auto& s : p.memory.ranks)
      ranks.push_back({{"rank", s.rank},
                       {"need_gib", s.total() / kGiB},
                       {"shortfall_gib", std::max(0.0, s.total() - p.memory.capacity) / kGiB}});
    phases.push_back({{"name", p.name}, {"peak_gib", p.memory.peak / kGiB}, {"fits", p.memory.fits}, {"ranks", ranks}});
  }
  return {{"capacity_gib", r.memory.capacity / kGiB}, {"phases", phases}};
}

}  // namespace

json run_json(const RunReport& r) {
  json j;
  const bool pr = r.priced && !r.phases.empty();
  static const step::StepResult none;
  const step::StepResult& s = pr ? r.phases.front().step : none;
  j["scenario"] = r.scenario;
  j["title"] = r.title();
  j["what_if"] = r.what_if();
  j["provenance"] = provenance_json(r);
  j["model"] = r.model;
  j["gpu"] = r.gpu;
  j["gpus"] = r.gpus;
  j["priced"] = pr;
  j["step_time_s"] = opt_json(pr, s.step_s);
  j["tokens_per_step"] = opt_json(pr, s.tokens);
  j["tokens_per_s_per_gpu"] = opt_json(pr, s.tokens_per_s_per_gpu);
  j["tokens_per_s"] = opt_json(pr, s.tokens_per_s_per_gpu * static_cast<double>(r.gpus));
  j["mfu"] = opt_json(pr, s.mfu_causal);
  j["mfu_full_attention"] = opt_json(pr, s.mfu_full);
  j["mfu_peak_tflops"] = opt_json(pr, s.mfu_peak_flops / 1e12);
  j["bubble_fraction"] = opt_json(pr, s.bubble_fraction);
  j["exposed_comm_fraction"] = opt_json(pr, s.exposed_comm_fraction);
  // Memory: the peak over every phase, whether every phase fits, and each rank's shortfall
  // (the most over any phase; 0 where it fits).
  double peak = r.memory.peak;
  std::vector<double> short_by;
  for (const auto& p : r.phases) {
    peak = std::max(peak, p.memory.peak);
    for (const auto& rank : p.memory.ranks) {
      const auto k = static_cast<std::size_t>(rank.rank);
      if (short_by.size() <= k) short_by.resize(k + 1, 0.0);
      short_by[k] = std::max(short_by[k], std::max(0.0, rank.total() - p.memory.capacity) / kGiB);
    }
  }
  j["peak_memory_gib"] = peak / kGiB;
  j["fits_memory"] = r.fits();
  j["shortfall_gib_per_rank"] = short_by;
  j["memory"] = memory_json(r);
  j["gpu_hours"] = opt_json(pr, r.run.gpu_hours);
  j["gpu_hours_per_trillion_tokens"] = opt_json(pr, r.run.gpu_hours_per_trillion_tokens);
  j["wall_clock_days"] = opt_json(pr, r.run.wall_clock_days);
  j["cost_usd"] = opt_json(pr, r.run.cost_usd);
  j["energy_mwh"] = pr && r.run.energy_mwh ? json(*r.run.energy_mwh) : json(nullptr);
  j["goodput"] = opt_json(pr, r.run.goodput);
  json phases = json::array();
  for (const auto& p : r.phases) {
    json ph = {{"name", p.name},
               {"kind", p.kind},
               {"seq_len", p.seq_len},
               {"global_batch", p.global_batch},
               {"plan", p.plan},
               {"fits_memory", p.memory.fits},
               {"peak_memory_gib", p.memory.peak / kGiB}};
    if (pr) {
      const auto& b = p.step.breakdown;
      ph["tokens"] = p.result.tokens;
      ph["steps"] = p.result.steps;
      ph["step_time_s"] = p.step.step_s;
      ph["gpu_hours"] = p.result.gpu_hours;
      ph["cost_usd"] = p.result.cost_usd;
      ph["wall_clock_days"] = p.result.wall_s / 86400.0;
      ph["energy_mwh"] = p.result.energy_mwh ? json(*p.result.energy_mwh) : json(nullptr);
      ph["mfu"] = p.step.mfu_causal;
      ph["tokens_per_s_per_gpu"] = p.step.tokens_per_s_per_gpu;
      ph["breakdown_s"] = breakdown_json(b);
      ph["cost_sources"] = {{"measured", p.step.costs.measured},
                            {"fitted", p.step.costs.fitted},
                            {"transferred", p.step.costs.transferred}};
    }
    phases.push_back(std::move(ph));
  }
  j["phases"] = phases;
  if (!r.comparisons.empty() && pr) {
    json c = json::array();
    for (const auto& x : r.comparisons)
      c.push_back({{"what", x.what}, {"published", x.published}, {"predicted", x.predicted}, {"gap_pct", x.gap_pct()}});
    j["comparison"] = {{"source", r.reference_source},
                       {"applies_to", r.what_if() ? "the unmodified scenario (baseline published): this run is a what-if"
                                                  : "this scenario"},
                       {"rows", c}};
  }
  if (r.baseline) {
    json rows = json::array();
    for (const auto& d : baseline_rows(r)) {
      json row = {{"what", d.what}, {"unit", d.unit}, {"baseline", d.baseline ? json(*d.baseline) : json(nullptr)},
                  {"what_if", d.what_if ? json(*d.what_if) : json(nullptr)}};
      row["delta"] = d.baseline && d.what_if ? json(*d.what_if - *d.baseline) : json(nullptr);
      rows.push_back(std::move(row));
    }
    j["baseline_comparison"] = {{"baseline", r.baseline->title()}, {"rows", rows}};
  }
  if (!r.hardware.empty()) {
    json h = json::array();
    for (const auto& x : r.hardware)
      h.push_back({{"gpu", x.gpu},
                   {"plan", x.plan},
                   {"replanned", x.replanned},
                   {"replan_note", x.replan_note},
                   {"fits_memory", x.fits},
                   {"fit_note", x.fit_note},
                   {"memory_peak_gib", x.memory_gib},
                   {"step_time_s", opt_json(x.fits, x.step_s)},
                   {"gpu_hours", opt_json(x.fits, x.gpu_hours)},
                   {"wall_clock_days", opt_json(x.fits, x.days)},
                   {"cost_usd", opt_json(x.fits, x.cost_usd)},
                   {"mfu", opt_json(x.fits, x.mfu)},
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

namespace {

// The feasibility verdict, first thing after the header of every output.
std::string feasibility_text(const RunReport& r) {
  std::string out;
  if (r.fits()) {
    double peak = 0;
    std::string where;
    for (const auto& p : r.phases)
      if (p.memory.peak > peak) {
        peak = p.memory.peak;
        where = p.name;
      }
    out += fmt::format("\nFeasibility: fits GPU memory in every phase (peak {} of {} per GPU{})\n", gib(peak),
                       gib(r.memory.capacity), r.phases.size() > 1 ? ", in " + where : "");
    return out;
  }
  out += "\nDOES NOT FIT GPU MEMORY: the plan cannot run as given, so nothing is priced (exit status 3)\n";
  for (const auto& p : r.phases) {
    if (p.memory.fits) continue;
    out += fmt::format("  {}\n", shortfall_line(p));
    TextTable t({"pipeline rank", "needs", "HBM", "short by"}, {true, true, true, true});
    for (const auto& sf : shortfalls(p.memory))
      t.add_row({std::to_string(sf.rank), gib(sf.need), gib(p.memory.capacity), gib(sf.shortfall)});
    out += t.str("    ");
  }
  out += "  (memory per rank by kind: trainsim describe with the same scenario and --set options)\n";
  return out;
}

std::string comparison_heading(const RunReport& r) {
  return r.what_if() ? fmt::format("Baseline published figures ({}): published for the unmodified scenario, this run is a what-if",
                                   r.reference_source)
                     : fmt::format("Prediction vs published ({})", r.reference_source);
}

std::string memory_table_text(const RunReport& r) {
  std::string out;
  if (r.phases.size() <= 1) {
    out += fmt::format("\nMemory per GPU: peak {:.1f} GiB of {:.1f} GiB: {}\n", r.memory.peak / kGiB,
                       r.memory.capacity / kGiB, r.memory.fits ? "fits" : "DOES NOT FIT");
    return out;
  }
  out += "\nMemory per GPU, per phase\n";
  TextTable t({"phase", "plan", "peak", "HBM", ""}, {false, false, true, true, false});
  for (const auto& p : r.phases)
    t.add_row({p.name, p.plan, gib(p.memory.peak), gib(p.memory.capacity), p.memory.fits ? "fits" : "DOES NOT FIT"});
  out += t.str();
  return out;
}

}  // namespace

std::string run_text(const RunReport& r) {
  std::string out;
  out += fmt::format("trainsim run: {}  ({})\n", r.title(), r.scenario_file);
  if (!r.description.empty()) out += fmt::format("  {}\n", r.description);
  out += fmt::format("  model {} on {} x {} at ${:.2f} per GPU-hour\n", r.model, r.gpus, r.gpu, r.price_per_gpu_hour);
  out += fmt::format("  costs: {}\n", r.cost_model);
  out += provenance_text(r, "  ");
  out += feasibility_text(r);

  if (!r.comparisons.empty() && r.priced) {
    out += "\n" + comparison_heading(r) + "\n";
    TextTable t({"", r.what_if() ? "published (baseline)" : "published", r.what_if() ? "this what-if" : "trainsim",
                 r.what_if() ? "vs baseline published" : "gap"},
                {false, true, true, true});
    for (const auto& c : r.comparisons) {
      const bool usd = c.what.rfind("USD", 0) == 0;
      t.add_row({c.what, usd ? fmt_usd(c.published) : fmt_hours(c.published),
                 usd ? fmt_usd(c.predicted) : fmt_hours(c.predicted), fmt::format("{:+.1f}%", c.gap_pct())});
    }
    out += t.str();
  }

  if (r.baseline) {
    out += fmt::format("\nWhat-if against the baseline ({})\n", r.baseline->title());
    TextTable t({"", "baseline", "what-if", "change"}, {false, true, true, true});
    for (const auto& d : baseline_rows(r)) t.add_row({d.what, delta_value_text(d, d.baseline), delta_value_text(d, d.what_if), delta_change_text(d)});
    out += t.str();
  }

  if (!r.priced) {
    out += memory_table_text(r);
    if (!r.assumptions.empty()) {
      out += "\nAssumptions named in the scenario\n";
      for (const auto& [k, v] : r.assumptions) out += fmt::format("  {}: {}\n", k, v);
    }
    return out;
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

  out += memory_table_text(r);
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
  out += fmt::format("# trainsim report: {}\n\n", r.title());
  if (!r.description.empty()) out += r.description + "\n\n";
  out += fmt::format("Model **{}** on **{} x {}** at ${:.2f} per GPU-hour. Scenario file `{}`.\n\n", r.model, r.gpus,
                     r.gpu, r.price_per_gpu_hour, r.scenario_file);
  {
    const auto& p = r.provenance;
    out += fmt::format("- command: `{}`\n", p.command.empty() ? "(not recorded)" : p.command);
    if (p.overrides.empty()) {
      out += "- overrides: none (the scenario as written)\n";
    } else {
      out += "- overrides:";
      for (const auto& o : p.overrides) out += fmt::format(" `--set {}`", o);
      out += "\n";
    }
    out += fmt::format("- trainsim {}, commit {}; {}\n\n", p.version.empty() ? TRAINSIM_VERSION : p.version,
                       p.commit.empty() ? "(not recorded)" : p.commit, p.date.empty() ? "date not recorded" : p.date);
  }
  if (r.fits()) {
    out += fmt::format("**Feasibility:** fits GPU memory in every phase.\n\n");
  } else {
    out += "> **DOES NOT FIT GPU MEMORY.** The plan cannot run as given, so nothing is priced.\n";
    for (const auto& p : r.phases)
      if (!p.memory.fits) out += fmt::format(">\n> {}.\n", shortfall_line(p));
    out += "\n| phase | pipeline rank | needs | HBM | short by |\n|---|---:|---:|---:|---:|\n";
    for (const auto& p : r.phases)
      for (const auto& sf : shortfalls(p.memory))
        out += fmt::format("| {} | {} | {} | {} | {} |\n", p.name, sf.rank, gib(sf.need), gib(p.memory.capacity), gib(sf.shortfall));
    out += "\n";
  }
  out += fmt::format("Op costs: {}.\n\n", r.cost_model);
  if (!r.comparisons.empty() && r.priced) {
    if (r.what_if())
      out += fmt::format("## Baseline published figures\n\nSource: {}. Published for the unmodified scenario; this run is a "
                         "what-if, so the gaps are not errors of the model.\n\n| | published (baseline) | this what-if | "
                         "vs baseline published |\n|---|---:|---:|---:|\n",
                         r.reference_source);
    else
      out += fmt::format("## Prediction vs published\n\nSource: {}\n\n| | published | trainsim | gap |\n|---|---:|---:|---:|\n",
                         r.reference_source);
    for (const auto& c : r.comparisons) {
      const bool usd = c.what.rfind("USD", 0) == 0;
      out += fmt::format("| {} | {} | {} | {:+.1f}% |\n", c.what, usd ? fmt_usd(c.published) : fmt_hours(c.published),
                         usd ? fmt_usd(c.predicted) : fmt_hours(c.predicted), c.gap_pct());
    }
    out += "\n";
  }
  if (r.baseline) {
    out += fmt::format("## What-if against the baseline\n\nBaseline: {}\n\n| | baseline | what-if | change |\n|---|---:|---:|---:|\n",
                       r.baseline->title());
    for (const auto& d : baseline_rows(r))
      out += fmt::format("| {} | {} | {} | {} |\n", d.what, delta_value_text(d, d.baseline), delta_value_text(d, d.what_if), delta_change_text(d));
    out += "\n";
  }
  if (r.priced) {
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
    out += " MFU | tokens/s/GPU |\n|---|---:|";
    for (std::size_t k = 0; k < step::Breakdown{}.lines().size(); ++k) out += "---:|";
    out += "---:|---:|\n";
    for (const auto& p : r.phases) {
      out += fmt::format("| {} | {:.3f} s |", p.name, p.step.step_s);
      for (const auto& l : p.step.breakdown.lines()) out += fmt::format(" {:.3f} s |", l.seconds);
      out += fmt::format(" {:.1f}% | {:.0f} |\n", 100 * p.step.mfu_causal, p.step.tokens_per_s_per_gpu);
    }
    if (r.run.energy_mwh) out += fmt::format("\nEnergy: {:.0f} MWh.\n", *r.run.energy_mwh);
  }
  out += "\n## Memory per GPU\n\n| phase | plan | peak | HBM | |\n|---|---|---:|---:|---|\n";
  for (const auto& p : r.phases)
    out += fmt::format("| {} | {} | {} | {} | {} |\n", p.name, p.plan, gib(p.memory.peak), gib(p.memory.capacity),
                       p.memory.fits ? "fits" : "**does not fit**");
  if (!r.hardware.empty()) {
    out += "\n## Hardware comparison\n\n| GPU | plan | step | memory/GPU | GPU-hours | days | cost | MFU | bottleneck |\n"
           "|---|---|---:|---:|---:|---:|---:|---:|---|\n";
    for (const auto& h : r.hardware) {
      if (!h.fits) {
        out += fmt::format("| {} | {}{} | does not fit: {} | {:.1f} GiB | | | | | |\n", h.gpu, h.plan,
                           h.replanned ? " (re-planned)" : "", h.fit_note, h.memory_gib);
        continue;
      }
      out += fmt::format("| {} | {}{} | {:.2f} s | {:.1f} GiB | {} | {:.1f} | {} | {:.1f}% | {} |\n", h.gpu, h.plan,
                         h.replanned ? " (re-planned)" : "", h.step_s, h.memory_gib, fmt_hours(h.gpu_hours), h.days,
                         fmt_usd(h.cost_usd), 100 * h.mfu, h.bottleneck);
    }
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

namespace {
// The timeline of a run that was not simulated: an empty trace that says why.
json unpriced_timeline(const RunReport& r) {
  return {{"traceEvents", json::array()},
          {"metadata", {{"generator", std::string("trainsim ") + TRAINSIM_VERSION},
                        {"scenario", r.title()},
                        {"note", "the plan does not fit GPU memory: no step was simulated"}}}};
}
}  // namespace

void write_run_outputs(const RunReport& r, const std::string& dir) {
  // Render everything first, then write all four files or none (core/output.hpp).
  check_output_dir("--out", dir);
  write_files_atomic(dir,
                     {{"report.md", run_markdown(r)},
                      {"report.html", run_html(r)},
                      {"metrics.json", run_json(r).dump(2) + "\n"},
                      {"timeline.json", (r.priced ? run_timeline(r) : unpriced_timeline(r)).dump() + "\n"}},
                     "--out");
}

}  // namespace trainsim

