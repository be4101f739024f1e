// `trainsim schedule`: output formats, determinism, Perfetto trace and bad input.
#include <catch2/catch.hpp>

#include <set>

#include <nlohmann/json.hpp>

#include "support.hpp"

using ts_test::run_trainsim;

TEST_CASE("--json has the documented fields") {
  const auto r = run_trainsim("schedule --kind 1f1b --pp 4 --microbatches 8 --f 3 --b 5 --json --order");
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  // 1F1B: makespan (M+P-1)(F+B) = 11 * 8 = 88 us; bubble (P-1)(F+B) = 24 us per rank.
  CHECK(j.at("makespan_us").get<double>() == 88.0);
  REQUIRE(j.at("bubble_us").size() == 4);
  for (const auto& b : j.at("bubble_us")) CHECK(b.get<double>() == 24.0);
  for (const auto& b : j.at("busy_us")) CHECK(b.get<double>() == 64.0);
  // bubble fraction = 4 * 24 / (4 * 88)
  CHECK(j.at("bubble_fraction").get<double>() == Approx(24.0 / 88.0));
  CHECK(j.at("peak_inflight_microbatches") == nlohmann::json::array({4, 3, 2, 1}));
  CHECK(j.at("weight_copies") == 1);
  REQUIRE(j.at("order").size() == 4);
  // Last rank: no warm-up, F0 B0 F1 B1 ...
  CHECK(j.at("order")[3][0] == "F0:0");
  CHECK(j.at("order")[3][1] == "B0:0");
  CHECK(!j.at("critical_path").empty());
}

TEST_CASE("times accept units; a plain number is microseconds") {
  const auto a = run_trainsim("schedule --kind gpipe --pp 2 --microbatches 2 --f 1500 --b 3ms --json");
  const auto b = run_trainsim("schedule --kind gpipe --pp 2 --microbatches 2 --f 1.5ms --b 3000us --json");
  REQUIRE(a.status == 0);
  REQUIRE(b.status == 0);
  // (M+P-1)(F+B) = 3 * 4.5 ms = 13500 us.
  CHECK(nlohmann::json::parse(a.out).at("makespan_us").get<double>() == 13500.0);
  CHECK(a.out == b.out);
}

