// The calibration issue's end-to-end checks, through the command line as a user runs them:
// replay of DeepSeek's raw H800 trace, and `trainsim calibrate` regenerating the committed
// calibration byte for byte.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "support.hpp"

TEST_CASE("trainsim replay on the raw DeepSeek trace: |error| <= 3%, streams within 5%", "[calibration]") {
  const auto trace = ts_test::shared_dir() / "profiles" / "h800" / "deepseek-v3-train-fwdbwd-ep64.json";
  if (!ts_test::shared_present(trace)) return;
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

TEST_CASE("trainsim calibrate regenerates every GPU's calibration.toml byte for byte", "[calibration]") {
  for (const char* gpu : {"h800", "h100-sxm", "h200", "a100-sxm-80g", "b200", "gb200"}) {
    INFO(gpu);
    const std::string rel = std::string("profiles/") + gpu + "/calibration.toml";
    const auto committed = ts_test::read_file(ts_test::data(rel));
    // The file records the command that made it: run exactly that, writing elsewhere.
    const auto key = committed.find("command = \"trainsim calibrate ");
    REQUIRE(key != std::string::npos);
    const auto start = key + std::string("command = \"trainsim ").size();
    std::string args = committed.substr(start, committed.find('"', start) - start);
    const auto o = args.find(" -o ");
    REQUIRE(o != std::string::npos);
    const auto out = ts_test::temp_dir("calibrate") / (std::string(gpu) + ".toml");
    args = args.substr(0, o) + " -o '" + out.string() + "'";
    const auto r = ts_test::run_trainsim(args, ts_test::source_dir().string());
    INFO(r.err);
    REQUIRE(r.status == 0);
    // The printed table gives held-out errors per class.
    CHECK(r.out.find("held-out rms") != std::string::npos);
    // The file records its own command line, -o included: the only allowed difference is that
    // this run wrote to a temporary path.
    std::string fresh = ts_test::read_file(out);
    const std::string tmp_o = "-o '" + out.string() + "'", tmp_o2 = "-o " + out.string();
    for (const auto& t : {tmp_o, tmp_o2})
      for (auto at = fresh.find(t); at != std::string::npos; at = fresh.find(t))
        fresh.replace(at, t.size(), "-o " + rel);
    CHECK(fresh == committed);
  }
}

TEST_CASE("trainsim calibrate accepts a kernel profile on its own", "[calibration]") {
  // DeepSeek's trace alone: GEMMs, attention and memory-bound kernels with shapes and bytes, and
  // the kernel gaps. No FlashMLA or other table is required.
  const auto out = ts_test::temp_dir("calibrate-alone") / "c.toml";
  const auto r = ts_test::run_trainsim("calibrate profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl --gpu h800 "
                                       "--model models/deepseek-v3.toml -o '" + out.string() + "'",
                                       ts_test::source_dir().string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto text = ts_test::read_file(out);
  CHECK(text.find("[gemm_fp8]") != std::string::npos);
  CHECK(text.find("[memory_bound.norm]") != std::string::npos);
  CHECK(text.find("model = \"rate\"") != std::string::npos);  // one attention shape: the rate model
}

TEST_CASE("trainsim calibrate: bad measurement tables are input errors naming file, line and key", "[calibration]") {
  const auto dir = ts_test::temp_dir("calibrate-bad");
  const std::string head = "kind = \"membound\"\ngpu = \"h800\"\ndevice = \"d\"\nsource = \"s\"\ncommit = \"c\"\n"
                           "date = \"d\"\nsoftware = \"s\"\nlicence = \"l\"\n";
  const std::string row = "row = [ { op = \"norm\", kernel = \"k\", pass = \"fwd\", shape = \"s\", bytes = 1e8, time_us = 40.0, "
                          "measured = \"m\" } ]\n";
  struct Case {
    const char* what;
    std::string text;
    const char* key;
  };
  const std::vector<Case> cases = {
      {"unknown kind", "kind = \"flops\"\n" + head.substr(head.find('\n') + 1) + row, "kind"},
      {"no licence", head.substr(0, head.find("licence")) + row, "licence"},
      {"unknown op", head + "row = [ { op = \"normal\", kernel = \"k\", pass = \"fwd\", shape = \"s\", bytes = 1e8, "
                            "time_us = 40.0, measured = \"m\" } ]\n", "row[0].op"},
      {"unknown row key", head + "row = [ { op = \"norm\", kernel = \"k\", pass = \"fwd\", shape = \"s\", bytes = 1e8, "
                                 "time_us = 40.0, measured = \"m\", byte = 3 } ]\n", "row[0].byte"},
      {"negative time", head + "row = [ { op = \"norm\", kernel = \"k\", pass = \"fwd\", shape = \"s\", bytes = 1e8, "
                               "time_us = -4.0, measured = \"m\" } ]\n", "row[0].time_us"},
      {"no rows", head, "row"},
      {"unknown GPU", "kind = \"membound\"\ngpu = \"h900\"\n" + head.substr(head.find("device")) + row, "h900"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const auto path = dir / "t.toml";
    ts_test::write_file(path, c.text);
    const auto out = dir / "out.toml";
    std::filesystem::remove(out);
    const auto r = ts_test::run_trainsim("calibrate profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl '" +
                                             path.string() + "' --gpu h800 --model models/deepseek-v3.toml -o '" +
                                             out.string() + "'",
                                         ts_test::source_dir().string());
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.key) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));  // nothing half-written
  }
  // A GEMM column faster than the GPU's dense peak is rejected, and the output says so.
  const auto gemm = dir / "g.toml";
  ts_test::write_file(gemm, "kind = \"gemm\"\ngpu = \"h800\"\ndevice = \"d\"\nsource = \"s\"\ncommit = \"c\"\ndate = \"d\"\n"
                            "software = \"s\"\nlicence = \"l\"\nlayout = \"batched\"\nunit = \"FLOP/s\"\n"
                            "row = [ { b = 1, m = 4096, n = 4096, k = 4096, flops_fp8 = 3e15 } ]\n");
  const auto r = ts_test::run_trainsim("calibrate profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl '" + gemm.string() +
                                           "' --gpu h800 --model models/deepseek-v3.toml -o '" + (dir / "g.out").string() + "'",
                                       ts_test::source_dir().string());
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("fp8 column rejected") != std::string::npos);
}
