// plan.schedule = "dualpipev" end to end: configuration (accepted and refused when read, naming
// plan keys), stage placement and memory against hand counts, the step's per-stage op costs on
// the V, and the done-when commands on the DeepSeek-V3 scenario (run, compare).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <string>

#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "linear_cost.hpp"
#include "model/memory.hpp"
#include "model/model_math.hpp"
#include "step/step.hpp"
#include "support.hpp"

using namespace trainsim;
using nlohmann::json;

namespace {

std::string scenario_text(const std::string& model, int gpus, const std::string& plan, const std::string& training) {
  return "name = \"t\"\nmodel = \"" + ts_test::data("models/" + model + ".toml").string() +
         "\"\n[cluster]\ngpu = \"h800\"\ngpus = " + std::to_string(gpus) + "\ngpus_per_node = 8\n[plan]\n" + plan +
         "\n[training]\n" + training + "\n";
}

std::filesystem::path write_scenario(const std::string& tag, const std::string& text) {
  const auto dir = ts_test::temp_dir("dpv-" + tag);
  ts_test::write_file(dir / "s.toml", text);
  return dir / "s.toml";
}

Scenario load_text(const std::string& tag, const std::string& text) {
  return load_scenario(write_scenario(tag, text).string());
}

ConfigError load_error(const std::string& tag, const std::string& text) {
  try {
    (void)load_text(tag, text);
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError");
  throw std::logic_error("unreachable");
}

// Llama 3 8B (32 uniform layers) on 8*pp GPUs, dp 8.
std::string llama(int pp, const std::string& schedule, int microbatches, const std::string& extra = "") {
  return scenario_text("llama3-8b", 8 * pp,
                       "dp = 8\npp = " + std::to_string(pp) + "\nzero = 1\nschedule = \"" + schedule + "\"\n" + extra,
                       "seq_len = 4096\nglobal_batch = " + std::to_string(8 * microbatches) + "\ntokens = 1e9");
}

}  // namespace

TEST_CASE("dualpipev plans: odd pp and odd micro-batch counts are accepted; 2*pp stages", "[dualpipev][config]") {
  const Scenario s = load_text("odd", llama(3, "dualpipev", 7));
  CHECK(s.plan.schedule == "dualpipev");
  CHECK(pipeline_stage_count(s.plan) == 6);
  CHECK(s.microbatches_per_step(s.training.global_batch) == 7);
}

TEST_CASE("dualpipev plans refused when read, naming the plan key", "[dualpipev][config]") {
  SECTION("fewer than 2*pp micro-batches") {
    const auto e = load_error("few", llama(3, "dualpipev", 5));
    CHECK(e.key() == "plan.schedule");
    CHECK_THAT(e.message(), Catch::Contains("dualpipev needs at least 2*pp = 6 micro-batches per step; "
                                            "global_batch/(dp*micro_batch) = 5"));
  }
  SECTION("a layer split with pp entries instead of 2*pp") {
    const auto e = load_error("split", llama(4, "dualpipev", 8, "layer_split = [8, 8, 8, 8]"));
    CHECK(e.key() == "plan.layer_split");
    CHECK_THAT(e.message(), Catch::Contains("has 4 entries but the plan has 8 pipeline stages (dualpipev: 2 stages "
                                            "on each of the pp = 4 ranks"));
  }
  SECTION("vpp with a schedule other than interleaved") {
    const auto e = load_error("vpp", llama(4, "dualpipev", 8, "vpp = 2"));
    CHECK(e.key() == "plan.vpp");
    CHECK_THAT(e.message(), Catch::Contains("needs schedule 'interleaved'"));
  }
  SECTION("an unknown schedule: the key and every known name") {
    const auto e = load_error("unknown", llama(4, "dualpipe-v", 8));
    CHECK(e.key() == "plan.schedule");
    CHECK_THAT(e.message(), Catch::Contains("unknown value 'dualpipe-v'"));
    for (const char* name : {"gpipe", "1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev"})
      CHECK_THAT(e.message(), Catch::Contains(name));
  }
  SECTION("through trainsim run: exit 2, file, line and key, nothing on stdout") {
    const auto path = write_scenario("cli", llama(3, "dualpipev", 5));
    const auto r = ts_test::run_trainsim("run '" + path.string() + "'");
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains("plan.schedule"));
    CHECK_THAT(r.err, Catch::Contains(path.string() + ":"));
    CHECK(r.err.find("--kind") == std::string::npos);
    CHECK(r.err.find("--microbatches") == std::string::npos);
  }
}

