// `trainsim describe` through the command line: exit status, JSON keys, agreement with the library.
#include <catch2/catch.hpp>
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
