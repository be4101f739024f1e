#include "plan/search.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <thread>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "calibration/cost_model.hpp"
#include "core/error.hpp"
#include "core/format.hpp"
#include "core/limits.hpp"
#include "plan/sweep_bridge.hpp"
#include "sweep/mpi.hpp"
#include "sweep/runner.hpp"
#include "sweep/store.hpp"

namespace trainsim::plan {

namespace {

using i64 = std::int64_t;
using Clock = std::chrono::steady_clock;
constexpr double kGiB = 1073741824.0;
constexpr std::size_t kKeep = 2048;  // best plans kept per unit of work and overall

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Objective order: cost (ties: fewer days) or time (ties: lower cost), then enumeration order.
struct Order {
  bool by_cost = true;
  bool operator()(const Screened& x, const Screened& y) const {
    const double a1 = by_cost ? x.estimate.cost_usd : x.estimate.days, b1 = by_cost ? y.estimate.cost_usd : y.estimate.days;
    if (a1 != b1) return a1 < b1;
    const double a2 = by_cost ? x.estimate.days : x.estimate.cost_usd, b2 = by_cost ? y.estimate.days : y.estimate.cost_usd;
    if (a2 != b2) return a2 < b2;
    return x.order < y.order;
  }
};

double objective(const PlanEstimate& e, bool by_cost) { return by_cost ? e.cost_usd : e.days; }

bool dominates(double c1, double d1, double c2, double d2) { return c1 <= c2 && d1 <= d2 && (c1 < c2 || d1 < d2); }

// The front under dominance in (cost, days); of equal points the one first in enumeration order,
// so the result does not depend on the order the points come in.
void add_front(std::vector<Screened>& front, const Screened& s) {
  const auto same = [&](const Screened& f) { return f.estimate.cost_usd == s.estimate.cost_usd && f.estimate.days == s.estimate.days; };
  for (const auto& f : front)
    if (dominates(f.estimate.cost_usd, f.estimate.days, s.estimate.cost_usd, s.estimate.days) || (same(f) && f.order < s.order))
      return;
  front.erase(std::remove_if(front.begin(), front.end(),
                             [&](const Screened& f) {
                               return dominates(s.estimate.cost_usd, s.estimate.days, f.estimate.cost_usd, f.estimate.days) || same(f);
                             }),
              front.end());
  front.push_back(s);
}

struct TaskOut {
  std::vector<Screened> best;  // a max-heap under Order while filling
  std::vector<Screened> front;
  std::optional<Screened> over_deadline, over_budget;
  std::size_t layouts = 0, layouts_refused = 0, knobs_refused = 0, plans = 0, unfit = 0, timed = 0, meeting = 0;
  std::size_t better_than_published = 0;
  std::vector<Rejection> rejected;
};

// The plan counts of `from` added to `into` (not the kept plans, not the layout counts).
void add_counts(TaskOut& into, const TaskOut& from) {
  into.knobs_refused += from.knobs_refused;
  into.plans += from.plans;
  into.unfit += from.unfit;
  into.timed += from.timed;
  into.meeting += from.meeting;
  into.better_than_published += from.better_than_published;
}

void merge_rejections(std::vector<Rejection>& into, const std::vector<Rejection>& from) {
  for (const auto& r : from) {
    auto it = std::find_if(into.begin(), into.end(), [&](const Rejection& x) { return x.phase == r.phase && x.key == r.key; });
    if (it == into.end()) into.push_back(r);
    else it->count += r.count;
  }
}

// The kept plans and counts of one rank's threads as bytes (all_ranks_share), and back. Fixed-width
// fields in this machine's byte order: every rank of one job runs this same build.
class Bytes {
 public:
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(const std::string& b) : b_(b) {}
  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    TS_ASSERT(at_ + sizeof(T) <= b_.size(), "plan: a rank's shared screening is truncated");
    T v;
    std::memcpy(&v, b_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  bool done() const { return at_ == b_.size(); }

 private:
  const std::string& b_;
  std::size_t at_ = 0;
};

void put_screened(Bytes& w, const Screened& s) {
  w.put(static_cast<std::uint64_t>(s.space));
  w.put(s.candidate.layout);
  w.put(static_cast<std::int32_t>(s.candidate.knobs.code()));
  w.put(static_cast<std::uint8_t>(s.candidate.published));
  w.put(static_cast<std::uint8_t>(s.estimate.fits));
  w.put(static_cast<std::int32_t>(s.estimate.unfit_phase));
  for (double d : {s.estimate.peak_bytes, s.estimate.capacity, s.estimate.step_s, s.estimate.days, s.estimate.gpu_hours,
                   s.estimate.cost_usd})
    w.put(d);
  w.put(s.order);
}

Screened get_screened(Reader& r) {
  Screened s;
  s.space = static_cast<std::size_t>(r.get<std::uint64_t>());
  s.candidate.layout = r.get<Layout>();
  s.candidate.knobs = Knobs::from_code(r.get<std::int32_t>());
  s.candidate.published = r.get<std::uint8_t>() != 0;
  s.estimate.fits = r.get<std::uint8_t>() != 0;
  s.estimate.unfit_phase = r.get<std::int32_t>();
  s.estimate.peak_bytes = r.get<double>();
  s.estimate.capacity = r.get<double>();
  s.estimate.step_s = r.get<double>();
  s.estimate.days = r.get<double>();
  s.estimate.gpu_hours = r.get<double>();
  s.estimate.cost_usd = r.get<double>();
  s.order = r.get<std::uint64_t>();
  return s;
}

std::string encode_kept(const std::vector<TaskOut>& kept, double cpu_s, const std::vector<double>& thread_cpu) {
  Bytes w;
  w.put(cpu_s);
  w.put(static_cast<std::uint64_t>(thread_cpu.size()));
  for (double c : thread_cpu) w.put(c);
  w.put(static_cast<std::uint64_t>(kept.size()));
  for (const TaskOut& k : kept) {
    for (std::size_t n : {k.knobs_refused, k.plans, k.unfit, k.timed, k.meeting, k.better_than_published})
      w.put(static_cast<std::uint64_t>(n));
    for (const auto* v : {&k.best, &k.front}) {
      w.put(static_cast<std::uint64_t>(v->size()));
      for (const auto& s : *v) put_screened(w, s);
    }
    for (const auto* o : {&k.over_deadline, &k.over_budget}) {
      w.put(static_cast<std::uint8_t>(o->has_value()));
      if (*o) put_screened(w, **o);
    }
  }
  return w.take();
}

void decode_kept(const std::string& bytes, std::vector<TaskOut>& kept, double& cpu_s, std::vector<double>& thread_cpu) {
  Reader r(bytes);
  cpu_s += r.get<double>();
  for (auto n = r.get<std::uint64_t>(); n > 0; --n) thread_cpu.push_back(r.get<double>());
  for (auto n = r.get<std::uint64_t>(); n > 0; --n) {
    TaskOut k;
    for (std::size_t* c : {&k.knobs_refused, &k.plans, &k.unfit, &k.timed, &k.meeting, &k.better_than_published})
      *c = static_cast<std::size_t>(r.get<std::uint64_t>());
    for (auto* v : {&k.best, &k.front})
      for (auto m = r.get<std::uint64_t>(); m > 0; --m) v->push_back(get_screened(r));
    for (auto* o : {&k.over_deadline, &k.over_budget})
      if (r.get<std::uint8_t>() != 0) *o = get_screened(r);
    kept.push_back(std::move(k));
  }
  TS_ASSERT(r.done(), "plan: a rank's shared screening has trailing bytes");
}

// Spearman's rank correlation (ties share the mean rank).
double spearman_rho(const std::vector<double>& a, const std::vector<double>& b) {
  const std::size_t n = a.size();
  if (n < 2) return 1.0;
  auto ranks = [&](const std::vector<double>& v) {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t i, std::size_t j) { return v[i] < v[j]; });
    std::vector<double> r(n);
    for (std::size_t i = 0; i < n;) {
      std::size_t j = i;
      while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) ++j;
      const double mean = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
      for (std::size_t k = i; k <= j; ++k) r[idx[k]] = mean;
      i = j + 1;
    }
    return r;
  };
  const auto ra = ranks(a), rb = ranks(b);
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / static_cast<double>(n);
  const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / static_cast<double>(n);
  double num = 0, da = 0, db = 0;
  for (std::size_t i = 0; i < n; ++i) {
    num += (ra[i] - ma) * (rb[i] - mb);
    da += (ra[i] - ma) * (ra[i] - ma);
    db += (rb[i] - mb) * (rb[i] - mb);
  }
  return da > 0 && db > 0 ? num / std::sqrt(da * db) : 1.0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool meets(const SearchOptions& o, double cost, double days) {
  return (!o.deadline_days || days <= *o.deadline_days) && (!o.budget_usd || cost <= *o.budget_usd);
}

}  // namespace

