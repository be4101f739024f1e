// Discoverable (issue 12, point 4): trainsim list, name suggestions by closeness within the right
// list under the option the user gave, compare --hardware all, scenarios by name.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "config/reader.hpp"
#include "config/scenario.hpp"
#include "schedule/schedule.hpp"
#include "ux_support.hpp"

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

std::size_t files(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".toml";
  return n;
}

}  // namespace

TEST_CASE("trainsim list: one line per installed item, under a header", "[list]") {
  const auto gpus = ts_test::run_trainsim("list gpus");
  REQUIRE(gpus.status == 0);
  CHECK(lines(gpus.out) == 2 + files(ts_test::data("profiles/hardware")));
  CHECK(gpus.out.find("\nh100-sxm ") != std::string::npos);
  const auto models = ts_test::run_trainsim("list models");
  REQUIRE(models.status == 0);
  CHECK(lines(models.out) == 2 + files(ts_test::data("models")));
  CHECK(models.out.find("deepseek-v3 ") != std::string::npos);
  CHECK(models.out.find("671.03B") != std::string::npos);  // its parameters, from the model math
  const auto sch = ts_test::run_trainsim("list schedules");
  REQUIRE(sch.status == 0);
  CHECK(lines(sch.out) == 2 + trainsim::schedule::registry().size());
  CHECK(sch.out.find("dualpipe") != std::string::npos);
  const auto sc = ts_test::run_trainsim("list scenarios");
  REQUIRE(sc.status == 0);
  CHECK(sc.out.find("\ndeepseek-v3-h800 ") != std::string::npos);
  CHECK(sc.out.find("calibration/deepseek-v3-h800-chunk") != std::string::npos);
  CHECK(sc.out.find("llama3-8b-plans") == std::string::npos);  // a sweep file, not a scenario
  const auto bad = ts_test::run_trainsim("list gpu");
  CHECK(bad.status == 2);
  CHECK(bad.err.find("did you mean 'gpus'?") != std::string::npos);
}

TEST_CASE("Name errors suggest the closest name of the right list and name the option given", "[list]") {
  // The closeness rule: case does not count, and a name that contains the typed one comes first.
  const auto gpus = trainsim::hardware_names();
  CHECK(trainsim::closest_match("H100", gpus) == "h100-sxm");
  CHECK(trainsim::closest_match("a100", gpus) == "a100-sxm-80g");
  CHECK(trainsim::closest_match("h801", gpus) == "h800");
  CHECK(trainsim::closest_match("micro_bach", {"micro_batch", "pp", "dp"}) == "micro_batch");

  const std::string s = ts_test::llama_scenario("names");
  const auto hw = ts_test::run_trainsim("compare " + ts_test::q(s) + " --hardware h800,H100");
  CHECK(hw.status == 2);
  CHECK(hw.err.find("--hardware: unknown GPU 'H100' (did you mean 'h100-sxm'?)") != std::string::npos);
  CHECK(hw.err.find("--set") == std::string::npos);
  CHECK(hw.out.empty());
  const auto set = ts_test::run_trainsim("run " + ts_test::q(s) + " --set cluster.gpu=H100");
  CHECK(set.status == 2);
  CHECK(set.err.find("--set") != std::string::npos);
  CHECK(set.err.find("did you mean 'h100-sxm'?") != std::string::npos);
  const auto a2a = ts_test::run_trainsim("alltoall --hardware H800 --ep 8");
  CHECK(a2a.status == 2);
  CHECK(a2a.err.find("--hardware: unknown GPU 'H800' (did you mean 'h800'?)") != std::string::npos);
  const auto sched = ts_test::run_trainsim("compare " + ts_test::q(s) + " --hardware h800 --schedules 1f1b,dualpipee");
  CHECK(sched.status == 2);
  CHECK(sched.err.find("--schedules: unknown schedule 'dualpipee' (did you mean 'dualpipe'?)") != std::string::npos);
  const auto scen = ts_test::run_trainsim("run deepseek-v3-h80");
  CHECK(scen.status == 2);
  CHECK(scen.err.find("scenario: unknown scenario 'deepseek-v3-h80' (did you mean 'deepseek-v3-h800'?)") != std::string::npos);
  // compare sets cluster.gpu itself: a --set of it would be ignored, so it is refused.
  const auto clash = ts_test::run_trainsim("compare " + ts_test::q(s) + " --hardware h800 --set cluster.gpu=h200");
  CHECK(clash.status == 2);
  CHECK(clash.err.find("--set cluster.gpu=h200") != std::string::npos);
}

TEST_CASE("compare --hardware all: one row per GPU of trainsim list gpus", "[list]") {
  const std::string s = ts_test::llama_scenario("cmp-all");
  const auto r = ts_test::run_trainsim("compare " + ts_test::q(s) + " --hardware all --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  const auto gpus = trainsim::hardware_names();
  REQUIRE(j.at("hardware").size() == gpus.size());
  for (std::size_t i = 0; i < gpus.size(); ++i) CHECK(j.at("hardware")[i].at("gpu") == gpus[i]);
  CHECK(j.at("provenance").at("command").get<std::string>().find("--hardware all") != std::string::npos);
}
