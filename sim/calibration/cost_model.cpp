#include "calibration/cost_model.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "calibration/fitted_model.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/input.hpp"

namespace trainsim::calibration {

const char* cost_source_name(CostSource s) {
  switch (s) {
    case CostSource::Measured: return "measured";
    case CostSource::Fitted: return "fitted";
    case CostSource::Transferred: return "transferred";
  }
  return "?";
}

const char* transfer_kind_name(TransferKind k) {
  switch (k) {
    case TransferKind::None: return "none";
    case TransferKind::SameDie: return "same-die";
    case TransferKind::CrossArch: return "cross-architecture";
  }
  return "?";
}

namespace {
bool close(double a, double b) { return std::abs(a - b) <= 0.01 * std::max(std::abs(a), std::abs(b)); }
double d(std::int64_t v) { return static_cast<double>(v); }
bool ends_with(const std::string& s, std::string_view p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
double operand_bytes(const std::string& dt) { return dt == "fp8" || dt.empty() ? 1.0 : dt == "fp32" ? 4.0 : 2.0; }
}  // namespace

namespace {
std::uint64_t fresh_identity() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1);
}
}  // namespace

CostModel::CostModel() : identity_(fresh_identity()) {}

void CostModel::renew_identity() { identity_ = fresh_identity(); }

std::shared_ptr<const OpCost> CostModel::op_cost(const Op& op, int sms) const {
  return std::make_shared<const OpCost>(op_time(op, sms));
}

OpCost CostModel::memory_time(const std::string& kind, double bytes) const {
  Op o;
  o.name = kind;
  o.cls = OpClass::Elementwise;
  o.bytes = bytes;
  return op_time(o, 1);
}

TransferKind transfer_kind(const HardwareConfig& source, const HardwareConfig& target) {
  if (source.name == target.name) return TransferKind::None;
  if (source.sms == target.sms && close(source.bf16.value, target.bf16.value) &&
      close(source.peak_flops("fp8"), target.peak_flops("fp8")))
    return TransferKind::SameDie;
  return TransferKind::CrossArch;
}

std::string memory_kind(const Op& op) {
  switch (op.cls) {
    case OpClass::Norm: return "norm";
    case OpClass::Router: return "router";
    case OpClass::Permute: return "permute";
    case OpClass::Embedding: return "embedding";
    case OpClass::Loss: return "loss";
    case OpClass::Elementwise:
      if (ends_with(op.name, ".quant")) return "cast";
      if (ends_with(op.name, ".swiglu") || ends_with(op.name, ".gelu") || ends_with(op.name, ".sqrelu")) return "activation";
      if (ends_with(op.name, ".rope")) return "rope";
      return "elementwise";
    default: return "elementwise";
  }
}

FittedCostModel::FittedCostModel(Calibration cal, HardwareConfig source, HardwareConfig target)
    : cal_(std::move(cal)), source_(std::move(source)), target_(std::move(target)),
      kind_(transfer_kind(source_, target_)) {
  TS_ASSERT(target_.sms >= 1 && source_.sms >= 1, "cost model: GPU without SMs");
  TS_ASSERT(source_.hbm_bandwidth.value > 0 && target_.hbm_bandwidth.value > 0, "cost model: GPU without HBM bandwidth");
  TS_ASSERT(!cal_.gemm.empty() && cal_.mem.count("default"), "cost model: calibration without GEMM or memory-bound fits");
  const double bw_ratio = target_.hbm_bandwidth.value / source_.hbm_bandwidth.value;
  switch (kind_) {
    case TransferKind::None: break;
    case TransferKind::SameDie:
      // GEMM and attention are compute-bound classes: kept whole (their operand-byte term too).
      for (auto& [k, m] : cal_.mem) m.bytes_per_us *= bw_ratio;
      transfer_note_ = fmt::format("transferred {}->{} (same die): compute-bound kept, memory-bound x HBM {:.3g}/{:.3g} TB/s",
                                   source_.name, target_.name, source_.hbm_bandwidth.value / 1e12,
                                   target_.hbm_bandwidth.value / 1e12);
      break;
    case TransferKind::CrossArch: {
      // Per-SM tensor rate ratio (roofline): a wave of tiles runs at the target's per-SM peak.
      const double bf16_sm = (target_.bf16.value / d(target_.sms)) / (source_.bf16.value / d(source_.sms));
      for (auto& [dt, g] : cal_.gemm) {
        const double r = (target_.peak_flops(dt) / d(target_.sms)) / (source_.peak_flops(dt) / d(source_.sms));
        g.params.a_us /= r;
        g.params.b_us /= r;
        g.params.c_us_per_byte /= bw_ratio;
      }
      for (AttnParams* a : {&cal_.attn_fwd, &cal_.attn_bwd}) {
        a->c0_us /= bf16_sm;
        a->c1_us /= bf16_sm;
        a->c2_us /= bf16_sm;
        a->flops_per_sm_us *= bf16_sm;
      }
      for (auto& [k, m] : cal_.mem) m.bytes_per_us *= bw_ratio;
      transfer_note_ = fmt::format(
          "transferred {}->{} (cross-architecture roofline ratios): GEMM per-SM tensor rate of the dtype, attention per-SM "
          "BF16 rate x{:.3g} on {} SMs, memory-bound x HBM {:.3g}",
          source_.name, target_.name, bf16_sm, target_.sms, bw_ratio);
      break;
    }
  }
  if (cal_.has_gemm("fp8")) cal_.gemm_fp8 = cal_.gemm.at("fp8").params;
}

