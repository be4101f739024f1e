// The Perfetto timeline of a run (report/timeline.cpp): communication on its own tracks, flows
// between ranks, idle spans with the rank's bubble / imbalance split, op args, metadata.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "report/run_report.hpp"
#include "linear_cost.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {
Scenario small_moe() {
  // DeepSeek-V2-Lite on 32 GPUs: tp 2 (TP collectives), ep 8 (all-to-all), pp 2 (sends), dp 8.
  const auto dir = ts_test::temp_dir("timeline");
  ts_test::write_file(dir / "s.toml",
                      "name = \"tl\"\nmodel = \"" + ts_test::data("models/deepseek-v2-lite.toml").string() +
                          "\"\n[cluster]\ngpu = \"h800\"\ngpus = 32\ngpus_per_node = 8\n[plan]\ndp = 8\ntp = 2\npp = 2\n"
                          "ep = 8\nzero = 1\n[training]\nseq_len = 4096\nglobal_batch = 64\ntokens = 1e9\n");
  return load_scenario((dir / "s.toml").string());
}
}  // namespace

TEST_CASE("timeline.json: tracks per communication kind, flows, idle, args and metadata", "[report][timeline]") {
  const ts_test::LinearCost cost(132);
  const Scenario sc = small_moe();
  const RunReport r = build_run_report(sc, cost);
  const nlohmann::json t = run_timeline(r);
  const auto& ev = t["traceEvents"];
  std::map<std::pair<int, int>, std::string> tracks;  // (pid, tid) -> name
  for (const auto& e : ev)
    if (e["ph"] == "M" && e["name"] == "thread_name") tracks[{e["pid"].get<int>(), e["tid"].get<int>()}] = e["args"]["name"];
  for (int rank = 0; rank < 2; ++rank)
    for (const char* name : {"ops", "compute", "TP", "EP all-to-all", "CP", "PP sends", "DP", "idle"}) {
      bool found = false;
      for (const auto& [k, v] : tracks) found = found || (k.first == rank && v == name);
      INFO("rank " << rank << " track " << name);
      CHECK(found);
    }
  std::map<std::string, int> cats;
  std::set<int> starts, finishes;
  bool op_args = false;
  for (const auto& e : ev) {
    const std::string ph = e["ph"];
    if (ph == "X") {
      const std::string cat = e["cat"];
      ++cats[cat];
      const std::string track = tracks[{e["pid"].get<int>(), e["tid"].get<int>()}];
      // Every slice sits on the track of its kind: TP traffic never on the all-to-all's.
      if (cat == "TP") CHECK(track == "TP");
      if (cat == "EP") CHECK(track == "EP all-to-all");
      if (cat == "PP") CHECK(track == "PP sends");
      if (cat == "bubble") {
        CHECK(track == "idle");
        CHECK(e["args"].contains("rank_schedule_bubble_ms"));
        CHECK(e["args"].contains("rank_imbalance_ms"));
      }
      if (track == "ops") {
        op_args = e["args"].contains("micro_batch") && e["args"].contains("chunk") && e["args"].contains("stage") &&
                  e["args"].contains("layers");
        CHECK(op_args);
      }
    }
    if (ph == "s") starts.insert(e["id"].get<int>());
    if (ph == "f") finishes.insert(e["id"].get<int>());
  }
  CHECK(cats["TP"] > 0);
  CHECK(cats["EP"] > 0);
  CHECK(cats["PP"] > 0);
  CHECK(cats["bubble"] > 0);
  CHECK(cats["optimizer"] == 1);
  // Each flow has its start and its end: pp 2, M = 8: every F on rank 1 and every B on rank 0
  // waits for the other rank.
  CHECK(starts == finishes);
  CHECK(starts.size() == 16);
  const auto& meta = t["otherData"];
  CHECK(meta["generator"].get<std::string>().rfind("trainsim ", 0) == 0);
  CHECK(meta["scenario"] == "tl");
  CHECK(meta["phase"] == "pre-training");
  for (const auto& l : r.phases.front().step.breakdown.lines()) CHECK(meta["breakdown_s"].contains(l.name));
  // Same inputs, same bytes.
  CHECK(run_timeline(build_run_report(sc, cost)).dump() == t.dump());
}
