#include "calibration/profile.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/input.hpp"

namespace trainsim::calibration {

using nlohmann::json;

const std::vector<std::string>& op_classes() {
  // "gemm": a dense GEMM in another dtype (FP32/TF32/FP16: cuBLAS sgemm/hgemm, CUTLASS);
  // "collective": an NCCL collective (all-reduce, all-gather, reduce-scatter, broadcast, ...).
  static const std::vector<std::string> k = {
      "fp8_gemm",     "fp8_grouped_gemm", "bf16_gemm",  "gemm",       "attn_fwd",    "attn_bwd",
      "a2a_dispatch", "a2a_combine",      "a2a_notify", "collective", "quant_cast",  "norm",
      "elementwise",  "permute",          "other"};
  return k;
}

namespace {

constexpr const char* kFormat = "trainsim-profile";
constexpr int kVersion = 1;           // without the optional kernel keys
constexpr int kVersionOptional = 2;   // with "op" / "collective" on some kernels

// Integral values are written as integers (no ".0"), others with the shortest round-trip form.
json num(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15) return static_cast<std::int64_t>(v);
  return v;
}

// Strings come from the trace as bytes: invalid UTF-8 is replaced (U+FFFD), never thrown on.
std::string json_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

json arr3(const std::array<std::int64_t, 3>& a) { return json::array({a[0], a[1], a[2]}); }

json provenance_json(const Provenance& p) {
  return json{{"gpu", p.gpu},           {"gpu_key", p.gpu_key},       {"num_sms", p.num_sms},
              {"driver", p.driver},     {"cuda", p.cuda},             {"software", p.software},
              {"date", p.date},         {"source_file", p.source_file}, {"source", p.source},
              {"trace_name", p.trace_name}, {"rank", p.rank},         {"world_size", p.world_size},
              {"classifier", p.classifier}, {"shapes", p.shapes}};
}

// Strict reading of one line's object: every key asked for, no other keys allowed.
class Obj {
 public:
  Obj(const json& j, const std::string& file, std::uint32_t line) : j_(j), file_(file), line_(line) {
    if (!j_.is_object()) fail("", "expected a JSON object");
  }
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const {
    throw DataError(SourcePos{file_, line_, 0},
                    key.empty() ? msg : fmt::format("key '{}': {}", key, msg));
  }
  const json& get(const std::string& key) {
    seen_.push_back(key);
    auto it = j_.find(key);
    if (it == j_.end()) fail(key, "missing");
    return *it;
  }
  std::string str(const std::string& key) {
    const json& v = get(key);
    if (!v.is_string()) fail(key, "expected a string");
    return v.get<std::string>();
  }
  std::int64_t integer(const std::string& key) {
    const json& v = get(key);
    if (!v.is_number_integer()) fail(key, "expected an integer");
    return v.get<std::int64_t>();
  }
  double number(const std::string& key) {
    const json& v = get(key);
    if (!v.is_number()) fail(key, "expected a number");
    return v.get<double>();
  }
  std::array<std::int64_t, 3> arr3(const std::string& key) {
    const json& v = get(key);
    if (!v.is_array() || v.size() != 3) fail(key, "expected an array of 3 integers");
    std::array<std::int64_t, 3> a{};
    for (std::size_t i = 0; i < 3; ++i) {
      if (!v[i].is_number_integer()) fail(key, "expected an array of 3 integers");
      a[i] = v[i].get<std::int64_t>();
    }
    return a;
  }
  Obj sub(const std::string& key) { return Obj(get(key), file_, line_); }
  bool has(const std::string& key) const { return j_.contains(key); }
  std::vector<std::string> strings(const std::string& key) {
    const json& v = get(key);
    if (!v.is_array()) fail(key, "expected an array of strings");
    std::vector<std::string> out;
    for (const auto& e : v) {
      if (!e.is_string()) fail(key, "expected an array of strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  std::vector<std::vector<std::int64_t>> dims(const std::string& key) {
    const json& v = get(key);
    if (!v.is_array()) fail(key, "expected an array of arrays of integers");
    std::vector<std::vector<std::int64_t>> out;
    for (const auto& e : v) {
      if (!e.is_array()) fail(key, "expected an array of arrays of integers");
      std::vector<std::int64_t> d;
      for (const auto& x : e) {
        if (!x.is_number_integer()) fail(key, "expected an array of arrays of integers");
        d.push_back(x.get<std::int64_t>());
      }
      out.push_back(std::move(d));
    }
    return out;
  }
  void finish() const {
    for (const auto& [k, v] : j_.items()) {
      bool ok = false;
      for (const auto& s : seen_) ok = ok || s == k;
      if (!ok) fail(k, "unknown key");
    }
  }

 private:
  const json& j_;
  std::string file_;
  std::uint32_t line_;
  std::vector<std::string> seen_;
};

}  // namespace

std::string write_profile(const Profile& p) {
  std::string out;
  bool optional = false;
  for (const auto& k : p.kernels) optional = optional || !k.op.empty() || !k.collective.empty();
  json header{{"format", kFormat}, {"version", optional ? kVersionOptional : kVersion}, {"t0_us", num(p.t0_us)},
              {"kernels", p.kernels.size()}, {"annotations", p.annotations.size()},
              {"syncs", p.syncs.size()}, {"provenance", provenance_json(p.provenance)}};
  out += json_line(header);
  for (const auto& a : p.annotations) {
    json j{{"type", "annotation"}, {"name", a.name}, {"ts_us", num(a.ts_us)}, {"dur_us", num(a.dur_us)},
           {"tid", a.tid}};
    out += json_line(j);
  }
  for (const auto& s : p.syncs) {
    json j{{"type", "sync"}, {"name", s.name}, {"ts_us", num(s.ts_us)}, {"tid", s.tid},
           {"correlation", s.correlation}};
    out += json_line(j);
  }
  for (const auto& k : p.kernels) {
    json shape{{"m", k.shape.m},           {"n", k.shape.n},         {"k", k.shape.k},
               {"groups", k.shape.groups}, {"tokens", k.shape.tokens}, {"bytes", k.shape.bytes},
               {"how", k.shape.how}};
    json j{{"type", "kernel"},
           {"name", k.name},
           {"class", k.op_class},
           {"rule", k.rule},
           {"shape", shape},
           {"dtype", k.dtype},
           {"ts_us", num(k.ts_us)},
           {"dur_us", num(k.dur_us)},
           {"device", k.device},
           {"stream", k.stream},
           {"correlation", k.correlation},
           {"grid", arr3(k.grid)},
           {"block", arr3(k.block)},
           {"sms_available", k.sms_available},
           {"comm_sms_held", k.comm_sms_held},
           {"launch_ts_us", num(k.launch_ts_us)},
           {"launch_tid", k.launch_tid},
           {"phase", k.phase}};
    if (!k.op.empty()) j["op"] = json{{"name", k.op.name}, {"input_dims", k.op.input_dims}, {"input_types", k.op.input_types}};
    if (!k.collective.empty()) {
      const auto& c = k.collective;
      j["collective"] = json{{"name", c.name},     {"in_nelems", c.in_nelems},   {"out_nelems", c.out_nelems},
                             {"dtype", c.dtype},   {"group_size", c.group_size}, {"group", c.group},
                             {"group_desc", c.group_desc}, {"ranks", c.ranks}};
    }
    out += json_line(j);
  }
  return out;
}

Profile read_profile_text(const std::string& text, const std::string& file) {
  Profile p;
  std::istringstream in(text);
  std::string line;
  std::uint32_t lineno = 0;
  std::size_t want_kernels = 0, want_annotations = 0, want_syncs = 0;
  std::int64_t version = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) throw DataError(SourcePos{file, lineno, 0}, "not a valid JSON object");
    Obj o(j, file, lineno);
    if (lineno == 1) {
      if (o.str("format") != kFormat) o.fail("format", fmt::format("expected \"{}\"", kFormat));
      version = o.integer("version");
      if (version != kVersion && version != kVersionOptional)
        o.fail("version", fmt::format("expected {} or {}", kVersion, kVersionOptional));
      p.t0_us = o.number("t0_us");
      want_kernels = static_cast<std::size_t>(o.integer("kernels"));
      want_annotations = static_cast<std::size_t>(o.integer("annotations"));
      want_syncs = static_cast<std::size_t>(o.integer("syncs"));
      Obj pv = o.sub("provenance");
      auto& v = p.provenance;
      v.gpu = pv.str("gpu");
      v.gpu_key = pv.str("gpu_key");
      v.num_sms = pv.integer("num_sms");
      v.driver = pv.str("driver");
      v.cuda = pv.str("cuda");
      v.software = pv.str("software");
      v.date = pv.str("date");
      v.source_file = pv.str("source_file");
      v.source = pv.str("source");
      v.trace_name = pv.str("trace_name");
      v.rank = pv.integer("rank");
      v.world_size = pv.integer("world_size");
      v.classifier = pv.str("classifier");
      v.shapes = pv.str("shapes");
      pv.finish();
      o.finish();
      continue;
    }
    const std::string type = o.str("type");
    if (type == "annotation") {
      Annotation a;
      a.name = o.str("name");
      a.ts_us = o.number("ts_us");
      a.dur_us = o.number("dur_us");
      a.tid = o.integer("tid");
      p.annotations.push_back(std::move(a));
    } else if (type == "sync") {
      SyncCall s;
      s.name = o.str("name");
      s.ts_us = o.number("ts_us");
      s.tid = o.integer("tid");
      s.correlation = o.integer("correlation");
      p.syncs.push_back(std::move(s));
    } else if (type == "kernel") {
      KernelRecord k;
      k.name = o.str("name");
      k.op_class = o.str("class");
      bool known = false;
      for (const auto& c : op_classes()) known = known || c == k.op_class;
      if (!known) o.fail("class", fmt::format("unknown op class '{}'", k.op_class));
      k.rule = o.str("rule");
      Obj s = o.sub("shape");
      k.shape.m = s.integer("m");
      k.shape.n = s.integer("n");
      k.shape.k = s.integer("k");
      k.shape.groups = s.integer("groups");
      k.shape.tokens = s.integer("tokens");
      k.shape.bytes = s.integer("bytes");
      k.shape.how = s.str("how");
      s.finish();
      k.dtype = o.str("dtype");
      k.ts_us = o.number("ts_us");
      k.dur_us = o.number("dur_us");
      if (k.dur_us < 0) o.fail("dur_us", "must not be negative");
      k.device = o.integer("device");
      k.stream = o.integer("stream");
      k.correlation = o.integer("correlation");
      k.grid = o.arr3("grid");
      k.block = o.arr3("block");
      k.sms_available = o.integer("sms_available");
      k.comm_sms_held = o.integer("comm_sms_held");
      k.launch_ts_us = o.number("launch_ts_us");
      k.launch_tid = o.integer("launch_tid");
      k.phase = o.str("phase");
      if (version == kVersionOptional && o.has("op")) {
        Obj op = o.sub("op");
        k.op.name = op.str("name");
        if (k.op.name.empty()) op.fail("name", "must not be empty");
        k.op.input_dims = op.dims("input_dims");
        k.op.input_types = op.strings("input_types");
        op.finish();
      }
      if (version == kVersionOptional && o.has("collective")) {
        Obj c = o.sub("collective");
        auto& col = k.collective;
        col.name = c.str("name");
        if (col.name.empty()) c.fail("name", "must not be empty");
        col.in_nelems = c.integer("in_nelems");
        col.out_nelems = c.integer("out_nelems");
        col.dtype = c.str("dtype");
        col.group_size = c.integer("group_size");
        col.group = c.str("group");
        col.group_desc = c.str("group_desc");
        col.ranks = c.str("ranks");
        c.finish();
      }
      p.kernels.push_back(std::move(k));
    } else {
      o.fail("type", fmt::format("expected \"annotation\", \"sync\" or \"kernel\", got \"{}\"", type));
    }
    o.finish();
  }
  if (lineno == 0) throw DataError(SourcePos{file}, "empty profile: expected a header line");
  if (p.kernels.size() != want_kernels || p.annotations.size() != want_annotations ||
      p.syncs.size() != want_syncs)
    throw DataError(SourcePos{file, lineno, 0},
                    fmt::format("truncated or padded: header announces {} kernels, {} annotations, {} syncs; "
                                "found {}, {}, {}",
                                want_kernels, want_annotations, want_syncs, p.kernels.size(),
                                p.annotations.size(), p.syncs.size()));
  return p;
}

Profile read_profile(const std::string& path) { return read_profile_text(read_input_text(path, "profile"), path); }

}  // namespace trainsim::calibration
