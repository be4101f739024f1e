// `--set` reaches everything or refuses (issue 12, point 3): phases by index or name, a bare
// quantity for a hardware value (recorded as its source), and refusals naming the key and --set.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "ux_support.hpp"

using namespace trainsim;
using nlohmann::json;

namespace {

// Two phases: [training] on dp 8, and "long" whose plan overrides pp and dp.
std::string two_phases(const std::string& tag) {
  return ts_test::llama_scenario(tag, "zero = 1\n",
                                 "[[phases]]\nname = \"long\"\nkind = \"context_extension\"\nseq_len = 8192\n"
                                 "global_batch = 32\nsteps = 10\nplan = { dp = 4, pp = 2 }\n");
}

ConfigError error_of(const std::string& s, const std::vector<std::string>& sets) {
  try {
    (void)load_scenario(s, sets);
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("no ConfigError");
  throw;
}

}  // namespace

TEST_CASE("--set phases.<index>.<key> and phases.<name>.<key> reach that phase only", "[set]") {
  const std::string s = two_phases("set-phase");
  // Before: the phase's own plan.
  const Scenario a = load_scenario(s);
  REQUIRE(a.phases.size() == 2);
  CHECK(a.phases[1].plan.dp == 4);
  // By index: phases.1 is the first [[phases]] entry.
  const Scenario b = load_scenario(s, {"phases.1.plan.dp=2", "phases.1.plan.pp=4", "phases.1.steps=20"});
  CHECK(b.phases[1].plan.dp == 2);
  CHECK(b.phases[1].plan.pp == 4);
  CHECK(b.phases[1].training.steps == 20);
  CHECK(b.phases[0].plan.dp == 8);  // phase 0 untouched
  // By name, the same.
  const Scenario c = load_scenario(s, {"phases.long.plan.dp=2", "phases.long.plan.pp=4"});
  CHECK(c.phases[1].plan.dp == 2);
  // phases.0 is [training] with [plan], and only phase 0: the other phase keeps the main plan's
  // value where it does not set the key itself (micro_batch here).
  const Scenario d = load_scenario(s, {"phases.0.plan.micro_batch=2", "phases.0.tokens=2e9"});
  CHECK(d.phases[0].plan.micro_batch == 2);
  CHECK(d.plan.micro_batch == 2);
  CHECK(d.phases[0].training.tokens == 2e9);
  CHECK(d.phases[1].plan.micro_batch == 1);
  // The CLI: the phase's plan in the report changes (and the run is a what-if naming it).
  const auto r = ts_test::run_trainsim("run " + ts_test::q(s) + " --json --set phases.1.plan.dp=2 --set phases.1.plan.pp=4");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j.at("phases")[1].at("plan").get<std::string>().rfind("dp2 tp1 pp4", 0) == 0);
  CHECK(j.at("phases")[0].at("plan").get<std::string>().rfind("dp8 tp1 pp1", 0) == 0);
}

TEST_CASE("--set refuses what it cannot apply, naming the key and --set", "[set]") {
  const std::string s = two_phases("set-refuse");
  // An unknown phase index or name (with a suggestion).
  const auto e1 = error_of(s, {"phases.5.plan.dp=2"});
  CHECK(e1.pos().file == "--set");
  CHECK(e1.key() == "phases.5");
  CHECK_THAT(e1.message(), Catch::Contains("no phase 5") && Catch::Contains("1 'long'"));
  const auto e2 = error_of(s, {"phases.lnog.steps=3"});
  CHECK(e2.key() == "phases.lnog");
  CHECK_THAT(e2.message(), Catch::Contains("did you mean 'long'?"));
  // An unknown key inside a phase, and a value that is not phase keys.
  const auto e3 = error_of(s, {"phases.1.stepz=3"});
  CHECK(e3.pos().file == "--set");
  CHECK(e3.key() == "phases[1].stepz");
  CHECK_THAT(e3.message(), Catch::Contains("did you mean 'steps'?"));
  const auto e4 = error_of(s, {"phases.1=3"});
  CHECK(e4.key() == "phases.1");
  const auto e5 = error_of(s, {"phases=[1]"});
  CHECK(e5.key() == "phases");
  // A phase addressed twice.
  const auto e6 = error_of(s, {"phases.1.steps=3", "phases.long.steps=4"});
  CHECK_THAT(e6.message(), Catch::Contains("addressed twice"));
  // A line break cannot start another TOML line (here: a table that would set plan.pp).
  const auto e7 = error_of(s, {"plan.zero=1\n[plan]\npp=8"});
  CHECK(e7.pos().file == "--set");
  CHECK_THAT(e7.message(), Catch::Contains("line break"));
  // On the command line: exit 2, nothing on stdout, --set and the key on stderr.
  const auto r = ts_test::run_trainsim("run " + ts_test::q(s) + " --set phases.9.steps=1");
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("--set") != std::string::npos);
  CHECK(r.err.find("phases.9") != std::string::npos);
}

TEST_CASE("A bare quantity sets a hardware value and records the override as its source", "[set]") {
  const std::string s = ts_test::llama_scenario("set-hw");
  const Scenario base = load_scenario(s);
  // 200 Gb/s = 25 GB/s, one direction (docs/configuration.md: bits are b).
  const Scenario sc = load_scenario(s, {"hardware.interconnect.nic=200Gb/s"});
  CHECK(sc.hardware.nic.value == Approx(25e9));
  CHECK(sc.hardware.nic.source == "--set hardware.interconnect.nic=200Gb/s");
  CHECK(sc.hardware.nvlink.source == base.hardware.nvlink.source);  // the rest is the GPU file's
  // In a scenario's [hardware] table too, with the file and line as the source.
  const auto dir = ts_test::temp_dir("set-hw-file");
  ts_test::write_file(dir / "s.toml", ts_test::read_file(s) + "[hardware]\nmemory.capacity = \"141GB\"\n");
  const Scenario f = load_scenario((dir / "s.toml").string());
  CHECK(f.hardware.hbm_capacity.value == 141e9);
  CHECK_THAT(f.hardware.hbm_capacity.source, Catch::Contains("hardware.memory.capacity") && Catch::Contains("s.toml:"));
  // A bad unit: an error at --set naming the key.
  const auto e = error_of(s, {"hardware.interconnect.nic=200Gbps"});
  CHECK(e.pos().file == "--set");
  CHECK(e.key() == "hardware.interconnect.nic");
  // The GPU file itself must still give { value, source }.
  ts_test::write_file(dir / "gpu.toml", [&] {
    std::string t = ts_test::read_file(ts_test::data("profiles/hardware/h800.toml"));
    const auto at = t.find("nic = {");
    REQUIRE(at != std::string::npos);
    return t.substr(0, at) + "nic = \"400Gb/s\"\n" + t.substr(t.find('\n', at) + 1);
  }());
  const auto e2 = error_of(s, {"cluster.gpu=\"" + (dir / "gpu.toml").string() + "\""});
  CHECK(e2.key() == "hardware.interconnect.nic");
  CHECK_THAT(e2.message(), Catch::Contains("allowed only in an override"));
}
