// trainsim import-model CONFIG.json [-o MODEL.toml] [--name NAME] [--source TEXT]
// A model TOML from a Hugging Face config.json (config/hf_import.hpp); printed when -o is not
// given, written atomically otherwise. Nothing is written on an unmappable file (exit 2).
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "config/hf_import.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "core/table.hpp"
#include "model/model_math.hpp"

namespace trainsim::cli {

void setup_import_model(CLI::App& sub) {
  struct Opts {
    std::string input, output, name, source;
  };
  auto o = std::make_shared<Opts>();
  std::string archs;
  for (const auto& a : hf_architectures()) archs += (archs.empty() ? "" : ", ") + a;
  sub.add_option("config", o->input, "A Hugging Face config.json (architectures: " + archs + ")")
      ->required()
      ->check(CLI::ExistingFile);
  sub.add_option("-o,--output", o->output, "Model TOML to write (e.g. models/qwen2.5-7b.toml); default: print it");
  sub.add_option("--name", o->name, "The model's name (default: the last part of _name_or_path)");
  sub.add_option("--source", o->source, "Where the config.json comes from, recorded in the TOML (default: the file)");
  sub.callback([o] {
    std::ifstream in(o->input, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in && !in.eof()) throw UsageError(fmt::format("import-model: cannot read '{}'", o->input));
    const HfImport r = import_hf_config(ss.str(), o->input, o->name, o->source);
    if (o->output.empty()) {
      fmt::print("{}", r.toml);
      return;
    }
    write_file_atomic(o->output, r.toml);
    const ParamCounts pc = count_params(r.model);
    fmt::print("{}: {} model '{}', {} parameters ({} activated{}); wrote {}\n", o->input, r.architecture, r.model.name,
               human_count(pc.total), human_count(pc.active),
               pc.mtp_total > 0 ? fmt::format(", MTP {}", human_count(pc.mtp_total)) : "", o->output);
    for (const auto& n : r.notes) fmt::print("  not modelled: {}\n", n);
  });
}

}  // namespace trainsim::cli
