// `trainsim calibrate INPUT... --gpu h800 -o OUT.toml --model M.toml`: fit the per-class kernel
// cost models (sim/calibration/fit.hpp) to measured kernel profiles (*.profile.jsonl) and
// microbenchmark tables (DeepGEMM, FlashMLA *.toml), write the calibration file with provenance
// and print the residuals per class. Nothing is written on bad input (exit 2).
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
};

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::int64_t value_head_dim(const ModelConfig& mc) {
  return mc.attention.v_head_dim > 0 ? mc.attention.v_head_dim : mc.attention.head_dim;
}

std::string fmt_rel(double v) { return fmt::format("{:.1f}%", 100.0 * v); }

void run_calibrate(const CalibrateOptions& o) {
  using namespace calibration;
  check_output_file("-o", o.output);  // before the fits, not after
  CalibrateInputs in;
  in.gpu = o.gpu;
  const HardwareConfig hw = load_hardware(o.gpu);
  in.sms = hw.sms;
  if (!o.model.empty()) in.v_head_dim = value_head_dim(load_model(o.model));
  in.command = "trainsim calibrate";
  for (const auto& i : o.inputs) {
    if (ends_with(i, ".profile.jsonl")) in.profile_paths.push_back(i);
    else if (ends_with(i, ".toml")) in.table_paths.push_back(i);
    else throw UsageError(fmt::format("calibrate: '{}' is neither a kernel profile (*.profile.jsonl) nor a "
                                      "microbenchmark table (*.toml)", i));
    in.command += " " + i;
  }
  in.command += fmt::format(" --gpu {}{} -o {}", o.gpu, o.model.empty() ? "" : " --model " + o.model, o.output);
  const CalibrateResult r = calibrate(in);
  const Calibration& c = r.cal;
  const std::string text = write_calibration(c);

  std::string out = fmt::format("calibration for {} ({} SMs) from {} input(s)\n\n", c.gpu, c.sms, c.inputs.size());
  TextTable t({"class", "model", "points", "rms resid", "max resid", "bias"}, {false, false, true, true, true, true});
  auto row = [&](const std::string& cls, const std::string& model, const ClassFit& f) {
    // Classes without a residual (a measured figure taken as is, or medians) show "-".
    if (f.residuals.points == 0 || cls == "kernel_gap")
      t.add_row({cls, model, std::to_string(f.residuals.points), "-", "-", "-"});
    else
      t.add_row({cls, model, std::to_string(f.residuals.points), fmt_rel(f.residuals.rms_rel),
                 fmt_rel(f.residuals.max_rel), fmt_rel(f.residuals.mean_rel)});
  };
  const auto& g = c.gemm_fp8;
  row("gemm_fp8", fmt::format("t0 {:.2f} + waves x ({:.4g} x K + {:.2f}) us, tile {}x{}", g.t0_us, g.a_us, g.b_us, g.tile_m,
                              g.tile_n),
      c.gemm_fp8_fit);
  row("attention_fwd", fmt::format("{:.3g} TFLOP/s per SM ({:.0f} TFLOP/s on {} SMs)", c.attn_fwd_flops_per_sm_us / 1e6,
                                   c.attn_fwd_flops_per_sm_us * static_cast<double>(c.sms) / 1e6, c.sms),
      c.attn_fwd_fit);
  row("attention_bwd", fmt::format("{:.3g} TFLOP/s per SM ({:.0f} TFLOP/s on {} SMs)", c.attn_bwd_flops_per_sm_us / 1e6,
                                   c.attn_bwd_flops_per_sm_us * static_cast<double>(c.sms) / 1e6, c.sms),
      c.attn_bwd_fit);
  row("memory_bound", fmt::format("{:.3g} us + bytes / {:.0f} GB/s", c.mem_overhead_us, c.mem_bytes_per_us * 1e6 / 1e9),
      c.mem_fit);
  row("kernel_gap", fmt::format("gap {:.3g} us, launch latency {:.3g} us", c.kernel_gap_us, c.launch_latency_us), c.gap_fit);
  out += t.str();
  out += "\nGEMM points (predicted / measured - 1):\n";
  TextTable gp({"point", "SMs", "measured us", "residual"}, {false, true, true, true});
  for (std::size_t i = 0; i < r.gemm_points.size(); ++i)
    gp.add_row({r.gemm_points[i].source, std::to_string(r.gemm_points[i].sms), fmt::format("{:.1f}", r.gemm_points[i].time_us),
                fmt_rel(r.gemm_rel[i])});
  out += gp.str();
  out += fmt::format("\ncalibration written to {}\n", o.output);
  write_file_atomic(o.output, text, "-o");
  fmt::print("{}", out);
}

}  // namespace

void setup_calibrate(CLI::App& sub) {
  auto o = std::make_shared<CalibrateOptions>();
  sub.add_option("inputs", o->inputs, "Kernel profiles (*.profile.jsonl) and microbenchmark tables (DeepGEMM, FlashMLA *.toml)")
      ->required();
  sub.add_option("--gpu", o->gpu, "GPU the inputs were measured on (profiles/hardware/<gpu>.toml)")->required();
  sub.add_option("-o,--output", o->output, "Calibration file to write (TOML)")->required();
  sub.add_option("--model", o->model, "Model TOML of the profiled run (attention value head dim for FLOPs)");
  sub.callback([o] { run_calibrate(*o); });
}

}  // namespace trainsim::cli
