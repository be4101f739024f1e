#pragma once
// Running a sweep: evaluating its points (on worker threads), storing them in point order,
// resuming, the progress bar, CSV export and the best plans under constraints.

#include <atomic>
#include <cstddef>
#include <optional>
#include <string>
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
  unsigned jobs = 1;                        // worker threads
  std::optional<std::size_t> max_points;    // evaluate at most this many new points
  bool fresh = false;                       // re-evaluate points already stored
  bool progress_tty = false;                // redraw a bar on stderr (else one line per ~10%)
  bool progress = true;                     // print progress at all
  const std::atomic<bool>* stop = nullptr;  // set (by SIGINT) to stop early; stored rows stay
};

struct RunSummary {
  std::size_t points = 0, evaluated = 0, reused = 0, remaining = 0;
  std::size_t stored_by_others = 0;  // evaluated here, but another process had stored the point first
  std::size_t ok = 0, infeasible = 0, errors = 0;  // over every stored point of the sweep
  double seconds = 0;
  bool interrupted = false;
  std::string line() const;  // the one-line summary
};

// Evaluates the points not yet stored (with status ok or infeasible) and stores them.
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
