// `trainsim calibrate INPUT... --gpu h800 -o OUT.toml [--model M.toml]`: fit the per-class kernel
// cost models (sim/calibration/fit.hpp) to measured kernel profiles (*.profile.jsonl) and
// measurement tables (*.toml), write the calibration file with provenance and print, per class,
// the in-sample residuals and the held-out errors. Nothing is written on bad input (exit 2).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "calibration/calibrate.hpp"
#include "calibration/calibration_file.hpp"
#include "cli/commands.hpp"
#include "config/config.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "core/table.hpp"

namespace trainsim::cli {
namespace {

struct CalibrateOptions {
  std::vector<std::string> inputs;
  std::string gpu;
  std::string output;
  std::string model;
  bool points = false;
};

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string pct(double v) { return fmt::format("{:.1f}%", 100.0 * v); }

void run_calibrate(const CalibrateOptions& o) {
  using namespace calibration;
  check_output_file("-o", o.output);  // before the fits, not after
  CalibrateInputs in;
  in.hardware = load_hardware(o.gpu);
  in.hardware_of = [](const std::string& name) { return load_hardware(name); };
  in.mamf_path = (data_dir() / "profiles" / "mamf.toml").string();  // shipped with the hardware profiles
  ModelConfig model;
  if (!o.model.empty()) {
    model = load_model(o.model);
    in.model = &model;
  }
  in.command = "trainsim calibrate";
  for (const auto& i : o.inputs) {
    if (ends_with(i, ".profile.jsonl")) in.profile_paths.push_back(i);
    else if (ends_with(i, ".toml")) in.table_paths.push_back(i);
    else throw UsageError(fmt::format("calibrate: '{}' is neither a kernel profile (*.profile.jsonl) nor a "
                                      "measurement table (*.toml)", i));
    in.command += " " + i;
  }
  in.command += fmt::format(" --gpu {}{} -o {}", o.gpu, o.model.empty() ? "" : " --model " + o.model, o.output);
  const CalibrateResult r = calibrate(in);
  const Calibration& c = r.cal;
  const std::string text = write_calibration(c);

  std::string out = fmt::format("calibration for {} ({} SMs) from {} input(s)\n\n", c.gpu, c.sms, c.inputs.size());
  TextTable t({"class", "basis", "model", "points", "rms", "bias", "held-out rms", "max", "held out by"},
              {false, false, false, true, true, true, true, true, false});
  auto row = [&](const std::string& cls, const std::string& model_text, const ClassFit& f) {
    if (!f.present) return;
    std::string basis = basis_name(f.basis);
    if (f.basis != Basis::Measured) basis += " (" + f.measured_on + ")";
    const bool resid = f.residuals.points > 0 && cls != "kernel_gap";
    if (f.heldout.empty()) {
      t.add_row({cls, basis, model_text, std::to_string(f.residuals.points), resid ? pct(f.residuals.rms_rel) : "-",
                 resid ? pct(f.residuals.mean_rel) : "-", "-", "-", "(none)"});
      return;
    }
    bool first = true;
    for (const auto& h : f.heldout) {
      t.add_row({first ? cls : "", first ? basis : "", first ? model_text : "",
                 first ? std::to_string(f.residuals.points) : "", first && resid ? pct(f.residuals.rms_rel) : "",
                 first && resid ? pct(f.residuals.mean_rel) : "",
                 h.residuals.points ? pct(h.residuals.rms_rel) : "-", h.residuals.points ? pct(h.residuals.max_rel) : "-",
                 fmt::format("{} ({})", h.method, h.residuals.points)});
      first = false;
    }
  };
  for (const auto& [dt, g] : c.gemm)
    row("gemm_" + dt,
        fmt::format("t0 {:.2f} + waves x ({:.4g} x K + {:.2f}) us, tile {}x{}{}", g.params.t0_us, g.params.a_us, g.params.b_us,
                    g.params.tile_m, g.params.tile_n,
                    g.params.ceiling_flops_per_sm_us > 0
                        ? fmt::format(", at most {:.1f} TFLOP/s", g.params.ceiling_flops_per_sm_us * static_cast<double>(c.sms) / 1e6)
                        : std::string()),
        g.fit);
  row("gemm_fp8_wgrad", fmt::format("x{:.3g}", c.gemm_fp8_wgrad_factor), c.gemm_fp8_wgrad_fit);
  auto attn_text = [&](const AttnParams& p) {
    if (p.model == "rate")
      return fmt::format("{:.3g} TFLOP/s per SM ({:.0f} TFLOP/s on {} SMs)", p.flops_per_sm_us / 1e6,
                         p.flops_per_sm_us * static_cast<double>(c.sms) / 1e6, c.sms);
    return fmt::format("waves x ({:.3g} + kv x ({:.3g} x d + {:.3g})) us", p.c0_us, p.c1_us, p.c2_us);
  };
  row("attention_fwd", attn_text(c.attn_fwd), c.attn_fwd_fit);
  row("attention_bwd", attn_text(c.attn_bwd), c.attn_bwd_fit);
  for (const auto& k : memory_kinds()) {
    const auto it = c.mem.find(k);
    if (it == c.mem.end()) continue;
    row(k == "default" ? "memory_bound" : "memory_bound." + k,
        fmt::format("{:.3g} us + bytes / {:.0f} GB/s", it->second.overhead_us, it->second.bytes_per_us * 1e6 / 1e9),
        it->second.fit);
  }
  row("kernel_gap", fmt::format("gap {:.3g} us, launch latency {:.3g} us", c.kernel_gap_us, c.launch_latency_us), c.gap_fit);
  row("network.nvlink", fmt::format("efficiency {:.4g}", c.nvlink.efficiency), c.nvlink.fit);
  row("network.ib", fmt::format("efficiency {:.4g}", c.ib.efficiency), c.ib.fit);
  out += t.str();
  out += "  rms, bias: in-sample (predicted / measured - 1 over the fitted points); held-out: points predicted by a fit\n"
         "  that did not see them. A transferred class's held-out figures are those of the GPU it was measured on.\n";
  for (const auto& n : r.notes) out += "  note: " + n + "\n";
  if (o.points) {
    out += "\nPoints (predicted / measured - 1, in-sample):\n";
    TextTable gp({"class", "point", "measured us", "residual"}, {false, false, true, true});
    for (const auto& p : r.points) gp.add_row({p.cls, p.source, fmt::format("{:.2f}", p.measured_us), pct(p.rel)});
    out += gp.str();
  }
  out += fmt::format("\ncalibration written to {}\n", o.output);
  write_file_atomic(o.output, text, "-o");
  fmt::print("{}", out);
}

}  // namespace

void setup_calibrate(CLI::App& sub) {
  auto o = std::make_shared<CalibrateOptions>();
  sub.add_option("inputs", o->inputs,
                 "Kernel profiles (*.profile.jsonl) and measurement tables (*.toml: GEMM, attention, memory-bound, "
                 "collective, DeepGEMM, DeepEP, FlashMLA)")
      ->required();
  sub.add_option("--gpu", o->gpu, "GPU to calibrate for (profiles/hardware/<gpu>.toml)")->required();
  sub.add_option("-o,--output", o->output, "Calibration file to write (TOML)")->required();
  sub.add_option("--model", o->model, "Model TOML of the profiled run (attention head dims)");
  sub.add_flag("--points", o->points, "Also print every measured point with its in-sample residual");
  sub.callback([o] { run_calibrate(*o); });
}

}  // namespace trainsim::cli
