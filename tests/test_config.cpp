// Strict validation of configuration input (issue point 4). One test per bad-input class: each
// writes a copy of a valid file (scenarios/deepseek-v3-h800.toml, models/deepseek-v3.toml,
// profiles/hardware/h800.toml) with one change into a temporary folder, loads it through the
// library and checks the ConfigError's file, line, column, full dotted key and message. The line
// and column expected are found in the text the test wrote, never hard-coded. A representative
// subset also goes through `trainsim describe`: exit status 2, "file:line" and the key on stderr,
// nothing on stdout.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "support.hpp"

using namespace trainsim;
namespace fs = std::filesystem;

namespace {

// The shipped scenario's pre-training part: its later phases and the published reference
// figures are cut out, so each edit below touches exactly one place.
std::string pretraining_only(std::string text) {
  const auto a = text.find("# Context extension");
  const auto b = text.find("\n[assumptions]");
  if (a != std::string::npos && b != std::string::npos && a < b) text.erase(a, b + 1 - a);
  return text;
}
const std::string kScenario = pretraining_only(ts_test::read_file(ts_test::data("scenarios/deepseek-v3-h800.toml")));
const std::string kModel = ts_test::read_file(ts_test::data("models/deepseek-v3.toml"));
const std::string kH800 = ts_test::read_file(ts_test::data("profiles/hardware/h800.toml"));

// `text` with the one occurrence of `from` replaced by `to`.
std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  INFO("replacing '" << from << "'");
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  text.replace(at, from.size(), to);
  return text;
}

// `text` with the whole line holding `needle` removed.
std::string remove_line(std::string text, const std::string& needle) {
  const auto at = text.find(needle);
  INFO("removing the line of '" << needle << "'");
  REQUIRE(at != std::string::npos);
  const auto b = text.rfind('\n', at);
  const auto begin = b == std::string::npos ? 0 : b + 1;
  const auto e = text.find('\n', at);
  text.erase(begin, (e == std::string::npos ? text.size() : e + 1) - begin);
  return text;
}

// 1-based line and column of `target`, searched from the first occurrence of `anchor`.
struct Where {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};
Where where(const std::string& text, const std::string& anchor, const std::string& target) {
  const auto a = text.find(anchor);
  INFO("anchor '" << anchor << "'");
  REQUIRE(a != std::string::npos);
  const auto t = text.find(target, a);
  REQUIRE(t != std::string::npos);
  const auto line_start = text.rfind('\n', t == 0 ? 0 : t - 1);
  Where w;
  w.line = static_cast<std::uint32_t>(1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(t), '\n'));
  w.column = static_cast<std::uint32_t>(line_start == std::string::npos || t == 0 ? t + 1 : t - line_start);
  return w;
}
Where where(const std::string& text, const std::string& target) { return where(text, target, target); }

// A temporary copy of the data tree: <dir>/scenarios/s.toml refers to ../models/deepseek-v3.toml.
struct Tree {
  fs::path dir;
  fs::path scenario;
  fs::path model;
  fs::path model_ref;  // the model file as the scenario names it: <dir>/scenarios/../models/...
  explicit Tree(const std::string& tag, const std::string& scenario_text = kScenario,
                const std::string& model_text = kModel)
      : dir(ts_test::temp_dir("config-" + tag)),
        scenario(dir / "scenarios" / "s.toml"),
        model(dir / "models" / "deepseek-v3.toml"),
        model_ref(dir / "scenarios" / ".." / "models" / "deepseek-v3.toml") {
    ts_test::write_file(scenario, scenario_text);
    ts_test::write_file(model, model_text);
  }
  ~Tree() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;
};

// Runs f, which must throw a ConfigError, and returns it.
template <class F>
ConfigError config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e;
  } catch (const std::exception& e) {
    FAIL("expected a ConfigError, got: " << e.what());
  }
  FAIL("expected a ConfigError, nothing was thrown");
  throw std::logic_error("unreachable");
}

ConfigError scenario_error(const Tree& t, const std::vector<std::string>& sets = {}) {
  return config_error([&] { (void)load_scenario(t.scenario.string(), sets); });
}

// The error names `file`, the position `w` (column only if given), `key`, and says `what`.
void check_error(const ConfigError& e, const fs::path& file, Where w, const std::string& key, const std::string& what) {
  INFO("error: " << e.what());
  CHECK(e.pos().file == file.string());
  CHECK(e.pos().line == w.line);
  if (w.column != 0) CHECK(e.pos().column == w.column);
  CHECK(e.key() == key);
  CHECK_THAT(e.message(), Catch::Contains(what));
  // what() carries all of it: "file:line:col: key 'k': message".
  CHECK_THAT(std::string(e.what()), Catch::StartsWith(e.pos().str() + ": "));
  if (!key.empty()) CHECK_THAT(std::string(e.what()), Catch::Contains("key '" + key + "'"));
}

