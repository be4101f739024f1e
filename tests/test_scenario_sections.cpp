// Bad input in the scenario sections that describe a whole run: [[phases]], [energy],
// [goodput], [reference], [chunk_pair]; and `trainsim run` on bad input writes nothing.
// Each case writes a small scenario, finds the expected line in the text it wrote, and checks
// the ConfigError's file, line and full dotted key.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {

const std::string kBase = "name = \"t\"\nmodel = \"" + ts_test::data("models/llama3-8b.toml").string() +
                          "\"\n[cluster]\ngpu = \"h800\"\ngpus = 8\ngpus_per_node = 8\n[plan]\ndp = 8\nzero = 1\n"
                          "[training]\nseq_len = 4096\nglobal_batch = 64\ntokens = 1e9\n";

std::uint32_t line_of(const std::string& text, const std::string& needle) {
  const auto at = text.find(needle);
  REQUIRE(at != std::string::npos);
  return static_cast<std::uint32_t>(1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

// Loads kBase + extra; expects a ConfigError at the line of `at` with key `key`.
void expect_error(const std::string& tag, const std::string& extra, const std::string& at, const std::string& key,
                  const std::string& fragment) {
  const std::string text = kBase + extra;
  const auto dir = ts_test::temp_dir(tag);
  const auto file = dir / "s.toml";
  ts_test::write_file(file, text);
  try {
    (void)load_scenario(file.string());
    FAIL("no ConfigError for " << tag);
  } catch (const ConfigError& e) {
    INFO(e.what());
    CHECK(e.pos().file == file.string());
    CHECK(e.pos().line == line_of(text, at));
    CHECK(e.key() == key);
    CHECK(e.message().find(fragment) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("[[phases]]: unknown key, both tokens and steps, inconsistent plan override", "[config]") {
  expect_error("ph-unknown", "[[phases]]\nname = \"ctx\"\nseq_len = 8192\nglobal_batch = 64\nsteps = 10\nsteps_per = 3\n",
               "steps_per", "phases[1].steps_per", "unknown key");
  expect_error("ph-both", "[[phases]]\nname = \"ctx\"\nseq_len = 8192\nglobal_batch = 64\nsteps = 10\ntokens = 5e9\n",
               "steps = 10", "phases[1].steps", "exactly one of");
  // dp 4 x pp 1 = 4 GPUs of 8: the error names the phase's own plan key.
  expect_error("ph-plan", "[[phases]]\nname = \"ctx\"\nseq_len = 8192\nglobal_batch = 64\nsteps = 10\nplan = { dp = 4 }\n",
               "plan = { dp = 4 }", "phases[1].plan.dp", "does not equal cluster.gpus");
  expect_error("ph-kind", "[[phases]]\nname = \"ctx\"\nkind = \"pretrain\"\nseq_len = 8192\nglobal_batch = 64\nsteps = 10\n",
               "kind = \"pretrain\"", "phases[1].kind", "did you mean 'pretraining'");
}

TEST_CASE("[energy] and [goodput]: ranges and units", "[config]") {
  expect_error("en-pue", "[energy]\nidle_power = \"90W\"\npue = 0.5\n", "pue = 0.5", "energy.pue", "out of range");
  expect_error("en-unit", "[energy]\nidle_power = 90\npue = 1.2\n", "idle_power = 90", "energy.idle_power", "no unit");
  expect_error("gp-unit",
               "[goodput]\nfailures_per_gpu_day = 0.001\ncheckpoint_interval = \"1h\"\ncheckpoint_cost = \"60 parsecs\"\n"
               "restart = \"10min\"\n",
               "checkpoint_cost", "goodput.checkpoint_cost", "unknown unit");
  expect_error("gp-missing", "[goodput]\nfailures_per_gpu_day = 0.001\ncheckpoint_interval = \"1h\"\ncheckpoint_cost = \"60s\"\n",
               "[goodput]", "goodput.restart", "missing required key");
}

TEST_CASE("[reference] and [chunk_pair]: unknown phase kind, missing profile", "[config]") {
  expect_error("ref-kind", "[reference]\nsource = \"x\"\ngpu_hours = { pretrain = 5 }\n", "pretrain", "reference.gpu_hours.pretrain",
               "did you mean 'pretraining'");
  expect_error("cp-file", "[chunk_pair]\nmoe_layers = 4\nmeasured_profile = \"nope.profile.jsonl\"\nsource = \"x\"\n",
               "measured_profile", "chunk_pair.measured_profile", "no such file");
}

TEST_CASE("trainsim run on bad input exits 2, names file, line and key, and writes nothing", "[cli]") {
  const std::string text = kBase + "[energy]\npue = 0.5\n";
  const auto dir = ts_test::temp_dir("run-bad");
  ts_test::write_file(dir / "s.toml", text);
  const auto out = dir / "out";
  const auto r = ts_test::run_trainsim("run '" + (dir / "s.toml").string() + "' --out '" + out.string() + "'");
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("s.toml:" + std::to_string(line_of(text, "pue = 0.5")) + ":") != std::string::npos);
  CHECK(r.err.find("energy.pue") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
  // A --set with an unknown key: the same, with the "--set" source named.
  const auto s = ts_test::run_trainsim("run '" + (dir / "s.toml").string() + "' --set plan.ppp=2");
  CHECK(s.status == 2);
  CHECK(s.err.find("--set") != std::string::npos);
  CHECK(s.err.find("plan.ppp") != std::string::npos);
}
