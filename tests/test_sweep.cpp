// trainsim sweep: the cartesian product, linked keys, infeasible points, the SQLite store,
// resume, --best under constraints, CSV export, and strict sweep files.
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "support.hpp"
#include "sweep/mpi.hpp"
#include "sweep/runner.hpp"
#include "sweep/spec.hpp"
#include "sweep/store.hpp"

using namespace ts_test;
namespace fs = std::filesystem;

namespace {

std::string base_scenario() { return data("scenarios/sweeps/base/llama3-8b-64xh100.toml").string(); }

// A sweep file on the small Llama-3-8B base (64 GPUs, dp16 pp4 1f1b).
fs::path write_sweep(const fs::path& dir, const std::string& body, const std::string& name = "s.toml") {
  const fs::path p = dir / name;
  write_file(p, "scenario = \"" + base_scenario() + "\"\n" + body);
  return p;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

struct Row {
  std::size_t index;
  std::string status, reason;
  double cost = 0, days = 0;
};

// Reads the points table back with plain SQL, by point index.
std::map<std::size_t, Row> read_rows(const fs::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.string().c_str(), &h) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT point_index, status, reason, cost_usd, wall_clock_days FROM points", -1, &st, nullptr) == SQLITE_OK);
  std::map<std::size_t, Row> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    Row r;
    r.index = static_cast<std::size_t>(sqlite3_column_int64(st, 0));
    r.status = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
    r.reason = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
    r.cost = sqlite3_column_double(st, 3);
    r.days = sqlite3_column_double(st, 4);
    out[r.index] = r;
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

void sql(const fs::path& db, const std::string& stmt) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.string().c_str(), &h) == SQLITE_OK);
  REQUIRE(sqlite3_exec(h, stmt.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);
}

const char* kMixed =
    "[axes]\n"
    "\"plan.schedule\" = [\"1f1b\", \"zb1p\"]\n"
    "\"cluster.gpu\" = [\"h100-sxm\", \"h200\", \"a100-sxm-80g\"]\n"
    "[[link]]\n"
    "values = [{ \"plan.dp\" = 16, \"plan.pp\" = 4 }, { \"plan.dp\" = 32, \"plan.pp\" = 2 }]\n";

}  // namespace

TEST_CASE("sweep: the cartesian product of axes and linked groups, in file order") {
  const auto dir = temp_dir("sweep-product");
  const auto spec = trainsim::sweep::load_sweep(write_sweep(dir, kMixed).string());
  REQUIRE(spec.dims.size() == 3);
  std::size_t expected = 1;
  for (const auto& d : spec.dims) expected *= d.settings.size();
  CHECK(expected == 2 * 3 * 2);
  CHECK(spec.size() == expected);
  CHECK(spec.keys == std::vector<std::string>{"plan.schedule", "cluster.gpu", "plan.dp", "plan.pp"});

  const auto pts = trainsim::sweep::all_points(spec);
  std::set<std::string> ids, canon;
  for (const auto& p : pts) {
    ids.insert(p.id);
    canon.insert(p.canonical);
    REQUIRE(p.overrides.size() == 4);
  }
  CHECK(ids.size() == pts.size());
  CHECK(canon.size() == pts.size());
  // The last dimension varies fastest; linked keys move together.
  CHECK(pts[0].sets() == std::vector<std::string>{"plan.schedule=\"1f1b\"", "cluster.gpu=\"h100-sxm\"", "plan.dp=16", "plan.pp=4"});
  CHECK(pts[1].sets() == std::vector<std::string>{"plan.schedule=\"1f1b\"", "cluster.gpu=\"h100-sxm\"", "plan.dp=32", "plan.pp=2"});
  CHECK(pts[2].sets()[1] == "cluster.gpu=\"h200\"");
  CHECK(pts[6].sets()[0] == "plan.schedule=\"zb1p\"");
  // Ids depend on the values, not on where the sweep file is or how it orders its axes.
  const auto spec2 = trainsim::sweep::load_sweep(write_sweep(dir,
      "[[link]]\nvalues = [{ \"plan.pp\" = 4, \"plan.dp\" = 16 }, { \"plan.pp\" = 2, \"plan.dp\" = 32 }]\n"
      "[axes]\nplan.schedule = [\"1f1b\", \"zb1p\"]\ncluster.gpu = [\"h100-sxm\", \"h200\", \"a100-sxm-80g\"]\n", "t.toml").string());
  std::set<std::string> ids2;
  for (const auto& p : trainsim::sweep::all_points(spec2)) ids2.insert(p.id);
  CHECK(ids2 == ids);
}