// `trainsim describe` on a bad file: exit 2, nothing on stdout, file:line and key on stderr.
void check_cli(const std::string& args, const fs::path& file, std::uint32_t line, const std::string& key) {
  const auto r = ts_test::run_trainsim("describe " + args);
  INFO("stderr: " << r.err);
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains(file.string() + ":" + std::to_string(line) + ":"));
  if (!key.empty()) CHECK_THAT(r.err, Catch::Contains("key '" + key + "'"));
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// The valid baseline and overrides that take effect.

TEST_CASE("The shipped scenario loads with every part", "[config]") {
  const Scenario s = load_scenario(ts_test::data("scenarios/deepseek-v3-h800.toml").string());
  CHECK(s.name == "deepseek-v3-h800");
  CHECK(s.model.name == "deepseek-v3");
  CHECK(s.model.layers == 61);
  CHECK(s.model.moe.routed_experts == 256);
  CHECK(s.hardware.name == "h800");
  CHECK(s.hardware.sms == 132);
  CHECK(s.hardware.bf16.value == 989 * 1e12);
  CHECK(s.hardware.nic.value == 400e9 / 8);
  CHECK(s.cluster.gpus == 2048);
  CHECK(s.plan.dp * s.plan.tp * s.plan.pp * s.plan.cp == s.cluster.gpus);
  CHECK(s.plan.schedule == "dualpipe");
  CHECK(s.plan.layer_split.size() == 16);
  CHECK(std::accumulate(s.plan.layer_split.begin(), s.plan.layer_split.end(), std::int64_t{0}) == s.model.layers);
  CHECK(s.plan.comm_buffers == 2 * 1e9);
  CHECK(s.training.global_batch == 15360);
  REQUIRE(s.training.ramp.has_value());
  CHECK(s.training.ramp->start == 3072);
  CHECK(s.microbatches_per_step(s.training.global_batch) == 15360 / (128 * 1));
  CHECK(s.assumptions.count("layer_split") == 1);

  const auto r = ts_test::run_trainsim("describe " + quoted(ts_test::data("scenarios/deepseek-v3-h800.toml")));
  CHECK(r.status == 0);
  CHECK_FALSE(r.out.empty());
}

TEST_CASE("--set plan.pp=8 takes effect together with the dp and layer_split it forces", "[config]") {
  Tree t("set-pp");
  const std::int64_t gpus = 2048, tp = 1, cp = 1, pp = 8, layers = 61;
  const std::int64_t dp = gpus / (tp * pp * cp);  // 256
  // An even split of 61 layers over 8 stages, the remainder on the first stages: 8,8,8,8,8,7,7,7.
  std::vector<std::int64_t> split(static_cast<std::size_t>(pp), layers / pp);
  for (std::int64_t i = 0; i < layers % pp; ++i) ++split[static_cast<std::size_t>(i)];
  std::string split_text = "[";
  for (auto v : split) split_text += (split_text.size() > 1 ? "," : "") + std::to_string(v);
  split_text += "]";

  const std::vector<std::string> sets = {"plan.pp=8", "plan.dp=" + std::to_string(dp), "plan.layer_split=" + split_text};
  const Scenario s = load_scenario(t.scenario.string(), sets);
  CHECK(s.plan.pp == pp);
  CHECK(s.plan.dp == dp);
  CHECK(s.plan.layer_split == split);
  CHECK(s.plan.ep == 64);  // untouched keys keep their value
  CHECK(s.microbatches_per_step(s.training.global_batch) == 15360 / dp);

  // A string value that is not TOML is taken as a string.
  const Scenario s2 = load_scenario(t.scenario.string(), {"plan.schedule=1f1b"});
  CHECK(s2.plan.schedule == "1f1b");

  // pp alone breaks the product, which is then reported at plan.dp in the scenario file.
  const auto e = scenario_error(t, {"plan.pp=8"});
  check_error(e, t.scenario, where(kScenario, "dp = 128", "128"), "plan.dp",
              "dp*tp*pp*cp = 128*1*8*1 = 1024 does not equal cluster.gpus = 2048");

  // Through the CLI the override shows in the output.
  const auto r = ts_test::run_trainsim("describe " + quoted(t.scenario) + " --set plan.pp=8 --set plan.dp=256 --set 'plan.layer_split=" +
                                       split_text + "'");
  INFO(r.err);
  CHECK(r.status == 0);
}

