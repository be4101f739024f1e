// trainsim sweep SWEEP.toml [--db FILE] [--jobs N] [--max-points K] [--fresh] [--csv FILE]
//                [--best cost|time] [--deadline-days D] [--budget-usd B] [--top N] [--json]
// and `mpirun -np N trainsim sweep ...` (sweep/mpi.hpp). See docs/sweep.md.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "sweep/mpi.hpp"
#include "sweep/runner.hpp"
#include "sweep/spec.hpp"
#include "sweep/store.hpp"

namespace trainsim::cli {

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted.store(true); }

// Restores the previous SIGINT handler when the sweep ends (or throws).
struct SigintGuard {
  using Handler = void (*)(int);
  Handler previous;
  SigintGuard() : previous(std::signal(SIGINT, on_sigint)) {}
  ~SigintGuard() { std::signal(SIGINT, previous); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;
};

}  // namespace

void setup_sweep(CLI::App& sub) {
  struct Opts {
    std::string file, db, csv, best;
    unsigned jobs = 1;
    std::size_t max_points = 0, top = 10;
    bool fresh = false, json = false, quiet = false;
    std::optional<double> deadline, budget;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("sweep", o->file, "A sweep file (docs/sweep.md, scenarios/sweeps/*.toml)")->required()->check(CLI::ExistingFile);
  sub.add_option("--db", o->db, "SQLite database of results, one row per point (default: <sweep name>.sqlite here)");
  sub.add_option("--jobs,-j", o->jobs, "Worker threads evaluating points (default 1; per process under mpirun); the stored rows are the same for any number")
      ->check(CLI::Range(1u, 256u));
  sub.add_option("--max-points", o->max_points, "Evaluate at most this many new points, then stop (rerun to continue)")
      ->check(CLI::Range(std::size_t{1}, std::numeric_limits<std::size_t>::max()));
  sub.add_flag("--fresh", o->fresh, "Re-evaluate points already in the database (after editing a hardware profile or calibration)");
  sub.add_option("--csv", o->csv, "Also write every point of the sweep as CSV to this file");
  sub.add_option("--best", o->best, "Print the top plans by cost or by time (wall-clock days)")->check(CLI::IsMember({"cost", "time"}));
  sub.add_option("--deadline-days", o->deadline, "With --best: only plans finishing within D days")->check(CLI::PositiveNumber);
  sub.add_option("--budget-usd", o->budget, "With --best: only plans costing at most B dollars")->check(CLI::PositiveNumber);
  sub.add_option("--top", o->top, "With --best: how many plans to show (default 10)")
      ->check(CLI::Range(std::size_t{1}, std::numeric_limits<std::size_t>::max()));
  sub.add_flag("--json", o->json, "With --best: print the plans as JSON");
  sub.add_flag("--quiet,-q", o->quiet, "No progress on stderr (the summary line is still printed)");
  sub.callback([o] {
    if (o->best.empty()) {
      if (o->deadline) throw UsageError("--deadline-days goes with --best cost|time");
      if (o->budget) throw UsageError("--budget-usd goes with --best cost|time");
      if (o->json) throw UsageError("--json goes with --best cost|time");
    }
    // Everything is checked before anything is written. Under mpirun (sweep/mpi.hpp) every rank
    // reads the sweep; rank 0 alone has the database and the outputs, and prints.
    const sweep::Ranks& rk = sweep::ranks();
    std::optional<sweep::SweepSpec> loaded;
    std::optional<sweep::Store> opened;
    std::string db;
    sweep::all_ranks_agree([&] {
      loaded.emplace(sweep::load_sweep(o->file));
      if (!rk.root()) return;
      db = o->db.empty() ? loaded->name + ".sqlite" : o->db;
      check_output_file("--db", db);
      if (!o->csv.empty()) check_output_file("--csv", o->csv);
      opened.emplace(db);
    });
    const sweep::SweepSpec& spec = *loaded;

    sweep::RunOptions ro;
    ro.jobs = o->jobs;
    if (o->max_points > 0) ro.max_points = o->max_points;
    ro.fresh = o->fresh;
    ro.progress = !o->quiet && rk.root();
    ro.progress_tty = ::isatty(::fileno(stderr)) != 0;
    ro.stop = &g_interrupted;
    g_interrupted.store(false);
    sweep::RunSummary sum;
    {
      SigintGuard guard;
      sum = sweep::run_sweep(spec, opened ? &*opened : nullptr, ro);
    }
    if (!rk.root()) return;  // the other ranks print nothing
    sweep::Store& store = *opened;
    fmt::print(stderr, "sweep {}: {}\n", spec.name, sum.line());
    if (const std::string d = sum.dropped_line(); !d.empty()) fmt::print(stderr, "{}\n", d);
    fmt::print(stderr, "results: {}\n", db);

    const auto points = sweep::all_points(spec);
    const auto rows = store.rows(points);
    if (!o->csv.empty()) {
      write_file_atomic(o->csv, sweep::csv_text(spec, rows), "--csv");
      fmt::print(stderr, "wrote {} ({} rows)\n", o->csv, rows.size());
    }
    if (!o->best.empty()) {
      sweep::BestOptions bo;
      bo.by = o->best;
      bo.deadline_days = o->deadline;
      bo.budget_usd = o->budget;
      bo.top = o->top;
      const auto best = sweep::best_plans(rows, bo);
      if (o->json) fmt::print("{}\n", sweep::best_json(spec, best, bo).dump(2));
      else fmt::print("{}", sweep::best_text(spec, best, bo));
    }
    if (sum.interrupted) throw std::runtime_error("sweep interrupted; committed points are kept: rerun the same command to resume");
    if (sum.errors > 0)
      throw std::runtime_error(fmt::format("{} point(s) failed with status 'error' (see the reason column); rerun to retry them", sum.errors));
  });
}

}  // namespace trainsim::cli