TEST_CASE("sweep: infeasible points are recorded with the reason") {
  const auto dir = temp_dir("sweep-infeasible");
  const auto s = write_sweep(dir,
      "[axes]\n"
      "\"plan.dp\" = [16, 8]\n"  // 8 * pp4 != 64 GPUs
      "\"hardware.memory.capacity.value\" = [\"80GB\", \"8GB\"]\n");
  const auto db = dir / "r.sqlite";
  const auto r = run_trainsim("sweep " + q(s) + " --db " + q(db));
  REQUIRE(r.status == 0);
  const auto rows = read_rows(db);
  REQUIRE(rows.size() == 4);
  CHECK(rows.at(0).status == "ok");
  CHECK(rows.at(0).reason.empty());
  CHECK(rows.at(0).cost > 0);
  CHECK(rows.at(1).status == "infeasible");  // dp16, 8GB
  CHECK_THAT(rows.at(1).reason, Catch::Contains("out of memory"));
  for (std::size_t i : {2u, 3u}) {  // dp8: an invalid plan, named at its key
    CHECK(rows.at(i).status == "infeasible");
    CHECK_THAT(rows.at(i).reason, Catch::Contains("invalid plan"));
    CHECK_THAT(rows.at(i).reason, Catch::Contains("plan.dp"));
  }
}

TEST_CASE("sweep: resume evaluates only the missing points; the result equals a fresh run") {
  const auto dir = temp_dir("sweep-resume");
  const auto s = write_sweep(dir, kMixed);
  const auto db = dir / "r.sqlite";
  auto r = run_trainsim("sweep " + q(s) + " --db " + q(db) + " --max-points 5");
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluated 5, reused 0"));
  CHECK(read_rows(db).size() == 5);

  r = run_trainsim("sweep " + q(s) + " --db " + q(db));
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluated 7, reused 5"));

  // Rows lost (as if never committed) are recomputed, and only those.
  sql(db, "DELETE FROM points WHERE point_index IN (1, 4, 9)");
  r = run_trainsim("sweep " + q(s) + " --db " + q(db) + " --csv " + q(dir / "resumed.csv"));
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluated 3, reused 9"));

  r = run_trainsim("sweep " + q(s) + " --db " + q(db));
  CHECK_THAT(r.err, Catch::Contains("evaluated 0, reused 12"));

  // A fresh run, on two worker threads, gives the same rows.
  r = run_trainsim("sweep " + q(s) + " --db " + q(dir / "fresh.sqlite") + " --jobs 2 --csv " + q(dir / "fresh.csv"));
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluated 12, reused 0"));
  CHECK(read_file(dir / "resumed.csv") == read_file(dir / "fresh.csv"));
}

TEST_CASE("sweep: CSV columns") {
  const auto dir = temp_dir("sweep-csv");
  const auto s = write_sweep(dir, kMixed);
  const auto r = run_trainsim("sweep " + q(s) + " --db " + q(dir / "r.sqlite") + " --csv " + q(dir / "out.csv"));
  REQUIRE(r.status == 0);
  const std::string csv = read_file(dir / "out.csv");
  const std::string header = csv.substr(0, csv.find('\n'));
  std::string expected = "point,id,status,reason,dropped,plan.schedule,cluster.gpu,plan.dp,plan.pp";
  for (const char* m : trainsim::sweep::kMetricColumns) expected += std::string(",") + m;
  CHECK(header == expected);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 13);
  CHECK_THAT(csv, Catch::Contains("\n0,"));
  CHECK_THAT(csv, Catch::Contains(",zb1p,a100-sxm-80g,32,2,"));
}