CostSource FittedCostModel::class_source(const ClassFit& f) const {
  if (kind_ != TransferKind::None || f.basis == Basis::Transferred) return CostSource::Transferred;
  return CostSource::Fitted;
}

std::string FittedCostModel::class_basis(const ClassFit& f) const {
  std::string b;
  switch (f.basis) {
    case Basis::Measured: b = fmt::format("fitted to {} measurements", f.measured_on); break;
    case Basis::SameDie: b = fmt::format("fitted to {} measurements (same die)", f.measured_on); break;
    case Basis::Transferred: b = fmt::format("transferred from {}: {}", f.measured_on, f.transfer); break;
  }
  if (kind_ != TransferKind::None) b += "; " + transfer_note_;
  return b;
}

OpCost FittedCostModel::finish(double us, CostSource src, std::string basis) const {
  OpCost c;
  c.time = Time::from_us(std::max(us, 0.0));
  c.source = src;
  c.basis = std::move(basis);
  return c;
}

const GemmParams& FittedCostModel::gemm_params(const std::string& dtype) const { return cal_.gemm.at(dtype).params; }

const MemClass& FittedCostModel::memory(const std::string& kind) const {
  const auto it = cal_.mem.find(kind);
  return it != cal_.mem.end() ? it->second : cal_.mem.at("default");
}

OpCost FittedCostModel::memory_time(const std::string& kind, double bytes) const {
  const bool own = cal_.mem.count(kind) > 0;
  const MemClass& m = memory(kind);
  const double us = m.overhead_us + bytes / m.bytes_per_us;
  return finish(us, class_source(m.fit),
                fmt::format("{} memory-bound {}: bytes / {:.4g} TB/s + {:.3g} us per kernel{} ({})", cal_.gpu,
                            own ? kind : "(pooled)", m.bytes_per_us * 1e6 / 1e12, m.overhead_us,
                            own ? "" : fmt::format("; no {} kernel measured: the pooled fit of every kind", kind),
                            class_basis(m.fit)));
}

