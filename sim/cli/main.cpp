// trainsim command-line entry point. The one place where errors become exit statuses:
//   0 success, 2 bad input (file, line, key named), 3 the plan does not fit GPU memory (the
//   report was printed, unpriced), 70 internal error, 1 other failure.
// Under mpirun every process runs this; MPI starts and ends here (sweep/mpi.hpp) and only rank 0
// prints.
#include <cstdio>
#include <optional>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "sweep/mpi.hpp"

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
      if (trainsim::sweep::launcher_rank() != 0) return 0;  // under mpirun: said once, by rank 0 (below)
      fmt::print(stderr, "trainsim: error: unknown command '{}'; the commands are {} (trainsim --help)\n", argv[1], list);
      return 2;
    }
  }
  // One of several processes of an MPI launcher: MPI for `sweep` and `plan` (its event-level
  // re-runs are shared out like a sweep's points), refused otherwise.
  std::optional<trainsim::sweep::MpiSession> mpi;
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    // (--help and --version print once, from rank 0.)
    mpi.emplace(argc, argv, command, command == "sweep" || command == "plan" || command.rfind("-", 0) == 0);
  } catch (const trainsim::InputError& e) {
    // Every process refuses alike. Rank 0 says why and fails; the others leave quietly with 0,
    // since a failing one could make mpirun end rank 0 before it has said why.
    if (trainsim::sweep::launcher_rank() != 0) return 0;
    fmt::print(stderr, "trainsim: error: {}\n", e.what());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version exit 0; a malformed command line exits 2 (bad input).
    const int rc = mpi->quiet() ? e.get_exit_code() : app.exit(e);
    return mpi->fail(rc == 0 ? 0 : 2, "");
  } catch (const trainsim::InputError& e) {
    std::fflush(stdout);
    return mpi->fail(2, fmt::format("trainsim: error: {}\n", e.what()));
  } catch (const trainsim::PlanDoesNotFit& e) {
    std::fflush(stdout);
    return mpi->fail(3, fmt::format("trainsim: {} (exit status 3)\n", e.what()));
  } catch (const trainsim::InternalError& e) {
    std::fflush(stdout);
    return mpi->fail(70, fmt::format("trainsim: {}\n", e.what()));
  } catch (const std::exception& e) {
    std::fflush(stdout);
    return mpi->fail(1, fmt::format("trainsim: error: {}\n", e.what()));
  }
  return 0;
}