TEST_CASE("A [hardware] override changes the GPU file's value", "[config]") {
  const std::string text = kScenario + "\n[hardware.compute]\nsms = 114\n\n[hardware.memory]\n"
                                       "capacity = { value = \"96GiB\", source = \"test override\" }\n";
  Tree t("hw-override", text);
  const Scenario s = load_scenario(t.scenario.string());
  CHECK(s.hardware.sms == 114);
  CHECK(s.hardware.hbm_capacity.value == 96 * std::pow(2.0, 30));
  CHECK(s.hardware.hbm_capacity.source == "test override");
  CHECK(s.hardware.bf16.value == 989 * 1e12);  // not overridden: from h800.toml

  // Overriding one key of a value's inline table keeps the other (the source) from the GPU file.
  const std::string one = kScenario + "\n[hardware.memory.bandwidth]\nvalue = \"4TB/s\"\n";
  Tree t2("hw-override-one", one);
  const Scenario s2 = load_scenario(t2.scenario.string());
  CHECK(s2.hardware.hbm_bandwidth.value == 4 * 1e12);
  CHECK_THAT(s2.hardware.hbm_bandwidth.source, Catch::StartsWith("FlashMLA deep dive"));
}

TEST_CASE("A [hardware] override keeps its own file position", "[config]") {
  // The override's value is checked where it was written: the scenario, not h800.toml, and its line.
  const std::string text = kScenario + "\n[hardware.memory]\ncapacity = { value = \"96GiB/s\", source = \"x\" }\n";
  Tree t("hw-override-pos", text);
  const auto e = scenario_error(t);
  check_error(e, t.scenario, where(text, "value = \"96GiB/s\"", "\"96GiB/s\""), "hardware.memory.capacity.value",
              "unknown unit 'GiB/s'");

  // An integer override out of range: at its line in the scenario too.
  const std::string sms = kScenario + "\n[hardware.compute]\nsms = 0\n";
  Tree t2("hw-override-pos2", sms);
  check_error(scenario_error(t2), t2.scenario, where(sms, "sms = 0", "0"), "hardware.compute.sms",
              "value 0 is out of range");
}

// ---------------------------------------------------------------------------------------------
// Bad input, one class per test.

TEST_CASE("Malformed TOML names file and line", "[config][cli]") {
  const std::string text = replace(kScenario, "tp = 1    ", "tp = = 1  ");
  Tree t("malformed", text);
  const auto e = scenario_error(t);
  INFO(e.what());
  CHECK(e.pos().file == t.scenario.string());
  CHECK(e.pos().line == where(text, "tp = = 1").line);
  CHECK(e.pos().column > 0);
  CHECK_THAT(e.message(), Catch::Contains("malformed TOML"));
  check_cli(quoted(t.scenario), t.scenario, e.pos().line, "");

  // In a referenced model file, the model file is named.
  const std::string model = replace(kModel, "hidden = 7168", "hidden = 7168 7168");
  Tree t2("malformed-model", kScenario, model);
  const auto e2 = scenario_error(t2);
  INFO(e2.what());
  CHECK(e2.pos().file == t2.model_ref.string());
  CHECK(e2.pos().line == where(model, "hidden = 7168 7168").line);
  CHECK_THAT(e2.message(), Catch::Contains("malformed TOML"));

  // A duplicate key is malformed too.
  const std::string dup = replace(kScenario, "cp = 1\n", "cp = 1\ntp = 2\n");
  Tree t3("malformed-dup", dup);
  const auto e3 = scenario_error(t3);
  CHECK(e3.pos().line == where(dup, "tp = 2").line);
  CHECK_THAT(e3.message(), Catch::Contains("malformed TOML"));
}

TEST_CASE("Unknown key in the plan: did you mean", "[config][cli]") {
  const std::string text = replace(kScenario, "micro_batch = 1", "micro_bach = 1 ");
  Tree t("unknown-plan", text);
  const auto e = scenario_error(t);
  check_error(e, t.scenario, where(text, "micro_bach"), "plan.micro_bach", "unknown key; did you mean 'micro_batch'?");
  check_cli(quoted(t.scenario), t.scenario, where(text, "micro_bach").line, "plan.micro_bach");

  // A top-level key of the scenario.
  const std::string top = replace(kScenario, "description =", "descripton =");
  Tree t2("unknown-top", top);
  check_error(scenario_error(t2), t2.scenario, where(top, "descripton"), "descripton", "did you mean 'description'?");
}

TEST_CASE("Unknown key in a model: did you mean", "[config]") {
  const std::string model = replace(kModel, "shared_experts = 1", "shared_expert = 1 ");
  Tree t("unknown-model", kScenario, model);
  // Loaded as a model file, the key is relative to the file...
  const auto e = config_error([&] { (void)load_model(t.model.string()); });
  check_error(e, t.model, where(model, "shared_expert "), "moe.shared_expert", "did you mean 'shared_experts'?");
  // ...and through the scenario it is under 'model', still at the model file's line.
  check_error(scenario_error(t), t.model_ref, where(model, "shared_expert "), "model.moe.shared_expert",
              "did you mean 'shared_experts'?");

  // A misspelt optional key of a sub-table.
  const std::string att = replace(kModel, "limited_groups = 4", "limted_groups = 4");
  Tree t2("unknown-model-moe", kScenario, att);
  check_error(config_error([&] { (void)load_model(t2.model.string()); }), t2.model, where(att, "limted_groups"),
              "moe.limted_groups", "did you mean 'limited_groups'?");

  // A misspelt required key is first of all missing: reported at its table.
  const std::string req = replace(kModel, "kv_lora_rank = 512", "kv_lora_rnak = 512");
  Tree t3("unknown-model-att", kScenario, req);
  check_error(config_error([&] { (void)load_model(t3.model.string()); }), t3.model, where(req, "[attention]"),
              "attention.kv_lora_rank", "missing required key");
}