OpCost FittedCostModel::op_time(const Op& op, int sms_in) const {
  TS_ASSERT(sms_in >= 1, "op_time: sms must be at least 1");
  const std::int64_t sms = std::min<std::int64_t>(sms_in, target_.sms);
  switch (op.cls) {
    case OpClass::Gemm:
    case OpClass::GroupedGemm: {
      const std::int64_t g = std::max<std::int64_t>(op.groups, 1);
      // Per-group shape: forward / input-gradient ops spread rows m over the groups; the weight
      // gradient of a grouped GEMM reduces over the rows (k = rows over all groups).
      std::int64_t M = op.m, N = op.n, K = op.k;
      if (g > 1) {
        if (op.pass == Pass::BackwardWeight) K = std::max<std::int64_t>(1, op.k / g);
        else M = std::max<std::int64_t>(1, op.m / g);
      }
      const std::string dt = op.dtype.empty() ? "fp8" : op.dtype;
      std::string use = dt, note;
      double scale = 1.0;
      if (!cal_.has_gemm(dt)) {
        if (dt == "fp8" && target_.fp8.value <= 0 && cal_.has_gemm("bf16")) {
          use = "bf16";
          note = fmt::format("; {} has no FP8 tensor cores: the FP8 GEMM runs at the BF16 rate (BF16 fit)", target_.name);
        } else {
          // No fit of this dtype: the nearest fit scaled by the peak ratio (assumption).
          use = cal_.has_gemm("bf16") ? "bf16" : cal_.gemm.begin()->first;
          const double p = target_.peak_flops(dt);
          TS_ASSERT(p > 0, "cost model: GPU has no peak for dtype " + dt);
          scale = target_.peak_flops(use) / p;
          note = fmt::format("; no measured {} GEMM: the {} fit x peak ratio {}/{} = {:.3g} (assumption)", dt, use, use, dt,
                             scale);
        }
      }
      const GemmClass& gc = cal_.gemm.at(use);
      const bool wgrad = op.pass == Pass::BackwardWeight && use == "fp8";
      const double wf = wgrad ? cal_.gemm_fp8_wgrad_factor : 1.0;
      const double us = gemm_time_us(gc.params, M, N, K, g, sms, operand_bytes(dt), scale) * wf;
      std::string basis = fmt::format("{} {} GEMM fit (wave model, {} SMs; {})", cal_.gpu, use, sms, class_basis(gc.fit));
      if (wgrad && wf != 1.0) {
        basis += fmt::format("; weight gradient: x{:.3g} (wgrad factor fitted to {} measured dense wgrad kernels)", wf,
                             cal_.gemm_fp8_wgrad_fit.residuals.points);
        if (g > 1) basis += "; grouped wgrad uses the dense wgrad factor (assumption: no grouped wgrad kernel measured)";
      }
      return finish(us, class_source(gc.fit), basis + note);
    }
    case OpClass::Attention: {
      const bool bwd = op.pass != Pass::Forward;
      if (!(bwd ? cal_.attn_bwd_fit : cal_.attn_fwd_fit).present) {
        TS_ASSERT(attention_fallback_ != nullptr, "cost model: no attention class and no fallback");
        OpCost c = attention_fallback_->op_time(op, sms_in);
        c.source = CostSource::Transferred;
        c.basis = fmt::format("no attention measured on {}: {}", target_.name, c.basis);
        return c;
      }
      const AttnParams& p = attention(bwd);
      const ClassFit& f = bwd ? cal_.attn_bwd_fit : cal_.attn_fwd_fit;
      AttnShape s;
      s.batch = std::max<std::int64_t>(op.groups, 1);  // batch x heads: the wave count needs only the product
      s.heads = 1;
      s.seq_q = std::max<std::int64_t>(op.m, 1);
      s.seq_kv = std::max<std::int64_t>(op.n, 1);
      s.d_qk = op.k;
      // d_qk + d_v from the op's full-matrix FLOPs: 2 * m * n * groups * (d_qk + d_v) (x2 backward).
      const double pairs = d(s.seq_q) * d(s.seq_kv) * d(s.batch) * (bwd ? 4.0 : 2.0);
      const double dsum = pairs > 0 ? op.flops_full / pairs : 0;
      s.d_v = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::llround(dsum)) - s.d_qk);
      s.causal = op.flops < 0.75 * op.flops_full;
      const double us = p.model == "rate" ? op.flops / (p.flops_per_sm_us * d(sms)) : attention_time_us(p, s, bwd, sms);
      return finish(us, class_source(f),
                    fmt::format("{} attention {} fit ({} model; {})", cal_.gpu, bwd ? "bwd" : "fwd", p.model, class_basis(f)));
    }
    case OpClass::Norm:
    case OpClass::Elementwise:
    case OpClass::Router:
    case OpClass::Permute:
    case OpClass::Embedding:
    case OpClass::Loss: {
      // A backward op takes its kind's backward fit when one was measured (norm_bwd).
      const std::string k = memory_kind(op);
      const std::string kb = k + "_bwd";
      return memory_time(op.pass != Pass::Forward && cal_.mem.count(kb) ? kb : k, op.bytes);
    }
  }
  throw InternalError("op_time: unknown op class");
}

// A field added to Op must join the op-cost key below (and step/phases.cpp's OpShapeEq): x86-64
// size under the Itanium C++ ABI and libstdc++, which both g++ and clang++ use here.
static_assert(sizeof(Op) == 128, "Op changed: add the new field to the op-cost memo key");

