// Sweeps without leaks (issue 13 item 5, docs/sweep.md "Base keys that a point makes invalid"):
// a key the base scenario writes that is derived from keys a point changes (the layer split and
// vpp from pp and the schedule; a phase's dp/tp/pp/cp from the main plan's shape) is dropped
// from the point when the point is invalid at it, recorded in the `dropped` column and printed;
// a point still invalid is infeasible with the reason naming the key. The expected outcomes are
// worked out by hand below, from the scenarios' numbers.
#include <sqlite3.h>

#include <map>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support.hpp"

using namespace ts_test;
namespace fs = std::filesystem;

namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

struct Row {
  std::string status, reason, dropped;
  double cost = 0, step = 0;
};

std::map<std::size_t, Row> read_rows(const fs::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.string().c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT point_index, status, reason, dropped, cost_usd, step_time_s FROM points", -1, &st,
                             nullptr) == SQLITE_OK);
  std::map<std::size_t, Row> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    Row r;
    const auto text = [&](int c) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, c))); };
    r.status = text(1);
    r.reason = text(2);
    r.dropped = text(3);
    r.cost = sqlite3_column_double(st, 4);
    r.step = sqlite3_column_double(st, 5);
    out[static_cast<std::size_t>(sqlite3_column_int64(st, 0))] = r;
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

// The small Llama-3-8B base (32 layers, 64 H100, dp16 pp4 1f1b) with `plan_extra` added to its
// [plan], written beside the test's sweeps.
fs::path llama_base(const fs::path& dir, const std::string& name, const std::string& plan_extra) {
  std::string text = read_file(data("scenarios/sweeps/base/llama3-8b-64xh100.toml"));
  const std::string model = "model = \"../../../models/llama3-8b.toml\"";
  REQUIRE(text.find(model) != std::string::npos);
  text.replace(text.find(model), model.size(), "model = \"" + data("models/llama3-8b.toml").string() + "\"");
  const auto plan = text.find("[plan]\n");
  REQUIRE(plan != std::string::npos);
  text.insert(plan + 7, plan_extra);
  const fs::path p = dir / (name + ".toml");
  write_file(p, text);
  return p;
}

fs::path sweep_file(const fs::path& dir, const std::string& name, const fs::path& base, const std::string& body) {
  const fs::path p = dir / (name + ".toml");
  write_file(p, "scenario = \"" + base.string() + "\"\n" + body);
  return p;
}

}  // namespace