TEST_CASE("Unknown key in a [hardware] override: did you mean", "[config]") {
  const std::string text = kScenario + "\n[hardware.compute]\nsmz = 114\n";
  Tree t("unknown-hw", text);
  check_error(scenario_error(t), t.scenario, where(text, "smz"), "hardware.compute.smz", "did you mean 'sms'?");

  // An unknown key in the GPU file itself names that file.
  const std::string hw = replace(kH800, "nics_per_gpu = 1", "nic_per_gpu = 1");
  const std::string sc = replace(kScenario, "gpu = \"h800\"", "gpu = \"../hw/h800x.toml\"");
  Tree t2("unknown-hw-file", sc);
  ts_test::write_file(t2.dir / "hw" / "h800x.toml", hw);
  check_error(scenario_error(t2), t2.dir / "scenarios" / ".." / "hw" / "h800x.toml", where(hw, "nic_per_gpu"),
              "hardware.interconnect.nic_per_gpu", "did you mean 'nics_per_gpu'?");
}

TEST_CASE("Missing required key", "[config]") {
  // In the plan: reported at the [plan] table.
  const std::string text = remove_line(kScenario, "dp = 128");
  Tree t("missing-plan", text);
  check_error(scenario_error(t), t.scenario, where(text, "[plan]"), "plan.dp", "missing required key");
  // Still there, not at --set, when a --set option sets another key of the plan.
  check_error(scenario_error(t, {"plan.tp=1"}), t.scenario, where(text, "[plan]"), "plan.dp", "missing required key");

  // In a model file.
  const std::string model = remove_line(kModel, "hidden = 7168");
  Tree t2("missing-model", kScenario, model);
  const auto e = config_error([&] { (void)load_model(t2.model.string()); });
  INFO(e.what());
  CHECK(e.pos().file == t2.model.string());
  CHECK(e.key() == "hidden");
  CHECK(e.message() == "missing required key");

  // In an inline table of the GPU file: a hardware value without its source.
  const std::string hw = replace(kH800, "tdp = { value = \"700W\", source =", "tdp = { value = \"700W\", sourc =");
  const std::string sc = replace(kScenario, "gpu = \"h800\"", "gpu = \"../hw/h800x.toml\"");
  Tree t3("missing-hw", sc);
  const fs::path hw_file = t3.dir / "hw" / "h800x.toml";
  ts_test::write_file(hw_file, hw);
  check_error(scenario_error(t3), t3.dir / "scenarios" / ".." / "hw" / "h800x.toml", where(hw, "tdp = {", "{"),
              "hardware.power.tdp.source", "missing required key");
}

TEST_CASE("Wrong type: a string for an integer, an integer for a string", "[config]") {
  const std::string text = replace(kScenario, "dp = 128", "dp = \"128\"");
  Tree t("type-int", text);
  check_error(scenario_error(t), t.scenario, where(text, "dp = \"128\"", "\"128\""), "plan.dp",
              "expected an integer, found a string");

  const std::string gpu = replace(kScenario, "gpu = \"h800\"", "gpu = 800   ");
  Tree t2("type-string", gpu);
  check_error(scenario_error(t2), t2.scenario, where(gpu, "gpu = 800", "800"), "cluster.gpu",
              "expected a string, found an integer");

  const std::string model = replace(kModel, "tied_embeddings = false", "tied_embeddings = 0    ");
  Tree t3("type-bool", kScenario, model);
  check_error(config_error([&] { (void)load_model(t3.model.string()); }), t3.model,
              where(model, "tied_embeddings = 0", "0"), "tied_embeddings", "expected a boolean");

  const std::string split = replace(kScenario, "layer_split = [3, 4,", "layer_split = [3, \"4\",");
  Tree t4("type-array", split);
  check_error(scenario_error(t4), t4.scenario, where(split, "layer_split", "\"4\""), "plan.layer_split",
              "expected an array of integers, found a string in it");
}

