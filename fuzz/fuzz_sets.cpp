// libFuzzer target for `--set` (built with -DTRAINSIM_FUZZ=ON and clang; run with
// scripts/fuzz.sh). The input is a list of --set arguments separated by NUL bytes (so that a
// value may hold newlines, as a shell argument can). They go through parse_sets, then
// load_scenario on the small Llama-3-8B scenario ($TRAINSIM_DATA/scenarios/sweeps/base/
// llama3-8b-64xh100.toml) with validate_scenario and the memory model, i.e. everything `trainsim
// run --set` does before simulating. trainsim::InputError is the expected answer to bad input
// and is swallowed; anything else (another exception, an InternalError, a crash, a sanitizer
// report) is a finding. (The --set parser itself belongs to the command-line work of issue 12;
// this target calls it as it is.)
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "model/memory.hpp"

using namespace trainsim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  std::vector<std::string> sets;
  std::string cur;
  for (std::size_t i = 0; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == '\0') {
      sets.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  sets.push_back(cur);
  if (sets.size() > 16) return 0;
  try {
    (void)parse_sets(sets);
    static const std::string base = (data_dir() / "scenarios/sweeps/base/llama3-8b-64xh100.toml").string();
    const Scenario sc = load_scenario(base, sets);
    (void)memory_per_gpu(sc);
  } catch (const InputError&) {
    return 0;
  }
  return 0;
}