std::shared_ptr<const OpCost> FittedCostModel::op_cost(const Op& op, int sms) const {
  // Every field of the Op and the SM count: op_time reads nothing else of its arguments. The
  // key is written into one buffer per thread and looked up as a view.
  thread_local KeyWriter k;
  k.clear();
  k.add(op.name).add(static_cast<int>(op.cls)).add(static_cast<int>(op.pass)).add(op.m).add(op.n).add(op.k);
  k.add(op.groups).add(op.dtype).add(op.flops).add(op.flops_full).add(op.bytes).add(sms);
  return memo_->get(std::string_view(k.str()), [&] { return op_time(op, sms); });
}

void FittedCostModel::set_attention_fallback(std::shared_ptr<const FittedCostModel> f) {
  attention_fallback_ = std::move(f);
  renew_identity();
  memo_ = std::make_shared<OpMemo>("op cost", memo_->capacity());
}

Time FittedCostModel::kernel_gap() const { return Time::from_us(cal_.kernel_gap_us); }

std::vector<CostModel::ClassProvenance> FittedCostModel::provenance() const {
  std::vector<ClassProvenance> out;
  auto add = [&](const std::string& cls, const ClassFit& f) {
    if (!f.present) return;
    ClassProvenance p;
    p.cls = cls;
    p.source = class_source(f);
    p.basis = kind_ != TransferKind::None
                  ? "transferred from " + source_.name + " (" + transfer_kind_name(kind_) + " rule)"
                  : f.basis == Basis::Measured ? "measured on " + f.measured_on
                  : f.basis == Basis::SameDie  ? "measured on " + f.measured_on + " (same die)"
                                               : "transferred from " + f.measured_on + ": " + f.transfer;
    p.data = f.source;
    for (const auto& h : f.heldout)
      if (h.residuals.points > 0) {
        p.heldout_rms = h.residuals.rms_rel;
        break;
      }
    out.push_back(std::move(p));
  };
  for (const auto& [dt, g] : cal_.gemm) add("GEMM " + dt, g.fit);
  if (target_.fp8.value <= 0 && !cal_.has_gemm("fp8")) {
    ClassProvenance p;
    p.cls = "GEMM fp8";
    p.source = CostSource::Fitted;
    p.basis = "no FP8 tensor cores: FP8 recipes run their GEMMs on the BF16 fit";
    out.push_back(p);
  }
  add("attention fwd", cal_.attn_fwd_fit);
  add("attention bwd", cal_.attn_bwd_fit);
  if (!has_attention() && attention_fallback_)
    for (const char* cls : {"attention fwd", "attention bwd"}) {
      ClassProvenance p;
      p.cls = cls;
      p.source = CostSource::Transferred;
      p.basis = "transferred from " + attention_fallback_->calibration().gpu + ": nothing measured on " + target_.name +
                " (" + transfer_kind_name(attention_fallback_->transfer()) + " rule)";
      out.push_back(std::move(p));
    }
  for (const auto& k : memory_kinds()) {
    const auto it = cal_.mem.find(k);
    if (it != cal_.mem.end()) add(k == "default" ? "memory-bound (pooled)" : "memory-bound " + k, it->second.fit);
  }
  add("kernel gap", cal_.gap_fit);
  add("NVLink efficiency", cal_.nvlink.fit);
  add("IB efficiency", cal_.ib.fit);
  return out;
}

std::string FittedCostModel::describe() const {
  std::string s = fmt::format("{} kernel cost model from {} calibration ({} inputs)", target_.name, cal_.gpu,
                              cal_.inputs.size());
  if (kind_ != TransferKind::None) s += "; " + transfer_note_;
  std::map<std::string, std::vector<std::string>> from;  // source GPU -> transferred classes
  for (const auto& p : provenance())
    if (p.source == CostSource::Transferred && kind_ == TransferKind::None) {
      const std::string gpu = p.basis.substr(std::string("transferred from ").size(),
                                             p.basis.find(':') - std::string("transferred from ").size());
      from[gpu].push_back(p.cls);
    }
  for (const auto& [gpu, classes] : from)
    s += fmt::format("; transferred by rule from {} (nothing measured on {}): {}", gpu, target_.name, fmt::join(classes, ", "));
  if (target_.fp8.value <= 0) s += fmt::format("; {} has no FP8 tensor cores: FP8 GEMMs run on the BF16 fit", target_.name);
  return s;
}