TEST_CASE("Value out of range", "[config]") {
  const std::string zero = replace(kModel, "layers = 61", "layers = 0 ");
  Tree t("range-zero", kScenario, zero);
  check_error(config_error([&] { (void)load_model(t.model.string()); }), t.model, where(zero, "layers = 0", "0"), "layers",
              "value 0 is out of range [1, 100000]");

  const std::string neg = replace(kModel, "layers = 61", "layers = -61");
  Tree t2("range-neg", kScenario, neg);
  check_error(scenario_error(t2), t2.model_ref, where(neg, "layers = -61", "-61"), "model.layers",
              "value -61 is out of range");

  // top_k above the number of routed experts.
  const std::string topk = replace(kModel, "top_k = 8 ", "top_k = 300");
  Tree t3("range-topk", kScenario, topk);
  check_error(config_error([&] { (void)load_model(t3.model.string()); }), t3.model, where(topk, "top_k = 300", "300"),
              "moe.top_k", "value 300 is out of range [1, 256]");

  const std::string zero_stage = replace(kScenario, "zero = 1 ", "zero = 4 ");
  Tree t4("range-zero-stage", zero_stage);
  check_error(scenario_error(t4), t4.scenario, where(zero_stage, "zero = 4", "4"), "plan.zero",
              "value 4 is out of range [0, 3]");

  // A quantity out of its range.
  const std::string buf = replace(kScenario, "comm_buffers = \"2GB\"", "comm_buffers = \"-2GB\"");
  Tree t5("range-quantity", buf);
  check_error(scenario_error(t5), t5.scenario, where(buf, "\"-2GB\""), "plan.comm_buffers", "out of range");
}

TEST_CASE("A bare number where a unit is needed", "[config]") {
  const std::string text = replace(kScenario, "comm_buffers = \"2GB\"", "comm_buffers = 2000000000");
  Tree t("bare", text);
  check_error(scenario_error(t), t.scenario, where(text, "2000000000"), "plan.comm_buffers",
              "a bare number has no unit");

  // A unit-less string is as bad.
  const std::string nounit = replace(kScenario, "comm_buffers = \"2GB\"", "comm_buffers = \"2\"  ");
  Tree t2("no-unit", nounit);
  check_error(scenario_error(t2), t2.scenario, where(nounit, "comm_buffers = \"2\"", "\"2\""), "plan.comm_buffers",
              "'2' has no unit");

  // In the GPU file.
  const std::string hw = replace(kH800, "bandwidth = { value = \"3.35TB/s\"", "bandwidth = { value = 3.35e12   ");
  const std::string sc = replace(kScenario, "gpu = \"h800\"", "gpu = \"../hw/h800x.toml\"");
  Tree t3("bare-hw", sc);
  ts_test::write_file(t3.dir / "hw" / "h800x.toml", hw);
  check_error(scenario_error(t3), t3.dir / "scenarios" / ".." / "hw" / "h800x.toml", where(hw, "3.35e12"),
              "hardware.memory.bandwidth.value", "a bare number has no unit");
}

TEST_CASE("An unknown unit", "[config]") {
  const std::string text = replace(kScenario, "comm_buffers = \"2GB\"", "comm_buffers = \"2GB/s\"");
  Tree t("unit", text);
  check_error(scenario_error(t), t.scenario, where(text, "\"2GB/s\""), "plan.comm_buffers", "unknown unit 'GB/s'");

  const std::string hw = replace(kH800, "\"400Gb/s\"", "\"400 Gbit/s\"");
  const std::string sc = replace(kScenario, "gpu = \"h800\"", "gpu = \"../hw/h800x.toml\"");
  Tree t2("unit-hw", sc);
  ts_test::write_file(t2.dir / "hw" / "h800x.toml", hw);
  check_error(scenario_error(t2), t2.dir / "scenarios" / ".." / "hw" / "h800x.toml", where(hw, "\"400 Gbit/s\""),
              "hardware.interconnect.nic.value", "unknown unit 'Gbit/s'");
}

TEST_CASE("dp*tp*pp*cp differs from the number of GPUs", "[config][cli]") {
  const std::string text = replace(kScenario, "dp = 128", "dp = 64 ");
  Tree t("product", text);
  const Where w = where(text, "dp = 64", "64");
  check_error(scenario_error(t), t.scenario, w, "plan.dp", "dp*tp*pp*cp = 64*1*16*1 = 1024 does not equal cluster.gpus = 2048");
  check_cli(quoted(t.scenario), t.scenario, w.line, "plan.dp");
}

TEST_CASE("ep does not divide the routed experts", "[config]") {
  const std::string text = replace(kScenario, "ep = 64", "ep = 48");
  Tree t("ep-experts", text);
  check_error(scenario_error(t), t.scenario, where(text, "ep = 48", "48"), "plan.ep",
              "ep = 48 does not divide the 256 routed experts");

  // ep on a dense model.
  const std::string dense = replace(kScenario, "model = \"../models/deepseek-v3.toml\"", "model = \"../models/llama3-8b.toml\"");
  Tree t2("ep-dense", dense);
  ts_test::write_file(t2.dir / "models" / "llama3-8b.toml", ts_test::read_file(ts_test::data("models/llama3-8b.toml")));
  check_error(scenario_error(t2), t2.scenario, where(dense, "ep = 64", "64"), "plan.ep", "has no experts");
}

