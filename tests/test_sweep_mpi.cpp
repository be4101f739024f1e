// trainsim sweep on many processes (issue 13 item 4, docs/sweep.md "Many processes: MPI"):
// `mpirun -np N trainsim sweep` writes the rows, CSV and printed output of one process, resumes,
// and a rank killed with SIGKILL mid-sweep loses no stored point: the rerun evaluates exactly the
// points not stored, and the final rows equal a single process's.
//
// Runs OpenMPI's mpirun on this machine only: as root in a container (OMPI_ALLOW_RUN_AS_ROOT),
// more ranks than cores (--oversubscribe), processes started without ssh (plm isolated), shared
// memory without cross-process copies (vader single_copy none: containers often forbid them).
// Skipped, saying so, where trainsim was built without MPI or mpirun is absent.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support.hpp"
#include "sweep/mpi.hpp"

extern char** environ;

using namespace ts_test;
namespace fs = std::filesystem;

namespace {

const std::string kMpiexec = TRAINSIM_MPIEXEC;  // found by CMake (FindMPI), or empty

bool mpi_usable() {
  static const bool ok = [] {
    if (!trainsim::sweep::mpi_built() || kMpiexec.empty() || !fs::exists(kMpiexec)) {
      fmt::print("MPI tests skipped: {}\n", !trainsim::sweep::mpi_built() ? "trainsim was built without MPI (TRAINSIM_MPI)"
                                                                        : "mpirun not found");
      return false;
    }
    for (const auto& [k, v] : {std::pair{"OMPI_ALLOW_RUN_AS_ROOT", "1"}, {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
                               {"OMPI_MCA_plm", "isolated"}, {"OMPI_MCA_btl_vader_single_copy_mechanism", "none"},
                               {"OMPI_MCA_rmaps_base_oversubscribe", "1"},
                               // a failed job ends at once (the default waits 1 s before SIGKILL)
                               {"OMPI_MCA_odls_base_sigkill_timeout", "0"}})
      ::setenv(k, v, 1);
    return true;
  }();
  return ok;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// `mpirun -np N trainsim ARGS` (at most 2 minutes: a hang fails the test instead of CI).
RunResult run_mpi(int np, const std::string& args, const std::string& cwd) {
  return run_trainsim(args, cwd, fmt::format("timeout 120 '{}' -np {} --oversubscribe ", kMpiexec, np));
}

// Every column of every row, in point order, as text: what "the same rows" means. (Opened
// writable, without creating: after a kill, the first reader of a WAL database recovers it.)
std::vector<std::string> all_rows(const fs::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.string().c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT * FROM points ORDER BY point_index", -1, &st, nullptr) == SQLITE_OK);
  std::vector<std::string> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const int type = sqlite3_column_type(st, c);
      const unsigned char* t = sqlite3_column_text(st, c);
      row += fmt::format("{}:{}={}|", sqlite3_column_name(st, c), type,
                         type == SQLITE_NULL ? "" : std::string(reinterpret_cast<const char*>(t)));
    }
    out.push_back(row);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

// The ids of the stored rows, read while a sweep may be writing (WAL: readers never block it);
// empty while the database does not exist yet. Read-only while the sweep may still be creating
// the file; writable after a kill (the first reader recovers the WAL of a killed writer).
std::set<std::string> stored_ids(const fs::path& db, bool writable = false) {
  std::set<std::string> ids;
  if (!fs::exists(db)) return ids;
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.string().c_str(), &h, writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 1000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, "SELECT id FROM points", -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) ids.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return ids;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// The rank (OMPI_COMM_WORLD_RANK) of a process, -1 if it has none.
int rank_of(pid_t pid) {
  const std::string env = read_file(fmt::format("/proc/{}/environ", pid));
  const std::string key = "OMPI_COMM_WORLD_RANK=";
  for (std::size_t p = 0; p < env.size();) {
    const auto end = env.find('\0', p);
    const std::string var = env.substr(p, end == std::string::npos ? std::string::npos : end - p);
    if (var.rfind(key, 0) == 0) return std::atoi(var.c_str() + key.size());
    if (end == std::string::npos) break;
    p = end + 1;
  }
  return -1;
}

// The processes mpirun started (its children; they are the ranks with plm isolated).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::istringstream in(read_file(fmt::format("/proc/{}/task/{}/children", pid, pid)));
  for (pid_t c; in >> c;) out.push_back(c);
  return out;
}

// Both sweeps below are on the small Llama-3-8B base (64 H100, dp16 pp4).
std::string base() { return data("scenarios/sweeps/base/llama3-8b-64xh100.toml").string(); }

// 3 schedules x 3 GPUs x 2 micro-batch sizes x 3 layouts = 54 points of about 30 ms each (a
// large global batch: 1024 micro-batches at dp16), so that a kill lands mid-sweep.
const char* kSlow =
    "[axes]\n"
    "\"training.global_batch\" = [16384]\n"
    "\"plan.schedule\" = [\"1f1b\", \"zb1p\", \"gpipe\"]\n"
    "\"cluster.gpu\" = [\"h100-sxm\", \"h200\", \"a100-sxm-80g\"]\n"
    "\"plan.micro_batch\" = [1, 2]\n"
    "[[link]]\n"
    "values = [{ \"plan.dp\" = 16, \"plan.pp\" = 4 }, { \"plan.dp\" = 32, \"plan.pp\" = 2 }, { \"plan.dp\" = 8, \"plan.pp\" = 8 }]\n";
constexpr std::size_t kSlowPoints = 1 * 3 * 3 * 2 * 3;

}  // namespace

TEST_CASE("mpi: mpirun -np 2 and -np 3 store the rows, CSV and output of one process; only rank 0 prints") {
  if (!mpi_usable()) return;
  const auto dir = temp_dir("sweep-mpi");
  const std::string sweep = q(data("scenarios/sweeps/llama3-8b-plans.toml"));
  // 5 layouts x 3 schedules x 2 micro-batch sizes x 3 GPUs (the file's dimensions).
  const std::size_t points = 5 * 3 * 2 * 3;
  const auto one = run_trainsim("sweep " + sweep + " --db one.sqlite --csv one.csv --best cost --quiet", dir.string());
  REQUIRE(one.status == 0);
  for (int np : {2, 3}) {
    INFO("np " << np);
    const std::string db = fmt::format("np{}.sqlite", np), csv = fmt::format("np{}.csv", np);
    const auto r = run_mpi(np, "sweep " + sweep + " --db " + db + " --csv " + csv + " --best cost --quiet", dir.string());
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(count_of(r.err, "sweep llama3-8b-plans: ") == 1);  // one summary: the other ranks print nothing
    CHECK_THAT(r.err, Catch::Contains(fmt::format("{} points: evaluated {}, reused 0", points, points)));
    CHECK(count_of(r.err, "wrote " + csv) == 1);
    CHECK(r.out == one.out);  // the best plans, byte for byte
    CHECK(read_file(dir / csv) == read_file(dir / "one.csv"));
    const auto rows = all_rows(dir / db);
    CHECK(rows.size() == points);
    CHECK(rows == all_rows(dir / "one.sqlite"));
  }
}

TEST_CASE("mpi: an interrupted distributed sweep resumes with only the missing points") {
  if (!mpi_usable()) return;
  const auto dir = temp_dir("sweep-mpi-resume");
  const std::string sweep = q(data("scenarios/sweeps/llama3-8b-plans.toml"));
  auto r = run_mpi(2, "sweep " + sweep + " --db r.sqlite --max-points 7 --quiet", dir.string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("90 points: evaluated 7, reused 0"));
  r = run_mpi(2, "sweep " + sweep + " --db r.sqlite --quiet", dir.string());
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("90 points: evaluated 83, reused 7"));
  REQUIRE(run_trainsim("sweep " + sweep + " --db one.sqlite --quiet", dir.string()).status == 0);
  CHECK(all_rows(dir / "r.sqlite") == all_rows(dir / "one.sqlite"));
}

