// Sweep databases that can be shared (issue 14 point 4) and result identity (issue 12 point 9):
// concurrent writers, incompatible files refused unchanged, relative and absolute scenario
// paths naming the same run, ids that change with the build and the input bytes, names and
// output paths that cannot escape or be half-written.
#include <sqlite3.h>

#include <filesystem>
#include <set>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support.hpp"
#include "sweep/runner.hpp"
#include "sweep/spec.hpp"
#include "sweep/store.hpp"

using namespace ts_test;
namespace fs = std::filesystem;

namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// 2 x 3 x 2 x 2 = 24 points on the small Llama-3-8B base (64 GPUs): about a millisecond each.
const char* kAxes =
    "[axes]\n"
    "\"plan.schedule\" = [\"1f1b\", \"zb1p\"]\n"
    "\"cluster.gpu\" = [\"h100-sxm\", \"h200\", \"a100-sxm-80g\"]\n"
    "\"plan.micro_batch\" = [1, 2]\n"
    "[[link]]\n"
    "values = [{ \"plan.dp\" = 16, \"plan.pp\" = 4 }, { \"plan.dp\" = 32, \"plan.pp\" = 2 }]\n";

fs::path write_sweep(const fs::path& dir, const std::string& scenario, const std::string& name = "s.toml",
                     const std::string& extra = "") {
  const fs::path p = dir / name;
  write_file(p, "name = \"shared\"\nscenario = \"" + scenario + "\"\n" + extra + kAxes);
  return p;
}

struct Counts {
  long rows = 0, ids = 0, indices = 0;
};

Counts counts(const fs::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.string().c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT point_index) FROM points", -1, &st,
                             nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  Counts c{sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2)};
  sqlite3_finalize(st);
  sqlite3_close(h);
  return c;
}

void sql(const fs::path& db, const std::string& stmt) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.string().c_str(), &h) == SQLITE_OK);
  REQUIRE(sqlite3_exec(h, stmt.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);
}

}  // namespace