TEST_CASE("same inputs give the same bytes, trace included") {
  const auto dir = ts_test::temp_dir("sched-det");
  const std::string args = "schedule --kind dualpipe --pp 8 --microbatches 20 --f 2 --b 4 --w 2 --fb 5 --p2p 0.5";
  const auto t1 = dir / "a.json", t2 = dir / "b.json";
  const auto r1 = run_trainsim(args + " --json --order --trace '" + t1.string() + "'");
  const auto r2 = run_trainsim(args + " --json --order --trace '" + t2.string() + "'");
  REQUIRE(r1.status == 0);
  CHECK(r1.out == r2.out);
  CHECK(ts_test::read_file(t1) == ts_test::read_file(t2));
  const auto s1 = run_trainsim(args);
  const auto s2 = run_trainsim(args);
  CHECK(s1.out == s2.out);
  CHECK(s1.out.find("timeline") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a DualPipe --trace is Chrome Trace Event JSON that Perfetto imports") {
  const auto dir = ts_test::temp_dir("sched-trace");
  const auto path = dir / "dualpipe.json";
  const auto r = run_trainsim("schedule --kind dualpipe --pp 4 --microbatches 8 --fb 3 --trace '" + path.string() + "'");
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(ts_test::read_file(path));
  REQUIRE(j.at("traceEvents").is_array());
  int slices_on_op_tracks = 0;
  bool has_fb_name = false;
  std::set<int> pids;
  for (const auto& e : j.at("traceEvents")) {
    const std::string ph = e.at("ph");
    CHECK((ph == "X" || ph == "M"));
    CHECK(e.at("pid").is_number_integer());
    if (ph != "X") continue;
    CHECK(e.at("name").is_string());
    CHECK(e.at("ts").is_number());
    CHECK(e.at("dur").get<double>() >= 0);
    CHECK(e.at("tid").is_number_integer());
    pids.insert(e.at("pid").get<int>());
    if (e.at("tid") == 0) ++slices_on_op_tracks;
    if (e.at("name") == "F0:3+B1:1") has_fb_name = true;
  }
  // One process (track group) per rank; one slice per op: the fixture pp4-mb8 has
  // 16 + 15 + 15 + 16 = 62 ops.
  CHECK(pids == std::set<int>{0, 1, 2, 3});
  CHECK(slices_on_op_tracks == 62);
  CHECK(has_fb_name);
  std::filesystem::remove_all(dir);
}

TEST_CASE("bad input exits 2 and names the option") {
  struct Bad {
    const char* args;
    const char* mentions;
  };
  const auto bad = GENERATE(Bad{"--kind pipedream --pp 4 --microbatches 8", "--kind"},
                            Bad{"--kind 1f1b --pp 0 --microbatches 8", "--pp"},
                            Bad{"--kind dualpipe --pp 5 --microbatches 20", "--pp"},
                            Bad{"--kind dualpipe --pp 4 --microbatches 6", "--microbatches"},
                            Bad{"--kind dualpipe --pp 4 --microbatches 9", "--microbatches"},
                            Bad{"--kind dualpipev --pp 4 --microbatches 7", "--microbatches"},
                            Bad{"--kind dualpipev --pp 0 --microbatches 8", "--pp"},
                            Bad{"--kind dualpipev --pp 4 --microbatches 8 --vpp 2", "--vpp"},
                            Bad{"--kind interleaved --pp 4 --microbatches 6 --vpp 2", "--microbatches"},
                            Bad{"--kind 1f1b --pp 4 --microbatches 8 --vpp 2", "--vpp"},
                            Bad{"--kind 1f1b --pp 4 --microbatches 8 --f -3", "--f"},
                            Bad{"--kind 1f1b --pp 4 --microbatches 8 --b fast", "--b"},
                            Bad{"--kind 1f1b --pp 4 --microbatches 8 --b 3parsecs", "--b"},
                            Bad{"--kind zb1p --pp 4 --microbatches 8 --b 2 --w 3", "--w"});
  CAPTURE(bad.args);
  const auto r = run_trainsim(std::string("schedule ") + bad.args);
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains(bad.mentions));
}

TEST_CASE("dualpipev: --json, --order and --trace") {
  // Odd P and odd M (DualPipeV allows both): 3 ranks holding 6 stages, 7 micro-batches.
  const auto dir = ts_test::temp_dir("sched-v");
  const auto path = dir / "v.json";
  const auto r = run_trainsim("schedule --kind dualpipev --pp 3 --microbatches 7 --fb 3 --json --order --trace '" +
                              path.string() + "'");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("kind") == "dualpipev");
  CHECK(j.at("weight_copies") == 1);
  CHECK(j.at("stages_per_rank") == 2);
  // 2P+1 = 7 chunk activations on every rank.
  CHECK(j.at("peak_inflight_microbatches") == nlohmann::json::array({7, 7, 7}));
  REQUIRE(j.at("order").size() == 3);
  // Rank 2 (the last) has no step-1 forwards: F0:0 F1:0 first.
  CHECK(j.at("order")[2][0] == "F0:0");
  CHECK(j.at("order")[2][1] == "F1:0");
  const auto trace = nlohmann::json::parse(ts_test::read_file(path));
  CHECK(trace.at("otherData").at("kind") == "dualpipev");
  const auto text = run_trainsim("schedule --kind dualpipev --pp 3 --microbatches 7");
  CHECK(text.status == 0);
  CHECK(text.out.find("2 stages per rank (6 in all)") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("the F&B overlap model sets F&B from the communication share") {
  // F = 152 us with 40 us all-to-all, B = 304 us with 80 us: compute 112 + 224 us on 112 of 132
  // SMs = 396 us on the compute stream, which hides all communication (see test_engine).
  const auto r = run_trainsim(
      "schedule --kind dualpipe --pp 4 --microbatches 8 --f 152 --b 304 --f-comm 40 --b-comm 80 --json");
  REQUIRE(r.status == 0);
  CHECK(nlohmann::json::parse(r.out).at("times_us").at("fb").get<double>() == 396.0);
}
