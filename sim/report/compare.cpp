#include "report/compare.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "calibration/cost_model.hpp"
#include "config/reader.hpp"
#include "core/format.hpp"
#include "core/table.hpp"
#include "core/input.hpp"

namespace trainsim {

namespace {

constexpr double kGiB = 1073741824.0;

std::string bottleneck_of(const step::StepResult& s) {
  const auto& b = s.breakdown;
  // The largest part of the step that is not compute.
  const auto lines = b.lines();
  const auto* worst = &lines[1];
  for (const auto& l : lines)
    if (std::string_view(l.name) != "compute" && l.seconds > worst->seconds) worst = &l;
  // Compute-bound unless some overhead takes at least a tenth of the step.
  if (worst->seconds < 0.1 * s.step_s) return "compute";
  return fmt::format("{} ({:.0f}%)", worst->label, 100 * worst->seconds / s.step_s);
}

// The scenario under another pipeline schedule: plan.schedule switched in every phase. When a
// phase gives an explicit layer_split and the schedule holds a different number of stages per
// rank (dualpipev 2, the others 1), the phase keeps its stages and their split instead: S stages
// go on S/2 ranks for dualpipev (DualPipeV's "half the devices") or on S ranks back from it,
// with dp scaled so the GPU count stays. `note` says so; empty when nothing but the schedule
// changed. Throws ConfigError (validate_scenario) when the re-planned phase is invalid.
Scenario schedule_variant(const std::string& file, std::vector<std::string> sets, const std::string& sched,
                          std::string& note) {
  note.clear();
  Scenario sc = load_scenario(file, sets);
  const auto per_rank = [](const std::string& name) -> std::int64_t { return name == "dualpipev" ? 2 : 1; };
  // The ranks that hold a phase's explicit split under `sched`, when they differ from its pp.
  const auto kept_stages_pp = [&](const PlanConfig& p) -> std::int64_t {
    if (p.layer_split.empty() || p.vpp != 1 || sched == "interleaved" || per_rank(sched) == per_rank(p.schedule))
      return 0;
    const std::int64_t stages = pipeline_stage_count(p);
    if (stages % per_rank(sched) != 0 || (p.dp * p.pp) % (stages / per_rank(sched)) != 0) return 0;
    return stages / per_rank(sched);
  };
  if (std::none_of(sc.phases.begin(), sc.phases.end(), [&](const Phase& ph) { return kept_stages_pp(ph.plan) > 0; })) {
    sets.push_back("plan.schedule=" + sched);
    return load_scenario(file, sets);
  }
  for (auto& ph : sc.phases) {
    if (const std::int64_t pp = kept_stages_pp(ph.plan); pp > 0) {
      const std::int64_t dp = ph.plan.dp * ph.plan.pp / pp;
      if (note.empty())
        note = fmt::format("{} keeps the scenario's {} stages and layer split: pp {} -> {} ({} stages per rank), "
                           "dp {} -> {}", sched, pipeline_stage_count(ph.plan), ph.plan.pp, pp, per_rank(sched),
                           ph.plan.dp, dp);
      ph.plan.dp = dp;
      ph.plan.pp = pp;
    }
    ph.plan.schedule = sched;
  }
  sc.plan = sc.phases.front().plan;
  try {
    validate_scenario(sc);
  } catch (const ConfigError& e) {
    throw ConfigError(e.pos(), e.key(), fmt::format("{} (--schedules {}: {})", e.message(), sched, note));
  }
  return sc;
}

// profiles/systems.toml: the NVLink domain a GPU ships in (GB200: the NVL72 rack).
std::int64_t nvlink_domain_of(const std::string& gpu, std::string& source) {
  const auto path = data_dir() / "profiles" / "systems.toml";
  if (!path_exists(path)) return 0;
  const toml::table root = parse_toml_file(path.string());
  Section top(root, "", path.string());
  top.integer("version", 1, 1);
  std::int64_t domain = 0;
  for (const auto& [k, v] : root) {
    const std::string key(k.str());
    if (key == "version") continue;
    Section s = top.table(key);
    const std::int64_t d = s.integer("nvlink_domain", 1, 1'000'000);
    const std::string src = s.string("source");
    s.finish();
    if (key == gpu) {
      domain = d;
      source = src;
    }
  }
  top.finish();
  return domain;
}

// The phase of `mem` furthest over its capacity, or -1 when every phase fits.
int worst_phase(const std::vector<MemoryReport>& mem) {
  int w = -1;
  for (std::size_t i = 0; i < mem.size(); ++i)
    if (!mem[i].fits && (w < 0 || mem[i].peak > mem[static_cast<std::size_t>(w)].peak)) w = static_cast<int>(i);
  return w;
}

}  // namespace

RunReport compare_hardware(const CompareRequest& req) {
  const Scenario base = load_scenario(req.scenario_file, req.sets);
  RunReport out = build_run_report(base);
  std::vector<std::string> schedules = req.schedules;
  if (schedules.empty()) schedules.push_back(base.plan.schedule);
  std::vector<std::string> gpus = req.gpus;
  if (gpus.empty()) gpus.push_back(base.cluster.gpu);  // --schedules alone: the scenario's GPU
  for (const auto& gpu : gpus) {
    for (const auto& sched : schedules) {
      std::vector<std::string> sets = req.sets;
      sets.push_back("cluster.gpu=" + gpu);
      std::string plan_note;
      Scenario sc = schedule_variant(req.scenario_file, sets, sched, plan_note);
      HardwareRow row;
      // Like-for-like inputs: each GPU with its own recipe and system.
      if (sc.hardware.fp8.value <= 0 && sc.training.precision.gemm == "fp8") {
        sets.push_back("training.precision.gemm=bf16");
        row.setup.push_back(fmt::format("{} has no FP8 tensor cores: the BF16 recipe (training.precision.gemm = bf16), "
                                        "GEMMs on its BF16 fit",
                                        gpu));
      }
      std::string domain_src;
      const std::int64_t domain = nvlink_domain_of(sc.hardware.name, domain_src);
      if (domain > 0 && domain % sc.cluster.gpus_per_node == 0 && sc.cluster.gpus >= domain &&
          sc.cluster.nvlink_domain == 0) {
        sets.push_back("cluster.nvlink_domain=" + std::to_string(domain));
        row.setup.push_back(fmt::format("{} in its {}-GPU NVLink domain (cluster.nvlink_domain = {}; {})", gpu, domain,
                                        domain, domain_src));
      }
      if (!row.setup.empty()) sc = schedule_variant(req.scenario_file, sets, sched, plan_note);
      row.setup.push_back(fmt::format("memory: {:.0f} GB, the vendor-listed capacity (the convention of every "
                                      "profiles/hardware file)",
                                      sc.hardware.hbm_capacity.value / 1e9));
      row.gpu = req.schedules.empty() ? gpu : gpu + " / " + sched;
      if (!plan_note.empty()) {
        row.replanned = true;
        row.replan_note = plan_note;
      }
      // Memory of every phase decides: a phase that does not fit means the run cannot happen.
      const std::vector<MemoryReport> mem = memory_per_phase(sc);
      int bad = worst_phase(mem);
      if (bad >= 0) {
        const MemoryReport& m = mem[static_cast<std::size_t>(bad)];
        const std::string where = sc.phases[static_cast<std::size_t>(bad)].training.name;
        sets.push_back("plan.recompute=full");
        Scenario re = schedule_variant(req.scenario_file, sets, sched, plan_note);
        const std::vector<MemoryReport> mem2 = memory_per_phase(re);
        const int bad2 = worst_phase(mem2);
        row.replanned = true;
        row.replan_note = (row.replan_note.empty() ? "" : row.replan_note + "; ") + fmt::format("{}: {:.1f} GiB did not fit {:.1f} GiB; full recomputation: {:.1f} GiB{}", where,
                                      m.peak / kGiB, m.capacity / kGiB,
                                      mem2[static_cast<std::size_t>(bad)].peak / kGiB, bad2 >= 0 ? " (still does not fit)" : "");
        sc = std::move(re);
        if (bad2 >= 0) {
          const MemoryReport& m2 = mem2[static_cast<std::size_t>(bad2)];
          row.fits = false;
          row.fit_note = fmt::format("{} needs {:.1f} GiB of {:.1f} GiB even with full recomputation",
                                     sc.phases[static_cast<std::size_t>(bad2)].training.name, m2.peak / kGiB, m2.capacity / kGiB);
        }
      }
      for (const auto& m : memory_per_phase(sc)) row.memory_gib = std::max(row.memory_gib, m.peak / kGiB);
      const auto& p = sc.plan;
      row.plan = fmt::format("dp{} tp{} pp{} ep{} {}{}", p.dp, p.tp, p.pp, p.ep, p.schedule,
                             p.recompute == Recompute::Full && base.plan.recompute != Recompute::Full
                                 ? " recompute=full" : "");
      if (!row.fits) {
        out.hardware.push_back(std::move(row));
        continue;  // not priced: the run cannot happen on this GPU
      }
      const RunReport r = build_run_report(sc);
      const auto& s = r.phases.front().step;
      row.step_s = s.step_s;
      row.gpu_hours = r.run.gpu_hours;
      row.days = r.run.wall_clock_days;
      row.cost_usd = r.run.cost_usd;
      row.mfu = s.mfu_causal;
      row.bottleneck = bottleneck_of(s);
      row.provenance = calibration::load_cost_model(sc.hardware, data_dir())->provenance();
      out.hardware.push_back(std::move(row));
    }
  }
  return out;
}

std::string compare_text(const RunReport& r) {
  std::string out = fmt::format("trainsim compare: {} ({} x GPU, same model and token budget)\n", r.title(), r.gpus);
  out += fmt::format("  base scenario: {} on {}\n", r.model, r.gpu);
  const auto& pv = r.provenance;
  if (!pv.command.empty()) out += fmt::format("  command: {}\n", pv.command);
  out += fmt::format("  trainsim {}, commit {}; {}\n\n", pv.version.empty() ? TRAINSIM_VERSION : pv.version,
                     pv.commit.empty() ? "(not recorded)" : pv.commit, pv.date.empty() ? "date not recorded" : pv.date);
  double max_h = 0;
  for (const auto& h : r.hardware)
    if (h.fits) max_h = std::max(max_h, h.gpu_hours);
  TextTable t({"GPU", "plan", "step", "memory/GPU", "GPU-hours", "", "days", "cost", "MFU", "bottleneck"},
              {false, false, true, true, true, false, true, true, true, false});
  for (const auto& h : r.hardware) {
    if (!h.fits) {  // said in the row, not priced
      t.add_row({h.gpu, h.plan, "DOES NOT FIT", fmt::format("{:.1f} GiB", h.memory_gib), "-", "", "-", "-", "-", h.fit_note});
      continue;
    }
    const int bar = max_h > 0 ? static_cast<int>(20.0 * h.gpu_hours / max_h + 0.5) : 0;
    t.add_row({h.gpu, h.plan, fmt::format("{:.2f} s", h.step_s),
               fmt::format("{:.1f} GiB{}", h.memory_gib, h.fits ? "" : " (over)"), format_count(h.gpu_hours),
               std::string(static_cast<std::size_t>(bar), '#'), fmt::format("{:.1f}", h.days), format_usd(h.cost_usd),
               fmt::format("{:.1f}%", 100 * h.mfu), h.bottleneck});
  }
  out += t.str();
  for (const auto& h : r.hardware)
    if (h.replanned) out += fmt::format("  re-planned {}: {}\n", h.gpu, h.replan_note);
  out += "  GPU-hours and cost cover every phase of the scenario; step and MFU are the first phase's final batch;\n"
         "  memory/GPU is the peak over pipeline ranks of the plan used.\n";
  out += "\nWhere each GPU's costs come from (fitted: to measurements on that GPU or a same-die GPU; transferred: a\n"
         "rule carried another GPU's fit over; held-out: RMS error on points the fit did not see)\n";
  TextTable p({"GPU", "class", "source", "basis", "held-out"}, {false, false, false, false, true});
  for (const auto& h : r.hardware) {
    bool first = true;
    for (const auto& c : h.provenance) {
      std::string basis = c.basis;
      if (basis.size() > 90) {
        basis.resize(87);
        basis += "...";
      }
      p.add_row({first ? h.gpu : "", c.cls, calibration::cost_source_name(c.source), basis,
                 c.heldout_rms >= 0 ? fmt::format("{:.1f}%", 100 * c.heldout_rms) : "-"});
      first = false;
    }
  }
  out += p.str();
  for (const auto& h : r.hardware)
    for (const auto& s : h.setup) out += fmt::format("  {}: {}\n", h.gpu, s);
  return out;
}

}  // namespace trainsim