TEST_CASE("mpi: kill -9 of a rank mid-sweep loses no stored point; the rerun evaluates only the rest") {
  if (!mpi_usable()) return;
  const int victim = GENERATE(1, 0);  // a worker, then rank 0 (which holds the database)
  INFO("killed rank " << victim);
  const auto dir = temp_dir(fmt::format("sweep-mpi-kill{}", victim));
  const fs::path sweep = dir / "slow.toml";
  write_file(sweep, "scenario = \"" + base() + "\"\n" + kSlow);
  const fs::path db = dir / "k.sqlite";

  // mpirun -np 2 in the background, its output to files.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, (dir / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, (dir / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const std::vector<std::string> args = {kMpiexec, "-np", "2", "--oversubscribe", trainsim_bin(), "sweep",
                                         sweep.string(), "--db", db.string(), "--quiet"};
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t mpirun = 0;
  REQUIRE(posix_spawn(&mpirun, kMpiexec.c_str(), &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);

  // Once at least 5 points are stored, SIGKILL the victim.
  const auto start = std::chrono::steady_clock::now();
  std::set<std::string> before;
  int status = 0;
  bool exited = false;
  while ((before = stored_ids(db)).size() < 5) {
    if (::waitpid(mpirun, &status, WNOHANG) == mpirun) {
      exited = true;
      break;
    }
    REQUIRE(std::chrono::steady_clock::now() - start < std::chrono::seconds(120));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE_FALSE(exited);
  pid_t target = 0;
  for (pid_t c : children_of(mpirun))
    if (rank_of(c) == victim) target = c;
  REQUIRE(target > 0);
  REQUIRE(::kill(target, SIGKILL) == 0);
  // mpirun sees the rank die and ends the job.
  REQUIRE(::waitpid(mpirun, &status, 0) == mpirun);
  CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));

  // Every point stored before the kill is still stored; the sweep did not finish.
  const auto after = stored_ids(db, true);
  for (const auto& id : before) CHECK(after.count(id) == 1);
  const std::size_t stored = after.size();
  CHECK(stored >= 5);
  REQUIRE(stored < kSlowPoints);

  // The rerun (on two ranks again) evaluates exactly the points not stored.
  const auto r = run_mpi(2, "sweep " + q(sweep) + " --db " + q(db) + " --quiet", dir.string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains(fmt::format("{} points: evaluated {}, reused {}", kSlowPoints, kSlowPoints - stored, stored)));
  // And the rows are a single process's (evaluated once for both victims).
  static const std::vector<std::string> one = [&] {
    REQUIRE(run_trainsim("sweep " + q(sweep) + " --db one.sqlite --quiet", dir.string()).status == 0);
    return all_rows(dir / "one.sqlite");
  }();
  const auto rows = all_rows(db);
  CHECK(rows.size() == kSlowPoints);
  CHECK(rows == one);
}

