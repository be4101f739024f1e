// `trainsim describe` through the command line: exit status, JSON keys, agreement with the library.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "model/model_math.hpp"
#include "support.hpp"

using namespace trainsim;
using nlohmann::json;

TEST_CASE("describe --json on a model carries the documented keys", "[cli]") {
  const auto path = ts_test::data("models/deepseek-v3.toml").string();
  auto r = ts_test::run_trainsim("describe '" + path + "' --json");
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  const auto p = count_params(load_model(path));
  CHECK(j.at("params_total").get<double>() == p.total);
  CHECK(j.at("params_active").get<double>() == p.active);
  CHECK(j.at("params_mtp").get<double>() == p.mtp_total);
  const auto f = flops_per_token(load_model(path), 4096, false);
  CHECK(j.at("flops_per_token_causal").get<double>() == f.train_causal);
  CHECK(j.at("flops_per_token_full").get<double>() == f.train_full);
  CHECK(j.at("layers").size() == 2);  // 3 dense layers, then 58 MoE layers
  CHECK_FALSE(j.contains("fits_memory"));
}

TEST_CASE("describe --json on a scenario adds memory per stage", "[cli]") {
  auto r = ts_test::run_trainsim("describe '" + ts_test::data("scenarios/deepseek-v3-h800.toml").string() + "' --json");
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j.at("memory_gib_per_stage").size() == 16);
  CHECK(j.at("fits_memory").get<bool>());
}

TEST_CASE("describe --seq-len changes attention FLOPs by the closed form", "[cli]") {
  const auto path = ts_test::data("models/llama3-8b.toml").string();
  auto a = json::parse(ts_test::run_trainsim("describe '" + path + "' --json --seq-len 4096").out);
  auto b = json::parse(ts_test::run_trainsim("describe '" + path + "' --json --seq-len 8192").out);
  // Causal attention per token grows linearly with s: 32 layers x 3 (fwd+bwd) x 2 FLOP x 32 heads x
  // (128 + 128) x s/2, so doubling s from 4096 adds exactly that amount at s = 4096.
  const double delta = 32 * 3 * 2.0 * 32 * 256 * 4096 / 2;
  CHECK(b.at("flops_per_token_causal").get<double>() - a.at("flops_per_token_causal").get<double>() ==
        Approx(delta).epsilon(1e-9));
}

TEST_CASE("--help and --version", "[cli]") {
  auto h = ts_test::run_trainsim("describe --help");
  CHECK(h.status == 0);
  CHECK(h.out.find("--seq-len") != std::string::npos);
  CHECK(h.out.find("--json") != std::string::npos);
  auto v = ts_test::run_trainsim("--version");
  CHECK(v.status == 0);
  CHECK(v.out.find("trainsim") != std::string::npos);
  auto n = ts_test::run_trainsim("");
  CHECK(n.status == 2);  // a subcommand is required
}

TEST_CASE("describe text output is deterministic", "[cli]") {
  const auto path = ts_test::data("scenarios/deepseek-v3-h800.toml").string();
  auto a = ts_test::run_trainsim("describe '" + path + "'");
  auto b = ts_test::run_trainsim("describe '" + path + "'");
  REQUIRE(a.status == 0);
  CHECK(a.out == b.out);
  CHECK(a.out.find("fits") != std::string::npos);
}

// describe --costs: the op list one GPU of a stage runs, each op priced by the cost model.
TEST_CASE("describe --costs lists every op of the stage: FLOPs add up to the model's, split by TP", "[cli]") {
  // pp = 1: stage 0 holds the embedding, all the layers and the head. One micro-batch of 16 x 2048
  // tokens; the op list's FLOPs (causal convention; the unfused attention core's GEMMs carry the
  // fused op's FLOPs) must equal the model's training FLOPs per token x tokens, on one GPU (tp 1)
  // and exactly half of it on each of two TP ranks (every GEMM and the attention heads split).
  struct Case {
    const char* file;
    std::int64_t tp, micro_batch;
  };
  for (const Case c : {Case{"validation/v2-megatron-sc21/t1-gpt-1.7b.toml", 1, 16},
                       Case{"validation/v2-megatron-sc21/t1-gpt-3.6b.toml", 2, 16}}) {
    const auto path = ts_test::data(c.file).string();
    auto r = ts_test::run_trainsim("describe '" + path + "' --costs --json");
    REQUIRE(r.status == 0);
    const json j = json::parse(r.out);
    const Scenario sc = load_scenario(path);
    REQUIRE(sc.plan.tp == c.tp);
    REQUIRE(sc.plan.micro_batch == c.micro_batch);
    double flops = 0, seconds = 0, by_class = 0;
    for (const auto& g : j.at("groups"))
      for (const auto& o : g.at("ops")) {
        flops += o.at("flops").get<double>() * g.at("count").get<double>();
        seconds += o.at("seconds").get<double>() * g.at("count").get<double>();
      }
    for (const auto& [k, v] : j.at("seconds_by_class").items()) by_class += v.get<double>();
    const double tokens = static_cast<double>(c.micro_batch * sc.training.seq_len);
    const double expected = flops_per_token(sc.model, sc.training.seq_len, false).train_causal * tokens / c.tp;
    CHECK(flops == Approx(expected).epsilon(1e-9));
    CHECK(j.at("seconds_total").get<double>() == Approx(seconds).epsilon(1e-12));
    CHECK(by_class == Approx(seconds).epsilon(1e-12));
    CHECK(j.at("stages").get<int>() == 1);
    // The model's identical layers are one group: embed, L0-<last> (x layers), head.
    const auto L = sc.model.layers;
    REQUIRE(j.at("groups").size() == 3);
    CHECK(j.at("groups")[1].at("count").get<std::int64_t>() == L);
    CHECK(j.at("groups")[1].at("layers").get<std::string>() == fmt::format("L0-{} (x{})", L - 1, L));
  }
}