TEST_CASE("sweep base keys: DeepSeek-V3 over pp 8 and 16 with dp linked") {
  const auto dir = temp_dir("sweep-base-deepseek");
  const fs::path scenario = data("scenarios/deepseek-v3-h800.toml");
  // Point 0 is the scenario as written; point 1 PP8 on 2048 GPUs.
  const auto s = sweep_file(dir, "v3-pp", scenario,
                            "[[link]]\nvalues = [{ \"plan.pp\" = 16, \"plan.dp\" = 128 }, { \"plan.pp\" = 8, \"plan.dp\" = 256 }]\n");
  const auto r = run_trainsim("sweep " + q(s) + " --db v3.sqlite --csv v3.csv --quiet", dir.string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto rows = read_rows(dir / "v3.sqlite");
  REQUIRE(rows.size() == 2);
  // A second sweep (one point) also gives the two context-extension phases a dp that fills 2048
  // GPUs at pp 8 (their cp 8 and 32 kept): stored as point 0 of sweep v3-pp8 in the same file.
  const auto s2 = sweep_file(dir, "v3-pp8", scenario,
                             "[[link]]\nvalues = [{ \"plan.pp\" = 8, \"plan.dp\" = 256, \"phases.1.plan.dp\" = 32, "
                             "\"phases.2.plan.dp\" = 8 }]\n");
  REQUIRE(run_trainsim("sweep " + q(s2) + " --db v3b.sqlite --quiet", dir.string()).status == 0);
  rows[2] = read_rows(dir / "v3b.sqlite").at(0);

  // PP16/dp128 is what the base writes: nothing is invalid, nothing dropped, and the point is
  // the published run (the same cost as `trainsim run` of the scenario).
  CHECK(rows.at(0).status == "ok");
  CHECK(rows.at(0).dropped.empty());
  const auto run = run_trainsim("run " + q(scenario) + " --json");
  REQUIRE(run.status == 0);
  CHECK(rows.at(0).cost == nlohmann::json::parse(run.out)["cost_usd"].get<double>());

  // PP8: the base's 16-entry layer_split (61 layers over 16 stages) no longer matches 8 stages
  // and is derived from plan.pp: dropped (the balanced split). The context-32k phase's plan
  // {dp 16, cp 8} gives 16*1*8*8 = 1024 GPUs, not 2048: its dp and cp are dropped together, so
  // it runs [plan]'s dp 256, cp 1; then its global_batch 1920 is not divisible by dp 256
  // (1920/256 = 7.5), and global_batch is the phase's own training key, not derived: the point
  // is infeasible, and the reason names that key (the old leak, "has 16 entries", is gone).
  CHECK(rows.at(1).status == "infeasible");
  CHECK(rows.at(1).dropped == "plan.layer_split, phases.1.plan.dp, phases.1.plan.cp");
  CHECK_THAT(rows.at(1).reason, Catch::Contains("key 'phases[1].global_batch'"));
  CHECK_THAT(rows.at(1).reason, Catch::Contains("1920 is not divisible by dp*micro_batch = 256*1 = 256"));
  CHECK_THAT(rows.at(1).reason, Catch::Contains("dropped from the base: plan.layer_split, phases.1.plan.dp, phases.1.plan.cp"));
  CHECK_THAT(rows.at(1).reason, !Catch::Contains("has 16 entries"));

  // With the phases' dp set by the point (32*8*8 = 2048 and 8*32*8 = 2048; 1920/32 = 60 and
  // 480/8 = 60 micro-batches), only the layer split is dropped (keys the point sets are never
  // dropped); what remains is a real limit: memory (PP8 holds twice the layers per GPU).
  CHECK(rows.at(2).dropped == "plan.layer_split");
  CHECK(rows.at(2).status == "infeasible");
  CHECK_THAT(rows.at(2).reason, Catch::StartsWith("out of memory: "));

  // Printed, and in the CSV.
  CHECK_THAT(r.err, Catch::Contains("base keys dropped where a point made them invalid (docs/sweep.md; the dropped column): "
                                    "plan.layer_split (1 point), phases.1.plan.dp (1 point), phases.1.plan.cp (1 point)"));
  const std::string csv = read_file(dir / "v3.csv");
  CHECK_THAT(csv, Catch::StartsWith("point,id,status,reason,dropped,"));
  CHECK_THAT(csv, Catch::Contains(",\"plan.layer_split, phases.1.plan.dp, phases.1.plan.cp\","));
}

TEST_CASE("sweep base keys: a dropped key is as if the base did not write it; a valid one is kept") {
  const auto dir = temp_dir("sweep-base-llama");
  // 32 layers: [7, 9, 8, 8] is a valid, uneven split for pp 4 only.
  const auto split = llama_base(dir, "split", "layer_split = [7, 9, 8, 8]\n");
  const auto plain = llama_base(dir, "plain", "");
  const std::string link = "[[link]]\nvalues = [{ \"plan.pp\" = 4, \"plan.dp\" = 16 }, { \"plan.pp\" = 2, \"plan.dp\" = 32 }, "
                           "{ \"plan.pp\" = 8, \"plan.dp\" = 8 }]\n";
  REQUIRE(run_trainsim("sweep " + q(sweep_file(dir, "a", split, link)) + " --db a.sqlite --quiet", dir.string()).status == 0);
  REQUIRE(run_trainsim("sweep " + q(sweep_file(dir, "b", plain, link)) + " --db b.sqlite --quiet", dir.string()).status == 0);
  const auto with = read_rows(dir / "a.sqlite"), without = read_rows(dir / "b.sqlite");
  REQUIRE(with.size() == 3);
  REQUIRE(without.size() == 3);
  // pp 4: the split is valid, so it stays (and it changes the result: stage 2 holds 9 layers).
  CHECK(with.at(0).status == "ok");
  CHECK(with.at(0).dropped.empty());
  CHECK(with.at(0).step != without.at(0).step);
  // pp 2 and 8: 4 entries for 2 or 8 stages; dropped, and the point is the one of a base
  // without layer_split (the balanced split), to the last bit.
  for (std::size_t i : {1u, 2u}) {
    INFO("point " << i);
    CHECK(with.at(i).dropped == "plan.layer_split");
    CHECK(with.at(i).status == without.at(i).status);
    CHECK(with.at(i).step == without.at(i).step);
    CHECK(with.at(i).cost == without.at(i).cost);
    CHECK(without.at(i).dropped.empty());
  }

  // vpp 2 needs schedule "interleaved": a point with 1f1b drops it (derived from plan.schedule).
  const auto inter = llama_base(dir, "inter", "vpp = 2\n");
  {
    std::string t = read_file(inter);
    t.replace(t.find("schedule = \"1f1b\""), 17, "schedule = \"interleaved\"");
    write_file(inter, t);
  }
  const std::string sched = "[axes]\n\"plan.schedule\" = [\"interleaved\", \"1f1b\"]\n";
  REQUIRE(run_trainsim("sweep " + q(sweep_file(dir, "c", inter, sched)) + " --db c.sqlite --quiet", dir.string()).status == 0);
  REQUIRE(run_trainsim("sweep " + q(sweep_file(dir, "d", plain, sched)) + " --db d.sqlite --quiet", dir.string()).status == 0);
  const auto c = read_rows(dir / "c.sqlite"), d = read_rows(dir / "d.sqlite");
  CHECK(c.at(0).dropped.empty());
  CHECK(c.at(1).dropped == "plan.vpp");
  CHECK(c.at(1).step == d.at(1).step);
}

TEST_CASE("sweep base keys: what the rule does not drop is infeasible, named at its key") {
  const auto dir = temp_dir("sweep-base-kept");
  const auto split = llama_base(dir, "split", "layer_split = [7, 9, 8, 8]\n");
  // A key the point sets itself is its own value: [10, 20] sums to 30 of 32 layers.
  // A key that is not derived (dp, when pp changes alone): 16*1*2 = 32 GPUs, not 64.
  const auto s = sweep_file(dir, "k", split,
                            "[[link]]\nvalues = [{ \"plan.pp\" = 2, \"plan.dp\" = 32, \"plan.layer_split\" = [10, 20] }, "
                            "{ \"plan.pp\" = 2, \"plan.dp\" = 16, \"plan.layer_split\" = [16, 16] }]\n");
  const auto r = run_trainsim("sweep " + q(s) + " --db k.sqlite --quiet", dir.string());
  REQUIRE(r.status == 0);
  const auto rows = read_rows(dir / "k.sqlite");
  CHECK(rows.at(0).status == "infeasible");
  CHECK(rows.at(0).dropped.empty());
  CHECK_THAT(rows.at(0).reason, Catch::Contains("key 'plan.layer_split': sums to 30 layers but the model has 32"));
  CHECK(rows.at(1).status == "infeasible");
  CHECK(rows.at(1).dropped.empty());
  CHECK_THAT(rows.at(1).reason, Catch::Contains("key 'plan.dp': dp*tp*pp*cp = 16*1*2*1 = 32 does not equal cluster.gpus = 64"));
  CHECK_THAT(r.err, !Catch::Contains("base keys dropped"));
}