TEST_CASE("mpi: mpirun -np 2 trainsim plan prints and stores what one process does; the other rank prints nothing") {
  if (!mpi_usable()) return;
  const auto dir = temp_dir("plan-mpi");
  // The Llama-3-8B base: about a million plans screened on every rank, 25 re-run at event level,
  // shared out between the ranks by the sweep machinery.
  const std::string args = "plan " + q(base()) + " --quiet --csv {0}.csv --db {0}.sqlite";
  const auto one = run_trainsim(fmt::format(fmt::runtime(args), "one"), dir.string());
  REQUIRE(one.status == 0);
  const auto r = run_mpi(2, fmt::format(fmt::runtime(args), "np2"), dir.string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(count_of(r.err, "plan llama3-8b-64xh100: screened") == 1);  // one summary line
  CHECK_THAT(r.err, Catch::Contains("25 points: evaluated 25, reused 0"));
  CHECK(r.out == one.out);  // the report, byte for byte
  CHECK(read_file(dir / "np2.csv") == read_file(dir / "one.csv"));
  const auto rows = all_rows(dir / "np2.sqlite");
  CHECK(rows.size() == 25);
  CHECK(rows == all_rows(dir / "one.sqlite"));
  // Resumed under mpirun: every re-run is found in the store.
  const auto again = run_mpi(2, fmt::format(fmt::runtime(args), "np2"), dir.string());
  REQUIRE(again.status == 0);
  CHECK_THAT(again.err, Catch::Contains("25 points: evaluated 0, reused 25"));
  CHECK(again.out == one.out);
}

TEST_CASE("mpi: failures end every rank with one message and one status") {
  if (!mpi_usable()) return;
  const auto dir = temp_dir("sweep-mpi-fail");
  const std::string sweep = q(data("scenarios/sweeps/llama3-8b-plans.toml"));
  // Only rank 0 opens the database: --db a folder fails there alone, and every rank stops.
  fs::create_directories(dir / "folder");
  auto r = run_mpi(2, "sweep " + sweep + " --db folder --quiet", dir.string());
  CHECK(r.status == 2);
  CHECK(count_of(r.err, "trainsim: error: --db") == 1);
  // A sweep file every rank refuses: one message.
  write_file(dir / "bad.toml", "scenario = \"" + base() + "\"\n[axes]\n\"plan.pp\" = []\n");
  r = run_mpi(2, "sweep bad.toml --db b.sqlite", dir.string());
  CHECK(r.status == 2);
  CHECK(count_of(r.err, "an axis needs at least one value") == 1);
  CHECK_FALSE(fs::exists(dir / "b.sqlite"));
  // Ranks that read different sweeps (here, different files: MPMD) are refused before any point.
  write_file(dir / "a.toml", "scenario = \"" + base() + "\"\n[axes]\n\"plan.micro_batch\" = [1, 2]\n");
  write_file(dir / "b.toml", "scenario = \"" + base() + "\"\n[axes]\n\"plan.micro_batch\" = [1, 4]\n");
  r = run_trainsim(fmt::format("sweep a.toml --db ab.sqlite : -np 1 '{}' sweep b.toml --db ab.sqlite", trainsim_bin()),
                   dir.string(), fmt::format("timeout 120 '{}' -np 1 --oversubscribe ", kMpiexec));
  CHECK(r.status == 2);
  CHECK(count_of(r.err, "trainsim: error: rank 1: sweep b.toml: this rank read another sweep than rank 0") == 1);
  CHECK(all_rows(dir / "ab.sqlite").empty());
  // trainsim plan under mpirun: a --db rank 0 alone cannot open, and a scenario every rank
  // refuses, each one message and status 2, no rows written.
  r = run_mpi(2, "plan " + q(base()) + " --db folder --quiet", dir.string());
  CHECK(r.status == 2);
  CHECK(count_of(r.err, "trainsim: error: --db") == 1);
  CHECK(r.out.empty());
  write_file(dir / "bad-scenario.toml", "name = \"x\"\nmodel = \"no-such-model.toml\"\n");
  r = run_mpi(2, "plan bad-scenario.toml --db p.sqlite --quiet", dir.string());
  CHECK(r.status == 2);
  CHECK(count_of(r.err, "bad-scenario.toml:") == 1);
  CHECK(r.out.empty());
  CHECK_FALSE(fs::exists(dir / "p.sqlite"));
  // Commands that do not share work refuse to run as several processes.
  r = run_mpi(2, "run " + q(base()), dir.string());
  CHECK(r.status == 2);
  CHECK(count_of(r.err, "only 'trainsim sweep' and 'trainsim plan' share their work between processes") == 1);
  CHECK(r.out.empty());
}
