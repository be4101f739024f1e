// trainsim describe MODEL.toml|SCENARIO.toml [--seq-len N] [--json] [--set key=value]...
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "config/scenario.hpp"
#include "report/describe.hpp"

namespace trainsim::cli {

void setup_describe(CLI::App& sub) {
  struct Opts {
    std::string file;
    std::int64_t seq_len = 0;
    bool json = false;
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
  sub.add_option("--set", o->sets, "Override any key, e.g. --set plan.pp=8 --set model.moe.top_k=4 (repeatable)");
  sub.callback([o] {
    DescribeInput in;
    in.file = o->file;
    toml::table t = parse_toml_file(o->file);
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