TEST_CASE("ep does not fit the dp*tp*cp group of a stage", "[config]") {
  // 256 divides the 256 experts but not the 128 GPUs of a pipeline stage.
  const std::string text = replace(kScenario, "ep = 64", "ep = 256");
  Tree t("ep-group", text);
  check_error(scenario_error(t), t.scenario, where(text, "ep = 256", "256"), "plan.ep",
              "ep = 256 does not fit the dp*tp*cp = 128 GPUs");
}

TEST_CASE("layer_split = \"even\" needs layers that divide over the pipeline stages", "[config]") {
  // 61 layers over 16 stages.
  const std::string text = replace(kScenario, "layer_split = [3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2]",
                                   "layer_split = \"even\"");
  Tree t("split-even", text);
  check_error(scenario_error(t), t.scenario, where(text, "layer_split = ", "\"even\""), "plan.layer_split",
              "61 layers cannot be split evenly over 16 pipeline stages");
}

TEST_CASE("layer_split rules: an unknown rule, and fewer layers than stages", "[config]") {
  const std::string bad = replace(kScenario, "layer_split = [3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2]",
                                  "layer_split = \"balance\"");
  Tree t("split-rule", bad);
  check_error(scenario_error(t), t.scenario, where(bad, "layer_split = ", "\"balance\""), "plan.layer_split",
              "unknown value 'balance'");
  // 61 layers cannot fill 128 pipeline stages.
  std::string few = remove_line(kScenario, "layer_split = [");
  few = replace(few, "pp = 16", "pp = 128");
  few = replace(few, "dp = 128", "dp = 16");
  few = replace(few, "ep = 64", "ep = 16");
  Tree t2("split-few", few);
  check_error(scenario_error(t2), t2.scenario, where(few, "pp = 128", "128"), "plan.pp",
              "61 layers cannot fill 128 pipeline stages");
}

TEST_CASE("layer_split with the wrong length or the wrong sum", "[config]") {
  const std::string shorter = replace(kScenario, "layer_split = [3, 4,", "layer_split = [7,");  // 15 entries, sum 61
  Tree t("split-length", shorter);
  check_error(scenario_error(t), t.scenario, where(shorter, "layer_split = [", "["), "plan.layer_split",
              "has 15 entries");

  const std::string sum = replace(kScenario, "4, 4, 2]", "4, 4, 3]");  // 62 layers
  Tree t2("split-sum", sum);
  check_error(scenario_error(t2), t2.scenario, where(sum, "layer_split = [", "["), "plan.layer_split",
              "sums to 62 layers but the model has 61");
}

TEST_CASE("DualPipe with an odd pp", "[config]") {
  // 15 stages on 1920 GPUs (dp 128) with a valid 15-entry split: only the parity is wrong.
  std::string text = replace(kScenario, "gpus = 2048", "gpus = 1920");
  text = replace(text, "pp = 16", "pp = 15");
  text = replace(text, "layer_split = [3, 4,", "layer_split = [7,");  // 7 + 13*4 + 2 = 61
  Tree t("dualpipe-odd", text);
  check_error(scenario_error(t), t.scenario, where(text, "pp = 15", "15"), "plan.pp", "dualpipe needs an even pp, got 15");
}

TEST_CASE("Interleaved on one pipeline rank", "[config]") {
  // Megatron-LM asserts a pipeline-model-parallel size above 1 for the interleaved schedule:
  // pp 1 with vpp 2 on 2048 GPUs (dp 1024 x tp 2: 15 micro-batches per step) is refused at plan.pp.
  std::string text = replace(kScenario, "pp = 16", "pp = 1");
  text = replace(text, "dp = 128", "dp = 1024");
  text = replace(text, "tp = 1 ", "tp = 2 ");
  text = replace(text, "schedule = \"dualpipe\"", "schedule = \"interleaved\"\nvpp = 2");
  text = replace(text, "layer_split = [3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2]", "layer_split = [30, 31]");
  Tree t("interleaved-pp1", text);
  check_error(scenario_error(t), t.scenario, where(text, "pp = 1", "1"), "plan.pp",
              "interleaved needs pp >= 2 (Megatron-LM: pipeline-model-parallel size greater than 1), got 1");
}

