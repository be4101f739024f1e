#include "sweep/store.hpp"

#include <sys/stat.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "core/error.hpp"

namespace trainsim::sweep {

namespace {

// The store format: "trainsim_store" rows format = trainsim-sweep, version = kStoreVersion.
// Version 2: point ids are SHA-256 over the build and the input bytes (sweep/identity.hpp);
// version-1 files (no trainsim_store table) are read, their rows simply never match.
constexpr int kStoreVersion = 2;

struct FixedColumn {
  const char* name;
  const char* type;
};
constexpr FixedColumn kFixed[] = {{"id", "TEXT"},          {"sweep", "TEXT"},  {"point_index", "INTEGER"},
                                  {"scenario", "TEXT"},    {"inputs_json", "TEXT"}, {"status", "TEXT"},
                                  {"reason", "TEXT"}};

constexpr const char* kFixedColumns =
    "id TEXT PRIMARY KEY, sweep TEXT NOT NULL, point_index INTEGER NOT NULL, scenario TEXT NOT NULL, "
    "inputs_json TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('ok', 'infeasible', 'error')), "
    "reason TEXT NOT NULL, dropped TEXT NOT NULL DEFAULT ''";

const char* metric_type(const char* m) { return std::string(m) == "fits_memory" ? "INTEGER" : "REAL"; }

std::string quote_ident(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// A busy or locked database: retried by Store::retry.
struct Busy {
  std::string what;
};

bool is_busy(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

std::string text_col(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
}

}  // namespace

template <class F>
auto Store::retry(const char* what, F&& f) -> decltype(f()) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::minstd_rand rng(static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(this)) ^
                       static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  int wait_ms = 5;
  for (;;) {
    try {
      return f();
    } catch (const Busy& b) {
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      if (Clock::now() - start > std::chrono::seconds(kBusyRetrySeconds))
        throw UsageError(fmt::format("{} {}: the database stayed busy for {} s ({}: {}); is another program holding it?",
                                     option_, path_, kBusyRetrySeconds, what, b.what));
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms / 2 + static_cast<int>(rng() % static_cast<unsigned>(wait_ms))));
      wait_ms = std::min(wait_ms * 2, 500);
    } catch (...) {
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
}

void Store::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    if (is_busy(rc)) throw Busy{msg};
    throw UsageError(fmt::format("{} {}: {} (in: {})", option_, path_, msg, sql.substr(0, 120)));
  }
}

