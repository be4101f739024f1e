#pragma once
// The trainsim subcommands. Each lives in its own cmd_<name>.cpp and registers its options and
// callback on the CLI11 subcommand it is given. Callbacks report bad input by throwing
// trainsim::InputError (or a subclass); main() maps that to exit status 2.

#include <CLI/CLI.hpp>

namespace trainsim::cli {

struct Command {
  const char* name;
  const char* summary;
  void (*setup)(CLI::App& sub);
};

void setup_describe(CLI::App& sub);
void setup_run(CLI::App& sub);
void setup_compare(CLI::App& sub);
void setup_schedule(CLI::App& sub);
void setup_alltoall(CLI::App& sub);
void setup_import(CLI::App& sub);
void setup_calibrate(CLI::App& sub);
void setup_replay(CLI::App& sub);
void setup_sweep(CLI::App& sub);
void setup_plan(CLI::App& sub);
void setup_validate(CLI::App& sub);
void setup_list(CLI::App& sub);
void setup_import_model(CLI::App& sub);

// The table main() registers, in the order --help lists them.
inline constexpr Command kCommands[] = {
    {"run", "Simulate a whole training run of a scenario: step time, GPU-hours, days, dollars, energy, reports", setup_run},
    {"compare", "The same model and token budget on several GPU types (and schedules), re-planned if needed", setup_compare},
    {"list", "What is installed, one line each: gpus, models, schedules, scenarios", setup_list},
    {"import-model", "Write a model TOML from a Hugging Face config.json (Llama, Qwen2, Mistral, Mixtral, DeepSeek-V2/V3, GPT-NeoX)",
     setup_import_model},
    {"describe", "Parameters, FLOPs, per-layer operations and memory of a model or scenario", setup_describe},
    {"schedule", "Replay a pipeline schedule (gpipe, 1f1b, interleaved, zb1p, dualpipe, dualpipev) with given op times", setup_schedule},
    {"import", "Import a PyTorch-profiler (Kineto) trace into a classified kernel profile", setup_import},
    {"calibrate", "Fit per-class kernel cost models to measured profiles and microbenchmark tables", setup_calibrate},
    {"replay", "Re-simulate a measured kernel profile with the fitted costs and compare", setup_replay},
    {"sweep", "Evaluate the cartesian product of scenario settings into SQLite (resumable), with the best plans under constraints", setup_sweep},
    {"plan", "Search every valid parallel plan of a scenario: screen them all, re-run the best at event level, rank and explain",
     setup_plan},
    {"validate", "Run the validation suite: published training runs simulated and compared, median and max error per family", setup_validate},
    {"alltoall", "Simulate one MoE layer's DeepEP-style all-to-all dispatch and combine on a cluster network", setup_alltoall},
};

}  // namespace trainsim::cli