TEST_CASE("sweep: --best orders the feasible plans under the deadline and budget") {
  const auto dir = temp_dir("sweep-best");
  const auto s = write_sweep(dir, kMixed);
  const auto db = dir / "r.sqlite";
  REQUIRE(run_trainsim("sweep " + q(s) + " --db " + q(db)).status == 0);
  const auto rows = read_rows(db);
  REQUIRE(rows.size() == 12);
  std::vector<Row> ok;
  for (const auto& [i, row] : rows)
    if (row.status == "ok") ok.push_back(row);
  REQUIRE(ok.size() >= 4);

  // Constraints that cut: a deadline at the median duration, a budget at the median cost.
  std::vector<double> days, costs;
  for (const auto& row : ok) {
    days.push_back(row.days);
    costs.push_back(row.cost);
  }
  std::sort(days.begin(), days.end());
  std::sort(costs.begin(), costs.end());
  const double deadline = days[days.size() / 2], budget = costs[costs.size() / 2];

  for (const std::string by : {"cost", "time"}) {
    std::vector<Row> want;
    for (const auto& row : ok)
      if (row.days <= deadline && row.cost <= budget) want.push_back(row);
    std::stable_sort(want.begin(), want.end(), [&](const Row& a, const Row& b) {
      return by == "cost" ? (a.cost != b.cost ? a.cost < b.cost : a.days < b.days) : (a.days != b.days ? a.days < b.days : a.cost < b.cost);
    });
    REQUIRE(!want.empty());
    const auto r = run_trainsim(fmt::format("sweep {} --db {} --best {} --deadline-days {:.17g} --budget-usd {:.17g} --top 3 --json",
                                            q(s), q(db), by, deadline, budget));
    REQUIRE(r.status == 0);
    CHECK_THAT(r.err, Catch::Contains("evaluated 0, reused 12"));
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["feasible"] == ok.size());
    CHECK(j["meeting_constraints"] == want.size());
    REQUIRE(j["plans"].size() == std::min<std::size_t>(3, want.size()));
    for (std::size_t i = 0; i < j["plans"].size(); ++i) {
      CHECK(j["plans"][i]["point"] == want[i].index);
      const double d = j["plans"][i]["wall_clock_days"];
      const double c = j["plans"][i]["cost_usd"];
      CHECK(d <= deadline);
      CHECK(c <= budget);
    }
  }
  // The text table names the winner's settings.
  const auto t = run_trainsim("sweep " + q(s) + " --db " + q(db) + " --best time");
  REQUIRE(t.status == 0);
  CHECK_THAT(t.out, Catch::Contains("Best plans of sweep s by time"));
  CHECK_THAT(t.out, Catch::Contains("cluster.gpu"));
}

