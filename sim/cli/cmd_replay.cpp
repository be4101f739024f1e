// `trainsim replay PROFILE [--json]`: rebuild a measured run's streams and cross-stream waits and
// re-simulate it with the fitted per-kernel costs (sim/calibration/replay.hpp); compare span,
// per-stream busy time and exposed communication with the measurement.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "calibration/calibration_file.hpp"
#include "calibration/classifier.hpp"
#include "calibration/kineto.hpp"
#include "calibration/profile.hpp"
#include "calibration/replay.hpp"
#include "cli/commands.hpp"
#include "config/config.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/table.hpp"
#include "core/input.hpp"

namespace trainsim::cli {
namespace {

struct ReplayOptions {
  std::string trace;
  std::string calibration;
  std::string model;
  std::string gpu;
  std::int64_t ep = 1;
  std::int64_t tokens = 0;
  bool json = false;
  bool median = false;
};

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string resolve(const std::string& path) {
  if (path.empty() || path_exists(path)) return path;
  const auto in_data = data_dir() / path;
  return path_exists(in_data) ? in_data.string() : path;
}

// A raw trace given without --model/--tokens: if a committed profile in profiles/*/ was
// imported from a file of the same name, reuse the shape-inference settings recorded in its
// provenance ("models/x.toml (model 'x'), ep=64, tokens=4096"), and say so on stderr.
void default_shape_options(ReplayOptions& o) {
  namespace fs = std::filesystem;
  const std::string base = fs::path(o.trace).filename().string();
  std::error_code ec;
  std::vector<fs::path> candidates;
  for (const auto& gpu : fs::directory_iterator(data_dir() / "profiles", ec))
    if (gpu.is_directory())
      for (const auto& f : fs::directory_iterator(gpu.path(), ec))
        if (ends_with(f.path().string(), ".profile.jsonl")) candidates.push_back(f.path());
  std::sort(candidates.begin(), candidates.end());
  for (const auto& c : candidates) {
    const calibration::Profile p = calibration::read_profile(c.string());
    const auto& pv = p.provenance;
    if (fs::path(pv.source_file).filename().string() != base || pv.shapes.empty()) continue;
    const auto paren = pv.shapes.find(" (");
    const auto ep = pv.shapes.find("ep=");
    const auto tok = pv.shapes.find("tokens=");
    if (paren == std::string::npos || tok == std::string::npos) continue;
    try {
      const std::int64_t e = ep != std::string::npos ? std::stoll(pv.shapes.substr(ep + 3)) : 1;
      const std::int64_t t = std::stoll(pv.shapes.substr(tok + 7));
      if (e < 1 || t < 1) continue;
      o.ep = e, o.tokens = t;
    } catch (const std::exception&) {
      continue;  // not a provenance this function wrote
    }
    o.model = resolve(pv.shapes.substr(0, paren));
    fmt::print(stderr, "replay: shape inference as recorded in {}: {}\n", c.string(), pv.shapes);
    return;
  }
}

// The GPUs that have a calibration file (profiles/<gpu>/calibration.toml).
std::string calibrated_gpus() {
  namespace fs = std::filesystem;
  std::vector<std::string> v;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(data_dir() / "profiles", ec))
    if (d.is_directory() && path_exists(d.path() / "calibration.toml")) v.push_back(d.path().filename().string());
  std::sort(v.begin(), v.end());
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

void run_replay(const ReplayOptions& in) {
  using namespace calibration;
  ReplayOptions o = in;
  if (o.ep < 1) throw UsageError(fmt::format("--ep: must be at least 1, got {}", o.ep));
  if (o.tokens < 0) throw UsageError(fmt::format("--tokens: must not be negative, got {}", o.tokens));
  if (!o.model.empty() && o.tokens == 0 && !ends_with(o.trace, ".profile.jsonl"))
    throw UsageError("--model: shape inference on a raw trace also needs --tokens (tokens per micro-batch on the traced rank)");
  // No option is silently ignored.
  if (ends_with(o.trace, ".profile.jsonl") && (o.tokens != 0 || o.ep != 1))
    throw UsageError(fmt::format("{}: only for a raw trace; a profile's shapes were inferred when it was imported",
                                 o.tokens != 0 ? "--tokens" : "--ep"));
  if (!ends_with(o.trace, ".profile.jsonl") && o.model.empty() && (o.tokens != 0 || o.ep != 1))
    throw UsageError(fmt::format("{}: only used with --model (shape inference)", o.tokens != 0 ? "--tokens" : "--ep"));
  if (!o.gpu.empty()) {
    try {
      (void)load_hardware(o.gpu);
    } catch (const InputError& e) {
      throw UsageError(fmt::format("--gpu {}: {}", o.gpu, e.what()));
    }
  }
  if (!ends_with(o.trace, ".profile.jsonl") && (o.model.empty() || o.tokens <= 0)) default_shape_options(o);
  Profile p;
  std::string model = o.model;
  std::string gpu_why;
  if (ends_with(o.trace, ".profile.jsonl")) {
    p = read_profile(o.trace);
    // Default: the model the profile's shapes were inferred with ("models/x.toml (model 'x'), ...").
    if (model.empty() && !p.provenance.shapes.empty()) model = p.provenance.shapes.substr(0, p.provenance.shapes.find(" ("));
    if (p.provenance.gpu_key.empty())
      gpu_why = p.provenance.gpu.empty() ? "the profile records no GPU"
                                         : fmt::format("no GPU key was recorded for device '{}'", p.provenance.gpu);
  } else {
    // A raw Kineto trace: import it in memory as `trainsim import` would. Shapes are inferred
    // from --model/--tokens/--ep when given, and taken from the trace when it recorded them.
    RawImport raw = parse_kineto(o.trace);
    p = std::move(raw.profile);
    p.provenance.gpu_key = hardware_key(raw.device, &gpu_why);
    classify(p, Classifier::load((data_dir() / "profiles" / "classifier.toml").string()));
    account_sms(p);
    if (!o.model.empty() && o.tokens > 0) {
      const ModelConfig mc = load_model(o.model);
      const ShapeModel sm = make_shape_model(mc, o.model, o.tokens, o.ep);
      infer_shapes(p, sm);
    }
    recorded_shapes(p);
  }
  std::int64_t v_head_dim = 0;
  if (!model.empty()) {
    const ModelConfig mc = load_model(resolve(model));
    v_head_dim = mc.attention.v_head_dim > 0 ? mc.attention.v_head_dim : mc.attention.head_dim;
  }
  // The GPU whose fitted costs replay the profile: never assumed.
  const std::string gpu = o.gpu.empty() ? p.provenance.gpu_key : o.gpu;
  if (gpu.empty() && o.calibration.empty())
    throw UsageError(fmt::format("replay: the traced GPU is unknown ({}); give --gpu KEY (a profiles/hardware/ name; "
                                 "calibrations exist for: {}) or --calibration FILE",
                                 gpu_why, calibrated_gpus()));
  const std::string cal_path =
      o.calibration.empty() ? (data_dir() / "profiles" / gpu / "calibration.toml").string() : o.calibration;
  if (o.calibration.empty() && !path_exists(cal_path))
    throw UsageError(fmt::format("replay: no calibration for GPU '{}' ({} does not exist): replay needs costs fitted on "
                                 "the traced GPU; fit one with `trainsim calibrate PROFILE --gpu {} -o FILE` and give "
                                 "--calibration FILE, or --gpu KEY to use another GPU's fit (calibrations exist for: {})",
                                 gpu, cal_path, gpu, calibrated_gpus()));
  const Calibration cal = read_calibration(cal_path);
  const std::string traced = !p.provenance.gpu_key.empty() ? p.provenance.gpu_key
                             : !p.provenance.gpu.empty() ? "'" + p.provenance.gpu + "'"
                                                         : std::string("an unknown GPU");
  const std::string mismatch =
      cal.gpu != p.provenance.gpu_key
          ? fmt::format("note: the calibration is {}'s, the trace is of {}: fitted costs are another GPU's\n", cal.gpu, traced)
          : std::string();
  const ReplayResult r = replay(p, cal, v_head_dim, o.median);

  if (o.json) {
    nlohmann::json j;
    j["trace"] = o.trace;
    j["calibration"] = cal_path;
    j["measured_span_us"] = r.measured_span_us;
    j["simulated_span_us"] = r.simulated_span_us;
    j["error_pct"] = r.error_pct;
    nlohmann::json st = nlohmann::json::array();
    for (const auto& s : r.streams)
      st.push_back({{"stream", s.stream},
                    {"role", s.role},
                    {"kernels", s.kernels},
                    {"measured_busy_us", s.measured_busy_us},
                    {"simulated_busy_us", s.simulated_busy_us},
                    {"busy_error_pct", s.measured_busy_us > 0 ? (s.simulated_busy_us / s.measured_busy_us - 1) * 100 : 0.0}});
    j["streams"] = st;
    j["exposed_comm_measured_us"] = r.measured_exposed_comm_us;
    j["exposed_comm_simulated_us"] = r.simulated_exposed_comm_us;
    j["cost_sources"] = r.cost_sources;
    j["cross_stream_waits"] = r.waits.size();
    j["waits_unresolved"] = r.waits_unresolved;
    j["waits_contradicted_by_measurement"] = r.waits_inconsistent;
    j["launch_latency_us"] = r.launch_latency_us;
    j["kernel_gap_us"] = r.kernel_gap_us;
    j["calibration_gpu"] = cal.gpu;
    j["trace_gpu"] = traced;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  std::string out = fmt::format("replay of {} ({} kernels) with {}\n", o.trace, p.kernels.size(), cal_path);
  out += mismatch;
  out += fmt::format("  span: measured {:.0f} us, simulated {:.0f} us, error {:+.2f}%\n", r.measured_span_us,
                     r.simulated_span_us, r.error_pct);
  out += fmt::format("  exposed communication: measured {:.0f} us, simulated {:.0f} us\n", r.measured_exposed_comm_us,
                     r.simulated_exposed_comm_us);
  out += fmt::format("  cross-stream waits: {} resolved, {} unresolved, {} contradicted by the measured timing\n",
                     r.waits.size(), r.waits_unresolved, r.waits_inconsistent);
  std::string src;
  for (const auto& [k, v] : r.cost_sources) src += fmt::format("{}{} {}", src.empty() ? "" : ", ", v, k);
  out += fmt::format("  kernel costs: {} (per-group = {} measured duration of the kernel's (class, name, grid, phase, "
                     "ordinal in the phase range) group)\n\n",
                     src, o.median ? "median" : "mean");
  TextTable t({"stream", "role", "kernels", "measured busy us", "simulated busy us", "error"},
              {true, false, true, true, true, true});
  for (const auto& s : r.streams)
    t.add_row({std::to_string(s.stream), s.role, std::to_string(s.kernels), fmt::format("{:.0f}", s.measured_busy_us),
               fmt::format("{:.0f}", s.simulated_busy_us),
               fmt::format("{:+.2f}%", s.measured_busy_us > 0 ? (s.simulated_busy_us / s.measured_busy_us - 1) * 100 : 0.0)});
  out += t.str();
  fmt::print("{}", out);
}

}  // namespace

void setup_replay(CLI::App& sub) {
  auto o = std::make_shared<ReplayOptions>();
  sub.add_option("trace", o->trace,
                 "Kernel profile (*.profile.jsonl) or raw Kineto trace (plain or .json.gz; shapes from the trace when "
                 "recorded, or inferred with --model --tokens --ep)")
      ->required();
  sub.add_option("--calibration", o->calibration, "Calibration file [profiles/<gpu>/calibration.toml]");
  sub.add_option("--gpu", o->gpu, "GPU key whose calibration to use (profiles/<gpu>/calibration.toml) [the profile's GPU; refused when unknown]");
  sub.add_option("--model", o->model, "Model TOML (attention head dims) [the one the profile's shapes name]");
  sub.add_option("--ep", o->ep, "Expert-parallel degree of a raw trace [1]");
  sub.add_option("--tokens", o->tokens, "Tokens per micro-batch of a raw trace");
  sub.add_flag("--json", o->json, "Print the figures as JSON");
  sub.add_flag("--median", o->median, "Cost unshaped kernels by their group's median duration instead of the mean");
  sub.callback([o] { run_replay(*o); });
}

}  // namespace trainsim::cli
