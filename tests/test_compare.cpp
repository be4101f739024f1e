// `trainsim compare`: one row per GPU type, each equal to a `trainsim run` of the scenario on
// that GPU, and re-planning exactly when the memory model says the plan does not fit.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "model/memory.hpp"
#include "support.hpp"

using namespace trainsim;
using nlohmann::json;

namespace {
std::string write_scenario() {
  // Llama 3 8B on 8 GPUs, one 8K sequence per micro-batch, no recomputation: about 96 GiB per GPU,
  // more than an H100's 80 GB and less than an H200's 141 GB.
  const auto dir = ts_test::temp_dir("compare");
  const auto path = dir / "s.toml";
  ts_test::write_file(path, "name = \"l8\"\nmodel = \"" + ts_test::data("models/llama3-8b.toml").string() +
                                "\"\n[cluster]\ngpu = \"h800\"\ngpus = 8\ngpus_per_node = 8\n[plan]\ndp = 8\nzero = 1\n"
                                "[training]\nseq_len = 8192\nglobal_batch = 64\ntokens = 1e9\n");
  return path.string();
}
}  // namespace

TEST_CASE("compare: rows match run, and only the GPU whose memory is short is re-planned", "[compare]") {
  const std::string s = write_scenario();
  const auto r = ts_test::run_trainsim("compare '" + s + "' --hardware h100-sxm,h200 --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  REQUIRE(j.at("hardware").size() == 2);
  for (const auto& row : j.at("hardware")) {
    const std::string gpu = row.at("gpu");
    INFO(gpu);
    // The memory model decides: does the scenario's plan fit this GPU?
    const MemoryReport mem = memory_per_gpu(load_scenario(s, {"cluster.gpu=" + gpu}));
    CHECK(row.at("replanned").get<bool>() == !mem.fits);
    // The row is a plain run of the (re-planned) scenario on that GPU.
    std::string sets = " --set cluster.gpu=" + gpu;
    if (!mem.fits) sets += " --set plan.recompute=full";
    const json run = json::parse(ts_test::run_trainsim("run '" + s + "' --json" + sets).out);
    CHECK(row.at("gpu_hours").get<double>() == Approx(run.at("gpu_hours").get<double>()).epsilon(1e-12));
    CHECK(row.at("step_time_s").get<double>() == Approx(run.at("step_time_s").get<double>()).epsilon(1e-12));
  }
  // The facts the test set up: 80 GB H100 short of memory, 141 GB H200 not.
  CHECK(j.at("hardware")[0].at("replanned").get<bool>());
  CHECK_FALSE(j.at("hardware")[1].at("replanned").get<bool>());
}

TEST_CASE("compare: an unknown GPU is an input error naming the option", "[compare]") {
  const auto r = ts_test::run_trainsim("compare '" + write_scenario() + "' --hardware h900");
  CHECK(r.status == 2);
  CHECK(r.err.find("--hardware: unknown GPU 'h900'") != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("compare: provenance per GPU in text and JSON; like-for-like inputs", "[compare]") {
  // The DeepSeek scenario (FP8 recipe) on an A100 (no FP8), a B200 and a GB200 (NVL72 domain).
  const std::string s = ts_test::data("scenarios/deepseek-v3-h800.toml").string();
  // One run: the text on stdout, the JSON (run --json keys + hardware) in --out's metrics.json.
  const auto dir = ts_test::temp_dir("compare-prov");
  const auto r = ts_test::run_trainsim("compare '" + s + "' --hardware a100-sxm-80g,b200,gb200 --out '" + dir.string() + "'");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(ts_test::read_file(dir / "metrics.json"));
  for (const auto& row : j.at("hardware")) {
    const std::string gpu = row.at("gpu");
    INFO(gpu);
    REQUIRE(row.contains("provenance"));
    CHECK(!row.at("provenance").empty());
    bool gemm = false;
    for (const auto& p : row.at("provenance")) {
      const std::string src = p.at("source");
      CHECK((src == "fitted" || src == "transferred" || src == "measured"));
      CHECK(!p.at("basis").get<std::string>().empty());
      if (p.at("class").get<std::string>().rfind("GEMM", 0) == 0) gemm = true;
    }
    CHECK(gemm);
    std::string setup;
    for (const auto& x : row.at("setup")) setup += x.get<std::string>() + "\n";
    CHECK(setup.find("vendor-listed capacity") != std::string::npos);
    if (gpu == "a100-sxm-80g") CHECK(setup.find("no FP8 tensor cores") != std::string::npos);
    if (gpu == "gb200") CHECK(setup.find("cluster.nvlink_domain = 72") != std::string::npos);
  }
  // Text: the provenance table names transferred classes as such; the HTML has it too.
  CHECK(r.out.find("Where each GPU's costs come from") != std::string::npos);
  CHECK(r.out.find("transferred") != std::string::npos);
  CHECK(ts_test::read_file(dir / "report.html").find("Cost provenance per GPU") != std::string::npos);
}
