#include "calibration/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "calibration/fitted_model.hpp"
#include "config/reader.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "network/alltoall.hpp"
#include "network/topology.hpp"

namespace trainsim::calibration {

namespace {
double d(std::int64_t v) { return static_cast<double>(v); }
using i64 = std::int64_t;

bool is_membound_class(const std::string& c) {
  return c == "norm" || c == "elementwise" || c == "permute" || c == "quant_cast";
}

double dtype_bytes(const std::string& dt) { return dt == "fp8" ? 1.0 : dt == "fp32" || dt == "tf32" ? 4.0 : 2.0; }

// ---- points with the GPU they were measured on ---------------------------------------------
struct GemmIn {
  GemmPoint p;
  std::string dtype, gpu;
};
struct AttnIn {
  AttnPoint p;
  bool bwd = false;
  std::string gpu;
};
struct MemIn {
  MemPoint p;
  std::string gpu;
};
struct LinkIn {
  LinkPoint p;
  std::string gpu;
};

struct Collected {
  std::vector<GemmIn> gemm;
  std::vector<AttnIn> attn;
  std::vector<MemIn> mem;
  std::vector<LinkIn> link;
  std::vector<GapSample> gaps;
  std::string gap_gpu;                 // GPU of the first profile (kernel gaps)
  std::vector<AttnPoint> replay_fwd, replay_bwd;  // the profiles' attention kernels
  std::vector<std::string> mem_upper;  // FlashMLA-style "achieved" bandwidths (not fitted)
  std::vector<std::string> notes;
  std::vector<std::string> profile_names;
};

// ---- measurement tables ----------------------------------------------------------------------

struct Header {
  std::string kind, gpu, source, licence;
};

// Common provenance keys of a measurement table (new format). Returns the kind.
Header read_header(Section& top) {
  Header h;
  h.kind = top.choice("kind", {"gemm", "attention", "membound", "collective"});
  h.gpu = top.string("gpu");
  top.string("device");
  h.source = top.string("source");
  top.string("commit");
  top.string("date");
  top.string("software");
  h.licence = top.string("licence");
  top.string_or("notes", "");
  return h;
}

const toml::array& rows_of(Section& top, const toml::table& root) {
  top.allow("row");
  const toml::array* rows = root["row"].as_array();
  if (rows == nullptr || rows->empty()) top.fail("row", "expected a non-empty array of rows (row = [ {...}, ... ])");
  return *rows;
}

template <class F>
void for_rows(Section& top, const toml::table& root, const std::string& path, F f) {
  std::size_t i = 0;
  for (const toml::node& el : rows_of(top, root)) {
    const std::string prefix = fmt::format("row[{}]", i++);
    const toml::table* tb = el.as_table();
    if (tb == nullptr) throw ConfigError(pos_of(el, path), prefix, "expected a table");
    Section s(*tb, prefix, path);
    f(s, prefix);
    s.finish();
  }
}

void read_gemm_table(Section& top, const toml::table& root, const std::string& path, const Header& h,
                     const HardwareConfig& hw, Collected& c) {
  top.choice("layout", {"batched"});
  top.choice("unit", {"FLOP/s"});
  std::map<std::string, std::vector<GemmIn>> cols;
  std::map<std::string, double> max_flops;
  for_rows(top, root, path, [&](Section& s, const std::string& prefix) {
    GemmPoint p;
    p.groups = s.integer("b", 1, 1 << 20);
    p.m = s.integer("m", 1, INT64_MAX / 8);
    p.n = s.integer("n", 1, INT64_MAX / 8);
    p.k = s.integer("k", 1, INT64_MAX / 8);
    p.sms = hw.sms;
    p.group = path;
    bool any = false;
    for (const char* dt : {"bf16", "fp8", "fp32"}) {
      const std::string key = std::string("flops_") + dt;
      if (!s.has(key)) continue;
      any = true;
      const double fl = s.number(key, 1.0, 1e18);
      GemmPoint q = p;
      q.time_us = 2.0 * d(q.m) * d(q.n) * d(q.k) * d(q.groups) / fl * 1e6;
      q.source = fmt::format("{} {} b={} m={} n={} k={}", path, dt, q.groups, q.m, q.n, q.k);
      cols[dt].push_back(GemmIn{q, dt, h.gpu});
      max_flops[dt] = std::max(max_flops[dt], fl);
    }
    if (!any) s.fail("flops_bf16", fmt::format("{}: no flops_<dtype> column (flops_bf16, flops_fp8, flops_fp32)", prefix));
  });
  for (auto& [dt, pts] : cols) {
    // A column faster than the GPU's dense peak cannot be kernel times.
    const double peak = hw.peak_flops(dt);
    if (peak > 0 && max_flops[dt] > 1.05 * peak) {
      c.notes.push_back(fmt::format("{}: {} column rejected: up to {:.0f} TFLOPS, above the {} dense {} peak of {:.0f} "
                                    "TFLOPS (not kernel times)",
                                    path, dt, max_flops[dt] / 1e12, hw.name, dt, peak / 1e12));
      continue;
    }
    for (auto& g : pts) c.gemm.push_back(std::move(g));
  }
}

void read_attention_table(Section& top, const toml::table& root, const std::string& path, const Header& h,
                          const HardwareConfig& hw, Collected& c) {
  top.choice("flops_convention", {"fa"});
  top.integer("tokens_per_batch", 1, INT64_MAX / 4);
  top.integer("hidden", 1, INT64_MAX / 4);
  for_rows(top, root, path, [&](Section& s, const std::string&) {
    AttnIn a;
    a.bwd = s.choice("pass", {"fwd", "bwd"}) == "bwd";
    a.p.shape.causal = s.boolean("causal");
    a.p.shape.batch = s.integer("batch", 1, 1 << 24);
    a.p.shape.seq_q = a.p.shape.seq_kv = s.integer("seqlen", 1, 1 << 26);
    a.p.shape.heads = s.integer("heads", 1, 1 << 16);
    a.p.shape.d_qk = a.p.shape.d_v = s.integer("head_dim", 1, 1 << 16);
    const double tflops = s.number("tflops", 1e-6, 1e6);
    s.string("figure");
    // FlashAttention's count: 4 * s^2 * d * heads per sequence forward, half with a causal
    // mask, 2.5x for the backward.
    const auto& sh = a.p.shape;
    const double fa = 4.0 * d(sh.batch) * d(sh.seq_q) * d(sh.seq_kv) * d(sh.d_qk) * d(sh.heads) * (sh.causal ? 0.5 : 1.0) *
                      (a.bwd ? 2.5 : 1.0);
    a.p.time_us = fa / (tflops * 1e12) * 1e6;
    a.p.sms = hw.sms;
    a.p.group = path;
    a.p.source = fmt::format("{} {} {} s={} heads={} d={}", path, a.bwd ? "bwd" : "fwd", sh.causal ? "causal" : "full",
                             sh.seq_q, sh.heads, sh.d_qk);
    a.gpu = h.gpu;
    c.attn.push_back(std::move(a));
  });
}

void read_membound_table(Section& top, const toml::table& root, const std::string& path, const Header& h, Collected& c) {
  for_rows(top, root, path, [&](Section& s, const std::string&) {
    MemIn m;
    m.p.kind = s.choice("op", {"norm", "norm_bwd", "activation", "rope", "cast", "permute", "router", "embedding", "loss", "elementwise"});
    const std::string kernel = s.string("kernel");
    s.choice("pass", {"fwd", "bwd"});
    const std::string shape = s.string("shape");
    m.p.bytes = s.number("bytes", 1, 1e18);
    m.p.time_us = s.number("time_us", 1e-6, 1e12);
    s.string("measured");
    m.p.group = path;
    m.p.source = fmt::format("{} {} {}", path, kernel, shape);
    m.gpu = h.gpu;
    c.mem.push_back(std::move(m));
  });
}

// nccl-tests bus bandwidth of a ring all-reduce inside one NVLink domain: busbw = the achieved
// per-GPU one-way NVLink bandwidth = nvlink / 2 x efficiency (sim/network: ring all-reduce).
void read_collective_table(Section& top, const toml::table& root, const std::string& path, const Header& h,
                           const HardwareConfig& hw, Collected& c) {
  for_rows(top, root, path, [&](Section& s, const std::string&) {
    const std::string coll = s.choice("collective", {"all_reduce"});
    const i64 ranks = s.integer("ranks", 2, 1 << 20);
    const std::string link = s.choice("link", {"nvlink"});
    const double busbw = s.number("busbw_gbps", 1e-3, 1e6) * 1e9;
    const std::string what = s.string("what");
    LinkIn l;
    l.p.link = link;
    const double per_gb = 1e9;  // one GB of bus traffic
    l.p.unit_us = per_gb / (hw.nvlink.value / 2.0) * 1e6;
    l.p.time_us = per_gb / busbw * 1e6;
    l.p.source = fmt::format("{} {} {} ranks, {:.0f} GB/s busbw ({})", path, coll, ranks, busbw / 1e9, what);
    l.gpu = h.gpu;
    c.link.push_back(std::move(l));
  });
}

// DeepEP normal-kernel table: each row's dispatch and combine, modelled by the all-to-all model
// on that GPU with one link at efficiency 1 and the other unlimited, give the time each link
// alone needs; the measurement is DeepEP's counted bytes over its GB/s.
void read_deepep_table(const toml::array& rows, Section& top, const std::string& path, const std::string& gpu,
                       const HardwareConfig& hw, Collected& c) {
  std::size_t i = 0;
  for (const toml::node& el : rows) {
    const std::string prefix = fmt::format("row[{}]", i++);
    const toml::table* tb = el.as_table();
    if (tb == nullptr) throw ConfigError(pos_of(el, path), prefix, "expected a table ([[row]])");
    Section s(*tb, prefix, path);
    s.choice("kind", {"intranode", "internode"});
    const i64 ep = s.integer("ep", 8, 4096);
    s.choice("link", {"nvlink", "rdma"});
    s.number("dispatch_gbps", 1e-3, 1e6);
    s.number("combine_gbps", 1e-3, 1e6);
    // The initial (February 2025) kernel: the DeepEP version DeepSeek's trace ran.
    const double disp = s.number("dispatch_gbps_initial", 1e-3, 1e6);
    const double comb = s.number("combine_gbps_initial", 1e-3, 1e6);
    const std::string src = s.string("source");
    s.finish();
    double unit[2][2] = {};  // [link nvlink, ib][dispatch, combine]
    double counted[2] = {};
    for (int only = 0; only < 2; ++only) {
      network::TopologySpec ts;
      ts.gpus = static_cast<int>(std::max<i64>(ep, 8));
      ts.gpus_per_node = 8;
      ts.nics_per_gpu = static_cast<int>(hw.nics_per_gpu);
      ts.nvlink_bidir = hw.nvlink.value;
      ts.nic = hw.nic.value;
      ts.net.fabric = network::Fabric::MultiPlaneFatTree;
      ts.net.nvlink_efficiency = only == 0 ? 1.0 : 1e6;
      ts.net.ib_efficiency = only == 1 ? 1.0 : 1e6;
      const network::Topology topo(ts);
      network::AllToAllSpec a;
      a.ep = static_cast<int>(ep);
      a.tokens = 4096;
      a.hidden = 7168;
      a.experts = 256;
      a.topk = 8;
      a.max_nodes = 4;
      a.balanced = true;
      a.full_rank = false;
      const auto r = network::simulate_alltoall(topo, a);
      unit[only][0] = r.dispatch.seconds * 1e6;
      unit[only][1] = r.combine.seconds * 1e6;
      counted[0] = r.dispatch.gbps * 1e9 * r.dispatch.seconds;  // DeepEP-counted bytes
      counted[1] = r.combine.gbps * 1e9 * r.combine.seconds;
    }
    const double meas[2] = {counted[0] / (disp * 1e9) * 1e6, counted[1] / (comb * 1e9) * 1e6};
    for (int ph = 0; ph < 2; ++ph)
      for (int only = 0; only < 2; ++only) {
        LinkIn l;
        l.p.link = only == 0 ? "nvlink" : "ib";
        l.p.unit_us = unit[only][ph];
        l.p.time_us = meas[ph];
        l.p.source = fmt::format("{} EP{} {} {:.0f} GB/s ({})", path, ep, ph == 0 ? "dispatch" : "combine",
                                 ph == 0 ? disp : comb, src);
        l.gpu = gpu;
        c.link.push_back(std::move(l));
      }
  }
  top.allow("row");
}

// Legacy tables of profiles/h800 (DeepGEMM, FlashMLA, DeepEP rows, [[row]] arrays).
void read_legacy_table(Section& top, const toml::table& root, const std::string& path, const HardwareConfig& target,
                       const std::function<HardwareConfig(const std::string&)>& hardware_of, Collected& c,
                       std::string& kind) {
  const std::string gpu = top.string("gpu");
  const std::string source = top.string("source");
  top.string_or("licence", "");
  top.string_or("date", "");
  top.string_or("software", "");
  const HardwareConfig hw = gpu == target.name ? target : hardware_of(gpu);
  top.allow("row");
  const toml::array* rows = root["row"].as_array();
  if (rows == nullptr || rows->empty()) top.fail("row", "expected [[row]] entries");
  const toml::table* first = (*rows)[0].as_table();
  if (first != nullptr && first->contains("ep")) {
    kind = "DeepEP table";
    read_deepep_table(*rows, top, path, gpu, hw, c);
    return;
  }
  std::size_t i = 0;
  for (const toml::node& el : *rows) {
    const std::string prefix = fmt::format("row[{}]", i++);
    const toml::table* tb = el.as_table();
    if (tb == nullptr) throw ConfigError(pos_of(el, path), prefix, "expected a table ([[row]])");
    Section s(*tb, prefix, path);
    if (s.has("layout")) {  // DeepGEMM
      kind = "DeepGEMM FP8 table";
      const std::string layout = s.choice("layout", {"dense", "contiguous", "masked"});
      GemmPoint p;
      p.groups = s.integer("groups", 1, 1 << 20);
      p.m = s.integer("m", 1, INT64_MAX / 4);
      p.n = s.integer("n", 1, INT64_MAX / 4);
      p.k = s.integer("k", 1, INT64_MAX / 4);
      const double tflops = s.number("tflops", 1e-6, 1e6);
      s.number("tflops_initial", 0, 1e6);
      const std::string src = s.string("source");
      s.finish();
      // Masked rows are decode kernels with M padded per group: not training shapes.
      if (layout == "masked") continue;
      p.sms = hw.sms;
      p.time_us = 2.0 * d(p.m) * d(p.n) * d(p.k) * d(p.groups) / (tflops * 1e12) * 1e6;
      p.group = path;
      p.source = fmt::format("DeepGEMM {} g={} m={} n={} k={} ({} TFLOPS; {})", layout, p.groups, p.m, p.n, p.k, tflops,
                             src);
      c.gemm.push_back(GemmIn{p, "fp8", gpu});
    } else {  // FlashMLA: decode kernels, recorded as an upper bound only
      kind = "FlashMLA table";
      s.string("kernel");
      const std::string bound = s.choice("bound", {"memory", "compute"});
      const std::string src = s.string("source");
      if (bound == "memory") {
        const double gbs = s.number("achieved_gbs", 1e-3, 1e9);
        c.mem_upper.push_back(fmt::format("{:.0f} GB/s ({})", gbs, src));
      } else {
        s.number("achieved_tflops", 1e-6, 1e6);
      }
      s.finish();
    }
  }
  (void)source;
}

// ---- kernel profiles -------------------------------------------------------------------------

std::int64_t profile_tokens(const Profile& p) {
  static const std::regex re("tokens=([0-9]+)");
  std::smatch m;
  if (std::regex_search(p.provenance.shapes, m, re)) return std::stoll(m[1].str());
  return 0;
}

// Width of a layer_norm kernel from its template arguments (Kernel_traits_base<W, ...>).
std::int64_t norm_width(const std::string& name) {
  static const std::regex re("Kernel_traits_base<([0-9]+)u");
  std::smatch m;
  if (std::regex_search(name, m, re)) return std::stoll(m[1].str());
  return 0;
}

}  // namespace

const std::vector<std::string>& trace_groups() {
  static const std::vector<std::string> g = {"dense_gemm", "grouped_gemm", "mlp_wgrad", "attention", "memory_bound"};
  return g;
}

std::string trace_group(const KernelRecord& k) {
  const std::string& c = k.op_class;
  if (c == "fp8_gemm" || c == "bf16_gemm") return k.phase == "mlp(W)" ? "mlp_wgrad" : "dense_gemm";
  if (c == "fp8_grouped_gemm") return k.phase == "mlp(W)" ? "mlp_wgrad" : "grouped_gemm";
  if (c == "attn_fwd" || c == "attn_bwd") return "attention";
  if (is_membound_class(c) || c == "other") return "memory_bound";
  return "";
}

double trace_kernel_bytes(const Profile& p, std::size_t index, std::int64_t tokens, std::string& kind) {
  const KernelRecord& k = p.kernels[index];
  kind.clear();
  if (k.shape.bytes > 0) {  // a profile that records the bytes itself (trainsim-profile)
    kind = k.op_class == "norm" ? "norm" : k.op_class == "quant_cast" ? "cast" : k.op_class == "permute" ? "permute"
                                                                                                          : "elementwise";
    return static_cast<double>(k.shape.bytes);
  }
  if (k.op_class == "norm" && k.name.find("layer_norm::ln_") != std::string::npos &&
      k.name.find("finalize") == std::string::npos && tokens > 0) {
    const double w = d(norm_width(k.name));
    if (w <= 0) return 0;
    const double T = d(tokens);
    // Bytes as the model's norm ops count them (model_math.cpp): forward reads x and writes y
    // (BF16), the backward moves twice that; a backward kernel is its own kind (norm_bwd).
    if (k.name.find("ln_fwd") != std::string::npos) {
      kind = "norm";
      return 2.0 * T * w * 2;
    }
    kind = "norm_bwd";
    return 4.0 * T * w * 2;
  }
  if (k.op_class == "quant_cast" && k.name.find("per_token_cast_to_fp8") != std::string::npos && k.shape.tokens > 0) {
    // Rows = the launch grid (one block per token row); row width = K of the FP8 GEMM this cast
    // feeds: the next GEMM with an inferred shape launched on the same stream in the same range.
    for (std::size_t j = index + 1; j < p.kernels.size(); ++j) {
      const KernelRecord& g = p.kernels[j];
      if (g.stream != k.stream) continue;
      if (g.phase != k.phase) break;
      if (g.op_class != "fp8_gemm" && g.op_class != "fp8_grouped_gemm") continue;
      if (g.shape.k <= 0 || g.shape.how.find("bwd_weight") != std::string::npos) return 0;
      kind = "cast";
      const double rows = d(k.shape.tokens), K = d(g.shape.k);
      return rows * K * (2.0 + 1.0 + 4.0 / 128.0);  // BF16 in, FP8 out, one fp32 scale per 128
    }
  }
  return 0;
}

std::int64_t kernel_sms(const KernelRecord& k) {
  std::int64_t sms = k.sms_available;
  const std::int64_t blocks = std::max<std::int64_t>(k.grid[0], 1) * std::max<std::int64_t>(k.grid[1], 1) *
                              std::max<std::int64_t>(k.grid[2], 1);
  if (k.grid[0] > 0 && blocks < sms) sms = blocks;
  return std::max<std::int64_t>(sms, 1);
}

double attention_flops(const Shape& s, std::int64_t v_head_dim, bool backward) {
  const double full = 2.0 * d(s.m) * d(s.n) * d(std::max<std::int64_t>(s.groups, 1)) * d(s.k + v_head_dim);
  return (backward ? 2.0 : 1.0) * full / 2.0;
}

std::vector<std::vector<std::size_t>> attention_bwd_ops(const Profile& p) {
  std::map<std::int64_t, std::vector<std::size_t>> open;  // per stream, the op being collected
  std::vector<std::vector<std::size_t>> ops;
  for (std::size_t i = 0; i < p.kernels.size(); ++i) {
    const auto& k = p.kernels[i];
    if (k.op_class != "attn_bwd") continue;
    auto& cur = open[k.stream];
    if (k.name.find("Preprocess") != std::string::npos && !cur.empty()) {
      ops.push_back(std::move(cur));
      cur.clear();
    }
    cur.push_back(i);
  }
  for (auto& [s, cur] : open)
    if (!cur.empty()) ops.push_back(std::move(cur));
  std::sort(ops.begin(), ops.end());
  return ops;
}

namespace {

void read_profile_points(const std::string& path, const CalibrateInputs& in, Collected& c, Calibration& cal) {
  const Profile p = read_profile(path);
  cal.inputs.push_back(fmt::format("{} (kernel profile, {} kernels; {})", path, p.kernels.size(), p.provenance.source));
  c.profile_names.push_back(path);
  const std::string gpu = p.provenance.gpu_key.empty() ? in.hardware.name : p.provenance.gpu_key;
  if (c.gap_gpu.empty()) c.gap_gpu = gpu;
  const std::int64_t v_head_dim =
      in.model ? (in.model->attention.v_head_dim > 0 ? in.model->attention.v_head_dim : in.model->attention.head_dim) : 0;
  const std::int64_t tokens = profile_tokens(p);
  auto excluded = [&](const KernelRecord& k) { return in.exclude_trace.count(trace_group(k)) > 0; };
  std::map<std::int64_t, const KernelRecord*> last;  // per stream
  for (std::size_t i = 0; i < p.kernels.size(); ++i) {
    const KernelRecord& k = p.kernels[i];
    if (auto it = last.find(k.stream); it != last.end())
      c.gaps.push_back(GapSample{it->second->ts_us + it->second->dur_us, k.launch_ts_us, k.ts_us});
    last[k.stream] = &k;
    if (excluded(k) || !(k.dur_us > 0)) continue;
    if (is_membound_class(k.op_class)) {
      std::string kind;
      const double bytes = trace_kernel_bytes(p, i, tokens, kind);
      if (bytes > 0) {
        MemIn m;
        m.p = MemPoint{bytes, k.dur_us, kind, fmt::format("{} kernel #{} ({} {})", path, i, k.phase, kind), path};
        m.gpu = gpu;
        c.mem.push_back(std::move(m));
      }
    }
    const bool dense = k.op_class == "fp8_gemm";
    if ((k.op_class == "fp8_grouped_gemm" || dense) && k.shape.m > 0 && k.shape.n > 0 && k.shape.k > 0) {
      GemmPoint g;
      g.m = k.shape.m, g.n = k.shape.n, g.k = k.shape.k, g.groups = std::max<std::int64_t>(k.shape.groups, 1);
      g.sms = kernel_sms(k);
      g.time_us = k.dur_us;
      // Weight-gradient kernels: the shape rule names the op's pass (attn(W): "... bwd_weight").
      g.wgrad = k.shape.how.find("bwd_weight") != std::string::npos;
      g.source = fmt::format("{} kernel #{} ({}, {} SMs{})", path, i, k.phase, g.sms, g.wgrad ? ", wgrad" : "");
      g.group = path;
      c.gemm.push_back(GemmIn{g, "fp8", gpu});
    }
    if (k.op_class == "attn_fwd" && k.shape.m > 0) {
      if (v_head_dim <= 0) throw UsageError("calibrate: the profile has attention kernels; give --model for the value head dim");
      AttnIn a;
      a.p.shape = AttnShape{1, k.shape.m, k.shape.n, std::max<std::int64_t>(k.shape.groups, 1), k.shape.k, v_head_dim, true};
      a.p.sms = kernel_sms(k);
      a.p.time_us = k.dur_us;
      a.p.source = fmt::format("{} kernel #{} ({})", path, i, k.phase);
      a.p.group = path;
      a.gpu = gpu;
      c.replay_fwd.push_back(a.p);
      c.attn.push_back(std::move(a));
    }
  }
  if (in.exclude_trace.count("attention") == 0) {
    for (const auto& op : attention_bwd_ops(p)) {
      double t = 0;
      const KernelRecord* main = nullptr;
      for (std::size_t i : op) {
        t += p.kernels[i].dur_us;
        if (main == nullptr || p.kernels[i].dur_us > main->dur_us) main = &p.kernels[i];
      }
      if (main->shape.m <= 0) continue;
      if (v_head_dim <= 0) throw UsageError("calibrate: the profile has attention kernels; give --model for the value head dim");
      AttnIn a;
      a.bwd = true;
      a.p.shape = AttnShape{1, main->shape.m, main->shape.n, std::max<std::int64_t>(main->shape.groups, 1), main->shape.k,
                            v_head_dim, true};
      a.p.sms = kernel_sms(*main);
      a.p.time_us = t;
      a.p.source = fmt::format("{} kernels #{}..#{} ({} kernels, {})", path, op.front(), op.back(), op.size(), main->phase);
      a.p.group = path;
      a.gpu = gpu;
      c.replay_bwd.push_back(a.p);
      c.attn.push_back(std::move(a));
    }
  }
}

// ---- measured maximum matmul throughput (profiles/mamf.toml) ----------------------------------

struct Mamf {
  double flops = 0;        // FLOP/s, the best shape's measured throughput
  std::string best_shape;  // MxNxK as the source gives it
};

struct MamfTable {
  std::map<std::pair<std::string, std::string>, Mamf> by;  // (gpu, dtype)
  std::string source, commit, licence;
  const Mamf* find(const std::string& gpu, const std::string& dtype) const {
    const auto it = by.find({gpu, dtype});
    return it == by.end() ? nullptr : &it->second;
  }
};

// Reads and checks the table: every gpu a hardware profile, one row per (gpu, dtype), no figure
// above the GPU's dense peak, and `efficiency` (the source's MAMF / spec column) equal to
// mamf / peak within the source's rounding (a transcription check).
MamfTable read_mamf_table(const std::string& path, const std::function<HardwareConfig(const std::string&)>& hardware_of) {
  const toml::table root = parse_toml_file(path);
  Section top(root, "", path);
  top.choice("kind", {"mamf"});
  MamfTable t;
  t.source = top.string("source");
  t.commit = top.string("commit");
  top.string("date");
  top.string("software");
  t.licence = top.string("licence");
  top.string_or("notes", "");
  for_rows(top, root, path, [&](Section& s, const std::string& prefix) {
    const std::string gpu = s.string("gpu");
    const std::string dt = s.choice("dtype", {"bf16", "fp8"});
    Mamf m;
    m.flops = s.quantity("mamf", Dim::FlopRate, 1e9, 1e18);
    const double eff = s.number("efficiency", 1e-3, 1.0);
    m.best_shape = s.string("best_shape");
    s.string("torch");
    s.string_or("notes", "");
    const HardwareConfig hw = hardware_of(gpu);
    const double peak = hw.peak_flops(dt);
    if (!(peak > 0)) s.fail("dtype", fmt::format("{}: {} has no dense {} peak", prefix, gpu, dt));
    if (m.flops > peak) s.fail("mamf", fmt::format("{}: {:.1f} TFLOPS is above {}'s dense {} peak of {:.0f} TFLOPS", prefix,
                                                   m.flops / 1e12, gpu, dt, peak / 1e12));
    if (std::abs(m.flops / peak - eff) > 0.0015)
      s.fail("efficiency", fmt::format("{}: efficiency {} but mamf / peak = {:.1f} / {:.0f} = {:.4f}", prefix, eff,
                                       m.flops / 1e12, peak / 1e12, m.flops / peak));
    if (!t.by.emplace(std::make_pair(gpu, dt), m).second)
      s.fail("gpu", fmt::format("{}: a second row for {} {}", prefix, gpu, dt));
  });
  top.finish();
  return t;
}

// ---- relating a measurement's GPU to the target ----------------------------------------------

enum class Rel { Target, SameDie, Other };

struct Ctx {
  const CalibrateInputs& in;
  std::map<std::string, HardwareConfig> hw;  // cache
  MamfTable mamf;                            // empty without in.mamf_path
  bool mamf_used = false;                    // a transferred class used it (listed in the inputs)
  const HardwareConfig& of(const std::string& name) {
    if (name == in.hardware.name) return in.hardware;
    auto it = hw.find(name);
    if (it == hw.end()) it = hw.emplace(name, in.hardware_of(name)).first;
    return it->second;
  }
  Rel compute_rel(const std::string& gpu) {
    if (gpu == in.hardware.name) return Rel::Target;
    return transfer_kind(of(gpu), in.hardware) == TransferKind::SameDie ? Rel::SameDie : Rel::Other;
  }
  // Memory-bound kernels: the same die and the same HBM bandwidth.
  Rel memory_rel(const std::string& gpu) {
    if (gpu == in.hardware.name) return Rel::Target;
    const HardwareConfig& h = of(gpu);
    const bool same_hbm = std::abs(h.hbm_bandwidth.value - in.hardware.hbm_bandwidth.value) <=
                          0.01 * in.hardware.hbm_bandwidth.value;
    return same_hbm && h.sms == in.hardware.sms ? Rel::SameDie : Rel::Other;
  }
};

// Keeps the points measured on the target or a same-die GPU; if there are none, the points of
// the first GPU named (and its same-die GPUs), which are then transferred. Returns the GPU the
// kept points stand for ("" = none) and whether they need the transfer rule.
template <class T, class RelFn>
std::vector<T> select_points(const std::vector<T>& all, RelFn rel, Ctx& ctx, std::string& measured_on, bool& transfer) {
  std::vector<T> near, far;
  for (const auto& p : all) (rel(p.gpu) == Rel::Other ? far : near).push_back(p);
  transfer = false;
  measured_on.clear();
  if (!near.empty()) {
    measured_on = near.front().gpu;
    for (const auto& p : near)
      if (p.gpu == ctx.in.hardware.name) measured_on = p.gpu;
    return near;
  }
  if (far.empty()) return {};
  transfer = true;
  // The nearest GPU measured: the same SM count (the same die family) first, then the closest
  // per-SM BF16 rate.
  const HardwareConfig& tgt = ctx.in.hardware;
  double best = 1e300;
  for (const auto& p : far) {
    const HardwareConfig& h = ctx.of(p.gpu);
    const double score = (h.sms == tgt.sms ? 0.0 : 1.0) +
                         std::abs(std::log((h.bf16.value / d(h.sms)) / (tgt.bf16.value / d(tgt.sms))));
    if (score < best - 1e-12) {
      best = score;
      measured_on = p.gpu;
    }
  }
  std::vector<T> keep;
  const HardwareConfig& src = ctx.of(measured_on);
  for (const auto& p : far)
    if (p.gpu == measured_on || transfer_kind(ctx.of(p.gpu), src) == TransferKind::SameDie) keep.push_back(p);
  return keep;
}

std::string describe_groups(const std::map<std::string, int>& n) {
  std::vector<std::string> parts;
  for (const auto& [g, k] : n) parts.push_back(fmt::format("{} point(s) from {}", k, g));
  return fmt::format("{}", fmt::join(parts, "; "));
}

HeldOut held(const std::string& method, const std::vector<double>& rel) { return HeldOut{method, summarize(rel)}; }

// ---- classes ---------------------------------------------------------------------------------

void fit_gemm_class(const std::string& dtype, const std::vector<GemmIn>& all, Ctx& ctx, Calibration& cal,
                    CalibrateResult& r) {
  std::vector<GemmIn> dt;
  for (const auto& g : all)
    if (g.dtype == dtype) dt.push_back(g);
  std::string on;
  bool transfer = false;
  const auto sel = select_points(dt, [&](const std::string& gpu) { return ctx.compute_rel(gpu); }, ctx, on, transfer);
  if (sel.empty()) return;
  const HardwareConfig& tgt = ctx.in.hardware;
  const HardwareConfig& src = ctx.of(on);
  const auto lacks = [&](const HardwareConfig& h) { return dtype == "fp8" ? h.fp8.value <= 0 : h.peak_flops(dtype) <= 0; };
  if (lacks(tgt) || (transfer && lacks(src))) {
    r.notes.push_back(fmt::format("gemm_{}: {} has no {} tensor-core rate: no {} GEMM class ({} ops use the BF16 GEMM)",
                                  dtype, tgt.name, dtype, dtype, dtype));
    return;
  }
  std::vector<GemmPoint> pts;
  std::map<std::string, int> groups;
  for (const auto& g : sel) {
    pts.push_back(g.p);
    ++groups[g.p.group];
  }
  const double ib = dtype_bytes(dtype);
  const GemmFit gf = fit_gemm(pts, ib);
  GemmClass gc;
  gc.params = gf.params;
  gc.fit.present = true;
  gc.fit.residuals = gf.residuals;
  gc.fit.measured_on = on;
  auto fit = [ib](const std::vector<GemmPoint>& tr) { return fit_gemm(tr, ib); };
  auto predict = [ib](const GemmFit& f, const GemmPoint& p) {
    return gemm_time_us(f.params, p.m, p.n, p.k, p.groups, p.sms, ib) * (p.wgrad ? f.wgrad_factor : 1.0);
  };
  gc.fit.heldout.push_back(held("5-fold", kfold_rel(pts, 5, fit, predict)));
  // Extrapolation to large shapes: train on the smaller 80% by FLOPs, predict the largest 20%.
  std::vector<double> fl;
  for (const auto& p : pts) fl.push_back(d(p.m) * d(p.n) * d(p.k) * d(p.groups));
  std::vector<double> sorted = fl;
  std::sort(sorted.begin(), sorted.end());
  const double cut = sorted[sorted.size() * 8 / 10];
  std::vector<GemmPoint> tagged = pts;
  const auto largest = holdout_rel(
      tagged, [&](const GemmPoint& p) { return d(p.m) * d(p.n) * d(p.k) * d(p.groups) >= cut; }, fit, predict);
  if (!largest.empty()) gc.fit.heldout.push_back(held("largest 20% by FLOPs", largest));
  if (groups.size() >= 2)
    for (const auto& group : groups) {
      const std::string& g = group.first;  // a named copy: clang 14 cannot capture a structured binding
      const auto rel = holdout_rel(pts, [&](const GemmPoint& p) { return p.group == g; }, fit, predict);
      if (!rel.empty()) gc.fit.heldout.push_back(held(g + " predicted by the other sources", rel));
    }
  gc.fit.source = describe_groups(groups) + fmt::format(" ({} SMs each unless the point says)", src.sms);
  if (transfer) {
    // Compute terms: the per-SM ratio of the two GPUs' measured maximum matmul throughput where
    // both are measured (profiles/mamf.toml), else of their spec peaks. Then the target's
    // measured maximum caps the curve: the fit's large-shape extrapolation (its asymptote
    // 2 tile_m tile_n sms / a) is not measured and can exceed what any shape reaches.
    const Mamf* ms = ctx.mamf.find(src.name, dtype);
    const Mamf* mt = ctx.mamf.find(tgt.name, dtype);
    const double bw = tgt.hbm_bandwidth.value / src.hbm_bandwidth.value;
    double r_sm = 0;
    std::string ratio;
    if (ms != nullptr && mt != nullptr) {
      r_sm = (mt->flops / d(tgt.sms)) / (ms->flops / d(src.sms));
      ratio = fmt::format("per-SM measured {} MAMF ratio {:.4g} ({} {:.1f} TFLOPS on {} SMs vs {} {:.1f} on {}; "
                          "profiles/mamf.toml, stas00/ml-engineering@{:.7})",
                          dtype, r_sm, tgt.name, mt->flops / 1e12, tgt.sms, src.name, ms->flops / 1e12, src.sms,
                          ctx.mamf.commit);
    } else {
      r_sm = (tgt.peak_flops(dtype) / d(tgt.sms)) / (src.peak_flops(dtype) / d(src.sms));
      ratio = fmt::format("per-SM {} spec peak ratio {:.3g} ({} {:.0f} TFLOPS on {} SMs vs {} {:.0f} on {}; no measured "
                          "MAMF for {})",
                          dtype, r_sm, tgt.name, tgt.peak_flops(dtype) / 1e12, tgt.sms, src.name,
                          src.peak_flops(dtype) / 1e12, src.sms, ms == nullptr ? src.name : tgt.name);
    }
    gc.params.a_us /= r_sm;
    gc.params.b_us /= r_sm;
    gc.params.c_us_per_byte /= bw;
    std::string cap = "; no measured MAMF for " + tgt.name + ": no throughput ceiling";
    if (mt != nullptr) {
      gc.params.ceiling_flops_per_sm_us = mt->flops / d(tgt.sms) / 1e6;
      const double asym = 2.0 * d(gc.params.tile_m * gc.params.tile_n) * d(tgt.sms) / gc.params.a_us * 1e6;
      cap = fmt::format("; throughput capped at {}'s measured {} MAMF {:.1f} TFLOPS (best shape {}; the transferred "
                        "curve alone tends to {:.0f} TFLOPS, {:.0f}% of spec, at large shapes)",
                        tgt.name, dtype, mt->flops / 1e12, mt->best_shape, asym / 1e12,
                        100.0 * asym / tgt.peak_flops(dtype));
    }
    if (ms != nullptr || mt != nullptr) ctx.mamf_used = true;
    gc.fit.basis = Basis::Transferred;
    gc.fit.transfer = fmt::format(
        "cross-architecture: K-loop and per-wave terms / {}, waves on {}'s {} SMs, byte term / HBM ratio {:.3g}{}; "
        "held-out figures are {}'s",
        ratio, tgt.name, tgt.sms, bw, cap, src.name);
  } else if (on != tgt.name) {
    gc.fit.basis = Basis::SameDie;
    gc.fit.transfer = fmt::format("measured on {}, the same die as {} ({} SMs, equal tensor peaks): parameters kept", on,
                                  tgt.name, tgt.sms);
  }
  if (!transfer) {
    // A measured curve is measured only up to its largest shapes; beyond them its asymptote
    // (2 tile_m tile_n sms / a) is an extrapolation. Cap it at the best throughput measured on
    // this die: the target's MAMF, or the fastest of the class's own points if one is faster
    // (DeepGEMM's FP8 on H800 beats cuBLAS's MAMF on H100).
    if (const Mamf* mt = ctx.mamf.find(tgt.name, dtype); mt != nullptr) {
      double best_per_sm = 0;  // FLOP/s per SM
      for (const auto& p : pts) {
        const double sms = d(p.sms > 0 ? p.sms : src.sms);
        if (p.time_us > 0 && !p.wgrad)
          best_per_sm = std::max(best_per_sm, 2.0 * d(p.m) * d(p.n) * d(p.k) * d(p.groups) / (p.time_us * 1e-6) / sms);
      }
      const double mamf_per_sm = mt->flops / d(tgt.sms);
      const double cap = std::max(mamf_per_sm, best_per_sm);
      gc.params.ceiling_flops_per_sm_us = cap / 1e6;
      ctx.mamf_used = true;
      const std::string note = fmt::format(
          "throughput capped at {:.1f} TFLOPS on {} SMs beyond the measured shapes: {}", cap * d(tgt.sms) / 1e12, tgt.sms,
          cap > mamf_per_sm ? fmt::format("the fastest measured point (above {}'s {} MAMF {:.1f})", tgt.name, dtype,
                                          mt->flops / 1e12)
                            : fmt::format("{}'s measured {} MAMF (profiles/mamf.toml)", tgt.name, dtype));
      gc.fit.transfer = gc.fit.transfer.empty() ? note : gc.fit.transfer + "; " + note;
    }
  }
  for (std::size_t i = 0; i < pts.size(); ++i) r.points.push_back(PointResidual{"gemm_" + dtype, pts[i].source, pts[i].time_us, gf.rel[i]});
  if (dtype == "fp8") {
    i64 nw = 0;
    for (const auto& p : pts) nw += p.wgrad;
    cal.gemm_fp8_wgrad_factor = gf.wgrad_factor;
    ClassFit& w = cal.gemm_fp8_wgrad_fit;
    w.present = true;
    w.residuals = gf.wgrad_residuals;
    w.measured_on = on;
    w.basis = gc.fit.basis;
    w.transfer = gc.fit.basis == Basis::Measured ? "" : gc.fit.transfer;
    if (nw == 0) {
      w.source = "no weight-gradient GEMM kernel with a shape in the inputs (factor 1: dW GEMMs cost as other GEMMs)";
    } else {
      w.source = fmt::format("{} FP8 weight-gradient GEMM kernels (shape rule names pass bwd_weight: attn(W)) of the "
                             "profiles; factor = least squares of relative error with the [gemm_fp8] curve fixed",
                             nw);
      w.notes = "a different kernel (fp8_dptp128c_acc: dW = X^T dY, K = tokens, 128x1 rescaled tiles); applied to FP8 "
                "model ops with pass bwd_weight, dense and grouped (assumption for grouped: no grouped wgrad kernel has a "
                "shape in the trace); the [gemm_fp8] curve is fitted to the other points only";
      std::vector<GemmPoint> wp;
      for (const auto& p : pts)
        if (p.wgrad) wp.push_back(p);
      // Held out: the factor from the other wgrad kernels (the curve refitted without each fold).
      w.heldout.push_back(held("5-fold", [&] {
        std::vector<double> rel;
        const auto all_rel = kfold_rel(pts, 5, fit, predict);
        for (std::size_t i = 0; i < pts.size(); ++i)
          if (pts[i].wgrad && i < all_rel.size()) rel.push_back(all_rel[i]);
        return rel;
      }()));
    }
  }
  cal.gemm[dtype] = std::move(gc);
}

void fit_attention_class(bool bwd, const std::vector<AttnIn>& all, Ctx& ctx, Calibration& cal, CalibrateResult& r) {
  std::vector<AttnIn> pass;
  for (const auto& a : all)
    if (a.bwd == bwd) pass.push_back(a);
  std::string on;
  bool transfer = false;
  const auto sel = select_points(pass, [&](const std::string& gpu) { return ctx.compute_rel(gpu); }, ctx, on, transfer);
  const char* name = bwd ? "attention_bwd" : "attention_fwd";
  if (sel.empty()) {
    // Nothing measured (a CUPTI profile: trainsim-profile does not measure attention). The class
    // is left out of the file; the cost model then carries it over from profiles/h800 by the
    // transfer rules and says so (cost_model.cpp, load_cost_model).
    r.notes.push_back(fmt::format("no {} measurement in the inputs: the class is left out of the calibration, and "
                                  "the cost model transfers it by rule from the h800 calibration",
                                  name));
    return;
  }
  std::vector<AttnPoint> pts;
  std::map<std::string, int> groups;
  for (const auto& a : sel) {
    pts.push_back(a.p);
    ++groups[a.p.group];
  }
  const AttnFit af = fit_attention(pts, bwd);
  AttnParams params = af.params;
  ClassFit f;
  f.present = true;
  f.residuals = af.residuals;
  f.measured_on = on;
  auto fit = [bwd](const std::vector<AttnPoint>& tr) { return fit_attention(tr, bwd); };
  auto predict = [bwd](const AttnFit& m, const AttnPoint& p) { return attention_time_us(m.params, p.shape, bwd, p.sms); };
  if (pts.size() >= 8) f.heldout.push_back(held("4-fold", kfold_rel(pts, 4, fit, predict)));
  if (groups.size() >= 2)
    for (const auto& group : groups) {
      const std::string& g = group.first;  // a named copy: clang 14 cannot capture a structured binding
      const auto rel = holdout_rel(pts, [&](const AttnPoint& p) { return p.group == g; }, fit, predict);
      if (!rel.empty()) f.heldout.push_back(held(g + " predicted by the other sources", rel));
    }
  // Shape series (causal, head dim): predicted by the other series.
  std::map<std::pair<bool, i64>, int> series;
  for (const auto& p : pts) ++series[{p.shape.causal, p.shape.d_qk + p.shape.d_v}];
  if (series.size() >= 3 && af.params.model == "waves") {
    std::vector<double> lo;
    for (const auto& entry : series) {
      const auto& key = entry.first;  // clang 14 cannot capture a structured binding
      const auto rel = holdout_rel(
          pts, [&](const AttnPoint& p) { return p.shape.causal == key.first && p.shape.d_qk + p.shape.d_v == key.second; },
          fit, predict);
      lo.insert(lo.end(), rel.begin(), rel.end());
    }
    f.heldout.push_back(held("leave-one-series-out (mask, head dim)", lo));
  }
  f.source = describe_groups(groups);
  const std::string model_note =
      params.model == "rate"
          ? "rate model: the points have fewer than 3 shapes, so the scaling with sequence and heads is by FLOPs "
            "(assumption, not fitted)"
          : "wave model fitted over sequence lengths, head dims and masks";
  f.notes = f.notes.empty() ? model_note : model_note + "; " + f.notes;
  const HardwareConfig& tgt = ctx.in.hardware;
  const HardwareConfig& src = ctx.of(on);
  if (transfer) {
    const double r_sm = (tgt.bf16.value / d(tgt.sms)) / (src.bf16.value / d(src.sms));
    params.c0_us /= r_sm;
    params.c1_us /= r_sm;
    params.c2_us /= r_sm;
    params.flops_per_sm_us *= r_sm;
    f.basis = Basis::Transferred;
    f.transfer = fmt::format("cross-architecture roofline: per-wave costs / per-SM BF16 peak ratio {:.3g} ({} vs {}), waves "
                             "on {}'s {} SMs; held-out figures are {}'s",
                             r_sm, tgt.name, src.name, tgt.name, tgt.sms, src.name);
  } else if (on != tgt.name) {
    f.basis = Basis::SameDie;
    f.transfer = fmt::format("measured on {}, the same die as {}: parameters kept", on, tgt.name);
  }
  for (std::size_t i = 0; i < pts.size(); ++i) r.points.push_back(PointResidual{name, pts[i].source, pts[i].time_us, af.rel[i]});
  (bwd ? cal.attn_bwd : cal.attn_fwd) = params;
  (bwd ? cal.attn_bwd_fit : cal.attn_fwd_fit) = std::move(f);
}

MemClass fit_mem_points(const std::vector<MemPoint>& pts, const std::string& kind, const std::string& on,
                        CalibrateResult& r) {
  const MemFit mf = fit_membound(pts);
  MemClass m;
  m.bytes_per_us = mf.bytes_per_us;
  m.overhead_us = mf.overhead_us;
  m.fit.present = true;
  m.fit.residuals = mf.residuals;
  m.fit.measured_on = on;
  auto fit = [](const std::vector<MemPoint>& tr) { return fit_membound(tr); };
  auto predict = [](const MemFit& f, const MemPoint& p) { return f.overhead_us + p.bytes / f.bytes_per_us; };
  if (pts.size() >= 5) m.fit.heldout.push_back(held("5-fold", kfold_rel(pts, 5, fit, predict)));
  std::map<std::string, int> groups;
  for (const auto& p : pts) ++groups[p.group];
  m.fit.source = describe_groups(groups);
  const std::string cls = kind == "default" ? "memory_bound" : "memory_bound." + kind;
  for (std::size_t i = 0; i < pts.size(); ++i) r.points.push_back(PointResidual{cls, pts[i].source, pts[i].time_us, mf.rel[i]});
  return m;
}

bool from_profile(const MemPoint& p) { return p.group.size() > 14 && p.group.rfind(".profile.jsonl") == p.group.size() - 14; }

// Memory-bound kernels differ by implementation far more than GEMMs do (a Triton RMSNorm and a
// training framework's LayerNorm kernel move the same bytes at 3x different speeds), so the
// points of a kind are not pooled across sources. Per kind the best-ranked points are fitted:
// measured on the GPU itself before a same-die GPU, and at equal GPU a kernel profile (the
// workload's own kernels) before a table; where a lower-ranked source also has the kind, its
// fit predicting the fitted points is recorded as a held-out figure.
void fit_memory_classes(const Collected& c, Ctx& ctx, Calibration& cal, CalibrateResult& r) {
  std::string on;
  bool transfer = false;
  const auto sel = select_points(c.mem, [&](const std::string& gpu) { return ctx.memory_rel(gpu); }, ctx, on, transfer);
  if (sel.empty()) throw DataError(SourcePos{}, "calibrate: no memory-bound kernel measurement with byte counts in the inputs");
  // The GPU the ranking refers to: the target, or the GPU the points are transferred from.
  const std::string ref = transfer ? on : ctx.in.hardware.name;
  auto rank = [&](const MemIn& m) { return (m.gpu == ref ? 0 : 2) + (from_profile(m.p) ? 0 : 1); };
  std::map<std::string, std::map<int, std::vector<MemPoint>>> by_kind;  // kind -> rank -> points
  std::map<int, std::vector<MemPoint>> pooled;
  std::map<int, std::string> rank_gpu;
  for (const auto& m : sel) {
    by_kind[m.p.kind][rank(m)].push_back(m.p);
    pooled[rank(m)].push_back(m.p);
    rank_gpu.emplace(rank(m), m.gpu);
  }
  const HardwareConfig& tgt = ctx.in.hardware;
  const HardwareConfig& src = ctx.of(on);
  const double bw = tgt.hbm_bandwidth.value / src.hbm_bandwidth.value;
  auto finish = [&](MemClass m, const std::string& measured_on) {
    m.fit.measured_on = measured_on;
    if (transfer) {
      m.bytes_per_us *= bw;
      m.fit.basis = Basis::Transferred;
      m.fit.transfer = fmt::format("bandwidth x HBM ratio {:.3g} ({} {:.3g} TB/s vs {} {:.3g} TB/s), per-kernel overhead kept; "
                                   "held-out figures are {}'s",
                                   bw, tgt.name, tgt.hbm_bandwidth.value / 1e12, src.name, src.hbm_bandwidth.value / 1e12,
                                   measured_on);
    } else if (measured_on != tgt.name) {
      m.fit.basis = Basis::SameDie;
      m.fit.transfer =
          fmt::format("measured on {} (same die and HBM bandwidth as {}): parameters kept", measured_on, tgt.name);
    }
    return m;
  };
  auto predict = [](const MemFit& f, const MemPoint& p) { return f.overhead_us + p.bytes / f.bytes_per_us; };
  // The best-ranked points, with the other ranks' fits predicting them.
  auto fit_ranked = [&](const std::map<int, std::vector<MemPoint>>& ranks, const std::string& kind) {
    const int best = ranks.begin()->first;
    const auto& use = ranks.begin()->second;
    MemClass m = finish(fit_mem_points(use, kind, on, r), rank_gpu.at(best));
    for (auto it = std::next(ranks.begin()); it != ranks.end(); ++it) {
      if (it->second.size() < 2) continue;
      try {
        const MemFit of = fit_membound(it->second);
        std::vector<double> rel;
        for (const auto& p : use) rel.push_back(predict(of, p) / p.time_us - 1.0);
        m.fit.heldout.push_back(held(fmt::format("predicted by the fit to {}'s {} ({} points, not fitted)",
                                                 rank_gpu.at(it->first), it->first % 2 ? "tables" : "kernel profiles",
                                                 it->second.size()),
                                     rel));
      } catch (const DataError&) {
      }
    }
    const std::string what = best % 2 ? "measurement tables" : "kernel profiles";
    m.fit.notes = fmt::format("fitted to {}'s {}{}", rank_gpu.at(best), what,
                              ranks.size() > 1 ? " (other sources' points of this kind are not pooled: another kernel "
                                                 "implementation; their fits' predictions are the last held-out figures)"
                                               : "");
    return m;
  };
  MemClass def = fit_ranked(pooled, "default");
  def.fit.notes = "every kind pooled; the cost of a memory-bound op of a kind without its own fit; " + def.fit.notes;
  if (!c.mem_upper.empty())
    def.fit.notes += fmt::format("; for comparison, the best a tuned decode kernel achieved (not fitted): {}",
                                 fmt::join(c.mem_upper, "; "));
  cal.mem["default"] = def;
  for (const auto& [kind, ranks] : by_kind) {
    if (ranks.begin()->second.size() < 3) {
      r.notes.push_back(fmt::format("memory_bound.{}: only {} point(s): costed by the pooled fit", kind,
                                    ranks.begin()->second.size()));
      continue;
    }
    try {
      cal.mem[kind] = fit_ranked(ranks, kind);
    } catch (const DataError& e) {
      r.notes.push_back(fmt::format("memory_bound.{}: {}: costed by the pooled fit", kind, e.what()));
    }
  }
}

void fit_link_classes(const Collected& c, Ctx& ctx, Calibration& cal, CalibrateResult& r) {
  const HardwareConfig& tgt = ctx.in.hardware;
  // A DeepEP row gives one point per link with the same source: the row is bound by the link
  // whose modelled time at the fitted efficiencies is longer. Per GPU the points were measured
  // on, alternate: assign rows, refit both efficiencies, until the assignment is stable.
  std::vector<std::string> gpus;
  for (const auto& l : c.link)
    if (std::find(gpus.begin(), gpus.end(), l.gpu) == gpus.end()) gpus.push_back(l.gpu);
  std::map<std::string, std::map<std::string, std::vector<LinkPoint>>> bound_on;  // gpu -> link -> points
  for (const auto& gpu : gpus) {
    std::map<std::string, std::map<std::string, const LinkIn*>> by_source;  // source -> link -> point
    for (const auto& l : c.link)
      if (l.gpu == gpu) by_source[l.p.source][l.p.link] = &l;
    std::map<std::string, double> eff = {{"nvlink", 1.0}, {"ib", 1.0}};
    std::map<std::string, std::vector<LinkPoint>> bound;
    for (int it = 0; it < 50; ++it) {
      std::map<std::string, std::vector<LinkPoint>> next;
      for (const auto& [src, links] : by_source) {
        const LinkIn* best = nullptr;
        for (const auto& [link, l] : links)
          if (best == nullptr || l->p.unit_us / eff[link] > best->p.unit_us / eff[best->p.link]) best = l;
        next[best->p.link].push_back(best->p);
      }
      for (auto& [link, pts] : next) eff[link] = fit_efficiency(pts).efficiency;
      const bool stable = next.size() == bound.size() &&
                          std::equal(next.begin(), next.end(), bound.begin(), [](const auto& a, const auto& b) {
                            return a.first == b.first && a.second.size() == b.second.size();
                          });
      bound = std::move(next);
      if (stable && it > 0) break;
    }
    bound_on[gpu] = std::move(bound);
  }
  // This GPU's own measurement of the link, else the one whose nominal link bandwidth is
  // closest to this GPU's (the same link generation).
  auto gpu_for = [&](const std::string& link) {
    if (bound_on.count(tgt.name) && bound_on[tgt.name].count(link)) return tgt.name;
    std::string best;
    double best_d = 1e300;
    const double mine = link == "nvlink" ? tgt.nvlink.value : tgt.nic.value;
    for (const auto& g : gpus) {
      if (!bound_on[g].count(link)) continue;
      const HardwareConfig& h = ctx.of(g);
      const double dist = std::abs(std::log((link == "nvlink" ? h.nvlink.value : h.nic.value) / mine));
      if (dist < best_d - 1e-12) {
        best_d = dist;
        best = g;
      }
    }
    return best;
  };
  const std::string on_nv = gpu_for("nvlink"), on_ib = gpu_for("ib");
  for (const char* link : {"nvlink", "ib"}) {
    const std::string on = std::string(link) == "nvlink" ? on_nv : on_ib;
    if (on.empty()) continue;
    const auto& bound = bound_on[on];
    const auto it = bound.find(link);
    if (it == bound.end() || it->second.empty()) {
      r.notes.push_back(fmt::format("network.{}: no measurement of {} is bound by this link: not calibrated", link, on));
      continue;
    }
    const std::vector<LinkPoint>& pts = it->second;
    const EfficiencyFit ef = fit_efficiency(pts);
    LinkClass lc;
    lc.efficiency = std::min(1.0, ef.efficiency);
    lc.fit.present = true;
    lc.fit.measured_on = on;
    lc.fit.residuals = ef.residuals;
    if (pts.size() >= 2) {
      auto fit = [](const std::vector<LinkPoint>& tr) { return fit_efficiency(tr); };
      auto predict = [](const EfficiencyFit& f, const LinkPoint& p) { return p.unit_us / f.efficiency; };
      lc.fit.heldout.push_back(held("leave-one-out", kfold_rel(pts, static_cast<int>(pts.size()), fit, predict)));
    }
    std::vector<std::string> srcs;
    for (const auto& b : pts) srcs.push_back(b.source);
    lc.fit.source = fmt::format("{} measurement(s) bound by this link (the model decides which): {}", pts.size(),
                                fmt::join(srcs, "; "));
    if (on != tgt.name) {
      lc.fit.basis = Basis::Transferred;
      const HardwareConfig& src = ctx.of(on);
      lc.fit.transfer = std::string(link) == "nvlink"
                            ? fmt::format("efficiency measured on {} (NVLink {:.0f} GB/s) kept for {} (NVLink {:.0f} GB/s)",
                                          on, src.nvlink.value / 1e9, tgt.name, tgt.nvlink.value / 1e9)
                            : fmt::format("efficiency measured on {} ({:.0f} Gb/s NIC) kept for {} ({:.0f} Gb/s NIC)", on,
                                          src.nic.value * 8 / 1e9, tgt.name, tgt.nic.value * 8 / 1e9);
    }
    for (const auto& b : pts)
      r.points.push_back(PointResidual{std::string("network.") + link, b.source, b.time_us,
                                       b.unit_us / lc.efficiency / b.time_us - 1.0});
    (std::string(link) == "nvlink" ? cal.nvlink : cal.ib) = std::move(lc);
  }
}

}  // namespace

CalibrateResult calibrate(const CalibrateInputs& in) {
  TS_ASSERT(in.hardware.sms > 0, "calibrate: target hardware without SMs");
  CalibrateResult r;
  Calibration& cal = r.cal;
  cal.gpu = in.hardware.name;
  cal.sms = in.hardware.sms;
  cal.command = in.command;
  Ctx ctx{in, {}, {}};
  if (!in.mamf_path.empty()) ctx.mamf = read_mamf_table(in.mamf_path, [&ctx](const std::string& g) { return ctx.of(g); });
  Collected c;

  for (const auto& path : in.table_paths) {
    const toml::table root = parse_toml_file(path);
    Section top(root, "", path);
    std::string kind;
    if (top.has("kind")) {
      const Header h = read_header(top);
      const HardwareConfig& hw = ctx.of(h.gpu);
      if (h.kind == "gemm") read_gemm_table(top, root, path, h, hw, c);
      else if (h.kind == "attention") read_attention_table(top, root, path, h, hw, c);
      else if (h.kind == "membound") read_membound_table(top, root, path, h, c);
      else read_collective_table(top, root, path, h, hw, c);
      kind = h.kind + " table measured on " + h.gpu;
      top.finish();
      cal.inputs.push_back(fmt::format("{} ({}; {}; licence {})", path, kind, h.source, h.licence));
    } else {
      read_legacy_table(top, root, path, in.hardware, in.hardware_of, c, kind);
      top.finish();
      cal.inputs.push_back(fmt::format("{} ({}; {})", path, kind, root["source"].value_or(std::string())));
    }
  }
  for (const auto& path : in.profile_paths) read_profile_points(path, in, c, cal);
  r.notes.insert(r.notes.end(), c.notes.begin(), c.notes.end());
  if (!in.exclude_trace.empty())
    r.notes.push_back(fmt::format("left out of every fit: the profiles' {} kernels", fmt::join(in.exclude_trace, ", ")));

  // GEMM per dtype
  std::vector<std::string> dtypes;
  for (const auto& g : c.gemm)
    if (std::find(dtypes.begin(), dtypes.end(), g.dtype) == dtypes.end()) dtypes.push_back(g.dtype);
  std::sort(dtypes.begin(), dtypes.end());
  for (const auto& dt : dtypes) fit_gemm_class(dt, c.gemm, ctx, cal, r);
  // Listed under its shipped name (the resolved path depends on where trainsim is installed).
  if (ctx.mamf_used)
    cal.inputs.push_back(fmt::format("profiles/mamf.toml (measured maximum matmul throughput per GPU; {}@{:.7}; licence {})",
                                     ctx.mamf.source, ctx.mamf.commit, ctx.mamf.licence));
  if (cal.gemm.empty()) throw DataError(SourcePos{}, "calibrate: no GEMM measurement in the inputs");
  if (cal.has_gemm("fp8")) cal.gemm_fp8 = cal.gemm.at("fp8").params;
  if (!cal.gemm_fp8_wgrad_fit.present) {
    cal.gemm_fp8_wgrad_factor = 1.0;
    cal.gemm_fp8_wgrad_fit.present = true;
    cal.gemm_fp8_wgrad_fit.measured_on = in.hardware.name;
    cal.gemm_fp8_wgrad_fit.source = "no FP8 GEMM class (factor 1)";
  }

  // Attention
  fit_attention_class(false, c.attn, ctx, cal, r);
  fit_attention_class(true, c.attn, ctx, cal, r);
  // The profiles' own attention kernels as one rate (what replay uses).
  auto rate = [](const std::vector<AttnPoint>& pts, bool bwd) {
    if (pts.empty()) return 0.0;
    std::vector<AttnPoint> p = pts;
    AttnFit f = fit_attention(p, bwd);
    if (f.params.model == "rate") return f.params.flops_per_sm_us;
    double num = 0, den = 0;
    for (const auto& x : p) {
      const double z = x.shape.flops(bwd) / (d(x.sms) * x.time_us);
      num += z;
      den += z * z;
    }
    return den / num;
  };
  cal.attn_fwd_flops_per_sm_us = rate(c.replay_fwd, false);
  cal.attn_bwd_flops_per_sm_us = rate(c.replay_bwd, true);

  fit_memory_classes(c, ctx, cal, r);

  // Gaps
  if (c.gaps.empty()) throw DataError(SourcePos{}, "calibrate: no kernel profile (kernel gaps and launch latency)");
  const GapFit g = fit_gaps(c.gaps);
  cal.kernel_gap_us = g.gap_us;
  cal.launch_latency_us = g.launch_latency_us;
  cal.gap_fit.present = true;
  cal.gap_fit.residuals.points = g.gap_points + g.latency_points;
  cal.gap_fit.measured_on = c.gap_gpu;
  cal.gap_fit.source = fmt::format("median start - previous end over {} back-to-back kernel pairs (next launched before the "
                                   "previous ended) and median start - launch over {} kernels launched onto an idle stream, "
                                   "in {}",
                                   g.gap_points, g.latency_points, fmt::join(c.profile_names, ", "));
  cal.gap_fit.notes = "trace times are rounded to 1 us";
  if (c.gap_gpu != in.hardware.name) {
    cal.gap_fit.basis = Basis::Transferred;
    cal.gap_fit.transfer = fmt::format("launch overhead measured on {} kept (host and driver bound)", c.gap_gpu);
  }

  fit_link_classes(c, ctx, cal, r);
  return r;
}

CalibrateInputs inputs_from_command(const std::string& command, const std::filesystem::path& root, ModelConfig& model) {
  std::vector<std::string> tok;
  for (std::size_t i = 0; i < command.size();) {
    const std::size_t j = command.find(' ', i);
    const std::string t = command.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (!t.empty()) tok.push_back(t);
    if (j == std::string::npos) break;
    i = j + 1;
  }
  if (tok.size() < 2 || tok[0] != "trainsim" || tok[1] != "calibrate")
    throw DataError(SourcePos{}, fmt::format("not a `trainsim calibrate` command: '{}'", command));
  CalibrateInputs in;
  in.command = command;
  in.hardware_of = [root](const std::string& name) {
    return load_hardware((root / "profiles" / "hardware" / (name + ".toml")).string());
  };
  in.mamf_path = (root / "profiles" / "mamf.toml").string();  // as `trainsim calibrate` reads it
  std::string gpu;
  for (std::size_t i = 2; i < tok.size(); ++i) {
    const std::string& t = tok[i];
    const bool has_value = i + 1 < tok.size();
    if ((t == "--gpu" || t == "--model" || t == "-o") && !has_value)
      throw DataError(SourcePos{}, fmt::format("calibrate command: {} without a value", t));
    if (t == "--gpu") gpu = tok[++i];
    else if (t == "--model") {
      model = load_model((root / tok[++i]).string());
      in.model = &model;
    } else if (t == "-o") ++i;
    else if (t == "--points") continue;
    else if (t.size() > 14 && t.compare(t.size() - 14, 14, ".profile.jsonl") == 0) in.profile_paths.push_back((root / t).string());
    else in.table_paths.push_back((root / t).string());
  }
  if (gpu.empty()) throw DataError(SourcePos{}, "calibrate command without --gpu");
  in.hardware = in.hardware_of(gpu);
  return in;
}

}  // namespace trainsim::calibration
