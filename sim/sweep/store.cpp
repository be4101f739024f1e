#include "sweep/store.hpp"

#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

namespace trainsim::sweep {

namespace {

constexpr const char* kFixedColumns =
    "id TEXT PRIMARY KEY, sweep TEXT NOT NULL, point_index INTEGER NOT NULL, scenario TEXT NOT NULL, "
    "inputs_json TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('ok', 'infeasible', 'error')), "
    "reason TEXT NOT NULL";

std::string quote_ident(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Text is bound without a copy (SQLITE_STATIC, written as nullptr: the macro is an old-style
// cast): every bound string outlives the sqlite3_step that reads it.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
      throw std::runtime_error(fmt::format("sweep database: {} (in: {})", sqlite3_errmsg(db), sql));
  }
  ~Stmt() { sqlite3_finalize(s); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
};

std::string text_col(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
}

}  // namespace

Store::Store(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw UsageError(fmt::format("--db {}: cannot open the database: {}", path, msg));
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    std::string sql = std::string("CREATE TABLE IF NOT EXISTS points (") + kFixedColumns;
    for (const char* m : kMetricColumns) sql += fmt::format(", {} {}", m, std::string(m) == "fits_memory" ? "INTEGER" : "REAL");
    sql += ", metrics_json TEXT)";
    exec(sql);
  } catch (const std::runtime_error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw UsageError(fmt::format("--db {}: {}", path, e.what()));
  }
}

Store::~Store() {
  if (in_tx_) sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_finalize(insert_);
  sqlite3_close(db_);
}

void Store::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw std::runtime_error(fmt::format("sweep database: {} (in: {})", msg, sql));
  }
}

void Store::ensure_key_columns(const std::vector<std::string>& keys) {
  std::set<std::string> have;
  {
    Stmt st(db_, "PRAGMA table_info(points)");
    while (sqlite3_step(st.s) == SQLITE_ROW) have.insert(text_col(st.s, 1));
  }
  for (const auto& k : keys) {
    const std::string col = column_name(k);
    if (!have.count(col)) {
      exec(fmt::format("ALTER TABLE points ADD COLUMN {}", quote_ident(col)));
      have.insert(col);
    }
  }
  sqlite3_finalize(insert_);
  insert_ = nullptr;
  std::string cols = "id, sweep, point_index, scenario, inputs_json, status, reason";
  std::size_t n = 7;
  for (const char* m : kMetricColumns) {
    cols += std::string(", ") + m;
    ++n;
  }
  cols += ", metrics_json";
  ++n;
  for (const auto& k : keys) {
    cols += ", " + quote_ident(column_name(k));
    ++n;
  }
  std::string q;
  for (std::size_t i = 0; i < n; ++i) q += i ? ", ?" : "?";
  const std::string sql = fmt::format("INSERT OR REPLACE INTO points ({}) VALUES ({})", cols, q);
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &insert_, nullptr) != SQLITE_OK)
    throw std::runtime_error(fmt::format("sweep database: {}", sqlite3_errmsg(db_)));
  insert_keys_ = keys;
}

std::map<std::string, std::string> Store::statuses() {
  std::map<std::string, std::string> out;
  Stmt st(db_, "SELECT id, status FROM points");
  while (sqlite3_step(st.s) == SQLITE_ROW) out.emplace(text_col(st.s, 0), text_col(st.s, 1));
  return out;
}

void Store::begin() {
  if (!in_tx_) exec("BEGIN");
  in_tx_ = true;
}

void Store::commit() {
  if (in_tx_) exec("COMMIT");
  in_tx_ = false;
}

void Store::write(const SweepSpec& spec, const Point& p, const PointResult& r) {
  sqlite3_stmt* s = insert_;
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  nlohmann::ordered_json ov = nlohmann::ordered_json::object();
  for (const auto& o : p.overrides) {
    switch (o.kind) {
      case Override::Kind::Integer: ov[o.key] = o.integer; break;
      case Override::Kind::Real: ov[o.key] = o.real; break;
      case Override::Kind::Boolean: ov[o.key] = o.integer != 0; break;
      case Override::Kind::Text: ov[o.key] = o.display; break;
    }
  }
  const std::string inputs = nlohmann::ordered_json{{"scenario", spec.scenario}, {"overrides", ov}}.dump();
  int i = 1;
  auto text = [&](const std::string& t) { sqlite3_bind_text(s, i++, t.c_str(), static_cast<int>(t.size()), nullptr); };
  text(p.id);
  text(spec.name);
  sqlite3_bind_int64(s, i++, static_cast<sqlite3_int64>(p.index));
  text(spec.scenario);
  text(inputs);
  text(r.status);
  text(r.reason);
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    if (!r.metrics[m]) sqlite3_bind_null(s, i++);
    else if (std::string(kMetricColumns[m]) == "fits_memory") sqlite3_bind_int64(s, i++, *r.metrics[m] != 0 ? 1 : 0);
    else sqlite3_bind_double(s, i++, *r.metrics[m]);
  }
  if (r.metrics_json.empty()) sqlite3_bind_null(s, i++);
  else text(r.metrics_json);
  for (const auto& k : insert_keys_) {
    const Override* o = nullptr;
    for (const auto& x : p.overrides)
      if (x.key == k) o = &x;
    if (!o) sqlite3_bind_null(s, i++);
    else if (o->kind == Override::Kind::Integer || o->kind == Override::Kind::Boolean) sqlite3_bind_int64(s, i++, o->integer);
    else if (o->kind == Override::Kind::Real) sqlite3_bind_double(s, i++, o->real);
    else text(o->display);
  }
  if (sqlite3_step(s) != SQLITE_DONE)
    throw std::runtime_error(fmt::format("sweep database: cannot write point {}: {}", p.index, sqlite3_errmsg(db_)));
}

std::vector<StoredRow> Store::rows(const std::vector<Point>& points) {
  std::string cols = "status, reason, metrics_json";
  for (const char* m : kMetricColumns) cols += std::string(", ") + m;
  Stmt st(db_, fmt::format("SELECT {} FROM points WHERE id = ?", cols));
  std::vector<StoredRow> out;
  for (const auto& p : points) {
    sqlite3_reset(st.s);
    sqlite3_bind_text(st.s, 1, p.id.c_str(), static_cast<int>(p.id.size()), nullptr);
    if (sqlite3_step(st.s) != SQLITE_ROW) continue;
    StoredRow row;
    row.index = p.index;
    row.point = p;
    row.result.index = p.index;
    row.result.id = p.id;
    row.result.status = text_col(st.s, 0);
    row.result.reason = text_col(st.s, 1);
    row.result.metrics_json = text_col(st.s, 2);
    for (std::size_t m = 0; m < kMetricCount; ++m) {
      const int c = static_cast<int>(3 + m);
      if (sqlite3_column_type(st.s, c) != SQLITE_NULL) row.result.metrics[m] = sqlite3_column_double(st.s, c);
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace trainsim::sweep
