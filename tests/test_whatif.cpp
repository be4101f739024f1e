// What-ifs are first-class (issue 12, point 2): every output records the scenario, the overrides,
// the command, the version and commit, and the date; a what-if's title says what changed; the
// published comparison is labelled as the baseline's; --baseline shows both and the change.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <regex>

#include "ux_support.hpp"

using nlohmann::json;

namespace {

// The Llama-3-8B scenario with published figures to compare against.
std::string with_reference(const std::string& tag) {
  return ts_test::llama_scenario(tag, "zero = 1\n",
                                 "[reference]\nsource = \"made up for the test\"\ngpu_hours = { total = 1000 }\n");
}

}  // namespace

TEST_CASE("A what-if records its overrides in text, JSON, Markdown and HTML, and its title says what changed",
          "[whatif]") {
  const std::string s = with_reference("whatif");
  const std::string set = "--set plan.schedule=zb1p --set 'hardware.interconnect.nic=200Gb/s'";
  const auto dir = ts_test::temp_dir("whatif-out");
  const auto t = ts_test::run_trainsim("run " + ts_test::q(s) + " " + set + " --out " + ts_test::q(dir.string()));
  INFO(t.err);
  REQUIRE(t.status == 0);
  // Text: the title, the command that reproduces it (without --out), the overrides.
  CHECK(t.out.rfind("trainsim run: whatif (what-if: plan.schedule=zb1p, hardware.interconnect.nic=200Gb/s)", 0) == 0);
  CHECK(t.out.find("command: trainsim run " + s + " --set plan.schedule=zb1p --set hardware.interconnect.nic=200Gb/s\n") !=
        std::string::npos);
  CHECK(t.out.find("overrides: --set plan.schedule=zb1p --set hardware.interconnect.nic=200Gb/s") != std::string::npos);
  // The tests fix the date and commit (tests/CMakeLists.txt), and the output says where they came from.
  CHECK(t.out.find("trainsim 0.1.0, commit reference (TRAINSIM_COMMIT); 1970-01-01T00:00:00Z (SOURCE_DATE_EPOCH)") !=
        std::string::npos);
  // The published figure is the unmodified scenario's.
  CHECK(t.out.find("Baseline published figures (made up for the test): published for the unmodified scenario") !=
        std::string::npos);
  CHECK(t.out.find("Prediction vs published") == std::string::npos);

  const json j = json::parse(ts_test::read_file(dir / "metrics.json"));
  CHECK(j.at("what_if").get<bool>());
  CHECK(j.at("title") == "whatif (what-if: plan.schedule=zb1p, hardware.interconnect.nic=200Gb/s)");
  CHECK(j.at("provenance").at("overrides") == json({"plan.schedule=zb1p", "hardware.interconnect.nic=200Gb/s"}));
  CHECK(j.at("provenance").at("version") == "0.1.0");
  CHECK(j.at("provenance").at("commit") == "reference (TRAINSIM_COMMIT)");
  CHECK(j.at("comparison").at("applies_to").get<std::string>().find("baseline published") != std::string::npos);

  const std::string md = ts_test::read_file(dir / "report.md");
  CHECK(md.find("`--set hardware.interconnect.nic=200Gb/s`") != std::string::npos);
  CHECK(md.find("## Baseline published figures") != std::string::npos);

  const std::string html = ts_test::read_file(dir / "report.html");
  CHECK(html.find("id=\"callout-whatif\"") != std::string::npos);
  CHECK(html.find("<code>--set plan.schedule=zb1p</code>") != std::string::npos);
  CHECK(html.find("id=\"callout-origin\"") != std::string::npos);
  CHECK(html.find("1970-01-01T00:00:00Z (SOURCE_DATE_EPOCH)") != std::string::npos);
  CHECK(html.find("<h2>Baseline published figures</h2>") != std::string::npos);
  CHECK(html.find("gap gap-ok") == std::string::npos);  // no green/red verdict on a what-if
}

TEST_CASE("The unmodified scenario: no overrides, the published comparison as such", "[whatif]") {
  const std::string s = with_reference("as-written");
  const auto t = ts_test::run_trainsim("run " + ts_test::q(s) + " --json");
  REQUIRE(t.status == 0);
  const json j = json::parse(t.out);
  CHECK_FALSE(j.at("what_if").get<bool>());
  CHECK(j.at("title") == "as-written");
  CHECK(j.at("provenance").at("overrides").empty());
  CHECK(j.at("provenance").at("command") == "trainsim run " + s);
  CHECK(j.at("comparison").at("applies_to") == "this scenario");
}