Store::Store(const std::string& path, const std::string& option) : path_(path), option_(option) {
  struct stat st {};
  const bool existed = ::stat(path.c_str(), &st) == 0 && st.st_size > 0;
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw UsageError(fmt::format("{} {}: cannot open the database: {}", option_, path, msg));
  }
  sqlite3_busy_timeout(db_, 2000);
  sqlite3_extended_result_codes(db_, 1);
  try {
    // Checked before anything in the file changes (even the switch to WAL rewrites its header).
    if (existed) retry("reading the layout", [&] { check_layout(true); });
    retry("switching to WAL", [&] { exec("PRAGMA journal_mode=WAL"); });
    exec("PRAGMA synchronous=NORMAL");
    retry("creating the tables", [&] {
      exec("BEGIN IMMEDIATE");
      std::string sql = std::string("CREATE TABLE IF NOT EXISTS points (") + kFixedColumns;
      for (const char* m : kMetricColumns) sql += fmt::format(", {} {}", m, metric_type(m));
      sql += ", metrics_json TEXT)";
      exec(sql);
      // `dropped` (base keys a point made invalid, docs/sweep.md) came after store version 2's
      // first layout: added to a store without it (older trainsims ignore it; its default is '').
      if (!has_column("dropped")) exec("ALTER TABLE points ADD COLUMN dropped TEXT NOT NULL DEFAULT ''");
      exec("CREATE TABLE IF NOT EXISTS trainsim_store (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
      exec("INSERT OR IGNORE INTO trainsim_store (key, value) VALUES ('format', 'trainsim-sweep')");
      exec(fmt::format("INSERT OR IGNORE INTO trainsim_store (key, value) VALUES ('version', '{}')", kStoreVersion));
      exec("COMMIT");
    });
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

void Store::check_layout(bool) {
  auto refuse = [&](const std::string& why) {
    throw UsageError(fmt::format("{} {}: {}; refusing to change it (give another --db file)", option_, path_, why));
  };
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, "SELECT type, name FROM sqlite_master", -1, &st, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    if (is_busy(rc)) throw Busy{msg};
    refuse(fmt::format("not a readable SQLite database ({})", msg));
  }
  std::set<std::string> tables;
  std::vector<std::string> foreign;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const std::string type = text_col(st, 0), name = text_col(st, 1);
    if (name.rfind("sqlite_", 0) == 0) continue;  // SQLite's own (autoindex, sequence, stat)
    if (type == "table" && (name == "points" || name == "trainsim_store")) tables.insert(name);
    else foreign.push_back(fmt::format("{} {}", type, name));
  }
  const std::string step_msg = sqlite3_errmsg(db_);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    if (is_busy(rc)) throw Busy{step_msg};
    refuse(fmt::format("not a readable SQLite database ({})", step_msg));
  }
  if (!foreign.empty()) {
    std::string list;
    for (std::size_t i = 0; i < foreign.size() && i < 6; ++i) list += (i ? ", " : "") + foreign[i];
    refuse(fmt::format("an SQLite database that is not (only) a trainsim sweep store: it holds {}{}", list,
                       foreign.size() > 6 ? fmt::format(" and {} more", foreign.size() - 6) : ""));
  }
  if (tables.empty()) return;  // an empty database: made a store below
  if (!tables.count("points")) refuse("a trainsim store without its 'points' table");
  // The columns of `points`: the fixed ones and the metrics, with their types.
  std::map<std::string, std::string> cols;
  rc = sqlite3_prepare_v2(db_, "PRAGMA table_info(points)", -1, &st, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st);
    throw Busy{sqlite3_errmsg(db_)};
  }
  while (sqlite3_step(st) == SQLITE_ROW) cols[text_col(st, 1)] = text_col(st, 2);
  sqlite3_finalize(st);
  std::vector<std::string> wrong;
  auto want = [&](const std::string& name, const std::string& type) {
    auto it = cols.find(name);
    if (it == cols.end()) wrong.push_back(fmt::format("no column {}", name));
    else if (it->second != type) wrong.push_back(fmt::format("column {} is {} (expected {})", name, it->second, type));
  };
  for (const auto& c : kFixed) want(c.name, c.type);
  for (const char* m : kMetricColumns) want(m, metric_type(m));
  want("metrics_json", "TEXT");
  if (!wrong.empty()) {
    std::string list;
    for (std::size_t i = 0; i < wrong.size() && i < 4; ++i) list += (i ? ", " : "") + wrong[i];
    refuse(fmt::format("its 'points' table has another layout than a trainsim sweep store ({}{})", list,
                       wrong.size() > 4 ? fmt::format(" and {} more", wrong.size() - 4) : ""));
  }
  if (tables.count("trainsim_store")) {
    std::map<std::string, std::string> meta;
    rc = sqlite3_prepare_v2(db_, "SELECT key, value FROM trainsim_store", -1, &st, nullptr);
    if (rc == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) meta[text_col(st, 0)] = text_col(st, 1);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) refuse("its 'trainsim_store' table cannot be read");
    if (meta["format"] != "trainsim-sweep") refuse(fmt::format("format '{}', not 'trainsim-sweep'", meta["format"]));
    int version = 0;
    try {
      version = std::stoi(meta["version"]);
    } catch (const std::exception&) {
      refuse(fmt::format("store version '{}' is not a number", meta["version"]));
    }
    if (version > kStoreVersion)
      refuse(fmt::format("store version {} was written by a newer trainsim (this one writes {})", version, kStoreVersion));
  }
}