TEST_CASE("dualpipev memory: stages r and 2P-1-r, one copy of the model, 2P+1 activations", "[dualpipev][memory]") {
  const int P = 4;
  // Llama 3 8B: 32 identical layers, "even" split: 4 layers on each of the 2P = 8 stages.
  const Scenario v = load_text("memv", llama(P, "dualpipev", 16, "layer_split = \"even\""));
  const MemoryReport mv = memory_per_gpu(v);
  REQUIRE(mv.ranks.size() == static_cast<std::size_t>(P));
  double params = 0;
  for (const auto& rk : mv.ranks) {
    CHECK(rk.stages == std::vector<std::int64_t>{rk.rank, 2 * P - 1 - rk.rank});
    CHECK(rk.layers == 8);
    CHECK(rk.inflight == 2 * P + 1);
    params += rk.params;
  }
  // One copy: the ranks together hold the model's parameters exactly once (tp = ep = 1).
  const double total = count_params(v.model).total;
  CHECK(params == Approx(total).epsilon(1e-12));
  CHECK(mv.ranks[0].has_embedding);
  CHECK(mv.ranks[0].has_head);  // stage 2P-1 is on rank 0 too

  // Activations of a middle rank: 2P+1 stage activations of one micro-batch, each 4 layers of
  // 4096 tokens; the two chunks share them equally.
  const double per_layer = 4096.0 * activation_bytes_per_token(v.model, 5, v.plan.recompute, v.training.precision);
  CHECK(mv.ranks[1].activations == Approx((2 * P + 1) * 4 * per_layer).epsilon(1e-12));

  // DualPipe on 2P ranks with the same 8 stages: every stage on two ranks, twice the model, and
  // the same activations per GPU (PP+1 = 9 stage activations).
  const Scenario d = load_text("memd", llama(2 * P, "dualpipe", 16, "layer_split = \"even\""));
  const MemoryReport md = memory_per_gpu(d);
  double dparams = 0;
  for (const auto& rk : md.ranks) dparams += rk.params;
  CHECK(dparams == Approx(2 * total).epsilon(1e-12));
  CHECK(md.ranks[1].activations == Approx(mv.ranks[1].activations).epsilon(1e-12));
  CHECK(md.ranks[1].params == Approx(mv.ranks[1].params).epsilon(1e-12));
}

TEST_CASE("dualpipev step: each op costs its own stage of the V", "[dualpipev][step]") {
  const int P = 2;
  const Scenario sc = load_text("step", llama(P, "dualpipev", 4));
  const ts_test::LinearCost cost(132);
  const auto r = step::simulate_step(sc, 0, sc.training.global_batch, cost);
  REQUIRE(r.stages.size() == static_cast<std::size_t>(2 * P));
  REQUIRE(r.pipeline.has_value());
  const auto& rep = r.pipeline->replay;
  REQUIRE(rep.ops.size() == static_cast<std::size_t>(P));
  int checked = 0;
  for (int rank = 0; rank < P; ++rank)
    for (const auto& ot : rep.ops[static_cast<std::size_t>(rank)]) {
      if (ot.op.kind != graph::OpKind::F && ot.op.kind != graph::OpKind::B) continue;
      // Rank r's chunk 0 is stage r, its chunk 1 stage 2P-1-r.
      const int stage = ot.op.chunk == 0 ? rank : 2 * P - 1 - rank;
      const auto& st = r.stages[static_cast<std::size_t>(stage)];
      CHECK(ot.end - ot.start == (ot.op.kind == graph::OpKind::F ? st.f : st.b));
      ++checked;
    }
  CHECK(checked > 0);
}

