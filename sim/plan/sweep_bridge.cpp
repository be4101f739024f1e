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

// One override from "key=value" (the value TOML text), as sweep/spec.cpp make_override types it.
sweep::Override make_override(const std::string& kv, const std::string& key) {
  const auto eq = kv.find('=');
  TS_ASSERT(eq != std::string::npos && kv.substr(0, eq) == key, "plan sweep: setting for another key");
  sweep::Override o;
  o.key = key;
  o.toml = kv.substr(eq + 1);
  o.display = o.toml;
  const toml::table t = toml::parse("v = " + o.toml);
  const toml::node& n = *t.get("v");
  if (auto v = n.as_integer()) {
    o.kind = sweep::Override::Kind::Integer;
    o.integer = v->get();
  } else if (auto f = n.as_floating_point()) {
    o.kind = sweep::Override::Kind::Real;
    o.real = f->get();
  } else if (auto b = n.as_boolean()) {
    o.kind = sweep::Override::Kind::Boolean;
    o.integer = b->get() ? 1 : 0;
  } else if (auto s = n.as_string()) {
    o.display = s->get();
  }
  return o;
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

  // sweep/spec.cpp load_sweep: the build, the data, the base scenario's bytes and the files it reads.
  std::string hashed = std::string("trainsim ") + TRAINSIM_VERSION + "\n" + sweep::build_identity() + "\ndata " +
                       sweep::data_identity() + "\n" + read_input_text(spec.scenario, "file");
  {
    const fs::path dir = fs::path(spec.scenario_abs).parent_path();
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& [file, t] : base.sources->files) {
      (void)t;
      std::error_code ec;
      const fs::path abs = fs::weakly_canonical(fs::absolute(file), ec);
      files.push_back({(ec ? fs::path(file) : abs).lexically_relative(dir).generic_string(), read_input_text(file, "file")});
    }
    std::sort(files.begin(), files.end());
    for (const auto& [fname, bytes] : files) hashed += "\n--- " + fname + "\n" + bytes;
  }
  spec.base_hash = sweep::sha256_hex(hashed);
  for (auto& d : spec.dims)
    for (auto& setting : d.settings)
      for (auto& o : setting) {
        if (o.kind != sweep::Override::Kind::Text || o.display.empty() || o.display.size() > 4096) continue;
        for (const fs::path& c : {fs::path(spec.scenario).parent_path() / o.display, fs::path(o.display),
                                  data_dir() / o.display, data_dir() / "profiles" / "hardware" / (o.display + ".toml")}) {
          std::error_code ec;
          if (fs::is_regular_file(c, ec)) {
            o.file_sha256 = sweep::sha256_hex(read_input_text(c.string(), "file"));
            break;
          }
        }
      }
  return spec;
}

}  // namespace trainsim::plan
