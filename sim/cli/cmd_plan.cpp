// trainsim plan SCENARIO [--gpus N[,N...]] [--objective cost|time] [--deadline-days D] [--budget-usd B]
//               [--top K] [--margin F] [--rerun N] [--rerun-best N] [--db FILE] [--csv FILE] [--json]
//               [--out DIR] [--jobs N] [--quiet]
// See docs/plan.md.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/provenance.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "plan/plan_report.hpp"
#include "plan/search.hpp"
#include "sweep/mpi.hpp"

namespace trainsim::cli {

namespace {

std::atomic<bool> g_plan_interrupted{false};
extern "C" void on_plan_sigint(int) { g_plan_interrupted.store(true); }

struct PlanSigintGuard {
  using Handler = void (*)(int);
  Handler previous;
  PlanSigintGuard() : previous(std::signal(SIGINT, on_plan_sigint)) {}
  ~PlanSigintGuard() { std::signal(SIGINT, previous); }
  PlanSigintGuard(const PlanSigintGuard&) = delete;
  PlanSigintGuard& operator=(const PlanSigintGuard&) = delete;
};

std::string number(double v) { return fmt::format("{}", v); }

}  // namespace

void setup_plan(CLI::App& sub) {
  struct Opts {
    std::string file, objective = "cost", db, csv, out;
    std::vector<std::int64_t> gpus;
    std::optional<double> deadline, budget;
    std::size_t top = 10, rerun = 24, rerun_best = 8;
    double margin = 0.05;
    unsigned jobs = 1;
    bool json = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("scenario", o->file,
                 "A scenario file (scenarios/*.toml), or the name of an installed one (trainsim list scenarios): its model, "
                 "cluster and batch; its [plan] is searched")
      ->required();
  sub.add_option("--gpus", o->gpus,
                 "GPU counts to search (comma-separated multiples of gpus_per_node; default the cluster's); with several, "
                 "cost and time trade off on a Pareto front")
      ->delimiter(',')
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{10'000'000}));
  sub.add_option("--objective", o->objective, "Rank plans by cost (ties: fewer days) or by time (ties: lower cost); default cost")
      ->check(CLI::IsMember({"cost", "time"}));
  sub.add_option("--deadline-days", o->deadline, "Only plans whose whole run takes at most D days")->check(CLI::PositiveNumber);
  sub.add_option("--budget-usd", o->budget, "Only plans whose whole run costs at most B dollars")->check(CLI::PositiveNumber);
  sub.add_option("--top", o->top, "How many plans to show (default 10)")->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  sub.add_option("--margin", o->margin,
                 "Re-run at event level every plan whose estimate is within this fraction of the best estimate (default "
                 "0.05), up to --rerun plans")
      ->check(CLI::Range(0.0, 10.0));
  sub.add_option("--rerun", o->rerun, "At most this many plans re-run at event level, besides the scenario's own (default 24)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000}));
  sub.add_option("--rerun-best", o->rerun_best,
                 "Always re-run the best this many plans by the estimate, within the margin or not (default 8)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{10000}));
  sub.add_option("--db", o->db,
                 "SQLite database of the event-level runs (the sweep store, docs/sweep.md): a rerun reuses the points "
                 "already there; default: kept in memory")
      ;
  sub.add_option("--csv", o->csv, "Also write the re-run plans as CSV to this file");
  sub.add_flag("--json", o->json, "Print the result as JSON instead of the report");
  sub.add_option("--out", o->out, "Also write report.md, plans.csv and plan.json into this directory");
  sub.add_option("--jobs,-j", o->jobs,
                 "Threads for the screening and the event-level runs (default 1); the result is the same for any count")
      ->check(CLI::Range(1u, 256u));
  sub.add_flag("--quiet,-q", o->quiet, "No progress on stderr (the summary line is still printed)");
  sub.footer("Exit status: 0 success; 2 bad input; 1 a re-run plan failed with status 'error', or interrupted; 70 internal error.");
  sub.callback([o] {
    // Everything is checked before any work. Under mpirun (sweep/mpi.hpp, docs/plan.md) every
    // rank reads the scenario and screens; rank 0 alone has the database and the outputs, and
    // prints.
    if (o->rerun_best > o->rerun)
      throw UsageError(fmt::format("--rerun-best: {} is more than --rerun {}", o->rerun_best, o->rerun));
    const sweep::Ranks& rk = sweep::ranks();
    std::string file;
    std::optional<Scenario> loaded;
    sweep::all_ranks_agree([&] {
      if (rk.root()) {
        if (!o->db.empty()) check_output_file("--db", o->db);
        if (!o->csv.empty()) check_output_file("--csv", o->csv);
        if (!o->out.empty()) check_output_dir("--out", o->out);
      }
      file = resolve_scenario(o->file, "scenario").string();
      loaded.emplace(load_scenario(file));
      if (loaded->chunk_pair) throw UsageError("scenario: a [chunk_pair] scenario has no training run to plan");
    });
    const Scenario& sc = *loaded;

    plan::SearchOptions so;
    so.gpus = o->gpus;
    so.objective = o->objective;
    so.deadline_days = o->deadline;
    so.budget_usd = o->budget;
    so.top = o->top;
    so.jobs = o->jobs;
    so.margin = o->margin;
    so.max_rerun = o->rerun;
    so.min_rerun = o->rerun_best;
    so.db = o->db;
    so.progress = !o->quiet && rk.root();
    so.progress_tty = ::isatty(::fileno(stderr)) != 0;
    so.on_progress = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
    so.stop = &g_plan_interrupted;
    g_plan_interrupted.store(false);

    std::vector<std::string> args = {"plan", o->file};
    if (!o->gpus.empty()) {
      std::string g;
      for (auto x : o->gpus) g += (g.empty() ? "" : ",") + std::to_string(x);
      args.insert(args.end(), {"--gpus", g});
    }
    if (o->objective != "cost") args.insert(args.end(), {"--objective", o->objective});
    if (o->deadline) args.insert(args.end(), {"--deadline-days", number(*o->deadline)});
    if (o->budget) args.insert(args.end(), {"--budget-usd", number(*o->budget)});
    if (o->top != 10) args.insert(args.end(), {"--top", std::to_string(o->top)});
    if (o->margin != 0.05) args.insert(args.end(), {"--margin", number(o->margin)});
    if (o->rerun != 24) args.insert(args.end(), {"--rerun", std::to_string(o->rerun)});
    if (o->rerun_best != 8) args.insert(args.end(), {"--rerun-best", std::to_string(o->rerun_best)});
    const Provenance prov = make_provenance(args, {});

    plan::SearchResult r;
    {
      PlanSigintGuard guard;
      r = plan::search(sc, file, so);
    }
    if (r.worker_only) return;  // the other ranks print nothing
    r.provenance = prov;
    fmt::print(stderr, "{}\n", plan::timing_line(r));
    if (o->json) fmt::print("{}\n", plan::plan_json(r).dump(2));
    else fmt::print("{}", plan::plan_text(r));
    if (!o->csv.empty()) write_file_atomic(o->csv, plan::plan_csv(r), "--csv");
    if (!o->out.empty())
      write_files_atomic(o->out,
                         {{"report.md", plan::plan_markdown(r)}, {"plans.csv", plan::plan_csv(r)}, {"plan.json", plan::plan_json(r).dump(2) + "\n"}},
                         "--out");
    for (const auto& x : r.reruns)
      if (x.status == "error")
        throw std::runtime_error("a re-run plan failed with status 'error' (see the report); rerun to retry it");
  });
}

}  // namespace trainsim::cli