bool Store::has_column(const std::string& name) {
  sqlite3_stmt* st = nullptr;
  const int rc = sqlite3_prepare_v2(db_, "PRAGMA table_info(points)", -1, &st, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    throw Busy{msg};
  }
  bool found = false;
  while (sqlite3_step(st) == SQLITE_ROW) found = found || text_col(st, 1) == name;
  sqlite3_finalize(st);
  return found;
}

Store::~Store() {
  sqlite3_finalize(insert_);
  sqlite3_finalize(replace_);
  sqlite3_close(db_);
}

void Store::ensure_key_columns(const std::vector<std::string>& keys) {
  retry("adding key columns", [&] {
    exec("BEGIN IMMEDIATE");
    std::set<std::string> have;
    {
      sqlite3_stmt* st = nullptr;
      const int rc = sqlite3_prepare_v2(db_, "PRAGMA table_info(points)", -1, &st, nullptr);
      if (rc != SQLITE_OK) {
        const std::string msg = sqlite3_errmsg(db_);
        sqlite3_finalize(st);
        throw Busy{msg};
      }
      while (sqlite3_step(st) == SQLITE_ROW) have.insert(text_col(st, 1));
      sqlite3_finalize(st);
    }
    for (const auto& k : keys) {
      const std::string col = column_name(k);
      if (!have.count(col)) {
        exec(fmt::format("ALTER TABLE points ADD COLUMN {}", quote_ident(col)));
        have.insert(col);
      }
    }
    exec("COMMIT");
  });
  sqlite3_finalize(insert_);
  sqlite3_finalize(replace_);
  insert_ = replace_ = nullptr;
  std::vector<std::string> names = {"id", "sweep", "point_index", "scenario", "inputs_json", "status", "reason", "dropped"};
  for (const char* m : kMetricColumns) names.push_back(m);
  names.push_back("metrics_json");
  for (const auto& k : keys) names.push_back(quote_ident(column_name(k)));
  std::string cols, q, set;
  for (std::size_t i = 0; i < names.size(); ++i) {
    cols += (i ? ", " : "") + names[i];
    q += i ? ", ?" : "?";
    if (i > 0) set += fmt::format("{}{} = excluded.{}", i > 1 ? ", " : "", names[i], names[i]);
  }
  const std::string upsert = fmt::format(
      "INSERT INTO points ({}) VALUES ({}) ON CONFLICT(id) DO UPDATE SET {} WHERE points.status = 'error'", cols, q, set);
  const std::string replace = fmt::format("INSERT OR REPLACE INTO points ({}) VALUES ({})", cols, q);
  retry("preparing the insert", [&] {
    for (auto [sql, stmt] : {std::pair{&upsert, &insert_}, std::pair{&replace, &replace_}}) {
      if (*stmt != nullptr) continue;
      const int rc = sqlite3_prepare_v2(db_, sql->c_str(), -1, stmt, nullptr);
      if (rc != SQLITE_OK) {
        const std::string msg = sqlite3_errmsg(db_);
        sqlite3_finalize(*stmt);
        *stmt = nullptr;
        if (is_busy(rc)) throw Busy{msg};
        throw UsageError(fmt::format("{} {}: {}", option_, path_, msg));
      }
    }
  });
  insert_keys_ = keys;
}

std::map<std::string, std::string> Store::statuses() {
  return retry("reading statuses", [&] {
    std::map<std::string, std::string> out;
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, "SELECT id, status FROM points", -1, &st, nullptr);
    if (rc == SQLITE_OK)
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.emplace(text_col(st, 0), text_col(st, 1));
    const std::string msg = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    if (is_busy(rc)) throw Busy{msg};
    if (rc != SQLITE_DONE) throw UsageError(fmt::format("{} {}: cannot read the points: {}", option_, path_, msg));
    return out;
  });
}

std::string Store::status(const std::string& id) {
  return retry("reading a status", [&] {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, "SELECT status FROM points WHERE id = ?", -1, &st, nullptr);
    std::string out;
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(st, 1, id.c_str(), static_cast<int>(id.size()), nullptr);
      rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) out = text_col(st, 0), rc = SQLITE_DONE;
    }
    const std::string msg = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    if (is_busy(rc)) throw Busy{msg};
    if (rc != SQLITE_DONE) throw UsageError(fmt::format("{} {}: cannot read a point: {}", option_, path_, msg));
    return out;
  });
}