TEST_CASE("Without SOURCE_DATE_EPOCH and TRAINSIM_COMMIT: the clock's date and the built commit", "[whatif]") {
  const std::string s = ts_test::llama_scenario("clock");
  // Unset both for the child only.
  const std::string cmd = "env -u SOURCE_DATE_EPOCH -u TRAINSIM_COMMIT '" + std::string(ts_test::trainsim_bin()) +
                          "' run " + ts_test::q(s) + " --json";
  const auto out = ts_test::temp_dir("clock-out") / "o.json";
  REQUIRE(std::system((cmd + " > '" + out.string() + "'").c_str()) == 0);
  const json j = json::parse(ts_test::read_file(out));
  const std::string date = j.at("provenance").at("date");
  CHECK(std::regex_match(date, std::regex(R"(20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  const std::string commit = j.at("provenance").at("commit");
  INFO(commit);
  // A checkout: the git commit (12 hex digits, maybe -dirty); a tree without git says so.
  CHECK((std::regex_match(commit, std::regex(R"([0-9a-f]{12}(-dirty)?)")) || commit.rfind("unknown (", 0) == 0));
  if (std::system(("git -C '" + ts_test::source_dir().string() + "' rev-parse HEAD >/dev/null 2>&1").c_str()) == 0)
    CHECK(commit.rfind("unknown", 0) != 0);
  // A malformed SOURCE_DATE_EPOCH is bad input naming it.
  const auto err = ts_test::temp_dir("clock-err") / "e.txt";
  const int raw = std::system(("SOURCE_DATE_EPOCH=yesterday '" + std::string(ts_test::trainsim_bin()) + "' run " +
                               ts_test::q(s) + " >/dev/null 2>'" + err.string() + "'")
                                  .c_str());
  CHECK(WEXITSTATUS(raw) == 2);
  CHECK(ts_test::read_file(err).find("SOURCE_DATE_EPOCH='yesterday'") != std::string::npos);
}

TEST_CASE("run --baseline: baseline, what-if and the change per line of the breakdown and cost", "[whatif]") {
  const std::string s = ts_test::llama_scenario("baseline");
  const auto b = json::parse(ts_test::run_trainsim("run " + ts_test::q(s) + " --json").out);
  const auto w = json::parse(ts_test::run_trainsim("run " + ts_test::q(s) + " --json --set hardware.interconnect.nvlink=100GB/s").out);
  const auto r = ts_test::run_trainsim("run " + ts_test::q(s) + " --json --set hardware.interconnect.nvlink=100GB/s --baseline");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j.at("provenance").at("command").get<std::string>().find("--baseline") != std::string::npos);
  const auto& rows = j.at("baseline_comparison").at("rows");
  auto row = [&](const std::string& what) -> const json& {
    for (const auto& x : rows)
      if (x.at("what") == what) return x;
    FAIL("no row " << what);
    return rows[0];
  };
  // Each side equals the separate run; the delta is their difference.
  const auto& tot = row("total: GPU-hours");
  CHECK(tot.at("baseline").get<double>() == Approx(b.at("gpu_hours").get<double>()).epsilon(1e-12));
  CHECK(tot.at("what_if").get<double>() == Approx(w.at("gpu_hours").get<double>()).epsilon(1e-12));
  CHECK(tot.at("delta").get<double>() ==
        Approx(w.at("gpu_hours").get<double>() - b.at("gpu_hours").get<double>()).epsilon(1e-9));
  CHECK(row("total: cost").at("what_if").get<double>() == Approx(w.at("cost_usd").get<double>()).epsilon(1e-12));
  // Every non-zero part of the baseline's breakdown has its line.
  for (const auto& [name, sec] : b.at("phases")[0].at("breakdown_s").items()) {
    if (sec.get<double>() == 0) continue;
    INFO(name);
    bool seen = false;
    for (const auto& x : rows)
      seen = seen || (x.at("what").get<std::string>().rfind("pre-training: ", 0) == 0 &&
                      x.at("baseline").is_number() && x.at("baseline").get<double>() == Approx(sec.get<double>()));
    CHECK(seen);
  }
  CHECK(row("pre-training: step time").at("baseline").get<double>() == Approx(b.at("step_time_s").get<double>()));
  CHECK(row("pre-training: exposed DP").at("delta").get<double>() > 0);  // slower NVLink slows the DP collectives within the node

  const auto text = ts_test::run_trainsim("run " + ts_test::q(s) + " --set hardware.interconnect.nvlink=100GB/s --baseline");
  CHECK(text.out.find("What-if against the baseline (baseline)") != std::string::npos);
  CHECK(text.out.find("total: cost") != std::string::npos);
  // --baseline needs a what-if.
  const auto none = ts_test::run_trainsim("run " + ts_test::q(s) + " --baseline");
  CHECK(none.status == 2);
  CHECK(none.err.find("--baseline") != std::string::npos);
  CHECK(none.out.empty());
}