namespace {

// The GPU figures a FittedCostModel reads (cost_model.cpp, fitted_model.hpp): its name, SM count,
// the dense peaks peak_flops() answers from, and the HBM bandwidth. The model is built from
// these alone, so models of GPUs with equal figures answer alike whatever else differs
// (interconnect, memory capacity, price, the sources' text).
HardwareConfig cost_figures(const HardwareConfig& h) {
  HardwareConfig r;
  r.name = h.name;
  r.sms = h.sms;
  r.fp8.value = h.fp8.value;
  r.bf16.value = h.bf16.value;
  r.tf32.value = h.tf32.value;
  r.fp32.value = h.fp32.value;
  r.hbm_bandwidth.value = h.hbm_bandwidth.value;
  return r;
}

// A file's bytes, or nullopt when it cannot be read (the loader then reports why).
std::optional<std::string> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) return std::nullopt;
  return ss.str();
}

// The files one load read, in order, each with its bytes (nullopt: absent).
using FileInputs = std::vector<std::pair<std::filesystem::path, std::optional<std::string>>>;

std::unique_ptr<FittedCostModel> load_fresh(const HardwareConfig& target, const std::filesystem::path& data_dir,
                                            FileInputs& read) {
  const auto own = data_dir / "profiles" / target.name / "calibration.toml";
  const auto note = [&](const std::filesystem::path& p) { read.emplace_back(p, file_bytes(p)); };
  const auto hw = [&](const std::string& name) {
    const auto p = data_dir / "profiles" / "hardware" / (name + ".toml");
    note(p);
    return load_hardware(p.string());
  };
  note(own);
  if (path_exists(own)) {
    Calibration c = read_calibration(own.string());
    if (c.gpu != target.name)
      throw ConfigError(SourcePos{own.string(), 0, 0}, "gpu",
                        fmt::format("calibration is for '{}', expected '{}'", c.gpu, target.name));
    auto model = std::make_unique<FittedCostModel>(std::move(c), target, target);
    if (!model->has_attention()) {
      // Attention not measured on this GPU: the h800 calibration's attention, carried over.
      const auto base = data_dir / "profiles" / "h800" / "calibration.toml";
      note(base);
      Calibration b = read_calibration(base.string());
      if (!b.attn_fwd_fit.present || !b.attn_bwd_fit.present)
        throw ConfigError(SourcePos{base.string(), 0, 0}, "attention_fwd",
                          fmt::format("{} has no attention class and neither has the h800 calibration to transfer from",
                                      own.string()));
      HardwareConfig source = cost_figures(hw(b.gpu));
      model->set_attention_fallback(std::make_shared<FittedCostModel>(std::move(b), std::move(source), target));
    }
    return model;
  }
  const auto base = data_dir / "profiles" / "h800" / "calibration.toml";
  note(base);
  Calibration c = read_calibration(base.string());
  HardwareConfig source = cost_figures(hw(c.gpu));
  return std::make_unique<FittedCostModel>(std::move(c), std::move(source), target);
}

// Loaded models by (data folder, GPU figures); an entry is used only while every file its load
// read still has the bytes it had then.
struct LoadedModel {
  FileInputs inputs;
  std::shared_ptr<const FittedCostModel> model;
};

Memo<std::string, LoadedModel, StringKeyHash, std::equal_to<>>& loaded_models() {
  static Memo<std::string, LoadedModel, StringKeyHash, std::equal_to<>> m("cost model", 32);
  return m;
}

}  // namespace

std::unique_ptr<CostModel> load_cost_model(const HardwareConfig& target_in, const std::filesystem::path& data_dir) {
  const HardwareConfig target = cost_figures(target_in);
  KeyWriter k;
  k.add(data_dir.string()).add(target.name).add(target.sms).add(target.fp8.value).add(target.bf16.value);
  k.add(target.tf32.value).add(target.fp32.value).add(target.hbm_bandwidth.value);
  const auto entry = loaded_models().get_valid(
      k.str(),
      [](const LoadedModel& e) {
        return std::all_of(e.inputs.begin(), e.inputs.end(), [](const auto& in) { return file_bytes(in.first) == in.second; });
      },
      [&] {
        LoadedModel e;
        e.model = std::shared_ptr<const FittedCostModel>(load_fresh(target, data_dir, e.inputs));
        return e;
      });
  return std::make_unique<FittedCostModel>(*entry->model);
}

}  // namespace trainsim::calibration
