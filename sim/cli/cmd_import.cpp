// `trainsim import TRACE.json -o OUT`: import a PyTorch-profiler (Kineto) Chrome trace into the
// measured-kernel profile format (sim/calibration/README.md): classify every kernel with the
// TOML rules, account the SMs held by concurrent communication kernels, infer shapes from a
// model config, write the profile atomically, print a per-class summary. Everything is computed
// before anything is written; bad input exits 2 with nothing written.
#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "calibration/classifier.hpp"
#include "calibration/kineto.hpp"
#include "calibration/profile.hpp"
#include "cli/commands.hpp"
#include "config/config.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "core/table.hpp"

namespace trainsim::cli {
namespace {

struct ImportOptions {
  std::string trace;
  std::string classifier;
  std::string gpu;
  std::string output;
  std::string model;
  std::string source;
  std::int64_t ep = 1;
  std::int64_t tokens = 0;
  bool json = false;
};

// The GPU key: --gpu (which must name a hardware profile) or the hardware profile that
// describes the trace's device; "" when none does (`why` says so).
std::string gpu_key_for(const std::string& option_gpu, const calibration::DeviceInfo& dev, std::string* why) {
  if (!option_gpu.empty()) {
    try {
      (void)load_hardware(option_gpu);
    } catch (const InputError& e) {
      throw UsageError(fmt::format("--gpu {}: {}", option_gpu, e.what()));
    }
    return option_gpu;
  }
  return calibration::hardware_key(dev, why);
}

void run_import(const ImportOptions& o) {
  using namespace calibration;
  check_output_file("-o", o.output);  // before the work
  if (o.ep < 1) throw UsageError(fmt::format("--ep: must be at least 1, got {}", o.ep));
  if (o.tokens < 0) throw UsageError(fmt::format("--tokens: must not be negative, got {}", o.tokens));
  if (!o.model.empty() && o.tokens == 0)
    throw UsageError("--model: shape inference also needs --tokens (tokens per micro-batch on this rank)");
  // No option is silently ignored: --tokens and --ep only feed --model's shape inference.
  if (o.model.empty() && o.tokens != 0) throw UsageError("--tokens: only used with --model (shape inference)");
  if (o.model.empty() && o.ep != 1) throw UsageError("--ep: only used with --model (shape inference)");
  const std::string classifier_path =
      o.classifier.empty() ? (data_dir() / "profiles" / "classifier.toml").string() : o.classifier;
  const Classifier classifier = Classifier::load(classifier_path);

  RawImport raw = parse_kineto(o.trace);
  Profile& p = raw.profile;
  std::string gpu_why;
  p.provenance.gpu_key = gpu_key_for(o.gpu, raw.device, &gpu_why);
  p.provenance.source = o.source;
  classify(p, classifier);
  // Recorded as given; the default is named relative to the data folder so profiles stay portable.
  p.provenance.classifier = o.classifier.empty() ? "profiles/classifier.toml" : o.classifier;
  account_sms(p);
  if (!o.model.empty()) {
    const ModelConfig mc = load_model(o.model);
    const ShapeModel sm = make_shape_model(mc, o.model, o.tokens, o.ep);
    infer_shapes(p, sm);
  }
  recorded_shapes(p);
  const std::string text = write_profile(p);

  // Per-class summary, classes in op_classes() order.
  struct Row {
    std::size_t count = 0;
    double us = 0;
  };
  std::map<std::string, Row> rows;
  double total_us = 0;
  std::size_t shaped = 0, with_op = 0, with_coll = 0;
  std::map<std::int64_t, std::size_t> per_stream;
  for (const auto& k : p.kernels) {
    rows[k.op_class].count++;
    rows[k.op_class].us += k.dur_us;
    total_us += k.dur_us;
    per_stream[k.stream]++;
    if (k.shape.known()) ++shaped;
    if (!k.op.empty()) ++with_op;
    if (!k.collective.empty()) ++with_coll;
  }

  std::string out;
  if (o.json) {
    nlohmann::json j;
    j["trace"] = o.trace;
    j["output"] = o.output;
    j["kernels"] = p.kernels.size();
    j["annotations"] = p.annotations.size();
    j["sync_calls"] = p.syncs.size();
    j["kernels_with_shape"] = shaped;
    j["kernels_with_recorded_op"] = with_op;
    j["kernels_with_collective"] = with_coll;
    j["gpu"] = p.provenance.gpu;
    j["gpu_key"] = p.provenance.gpu_key;
    if (p.provenance.gpu_key.empty()) j["gpu_key_note"] = gpu_why;
    j["gpu_time_us"] = total_us;
    nlohmann::json streams = nlohmann::json::object();
    for (const auto& [s, n] : per_stream) streams[std::to_string(s)] = n;
    j["streams"] = streams;
    nlohmann::json classes = nlohmann::json::array();
    for (const auto& c : op_classes()) {
      auto it = rows.find(c);
      if (it == rows.end()) continue;
      classes.push_back({{"class", c},
                         {"count", it->second.count},
                         {"total_us", it->second.us},
                         {"share", total_us > 0 ? it->second.us / total_us : 0.0}});
    }
    j["classes"] = classes;
    out = j.dump(2) + "\n";
  } else {
    std::string streams;
    for (const auto& [s, n] : per_stream) streams += fmt::format("{}{}: {}", streams.empty() ? "" : ", ", s, n);
    out += fmt::format("{}: {} kernels on {} streams ({}), {} annotations, {} sync calls\n", o.trace,
                       p.kernels.size(), per_stream.size(), streams, p.annotations.size(), p.syncs.size());
    out += fmt::format("GPU: {} ({} SMs){}, classifier {}\n", p.provenance.gpu.empty() ? "not recorded" : p.provenance.gpu,
                       p.provenance.num_sms,
                       p.provenance.gpu_key.empty() ? "" : fmt::format(" = profiles/hardware/{}.toml", p.provenance.gpu_key),
                       classifier_path);
    if (p.provenance.gpu_key.empty())
      out += fmt::format("  no GPU key: {}; `trainsim replay` will need --gpu\n", gpu_why);
    if (with_op > 0 || with_coll > 0)
      out += fmt::format("recorded in the trace: {} kernels with their launching operator's shapes, {} NCCL kernels with "
                         "their collective\n",
                         with_op, with_coll);
    out += "\n";
    TextTable t({"class", "kernels", "total us", "share"}, {false, true, true, true});
    for (const auto& c : op_classes()) {
      auto it = rows.find(c);
      if (it == rows.end()) continue;
      t.add_row({c, std::to_string(it->second.count), fmt::format("{:.0f}", it->second.us),
                 fmt::format("{:.1f}%", total_us > 0 ? 100.0 * it->second.us / total_us : 0.0)});
    }
    t.add_rule();
    t.add_row({"total", std::to_string(p.kernels.size()), fmt::format("{:.0f}", total_us), "100.0%"});
    out += t.str();
    out += fmt::format("\n{} of {} kernels have a shape (recorded or inferred){}\nprofile written to {}\n", shaped,
                       p.kernels.size(),
                       o.model.empty() && with_op == 0 ? " (record the trace with record_shapes=True, or give --model and "
                                                         "--tokens to infer shapes)"
                                                       : "",
                       o.output);
  }
  write_file_atomic(o.output, text, "-o");
  fmt::print("{}", out);
}

}  // namespace

void setup_import(CLI::App& sub) {
  auto o = std::make_shared<ImportOptions>();
  sub.add_option("trace", o->trace, "Chrome Trace / Kineto JSON from the PyTorch profiler (plain or .json.gz)")->required();
  sub.add_option("-o,--output", o->output, "Profile file to write (JSON Lines, see sim/calibration/README.md)")
      ->required();
  sub.add_option("--classifier", o->classifier, "Kernel classifier rules (TOML) [profiles/classifier.toml]");
  sub.add_option("--gpu", o->gpu, "GPU key recorded in the provenance (profiles/hardware/<gpu>.toml) [the hardware profile matching the trace's deviceProperties]");
  sub.add_option("--model", o->model, "Model TOML for shape inference (needs --tokens)");
  sub.add_option("--ep", o->ep, "Expert-parallel degree of the traced run, for shape inference [1]");
  sub.add_option("--tokens", o->tokens, "Tokens per micro-batch on the traced rank, for shape inference");
  sub.add_option("--source", o->source, "Provenance text: repository, commit, original file name");
  sub.add_flag("--json", o->json, "Print the summary as JSON");
  sub.callback([o] { run_import(*o); });
}

}  // namespace trainsim::cli
