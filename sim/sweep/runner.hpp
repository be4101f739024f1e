#pragma once
// Running a sweep: evaluating its points (on worker threads), storing them in point order,
// resuming, the progress bar, CSV export and the best plans under constraints.

#include <atomic>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sweep/spec.hpp"
#include "sweep/store.hpp"

namespace trainsim::sweep {

// Loads, checks memory, simulates the whole run. Never throws for a bad point: an invalid plan
// (ConfigError) or a plan that does not fit in memory is 'infeasible' with the reason, any other
// failure 'error' (retried on resume). Thread-safe.
PointResult evaluate_point(const SweepSpec& spec, const Point& p);

struct RunOptions {
  unsigned jobs = 1;                        // worker threads (per rank under MPI)
  std::optional<std::size_t> max_points;    // evaluate at most this many new points
  bool fresh = false;                       // re-evaluate points already stored
  bool progress_tty = false;                // redraw a bar on stderr (else one line per ~10%)
  bool progress = true;                     // print progress at all
  const std::atomic<bool>* stop = nullptr;  // set (by SIGINT) to stop early; stored rows stay (rank 0's under MPI)
  bool share_rows = false;                  // fill RunSummary::rows (on every rank under MPI)
};

struct RunSummary {
  std::size_t points = 0, evaluated = 0, reused = 0, remaining = 0;
  std::size_t stored_by_others = 0;  // evaluated here, but another process had stored the point first
  std::size_t ok = 0, infeasible = 0, errors = 0;  // over every stored point of the sweep
  double seconds = 0;
  bool interrupted = false;
  int ranks = 1;                   // processes that evaluated (MPI ranks)
  // Base keys dropped because points made them invalid (docs/sweep.md), with the number of the
  // sweep's stored points that dropped each, in the order first met.
  std::vector<std::pair<std::string, std::size_t>> dropped_keys;
  std::string dropped_line() const;  // "" when none
  std::vector<StoredRow> rows;     // with RunOptions::share_rows: every stored point, in point order
  std::string line() const;  // the one-line summary
};

// Evaluates the points not yet stored (with status ok or infeasible) and stores them.
//
// Under MPI (sweep/mpi.hpp, ranks().distributed()) it is a collective stage: every rank calls it
// with the same sweep and options, rank 0 with the store and the others with none (nullptr; a
// store given there is not used). Rank 0 hands out the points one at a time, in point order, as
// ranks (itself included, on its own `jobs` threads) ask for more, and stores each result in its
// own transaction as it arrives, so a rank killed mid-sweep loses only the points it was
// evaluating; the rows are those a single process writes (only their insertion order differs).
// Every rank returns the same summary (and rows, with share_rows); a failure anywhere is thrown
// on every rank (rank 0's first). A sweep file, scenario, data file or build that differs
// between ranks is refused (every point id must be the same on every rank).
RunSummary run_sweep(const SweepSpec& spec, Store* store, const RunOptions& opt);
RunSummary run_sweep(const SweepSpec& spec, Store& store, const RunOptions& opt);

// Every point of the sweep, in order.
std::vector<Point> all_points(const SweepSpec& spec);

// CSV of the stored rows: point, id, status, reason, one column per sweep key, the metrics.
std::string csv_text(const SweepSpec& spec, const std::vector<StoredRow>& rows);

struct BestOptions {
  std::string by = "cost";                  // cost | time
  std::optional<double> deadline_days, budget_usd;
  std::size_t top = 10;
};

struct BestResult {
  std::size_t feasible = 0;                 // rows with status ok
  std::size_t meeting = 0;                  // of those, within the constraints
  std::vector<StoredRow> rows;              // the top ones, best first
};

BestResult best_plans(const std::vector<StoredRow>& rows, const BestOptions& opt);
std::string best_text(const SweepSpec& spec, const BestResult& b, const BestOptions& opt);
nlohmann::ordered_json best_json(const SweepSpec& spec, const BestResult& b, const BestOptions& opt);

}  // namespace trainsim::sweep
