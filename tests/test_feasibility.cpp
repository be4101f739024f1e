// Feasibility first (issue 12, point 1): a plan that does not fit GPU memory is reported at the
// top of every output, is not priced, and `run` exits with status 3; compare rows that do not
// fit say so in the row.
//
// The memory the tests expect is derived by hand. Llama-3-8B (8.03B parameters) on 8 GPUs, plain
// data parallelism, no ZeRO (zero = 0): every GPU holds BF16 weights (2 B/param), FP32 gradients
// (4 B) and the FP32 master copy plus two FP32 AdamW moments (12 B): 18 B x 8.03e9 = 144.6 GB =
// 134.6 GiB before any activation: more than an H800's HBM (the hardware file's 85 GB = 79.2 GiB)
// and an H200's (141 GB = 131.3 GiB), less than a B200's (180 GB = 167.6 GiB).
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <regex>

#include "config/scenario.hpp"
#include "model/memory.hpp"
#include "model/model_math.hpp"
#include "ux_support.hpp"

using namespace trainsim;
using nlohmann::json;

namespace {
constexpr double kGiB = 1073741824.0;
}

TEST_CASE("A plan that does not fit: banner first, shortfall per rank, not priced, exit status 3", "[feasibility]") {
  const std::string s = ts_test::llama_scenario("nofit", "zero = 0\n");
  // The hand calculation above, from the model's exact parameter count.
  const Scenario sc = load_scenario(s);
  const double params = count_params(sc.model).total;
  const double state = 18.0 * params;  // weights + gradients + master + moments, bytes
  const double capacity = sc.hardware.hbm_capacity.value;
  REQUIRE(state > capacity);

  const auto text = ts_test::run_trainsim("run " + ts_test::q(s));
  INFO(text.err);
  CHECK(text.status == 3);
  CHECK(text.err.find("does not fit GPU memory") != std::string::npos);
  // At the top: the verdict comes before anything else after the header block.
  const auto verdict = text.out.find("DOES NOT FIT GPU MEMORY");
  REQUIRE(verdict != std::string::npos);
  CHECK(text.out.find("Phases") == std::string::npos);          // no priced phase table
  CHECK(text.out.find("GPU-hours") == std::string::npos);       // nothing priced
  // the only money is the price
  CHECK(text.out.find("$") == text.out.find(fmt::format("${:.2f} per GPU-hour", sc.hardware.price.value)));
  CHECK(text.out.find("short by") != std::string::npos);

  const auto js = ts_test::run_trainsim("run " + ts_test::q(s) + " --json");
  CHECK(js.status == 3);
  const json j = json::parse(js.out);
  CHECK_FALSE(j.at("fits_memory").get<bool>());
  CHECK_FALSE(j.at("priced").get<bool>());
  CHECK(j.at("gpu_hours").is_null());
  CHECK(j.at("cost_usd").is_null());
  CHECK(j.at("step_time_s").is_null());
  // One pipeline rank (pp 1): its shortfall is its need minus the capacity, and the need is at
  // least the model state of the hand calculation.
  const auto& sf = j.at("shortfall_gib_per_rank");
  REQUIRE(sf.size() == 1);
  const auto& rank0 = j.at("memory").at("phases")[0].at("ranks")[0];
  CHECK(rank0.at("need_gib").get<double>() >= state / kGiB);
  CHECK(sf[0].get<double>() == Approx(rank0.at("need_gib").get<double>() - capacity / kGiB).epsilon(1e-9));
  CHECK(j.at("memory").at("capacity_gib").get<double>() == Approx(capacity / kGiB));

  // --out: the HTML banner and a timeline that says why it is empty; exit 3 all the same.
  const auto dir = ts_test::temp_dir("nofit-out");
  const auto o = ts_test::run_trainsim("run " + ts_test::q(s) + " --out " + ts_test::q(dir.string()));
  CHECK(o.status == 3);
  const std::string html = ts_test::read_file(dir / "report.html");
  const auto banner = html.find("id=\"callout-feasibility\"");
  REQUIRE(banner != std::string::npos);
  CHECK(html.find("Does not fit GPU memory", banner) != std::string::npos);
  CHECK(html.find("<h2>") > banner);  // above every section
  CHECK(html.find("chart-breakdown") == std::string::npos);
  CHECK(html.find("chart-timeline") == std::string::npos);
  const json tl = json::parse(ts_test::read_file(dir / "timeline.json"));
  CHECK(tl.at("traceEvents").empty());
  CHECK(tl.at("metadata").at("note").get<std::string>().find("does not fit") != std::string::npos);
  CHECK(ts_test::read_file(dir / "report.md").find("DOES NOT FIT GPU MEMORY") != std::string::npos);
  CHECK_FALSE(json::parse(ts_test::read_file(dir / "metrics.json")).at("fits_memory").get<bool>());
}