TEST_CASE("DualPipe with fewer than 2*pp micro-batches", "[config]") {
  // micro_batch 4: 15360 / (128*4) = 30 micro-batches per step < 2*16.
  const std::string text = replace(kScenario, "micro_batch = 1", "micro_batch = 4");
  Tree t("dualpipe-few", text);
  check_error(scenario_error(t), t.scenario, where(text, "schedule = \"dualpipe\"", "\"dualpipe\""), "plan.schedule",
              "needs at least 2*pp = 32 micro-batches per step; global_batch/(dp*micro_batch) = 30");
}

TEST_CASE("global_batch not divisible by dp*micro_batch", "[config]") {
  const std::string text = replace(kScenario, "global_batch = 15360", "global_batch = 15000");
  Tree t("batch", text);
  check_error(scenario_error(t), t.scenario, where(text, "global_batch = 15000", "15000"), "training.global_batch",
              "global_batch 15000 is not divisible by dp*micro_batch = 128*1 = 128");

  // The ramp's start too: 3000 is not a multiple of 128.
  const std::string ramp = replace(kScenario, "start = 3072", "start = 3000");
  Tree t2("batch-ramp", ramp);
  check_error(scenario_error(t2), t2.scenario, where(ramp, "start = 3000", "3000"), "training.batch_ramp.start",
              "ramp start 3000 is not divisible");
}

TEST_CASE("An unknown GPU name in cluster.gpu: did you mean", "[config]") {
  const std::string text = replace(kScenario, "gpu = \"h800\"", "gpu = \"h80\" ");
  Tree t("gpu-name", text);
  const auto e = scenario_error(t);
  check_error(e, t.scenario, where(text, "gpu = \"h80\"", "\"h80\""), "cluster.gpu", "(did you mean 'h800'?)");
  CHECK_THAT(e.message(), Catch::Contains("known GPUs: "));
  CHECK_THAT(e.message(), Catch::Contains("h100-sxm"));
}

TEST_CASE("A --set override with a bad value reports the key", "[config][cli]") {
  Tree t("set-bad");
  // A value out of range: the key, and '--set' as the place it was written.
  const auto e = scenario_error(t, {"plan.pp=0"});
  INFO(e.what());
  CHECK(e.key() == "plan.pp");
  CHECK_THAT(e.message(), Catch::Contains("value 0 is out of range"));
  CHECK(e.pos().file == "--set");
  CHECK(e.pos().line == 1);

  // A misspelt key through --set: did you mean, at --set:1.
  const auto e2 = scenario_error(t, {"plan.micro_bach=2"});
  check_error(e2, "--set", Where{1, 0}, "plan.micro_bach", "did you mean 'micro_batch'?");
  check_cli(quoted(t.scenario) + " --set plan.micro_bach=2", "--set", 1, "plan.micro_bach");

  // A wrong type: a string where an integer belongs.
  const auto e3 = scenario_error(t, {"plan.dp=many"});
  INFO(e3.what());
  CHECK(e3.key() == "plan.dp");
  CHECK_THAT(e3.message(), Catch::Contains("expected an integer, found a string"));

  // An unknown choice, taken as a string, with a suggestion.
  const auto e4 = scenario_error(t, {"plan.schedule=dualpipe2"});
  INFO(e4.what());
  CHECK(e4.key() == "plan.schedule");
  CHECK_THAT(e4.message(), Catch::Contains("unknown value 'dualpipe2'"));
  CHECK_THAT(e4.message(), Catch::Contains("did you mean 'dualpipe'?"));

  // No '=' at all.
  const auto e5 = scenario_error(t, {"plan.pp"});
  CHECK(e5.pos().file == "--set");
  CHECK_THAT(e5.message(), Catch::Contains("expected key=value"));
  const auto r = ts_test::run_trainsim("describe " + quoted(t.scenario) + " --set plan.pp");
  CHECK(r.status == 2);
  CHECK(r.out.empty());

  // A model key through --set on a scenario.
  const auto e6 = scenario_error(t, {"model.moe.top_k=300"});
  INFO(e6.what());
  CHECK(e6.key() == "model.moe.top_k");
  CHECK_THAT(e6.message(), Catch::Contains("value 300 is out of range [1, 256]"));
}

TEST_CASE("A --set key with spaces or quotes is an error, not a crash", "[config][cli]") {
  Tree t("set-odd-key");
  // TOML allows spaces around the dots of a dotted key and quoted keys; a value that is not
  // TOML then goes the string path.
  for (const char* set : {"plan .schedule=1f 1b", "\"plan\".schedule=1f 1b", "plan. schedule=1f 1b"}) {
    INFO("--set " << set);
    const auto r = ts_test::run_trainsim("describe " + quoted(t.scenario) + " --set '" + set + "'");
    INFO("stderr: " << r.err);
    CHECK(r.status != 128 + 11);  // the shell's status for a child killed by SIGSEGV
    CHECK((r.status == 0 || r.status == 2));
  }
}

