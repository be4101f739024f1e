// trainsim compare SCENARIO.toml [--hardware h800,h100-sxm,...] [--schedules dualpipe,dualpipev,1f1b] [--json] [--out DIR]
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "report/compare.hpp"
#include "schedule/schedule_rules.hpp"

namespace trainsim::cli {

void setup_compare(CLI::App& sub) {
  struct Opts {
    std::string file;
    std::vector<std::string> gpus, schedules, sets;
    bool json = false;
    std::string out;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("scenario", o->file, "A scenario file (scenarios/*.toml)")->required()->check(CLI::ExistingFile);
  sub.add_option("--hardware", o->gpus,
                 "GPU types to compare, comma-separated names from profiles/hardware/ "
                 "(e.g. h800,h100-sxm,h200,b200,a100-sxm-80g; default: the scenario's own, with --schedules)")
      ->delimiter(',');
  sub.add_option("--schedules", o->schedules,
                 "Also vary the pipeline schedule, e.g. dualpipe,dualpipev,1f1b (default: the scenario's own); "
                 "dualpipev keeps a scenario's explicit layer split on half the ranks, dp doubled")
      ->delimiter(',');
  sub.add_option("--set", o->sets, "Override any scenario key for every variant (repeatable)");
  sub.add_flag("--json", o->json, "Print JSON (the run --json keys plus a 'hardware' list)");
  sub.add_option("--out", o->out, "Also write report.md, report.html (with the comparison chart), metrics.json, timeline.json");
  sub.callback([o] {
    if (o->gpus.empty() && o->schedules.empty())
      throw UsageError("--hardware: give the GPU types to compare (or --schedules to compare schedules on the scenario's GPU)");
    for (const auto& g : o->gpus)
      if (g.empty()) throw UsageError("--hardware: empty GPU name");
    for (const auto& k : o->schedules)
      if (!schedule::is_known_schedule(k))
        throw UsageError(fmt::format("--schedules: unknown schedule '{}' (known: {})", k, schedule::known_schedules_list()));
    if (!o->out.empty()) check_output_dir("--out", o->out);  // before the work, not after
    CompareRequest req{o->file, o->sets, o->gpus, o->schedules};
    const RunReport r = compare_hardware(req);
    const std::string text = o->json ? run_json(r).dump(2) + "\n" : compare_text(r);
    if (!o->out.empty()) write_run_outputs(r, o->out);
    fmt::print("{}", text);
  });
}

}  // namespace trainsim::cli
