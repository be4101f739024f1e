// The reference report of the main job (reports/deepseek-v3-h800/) is what a fresh run of the
// committed scenario produces, byte for byte. Regenerate with scripts/regenerate-reports.sh when
// a change is meant to move the numbers (and say why in the commit). The numbers themselves are
// checked against independent derivations elsewhere (test_step, test_run, test_training_run);
// this test guards against unintended changes and nondeterminism.
#include <catch2/catch.hpp>

#include "support.hpp"

TEST_CASE("trainsim run reproduces reports/deepseek-v3-h800", "[report]") {
  const auto ref = ts_test::source_dir() / "reports" / "deepseek-v3-h800";
  const auto out = ts_test::temp_dir("refreport");
  const auto r = ts_test::run_trainsim("run scenarios/deepseek-v3-h800.toml --out '" + out.string() + "'",
                                       ts_test::source_dir().string());
  REQUIRE(r.status == 0);
  for (const char* f : {"report.md", "report.html", "metrics.json", "timeline.json"}) {
    INFO(f);
    CHECK(ts_test::read_file(out / f) == ts_test::read_file(ref / f));
  }
  const auto text = ts_test::run_trainsim("run scenarios/deepseek-v3-h800.toml", ts_test::source_dir().string());
  CHECK(text.out == ts_test::read_file(ref / "report.txt"));
  const auto chunk = ts_test::run_trainsim("run scenarios/calibration/deepseek-v3-h800-chunk.toml", ts_test::source_dir().string());
  CHECK(chunk.out == ts_test::read_file(ref / "chunk-pair.txt"));
}

TEST_CASE("The main job's report carries the published comparison", "[report]") {
  const auto text = ts_test::read_file(ts_test::source_dir() / "reports" / "deepseek-v3-h800" / "report.txt");
  // DeepSeek-V3 Table 1: 2664K / 119K / 5K / 2788K GPU-hours; 180K per trillion tokens (§1).
  for (const char* s : {"2.664M", "119.0K", "5.0K", "2.788M", "180.0K", "$5.576M"}) {
    INFO(s);
    CHECK(text.find(s) != std::string::npos);
  }
}
