#pragma once
// Scenarios: one file that names a model, a GPU type, a cluster, a plan and a training setup.
//
// Layout of a scenario file (see docs/configuration.md for the annotated example):
//   name, description                  strings
//   model    = "../models/x.toml"      a path relative to this file, or a table with
//   [model]  file = "..." + overrides  'file' plus any model keys to override
//   [hardware]                         overrides of the GPU file that cluster.gpu names
//   [cluster] [plan] [training]        inline tables, or a path string / table with 'file'
//   [[phases]]                         further phases (context extension, post-training): the
//                                      [training] keys, plus `plan = { ... }` overrides
//   [energy]                           optional: idle_power, pue (energy is reported only with both)
//   [goodput]                          optional: failures_per_gpu_day, checkpoint_interval,
//                                      checkpoint_cost, restart (off unless set)
//   [assumptions]                      named assumptions (key = "text"), shown in reports
//   [reference]                        published figures to compare against (see ReferenceFigures)
// `--set key=value` (repeatable) overrides any key of the merged tree afterwards, e.g.
// `--set plan.pp=8 --set cluster.gpu=h100 --set model.moe.top_k=4`. The value is TOML; a
// value that is not valid TOML (e.g. `plan.schedule=1f1b`) is taken as a string.

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config.hpp"
#include "network/network_config.hpp"

namespace trainsim {

// One phase of the run: its training setup and the plan it runs with. Phase 0 is [training]
// with [plan]; [[phases]] entries follow, each with its own training keys (precision inherited
// from [training] unless given) and a `plan` table of overrides laid over [plan].
struct Phase {
  TrainingConfig training;
  PlanConfig plan;
  std::string key;  // "training" or "phases[1]" (for messages)
  // Where its keys were written (layers of the scenario's tables), for validation messages.
  std::vector<Section::Layer> plan_layers, training_layers;
  std::string plan_prefix, training_prefix;
};

// The parsed TOML tables a scenario was read from; kept alive so positions stay valid.
struct ScenarioSources {
  toml::table sets;                          // --set overrides
  toml::table root;                          // the scenario file
  std::map<std::string, toml::table> files;  // referenced files by path
};

// Published figures a scenario is compared against (never an input to the simulation):
// [reference] source = "...", gpu_hours = { pretraining = .., context_extension = ..,
// post_training = .., total = .. }, cost_usd = { ... }, gpu_hours_per_trillion_tokens = ..
struct ReferenceFigures {
  std::string source;
  std::map<std::string, double> gpu_hours;  // by phase kind, and "total"
  std::map<std::string, double> cost_usd;
  std::optional<double> gpu_hours_per_trillion_tokens;
};

// [chunk_pair]: instead of a training run, predict one DualPipe forward+backward chunk pair
// (the workload of a measured profile) and compare it with the profile.
struct ChunkPairConfig {
  std::int64_t moe_layers = 0;     // MoE layers per chunk
  std::string measured_profile;    // a *.profile.jsonl (path resolved relative to the scenario)
  std::string source;              // where the measurement comes from
};

struct Scenario {
  std::string file;
  std::string name;
  std::string description;
  ModelConfig model;
  HardwareConfig hardware;
  ClusterConfig cluster;
  PlanConfig plan;
  TrainingConfig training;
  std::vector<Phase> phases;  // phases[0] = {training, plan}
  network::NetworkConfig net;  // [network]: fabric, link efficiencies, latencies (all optional)
  EnergyConfig energy;
  std::optional<GoodputConfig> goodput;
  std::map<std::string, std::string> assumptions;
  std::optional<ReferenceFigures> reference;
  std::optional<ChunkPairConfig> chunk_pair;
  std::shared_ptr<const ScenarioSources> sources;

  std::int64_t microbatches_per_step(std::int64_t global_batch) const {
    return global_batch / (plan.dp * plan.micro_batch);
  }
};

// The folder holding models/, profiles/ and scenarios/: $TRAINSIM_DATA if set, else the source
// tree trainsim was built from.
std::filesystem::path data_dir();

// Resolves a GPU name ("h800") to profiles/hardware/h800.toml in data_dir(), or a path (contains
// '/' or ends in .toml) relative to `relative_to`'s folder. Throws ConfigError at `pos`.
std::filesystem::path resolve_hardware(const std::string& name_or_path, const SourcePos& pos);
std::vector<std::string> hardware_names();

// True if the TOML file is a scenario (has a 'plan' or 'cluster' key) rather than a model.
bool is_scenario(const toml::table& t);

// Parses `key=value` overrides into one table whose nodes carry the file name "--set".
// Throws ConfigError naming "--set" and the key.
toml::table parse_sets(const std::vector<std::string>& sets);

Scenario load_scenario(const std::string& path, const std::vector<std::string>& sets = {});
ModelConfig load_model(const std::string& path, const std::vector<std::string>& sets = {});
HardwareConfig load_hardware(const std::string& name_or_path);

// Cross-checks between the parts (plan vs cluster, model, training). Throws ConfigError at the
// offending key. load_scenario calls it.
void validate_scenario(const Scenario& s);

// Pipeline stages (model chunks): pp*vpp, or 2*pp for dualpipev (two chunks per device).
std::int64_t pipeline_stage_count(const PlanConfig& p);
// Layers per pipeline stage: model/layer_split.hpp (stage_layers).

}  // namespace trainsim
