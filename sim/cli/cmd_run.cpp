// trainsim run SCENARIO.toml [--json] [--out DIR] [--set key=value]...
#include <fmt/format.h>

#include "cli/commands.hpp"
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
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("scenario", o->file, "A scenario file (scenarios/*.toml)")->required()->check(CLI::ExistingFile);
  sub.add_flag("--json", o->json,
               "Print JSON instead of the report: step_time_s, tokens_per_step, tokens_per_s_per_gpu, mfu, "
               "bubble_fraction, exposed_comm_fraction, peak_memory_gib, fits_memory, gpu_hours, "
               "gpu_hours_per_trillion_tokens, wall_clock_days, cost_usd, energy_mwh, phases, comparison");
  sub.add_option("--out", o->out,
                 "Also write report.md, report.html (self-contained, with charts), metrics.json and "
                 "timeline.json (one step's pipeline, loads in https://ui.perfetto.dev) into this directory");
  sub.add_option("--set", o->sets, "Override any scenario key, e.g. --set plan.schedule=1f1b (repeatable)");
  sub.callback([o] {
    if (!o->out.empty()) check_output_dir("--out", o->out);  // before the work, not after
    const Scenario sc = load_scenario(o->file, o->sets);
    if (sc.chunk_pair) {  // a calibration scenario: one chunk pair vs its measured profile
      if (!o->out.empty()) throw UsageError("--out: a [chunk_pair] scenario has no run report to write");
      const ChunkReport c = build_chunk_report(sc);
      fmt::print("{}", o->json ? chunk_json(c).dump(2) + "\n" : chunk_text(c));
      return;
    }
    const RunReport r = build_run_report(sc);
    const std::string text = o->json ? run_json(r).dump(2) + "\n" : run_text(r);
    if (!o->out.empty()) write_run_outputs(r, o->out);
    fmt::print("{}", text);
    if (!o->out.empty() && !o->json) fmt::print("\nwrote {}/report.md, report.html, metrics.json, timeline.json\n", o->out);
  });
}

}  // namespace trainsim::cli