bool Store::put(const SweepSpec& spec, const Point& p, const PointResult& r, bool replace) {
  TS_ASSERT(insert_ != nullptr && replace_ != nullptr, "ensure_key_columns before put");
  nlohmann::ordered_json ov = nlohmann::ordered_json::object();
  for (const auto& o : p.overrides) {
    switch (o.kind) {
      case Override::Kind::Integer: ov[o.key] = o.integer; break;
      case Override::Kind::Real: ov[o.key] = o.real; break;
      case Override::Kind::Boolean: ov[o.key] = o.integer != 0; break;
      case Override::Kind::Text: ov[o.key] = o.display; break;
    }
  }
  // Recorded by the scenario's absolute path: a sweep given by a relative or an absolute path
  // writes the same rows.
  const std::string inputs = nlohmann::ordered_json{{"scenario", spec.scenario_abs}, {"overrides", ov}}.dump();
  sqlite3_stmt* s = replace ? replace_ : insert_;
  return retry("storing a point", [&] {
    exec("BEGIN IMMEDIATE");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    int i = 1;
    // Text is bound without a copy (SQLITE_STATIC, written as nullptr: the macro is an old-style
    // cast): every bound string outlives the sqlite3_step that reads it.
    auto text = [&](const std::string& t) { sqlite3_bind_text(s, i++, t.c_str(), static_cast<int>(t.size()), nullptr); };
    text(p.id);
    text(spec.name);
    sqlite3_bind_int64(s, i++, static_cast<sqlite3_int64>(p.index));
    text(spec.scenario_abs);
    text(inputs);
    text(r.status);
    text(r.reason);
    text(r.dropped);
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
    const int rc = sqlite3_step(s);
    const std::string msg = sqlite3_errmsg(db_);
    sqlite3_reset(s);
    if (is_busy(rc)) throw Busy{msg};
    if (rc != SQLITE_DONE) {
      throw UsageError(fmt::format("{} {}: cannot store point {}: {}", option_, path_, p.index, msg));
    }
    const bool written = sqlite3_changes(db_) > 0;
    exec("COMMIT");
    return written;
  });
}

std::vector<StoredRow> Store::rows(const std::vector<Point>& points) {
  std::string cols = "status, reason, metrics_json, dropped";
  for (const char* m : kMetricColumns) cols += std::string(", ") + m;
  return retry("reading the points", [&] {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, fmt::format("SELECT {} FROM points WHERE id = ?", cols).c_str(), -1, &st, nullptr);
    std::vector<StoredRow> out;
    for (std::size_t pi = 0; rc == SQLITE_OK && pi < points.size(); ++pi) {
      const auto& p = points[pi];
      sqlite3_reset(st);
      sqlite3_bind_text(st, 1, p.id.c_str(), static_cast<int>(p.id.size()), nullptr);
      const int step = sqlite3_step(st);
      if (step == SQLITE_DONE) continue;
      if (step != SQLITE_ROW) {
        rc = step;
        break;
      }
      StoredRow row;
      row.index = p.index;
      row.point = p;
      row.result.index = p.index;
      row.result.id = p.id;
      row.result.status = text_col(st, 0);
      row.result.reason = text_col(st, 1);
      row.result.metrics_json = text_col(st, 2);
      row.result.dropped = text_col(st, 3);
      for (std::size_t m = 0; m < kMetricCount; ++m) {
        const int c = static_cast<int>(4 + m);
        if (sqlite3_column_type(st, c) != SQLITE_NULL) row.result.metrics[m] = sqlite3_column_double(st, c);
      }
      out.push_back(std::move(row));
    }
    const std::string msg = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    if (is_busy(rc)) throw Busy{msg};
    if (rc != SQLITE_OK) throw UsageError(fmt::format("{} {}: cannot read the points: {}", option_, path_, msg));
    return out;
  });
}

}  // namespace trainsim::sweep