TEST_CASE("two sweeps writing one database at once both finish, every point stored once") {
  const auto dir = temp_dir("sweep-concurrent");
  const auto s = write_sweep(dir, data("scenarios/sweeps/base/llama3-8b-64xh100.toml").string());
  const auto db = dir / "shared.sqlite";
  // Both start together (one shell, two background jobs); one runs on two threads.
  const std::string bin = trainsim_bin();
  const std::string cmd = fmt::format(
      "cd {} && ('{}' sweep {} --db {} -q > a.out 2> a.err; echo $? > a.rc) & "
      "(cd {} && '{}' sweep {} --db {} -q --jobs 2 > b.out 2> b.err; echo $? > b.rc) & wait",
      q(dir), bin, q(s), q(db), q(dir), bin, q(s), q(db));
  REQUIRE(std::system(cmd.c_str()) == 0);
  INFO(read_file(dir / "a.err") << read_file(dir / "b.err"));
  CHECK(read_file(dir / "a.rc") == "0\n");
  CHECK(read_file(dir / "b.rc") == "0\n");
  const Counts c = counts(db);
  CHECK(c.rows == 24);
  CHECK(c.ids == 24);
  CHECK(c.indices == 24);
  // Between them they evaluated or reused every point; a third run reuses all.
  const auto r = run_trainsim("sweep " + q(s) + " --db " + q(db) + " -q");
  CHECK(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluated 0, reused 24"));
  fs::remove_all(dir);
}

TEST_CASE("an incompatible existing database is refused before anything in it changes") {
  const auto dir = temp_dir("sweep-incompatible");
  const auto s = write_sweep(dir, data("scenarios/sweeps/base/llama3-8b-64xh100.toml").string());
  struct Case {
    std::string name, setup, expect;
  };
  const std::vector<Case> cases = {
      {"text.sqlite", "", "not a readable SQLite database"},
      {"foreign.sqlite", "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)", "table customers"},
      {"layout.sqlite", "CREATE TABLE points (id TEXT PRIMARY KEY, status TEXT)", "another layout"},
      {"newer.sqlite", "", "newer trainsim"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const auto db = dir / c.name;
    if (c.name == "text.sqlite") {
      write_file(db, "this is a text file, not a database\n");
    } else if (c.name == "newer.sqlite") {
      REQUIRE(run_trainsim("sweep " + q(s) + " --db " + q(db) + " -q --max-points 1").status == 0);
      sql(db, "UPDATE trainsim_store SET value = '99' WHERE key = 'version'; PRAGMA journal_mode=DELETE");
    } else {
      sql(db, c.setup);
    }
    const std::string before = read_file(db);
    const auto r = run_trainsim("sweep " + q(s) + " --db " + q(db) + " -q");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--db " + db.string()));
    CHECK_THAT(r.err, Catch::Contains(c.expect));
    CHECK_THAT(r.err, Catch::Contains("refusing to change it"));
    CHECK(read_file(db) == before);
    CHECK_FALSE(fs::exists(db.string() + "-wal"));
  }
  fs::remove_all(dir);
}

TEST_CASE("relative and absolute scenario paths name the same run") {
  const auto dir = temp_dir("sweep-paths");
  fs::create_directories(dir / "sweeps");
  const std::string base = data("scenarios/sweeps/base/llama3-8b-64xh100.toml").string();
  const auto rel = fs::relative(base, dir / "sweeps");
  const auto a = write_sweep(dir / "sweeps", rel.string(), "relative.toml");
  const auto b = write_sweep(dir / "sweeps", base, "absolute.toml");
  const auto db = dir / "paths.sqlite";
  auto r = run_trainsim("sweep sweeps/relative.toml --db paths.sqlite -q", dir.string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluated 24, reused 0"));
  r = run_trainsim("sweep " + q(b) + " --db " + q(db) + " -q");
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluated 0, reused 24"));
  (void)a;
  fs::remove_all(dir);
}

TEST_CASE("result ids change with the build and with the bytes of every input file") {
  const auto dir = temp_dir("sweep-identity");
  // A copy of the data folder (models, profiles, the base scenario), edited below.
  for (const char* d : {"models", "profiles", "scenarios/sweeps/base"}) {
    fs::create_directories(dir / "data" / d);
    fs::copy(data(d), dir / "data" / d, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }
  const auto scen = dir / "data/scenarios/sweeps/base/llama3-8b-64xh100.toml";
  const auto s = write_sweep(dir, scen.string());
  const auto db = dir / "id.sqlite";
  const std::string env = "TRAINSIM_DATA='" + (dir / "data").string() + "' ";
  auto sweep = [&] { return run_trainsim("sweep " + q(s) + " --db " + q(db) + " -q", "", env); };
  auto r = sweep();
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluated 24, reused 0"));
  r = sweep();
  CHECK_THAT(r.err, Catch::Contains("evaluated 0, reused 24"));

  // Another build (this test executable, whose GNU build-id differs from trainsim's): nothing
  // is reused.
  {
    ::setenv("TRAINSIM_DATA", (dir / "data").string().c_str(), 1);
    const auto spec = trainsim::sweep::load_sweep(s.string());
    trainsim::sweep::Store store(db.string());
    trainsim::sweep::RunOptions opt;
    opt.progress = false;
    const auto sum = trainsim::sweep::run_sweep(spec, store, opt);
    CHECK(sum.reused == 0);
    CHECK(sum.evaluated == 24);
    ::setenv("TRAINSIM_DATA", source_dir().string().c_str(), 1);
  }

  // One byte of a comment in the model file the scenario reads: every point is new.
  auto model_files = [&] {
    std::vector<fs::path> v;
    for (const auto& f : fs::directory_iterator(dir / "data/models")) v.push_back(f.path());
    return v;
  }();
  const std::string scen_text = read_file(scen);
  bool edited = false;
  for (const auto& m : model_files)
    if (scen_text.find(m.filename().string()) != std::string::npos) {
      write_file(m, read_file(m) + "# edited\n");
      edited = true;
    }
  REQUIRE(edited);
  r = sweep();
  CHECK_THAT(r.err, Catch::Contains("evaluated 24, reused 0"));
  // A hardware profile (data folder) the points use: new again.
  write_file(dir / "data/profiles/hardware/h200.toml", read_file(dir / "data/profiles/hardware/h200.toml") + "# edited\n");
  r = sweep();
  CHECK_THAT(r.err, Catch::Contains("evaluated 24, reused 0"));
  r = sweep();
  CHECK_THAT(r.err, Catch::Contains("evaluated 0, reused 24"));
  fs::remove_all(dir);
}

TEST_CASE("a sweep's name and output paths cannot leave the folder or half-write") {
  const auto dir = temp_dir("sweep-names");
  fs::create_directories(dir / "work");
  const std::string base = data("scenarios/sweeps/base/llama3-8b-64xh100.toml").string();
  for (const std::string name : {"../x", "/tmp/x", ".hidden", "a/b", ""}) {
    INFO(name);
    write_file(dir / "work/n.toml", "name = \"" + name + "\"\nscenario = \"" + base + "\"\n[axes]\n\"plan.pp\" = [2, 4]\n");
    const auto r = run_trainsim("sweep n.toml -q", (dir / "work").string());
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("n.toml:1"));
    CHECK_THAT(r.err, Catch::Contains("'name'"));
  }
  CHECK_FALSE(fs::exists(dir / "x.sqlite"));
  CHECK(fs::is_empty(dir / "work") == false);  // only n.toml
  for (const auto& f : fs::directory_iterator(dir / "work")) CHECK(f.path().filename() == "n.toml");

  // --csv to a folder, or into a missing folder: refused before the database is made.
  const auto s = write_sweep(dir, base);
  for (const std::string& csv : {dir.string(), (dir / "missing" / "x.csv").string()}) {
    INFO(csv);
    const auto r = run_trainsim("sweep " + q(s) + " --db " + q(dir / "c.sqlite") + " --csv " + q(csv) + " -q");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--csv"));
    CHECK_FALSE(fs::exists(dir / "c.sqlite"));
  }
  // More points than the work limit: refused at the dimension that passes it.
  // Axes in key order (toml++ tables are sorted): 100 x 99 x 99 = 980,100 points, then x 99 at
  // training.seq_len passes 10,000,000.
  std::string values;
  for (int v = 0; v < 100; ++v) values += fmt::format("{}{}", v ? ", " : "", v);
  write_file(dir / "many.toml", "scenario = \"" + base + "\"\n[axes]\n\"plan.comm_sms\" = [" + values +
                                    "]\n\"training.seq_len\" = [" + values.substr(values.find(',') + 2) +
                                    "]\n\"plan.micro_batch\" = [" + values.substr(values.find(',') + 2) +
                                    "]\n\"training.global_batch\" = [" + values.substr(values.find(',') + 2) + "]\n");
  const auto r = run_trainsim("sweep " + q(dir / "many.toml") + " --db " + q(dir / "m.sqlite") + " -q");
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("work limit"));
  CHECK_THAT(r.err, Catch::Contains("axes.training.seq_len"));
  CHECK_FALSE(fs::exists(dir / "m.sqlite"));
  fs::remove_all(dir);
}
