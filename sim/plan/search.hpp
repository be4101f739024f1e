#pragma once
// `trainsim plan`: the search (docs/plan.md).
//
//   1. enumerate every valid plan of the scenario for each GPU count (plan/space.hpp);
//   2. screen them all with the fast estimate (plan/estimate.hpp): memory first, then time and
//      cost of the plans that fit, on `jobs` threads (the result does not depend on `jobs`);
//   3. re-run at event level, through the sweep machinery (sweep::run_sweep: the same store,
//      resume and parallel evaluation as `trainsim sweep`), the best plans by the estimate, every
//      plan within `margin` of the best (at most `max_rerun`, the best plan of each layout first),
//      the estimated Pareto front, and the scenario's own plan;
//   4. rank the re-run plans by the event-level result; measure the screening against it (rank
//      correlation, whether the screened #1 is the event-level #1, the estimate's error); the
//      Pareto front of cost against time; why the best excluded alternatives lost.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "plan/estimate.hpp"
#include "report/run_report.hpp"
#include "plan/space.hpp"

namespace trainsim::plan {

struct SearchOptions {
  std::vector<std::int64_t> gpus;  // GPU counts searched; empty: the cluster's
  std::string objective = "cost";  // cost | time
  std::optional<double> deadline_days, budget_usd;
  std::size_t top = 10;
  unsigned jobs = 1;
  double margin = 0.05;            // re-run every plan whose estimate is within this fraction of the best
  std::size_t min_rerun = 8;       // ... and at least the best this many
  std::size_t max_rerun = 24;      // ... and at most this many
  std::string db;                  // SQLite store of the event-level runs ("" : in memory)
  bool screen_only = false;        // stop after the screening (benchmarks)
  bool progress = false, progress_tty = false;
  // Progress lines for stderr (the library never prints).
  std::function<void(const std::string&)> on_progress;
  const std::atomic<bool>* stop = nullptr;
};

// One screened plan.
struct Screened {
  std::size_t space = 0;      // index into SearchResult::gpus
  Candidate candidate;
  PlanEstimate estimate;      // phases empty
  std::uint64_t order = 0;    // enumeration order (ties)
};

struct ScreenStats {
  std::size_t layouts_refused = 0;   // (dp, tp, pp, cp, ep, vpp, micro-batch, schedule) refused by a rule
  std::size_t layouts = 0;           // layouts valid in every phase
  std::size_t knobs_refused = 0;     // knob combinations of valid layouts refused by a rule
  std::size_t plans = 0;             // valid plans: screened (memory first)
  std::size_t unfit = 0;             // of those, not fitting GPU memory in some phase (not timed)
  std::size_t timed = 0;             // fitting, time and cost estimated
  std::size_t meeting = 0;           // of those, within the deadline and budget
  std::vector<Rejection> rejected;   // by phase and key
  double wall_s = 0, cpu_s = 0;      // of the screening
  std::vector<double> thread_cpu_s;  // CPU seconds of each screening thread (how evenly --jobs splits the work)
};

// One plan re-run at event level.
struct Rerun {
  Screened screened;
  std::string why;                   // "best", "within margin", "Pareto front", "published"
  std::string status, reason;        // sweep point status: ok | infeasible | error
  double cost_usd = 0, days = 0, gpu_hours = 0, step_s = 0, mfu = 0, peak_gib = 0;
  // The main phase's step at its final batch, in parts (seconds).
  double compute_s = 0, exposed_comm_s = 0, bubble_s = 0, optimizer_s = 0;
  bool meets = false;                // within the deadline and budget
  std::size_t estimate_rank = 0;     // 1-based among the re-run plans, by the estimate
  std::size_t event_rank = 0;        // 1-based among the re-run plans meeting the constraints (0: not ranked)
  std::vector<std::string> overrides;
  std::string plan;                  // described (plan/space.hpp describe)
  std::int64_t gpus = 0;
};

// Why the best alternatives were excluded.
struct Exclusion {
  std::string constraint;  // "memory", "deadline", "budget"
  std::string plan;        // described
  std::string text;        // the sentence
};

struct Fidelity {
  std::size_t compared = 0;          // re-run plans with an event-level result
  double spearman = 0;               // rank correlation of estimate and event-level objective
  bool screened_first_is_first = false;
  double regret = 0;                 // event-level objective of the screened #1 over the best, - 1
  double median_abs_error = 0, max_abs_error = 0;  // |estimate / event - 1| of the objective
  double median_abs_step_error = 0, max_abs_step_error = 0;  // of the main phase's step time
};

struct SearchResult {
  std::string scenario, scenario_file, objective;
  std::vector<std::int64_t> gpus;
  SearchOptions options;
  ScreenStats stats;
  std::vector<Screened> screened_best;   // the best by the estimate (feasible, within constraints)
  std::vector<Screened> screened_front;  // the estimated Pareto front
  std::vector<std::string> screened_best_plans, screened_front_plans;  // described
  std::optional<Screened> published;     // the scenario's own plan, estimated
  std::size_t published_screen_rank = 0; // 1 + feasible plans estimated better (0: not comparable)
  std::size_t within_margin = 0;         // plans within the margin of the best estimate
  std::vector<Rerun> reruns;             // in event-level order (ranked first, then the rest)
  std::vector<std::size_t> front;        // indices into reruns: the event-level Pareto front
  bool worker_only = false;              // under mpirun, a rank other than 0: it evaluated re-runs for
                                         // rank 0 and holds none of the results (print nothing)
  std::vector<Exclusion> exclusions;
  Fidelity fidelity;
  std::string sweep_summary;
  std::size_t rerun_best = 0, rerun_margin = 0, rerun_front = 0;  // why the re-run plans were chosen
  double event_s = 0;
  std::vector<std::string> notes;
  Provenance provenance;  // filled by the command
};

// Indices of the points (cost, days) that no other point dominates (no worse in both, better in
// one); of equal points the first. In input order.
std::vector<std::size_t> pareto_front(const std::vector<std::pair<double, double>>& points);

// Spearman's rank correlation of two series (ties share their mean rank); 1 for fewer than 2.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// Runs the search on `base` (loaded from `scenario_file`). Throws UsageError on bad options.
SearchResult search(const Scenario& base, const std::string& scenario_file, const SearchOptions& opt);

}  // namespace trainsim::plan