TEST_CASE("sweep: bad sweep files are errors at file:line and key, and nothing is written") {
  const auto dir = temp_dir("sweep-bad");
  struct Case {
    std::string body, where, key;
  };
  const std::vector<Case> cases = {
      {"[axes]\n\"plan.pp\" = [2, 4]\nextra = 1\n", ":4", "axes.extra"},            // an axis that is not an array
      {"[axes]\n\"plan.pp\" = []\n", ":3", "axes.plan.pp"},                            // empty axis
      {"[axes]\n\"plan.pp\" = 4\n", ":3", "axes.plan.pp"},                             // not an array
      {"[axes]\n\"plan.ppp\" = [2, 4]\n", ":3", "axes.plan.ppp"},                      // not a scenario key
      {"[axes]\n\"plan.pp\" = [2, 2]\n", ":3", "axes.plan.pp"},                        // a value twice
      {"speed = \"fast\"\n[axes]\n\"plan.pp\" = [2]\n", ":2", "speed"},                // unknown top-level key
      {"[[link]]\nvalues = [{ \"plan.dp\" = 16, \"plan.pp\" = 4 }, { \"plan.dp\" = 32 }]\n", ":3", "link[1].values[2]"},
      {"[[link]]\nvalue = [{ \"plan.dp\" = 16 }]\n", ":3", "link[1].value"},          // typo in a link group
      {"[axes]\n\"plan.pp\" = [2, 4]\n[[link]]\nvalues = [{ \"plan.pp\" = 4 }]\n", ":5", "plan.pp"},  // set twice
      {"[axes]\n", ":1", "axes"},                                                      // no dimension
  };
  int n = 0;
  for (const auto& c : cases) {
    INFO(c.body);
    const auto s = write_sweep(dir, c.body, fmt::format("bad{}.toml", n));
    const auto db = dir / fmt::format("bad{}.sqlite", n++);
    const auto r = run_trainsim("sweep " + q(s) + " --db " + q(db));
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains(s.filename().string() + c.where));
    CHECK_THAT(r.err, Catch::Contains("'" + c.key + "'"));
    CHECK(!fs::exists(db));
  }
  // A scenario that does not exist, options out of place.
  const auto s = write_sweep(dir, "[axes]\n\"plan.pp\" = [2, 4]\n", "ok.toml");
  auto r = run_trainsim("sweep " + q(s) + " --db " + q(dir / "x.sqlite") + " --deadline-days 3");
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("--best"));
  r = run_trainsim("sweep " + q(s) + " --db " + q(dir / "no-such-dir" / "x.sqlite"));
  CHECK(r.status == 2);
  CHECK(!fs::exists(dir / "x.sqlite"));
  // A scenario name the operating system refuses to look up (longer than NAME_MAX, 255 bytes:
  // "File name too long", found by fuzz_sweep) is the same bad input at the scenario key, not an
  // escaped filesystem error.
  const auto longname = dir / "long.toml";
  write_file(longname, "scenario = \"" + std::string(300, 'x') + ".toml\"\n[axes]\n\"plan.pp\" = [2]\n");
  r = run_trainsim("sweep " + q(longname) + " --db " + q(dir / "long.sqlite"));
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("long.toml:1"));
  CHECK_THAT(r.err, Catch::Contains("'scenario'"));
  CHECK_THAT(r.err, Catch::Contains("no such scenario file"));
  CHECK(!fs::exists(dir / "long.sqlite"));
}

TEST_CASE("sweep: a trainsim started as several processes without MPI support refuses instead of repeating the work") {
  // What an MPI launcher puts in each process's environment (OpenMPI's mpirun; PMI for MPICH).
  const auto dir = temp_dir("sweep-launcher");
  const auto s = write_sweep(dir, "[axes]\n\"plan.pp\" = [2, 4]\n");
  const auto db = dir / "x.sqlite";
  for (const std::string env : {"OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 ", "PMI_SIZE=3 PMI_RANK=0 "}) {
    INFO(env);
    // Commands that do not share work (every build): each process would do all of it.
    auto r = run_trainsim("run " + q(base_scenario()), "", env);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("only 'trainsim sweep' and 'trainsim plan' share their work between processes"));
    CHECK(r.out.empty());
    if (trainsim::sweep::mpi_built()) continue;  // an MPI build would initialise MPI here
    r = run_trainsim("sweep " + q(s) + " --db " + q(db), "", env);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("this trainsim was built without MPI, so each process would do all of the work"));
    CHECK(!fs::exists(db));
  }
  // The launcher's other ranks leave silently, with status 0: the message is printed once, by
  // rank 0, whose status 2 is the job's (a failing rank would make mpirun end rank 0 first).
  const auto r = run_trainsim("run " + q(base_scenario()), "", "OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1 ");
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  CHECK(r.out.empty());
}