TEST_CASE("describe --costs: a large H100 BF16 GEMM runs at the fastest measured point", "[cli]") {
  // profiles/h100-sxm/calibration.toml caps BF16 GEMM throughput beyond the measured shapes at
  // the fastest point of XLA's sm_90 table, 804.7 TFLOPS on 132 SMs. Llama 3.1 405B's MLP up/gate
  // GEMM per TP8 rank, 8192 tokens (cp 2: 4096 per rank) x 2x53248/8 x 16384, is far beyond
  // 4096^3, so its time is its FLOPs at that ceiling (to the ceiling's printed 4 digits).
  const auto path = ts_test::data("validation/v4-dgxc-llama3.1-405b/bf16-32.toml").string();
  auto r = ts_test::run_trainsim("describe '" + path + "' --costs --json");
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  bool found = false;
  for (const auto& o : j.at("groups")[1].at("ops")) {
    if (o.at("name") != "mlp.up_gate" || o.at("pass") != "fwd") continue;
    found = true;
    CHECK(o.at("m").get<std::int64_t>() == 4096);
    CHECK(o.at("n").get<std::int64_t>() == 2 * 53248 / 8);
    CHECK(o.at("k").get<std::int64_t>() == 16384);
    const double flops = 2.0 * 4096 * (2 * 53248 / 8) * 16384;
    CHECK(o.at("flops").get<double>() == flops);
    CHECK(o.at("seconds").get<double>() == Approx(flops / 804.7e12).epsilon(2e-4));
    CHECK(o.at("source").get<std::string>() == "fitted");
  }
  CHECK(found);
}

TEST_CASE("describe --costs text: groups, classes and a total", "[cli]") {
  const auto path = ts_test::data("scenarios/deepseek-v3-h800.toml").string();
  auto r = ts_test::run_trainsim("describe '" + path + "' --costs --stage 15");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("stage 15 of 16") != std::string::npos);
  CHECK(r.out.find("moe.experts.up_gate") != std::string::npos);
  CHECK(r.out.find("gemm fp8") != std::string::npos);
  CHECK(r.out.find("head") != std::string::npos);  // the last stage holds the output head
  CHECK(r.out.find("total") != std::string::npos);
}

TEST_CASE("describe --costs refuses what it cannot answer, with status 2", "[cli][bad-input]") {
  const auto scen = ts_test::data("validation/v2-megatron-sc21/t1-gpt-1.7b.toml").string();
  const auto model = ts_test::data("models/deepseek-v3.toml").string();
  auto m = ts_test::run_trainsim("describe '" + model + "' --costs");
  CHECK(m.status == 2);
  CHECK(m.err.find("--costs needs a scenario file") != std::string::npos);
  auto s = ts_test::run_trainsim("describe '" + scen + "' --costs --stage 3");
  CHECK(s.status == 2);
  CHECK(s.err.find("--stage 3: the plan has 1 pipeline stage(s)") != std::string::npos);
  auto n = ts_test::run_trainsim("describe '" + scen + "' --stage 1");
  CHECK(n.status == 2);
  CHECK((n.err + n.out).find("--stage requires --costs") != std::string::npos);
  auto q = ts_test::run_trainsim("describe '" + scen + "' --costs --seq-len 10");
  CHECK(q.status == 2);
  CHECK(q.err.find("--seq-len cannot be combined") != std::string::npos);
  for (const auto* r : {&m, &s, &q}) CHECK(r->out.empty());
}
