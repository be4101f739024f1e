// trainsim validate [--filter GLOB] [--json] [--out DIR] [--suite DIR] [--jobs N] [--quiet]
// Runs the validation suite (validation/README.md): every published run simulated, its metric
// computed as the source computes it, the error against the published figure, and per family
// and overall the median and maximum |error|.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "report/validate_report.hpp"
#include "validate/suite.hpp"
#include "validate/validate.hpp"
#include "core/input.hpp"

namespace trainsim::cli {

void setup_validate(CLI::App& sub) {
  struct Opts {
    std::string filter, out, suite;
    bool json = false, quiet = false;
    unsigned jobs = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::Option* filter = sub.add_option("--filter", o->filter,
                 "Run only the cases whose id (FAMILY/CASE), family or name matches this shell glob, "
                 "case-insensitive: 'V2', 'V4/fp8-*', '*405b*'");
  sub.add_flag("--json", o->json,
               "Print the results as JSON (the metrics.json of --out): families, cases (published, trainsim, "
               "error_pct, step breakdown, memory), summary");
  sub.add_option("--out", o->out,
                 "Also write report.md, report.html (self-contained, with the chart of the errors) and "
                 "metrics.json into this directory");
  sub.add_option("--suite", o->suite, "The suite folder (default: validation/ of trainsim's data folder)")
      ->check(CLI::ExistingDirectory);
  sub.add_option("--jobs,-j", o->jobs,
                 "Cases simulated at once (default: the machine's hardware threads); the output does not depend on it")
      ->check(CLI::Range(1u, 256u));
  sub.add_flag("--quiet,-q", o->quiet, "No progress on stderr");
  sub.callback([o, filter] {
    if (filter->count() > 0 && o->filter.empty()) throw UsageError("--filter: give a glob, e.g. --filter 'V2/*'");
    if (!o->out.empty() && path_exists(o->out) && !is_dir(o->out))
      throw UsageError(fmt::format("--out: '{}' exists and is not a directory", o->out));
    const std::filesystem::path dir = o->suite.empty() ? data_dir() / "validation" : std::filesystem::path(o->suite);
    const validate::Suite suite = validate::load_suite(dir);
    const auto t0 = std::chrono::steady_clock::now();
    validate::Progress progress;
    if (!o->quiet)
      progress = [](std::size_t i, std::size_t n, const validate::Case& c) {
        fmt::print(stderr, "validate [{:>{}}/{}] {}\n", i, fmt::format("{}", n).size(), n, c.id);
        std::fflush(stderr);
      };
    const unsigned jobs = o->jobs > 0 ? o->jobs : std::max(1u, std::thread::hardware_concurrency());
    const validate::ValidationReport rep = validate::run_suite(suite, o->filter, progress, jobs);
    const std::string text = o->json ? validate_json(rep).dump(2) + "\n" : validate_text(rep);
    if (!o->out.empty()) write_validate_outputs(rep, o->out);
    if (!o->quiet) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fmt::print(stderr, "validate: {} cases in {:.1f} s\n", rep.results.size(), s);
    }
    fmt::print("{}", text);
    if (!o->out.empty() && !o->json) fmt::print("\nwrote {}/report.md, report.html, metrics.json\n", o->out);
  });
}

}  // namespace trainsim::cli
