// libFuzzer target for sweep files (built with -DTRAINSIM_FUZZ=ON and clang; run with
// scripts/fuzz.sh). The input is a sweep file's text; "@BASE@" in it stands for the absolute
// path of the small Llama-3-8B scenario ($TRAINSIM_DATA/scenarios/sweeps/base/
// llama3-8b-64xh100.toml), so that inputs can name a real base. It is written to a temporary
// file and read with load_sweep (strict TOML, axes, link groups, keys checked against the
// scenario, the points limit, the identity hashes); for sweeps of at most 256 points every
// point and its id is built, and the ids must be distinct. trainsim::InputError is the expected
// answer to bad input and is swallowed; anything else is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "sweep/runner.hpp"
#include "sweep/spec.hpp"

using namespace trainsim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 8192) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  static const std::string base = (data_dir() / "scenarios/sweeps/base/llama3-8b-64xh100.toml").string();
  for (auto at = text.find("@BASE@"); at != std::string::npos; at = text.find("@BASE@", at + base.size()))
    text.replace(at, 6, base);
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("fuzz-sweep-" + std::to_string(::getpid()) + ".toml")).string();
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  } else {
    return 0;
  }
  try {
    const sweep::SweepSpec spec = sweep::load_sweep(path);
    if (spec.size() <= 256) {
      std::set<std::string> ids;
      for (const auto& p : sweep::all_points(spec)) ids.insert(p.id);
      TS_ASSERT(ids.size() == spec.size(), "every point of a sweep has its own id");
    }
  } catch (const InputError&) {
    return 0;
  }
  return 0;
}
