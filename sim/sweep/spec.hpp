#pragma once
// A sweep: a base scenario and the dimensions its points vary along (docs/sweep.md).
//
//   scenario = "../deepseek-v3-h800.toml"     # relative to the sweep file
//   [axes]                                     # each key: an array of values for that scenario key
//   "plan.schedule" = ["dualpipe", "1f1b"]
//   [[link]]                                   # keys that vary together: one entry per setting
//   values = [{ "plan.pp" = 8, "plan.dp" = 256 }, { "plan.pp" = 16, "plan.dp" = 128 }]
//
// The points are the cartesian product of the dimensions (every axis, every link group) in the
// order they are written in the file, the last one varying fastest. A point is a list of
// `key=value` overrides on the base scenario, exactly what `trainsim run --set` takes.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/scenario.hpp"
#include "core/error.hpp"

namespace trainsim::sweep {

// One scenario key set to one value. `toml` is the value as TOML text ("16", "\"1f1b\"",
// "[3, 4]"); `display` is how tables and CSV show it (strings unquoted).
struct Override {
  std::string key;
  std::string toml;
  std::string display;
  enum class Kind { Integer, Real, Boolean, Text } kind = Kind::Text;  // its SQL column type
  std::int64_t integer = 0;
  double real = 0;
  std::string file_sha256;  // a string value naming an existing file: the SHA-256 of its bytes (in the point id)
  // The scenario keys it writes: `key`, or for a table value each of its leaves ("plan.pp"), with
  // phases by index and phase 0 as [plan]/[training] ("phases.context-32k.plan.cp" ->
  // "phases.1.plan.cp", "phases.0.plan.pp" -> "plan.pp"): what the drop rule compares.
  std::vector<std::string> leaves;
};

// One dimension of the product: an [axes] key (every setting has one override), or a [[link]]
// group (every setting has the same keys).
struct Dimension {
  std::string name;                                // "plan.pp", or "link[1]"
  SourcePos pos;                                   // where it is written
  std::vector<std::string> keys;                   // the scenario keys it sets
  std::vector<std::vector<Override>> settings;     // settings[i]: one override per key, in `keys` order
};

struct SweepSpec {
  std::string file;            // the sweep file
  std::string name;            // `name`, or the sweep file's stem
  std::string description;
  std::string scenario;        // the base scenario's path (resolved; relative if given so)
  std::string scenario_abs;    // the same, absolute and normalised: what the store records
  std::vector<Dimension> dims; // in file order
  std::vector<std::string> keys;  // every key the sweep sets, in dimension order
  std::string base_hash;       // SHA-256 of the build, the data files and the bytes of the base scenario and the files it reads (sweep/identity.hpp)
  std::set<std::string> base_keys;  // every key the base scenario file writes ("plan.layer_split", "phases.1.plan.dp")

  std::size_t size() const;    // product of the dimensions' sizes
};

struct Point {
  std::size_t index = 0;
  std::vector<Override> overrides;   // in spec.keys order
  std::string canonical;             // sorted "key=value" lines: the point's identity on the base
  std::string id;                    // 32 hex digits: SHA-256 of base_hash, canonical and the bytes of files the overrides name
  std::vector<std::string> sets() const;  // "key=value" strings for load_scenario
};

// Reads a sweep file strictly: unknown keys, empty or non-array axes, keys set twice, link
// entries with different keys, unknown scenario keys, a name that is not a plain file name (the
// default database is "<name>.sqlite" in the current folder), more points than
// kMaxSweepPoints are ConfigErrors with file, line and key. Also loads the base scenario (which
// must be valid by itself).
SweepSpec load_sweep(const std::string& path);

// The parts of load_sweep that give points their ids, for sweeps built in memory (`trainsim
// plan`, plan/sweep_bridge.hpp), so that the same points get the same ids however they were
// described:
//  * an override of `key` from a TOML value node (`file` names the file in messages);
Override make_override(const std::string& key, const toml::node& value, const std::string& file);
//  * spec.base_hash from the build, the data files, the bytes of spec.scenario and of every file
//    `base` (that scenario, loaded) reads, named relative to the scenario's folder, and each
//    string override's file_sha256 where its value names an existing file.
void hash_inputs(SweepSpec& spec, const Scenario& base);

// The point with this index (0 <= index < spec.size()); the last dimension varies fastest.
Point point_at(const SweepSpec& spec, std::size_t index);


// Base keys a point makes invalid (docs/sweep.md, "Base keys that a point makes invalid"): the
// keys of the base scenario file to drop from point `p` after it failed with `e`, given the keys
// `dropped` so far; none when `e` is not at a key the rule drops. Dropped keys are left out as
// if the base did not write them (load_scenario's `unset`).
std::vector<std::string> keys_to_drop(const SweepSpec& spec, const Point& p, const ConfigError& e,
                                      const std::vector<std::string>& dropped);

// A TOML value as TOML text, and a column-safe name for a key ("plan.pp" -> "plan_pp").
std::string column_name(const std::string& key);

}  // namespace trainsim::sweep