TEST_CASE("A missing referenced model file", "[config]") {
  const std::string text = replace(kScenario, "model = \"../models/deepseek-v3.toml\"", "model = \"../models/deepseek-v4.toml\"");
  Tree t("model-missing", text);
  const auto e = scenario_error(t);
  INFO(e.what());
  CHECK(e.pos().file == t.scenario.string());
  CHECK(e.key() == "model.file");
  CHECK_THAT(e.message(), Catch::Contains("no such file"));
  CHECK_THAT(e.message(), Catch::Contains("deepseek-v4.toml"));
  CHECK(e.pos().line == where(text, "model = ", "\"../models/deepseek-v4.toml\"").line);

  // The table form: [model] file = ...
  // ('model =' is the last top-level key before [cluster], so a [model] table can take its place.)
  const std::string table = replace(kScenario, "model = \"../models/deepseek-v3.toml\"",
                                    "[model]\nfile = \"../models/deepseek-v4.toml\"");
  Tree t2("model-missing-table", table);
  check_error(scenario_error(t2), t2.scenario, where(table, "file = ", "\"../models/deepseek-v4.toml\""), "model.file",
              "no such file");
}

TEST_CASE("Framework switches: wrong types, contradictions and ranges are refused at their key", "[config]") {
  struct Case {
    const char* add;      // line added to [plan]
    const char* key;      // key named in the error
    const char* target;   // the text the position points at
    const char* message;
  };
  const Case cases[] = {
      {"sequence_parallel = 1", "plan.sequence_parallel", "1", "expected a boolean"},
      {"tp_comm_overlap = true", "plan.tp_comm_overlap", "true", "needs sequence_parallel = true"},
      {"ep_comm_overlap = \"yes\"", "plan.ep_comm_overlap", "\"yes\"", "expected a boolean"},
      {"overlap_grad_reduce = 0.5", "plan.overlap_grad_reduce", "0.5", "expected a boolean"},
      {"dp_bucket_params = 0", "plan.dp_bucket_params", "0", "out of range"},
      {"cp_comm = \"allgather\"", "plan.cp_comm", "\"allgather\"", "did you mean 'all_gather'?"},
      {"recompute_num_layers = 2", "plan.recompute_num_layers", "2", "applies to recompute = \"full\""},
      {"shared_expert_overlap = []", "plan.shared_expert_overlap", "[]", "expected a boolean"},
      {"attention = \"flashy\"", "plan.attention", "\"flashy\"", "did you mean 'flash'?"},
      {"grad_buckets = \"uniforms\"", "plan.grad_buckets", "\"uniforms\"", "did you mean 'uniform'?"},
      {"ep_dispatcher = \"all_to_all\"", "plan.ep_dispatcher", "\"all_to_all\"", "did you mean 'alltoall'?"},
  };
  for (const auto& c : cases) {
    INFO(c.add);
    const std::string text = replace(kScenario, "comm_sms = 20 ", std::string(c.add) + "\ncomm_sms = 20 ");
    Tree t(std::string("switch-") + c.key, text);
    check_error(scenario_error(t), t.scenario, where(text, c.add, c.target), c.key, c.message);
  }
  // The unfused attention core is not modelled with context parallelism.
  const std::string ucp = replace(kScenario, "comm_sms = 20 ", "attention = \"unfused\"\ncomm_sms = 20 ");
  const std::string ucp2 = replace(ucp, "cp = 1", "cp = 2");
  Tree tu("switch-unfused-cp", ucp2);
  check_error(scenario_error(tu), tu.scenario, where(ucp2, "attention = ", "\"unfused\""), "plan.attention",
              "with cp 2 is not modelled");
  // overlap_param_gather needs a sharded optimizer.
  const std::string z0 = replace(replace(kScenario, "zero = 1 ", "zero = 0 "), "comm_sms = 20 ",
                                 "overlap_param_gather = true\ncomm_sms = 20 ");
  Tree t("switch-param-gather", z0);
  check_error(scenario_error(t), t.scenario, where(z0, "overlap_param_gather", "true"), "plan.overlap_param_gather",
              "needs a sharded optimizer");
}

TEST_CASE("cluster.nvlink_domain must join whole nodes", "[config]") {
  const std::string text = replace(kScenario, "gpus_per_node = 8 ", "nvlink_domain = 36\ngpus_per_node = 8 ");
  Tree t("nvlink-domain", text);
  check_error(scenario_error(t), t.scenario, where(text, "nvlink_domain", "36"), "cluster.nvlink_domain",
              "not a multiple of gpus_per_node 8");
  const std::string zero = replace(kScenario, "gpus_per_node = 8 ", "nvlink_domain = 0\ngpus_per_node = 8 ");
  Tree t2("nvlink-domain-0", zero);
  check_error(scenario_error(t2), t2.scenario, where(zero, "nvlink_domain", "0"), "cluster.nvlink_domain", "out of range");
}
