#include "sweep/runner.hpp"

#include "core/format.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "core/table.hpp"
#include "model/memory.hpp"
#include "report/run_report.hpp"
#include "sweep/identity.hpp"
#include "sweep/mpi.hpp"

namespace trainsim::sweep {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
using Clock = std::chrono::steady_clock;

std::size_t metric_index(const char* name) {
  for (std::size_t i = 0; i < kMetricCount; ++i)
    if (std::strcmp(kMetricColumns[i], name) == 0) return i;
  TS_ASSERT(false, fmt::format("no metric column {}", name));
  return 0;
}

std::optional<double> metric(const PointResult& r, const char* name) { return r.metrics[metric_index(name)]; }

std::string clock_text(double s) {
  if (!(s >= 0) || s > 360000) return "--:--";
  const auto t = static_cast<long long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

// The progress bar: `[#####.....] 37/120 points  12.3 pts/s  ETA 0:07` on stderr.
class Progress {
 public:
  Progress(std::size_t total, bool tty, bool on) : total_(total), tty_(tty), on_(on && total > 0), start_(Clock::now()) {}
  void update(std::size_t done, bool force = false) {
    if (!on_) return;
    const auto now = Clock::now();
    if (tty_) {
      if (!force && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      std::fprintf(stderr, "\r%s", bar(done, now).c_str());
      std::fflush(stderr);
      drawn_ = true;
    } else {
      const std::size_t tenth = done * 10 / total_;
      if (tenth <= printed_tenth_ && !(force && done == total_ && printed_tenth_ < 10)) return;
      printed_tenth_ = tenth;
      std::fprintf(stderr, "%s\n", bar(done, now).c_str());
    }
  }
  void finish() {
    if (on_ && tty_ && drawn_) std::fputc('\n', stderr);
  }

 private:
  std::string bar(std::size_t done, Clock::time_point now) const {
    const double el = std::chrono::duration<double>(now - start_).count();
    const double rate = el > 0 ? static_cast<double>(done) / el : 0;
    const std::size_t width = 20, fill = done * width / total_;
    std::string b = "[" + std::string(fill, '#') + std::string(width - fill, '.') + "]";
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1;
    return fmt::format("{} {}/{} points  {:.1f} pts/s  ETA {}", b, done, total_, rate, done == total_ ? "0:00" : clock_text(eta));
  }
  std::size_t total_;
  bool tty_, on_;
  Clock::time_point start_, last_{};
  std::size_t printed_tenth_ = 0;
  bool drawn_ = false;
};

std::string number_text(double v) { return fmt::format("{}", v); }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The one money formatter every output uses (core/format.hpp).
std::string money(double usd) { return format_usd(usd); }

}  // namespace

namespace {

// One evaluation with the base keys `dropped` left out. Throws ConfigError for an invalid plan.
PointResult evaluate_once(const SweepSpec& spec, const Point& p, const std::vector<std::string>& dropped) {
  PointResult r;
  r.index = p.index;
  r.id = p.id;
  const Scenario sc = load_scenario(spec.scenario, p.sets(), dropped);
  const auto cost = calibration::load_cost_model(sc.hardware, data_dir());
  const MemoryReport mem = memory_as_run(sc, *cost);
  if (!mem.fits) {
    std::size_t rank = 0;
    for (std::size_t i = 0; i < mem.ranks.size(); ++i)
      if (mem.ranks[i].total() > mem.ranks[rank].total()) rank = i;
    r.status = "infeasible";
    r.reason = fmt::format("out of memory: {:.1f} GiB per GPU needed (pipeline rank {}), {:.1f} GiB available",
                           mem.peak / kGiB, rank, mem.capacity / kGiB);
    r.metrics[metric_index("peak_memory_gib")] = mem.peak / kGiB;
    r.metrics[metric_index("fits_memory")] = 0;
    return r;
  }
  const RunReport rep = build_run_report(sc, *cost);
  nlohmann::json j = run_json(rep);
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    const auto it = j.find(kMetricColumns[m]);
    if (it == j.end() || it->is_null()) continue;
    if (it->is_boolean()) r.metrics[m] = it->get<bool>() ? 1.0 : 0.0;
    else if (it->is_number()) r.metrics[m] = it->get<double>();
  }
  j.erase("assumptions");  // the base scenario's, the same on every row
  r.metrics_json = j.dump();
  if (metric(r, "fits_memory").value_or(1) == 0) {
    r.status = "infeasible";
    r.reason = fmt::format("out of memory: {:.1f} GiB per GPU needed", metric(r, "peak_memory_gib").value_or(0));
    return r;
  }
  r.status = "ok";
  return r;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

PointResult evaluate_point(const SweepSpec& spec, const Point& p) {
  // Base keys the point makes invalid are dropped one error at a time (keys_to_drop, the rule
  // of docs/sweep.md) until the point is valid or invalid at a key the rule keeps.
  std::vector<std::string> dropped;
  PointResult r;
  for (;;) {
    try {
      r = evaluate_once(spec, p, dropped);
      break;
    } catch (const ConfigError& e) {
      const auto more = keys_to_drop(spec, p, e, dropped);
      if (!more.empty()) {
        dropped.insert(dropped.end(), more.begin(), more.end());
        continue;
      }
      r = PointResult{};
      r.status = "infeasible";
      r.reason = std::string("invalid plan: ") + e.what();
      break;
    } catch (const std::exception& e) {
      r = PointResult{};
      r.status = "error";
      r.reason = e.what();
      break;
    }
  }
  r.index = p.index;
  r.id = p.id;
  r.dropped = joined(dropped);
  if (r.status != "ok" && !dropped.empty()) r.reason += "; dropped from the base: " + r.dropped;
  return r;
}

std::vector<Point> all_points(const SweepSpec& spec) {
  std::vector<Point> pts;
  const std::size_t n = spec.size();
  pts.reserve(n);
  for (std::size_t i = 0; i < n; ++i) pts.push_back(point_at(spec, i));
  return pts;
}

std::string RunSummary::dropped_line() const {
  if (dropped_keys.empty()) return "";
  std::string s = "base keys dropped where a point made them invalid (docs/sweep.md; the dropped column): ";
  for (std::size_t i = 0; i < dropped_keys.size(); ++i)
    s += fmt::format("{}{} ({} point{})", i ? ", " : "", dropped_keys[i].first, dropped_keys[i].second,
                     dropped_keys[i].second == 1 ? "" : "s");
  return s;
}

std::string RunSummary::line() const {
  std::string s = fmt::format("{} points: evaluated {}, reused {}; ok {}, infeasible {}, error {}; {:.2f} s", points,
                              evaluated - stored_by_others, reused + stored_by_others, ok, infeasible, errors, seconds);
  if (evaluated > stored_by_others && seconds > 0)
    s += fmt::format(" ({:.1f} points/s)", static_cast<double>(evaluated - stored_by_others) / seconds);
  if (remaining > 0) s += fmt::format("; {} not evaluated yet{}", remaining, interrupted ? " (interrupted: rerun to resume)" : " (rerun to continue)");
  return s;
}

namespace {

// The summary's counts over every stored point of the sweep (rank 0).
void count_stored(const SweepSpec& spec, Store& store, const std::vector<Point>& points, const RunOptions& opt,
                  RunSummary& sum) {
  auto rows = store.rows(points);
  for (const auto& row : rows) {
    if (row.result.status == "ok") ++sum.ok;
    else if (row.result.status == "infeasible") ++sum.infeasible;
    else ++sum.errors;
  }
  // Points evaluated this run as 'error' count as remaining too (they are retried).
  sum.remaining = sum.points - sum.ok - sum.infeasible;
  for (const auto& row : rows) {
    const std::string& d = row.result.dropped;
    for (std::size_t pos = 0; pos < d.size();) {
      const auto comma = d.find(", ", pos);
      const std::string key = d.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      auto it = std::find_if(sum.dropped_keys.begin(), sum.dropped_keys.end(), [&](const auto& kv) { return kv.first == key; });
      if (it == sum.dropped_keys.end()) sum.dropped_keys.emplace_back(key, 1);
      else ++it->second;
      pos = comma == std::string::npos ? d.size() : comma + 2;
    }
  }
  if (opt.share_rows) sum.rows = std::move(rows);
  (void)spec;
}

RunSummary run_local(const SweepSpec& spec, Store& store, const RunOptions& opt) {
  const auto t0 = Clock::now();
  const std::vector<Point> points = all_points(spec);
  store.ensure_key_columns(spec.keys);

  RunSummary sum;
  sum.points = points.size();
  std::vector<const Point*> todo;
  {
    const auto have = store.statuses();
    for (const auto& p : points) {
      auto it = have.find(p.id);
      const bool done = it != have.end() && (it->second == "ok" || it->second == "infeasible");
      if (done && !opt.fresh) ++sum.reused;
      else todo.push_back(&p);
    }
  }
  if (opt.max_points && todo.size() > *opt.max_points) todo.resize(*opt.max_points);
  const std::size_t n = todo.size();
  const auto stopped = [&] { return opt.stop && opt.stop->load(); };

  Progress bar(n, opt.progress_tty, opt.progress);
  std::size_t written = 0;
  // One transaction per point (sweep/store.hpp): another sweep on the same file interleaves
  // its points with ours, and an interrupted run keeps every point stored so far.
  auto store_one = [&](const PointResult& r) {
    if (!store.put(spec, *todo[written], r, opt.fresh)) ++sum.stored_by_others;
    ++written;
    bar.update(written);
  };

  if (opt.jobs <= 1) {
    for (std::size_t i = 0; i < n && !stopped(); ++i) store_one(evaluate_point(spec, *todo[i]));
  } else {
    // Workers take points in index order; the main thread stores the results in that order.
    std::mutex mu;
    std::condition_variable cv_main, cv_work;
    std::vector<std::optional<PointResult>> slots(n);
    std::size_t next = 0, consumed = 0;
    const std::size_t window = 64 * opt.jobs;  // results held at most
    {
      std::vector<std::jthread> workers;
      for (unsigned w = 0; w < opt.jobs; ++w)
        workers.emplace_back([&](std::stop_token st) {
          for (;;) {
            std::size_t i = 0;
            {
              std::unique_lock lk(mu);
              cv_work.wait(lk, [&] { return st.stop_requested() || stopped() || next >= n || next < consumed + window; });
              if (st.stop_requested() || stopped() || next >= n) return;
              i = next++;
            }
            PointResult r = evaluate_point(spec, *todo[i]);
            {
              std::lock_guard lk(mu);
              slots[i] = std::move(r);
            }
            cv_main.notify_one();
          }
        });
      try {
        while (consumed < n) {
          std::optional<PointResult> r;
          {
            std::unique_lock lk(mu);
            cv_main.wait_for(lk, std::chrono::milliseconds(100), [&] { return slots[consumed].has_value(); });
            if (!slots[consumed]) {
              if (stopped()) break;
              continue;
            }
            r = std::move(slots[consumed]);
            slots[consumed].reset();
            ++consumed;
          }
          cv_work.notify_all();
          store_one(*r);
        }
      } catch (...) {
        for (auto& w : workers) w.request_stop();
        cv_work.notify_all();
        throw;
      }
      for (auto& w : workers) w.request_stop();
      cv_work.notify_all();
    }  // joins
  }
  bar.update(written, true);
  bar.finish();

  sum.evaluated = written;
  sum.interrupted = stopped() && written < n;
  count_stored(spec, store, points, opt, sum);
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return sum;
}

// ---- Many processes (sweep/mpi.hpp) ----------------------------------------------------------
//
// Messages (bytes, MPI_COMM_WORLD), rank 0 <-> each other rank w:
//   w -> 0  kHello  u64 window   how many points w keeps in flight (2 per thread)
//   0 -> w  kWork   u64 index    evaluate this point (at most `window` unanswered at once)
//   w -> 0  kResult PointResult  one finished point
//   w -> 0  kFail   -            w failed outside evaluate_point (it rethrows at the end)
//   0 -> w  kStop   -            no more work: finish what you hold, send it, then kBye
//   w -> 0  kBye    -            w sends nothing more
// Every kWork is followed by kStop, every kHello by kBye, so no message is left unreceived.
// Then every rank meets in detail::agree (a failure anywhere is thrown everywhere), and rank 0
// broadcasts the summary (and the rows, with share_rows).
enum Tag : int { kHello = 1, kWork = 2, kResult = 3, kFail = 4, kStop = 5, kBye = 6 };

// Plain bytes of numbers and strings (every rank runs the same build: checked by fingerprint).
struct Writer {
  std::string b;
  void u64(std::uint64_t v) { b.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void f64(double v) {
    std::uint64_t u = 0;
    std::memcpy(&u, &v, sizeof u);
    u64(u);
  }
  void str(const std::string& s) {
    u64(s.size());
    b += s;
  }
};

struct Reader {
  const std::string& b;
  std::size_t pos = 0;
  std::uint64_t u64() {
    TS_ASSERT(pos + 8 <= b.size(), "truncated sweep message");
    std::uint64_t v = 0;
    std::memcpy(&v, b.data() + pos, sizeof v);
    pos += 8;
    return v;
  }
  double f64() {
    const std::uint64_t u = u64();
    double v = 0;
    std::memcpy(&v, &u, sizeof v);
    return v;
  }
  std::string str() {
    const std::uint64_t n = u64();
    TS_ASSERT(n <= b.size() - pos, "truncated sweep message");
    std::string s = b.substr(pos, n);
    pos += n;
    return s;
  }
};

void put_result(Writer& w, const PointResult& r) {
  w.u64(r.index);
  w.str(r.id);
  w.str(r.status);
  w.str(r.reason);
  for (const auto& m : r.metrics) {
    w.u64(m ? 1 : 0);
    w.f64(m.value_or(0));
  }
  w.str(r.metrics_json);
  w.str(r.dropped);
}

PointResult get_result(Reader& rd) {
  PointResult r;
  r.index = static_cast<std::size_t>(rd.u64());
  r.id = rd.str();
  r.status = rd.str();
  r.reason = rd.str();
  for (auto& m : r.metrics) {
    const bool has = rd.u64() != 0;
    const double v = rd.f64();
    if (has) m = v;
  }
  r.metrics_json = rd.str();
  r.dropped = rd.str();
  return r;
}

std::string u64_bytes(std::uint64_t v) {
  Writer w;
  w.u64(v);
  return w.b;
}

// What every rank must agree on: the base (build, data, scenario bytes: base_hash) and every
// dimension's keys and values, hence every point's id.
std::string fingerprint(const SweepSpec& spec) {
  std::string t = spec.base_hash + "\n" + spec.name + "\n";
  for (const auto& d : spec.dims) {
    t += "dim " + d.name + "\n";
    for (const auto& setting : d.settings)
      for (const auto& o : setting) t += o.key + "=" + o.toml + " " + o.file_sha256 + "\n";
  }
  return sha256_hex(t);
}

// Threads evaluating points handed to them; results are collected by the (MPI) main thread.
class LocalPool {
 public:
  LocalPool(const SweepSpec& spec, unsigned threads) : spec_(spec) {
    for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { work(); });
  }
  ~LocalPool() {
    {
      std::lock_guard lk(mu_);
      closing_ = true;
      queue_.clear();
    }
    cv_work_.notify_all();
    for (auto& t : threads_) t.join();
  }
  LocalPool(const LocalPool&) = delete;
  LocalPool& operator=(const LocalPool&) = delete;

  void submit(Point p) {
    {
      std::lock_guard lk(mu_);
      queue_.push_back(std::move(p));
      ++in_flight_;
    }
    cv_work_.notify_one();
  }
  std::optional<PointResult> pop() {
    std::lock_guard lk(mu_);
    if (done_.empty()) return std::nullopt;
    PointResult r = std::move(done_.front());
    done_.pop_front();
    --in_flight_;
    return r;
  }
  // Waits until a result is ready, at most `d`.
  void wait(std::chrono::milliseconds d) {
    std::unique_lock lk(mu_);
    cv_done_.wait_for(lk, d, [&] { return !done_.empty(); });
  }
  // Submitted and not popped yet (queued, running or done).
  std::size_t in_flight() {
    std::lock_guard lk(mu_);
    return in_flight_;
  }
  void drop_queued() {
    std::lock_guard lk(mu_);
    in_flight_ -= queue_.size();
    queue_.clear();
  }

 private:
  void work() {
    for (;;) {
      Point p;
      {
        std::unique_lock lk(mu_);
        cv_work_.wait(lk, [&] { return closing_ || !queue_.empty(); });
        if (closing_) return;
        p = std::move(queue_.front());
        queue_.pop_front();
      }
      PointResult r = evaluate_point(spec_, p);
      {
        std::lock_guard lk(mu_);
        done_.push_back(std::move(r));
      }
      cv_done_.notify_all();
    }
  }
  const SweepSpec& spec_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::deque<Point> queue_;
  std::deque<PointResult> done_;
  std::size_t in_flight_ = 0;
  bool closing_ = false;
  std::vector<std::thread> threads_;
};

// How long the main thread of a rank sleeps between looks at its messages and threads when
// nothing happens (a finished local point wakes it at once).
constexpr std::chrono::milliseconds kPoll{1};

RunSummary run_distributed(const SweepSpec& spec, Store* store, const RunOptions& opt) {
  namespace d = detail;
  const auto t0 = Clock::now();
  const Ranks& rk = ranks();
  const std::size_t window = 2 * std::max(1u, opt.jobs);
  d::stage_begin();

  // Every rank must see the same sweep (files, data, build): the same point ids.
  std::string fp = rk.root() ? fingerprint(spec) : std::string();
  d::broadcast(fp, 0);
  std::vector<Point> points;
  std::vector<const Point*> todo;
  RunSummary sum;
  sum.points = spec.size();
  sum.ranks = rk.size;
  try {
    d::agree([&] {
      if (!rk.root()) {
        if (fingerprint(spec) != fp)
          throw UsageError(fmt::format(
              "sweep {}: this rank read another sweep than rank 0 (its sweep file, base scenario, the files they name, "
              "the data folder's profiles or the trainsim build differ); every rank must see the same files and run "
              "the same trainsim", spec.file));
        return;
      }
      TS_ASSERT(store != nullptr, "rank 0 of a distributed sweep needs the store");
      points = all_points(spec);
      store->ensure_key_columns(spec.keys);
      const auto have = store->statuses();
      for (const auto& p : points) {
        auto it = have.find(p.id);
        const bool done = it != have.end() && (it->second == "ok" || it->second == "infeasible");
        if (done && !opt.fresh) ++sum.reused;
        else todo.push_back(&p);
      }
      if (opt.max_points && todo.size() > *opt.max_points) todo.resize(*opt.max_points);
    });
  } catch (...) {
    d::stage_end();
    throw;
  }

  std::exception_ptr failure;  // this rank's own, thrown (agreed) at the end
  std::size_t written = 0;
  if (rk.root()) {
    const std::size_t n = todo.size(), workers = static_cast<std::size_t>(rk.size - 1);
    const auto stopped = [&] { return opt.stop && opt.stop->load(); };
    struct Peer {
      std::size_t window = 0, in_flight = 0;
      bool stop_sent = false, bye = false;
    };
    std::vector<Peer> peers(workers + 1);  // by rank; [0] unused
    Progress bar(n, opt.progress_tty, opt.progress);
    LocalPool pool(spec, opt.jobs);
    std::size_t next = 0, byes = 0;
    bool stopping = false;
    // Each result in its own transaction, as it arrives: a rank killed now loses nothing stored.
    const auto store_one = [&](const PointResult& r) {
      if (failure) return;  // the store failed: nothing more is stored
      try {
        TS_ASSERT(r.index < points.size() && points[r.index].id == r.id, "a rank returned a point of another sweep");
        if (!store->put(spec, points[r.index], r, opt.fresh)) ++sum.stored_by_others;
        ++written;
        bar.update(written);
      } catch (...) {
        failure = std::current_exception();
      }
    };
    for (;;) {
      while (auto r = pool.pop()) store_one(*r);
      while (auto m = d::poll()) {
        Peer& peer = peers[static_cast<std::size_t>(m->source)];
        Reader rd{m->bytes};
        switch (m->tag) {
          case kHello: peer.window = static_cast<std::size_t>(rd.u64()); break;
          case kResult:
            --peer.in_flight;
            store_one(get_result(rd));
            break;
          case kFail: stopping = true; break;
          case kBye: peer.bye = true, ++byes; break;
          default: TS_ASSERT(false, fmt::format("unexpected sweep message {} from rank {}", m->tag, m->source));
        }
      }
      stopping = stopping || stopped() || failure != nullptr;
      if (stopping) {
        pool.drop_queued();
      } else {
        for (std::size_t w = 1; w <= workers; ++w)
          while (next < n && peers[w].in_flight < peers[w].window) {
            d::send(static_cast<int>(w), kWork, u64_bytes(todo[next++]->index));
            ++peers[w].in_flight;
          }
        while (next < n && pool.in_flight() < window) pool.submit(*todo[next++]);
      }
      if (stopping || next >= n)
        for (std::size_t w = 1; w <= workers; ++w)
          if (!peers[w].stop_sent) {
            d::send(static_cast<int>(w), kStop, std::string());
            peers[w].stop_sent = true;
          }
      if ((stopping || next >= n) && pool.in_flight() == 0 && byes == workers) break;
      pool.wait(kPoll);
    }
    d::flush();
    bar.update(written, true);
    bar.finish();
    sum.evaluated = written;
    sum.interrupted = stopped() && written < n;
  } else {
    d::send(0, kHello, u64_bytes(window));
    LocalPool pool(spec, opt.jobs);
    bool stop = false;
    for (;;) {
      try {
        while (auto r = pool.pop()) {
          if (failure) continue;  // rank 0 will not store more from this rank
          Writer w;
          put_result(w, *r);
          d::send(0, kResult, std::move(w.b));
        }
        while (auto m = d::poll(0)) {
          if (m->tag == kStop) {
            stop = true;
          } else {
            TS_ASSERT(m->tag == kWork, fmt::format("unexpected sweep message {} from rank 0", m->tag));
            Reader rd{m->bytes};
            const auto index = static_cast<std::size_t>(rd.u64());
            if (!failure) pool.submit(point_at(spec, index));
          }
        }
      } catch (...) {
        if (!failure) {
          failure = std::current_exception();
          pool.drop_queued();
          d::send(0, kFail, std::string());
        }
      }
      if (stop && pool.in_flight() == 0) break;
      pool.wait(kPoll);
    }
    d::send(0, kBye, std::string());
    d::flush();
  }

  // Every rank's own failure, agreed; then rank 0's summary (and rows) to every rank.
  std::string out;
  try {
    d::agree([&] {
      if (failure) std::rethrow_exception(failure);
      if (!rk.root()) return;
      count_stored(spec, *store, points, opt, sum);
      Writer w;
      for (std::size_t v : {sum.evaluated, sum.reused, sum.remaining, sum.stored_by_others, sum.ok, sum.infeasible,
                            sum.errors, static_cast<std::size_t>(sum.interrupted)})
        w.u64(v);
      w.u64(sum.dropped_keys.size());
      for (const auto& [key, count] : sum.dropped_keys) {
        w.str(key);
        w.u64(count);
      }
      w.u64(sum.rows.size());
      for (const auto& row : sum.rows) put_result(w, row.result);
      out = std::move(w.b);
    });
    d::broadcast(out, 0);
  } catch (...) {
    d::stage_end();
    throw;
  }
  d::stage_end();
  if (!rk.root()) {
    Reader rd{out};
    for (std::size_t* v : {&sum.evaluated, &sum.reused, &sum.remaining, &sum.stored_by_others, &sum.ok, &sum.infeasible,
                           &sum.errors})
      *v = static_cast<std::size_t>(rd.u64());
    sum.interrupted = rd.u64() != 0;
    const auto keys = static_cast<std::size_t>(rd.u64());
    for (std::size_t i = 0; i < keys; ++i) {
      std::string key = rd.str();
      sum.dropped_keys.emplace_back(std::move(key), static_cast<std::size_t>(rd.u64()));
    }
    const auto rows = static_cast<std::size_t>(rd.u64());
    for (std::size_t i = 0; i < rows; ++i) {
      StoredRow row;
      row.result = get_result(rd);
      row.index = row.result.index;
      row.point = point_at(spec, row.index);
      sum.rows.push_back(std::move(row));
    }
  }
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return sum;
}

}  // namespace

RunSummary run_sweep(const SweepSpec& spec, Store& store, const RunOptions& opt) { return run_sweep(spec, &store, opt); }

RunSummary run_sweep(const SweepSpec& spec, Store* store, const RunOptions& opt) {
  if (ranks().distributed()) return run_distributed(spec, store, opt);
  TS_ASSERT(store != nullptr, "run_sweep without a store");
  return run_local(spec, *store, opt);
}

std::string csv_text(const SweepSpec& spec, const std::vector<StoredRow>& rows) {
  std::string out = "point,id,status,reason,dropped";
  for (const auto& k : spec.keys) out += "," + csv_field(k);
  for (const char* m : kMetricColumns) out += std::string(",") + m;
  out += "\n";
  for (const auto& row : rows) {
    out += fmt::format("{},{},{},{},{}", row.index, row.result.id, row.result.status, csv_field(row.result.reason),
                       csv_field(row.result.dropped));
    for (const auto& o : row.point.overrides) out += "," + csv_field(o.display);
    for (std::size_t m = 0; m < kMetricCount; ++m)
      out += "," + (row.result.metrics[m] ? number_text(*row.result.metrics[m]) : std::string());
    out += "\n";
  }
  return out;
}

BestResult best_plans(const std::vector<StoredRow>& rows, const BestOptions& opt) {
  BestResult b;
  std::vector<const StoredRow*> ok;
  for (const auto& r : rows) {
    if (r.result.status != "ok") continue;
    ++b.feasible;
    const double days = metric(r.result, "wall_clock_days").value_or(0);
    const double cost = metric(r.result, "cost_usd").value_or(0);
    if (opt.deadline_days && days > *opt.deadline_days) continue;
    if (opt.budget_usd && cost > *opt.budget_usd) continue;
    ok.push_back(&r);
  }
  b.meeting = ok.size();
  const bool by_cost = opt.by == "cost";
  std::stable_sort(ok.begin(), ok.end(), [&](const StoredRow* x, const StoredRow* y) {
    const double cx = metric(x->result, "cost_usd").value_or(0), cy = metric(y->result, "cost_usd").value_or(0);
    const double dx = metric(x->result, "wall_clock_days").value_or(0), dy = metric(y->result, "wall_clock_days").value_or(0);
    if (by_cost ? cx != cy : dx != dy) return by_cost ? cx < cy : dx < dy;
    if (by_cost ? dx != dy : cx != cy) return by_cost ? dx < dy : cx < cy;
    return x->index < y->index;
  });
  for (std::size_t i = 0; i < ok.size() && i < opt.top; ++i) b.rows.push_back(*ok[i]);
  return b;
}

namespace {
std::string constraints_text(const BestOptions& opt) {
  std::vector<std::string> c;
  if (opt.deadline_days) c.push_back(fmt::format("at most {} days", *opt.deadline_days));
  if (opt.budget_usd) c.push_back(fmt::format("at most {}", money(*opt.budget_usd)));
  if (c.empty()) return "no constraints";
  return c.size() == 1 ? c[0] : c[0] + " and " + c[1];
}
}  // namespace

std::string best_text(const SweepSpec& spec, const BestResult& b, const BestOptions& opt) {
  std::string out = fmt::format("Best plans of sweep {} by {} ({}): {} of {} feasible points meet the constraints\n",
                                spec.name, opt.by == "cost" ? "cost" : "time", constraints_text(opt), b.meeting, b.feasible);
  if (b.rows.empty()) return out + "  no plan meets the constraints\n";
  std::vector<std::string> header = {"#", "point"};
  std::vector<bool> right = {true, true};
  for (const auto& k : spec.keys) {
    header.push_back(k);
    right.push_back(false);
  }
  for (const char* h : {"days", "cost", "GPU-hours", "step (s)", "MFU", "memory (GiB)"}) {
    header.push_back(h);
    right.push_back(true);
  }
  const bool any_dropped = std::any_of(b.rows.begin(), b.rows.end(), [](const StoredRow& r) { return !r.result.dropped.empty(); });
  if (any_dropped) {
    header.push_back("dropped from the base");
    right.push_back(false);
  }
  TextTable t(header, right);
  std::size_t rank = 0;
  for (const auto& r : b.rows) {
    std::vector<std::string> cells = {fmt::format("{}", ++rank), fmt::format("{}", r.index)};
    for (const auto& o : r.point.overrides) cells.push_back(o.display);
    const auto m = [&](const char* k) { return metric(r.result, k).value_or(0); };
    cells.push_back(fmt::format("{:.1f}", m("wall_clock_days")));
    cells.push_back(money(m("cost_usd")));
    cells.push_back(human_count(m("gpu_hours")));
    cells.push_back(fmt::format("{:.3f}", m("step_time_s")));
    cells.push_back(fmt::format("{:.1f}%", m("mfu") * 100));
    cells.push_back(fmt::format("{:.1f}", m("peak_memory_gib")));
    if (any_dropped) cells.push_back(r.result.dropped.empty() ? "-" : r.result.dropped);
    t.add_row(std::move(cells));
  }
  return out + t.str();
}

nlohmann::ordered_json best_json(const SweepSpec& spec, const BestResult& b, const BestOptions& opt) {
  using J = nlohmann::ordered_json;
  J plans = J::array();
  std::size_t rank = 0;
  for (const auto& r : b.rows) {
    J ov = J::object();
    for (const auto& o : r.point.overrides) {
      switch (o.kind) {
        case Override::Kind::Integer: ov[o.key] = o.integer; break;
        case Override::Kind::Real: ov[o.key] = o.real; break;
        case Override::Kind::Boolean: ov[o.key] = o.integer != 0; break;
        case Override::Kind::Text: ov[o.key] = o.display; break;
      }
    }
    J dropped = J::array();
    for (std::size_t pos = 0; pos < r.result.dropped.size();) {
      const auto comma = r.result.dropped.find(", ", pos);
      dropped.push_back(r.result.dropped.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
      pos = comma == std::string::npos ? r.result.dropped.size() : comma + 2;
    }
    J p = {{"rank", ++rank}, {"point", r.index}, {"id", r.result.id}, {"overrides", ov}, {"dropped", dropped}};
    for (std::size_t m = 0; m < kMetricCount; ++m)
      p[kMetricColumns[m]] = r.result.metrics[m] ? J(*r.result.metrics[m]) : J(nullptr);
    plans.push_back(std::move(p));
  }
  return J{{"sweep", spec.name},
           {"by", opt.by},
           {"deadline_days", opt.deadline_days ? J(*opt.deadline_days) : J(nullptr)},
           {"budget_usd", opt.budget_usd ? J(*opt.budget_usd) : J(nullptr)},
           {"feasible", b.feasible},
           {"meeting_constraints", b.meeting},
           {"plans", plans}};
}

}  // namespace trainsim::sweep
