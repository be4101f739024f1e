// A reproducibility golden (not a derivation): a fresh `trainsim plan` of the DeepSeek-V3 scenario
// reproduces reports/deepseek-v3-plan/ byte for byte (scripts/regenerate-reports.sh writes it;
// SOURCE_DATE_EPOCH and TRAINSIM_COMMIT are fixed by tests/CMakeLists.txt). The search takes
// about half a minute of CPU per thread count: label slow. It runs with --jobs 1 here and with
// --jobs 2 in the script, so it also checks that the result does not depend on --jobs.
#include <catch2/catch.hpp>

#include "support.hpp"

using namespace ts_test;

TEST_CASE("trainsim plan reproduces reports/deepseek-v3-plan", "[plan][golden][slow]") {
  const auto dir = temp_dir("plan-golden");
  const auto r = run_trainsim("plan '" + data("scenarios/deepseek-v3-h800.toml").string() + "' --objective cost --jobs 1 -q --out '" +
                                  (dir / "out").string() + "'",
                              source_dir().string());
  REQUIRE(r.status == 0);
  const auto golden = data("reports/deepseek-v3-plan");
  // The command line recorded in the report names the scenario as given: the script gives it
  // relative to the source tree.
  CHECK(read_file(dir / "out" / "plans.csv") == read_file(golden / "plans.csv"));
  const std::string md = read_file(dir / "out" / "report.md");
  const std::string want = read_file(golden / "report.md");
  CHECK(md.substr(md.find("## Search space")) == want.substr(want.find("## Search space")));
}