std::vector<std::size_t> pareto_front(const std::vector<std::pair<double, double>>& points) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < points.size(); ++i) {
    bool dominated = false;
    for (std::size_t j = 0; j < points.size() && !dominated; ++j)
      dominated = j != i && (dominates(points[j].first, points[j].second, points[i].first, points[i].second) ||
                             (points[j] == points[i] && j < i));
    if (!dominated) out.push_back(i);
  }
  return out;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) { return spearman_rho(a, b); }

SearchResult search(const Scenario& base, const std::string& scenario_file, const SearchOptions& opt) {
  if (opt.objective != "cost" && opt.objective != "time")
    throw UsageError(fmt::format("--objective: '{}' is not cost or time", opt.objective));
  const bool by_cost = opt.objective == "cost";
  const Order order{by_cost};
  SearchResult R;
  R.scenario = base.name;
  R.scenario_file = scenario_file;
  R.objective = opt.objective;
  R.options = opt;
  R.gpus = opt.gpus.empty() ? std::vector<i64>{base.cluster.gpus} : opt.gpus;
  for (i64 g : R.gpus) {
    if (g < 1 || g % base.cluster.gpus_per_node != 0)
      throw UsageError(fmt::format("--gpus: {} is not a positive multiple of the cluster's {} GPUs per node", g,
                                   base.cluster.gpus_per_node));
  }
  {
    auto sorted = R.gpus;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) throw UsageError("--gpus: a GPU count is listed twice");
  }
  const bool gpus_key = std::any_of(R.gpus.begin(), R.gpus.end(), [&](i64 g) { return g != base.cluster.gpus; });

  // --- spaces and estimators -------------------------------------------------------------------
  const auto cost = calibration::load_cost_model(base.hardware, data_dir());
  std::vector<std::unique_ptr<Space>> spaces;
  std::vector<std::unique_ptr<Estimator>> estimators;
  for (i64 g : R.gpus) {
    spaces.push_back(std::make_unique<Space>(base, g, gpus_key));
    // The work limit (core/limits.hpp, docs/limits.md), before anything is enumerated.
    if (const std::uint64_t n = spaces.back()->proposals(); n > kMaxPlanProposals)
      throw UsageError(fmt::format("{}: {} GPUs give {} layouts to propose (factorisations x ep x micro-batch x schedule x vpp); "
                                   "the work limit is {} (docs/limits.md)",
                                   opt.gpus.empty() ? "scenario" : "--gpus", g, n, kMaxPlanProposals));
    estimators.push_back(std::make_unique<Estimator>(*spaces.back(), *cost));
  }
  // The scenario's own plan, when its GPU count is searched.
  std::optional<std::size_t> base_space;
  for (std::size_t s = 0; s < R.gpus.size(); ++s)
    if (R.gpus[s] == base.cluster.gpus) base_space = s;
  if (base_space) {
    Screened p;
    p.space = *base_space;
    p.candidate = spaces[*base_space]->published();
    p.estimate = estimators[*base_space]->estimate(p.candidate);
    p.estimate.phases.clear();
    p.order = ~std::uint64_t{0};
    R.published = p;
  }

  // --- screening ---------------------------------------------------------------------------------
  struct Task {
    std::size_t space;
    std::int32_t tp, pp;
  };
  std::vector<Task> tasks;
  for (std::size_t s = 0; s < spaces.size(); ++s)
    for (const auto& [tp, pp] : spaces[s]->tp_pp_pairs()) tasks.push_back(Task{s, tp, pp});
  // Two passes over the same work, each on `jobs` threads taking the next unit as they finish:
  // the layouts of each (tp, pp) pair (and what the rules refuse), then the plans of every layout
  // in blocks of kBlock layouts (a (tp, pp) pair can hold a seventh of the plans: blocks keep the
  // threads busy to the end). Every unit writes its own output; they are merged in unit order, so
  // the result does not depend on the threads.
  constexpr std::size_t kBlock = 256;
  std::vector<TaskOut> task_outs(tasks.size());
  std::vector<std::vector<Layout>> task_layouts(tasks.size());
  struct Unit {
    std::size_t task, begin, end;
  };
  std::vector<Unit> units;
  std::vector<TaskOut> outs;
  std::atomic<std::size_t> next{0}, done{0}, plans_done{0};
  std::size_t unit_count = 0;
  std::mutex progress_mu;
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  auto last_report = Clock::now();
  std::size_t last_tenth = 0;
  const auto report = [&](bool force) {
    if (!opt.progress || !opt.on_progress) return;
    std::lock_guard lk(progress_mu);
    const auto now = Clock::now();
    const std::size_t d = done.load(), n = unit_count;
    const std::size_t tenth = n ? d * 10 / n : 10;
    if (!force && (opt.progress_tty ? now - last_report < std::chrono::milliseconds(200) : tenth <= last_tenth)) return;
    last_report = now;
    last_tenth = tenth;
    const double el = std::chrono::duration<double>(now - t0).count();
    opt.on_progress(fmt::format("screening: {}/{} blocks of layouts, {} plans, {:.0f} plans/s", d, n, plans_done.load(),
                                el > 0 ? static_cast<double>(plans_done.load()) / el : 0.0));
  };
  std::vector<double> thread_cpu(std::max(1u, opt.jobs), 0.0);
  const auto parallel = [&](std::size_t n, const auto& body) {
    next = 0;
    const auto run = [&](unsigned self) {
      timespec a{}, b{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
      struct Charge {
        timespec& a;
        timespec& b;
        double& into;
        ~Charge() {
          clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
          into += static_cast<double>(b.tv_sec - a.tv_sec) + 1e-9 * static_cast<double>(b.tv_nsec - a.tv_nsec);
        }
      } charge{a, b, thread_cpu[self]};
      std::vector<std::unique_ptr<Estimator::Worker>> ws;
      for (const auto& e : estimators) ws.push_back(std::make_unique<Estimator::Worker>(*e));
      for (;;) {
        if (opt.stop && opt.stop->load()) return;
        const std::size_t i = next.fetch_add(1);
        if (i >= n) return;
        body(i, ws, self);
      }
    };
    const unsigned jobs = std::max(1u, opt.jobs);
    std::vector<std::thread> threads;
    for (unsigned j = 1; j < jobs; ++j) threads.emplace_back(run, j);
    run(0u);
    for (auto& th : threads) th.join();
  };
  // The (tp, pp) pairs, largest first (by the layouts they propose), so that the last ones to
  // finish are small; each writes its own output, merged in pair order.
  std::vector<std::size_t> by_size(tasks.size());
  {
    std::vector<std::uint64_t> size(tasks.size());
    for (std::size_t t = 0; t < tasks.size(); ++t) size[t] = spaces[tasks[t].space]->proposals(tasks[t].tp, tasks[t].pp);
    std::iota(by_size.begin(), by_size.end(), std::size_t{0});
    std::stable_sort(by_size.begin(), by_size.end(), [&](std::size_t a, std::size_t b) { return size[a] > size[b]; });
  }
  parallel(tasks.size(), [&](std::size_t i, std::vector<std::unique_ptr<Estimator::Worker>>&, unsigned) {
    const std::size_t t = by_size[i];
    TaskOut& out = task_outs[t];
    task_layouts[t] = spaces[tasks[t].space]->layouts(tasks[t].tp, tasks[t].pp, out.rejected, out.layouts_refused);
    out.layouts = task_layouts[t].size();
  });
  // Blocks taken round-robin over the pairs: threads working side by side then mostly need
  // different layer shapes (a shape two threads need at once is built by one, the other waits).
  for (std::size_t b = 0;; b += kBlock) {
    bool any = false;
    for (std::size_t t = 0; t < tasks.size(); ++t)
      if (b < task_layouts[t].size()) {
        units.push_back(Unit{t, b, std::min(b + kBlock, task_layouts[t].size())});
        any = true;
      }
    if (!any) break;
  }
  // Under mpirun (sweep/mpi.hpp) each rank screens every size-th block (round-robin, like the
  // threads); the kept plans and counts are then shared (below), so every rank merges the same
  // result and picks the same re-run set.
  const sweep::Ranks& rk = sweep::ranks();
  std::vector<std::size_t> mine;
  for (std::size_t u = static_cast<std::size_t>(rk.rank); u < units.size(); u += static_cast<std::size_t>(rk.size))
    mine.push_back(u);
  unit_count = mine.size();
  outs.resize(units.size());
  // Counts per unit; the kept plans per thread (the best under a total order, the front, the best
  // over each constraint: the same whichever thread saw which plan).
  std::vector<TaskOut> kept(std::max(1u, opt.jobs));
  parallel(mine.size(), [&](std::size_t mi, std::vector<std::unique_ptr<Estimator::Worker>>& ws, unsigned self) {
    const std::size_t u = mine[mi];
    const std::size_t t = units[u].task;
    const Task& task = tasks[t];
    TaskOut& out = outs[u];
    TaskOut& keep_out = kept[self];
    const Space& space = *spaces[task.space];
    const std::vector<Layout>& layouts = task_layouts[t];
    for (std::size_t li = units[u].begin; li < units[u].end; ++li) {
      const Layout& l = layouts[li];
      const std::vector<int>& codes = space.knobs(l);
      out.knobs_refused += static_cast<std::size_t>(Knobs::kCount) - codes.size();
        ws[task.space]->screen(l, codes, [&](int code, const PlanEstimate& e) {
          ++out.plans;
          if (!e.fits) {
            ++out.unfit;
            return;
          }
          ++out.timed;
          // A Screened is built only for a plan that is kept (its estimate without phases).
          const std::uint64_t ord = (static_cast<std::uint64_t>(task.space) << 56) | (static_cast<std::uint64_t>(t) << 36) |
                                    (static_cast<std::uint64_t>(li) << 10) | static_cast<std::uint64_t>(code);
          auto make = [&] {
            Screened s;
            s.space = task.space;
            s.candidate.layout = l;
            s.candidate.knobs = Knobs::from_code(code);
            s.estimate.fits = e.fits;
            s.estimate.unfit_phase = e.unfit_phase;
            s.estimate.peak_bytes = e.peak_bytes;
            s.estimate.capacity = e.capacity;
            s.estimate.step_s = e.step_s;
            s.estimate.days = e.days;
            s.estimate.gpu_hours = e.gpu_hours;
            s.estimate.cost_usd = e.cost_usd;
            s.order = ord;
            return s;
          };
          const auto before = [&](const Screened& y) {  // this plan before y under `order`
            const double a1 = by_cost ? e.cost_usd : e.days, b1 = by_cost ? y.estimate.cost_usd : y.estimate.days;
            if (a1 != b1) return a1 < b1;
            const double a2 = by_cost ? e.days : e.cost_usd, b2 = by_cost ? y.estimate.days : y.estimate.cost_usd;
            if (a2 != b2) return a2 < b2;
            return ord < y.order;
          };
          // The Pareto front is over every plan that fits (the trade-off the constraints cut).
          bool on_front = true;
          for (const auto& f : keep_out.front)
            if (dominates(f.estimate.cost_usd, f.estimate.days, e.cost_usd, e.days) ||
                (f.estimate.cost_usd == e.cost_usd && f.estimate.days == e.days)) {
              on_front = false;
              break;
            }
          if (on_front) add_front(keep_out.front, make());
          if (!meets(opt, e.cost_usd, e.days)) {
            if (opt.deadline_days && e.days > *opt.deadline_days && (!keep_out.over_deadline || before(*keep_out.over_deadline)))
              keep_out.over_deadline = make();
            if (opt.budget_usd && e.cost_usd > *opt.budget_usd && (!keep_out.over_budget || before(*keep_out.over_budget)))
              keep_out.over_budget = make();
            return;
          }
          ++out.meeting;
          if (R.published && before(*R.published)) ++out.better_than_published;
          const bool keep = keep_out.best.size() < kKeep || before(keep_out.best.front());
          if (!keep) return;
          const Screened s = make();
          if (keep_out.best.size() < kKeep) {
            keep_out.best.push_back(s);
            std::push_heap(keep_out.best.begin(), keep_out.best.end(), order);
          } else if (keep) {
            std::pop_heap(keep_out.best.begin(), keep_out.best.end(), order);
            keep_out.best.back() = s;
            std::push_heap(keep_out.best.begin(), keep_out.best.end(), order);
          }
        });
    }
    plans_done += out.plans;
    ++done;
    report(false);
  });
  report(true);
  sweep::all_ranks_agree([&] {
    if (opt.stop && opt.stop->load()) throw std::runtime_error("plan search interrupted");
  });
  R.stats.cpu_s = cpu_seconds() - c0;
  R.stats.thread_cpu_s = thread_cpu;
  if (rk.distributed()) {
    // Every rank's counts and kept plans to every rank: the merge below then sees what one
    // process would have (sums, and the kept plans under a total order).
    TaskOut counts;
    for (std::size_t u : mine) {
      add_counts(counts, outs[u]);
      outs[u] = TaskOut{};
    }
    kept.push_back(std::move(counts));
    const std::vector<std::string> shared = sweep::all_ranks_share(encode_kept(kept, R.stats.cpu_s, thread_cpu));
    kept.clear();
    R.stats.cpu_s = 0;
    R.stats.thread_cpu_s.clear();
    for (const std::string& bytes : shared) decode_kept(bytes, kept, R.stats.cpu_s, R.stats.thread_cpu_s);
    // The counts onto the first unit's (sums: the order does not matter); no units, no counts.
    if (!outs.empty())
      for (const auto& k : kept) add_counts(outs.front(), k);
  }
  R.stats.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // Merge in task order: the result does not depend on the threads.
  std::vector<Screened> best;
  std::optional<Screened> over_deadline, over_budget;
  for (auto& o : task_outs) {
    R.stats.layouts += o.layouts;
    R.stats.layouts_refused += o.layouts_refused;
    merge_rejections(R.stats.rejected, o.rejected);
  }
  for (auto& o : outs) {
    R.stats.knobs_refused += o.knobs_refused;
    R.stats.plans += o.plans;
    R.stats.unfit += o.unfit;
    R.stats.timed += o.timed;
    R.stats.meeting += o.meeting;
    best.insert(best.end(), o.best.begin(), o.best.end());
    for (const auto& f : o.front) add_front(R.screened_front, f);
    if (o.over_deadline && (!over_deadline || order(*o.over_deadline, *over_deadline))) over_deadline = o.over_deadline;
    if (o.over_budget && (!over_budget || order(*o.over_budget, *over_budget))) over_budget = o.over_budget;
    R.published_screen_rank += o.better_than_published;
  }
  for (auto& o : kept) {
    best.insert(best.end(), o.best.begin(), o.best.end());
    for (const auto& f : o.front) add_front(R.screened_front, f);
    if (o.over_deadline && (!over_deadline || order(*o.over_deadline, *over_deadline))) over_deadline = o.over_deadline;
    if (o.over_budget && (!over_budget || order(*o.over_budget, *over_budget))) over_budget = o.over_budget;
  }
  std::sort(best.begin(), best.end(), order);
  if (best.size() > kKeep) best.resize(kKeep);
  std::sort(R.screened_front.begin(), R.screened_front.end(), order);
  if (R.published) {
    if (R.published->estimate.fits && meets(opt, R.published->estimate.cost_usd, R.published->estimate.days))
      R.published_screen_rank += 1;
    else R.published_screen_rank = 0;
  }
  R.screened_best = best;
  for (std::size_t i = 0; i < best.size() && i < std::max<std::size_t>(opt.top, 10); ++i)
    R.screened_best_plans.push_back(describe(*spaces[best[i].space], best[i].candidate));
  for (const auto& f : R.screened_front) R.screened_front_plans.push_back(describe(*spaces[f.space], f.candidate));
  if (!best.empty()) {
    const double b = objective(best.front().estimate, by_cost);
    R.within_margin = static_cast<std::size_t>(
        std::count_if(best.begin(), best.end(), [&](const Screened& s) { return objective(s.estimate, by_cost) <= b * (1 + opt.margin); }));
  }
  if (opt.screen_only) return R;

  // --- the re-run set ------------------------------------------------------------------------
  std::vector<Rerun> reruns;
  const auto same = [](const Screened& a, const Screened& b) {
    return a.space == b.space && a.candidate.layout == b.candidate.layout && a.candidate.knobs == b.candidate.knobs &&
           a.candidate.published == b.candidate.published;
  };
  const auto take = [&](const Screened& s, const std::string& why) {
    for (auto& r : reruns)
      if (same(r.screened, s)) return;
    Rerun r;
    r.screened = s;
    r.why = why;
    reruns.push_back(std::move(r));
  };
  if (!best.empty()) {
    const double b = objective(best.front().estimate, by_cost);
    std::vector<const Screened*> within;
    for (const auto& s : best)
      if (objective(s.estimate, by_cost) <= b * (1 + opt.margin)) within.push_back(&s);
    // The best `min_rerun`, then the rest of the margin: the best plan of each layout first.
    for (std::size_t i = 0; i < best.size() && i < opt.min_rerun && reruns.size() < opt.max_rerun; ++i) take(best[i], "best");
    std::vector<bool> used(within.size(), false);
    while (reruns.size() < opt.max_rerun) {
      std::vector<Layout> round;
      bool any = false;
      for (std::size_t i = 0; i < within.size() && reruns.size() < opt.max_rerun; ++i) {
        if (used[i]) continue;
        const Layout& l = within[i]->candidate.layout;
        if (std::find(round.begin(), round.end(), l) != round.end()) continue;
        round.push_back(l);
        used[i] = true;
        any = true;
        take(*within[i], "within margin");
      }
      if (!any) break;
    }
  }
  for (const auto& f : R.screened_front) take(f, "Pareto front");
  if (R.published) take(*R.published, "published");
  {
    std::vector<Screened> sorted;
    for (const auto& r : reruns) sorted.push_back(r.screened);
    std::stable_sort(sorted.begin(), sorted.end(), order);
    for (auto& r : reruns)
      for (std::size_t i = 0; i < sorted.size(); ++i)
        if (same(sorted[i], r.screened)) r.estimate_rank = i + 1;
  }

  // --- event level, through the sweep machinery -------------------------------------------------
  const auto e0 = Clock::now();
  std::vector<std::vector<std::string>> settings;
  for (auto& r : reruns) {
    r.overrides = spaces[r.screened.space]->overrides(r.screened.candidate);
    r.plan = describe(*spaces[r.screened.space], r.screened.candidate);
    r.gpus = R.gpus[r.screened.space];
    settings.push_back(r.overrides);
    if (r.why == "best") ++R.rerun_best;
    else if (r.why == "within margin") ++R.rerun_margin;
    else if (r.why == "Pareto front") ++R.rerun_front;
  }
  if (!reruns.empty()) {
    const sweep::SweepSpec spec = sweep_spec(scenario_file, base, "plan-" + base.name, spaces.front()->sweep_keys(), settings);
    // Under mpirun (sweep/mpi.hpp) every rank has screened alike (the screening is
    // deterministic); the re-runs are shared out by run_sweep: rank 0 holds the store and hands
    // out the points, the other ranks evaluate and are done when the points are.
    std::optional<sweep::Store> store;
    sweep::all_ranks_agree([&] {
      if (rk.root()) store.emplace(opt.db.empty() ? std::string(":memory:") : opt.db);
    });
    sweep::RunOptions ro;
    ro.jobs = std::max(1u, opt.jobs);
    ro.progress = opt.progress && rk.root();
    ro.progress_tty = opt.progress_tty;
    ro.stop = opt.stop;
    const sweep::RunSummary sum = sweep::run_sweep(spec, store ? &*store : nullptr, ro);
    if (!rk.root()) {
      R.worker_only = true;
      return R;
    }
    R.sweep_summary = sum.line();
    if (sum.interrupted) throw std::runtime_error("plan search interrupted; event-level results stored so far are kept in --db");
    const auto points = sweep::all_points(spec);
    const auto rows = store->rows(points);
    auto metric = [](const sweep::PointResult& pr, const char* name) -> double {
      for (std::size_t m = 0; m < sweep::kMetricCount; ++m)
        if (std::string(sweep::kMetricColumns[m]) == name) return pr.metrics[m].value_or(0.0);
      return 0.0;
    };
    for (const auto& row : rows) {
      Rerun& r = reruns[row.index];
      r.status = row.result.status;
      r.reason = row.result.reason;
      if (r.status != "ok") continue;
      r.cost_usd = metric(row.result, "cost_usd");
      r.days = metric(row.result, "wall_clock_days");
      r.gpu_hours = metric(row.result, "gpu_hours");
      r.step_s = metric(row.result, "step_time_s");
      r.mfu = metric(row.result, "mfu");
      r.peak_gib = metric(row.result, "peak_memory_gib");
      r.meets = meets(opt, r.cost_usd, r.days);
      if (!row.result.metrics_json.empty()) {
        const auto j = nlohmann::json::parse(row.result.metrics_json);
        if (j.contains("phases") && !j["phases"].empty() && j["phases"][0].contains("breakdown_s")) {
          const auto& b = j["phases"][0]["breakdown_s"];
          const auto v = [&](const char* k) { return b.contains(k) ? b[k].get<double>() : 0.0; };
          r.compute_s = v("compute") + v("recompute");
          r.exposed_comm_s = v("exposed_tp") + v("exposed_ep") + v("exposed_cp") + v("exposed_pp") + v("exposed_dp");
          r.bubble_s = v("schedule_bubble") + v("imbalance");
          r.optimizer_s = v("optimizer");
        }
      }
    }
    if (sum.errors > 0) R.notes.push_back(fmt::format("{} re-run plan(s) ended with status 'error' (see the reasons)", sum.errors));
  }
  R.event_s = std::chrono::duration<double>(Clock::now() - e0).count();

  // --- ranking, front, fidelity ----------------------------------------------------------------
  const auto event_better = [&](const Rerun& x, const Rerun& y) {
    const double a1 = by_cost ? x.cost_usd : x.days, b1 = by_cost ? y.cost_usd : y.days;
    if (a1 != b1) return a1 < b1;
    const double a2 = by_cost ? x.days : x.cost_usd, b2 = by_cost ? y.days : y.cost_usd;
    if (a2 != b2) return a2 < b2;
    return x.estimate_rank < y.estimate_rank;
  };
  std::stable_sort(reruns.begin(), reruns.end(), [&](const Rerun& x, const Rerun& y) {
    const bool rx = x.status == "ok" && x.meets, ry = y.status == "ok" && y.meets;
    if (rx != ry) return rx;
    if (rx) return event_better(x, y);
    return x.estimate_rank < y.estimate_rank;
  });
  std::size_t rank = 0;
  for (auto& r : reruns)
    if (r.status == "ok" && r.meets) r.event_rank = ++rank;
  {
    std::vector<std::pair<double, double>> pts;
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < reruns.size(); ++i)
      if (reruns[i].status == "ok") {
        pts.emplace_back(reruns[i].cost_usd, reruns[i].days);
        idx.push_back(i);
      }
    for (std::size_t k : pareto_front(pts)) R.front.push_back(idx[k]);
  }
  {
    std::vector<double> est, ev, err, step_err;
    const Rerun* screened_first = nullptr;
    for (const auto& r : reruns) {
      if (r.status != "ok") continue;
      const double e = objective(r.screened.estimate, by_cost), v = by_cost ? r.cost_usd : r.days;
      est.push_back(e);
      ev.push_back(v);
      if (v > 0) err.push_back(std::abs(e / v - 1));
      if (r.step_s > 0) step_err.push_back(std::abs(r.screened.estimate.step_s / r.step_s - 1));
      if (!screened_first || r.estimate_rank < screened_first->estimate_rank) screened_first = &r;
    }
    Fidelity& f = R.fidelity;
    f.compared = est.size();
    f.spearman = spearman_rho(est, ev);
    f.median_abs_error = median(err);
    f.max_abs_error = err.empty() ? 0 : *std::max_element(err.begin(), err.end());
    f.median_abs_step_error = median(step_err);
    f.max_abs_step_error = step_err.empty() ? 0 : *std::max_element(step_err.begin(), step_err.end());
    const Rerun* event_first = nullptr;
    for (const auto& r : reruns)
      if (r.status == "ok" && (!event_first || event_better(r, *event_first))) event_first = &r;
    if (screened_first && event_first) {
      f.screened_first_is_first = screened_first == event_first;
      const double a = by_cost ? screened_first->cost_usd : screened_first->days;
      const double b = by_cost ? event_first->cost_usd : event_first->days;
      f.regret = b > 0 ? a / b - 1 : 0;
    }
  }

  // --- why the best alternatives lost ------------------------------------------------------------
  const Rerun* winner = nullptr;
  for (const auto& r : reruns)
    if (r.event_rank == 1) winner = &r;
  if (winner && !winner->screened.candidate.published) {
    const Space& space = *spaces[winner->screened.space];
    const Estimator& est = *estimators[winner->screened.space];
    const Candidate w = winner->screened.candidate;
    std::vector<std::pair<std::string, Candidate>> alts;
    const auto lighter = [](Recompute r) {
      switch (r) {
        case Recompute::Full: return std::vector<Recompute>{Recompute::DeepSeek, Recompute::Selective, Recompute::None};
        case Recompute::DeepSeek: return std::vector<Recompute>{Recompute::Selective, Recompute::None};
        case Recompute::Selective: return std::vector<Recompute>{Recompute::None};
        case Recompute::None: return std::vector<Recompute>{};
      }
      return std::vector<Recompute>{};
    };
    for (Recompute rc : lighter(w.knobs.recompute)) {
      Candidate c = w;
      c.knobs.recompute = rc;
      alts.push_back({fmt::format("recompute = \"{}\" instead of \"{}\"", recompute_name(rc), recompute_name(w.knobs.recompute)), c});
    }
    for (int z = w.knobs.zero - 1; z >= 0; --z) {
      Candidate c = w;
      c.knobs.zero = z;
      if (z == 0) c.knobs.overlap_param_gather = false;
      if (z <= 1 && w.knobs.zero >= 2) c.knobs.overlap_grad_reduce = false;
      alts.push_back({fmt::format("ZeRO {} instead of {}", z, w.knobs.zero), c});
    }
    {
      Candidate c = w;
      c.layout.micro_batch *= 2;
      alts.push_back({fmt::format("micro-batch {} instead of {}", c.layout.micro_batch, w.layout.micro_batch), c});
    }
    if (w.layout.pp % 2 == 0) {
      Candidate c = w;
      c.layout.pp /= 2;
      c.layout.dp *= 2;
      alts.push_back({fmt::format("pp {} with dp {} instead of pp {} with dp {}", c.layout.pp, c.layout.dp, w.layout.pp, w.layout.dp), c});
    }
    if (w.layout.ep % 2 == 0) {
      Candidate c = w;
      c.layout.ep /= 2;
      alts.push_back({fmt::format("ep {} instead of {}", c.layout.ep, w.layout.ep), c});
    }
    if (w.knobs.sequence_parallel) {
      Candidate c = w;
      c.knobs.sequence_parallel = false;
      c.knobs.tp_comm_overlap = false;
      alts.push_back({"no sequence parallelism", c});
    }
    const double wv = objective(winner->screened.estimate, by_cost);
    for (const auto& [what, c] : alts) {
      if (space.problem(c)) continue;  // not a valid plan: never evaluated
      const PlanEstimate e = est.estimate(c);
      if (e.fits) continue;
      const double v = objective(e, by_cost);
      const auto& phase = space.scenario().phases[static_cast<std::size_t>(e.unfit_phase)];
      std::string gain = v < wv ? fmt::format("it would be {:.1f}% {} by the estimate: memory is what excludes it", 100 * (1 - v / wv),
                                              by_cost ? "cheaper" : "faster")
                                : fmt::format("it would not win anyway ({:+.1f}% by the estimate)", 100 * (v / wv - 1));
      Exclusion x;
      x.constraint = "memory";
      x.plan = describe(space, c);
      x.text = fmt::format("{}: needs {:.1f} GiB per GPU in phase {} ({:.1f} GiB available); {}", what,
                           e.phases[static_cast<std::size_t>(e.unfit_phase)].peak_bytes / kGiB, phase.training.name,
                           e.capacity / kGiB, gain);
      R.exclusions.push_back(std::move(x));
    }
  }
  if (over_deadline) {
    Exclusion x;
    x.constraint = "deadline";
    x.plan = describe(*spaces[over_deadline->space], over_deadline->candidate);
    x.text = fmt::format("the best plan by {} without the deadline ({} GPUs: {}) would take {:.2f} days (deadline {} days) for {} "
                         "(estimate)",
                         opt.objective, R.gpus[over_deadline->space], x.plan, over_deadline->estimate.days, *opt.deadline_days,
                         format_usd(over_deadline->estimate.cost_usd));
    R.exclusions.push_back(std::move(x));
  }
  if (over_budget) {
    Exclusion x;
    x.constraint = "budget";
    x.plan = describe(*spaces[over_budget->space], over_budget->candidate);
    x.text = fmt::format("the best plan by {} without the budget ({} GPUs: {}) would cost ${:.0f} (budget ${:.0f}) in {:.1f} days "
                         "(estimate)",
                         opt.objective, R.gpus[over_budget->space], x.plan, over_budget->estimate.cost_usd, *opt.budget_usd,
                         over_budget->estimate.days);
    R.exclusions.push_back(std::move(x));
  }
  R.reruns = std::move(reruns);
  return R;
}

}  // namespace trainsim::plan
