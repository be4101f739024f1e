// trainsim run SCENARIO [--json] [--out DIR] [--set key=value]... [--baseline]
//
// Exit status 3 (after printing and writing the report): the plan does not fit GPU memory in
// some phase, so nothing was priced (main.cpp).
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/provenance.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "report/chunk_report.hpp"
#include "report/run_report.hpp"

namespace trainsim::cli {

void setup_run(CLI::App& sub) {
  struct Opts {
    std::string file;
    bool json = false;
    std::string out;
    std::vector<std::string> sets;
    bool baseline = false;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("scenario", o->file,
                 "A scenario file (scenarios/*.toml), or the name of an installed one (trainsim list scenarios)")
      ->required();
  sub.add_flag("--json", o->json,
               "Print JSON instead of the report: title, what_if, provenance, fits_memory, shortfall_gib_per_rank, "
               "memory, step_time_s, tokens_per_step, tokens_per_s, tokens_per_s_per_gpu, mfu, bubble_fraction, "
               "exposed_comm_fraction, peak_memory_gib, gpu_hours, gpu_hours_per_trillion_tokens, wall_clock_days, "
               "cost_usd, energy_mwh, phases, comparison, baseline_comparison (priced figures are null when the plan "
               "does not fit memory)");
  sub.add_option("--out", o->out,
                 "Also write report.md, report.html (self-contained, with charts), metrics.json and "
                 "timeline.json (one step's pipeline, loads in https://ui.perfetto.dev) into this directory");
  sub.add_option("--set", o->sets,
                 "Override any scenario key, e.g. --set plan.schedule=1f1b, --set phases.1.plan.dp=16 (a phase by "
                 "index or name), --set hardware.interconnect.nic=200Gb/s (repeatable; recorded in every output)");
  sub.add_flag("--baseline", o->baseline,
               "Also run the scenario without the --set overrides and show baseline, what-if and the change per line "
               "of the step breakdown and cost");
  sub.footer("Exit status: 0 success; 2 bad input; 3 the plan does not fit GPU memory (the report says where; nothing "
             "is priced); 70 internal error.");
  sub.callback([o] {
    if (!o->out.empty()) check_output_dir("--out", o->out);  // before the work, not after
    const std::string file = resolve_scenario(o->file, "scenario").string();
    if (o->baseline && o->sets.empty())
      throw UsageError("--baseline compares a what-if with its baseline: give the what-if as --set options");
    const Scenario sc = load_scenario(file, o->sets);
    if (sc.chunk_pair) {  // a calibration scenario: one chunk pair vs its measured profile
      if (!o->out.empty()) throw UsageError("--out: a [chunk_pair] scenario has no run report to write");
      if (o->baseline) throw UsageError("--baseline: a [chunk_pair] scenario has no run report to compare");
      const ChunkReport c = build_chunk_report(sc);
      fmt::print("{}", o->json ? chunk_json(c).dump(2) + "\n" : chunk_text(c));
      return;
    }
    std::vector<std::string> args = {"run", o->file};
    for (const auto& s : o->sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    if (o->baseline) args.push_back("--baseline");
    RunReport r = build_run_report(sc);
    r.provenance = make_provenance(args, o->sets);
    if (o->baseline) {
      auto base = std::make_shared<RunReport>(build_run_report(load_scenario(file)));
      base->provenance = make_provenance({"run", o->file}, {});
      r.baseline = std::move(base);
    }
    const std::string text = o->json ? run_json(r).dump(2) + "\n" : run_text(r);
    if (!o->out.empty()) write_run_outputs(r, o->out);
    fmt::print("{}", text);
    if (!o->out.empty() && !o->json) fmt::print("\nwrote {}/report.md, report.html, metrics.json, timeline.json\n", o->out);
    if (!r.fits()) throw PlanDoesNotFit("the plan does not fit GPU memory (see the report); nothing was priced");
  });
}

}  // namespace trainsim::cli
