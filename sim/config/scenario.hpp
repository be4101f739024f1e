#pragma once
// Scenarios: one file that names a model, a GPU type, a cluster, a plan and a training setup.
//
// Layout of a scenario file (see docs/configuration.md for the annotated example):
//   name, description                  strings
//   model    = "../models/x.toml"      a path relative to this file, or a table with
//   [model]  file = "..." + overrides  'file' plus any model keys to override
//   [hardware]                         overrides of the GPU file that cluster.gpu names
//   [cluster] [plan] [training]        inline tables, or a path string / table with 'file'
//   [assumptions]                      named assumptions (key = "text"), shown in reports
// `--set key=value` (repeatable) overrides any key of the merged tree afterwards, e.g.
// `--set plan.pp=8 --set cluster.gpu=h100 --set model.moe.top_k=4`. The value is TOML; a
// value that is not valid TOML (e.g. `plan.schedule=1f1b`) is taken as a string.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config.hpp"

namespace trainsim {

struct Scenario {
  std::string file;
  std::string name;
  std::string description;
  ModelConfig model;
  HardwareConfig hardware;
  ClusterConfig cluster;
  PlanConfig plan;
  TrainingConfig training;
  std::map<std::string, std::string> assumptions;
  toml::table tree;  // the merged input, every node keeping its own file/line

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

// Applies `key=value` overrides to a table (see above). Throws ConfigError naming "--set".
void apply_sets(toml::table& root, const std::vector<std::string>& sets);

Scenario load_scenario(const std::string& path, const std::vector<std::string>& sets = {});
ModelConfig load_model(const std::string& path, const std::vector<std::string>& sets = {});
HardwareConfig load_hardware(const std::string& name_or_path);

// Cross-checks between the parts (plan vs cluster, model, training). Throws ConfigError at the
// offending key. load_scenario calls it.
void validate_scenario(const Scenario& s);

// Pipeline stages (model chunks): pp*vpp, or 2*pp for dualpipev (two chunks per device).
std::int64_t pipeline_stage_count(const PlanConfig& p);
// Layers per pipeline stage: plan.layer_split if given, else an even split.
std::vector<std::int64_t> stage_layers(const ModelConfig& m, const PlanConfig& p);

}  // namespace trainsim
