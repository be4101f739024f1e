// The calibration issue's end-to-end checks, through the command line as a user runs them:
// replay of DeepSeek's raw H800 trace, and `trainsim calibrate` regenerating the committed
// calibration byte for byte.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support.hpp"

TEST_CASE("trainsim replay on the raw DeepSeek trace: |error| <= 3%, streams within 5%", "[calibration]") {
  const auto trace = ts_test::shared_dir() / "profiles" / "h800" / "deepseek-v3-train-fwdbwd-ep64.json";
  const auto r = ts_test::run_trainsim("replay '" + trace.string() + "' --json");
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  // error_pct = (simulated - measured) / measured: recompute it from the two spans.
  const double meas = j.at("measured_span_us").get<double>();
  const double sim = j.at("simulated_span_us").get<double>();
  CHECK(j.at("error_pct").get<double>() == Approx((sim - meas) / meas * 100).epsilon(1e-9));
  CHECK(std::fabs((sim - meas) / meas) <= 0.03);
  REQUIRE(j.contains("streams"));
  for (const auto& s : j.at("streams")) {
    const double mb = s.at("measured_busy_us").get<double>();
    const double sb = s.at("simulated_busy_us").get<double>();
    INFO("stream " << s.dump());
    CHECK(std::fabs(sb - mb) <= 0.05 * mb);
  }
}

TEST_CASE("trainsim calibrate regenerates profiles/h800/calibration.toml byte for byte", "[calibration]") {
  const auto committed = ts_test::read_file(ts_test::data("profiles/h800/calibration.toml"));
  // The file records the command that made it: run exactly that, writing elsewhere.
  const auto key = committed.find("command = \"trainsim calibrate ");
  REQUIRE(key != std::string::npos);
  const auto start = key + std::string("command = \"trainsim ").size();
  std::string args = committed.substr(start, committed.find('"', start) - start);
  const auto o = args.find(" -o ");
  REQUIRE(o != std::string::npos);
  const auto out = ts_test::temp_dir("calibrate") / "calibration.toml";
  args = args.substr(0, o) + " -o '" + out.string() + "'";
  const auto r = ts_test::run_trainsim(args, ts_test::source_dir().string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  // The file records its own command line, -o included: the only allowed difference is that
  // this run wrote to a temporary path instead of profiles/h800/calibration.toml.
  std::string fresh = ts_test::read_file(out);
  const std::string tmp_o = "-o '" + out.string() + "'", tmp_o2 = "-o " + out.string();
  for (const auto& t : {tmp_o, tmp_o2})
    for (auto at = fresh.find(t); at != std::string::npos; at = fresh.find(t))
      fresh.replace(at, t.size(), "-o profiles/h800/calibration.toml");
  CHECK(fresh == committed);
}
