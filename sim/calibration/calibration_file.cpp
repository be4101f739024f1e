#include "calibration/calibration_file.hpp"

#include <cmath>

#include <fmt/format.h>

#include "config/reader.hpp"
#include "core/error.hpp"

namespace trainsim::calibration {

namespace {

std::string num(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // TOML float (not "inf"/"nan")
  return s;
}

std::string str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else out += c;
    }
  }
  return out + "\"";
}

void write_fit(std::string& o, const ClassFit& f) {
  o += fmt::format("points = {}\nrms_rel_residual = {}\nmax_rel_residual = {}\nmean_rel_residual = {}\n",
                   f.residuals.points, num(f.residuals.rms_rel), num(f.residuals.max_rel), num(f.residuals.mean_rel));
  o += fmt::format("source = {}\n", str(f.source));
  if (!f.notes.empty()) o += fmt::format("notes = {}\n", str(f.notes));
}

ClassFit read_fit(Section& s) {
  ClassFit f;
  f.residuals.points = s.integer("points", 0, INT64_MAX);
  f.residuals.rms_rel = s.number("rms_rel_residual", 0, 1e9);
  f.residuals.max_rel = s.number("max_rel_residual", 0, 1e9);
  f.residuals.mean_rel = s.number("mean_rel_residual", -1e9, 1e9);
  f.source = s.string("source");
  f.notes = s.string_or("notes", "");
  return f;
}

}  // namespace

std::string write_calibration(const Calibration& c) {
  std::string o;
  o += "# Fitted kernel cost models for one GPU, written by `trainsim calibrate` (do not edit by hand;\n";
  o += "# regenerate with the command below). Format and models: sim/calibration/README.md.\n";
  o += "version = 2\n";
  o += fmt::format("gpu = {}\nsms = {}\ncommand = {}\n", str(c.gpu), c.sms, str(c.command));
  o += "inputs = [\n";
  for (const auto& i : c.inputs) o += fmt::format("  {},\n", str(i));
  o += "]\n\n";
  o += "# t = t0 + waves * (a * K + b) + c * bytes; waves = ceil(groups * ceil(M/tile_m) * ceil(N/tile_n) / sms);\n";
  o += "# bytes = groups * (M*K + N*K) + groups * M * N * 2 (FP8 in, BF16 out); M, N, K per group; times in us.\n";
  o += "[gemm_fp8]\n";
  o += fmt::format("tile_m = {}\ntile_n = {}\nt0_us = {}\na_us = {}\nb_us = {}\nc_us_per_byte = {}\n", c.gemm_fp8.tile_m,
                   c.gemm_fp8.tile_n, num(c.gemm_fp8.t0_us), num(c.gemm_fp8.a_us), num(c.gemm_fp8.b_us),
                   num(c.gemm_fp8.c_us_per_byte));
  write_fit(o, c.gemm_fp8_fit);
  o += "\n# weight-gradient FP8 GEMMs (dW = X^T dY): t = factor * (the [gemm_fp8] curve)\n[gemm_fp8_wgrad]\n";
  o += fmt::format("factor = {}\n", num(c.gemm_fp8_wgrad_factor));
  write_fit(o, c.gemm_fp8_wgrad_fit);
  o += "\n# t = FLOPs (model, causal) / (flops_per_sm_us * sms)\n[attention_fwd]\n";
  o += fmt::format("flops_per_sm_us = {}\n", num(c.attn_fwd_flops_per_sm_us));
  write_fit(o, c.attn_fwd_fit);
  o += "\n[attention_bwd]\n";
  o += fmt::format("flops_per_sm_us = {}\n", num(c.attn_bwd_flops_per_sm_us));
  write_fit(o, c.attn_bwd_fit);
  o += "\n# t = overhead_us + bytes / bytes_per_us\n[memory_bound]\n";
  o += fmt::format("bytes_per_us = {}\noverhead_us = {}\n", num(c.mem_bytes_per_us), num(c.mem_overhead_us));
  write_fit(o, c.mem_fit);
  o += "\n[kernel_gap]\n";
  o += fmt::format("gap_us = {}\nlaunch_latency_us = {}\n", num(c.kernel_gap_us), num(c.launch_latency_us));
  write_fit(o, c.gap_fit);
  return o;
}

namespace {
Calibration from_table(const toml::table& root, const std::string& file) {
  Section top(root, "", file);
  Calibration c;
  top.integer("version", 2, 2);  // 2: [gemm_fp8_wgrad] added
  c.gpu = top.string("gpu");
  c.sms = top.integer("sms", 1, 100000);
  c.command = top.string("command");
  top.allow("inputs");
  if (const toml::array* arr = root["inputs"].as_array()) {
    for (const toml::node& n : *arr) {
      const auto v = n.value_exact<std::string>();
      if (!v) throw ConfigError(pos_of(n, file), "inputs", "expected strings");
      c.inputs.push_back(*v);
    }
  } else {
    top.fail("inputs", "expected an array of strings");
  }
  {
    Section s = top.table("gemm_fp8");
    c.gemm_fp8.tile_m = s.integer("tile_m", 1, 1024);
    c.gemm_fp8.tile_n = s.integer("tile_n", 1, 1024);
    c.gemm_fp8.t0_us = s.number("t0_us", -1e6, 1e6);
    c.gemm_fp8.a_us = s.number("a_us", 1e-15, 1e6);
    c.gemm_fp8.b_us = s.number("b_us", -1e6, 1e6);
    c.gemm_fp8.c_us_per_byte = s.number("c_us_per_byte", 0, 1e6);
    c.gemm_fp8_fit = read_fit(s);
    s.finish();
  }
  {
    Section s = top.table("gemm_fp8_wgrad");
    c.gemm_fp8_wgrad_factor = s.number("factor", 1e-3, 1e3);
    c.gemm_fp8_wgrad_fit = read_fit(s);
    s.finish();
  }
  {
    Section s = top.table("attention_fwd");
    c.attn_fwd_flops_per_sm_us = s.number("flops_per_sm_us", 1e-9, 1e18);
    c.attn_fwd_fit = read_fit(s);
    s.finish();
  }
  {
    Section s = top.table("attention_bwd");
    c.attn_bwd_flops_per_sm_us = s.number("flops_per_sm_us", 1e-9, 1e18);
    c.attn_bwd_fit = read_fit(s);
    s.finish();
  }
  {
    Section s = top.table("memory_bound");
    c.mem_bytes_per_us = s.number("bytes_per_us", 1e-9, 1e18);
    c.mem_overhead_us = s.number("overhead_us", 0, 1e6);
    c.mem_fit = read_fit(s);
    s.finish();
  }
  {
    Section s = top.table("kernel_gap");
    c.kernel_gap_us = s.number("gap_us", 0, 1e6);
    c.launch_latency_us = s.number("launch_latency_us", 0, 1e6);
    c.gap_fit = read_fit(s);
    s.finish();
  }
  top.finish();
  return c;
}

}  // namespace

Calibration read_calibration_text(const std::string& text, const std::string& file) {
  return from_table(parse_toml_string(text, file), file);
}

Calibration read_calibration(const std::string& path) { return from_table(parse_toml_file(path), path); }

}  // namespace trainsim::calibration
