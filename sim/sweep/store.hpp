#pragma once
// The SQLite store of sweep results: one row per point (table `points`), keyed by the point's id
// so that a rerun skips finished points. WAL journal; rows are written in transactions of a batch
// each, so that an interrupted sweep keeps every committed batch. Used from one thread only.

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

// The outcome of one point.
struct PointResult {
  std::size_t index = 0;
  std::string id;
  std::string status;   // ok | infeasible | error
  std::string reason;   // empty for ok
  std::optional<double> metrics[kMetricCount];
  std::string metrics_json;  // run --json (without assumptions); empty unless ok
};

// A row read back, with the point's overrides.
struct StoredRow {
  std::size_t index = 0;
  Point point;
  PointResult result;
};

class Store {
 public:
  // Opens (creating if needed) the database. Throws UsageError if it cannot.
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Adds a column per sweep key that the table does not have yet.
  void ensure_key_columns(const std::vector<std::string>& keys);

  // Status of the rows with these ids ("" where absent).
  std::map<std::string, std::string> statuses();

  void begin();
  void write(const SweepSpec& spec, const Point& p, const PointResult& r);
  void commit();

  // The rows of these points (absent ones skipped), in the points' order.
  std::vector<StoredRow> rows(const std::vector<Point>& points);

 private:
  void exec(const std::string& sql);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  std::vector<std::string> insert_keys_;  // key columns the prepared insert has
  bool in_tx_ = false;
};

}  // namespace trainsim::sweep
