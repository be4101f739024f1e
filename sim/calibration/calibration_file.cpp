#include "calibration/calibration_file.hpp"

#include <cmath>

#include <fmt/format.h>

#include "config/reader.hpp"
#include "core/error.hpp"

namespace trainsim::calibration {

const char* basis_name(Basis b) {
  switch (b) {
    case Basis::Measured: return "measured";
    case Basis::SameDie: return "same-die";
    case Basis::Transferred: return "transferred";
  }
  return "?";
}

const std::vector<std::string>& memory_kinds() {
  static const std::vector<std::string> k = {"default", "norm",   "norm_bwd",  "activation", "rope",       "cast",
                                             "permute", "router", "embedding", "loss",       "elementwise"};
  return k;
}

namespace {

constexpr int kVersion = 3;

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

template <class T, class F>
std::string array(const std::vector<T>& v, F f) {
  std::string o = "[";
  for (std::size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + f(v[i]);
  return o + "]";
}

void write_fit(std::string& o, const ClassFit& f) {
  o += fmt::format("basis = {}\nmeasured_on = {}\n", str(basis_name(f.basis)), str(f.measured_on));
  if (!f.transfer.empty()) o += fmt::format("transfer = {}\n", str(f.transfer));
  o += fmt::format("points = {}\nrms_rel_residual = {}\nmax_rel_residual = {}\nmean_rel_residual = {}\n",
                   f.residuals.points, num(f.residuals.rms_rel), num(f.residuals.max_rel), num(f.residuals.mean_rel));
  o += "heldout = " + array(f.heldout, [](const HeldOut& h) { return str(h.method); }) + "\n";
  o += "heldout_points = " + array(f.heldout, [](const HeldOut& h) { return std::to_string(h.residuals.points); }) + "\n";
  o += "heldout_rms = " + array(f.heldout, [](const HeldOut& h) { return num(h.residuals.rms_rel); }) + "\n";
  o += "heldout_max = " + array(f.heldout, [](const HeldOut& h) { return num(h.residuals.max_rel); }) + "\n";
  o += "heldout_mean = " + array(f.heldout, [](const HeldOut& h) { return num(h.residuals.mean_rel); }) + "\n";
  o += fmt::format("source = {}\n", str(f.source));
  if (!f.notes.empty()) o += fmt::format("notes = {}\n", str(f.notes));
}

void write_gemm(std::string& o, const std::string& dtype, const GemmClass& g) {
  o += fmt::format("\n[gemm_{}]\n", dtype);
  o += fmt::format("tile_m = {}\ntile_n = {}\nt0_us = {}\na_us = {}\nb_us = {}\nc_us_per_byte = {}\n", g.params.tile_m,
                   g.params.tile_n, num(g.params.t0_us), num(g.params.a_us), num(g.params.b_us),
                   num(g.params.c_us_per_byte));
  if (g.params.ceiling_flops_per_sm_us > 0)
    o += fmt::format("ceiling_flops_per_sm_us = {}\n", num(g.params.ceiling_flops_per_sm_us));
  write_fit(o, g.fit);
}

void write_attention(std::string& o, const char* name, const AttnParams& p, double replay_rate, const ClassFit& f) {
  if (!f.present) return;  // not measured: left out (the cost model transfers it)
  o += fmt::format("\n[{}]\n", name);
  o += fmt::format("model = {}\ntile = {}\nt0_us = {}\nc0_us = {}\nc1_us = {}\nc2_us = {}\nflops_per_sm_us = {}\n",
                   str(p.model), p.tile, num(p.t0_us), num(p.c0_us), num(p.c1_us), num(p.c2_us),
                   num(p.flops_per_sm_us));
  o += fmt::format("replay_flops_per_sm_us = {}\n", num(replay_rate));
  write_fit(o, f);
}

void write_mem(std::string& o, const std::string& table, const MemClass& m) {
  o += fmt::format("\n[{}]\n", table);
  o += fmt::format("bytes_per_us = {}\noverhead_us = {}\n", num(m.bytes_per_us), num(m.overhead_us));
  write_fit(o, m.fit);
}

void write_link(std::string& o, const char* table, const LinkClass& l) {
  o += fmt::format("\n[{}]\n", table);
  o += fmt::format("efficiency = {}\n", num(l.efficiency));
  write_fit(o, l.fit);
}

// ---- reading ----------------------------------------------------------------------------------

// Array values are read from the raw table (Section reads scalars); the key is marked known.
const toml::array& require_array(Section& s, const toml::table& raw, const char* key) {
  s.allow(key);
  const toml::node* n = raw.get(key);
  if (n == nullptr) s.fail(key, "missing key");
  const toml::array* a = n->as_array();
  if (a == nullptr) s.fail(key, "expected an array");
  return *a;
}

std::vector<std::string> string_array(Section& s, const toml::table& raw, const char* key, const std::string& file) {
  std::vector<std::string> out;
  for (const toml::node& n : require_array(s, raw, key)) {
    const auto v = n.value_exact<std::string>();
    if (!v) throw ConfigError(pos_of(n, file), s.full_key(key), "expected strings");
    out.push_back(*v);
  }
  return out;
}

std::vector<double> number_array(Section& s, const toml::table& raw, const char* key, const std::string& file, double lo,
                                 double hi) {
  std::vector<double> out;
  for (const toml::node& n : require_array(s, raw, key)) {
    const auto v = n.value<double>();
    if (!v || !(*v >= lo && *v <= hi))
      throw ConfigError(pos_of(n, file), s.full_key(key), fmt::format("expected numbers in [{}, {}]", lo, hi));
    out.push_back(*v);
  }
  return out;
}

const toml::table& raw_table(const toml::table& parent, const std::string& key) {
  const toml::table* t = parent.get_as<toml::table>(key);
  TS_ASSERT(t != nullptr, "calibration: table " + key + " read by Section but absent");
  return *t;
}

ClassFit read_fit(Section& s, const toml::table& raw, const std::string& file) {
  ClassFit f;
  f.present = true;
  const std::string b = s.choice("basis", {"measured", "same-die", "transferred"});
  f.basis = b == "measured" ? Basis::Measured : b == "same-die" ? Basis::SameDie : Basis::Transferred;
  f.measured_on = s.string("measured_on");
  f.transfer = s.string_or("transfer", "");
  if (f.basis != Basis::Measured && f.transfer.empty()) s.fail("transfer", "required when basis is not \"measured\"");
  f.residuals.points = s.integer("points", 0, INT64_MAX);
  f.residuals.rms_rel = s.number("rms_rel_residual", 0, 1e9);
  f.residuals.max_rel = s.number("max_rel_residual", 0, 1e9);
  f.residuals.mean_rel = s.number("mean_rel_residual", -1e9, 1e9);
  const auto methods = string_array(s, raw, "heldout", file);
  const auto points = number_array(s, raw, "heldout_points", file, 0, 1e15);
  const auto rms = number_array(s, raw, "heldout_rms", file, 0, 1e9);
  const auto mx = number_array(s, raw, "heldout_max", file, 0, 1e9);
  const auto mean = number_array(s, raw, "heldout_mean", file, -1e9, 1e9);
  if (points.size() != methods.size() || rms.size() != methods.size() || mx.size() != methods.size() ||
      mean.size() != methods.size())
    s.fail("heldout", "heldout, heldout_points, heldout_rms, heldout_max and heldout_mean must have equal lengths");
  for (std::size_t i = 0; i < methods.size(); ++i)
    f.heldout.push_back(HeldOut{methods[i], Residuals{static_cast<std::int64_t>(points[i]), rms[i], mx[i], mean[i]}});
  f.source = s.string("source");
  f.notes = s.string_or("notes", "");
  return f;
}

GemmClass read_gemm(Section s, const toml::table& raw, const std::string& file) {
  GemmClass g;
  g.params.tile_m = s.integer("tile_m", 1, 1024);
  g.params.tile_n = s.integer("tile_n", 1, 1024);
  g.params.t0_us = s.number("t0_us", -1e6, 1e6);
  g.params.a_us = s.number("a_us", 1e-15, 1e6);
  g.params.b_us = s.number("b_us", -1e6, 1e6);
  g.params.c_us_per_byte = s.number("c_us_per_byte", 0, 1e6);
  // Optional: absent = no measured ceiling (the format's meaning, not a default guess).
  g.params.ceiling_flops_per_sm_us = s.number_or("ceiling_flops_per_sm_us", 0, 0, 1e18);
  g.fit = read_fit(s, raw, file);
  s.finish();
  return g;
}

AttnParams read_attention(Section& s, double& replay_rate) {
  AttnParams p;
  p.model = s.choice("model", {"waves", "rate"});
  p.tile = s.integer("tile", 1, 4096);
  p.t0_us = s.number("t0_us", -1e6, 1e6);
  p.c0_us = s.number("c0_us", -1e6, 1e6);
  p.c1_us = s.number("c1_us", p.model == "waves" ? 1e-18 : 0, 1e6);
  p.c2_us = s.number("c2_us", -1e6, 1e6);
  p.flops_per_sm_us = s.number("flops_per_sm_us", p.model == "rate" ? 1e-9 : 0, 1e18);
  replay_rate = s.number("replay_flops_per_sm_us", 0, 1e18);
  return p;
}

MemClass read_mem(Section& s, const toml::table& raw, const std::string& file) {
  MemClass m;
  m.bytes_per_us = s.number("bytes_per_us", 1e-9, 1e18);
  m.overhead_us = s.number("overhead_us", -1e6, 1e6);
  m.fit = read_fit(s, raw, file);
  return m;
}

LinkClass read_link(Section s, const toml::table& raw, const std::string& file) {
  LinkClass l;
  l.efficiency = s.number("efficiency", 1e-3, 1.0);
  l.fit = read_fit(s, raw, file);
  s.finish();
  return l;
}

}  // namespace

std::string write_calibration(const Calibration& c) {
  std::string o;
  o += "# Fitted kernel cost models for one GPU, written by `trainsim calibrate` (do not edit by hand;\n";
  o += "# regenerate with the command below). Format and models: sim/calibration/README.md. Every class\n";
  o += "# gives its basis (measured on this GPU, on a same-die GPU, or transferred by a rule), its\n";
  o += "# in-sample residuals (predicted / measured - 1 over the points it was fitted to) and its\n";
  o += "# held-out errors (over points a fit that did not see them predicts).\n";
  o += fmt::format("version = {}\n", kVersion);
  o += fmt::format("gpu = {}\nsms = {}\ncommand = {}\n", str(c.gpu), c.sms, str(c.command));
  o += "inputs = [\n";
  for (const auto& i : c.inputs) o += fmt::format("  {},\n", str(i));
  o += "]\n";
  o += "\n# GEMM: t = t0 + waves * (a * K + b) + c * bytes; waves = ceil(groups * ceil(M/tile_m) * ceil(N/tile_n) / sms);\n";
  o += "# bytes = groups * (M*K + N*K) * operand bytes + groups * M * N * 2 (BF16 out); M, N, K per group; times in us.\n";
  for (const auto& [dtype, g] : c.gemm) write_gemm(o, dtype, g);
  o += "\n# weight-gradient FP8 GEMMs (dW = X^T dY): t = factor * (the [gemm_fp8] curve)\n[gemm_fp8_wgrad]\n";
  o += fmt::format("factor = {}\n", num(c.gemm_fp8_wgrad_factor));
  write_fit(o, c.gemm_fp8_wgrad_fit);
  o += "\n# attention: t = t0 + waves * (c0 + kv * (c1 * (d_qk + d_v) + c2)), waves = ceil(batch * heads * ceil(s_q / tile) / sms),\n";
  o += "# kv = s_kv, or (s_kv + tile) / 2 with a causal mask; model \"rate\": t = FLOPs / (flops_per_sm_us * sms)";
  write_attention(o, "attention_fwd", c.attn_fwd, c.attn_fwd_flops_per_sm_us, c.attn_fwd_fit);
  write_attention(o, "attention_bwd", c.attn_bwd, c.attn_bwd_flops_per_sm_us, c.attn_bwd_fit);
  o += "\n# memory-bound kernels: t = overhead_us + bytes / bytes_per_us; [memory_bound] pools every kind,\n";
  o += "# [memory_bound.<kind>] a kind with its own measurements";
  for (const auto& k : memory_kinds()) {
    const auto it = c.mem.find(k);
    if (it == c.mem.end()) continue;
    write_mem(o, k == "default" ? "memory_bound" : "memory_bound." + k, it->second);
  }
  o += "\n[kernel_gap]\n";
  o += fmt::format("gap_us = {}\nlaunch_latency_us = {}\n", num(c.kernel_gap_us), num(c.launch_latency_us));
  write_fit(o, c.gap_fit);
  if (c.nvlink.fit.present || c.ib.fit.present)
    o += "\n# network links: achieved bandwidth of communication kernels = nominal x efficiency";
  if (c.nvlink.fit.present) write_link(o, "network.nvlink", c.nvlink);
  if (c.ib.fit.present) write_link(o, "network.ib", c.ib);
  return o;
}

namespace {
Calibration from_table(const toml::table& root, const std::string& file) {
  const KeyLogPause pause;  // a generated file, not user configuration (docs/configuration.md)
  Section top(root, "", file);
  Calibration c;
  const std::int64_t version = top.integer("version", 1, 1000);
  if (version != kVersion)
    top.fail("version", fmt::format("calibration format version {} is not supported (this trainsim reads version {}: "
                                    "regenerate the file with `trainsim calibrate`, the command it records)",
                                    version, kVersion));
  c.gpu = top.string("gpu");
  c.sms = top.integer("sms", 1, 100000);
  c.command = top.string("command");
  c.inputs = string_array(top, root, "inputs", file);
  for (const char* dt : {"bf16", "fp8", "fp32", "tf32"}) {
    const std::string key = std::string("gemm_") + dt;
    if (auto s = top.opt_table(key)) c.gemm[dt] = read_gemm(*s, raw_table(root, key), file);
  }
  if (c.gemm.empty()) top.fail("gemm_fp8", "no GEMM table ([gemm_fp8] or [gemm_bf16])");
  if (c.has_gemm("fp8")) c.gemm_fp8 = c.gemm.at("fp8").params;
  {
    Section s = top.table("gemm_fp8_wgrad");
    c.gemm_fp8_wgrad_factor = s.number("factor", 1e-3, 1e3);
    c.gemm_fp8_wgrad_fit = read_fit(s, raw_table(root, "gemm_fp8_wgrad"), file);
    s.finish();
  }
  if (auto s = top.opt_table("attention_fwd")) {  // absent: not measured on this GPU
    c.attn_fwd = read_attention(*s, c.attn_fwd_flops_per_sm_us);
    c.attn_fwd_fit = read_fit(*s, raw_table(root, "attention_fwd"), file);
    s->finish();
  }
  if (auto s = top.opt_table("attention_bwd")) {  // absent: not measured on this GPU
    c.attn_bwd = read_attention(*s, c.attn_bwd_flops_per_sm_us);
    c.attn_bwd_fit = read_fit(*s, raw_table(root, "attention_bwd"), file);
    s->finish();
  }
  {
    Section s = top.table("memory_bound");
    const toml::table& mraw = raw_table(root, "memory_bound");
    c.mem["default"] = read_mem(s, mraw, file);
    for (const auto& k : memory_kinds()) {
      if (k == "default") continue;
      if (auto sub = s.opt_table(k)) {
        c.mem[k] = read_mem(*sub, raw_table(mraw, k), file);
        sub->finish();
      }
    }
    s.finish();
  }
  {
    Section s = top.table("kernel_gap");
    c.kernel_gap_us = s.number("gap_us", 0, 1e6);
    c.launch_latency_us = s.number("launch_latency_us", 0, 1e6);
    c.gap_fit = read_fit(s, raw_table(root, "kernel_gap"), file);
    s.finish();
  }
  if (auto n = top.opt_table("network")) {
    const toml::table& nraw = raw_table(root, "network");
    if (auto l = n->opt_table("nvlink")) c.nvlink = read_link(*l, raw_table(nraw, "nvlink"), file);
    if (auto l = n->opt_table("ib")) c.ib = read_link(*l, raw_table(nraw, "ib"), file);
    n->finish();
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