TEST_CASE("Feasibility covers every phase, not only the first", "[feasibility]") {
  // Pre-training at 4K fits; a [[phases]] entry at 64K sequences on the same plan does not: its
  // activations grow 16x (the memory model's saved bytes per token are per sequence position).
  const std::string s = ts_test::llama_scenario(
      "nofit-phase", "zero = 1\n",
      "[[phases]]\nname = \"long\"\nkind = \"context_extension\"\nseq_len = 65536\nglobal_batch = 64\nsteps = 10\n");
  const Scenario sc = load_scenario(s);
  REQUIRE(memory_per_gpu(sc).fits);  // phase 0 alone fits
  const auto r = ts_test::run_trainsim("run " + ts_test::q(s) + " --json");
  CHECK(r.status == 3);
  const json j = json::parse(r.out);
  CHECK_FALSE(j.at("fits_memory").get<bool>());
  CHECK(j.at("memory").at("phases")[0].at("fits").get<bool>());
  CHECK_FALSE(j.at("memory").at("phases")[1].at("fits").get<bool>());
  CHECK(j.at("phases")[1].at("name") == "long");
}

TEST_CASE("A plan that fits says so at the top and exits 0", "[feasibility]") {
  const auto r = ts_test::run_trainsim("run " + ts_test::q(ts_test::llama_scenario("fits")));
  CHECK(r.status == 0);
  const auto at = r.out.find("Feasibility: fits GPU memory in every phase");
  REQUIRE(at != std::string::npos);
  CHECK(at < r.out.find("Phases"));
}

TEST_CASE("compare: a row that does not fit even re-planned says so in the row and is not priced", "[feasibility]") {
  // zero = 0: the 134.6 GiB of model state (see the header) does not fit an H800 even with full
  // recomputation (recomputation shrinks activations, not model state), and fits a B200.
  const std::string s = ts_test::llama_scenario("cmp-nofit", "zero = 0\n");
  const auto r = ts_test::run_trainsim("compare " + ts_test::q(s) + " --hardware h800,b200 --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  const auto& h800 = j.at("hardware")[0];
  const auto& b200 = j.at("hardware")[1];
  CHECK_FALSE(h800.at("fits_memory").get<bool>());
  CHECK(h800.at("gpu_hours").is_null());
  CHECK(h800.at("fit_note").get<std::string>().find("even with full recomputation") != std::string::npos);
  CHECK(b200.at("fits_memory").get<bool>());
  CHECK(b200.at("gpu_hours").get<double>() > 0);
  // The text row itself carries the verdict.
  const auto t = ts_test::run_trainsim("compare " + ts_test::q(s) + " --hardware h800,b200");
  std::istringstream in(t.out);
  bool found = false;
  for (std::string line; std::getline(in, line);)
    if (line.rfind("  h800  dp", 0) == 0) {  // the comparison row (not the provenance or setup lines)
      found = true;
      CHECK(line.find("DOES NOT FIT") != std::string::npos);
    }
  CHECK(found);
}
