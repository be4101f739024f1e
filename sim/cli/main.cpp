// trainsim command-line entry point. The one place where errors become exit statuses:
//   0 success, 2 bad input (file, line, key named), 3 the plan does not fit GPU memory (the
//   report was printed, unpriced), 70 internal error, 1 other failure.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "trainsim: a cluster simulator and cost model for large-model training.\n"
      "Replays pipeline schedules op by op with calibrated kernel costs and a network model,\n"
      "and turns a simulated step into GPU-hours, days and dollars.",
      "trainsim"};
  app.set_version_flag("--version", std::string("trainsim ") + TRAINSIM_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  for (const auto& c : trainsim::cli::kCommands) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    c.setup(*sub);
  }
  if (argc > 1 && argv[1][0] != '-') {
    // An unknown command is named, with the list (CLI11 would only say "a subcommand is required").
    bool known = false;
    std::string list;
    for (const auto& c : trainsim::cli::kCommands) {
      known = known || std::string(argv[1]) == c.name;
      list += (list.empty() ? "" : ", ") + std::string(c.name);
    }
    if (!known) {
      fmt::print(stderr, "trainsim: error: unknown command '{}'; the commands are {} (trainsim --help)\n", argv[1], list);
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version exit 0; a malformed command line exits 2 (bad input).
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const trainsim::InputError& e) {
    std::fflush(stdout);
    fmt::print(stderr, "trainsim: error: {}\n", e.what());
    return 2;
  } catch (const trainsim::PlanDoesNotFit& e) {
    std::fflush(stdout);
    fmt::print(stderr, "trainsim: {} (exit status 3)\n", e.what());
    return 3;
  } catch (const trainsim::InternalError& e) {
    std::fflush(stdout);
    fmt::print(stderr, "trainsim: {}\n", e.what());
    return 70;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "trainsim: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
