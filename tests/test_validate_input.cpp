// Bad input to `trainsim validate`: its options and the case tables of a suite. Every error
// exits 2, names the option or the file, line and key, and writes nothing. Uses small suites
// in a temporary folder whose cases point at committed scenarios (fast: one small case each).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;

std::string v6(const char* name = "dp96-768.toml") {
  return ts_test::data(std::string("validation/v6-nemotron4-15b/") + name).string();
}

// A suite folder with one family whose case table is `table`.
fs::path suite_with(const std::string& tag, const std::string& table) {
  const fs::path dir = ts_test::temp_dir("validate-" + tag);
  ts_test::write_file(dir / "fam" / "cases.toml", table);
  return dir;
}

const std::string kHead = R"(family = "T"
title = "test family"
metric = "step_time"
[sources]
Tag = "a source"
)";

std::string one_case(const std::string& body) { return kHead + "\n[[cases]]\n" + body; }

// Runs validate on `suite` with --out into a fresh folder and checks the bad-input contract.
ts_test::RunResult run_bad(const fs::path& suite, const std::string& extra = "") {
  const fs::path out = suite / "out";
  auto r = ts_test::run_trainsim("validate -q --suite '" + suite.string() + "' --out '" + out.string() + "' " + extra);
  INFO(r.err);
  CHECK(r.status == 2);
  CHECK(!fs::exists(out));  // nothing written
  CHECK(r.out.empty());
  return r;
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("validate: a small suite runs, and a not-expressible case is listed with its reason", "[validate][input]") {
  const fs::path dir = suite_with("ok", kHead + R"(
[assumptions]
note = "shared by every case"

[[cases]]
name = "a"
scenario = ")" + v6() + R"("
published = "0.57s"
source = "Tag Table 2"

[[cases]]
name = "b"
not_expressible = "needs a feature trainsim lacks"
gpu = "h100-sxm"
published = "1.5s"
source = "Tag"
)");
  const fs::path out = dir / "out";
  const auto r = ts_test::run_trainsim("validate -q -j 1 --suite '" + dir.string() + "' --out '" + out.string() + "'");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(has(r.out, "not expressible: needs a feature trainsim lacks"));
  CHECK(has(r.out, "T/b: needs a feature trainsim lacks"));
  const auto j = nlohmann::json::parse(ts_test::read_file(out / "metrics.json"));
  CHECK(j["summary"]["all"]["cases"] == 2);
  CHECK(j["summary"]["all"]["expressible"] == 1);
  CHECK(j["summary"]["all"]["not_expressible"] == 1);
  // The summary is over the expressible case only.
  CHECK(j["summary"]["all"]["max_abs_error_pct"].get<double>() ==
        Approx(std::fabs(j["cases"][0]["error_pct"].get<double>())));
  CHECK(j["cases"][1]["not_expressible"] == "needs a feature trainsim lacks");
  CHECK(j["cases"][1]["gpu"] == "h100-sxm");
  for (const char* f : {"report.md", "report.html", "metrics.json"}) CHECK(fs::exists(out / f));
  CHECK(has(ts_test::read_file(out / "report.html"), "<svg id=\"chart-errors\""));
  // --json prints the same document as metrics.json.
  const auto js = ts_test::run_trainsim("validate -q -j 1 --json --suite '" + dir.string() + "'");
  REQUIRE(js.status == 0);
  CHECK(js.out == ts_test::read_file(out / "metrics.json"));
  // --filter selects by id, family or name; case-insensitive.
  const auto f = ts_test::run_trainsim("validate -q --json --filter 't/A' --suite '" + dir.string() + "'");
  REQUIRE(f.status == 0);
  CHECK(nlohmann::json::parse(f.out)["summary"]["all"]["cases"] == 1);
  // Progress goes to stderr.
  const auto p = ts_test::run_trainsim("validate --suite '" + dir.string() + "'");
  REQUIRE(p.status == 0);
  CHECK(has(p.err, "validate [1/2]"));
  CHECK(!has(p.out, "validate ["));
}

TEST_CASE("validate: bad options exit 2, name the option and write nothing", "[validate][input]") {
  const fs::path dir = suite_with("opts", one_case("name = \"a\"\nscenario = \"" + v6() +
                                                   "\"\npublished = \"0.57s\"\nsource = \"Tag\"\n"));
  SECTION("a filter that matches nothing") {
    const auto r = run_bad(dir, "--filter 'nothing*'");
    CHECK(has(r.err, "--filter 'nothing*' matches no case"));
  }
  SECTION("an empty filter") {
    const auto r = run_bad(dir, "--filter ''");
    CHECK(has(r.err, "--filter"));
  }
  SECTION("--jobs 0") { run_bad(dir, "--jobs 0"); }
  SECTION("an unknown option") { run_bad(dir, "--frobnicate"); }
  SECTION("--out names an existing file") {
    const fs::path file = dir / "a-file";
    ts_test::write_file(file, "keep me");
    const auto r = ts_test::run_trainsim("validate -q --suite '" + dir.string() + "' --out '" + file.string() + "'");
    CHECK(r.status == 2);
    CHECK(has(r.err, "--out"));
    CHECK(ts_test::read_file(file) == "keep me");
  }
}

TEST_CASE("validate: --suite must be a folder of case tables", "[validate][input]") {
  SECTION("missing folder") {
    const auto r = ts_test::run_trainsim("validate -q --suite /nonexistent/suite");
    CHECK(r.status == 2);
    CHECK(has(r.err, "--suite"));
  }
  SECTION("a folder without case tables") {
    const fs::path dir = ts_test::temp_dir("validate-empty");
    const auto r = ts_test::run_trainsim("validate -q --suite '" + dir.string() + "' --out '" + (dir / "out").string() + "'");
    CHECK(r.status == 2);
    CHECK(has(r.err, "has no case tables"));
    CHECK(!fs::exists(dir / "out"));
  }
}

TEST_CASE("validate: bad case tables name the file, line and key", "[validate][input]") {
  const std::string good = "name = \"a\"\nscenario = \"" + v6() + "\"\npublished = \"0.57s\"\nsource = \"Tag\"\n";
  struct Bad {
    const char* what;
    std::string table;
    std::vector<std::string> expect;  // substrings of the message
  };
  const std::vector<Bad> bad = {
      {"unknown metric", kHead.substr(0, kHead.find("metric")) + "metric = \"step_tme\"\n[sources]\nTag = \"x\"\n[[cases]]\n" + good,
       {"cases.toml:3", "metric", "unknown metric 'step_tme'", "did you mean 'step_time'"}},
      {"misspelt case key", one_case(good + "publised = 1\n"), {"cases.toml:", "cases[0].publised", "did you mean 'published'"}},
      {"bare number for a duration", one_case("name = \"a\"\nscenario = \"" + v6() + "\"\npublished = 0.57\nsource = \"Tag\"\n"),
       {"cases[0].published", "a bare number has no unit"}},
      {"unit for a plain-number metric",
       "family = \"T\"\ntitle = \"t\"\nmetric = \"tokens_per_s_per_gpu\"\n[sources]\nTag = \"x\"\n[[cases]]\n" + good,
       {"cases[0].published", "takes a plain number"}},
      {"unknown source tag", one_case("name = \"a\"\nscenario = \"" + v6() + "\"\npublished = \"0.57s\"\nsource = \"Other\"\n"),
       {"cases[0].source", "does not start with a tag of [sources]"}},
      {"scenario and not_expressible", one_case(good + "not_expressible = \"x\"\n"),
       {"cases[0].not_expressible", "either scenario"}},
      {"neither scenario nor not_expressible", one_case("name = \"a\"\npublished = \"0.57s\"\nsource = \"Tag\"\n"),
       {"cases[0].scenario", "either scenario"}},
      {"not_expressible without gpu",
       one_case("name = \"a\"\nnot_expressible = \"x\"\npublished = \"0.57s\"\nsource = \"Tag\"\n"),
       {"cases[0].gpu", "missing required key"}},
      {"gpu with a scenario", one_case(good + "gpu = \"h100-sxm\"\n"), {"cases[0].gpu", "taken from the scenario"}},
      {"missing scenario file", one_case("name = \"a\"\nscenario = \"nope.toml\"\npublished = \"0.57s\"\nsource = \"Tag\"\n"),
       {"cases[0].scenario", "no such file"}},
      {"duplicate case", one_case(good) + "[[cases]]\n" + good, {"cases[1].name", "listed twice"}},
      {"no sources", "family = \"T\"\ntitle = \"t\"\nmetric = \"step_time\"\n[[cases]]\n" + good, {"sources", "missing required key"}},
      {"no cases", kHead, {"cases", "missing required key"}},
      {"bad family id", "family = \"T 1\"\n" + kHead.substr(kHead.find("title")) + "[[cases]]\n" + good, {"family", "short id"}},
      {"unknown top-level key", "famly = \"x\"\n" + one_case(good), {"cases.toml:1", "famly"}},
      {"TOML syntax", one_case(good) + "[[cases\n", {"cases.toml:"}},
      {"eq. 3 on a model that is not Megatron's GPT",
       "family = \"T\"\ntitle = \"t\"\nmetric = \"megatron_eq3_tflops_per_gpu\"\n[sources]\nTag = \"x\"\n[[cases]]\n"
       "name = \"a\"\nscenario = \"" + v6() + "\"\npublished = \"137TFLOP/s\"\nsource = \"Tag\"\n",
       {"cases.toml:3", "metric", "does not apply to case 'T/a'", "multi-head attention"}},
  };
  for (const auto& b : bad) {
    INFO(b.what);
    const fs::path dir = suite_with("table", b.table);
    const auto r = run_bad(dir);
    for (const auto& e : b.expect) {
      INFO(e);
      CHECK(has(r.err, e));
    }
    CHECK(has(r.err, (dir / "fam" / "cases.toml").string()));  // the file is named
  }
}

TEST_CASE("validate: a bad scenario in the suite names the scenario's file and key", "[validate][input]") {
  const fs::path dir = ts_test::temp_dir("validate-badscenario");
  ts_test::write_file(dir / "s.toml", ts_test::read_file(v6()) + "\n[plan.extra]\nx = 1\n");
  // The scenario references its shared files by relative path: copy them beside it.
  for (const char* f : {"plan.toml", "training.toml", "dgx-h100.toml"})
    ts_test::write_file(dir / f, ts_test::read_file(v6(f)));
  std::string text = ts_test::read_file(dir / "s.toml");
  const std::string from = "../../models/", to = ts_test::data("models").string() + "/";
  text.replace(text.find(from), from.size(), to);
  ts_test::write_file(dir / "s.toml", text);
  ts_test::write_file(dir / "fam" / "cases.toml",
                      one_case("name = \"a\"\nscenario = \"../s.toml\"\npublished = \"0.57s\"\nsource = \"Tag\"\n"));
  const auto r = run_bad(dir);
  CHECK(has(r.err, "s.toml"));
  CHECK(has(r.err, "plan.extra"));
}

TEST_CASE("validate: two case tables may not claim the same family", "[validate][input]") {
  const fs::path dir = suite_with("dupfam", one_case("name = \"a\"\nscenario = \"" + v6() +
                                                     "\"\npublished = \"0.57s\"\nsource = \"Tag\"\n"));
  ts_test::write_file(dir / "other" / "cases.toml", ts_test::read_file(dir / "fam" / "cases.toml"));
  const auto r = run_bad(dir);
  CHECK(has(r.err, "family 'T' is also defined by"));
}