TEST_CASE("DeepSeek-V3 with plan.schedule = dualpipev runs (trainsim run)", "[dualpipev][cli]") {
  // pp 8 ranks hold the scenario's 16 stages (a layer split of 2*pp entries), dp doubled in
  // every phase. (pp 16 with 32 balanced stages does not fit the H800's memory.)
  const std::string scenario = ts_test::data("scenarios/deepseek-v3-h800.toml").string();
  const auto r = ts_test::run_trainsim("run '" + scenario +
                                       "' --set plan.schedule=dualpipev --set plan.pp=8 --set plan.dp=256"
                                       " --set phases.1.plan.dp=32 --set phases.2.plan.dp=8 --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  for (const auto& ph : j.at("phases")) CHECK_THAT(ph.at("plan").get<std::string>(), Catch::Contains("dualpipev"));
  CHECK(j.at("step_time_s").get<double>() > 0);
  CHECK(j.at("peak_memory_gib").get<double>() > 0);
}

TEST_CASE("compare --schedules dualpipe,dualpipev,1f1b on DeepSeek-V3: side by side with memory per GPU",
          "[dualpipev][cli]") {
  const std::string scenario = ts_test::data("scenarios/deepseek-v3-h800.toml").string();
  const auto r = ts_test::run_trainsim("compare '" + scenario + "' --schedules dualpipe,dualpipev,1f1b --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  const auto& rows = j.at("hardware");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].at("gpu") == "h800 / dualpipe");
  CHECK(rows[1].at("gpu") == "h800 / dualpipev");
  CHECK(rows[2].at("gpu") == "h800 / 1f1b");
  for (const auto& row : rows) CHECK(row.at("memory_peak_gib").get<double>() > 0);

  // DualPipe and 1F1B: the scenario's own plan, so the rows are plain runs of it.
  CHECK(rows[0].at("plan") == "dp128 tp1 pp16 ep64 dualpipe");
  CHECK(rows[0].at("step_time_s").get<double>() == Approx(j.at("step_time_s").get<double>()).epsilon(1e-12));
  CHECK(rows[0].at("memory_peak_gib").get<double>() == Approx(j.at("peak_memory_gib").get<double>()).epsilon(1e-12));

  // DualPipeV keeps the scenario's 16 stages and their split on half the ranks (pp 8, dp 256):
  // the row equals a run of the scenario written that way, phases included.
  const auto& v = rows[1];
  CHECK(v.at("plan") == "dp256 tp1 pp8 ep64 dualpipev");
  CHECK(v.at("replanned").get<bool>());
  CHECK_THAT(v.at("replan_note").get<std::string>(), Catch::Contains("pp 16 -> 8"));
  std::string text = ts_test::read_file(scenario);
  auto edit = [&](const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
  };
  edit("\"../models/deepseek-v3.toml\"", "\"" + ts_test::data("models/deepseek-v3.toml").string() + "\"");
  edit("dp = 128 ", "dp = 256 ");
  edit("pp = 16 ", "pp = 8 ");
  edit("schedule = \"dualpipe\"", "schedule = \"dualpipev\"");
  edit("plan = { dp = 16, cp = 8 }", "plan = { dp = 32, cp = 8 }");
  edit("plan = { dp = 4, cp = 32 }", "plan = { dp = 8, cp = 32 }");
  const auto path = write_scenario("v-half", text);
  const auto run = ts_test::run_trainsim("run '" + path.string() + "' --json");
  INFO(run.err);
  REQUIRE(run.status == 0);
  const json rj = json::parse(run.out);
  CHECK(v.at("step_time_s").get<double>() == Approx(rj.at("step_time_s").get<double>()).epsilon(1e-12));
  CHECK(v.at("gpu_hours").get<double>() == Approx(rj.at("gpu_hours").get<double>()).epsilon(1e-12));
  CHECK(v.at("memory_peak_gib").get<double>() == Approx(rj.at("peak_memory_gib").get<double>()).epsilon(1e-12));
  // Memory: the same two stages per GPU as DualPipe (rank r holds stages r and 15-r in both) and
  // the same PP+1 = 17 stage activations, with the optimizer states sharded over twice the dp:
  // never more than DualPipe.
  CHECK(v.at("memory_peak_gib").get<double>() <= rows[0].at("memory_peak_gib").get<double>());
}

TEST_CASE("compare: bad --schedules and a missing --hardware exit 2 naming the option", "[dualpipev][cli]") {
  const std::string scenario = ts_test::data("scenarios/deepseek-v3-h800.toml").string();
  const auto a = ts_test::run_trainsim("compare '" + scenario + "' --schedules dualpipe,dualpipe-v");
  CHECK(a.status == 2);
  CHECK(a.out.empty());
  CHECK_THAT(a.err, Catch::Contains("--schedules"));
  CHECK_THAT(a.err, Catch::Contains("dualpipev"));
  const auto b = ts_test::run_trainsim("compare '" + scenario + "'");
  CHECK(b.status == 2);
  CHECK(b.out.empty());
  CHECK_THAT(b.err, Catch::Contains("--hardware"));
}
