#pragma once
// The SQLite store of sweep results: one row per point (table `points`), keyed by the point's id
// so that a rerun skips finished points.
//
// Shared by several processes: two sweeps (or a sweep and a reader) may use one database file
// at once. The journal is WAL (readers never block the writer), every point is stored in its
// own IMMEDIATE transaction (the write lock is taken up front, so a writer waits for the other
// instead of failing at commit), a busy database is waited for (busy timeout) and the
// operation retried for up to kBusyRetrySeconds before the command gives up naming the file.
// A point another process already stored as ok or infeasible is kept as it is (so every point
// is stored once); `--fresh` replaces it.
//
// An existing file is checked before anything in it changes: it must be an SQLite database
// holding nothing but a trainsim sweep store (tables `points` and `trainsim_store`) with the
// column layout below; anything else is refused with what was found.
//
// Used from one thread per process.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sweep/spec.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace trainsim::sweep {

// The metrics a row has as columns (besides metrics_json), in column order.
inline constexpr const char* kMetricColumns[] = {
    "step_time_s", "tokens_per_s_per_gpu", "mfu", "bubble_fraction", "exposed_comm_fraction",
    "peak_memory_gib", "fits_memory", "gpu_hours", "gpu_hours_per_trillion_tokens", "wall_clock_days",
    "cost_usd", "energy_mwh"};
inline constexpr std::size_t kMetricCount = sizeof(kMetricColumns) / sizeof(kMetricColumns[0]);

// How long a busy database is waited for, in total, before the command fails.
inline constexpr int kBusyRetrySeconds = 300;

// The outcome of one point.
struct PointResult {
  std::size_t index = 0;
  std::string id;
  std::string status;   // ok | infeasible | error
  std::string reason;   // empty for ok
  std::optional<double> metrics[kMetricCount];
  std::string metrics_json;  // run --json (without assumptions); empty unless ok
  std::string dropped;       // base keys dropped because the point made them invalid, ", "-separated (docs/sweep.md)
};

// A row read back, with the point's overrides.
struct StoredRow {
  std::size_t index = 0;
  Point point;
  PointResult result;
};

class Store {
 public:
  // Opens (creating if needed) the database. Throws UsageError naming `option` and the file if
  // it cannot, or if an existing file is not a compatible sweep store (before changing it).
  explicit Store(const std::string& path, const std::string& option = "--db");
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Adds a column per sweep key that the table does not have yet.
  void ensure_key_columns(const std::vector<std::string>& keys);

  // Status of every stored row by id.
  std::map<std::string, std::string> statuses();
  // Status of one row ("" when absent).
  std::string status(const std::string& id);

  // Stores one point in its own transaction. Unless `replace`, a row another writer already
  // stored as ok or infeasible is kept. Returns false when such a row was kept.
  bool put(const SweepSpec& spec, const Point& p, const PointResult& r, bool replace = false);

  // The rows of these points (absent ones skipped), in the points' order.
  std::vector<StoredRow> rows(const std::vector<Point>& points);

  const std::string& path() const { return path_; }

 private:
  void exec(const std::string& sql);
  template <class F>
  auto retry(const char* what, F&& f) -> decltype(f());
  void check_layout(bool existed);
  bool has_column(const std::string& name);
  sqlite3* db_ = nullptr;
  std::string path_, option_;
  sqlite3_stmt* insert_ = nullptr;   // INSERT ... ON CONFLICT DO UPDATE ... WHERE status = 'error'
  sqlite3_stmt* replace_ = nullptr;  // INSERT OR REPLACE
  std::vector<std::string> insert_keys_;  // key columns the prepared inserts have
};

}  // namespace trainsim::sweep
