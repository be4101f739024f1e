// trainsim compare SCENARIO [--hardware h800,h100-sxm,...|all] [--schedules dualpipe,dualpipev,1f1b] [--json] [--out DIR]
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/provenance.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "report/compare.hpp"
#include "schedule/schedule_rules.hpp"
#include "schedule/schedule.hpp"

namespace trainsim::cli {

void setup_compare(CLI::App& sub) {
  struct Opts {
    std::string file;
    std::vector<std::string> gpus, schedules, sets;
    bool json = false;
    std::string out;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("scenario", o->file, "A scenario file (scenarios/*.toml), or the name of an installed one")->required();
  sub.add_option("--hardware", o->gpus,
                 "GPU types to compare, comma-separated names from profiles/hardware/ (trainsim list gpus; e.g. "
                 "h800,h100-sxm,h200,b200,a100-sxm-80g), or 'all' (default: the scenario's own, with --schedules)")
      ->delimiter(',');
  sub.add_option("--schedules", o->schedules,
                 "Also vary the pipeline schedule, e.g. dualpipe,dualpipev,1f1b (default: the scenario's own; trainsim "
                 "list schedules); dualpipev keeps a scenario's explicit layer split on half the ranks, dp doubled")
      ->delimiter(',');
  sub.add_option("--set", o->sets, "Override any scenario key for every variant (repeatable)");
  sub.add_flag("--json", o->json, "Print JSON (the run --json keys plus a 'hardware' list)");
  sub.add_option("--out", o->out, "Also write report.md, report.html (with the comparison chart), metrics.json, timeline.json");
  sub.callback([o] {
    const std::string file = resolve_scenario(o->file, "scenario").string();
    if (o->gpus.empty() && o->schedules.empty())
      throw UsageError("--hardware: give the GPU types to compare (or --schedules to compare schedules on the scenario's GPU)");
    std::vector<std::string> gpus;
    for (const auto& g : o->gpus) {
      if (g.empty()) throw UsageError("--hardware: empty GPU name");
      if (g == "all") {
        if (o->gpus.size() > 1) throw UsageError("--hardware all: 'all' stands alone (every GPU in trainsim list gpus)");
        gpus = hardware_names();
        break;
      }
      gpus.push_back(check_hardware_name(g, "--hardware"));
    }
    std::vector<std::string> names;
    for (const auto& s : schedule::registry()) names.emplace_back(s.name);
    for (const auto& s : o->schedules)
      if (std::find(names.begin(), names.end(), s) == names.end())
        throw UsageError(fmt::format("--schedules: {}", unknown_name_message("schedule", s, names)));
    // --hardware and --schedules set these keys for every variant: a --set of the same key would
    // be silently overridden, so it is refused.
    for (const auto& s : o->sets) {
      const std::string key = s.substr(0, s.find('='));
      if (key == "cluster.gpu" || key == "cluster")
        throw UsageError(fmt::format("--set {}: compare sets cluster.gpu from --hardware; give the GPU types there", s));
      if (!o->schedules.empty() && (key == "plan.schedule" || key == "plan"))
        throw UsageError(fmt::format("--set {}: compare sets plan.schedule from --schedules; give the schedules there", s));
    }
    if (!o->out.empty()) check_output_dir("--out", o->out);  // before the work, not after
    CompareRequest req{file, o->sets, gpus, o->schedules};
    RunReport r = compare_hardware(req);
    std::vector<std::string> args = {"compare", o->file};
    if (!o->gpus.empty()) {
      std::string list;
      for (const auto& g : o->gpus) list += (list.empty() ? "" : ",") + g;
      args.push_back("--hardware");
      args.push_back(list);
    }
    if (!o->schedules.empty()) {
      std::string sl;
      for (const auto& s : o->schedules) sl += (sl.empty() ? "" : ",") + s;
      args.push_back("--schedules");
      args.push_back(sl);
    }
    for (const auto& s : o->sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    r.provenance = make_provenance(args, o->sets);
    const std::string text = o->json ? run_json(r).dump(2) + "\n" : compare_text(r);
    if (!o->out.empty()) write_run_outputs(r, o->out);
    fmt::print("{}", text);
  });
}

}  // namespace trainsim::cli
