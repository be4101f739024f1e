#include "report/compare.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/table.hpp"

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

}  // namespace

RunReport compare_hardware(const CompareRequest& req) {
  const Scenario base = load_scenario(req.scenario_file, req.sets);
  RunReport out = build_run_report(base);
  std::vector<std::string> schedules = req.schedules;
  if (schedules.empty()) schedules.push_back(base.plan.schedule);
  for (const auto& gpu : req.gpus) {
    for (const auto& sched : schedules) {
      std::vector<std::string> sets = req.sets;
      sets.push_back("cluster.gpu=" + gpu);
      sets.push_back("plan.schedule=" + sched);
      Scenario sc = load_scenario(req.scenario_file, sets);
      HardwareRow row;
      row.gpu = req.schedules.empty() ? gpu : gpu + " / " + sched;
      MemoryReport mem = memory_per_gpu(sc);
      if (!mem.fits) {
        const double before = mem.peak;
        sets.push_back("plan.recompute=full");
        Scenario re = load_scenario(req.scenario_file, sets);
        const MemoryReport mem2 = memory_per_gpu(re);
        row.replanned = true;
        row.replan_note = fmt::format("{:.1f} GiB did not fit {:.1f} GiB; full recomputation: {:.1f} GiB{}", before / kGiB,
                                      mem.capacity / kGiB, mem2.peak / kGiB, mem2.fits ? "" : " (still does not fit)");
        sc = std::move(re);
      }
      const RunReport r = build_run_report(sc);
      const auto& s = r.phases.front().step;
      const auto& p = sc.plan;
      row.plan = fmt::format("dp{} tp{} pp{} ep{} {}{}", p.dp, p.tp, p.pp, p.ep, p.schedule,
                             row.replanned ? " recompute=full" : "");
      row.step_s = s.step_s;
      row.gpu_hours = r.run.gpu_hours;
      row.days = r.run.wall_clock_days;
      row.cost_usd = r.run.cost_usd;
      row.mfu = s.mfu_causal;
      row.bottleneck = bottleneck_of(s);
      out.hardware.push_back(std::move(row));
    }
  }
  return out;
}

std::string compare_text(const RunReport& r) {
  std::string out = fmt::format("trainsim compare: {} ({} x GPU, same model and token budget)\n", r.scenario, r.gpus);
  out += fmt::format("  base scenario: {} on {}\n\n", r.model, r.gpu);
  double max_h = 0;
  for (const auto& h : r.hardware) max_h = std::max(max_h, h.gpu_hours);
  TextTable t({"GPU", "plan", "step", "GPU-hours", "", "days", "cost", "MFU", "bottleneck"},
              {false, false, true, true, false, true, true, true, false});
  for (const auto& h : r.hardware) {
    const int bar = max_h > 0 ? static_cast<int>(20.0 * h.gpu_hours / max_h + 0.5) : 0;
    t.add_row({h.gpu, h.plan, fmt::format("{:.2f} s", h.step_s), fmt::format("{:.3f}M", h.gpu_hours / 1e6),
               std::string(static_cast<std::size_t>(bar), '#'), fmt::format("{:.1f}", h.days),
               fmt::format("${:.2f}M", h.cost_usd / 1e6), fmt::format("{:.1f}%", 100 * h.mfu), h.bottleneck});
  }
  out += t.str();
  for (const auto& h : r.hardware)
    if (h.replanned) out += fmt::format("  re-planned {}: {}\n", h.gpu, h.replan_note);
  out += "  GPU-hours and cost cover every phase of the scenario; step and MFU are the first phase's final batch.\n";
  return out;
}

}  // namespace trainsim
