// trainsim describe MODEL.toml|SCENARIO.toml [--seq-len N] [--json] [--set key=value]...
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "config/scenario.hpp"
#include "report/describe.hpp"
#include "report/op_costs.hpp"

namespace trainsim::cli {

void setup_describe(CLI::App& sub) {
  struct Opts {
    std::string file;
    std::int64_t seq_len = 0;
    bool json = false;
    bool costs = false;
    std::int64_t stage = 0;
    std::vector<std::string> sets;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("file", o->file, "A model file (models/*.toml) or a scenario file (scenarios/*.toml)")
      ->required()
      ->check(CLI::ExistingFile);
  sub.add_option("--seq-len", o->seq_len,
                 "Sequence length for FLOPs and activations (default: the scenario's training.seq_len, "
                 "or 4096 for a model file)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  sub.add_flag("--json", o->json, "Print JSON instead of tables (keys: params_total, params_active, params_mtp, "
                                  "flops_per_token_causal, flops_per_token_full, layers, and for scenarios "
                                  "memory_gib_per_stage, memory_per_rank, fits_memory)");
  auto* costs = sub.add_flag("--costs", o->costs,
                              "Scenarios only: what every op of one pipeline stage costs for one micro-batch on the "
                              "scenario's GPU (time, achieved TFLOP/s or GB/s, measured/fitted/transferred), and the "
                              "totals per op class; with --json: gpu, stage, layer_split, groups (ops with seconds, "
                              "source, basis), seconds_by_class, seconds_total");
  sub.add_option("--stage", o->stage, "With --costs: the pipeline stage to list (default 0)")
      ->needs(costs)
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 20));
  sub.add_option("--set", o->sets, "Override any key, e.g. --set plan.pp=8 --set model.moe.top_k=4 (repeatable)");
  sub.callback([o] {
    DescribeInput in;
    in.file = o->file;
    toml::table t = parse_toml_file(o->file);
    if (o->costs) {
      if (!is_scenario(t))
        throw UsageError(fmt::format("--costs needs a scenario file; {} is a model file (a scenario names the GPU "
                                     "and the plan the costs depend on)",
                                     o->file));
      if (o->seq_len > 0)
        throw UsageError("--costs takes the scenario's sequence length; --seq-len cannot be combined with it");
      const Scenario sc = load_scenario(o->file, o->sets);
      const std::string text = o->json ? op_costs_json(sc, o->stage).dump(2) + "\n" : op_costs_text(sc, o->stage);
      fmt::print("{}", text);
      return;
    }
    if (is_scenario(t)) {
      in.scenario = load_scenario(o->file, o->sets);
      in.model = in.scenario->model;
      in.seq_len = in.scenario->training.seq_len;
    } else {
      in.model = load_model(o->file, o->sets);
      in.seq_len = 4096;
    }
    if (o->seq_len > 0) in.seq_len = o->seq_len;
    const std::string text = o->json ? describe_json(in).dump(2) + "\n" : describe_text(in);
    fmt::print("{}", text);
  });
}

}  // namespace trainsim::cli
