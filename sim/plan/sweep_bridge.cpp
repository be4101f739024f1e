#include "plan/sweep_bridge.hpp"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/error.hpp"
#include "core/input.hpp"
#include "sweep/identity.hpp"

namespace fs = std::filesystem;

namespace trainsim::plan {

namespace {

// One override from "key=value" (the value TOML text), typed as a sweep file's would be.
sweep::Override make_override(const std::string& kv, const std::string& key) {
  const auto eq = kv.find('=');
  TS_ASSERT(eq != std::string::npos && kv.substr(0, eq) == key, "plan sweep: setting for another key");
  const toml::table t = toml::parse("v = " + kv.substr(eq + 1));
  return sweep::make_override(key, *t.get("v"), "plan");
}

}  // namespace

sweep::SweepSpec sweep_spec(const std::string& scenario_file, const Scenario& base, const std::string& name,
                            const std::vector<std::string>& keys, const std::vector<std::vector<std::string>>& settings) {
  sweep::SweepSpec spec;
  spec.file = scenario_file;
  spec.name = name;
  spec.description = "trainsim plan: the plans re-run at event level";
  spec.scenario = scenario_file;
  {
    std::error_code ec;
    const fs::path abs = fs::weakly_canonical(fs::absolute(scenario_file), ec);
    spec.scenario_abs = ec ? fs::absolute(scenario_file).lexically_normal().string() : abs.string();
  }
  sweep::Dimension dim;
  dim.name = "plan";
  dim.pos = SourcePos{scenario_file, 0, 0};
  dim.keys = keys;
  for (const auto& s : settings) {
    TS_ASSERT(s.size() == keys.size(), "plan sweep: a setting without every key");
    std::vector<sweep::Override> setting;
    for (std::size_t i = 0; i < keys.size(); ++i) setting.push_back(make_override(s[i], keys[i]));
    dim.settings.push_back(std::move(setting));
  }
  spec.dims.push_back(std::move(dim));
  spec.keys = keys;

  sweep::hash_inputs(spec, base);  // the ids load_sweep gives the same points
  return spec;
}

}  // namespace trainsim::plan
