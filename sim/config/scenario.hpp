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
// value that is not valid TOML (e.g. `plan.schedule=1f1b`) is taken as a string. A phase's
// keys are `phases.<index or name>.<key>` (phases.0 is [training] with [plan]; phases.1 the
// first [[phases]] entry): `--set phases.1.plan.dp=16`, `--set phases.context-32k.steps=500`.
// A hardware value may be a bare quantity (`hardware.interconnect.nic=200Gb/s`): it sets the
// value and records the override as its source. Every key is applied or refused (an unknown
// key, phase or a value with a line break is a ConfigError at "--set").

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
  // --set phases.<index or name>.*: per phase index, the training keys and the plan keys.
  std::map<std::size_t, toml::table> phase_training_sets, phase_plan_sets;
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

// The folder holding models/, profiles/ and scenarios/: $TRAINSIM_DATA if set; else the
// installed data beside the running binary (<prefix>/share/trainsim for <prefix>/bin/trainsim,
// as `cmake --install` lays it out), when it exists; else the source tree trainsim was built from.
std::filesystem::path data_dir();

// Resolves a GPU name ("h800") to profiles/hardware/h800.toml in data_dir(), or a path (contains
// '/' or ends in .toml) relative to `relative_to`'s folder. Throws ConfigError at `pos`.
std::filesystem::path resolve_hardware(const std::string& name_or_path, const SourcePos& pos);

// What is installed in data_dir(), one name per file, sorted: GPUs (profiles/hardware/), models
// (models/), scenarios (scenarios/, recursively: "calibration/deepseek-v3-h800-chunk").
std::vector<std::string> hardware_names();
std::vector<std::string> model_names();
std::vector<std::string> scenario_names();

// "unknown GPU 'H100' (did you mean 'h100-sxm'?); known: ..." — the suggestion is the closest
// name of `known` (case-insensitive, prefixes count).
std::string unknown_name_message(const std::string& what, const std::string& name, const std::vector<std::string>& known);

// A command-line GPU name or hardware file: returned as given when it exists; otherwise a
// UsageError naming `option` (e.g. "--hardware") with the closest known GPU.
std::string check_hardware_name(const std::string& name_or_path, const std::string& option);

// A scenario given on the command line: an existing file, or a name in data_dir()/scenarios/
// ("deepseek-v3-h800"), so an installed trainsim runs from any folder. UsageError naming
// `option` otherwise, with the closest scenario name.
std::filesystem::path resolve_scenario(const std::string& name_or_path, const std::string& option);

// True if the TOML file is a scenario (has a 'plan' or 'cluster' key) rather than a model.
bool is_scenario(const toml::table& t);

// Parses `key=value` overrides into one table whose nodes carry the file name "--set".
// Throws ConfigError naming "--set" and the key.
toml::table parse_sets(const std::vector<std::string>& sets);

// `unset`: keys written in the scenario file itself to leave out, as if they were not written
// (then the default, or for a phase's plan key the [plan] value, applies): "plan.layer_split",
// "phases.1.plan.dp" (phases.<i>: the i-th [[phases]] entry). Keys it does not write are
// ignored. Sweeps use it for the base keys a point makes invalid (docs/sweep.md).
Scenario load_scenario(const std::string& path, const std::vector<std::string>& sets = {},
                       const std::vector<std::string>& unset = {});
ModelConfig load_model(const std::string& path, const std::vector<std::string>& sets = {});
// A GPU by name (profiles/hardware/NAME.toml) or path; a wrong name is a UsageError naming
// `option`, the command-line option it came from.
HardwareConfig load_hardware(const std::string& name_or_path, const std::string& option = "--hardware");

// Cross-checks between the parts (plan vs cluster, model, training). Throws ConfigError at the
// offending key. load_scenario calls it.
void validate_scenario(const Scenario& s);

// The [plan] keys phase `phase` sets itself, sorted: the `plan` table of its [[phases]] entry and
// any `--set phases.<phase>.plan.*` (phase 0, [training] with [plan], has only the latter). The
// plan search keeps these keys of a phase when it changes the main plan (docs/plan.md).
std::vector<std::string> phase_own_plan_keys(const Scenario& s, std::size_t phase);
// Whether any layer of phase `phase`'s plan (its own keys, [plan], a plan file, --set) writes `key`.
bool phase_plan_writes(const Scenario& s, std::size_t phase, const std::string& key);

// Pipeline stages (model chunks): pp*vpp, or 2*pp for dualpipev (two chunks per device).
std::int64_t pipeline_stage_count(const PlanConfig& p);
// Layers per pipeline stage: model/layer_split.hpp (stage_layers).

}  // namespace trainsim
