// A lean, relocatable install (issue 12, point 8): `cmake --install` puts the binary and its data
// (models/, profiles/, scenarios/) under a prefix; the installed trainsim, moved elsewhere and run
// from another folder without TRAINSIM_DATA, finds and uses that data.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>

#include "support.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int sh(const std::string& cmd) {
  const int raw = std::system(cmd.c_str());
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

}  // namespace

TEST_CASE("cmake --install: the installed trainsim runs from any folder on its installed data", "[install]") {
  const char* build = std::getenv("TRAINSIM_BUILD_DIR");
  if (!build || !*build) {
    WARN("skipped: TRAINSIM_BUILD_DIR is not set (ctest sets it to the build folder)");
    return;
  }
  const fs::path dir = ts_test::temp_dir("install");
  const fs::path prefix = dir / "prefix";
  const fs::path log = dir / "install.log";
  REQUIRE(sh("cmake --install '" + std::string(build) + "' --prefix '" + prefix.string() + "' >'" + log.string() +
             "' 2>&1") == 0);
  const fs::path share = prefix / "share" / "trainsim";
  for (const char* f : {"models/deepseek-v3.toml", "profiles/hardware/h800.toml", "profiles/h800/calibration.toml",
                        "profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl", "profiles/classifier.toml",
                        "scenarios/deepseek-v3-h800.toml", "scenarios/sweeps/base/llama3-8b-64xh100.toml"}) {
    INFO(f);
    CHECK(fs::is_regular_file(share / f));
  }
  CHECK_FALSE(fs::exists(share / "profiles" / "cupti"));  // the profiler's sources are not data
  REQUIRE(fs::is_regular_file(prefix / "bin" / "trainsim"));

  // Relocatable: move the prefix, run from an unrelated folder, no TRAINSIM_DATA.
  const fs::path moved = dir / "moved";
  fs::rename(prefix, moved);
  const fs::path elsewhere = dir / "elsewhere";
  fs::create_directories(elsewhere);
  const std::string bin = "env -u TRAINSIM_DATA '" + (moved / "bin" / "trainsim").string() + "'";
  const fs::path out = dir / "out.txt";
  auto run = [&](const std::string& args) {
    const int st = sh("cd '" + elsewhere.string() + "' && " + bin + " " + args + " >'" + out.string() + "' 2>&1");
    return std::make_pair(st, ts_test::read_file(out));
  };
  const auto [ls, scenarios] = run("list scenarios");
  INFO(scenarios);
  CHECK(ls == 0);
  CHECK(scenarios.find("sweeps/base/llama3-8b-64xh100") != std::string::npos);

  // It uses the installed data, not the source tree: a price changed in the installed H100 file
  // changes the cost by the same factor ($3.00 -> $4.50 per GPU-hour: 1.5x).
  const auto [st1, before] = run("run sweeps/base/llama3-8b-64xh100 --json");
  INFO(before);
  REQUIRE(st1 == 0);
  const fs::path gpu = moved / "share" / "trainsim" / "profiles" / "hardware" / "h100-sxm.toml";
  std::string text = ts_test::read_file(gpu);
  const auto at = text.find("\"3.00USD/h\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, 11, "\"4.50USD/h\"");
  ts_test::write_file(gpu, text);
  const auto [st2, after] = run("run sweeps/base/llama3-8b-64xh100 --json");
  REQUIRE(st2 == 0);
  const double c1 = json::parse(before).at("cost_usd").get<double>();
  const double c2 = json::parse(after).at("cost_usd").get<double>();
  CHECK(c2 == Approx(1.5 * c1).epsilon(1e-12));
  // The same scenario from the build tree, on the source tree's data, costs what the installed one did.
  const auto tree = ts_test::run_trainsim("run scenarios/sweeps/base/llama3-8b-64xh100.toml --json", ts_test::source_dir().string());
  REQUIRE(tree.status == 0);
  CHECK(json::parse(tree.out).at("cost_usd").get<double>() == Approx(c1).epsilon(1e-12));
  fs::remove_all(dir);
}
