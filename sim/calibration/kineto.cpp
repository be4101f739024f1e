#include "calibration/kineto.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "core/error.hpp"

namespace trainsim::calibration {

using nlohmann::json;

namespace {

// 0-based byte offset -> 1-based line and column (columns count bytes).
SourcePos pos_at(const std::string& text, std::size_t offset, const std::string& file) {
  offset = std::min(offset, text.size());
  std::uint32_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i)
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  return SourcePos{file, line, static_cast<std::uint32_t>(offset - line_start + 1)};
}

// Byte offset where element `index` of the trace-event array starts (npos if not found). Only
// used to position error messages, so it scans the raw text rather than keeping positions for
// every parsed value. The array is the top-level value (array form) or the value of the
// top-level key "traceEvents" (object form).
std::size_t event_offset(const std::string& text, std::size_t index, bool top_is_array) {
  int depth = 0, arr_depth = -1;
  bool want = false;
  std::size_t count = 0, str_start = 0;
  std::string last_key;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (want && depth == arr_depth) {
      want = false;
      if (c != ']') {
        if (count == index) return i;
        ++count;
      }
    }
    switch (c) {
      case '"': {
        str_start = i + 1;
        for (++i; i < text.size() && text[i] != '"'; ++i)
          if (text[i] == '\\') ++i;
        if (depth == 1) last_key = text.substr(str_start, std::min(i, text.size()) - str_start);
        break;
      }
      case '{':
      case '[':
        ++depth;
        if (c == '[' && arr_depth < 0 &&
            ((top_is_array && depth == 1) || (!top_is_array && depth == 2 && last_key == "traceEvents"))) {
          arr_depth = depth;
          want = true;
        }
        break;
      case '}':
      case ']':
        if (depth == arr_depth) return std::string::npos;
        --depth;
        break;
      case ',':
        if (depth == arr_depth) want = true;
        break;
      default:
        break;
    }
  }
  return std::string::npos;
}

std::string event_kind(const json& ev) {
  auto it = ev.find("cat");
  return it != ev.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Reads the fields of one trace event; every failure names the event's position.
class EventReader {
 public:
  EventReader(const std::string& text, const std::string& file, bool top_is_array)
      : text_(text), file_(file), top_is_array_(top_is_array) {}

  [[noreturn]] void fail(std::size_t index, const json& ev, const std::string& what) const {
    const std::size_t off = event_offset(text_, index, top_is_array_);
    SourcePos pos = off == std::string::npos ? SourcePos{file_} : pos_at(text_, off, file_);
    std::string kind = ev.is_object() ? event_kind(ev) : std::string();
    throw DataError(std::move(pos), fmt::format("trace event #{}{}: {}", index,
                                                kind.empty() ? "" : fmt::format(" (cat \"{}\")", kind), what));
  }
  const json& field(std::size_t idx, const json& ev, const char* key) const {
    auto it = ev.find(key);
    if (it == ev.end()) fail(idx, ev, fmt::format("missing '{}'", key));
    return *it;
  }
  std::string str(std::size_t idx, const json& ev, const char* key) const {
    const json& v = field(idx, ev, key);
    if (!v.is_string()) fail(idx, ev, fmt::format("'{}' must be a string", key));
    return v.get<std::string>();
  }
  double number(std::size_t idx, const json& ev, const char* key) const {
    const json& v = field(idx, ev, key);
    if (!v.is_number()) fail(idx, ev, fmt::format("'{}' must be a number (microseconds)", key));
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 1e18)
      fail(idx, ev, fmt::format("'{}' must be a finite number of microseconds below 1e18", key));
    return d;
  }
  std::int64_t integer(std::size_t idx, const json& ev, const json& obj, const char* key,
                       const char* where) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(idx, ev, fmt::format("missing '{}{}'", where, key));
    if (!it->is_number_integer()) fail(idx, ev, fmt::format("'{}{}' must be an integer", where, key));
    return it->get<std::int64_t>();
  }
  // A thread id: Kineto writes integers, some tools strings; a string counts as 0.
  static std::int64_t tid(const json& ev) {
    auto it = ev.find("tid");
    return it != ev.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  }
  std::array<std::int64_t, 3> dim3(std::size_t idx, const json& ev, const json& args, const char* key) const {
    std::array<std::int64_t, 3> a{0, 0, 0};
    auto it = args.find(key);
    if (it == args.end()) return a;
    if (!it->is_array() || it->empty() || it->size() > 3)
      fail(idx, ev, fmt::format("'args.{}' must be an array of 1 to 3 integers", key));
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& v = (*it)[i];
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
        fail(idx, ev, fmt::format("'args.{}' must be an array of 1 to 3 non-negative integers", key));
      a[i] = v.get<std::int64_t>();
    }
    return a;
  }

 private:
  const std::string& text_;
  const std::string& file_;
  bool top_is_array_;
};

std::string json_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  return {};
}

// "YYYY-MM-DD" (UTC) of a Kineto timestamp if it is Unix-epoch microseconds, else "".
std::string date_of(double ts_us) {
  if (!(ts_us > 1.0e15 && ts_us < 4.0e15)) return {};
  const std::time_t t = static_cast<std::time_t>(ts_us / 1e6);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return {};
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

bool is_sync_call(const std::string& name) {
  return name == "cudaStreamWaitEvent" || name == "cudaEventRecord" || name == "cudaEventRecordWithFlags" ||
         name == "cudaStreamSynchronize" || name == "cudaEventSynchronize" || name == "cudaDeviceSynchronize";
}

// Index of the innermost (shortest; on ties the latest-starting) annotation whose range holds
// time t, or -1.
int innermost(const std::vector<Annotation>& anns, double t) {
  int best = -1;
  for (std::size_t i = 0; i < anns.size(); ++i) {
    const auto& a = anns[i];
    if (a.ts_us <= t && t <= a.ts_us + a.dur_us) {
      if (best < 0 || a.dur_us < anns[static_cast<std::size_t>(best)].dur_us ||
          (a.dur_us == anns[static_cast<std::size_t>(best)].dur_us && a.ts_us >= anns[static_cast<std::size_t>(best)].ts_us))
        best = static_cast<int>(i);
    }
  }
  return best;
}

struct Launch {
  double ts = 0;
  std::int64_t tid = 0;
};

}  // namespace

RawImport parse_kineto_text(const std::string& text, const std::string& file) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    const std::size_t col = what.find("column ");
    const std::size_t colon = col == std::string::npos ? std::string::npos : what.find(": ", col);
    if (colon != std::string::npos) what = what.substr(colon + 2);
    const std::size_t off = e.byte == 0 ? 0 : e.byte - 1;
    const bool at_end = e.byte >= text.size();
    throw DataError(pos_at(text, off, file),
                    fmt::format("{}: {}", at_end ? "truncated or malformed JSON (input ends here)" : "malformed JSON", what));
  } catch (const json::exception& e) {
    // A number too large for a double (nlohmann's out_of_range 406) carries no byte offset;
    // locate the literal it quotes ("number overflow parsing '1E999'").
    const std::string what = e.what();
    std::size_t off = std::string::npos;
    if (const auto a = what.find("parsing '"); a != std::string::npos) {
      const auto b = what.find('\'', a + 9);
      if (b != std::string::npos) off = text.find(what.substr(a + 9, b - a - 9));
    }
    throw DataError(off == std::string::npos ? SourcePos{file, 0, 0} : pos_at(text, off, file),
                    fmt::format("malformed JSON: a number out of range ({})", what));
  }

  RawImport r;
  Profile& p = r.profile;
  const json* events = nullptr;
  const bool top_is_array = doc.is_array();
  if (top_is_array) {
    events = &doc;
  } else if (doc.is_object()) {
    auto it = doc.find("traceEvents");
    if (it == doc.end()) {
      std::string keys;
      for (const auto& [k, v] : doc.items()) keys += (keys.empty() ? "" : ", ") + k;
      throw DataError(SourcePos{file, 1, 1},
                      fmt::format("not a Chrome/Kineto trace: expected a top-level key 'traceEvents' (an array of "
                                  "trace events); found keys: {}",
                                  keys.empty() ? "none" : keys));
    }
    if (!it->is_array())
      throw DataError(SourcePos{file, 1, 1}, "not a Chrome/Kineto trace: 'traceEvents' must be an array of trace events");
    events = &*it;
  } else {
    throw DataError(SourcePos{file, 1, 1},
                    "not a Chrome/Kineto trace: expected a JSON object with 'traceEvents' or an array of trace events");
  }

  // Provenance from the top level (object form only).
  Provenance& pv = p.provenance;
  pv.source_file = file;
  if (doc.is_object()) {
    std::map<std::int64_t, std::pair<std::string, std::int64_t>> devices;
    if (auto it = doc.find("deviceProperties"); it != doc.end() && it->is_array()) {
      for (const auto& d : *it) {
        if (!d.is_object()) continue;
        auto id = d.find("id");
        auto name = d.find("name");
        auto sms = d.find("numSms");
        devices[id != d.end() && id->is_number_integer() ? id->get<std::int64_t>() : 0] = {
            name != d.end() && name->is_string() ? name->get<std::string>() : std::string(),
            sms != d.end() && sms->is_number_integer() ? sms->get<std::int64_t>() : 0};
      }
    }
    if (!devices.empty()) {
      pv.gpu = devices.begin()->second.first;
      pv.num_sms = std::max<std::int64_t>(0, devices.begin()->second.second);
    }
    if (auto it = doc.find("distributedInfo"); it != doc.end() && it->is_object()) {
      if (auto rk = it->find("rank"); rk != it->end() && rk->is_number_integer()) pv.rank = rk->get<std::int64_t>();
      if (auto ws = it->find("world_size"); ws != it->end() && ws->is_number_integer())
        pv.world_size = ws->get<std::int64_t>();
    }
    if (auto it = doc.find("traceName"); it != doc.end() && it->is_string()) pv.trace_name = it->get<std::string>();
    for (const char* k : {"cuda_driver_version", "driverVersion"})
      if (auto it = doc.find(k); it != doc.end() && pv.driver.empty()) pv.driver = json_text(*it);
    for (const char* k : {"cuda_runtime_version", "cudaRuntimeVersion"})
      if (auto it = doc.find(k); it != doc.end() && pv.cuda.empty()) pv.cuda = json_text(*it);
    std::string schema;
    if (auto it = doc.find("schemaVersion"); it != doc.end()) schema = json_text(*it);
    pv.software = schema.empty() ? "PyTorch Profiler (Kineto)" : fmt::format("PyTorch Profiler (Kineto), schemaVersion {}", schema);
  } else {
    pv.software = "Chrome Trace Event (array form)";
  }

  EventReader rd(text, file, top_is_array);
  std::map<std::int64_t, Launch> launches;
  std::vector<double> raw_ts;
  r.stats.events = events->size();
  for (std::size_t i = 0; i < events->size(); ++i) {
    const json& ev = (*events)[i];
    if (!ev.is_object()) rd.fail(i, ev, "expected a JSON object");
    const std::string cat = event_kind(ev);
    if (cat == "kernel" || cat == "Kernel") {
      KernelRecord k;
      k.name = rd.str(i, ev, "name");
      k.ts_us = rd.number(i, ev, "ts");
      k.dur_us = rd.number(i, ev, "dur");
      if (k.dur_us < 0) rd.fail(i, ev, "'dur' must not be negative");
      const json& args = rd.field(i, ev, "args");
      if (!args.is_object()) rd.fail(i, ev, "'args' must be an object");
      k.stream = rd.integer(i, ev, args, "stream", "args.");
      k.correlation = rd.integer(i, ev, args, "correlation", "args.");
      if (args.contains("device")) k.device = rd.integer(i, ev, args, "device", "args.");
      k.grid = rd.dim3(i, ev, args, "grid");
      k.block = rd.dim3(i, ev, args, "block");
      r.stats.streams.insert(k.stream);
      p.kernels.push_back(std::move(k));
    } else if (cat == "user_annotation" || cat == "gpu_user_annotation") {
      if (cat == "gpu_user_annotation") continue;  // GPU-side copies of the same ranges
      Annotation a;
      a.name = rd.str(i, ev, "name");
      a.ts_us = rd.number(i, ev, "ts");
      a.dur_us = rd.number(i, ev, "dur");
      if (a.dur_us < 0) rd.fail(i, ev, "'dur' must not be negative");
      a.tid = EventReader::tid(ev);
      p.annotations.push_back(std::move(a));
    } else if (cat == "cuda_runtime" || cat == "cuda_driver" || cat == "Runtime" || cat == "Driver") {
      auto args = ev.find("args");
      if (args == ev.end() || !args->is_object()) continue;
      auto corr = args->find("correlation");
      if (corr == args->end() || !corr->is_number_integer()) continue;
      const std::string name = rd.str(i, ev, "name");
      const double ts = rd.number(i, ev, "ts");
      ++r.stats.launches;
      launches[corr->get<std::int64_t>()] = Launch{ts, EventReader::tid(ev)};
      if (is_sync_call(name)) p.syncs.push_back(SyncCall{name, ts, EventReader::tid(ev), corr->get<std::int64_t>()});
    } else if (cat == "gpu_memset") {
      ++r.stats.memsets;
    } else if (cat == "gpu_memcpy") {
      ++r.stats.memcpys;
    } else if (cat == "ac2g") {
      ++r.stats.flows;
    }
  }
  r.stats.kernels = p.kernels.size();
  r.stats.annotations = p.annotations.size();
  if (p.kernels.empty())
    throw DataError(SourcePos{file},
                    fmt::format("no GPU kernels: none of the {} trace events has \"cat\": \"kernel\" (was the trace "
                                "recorded with ProfilerActivity.CUDA?)",
                                events->size()));

  // Times relative to t0 = the earliest kernel, annotation, sync call or matched launch, so that
  // every time in the profile is >= 0 (launch_ts_us = -1 then means "no launch found").
  double t0 = p.kernels.front().ts_us;
  for (auto& k : p.kernels) {
    t0 = std::min(t0, k.ts_us);
    if (auto it = launches.find(k.correlation); it != launches.end()) {
      k.launch_ts_us = it->second.ts;
      k.launch_tid = it->second.tid;
      t0 = std::min(t0, it->second.ts);
    }
  }
  for (const auto& a : p.annotations) t0 = std::min(t0, a.ts_us);
  for (const auto& s : p.syncs) t0 = std::min(t0, s.ts_us);
  p.t0_us = t0;
  for (auto& k : p.kernels) {
    k.ts_us -= t0;
    if (launches.count(k.correlation) != 0) k.launch_ts_us -= t0;
  }
  for (auto& a : p.annotations) a.ts_us -= t0;
  for (auto& s : p.syncs) s.ts_us -= t0;
  std::sort(p.kernels.begin(), p.kernels.end(), [](const KernelRecord& a, const KernelRecord& b) {
    return std::tie(a.ts_us, a.stream, a.correlation, a.name) < std::tie(b.ts_us, b.stream, b.correlation, b.name);
  });
  std::sort(p.annotations.begin(), p.annotations.end(), [](const Annotation& a, const Annotation& b) {
    return std::tie(a.ts_us, a.tid, a.name, a.dur_us) < std::tie(b.ts_us, b.tid, b.name, b.dur_us);
  });
  std::sort(p.syncs.begin(), p.syncs.end(), [](const SyncCall& a, const SyncCall& b) {
    return std::tie(a.ts_us, a.correlation, a.tid, a.name) < std::tie(b.ts_us, b.correlation, b.tid, b.name);
  });
  for (auto& k : p.kernels) {
    if (k.launch_ts_us < 0) continue;
    const int a = innermost(p.annotations, k.launch_ts_us);
    if (a >= 0) k.phase = p.annotations[static_cast<std::size_t>(a)].name;
  }
  pv.date = date_of(t0);  // capture date from the epoch-microsecond timestamps
  return r;
}

RawImport parse_kineto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(SourcePos{path}, "cannot open trace file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_kineto_text(ss.str(), path);
}

void classify(Profile& p, const Classifier& c) {
  for (auto& k : p.kernels) {
    Match m = c.classify(k.name, k.stream);
    k.op_class = m.op_class;
    k.rule = m.rule;
    k.dtype = m.dtype;
  }
  p.provenance.classifier = c.source();
}

namespace {
bool is_comm(const std::string& c) { return c == "a2a_dispatch" || c == "a2a_combine" || c == "a2a_notify"; }
std::int64_t blocks(const KernelRecord& k) {
  std::int64_t n = 1;
  for (auto d : k.grid) n *= std::max<std::int64_t>(d, 1);
  return n;
}
}  // namespace

void account_sms(Profile& p) {
  const std::int64_t sms = p.provenance.num_sms;
  if (sms <= 0) return;
  std::vector<const KernelRecord*> comm;
  for (const auto& k : p.kernels)
    if (is_comm(k.op_class)) comm.push_back(&k);
  for (auto& k : p.kernels) {
    if (is_comm(k.op_class)) {
      k.comm_sms_held = 0;
      k.sms_available = std::min(blocks(k), sms);
      continue;
    }
    // Kernels on one stream run one after another, so per other stream the most SMs any one
    // overlapping communication kernel held; summed over streams.
    std::map<std::int64_t, std::int64_t> per_stream;
    for (const KernelRecord* c : comm)
      if (c->stream != k.stream && c->ts_us < k.ts_us + k.dur_us && k.ts_us < c->ts_us + c->dur_us)
        per_stream[c->stream] = std::max(per_stream[c->stream], std::min(blocks(*c), sms));
    std::int64_t held = 0;
    for (const auto& [stream, n] : per_stream) held += n;
    k.comm_sms_held = std::min(held, sms);
    k.sms_available = sms - k.comm_sms_held;
  }
}

ShapeModel make_shape_model(const ModelConfig& mc, const std::string& model_path, std::int64_t tokens,
                            std::int64_t ep) {
  ShapeModel sm;
  sm.tokens = tokens;
  sm.hidden = mc.hidden;
  sm.expert_intermediate = mc.moe.enabled ? mc.moe.expert_intermediate : 0;
  sm.routed_experts = mc.moe.enabled ? mc.moe.routed_experts : 0;
  sm.top_k = mc.moe.enabled ? mc.moe.top_k : 0;
  sm.ep = ep;
  sm.heads = mc.attention.heads;
  sm.qk_head_dim = mc.attention.qk_dim();
  sm.source = fmt::format("{} (model '{}'), ep={}, tokens={}", model_path, mc.name, ep, tokens);
  sm.layer_ops = shape_layer_ops(mc, tokens);
  return sm;
}

std::vector<Op> shape_layer_ops(const ModelConfig& m, std::int64_t tokens) {
  for (std::int64_t l = 0; l < m.layers; ++l) {
    if (!m.is_moe_layer(l)) continue;
    OpContext ctx;
    ctx.micro_batch = 1;
    ctx.seq_len = tokens;
    ctx.gemm_dtype = "fp8";
    return layer_ops(m, l, ctx);
  }
  return {};
}

namespace {

// Order-matching rules for the non-grouped FP8 GEMMs (class fp8_gemm) of one annotated range:
// the i-th such kernel launched inside the range is the op `ops[i]` (name, pass) of the MoE
// layer's op list. The order is the order DeepSeek's training code runs them in, read off the
// trace's own structure (README, "Shape inference": the cast kernel before each GEMM has a
// duration proportional to the GEMM's K, the RMSNorms between the down- and up-projections,
// the recomputation of the MLA up-projections before the attention backward).
struct RangeRule {
  const char* range;
  std::vector<std::pair<const char*, Pass>> ops;  // empty: deliberately not matched
  const char* unmatched_why;                      // why, when ops is empty
};

const std::vector<RangeRule>& range_rules() {
  static const std::vector<RangeRule> rules = {
      {"attn(F)",
       {{"attn.q_a", Pass::Forward},
        {"attn.kv_a", Pass::Forward},
        {"attn.q_b", Pass::Forward},
        {"attn.kv_b", Pass::Forward},
        {"attn.o", Pass::Forward}},
       ""},
      {"attn(B)",
       {{"attn.o", Pass::BackwardInput},
        {"attn.q_b", Pass::Forward},  // recomputed MLA up-projections (DeepSeek-V3 3.2.3)
        {"attn.kv_b", Pass::Forward},
        {"attn.q_b", Pass::BackwardInput},
        {"attn.kv_b", Pass::BackwardInput},
        {"attn.kv_a", Pass::BackwardInput},
        {"attn.q_a", Pass::BackwardInput}},
       ""},
      {"attn(W)",
       {{"attn.o", Pass::BackwardWeight},
        {"attn.kv_b", Pass::BackwardWeight},
        {"attn.q_b", Pass::BackwardWeight},
        {"attn.kv_a", Pass::BackwardWeight},
        {"attn.q_a", Pass::BackwardWeight}},
       ""},
      {"mlp(F)", {{"moe.shared.up_gate", Pass::Forward}, {"moe.shared.down", Pass::Forward}}, ""},
      {"mlp(B)", {{"moe.shared.down", Pass::BackwardInput}, {"moe.shared.up_gate", Pass::BackwardInput}}, ""},
      {"mlp(W)",
       {},
       "not matched: the per-expert weight-gradient GEMMs' token counts are not determined (balanced routing is "
       "per rank, not per local expert; the same position takes 243-702 us across layers while two streams "
       "overlap), and the shared expert's two kernels cannot be told apart from them"},
  };
  return rules;
}

const Op* find_op(const std::vector<Op>& ops, const std::string& name, Pass pass) {
  for (const auto& o : ops)
    if (o.name == name && o.pass == pass && o.cls == OpClass::Gemm) return &o;
  return nullptr;
}

// Shapes the fp8_gemm kernels of every instance of each range in `range_rules`, if every
// instance holds exactly as many as the rule expects and durations are consistent with the ops'
// FLOPs (whenever one op has >= 2x the FLOPs of another in the range, its kernel is the slower
// one, in every instance). Otherwise the kernels stay unshaped and `how` says why.
void match_dense_gemms(Profile& p, const std::vector<Op>& ops, const std::string& source) {
  std::map<int, std::vector<KernelRecord*>> per_instance;  // annotation index -> fp8_gemm kernels
  for (auto& k : p.kernels) {
    if (k.op_class != "fp8_gemm" || k.launch_ts_us < 0) continue;
    const int inst = innermost(p.annotations, k.launch_ts_us);
    if (inst >= 0) per_instance[inst].push_back(&k);
  }
  for (const auto& rule : range_rules()) {
    std::vector<std::vector<KernelRecord*>*> instances;
    for (auto& [inst, ks] : per_instance)
      if (p.annotations[static_cast<std::size_t>(inst)].name == rule.range) instances.push_back(&ks);
    if (instances.empty()) continue;
    std::string why;
    std::vector<const Op*> matched;
    if (rule.ops.empty()) why = rule.unmatched_why;
    for (const auto& [name, pass] : rule.ops) {
      const Op* o = find_op(ops, name, pass);
      if (o == nullptr && why.empty())
        why = fmt::format("not matched: the model has no GEMM op {} ({})", name, pass_name(pass));
      matched.push_back(o);
    }
    for (const auto* ks : instances)
      if (why.empty() && ks->size() != matched.size())
        why = fmt::format("not matched: an instance holds {} fp8_gemm kernels, the rule expects {}", ks->size(),
                          matched.size());
    for (const auto* ks : instances) {
      for (std::size_t i = 0; why.empty() && i < matched.size(); ++i)
        for (std::size_t j = 0; why.empty() && j < matched.size(); ++j)
          if (matched[i]->flops >= 2 * matched[j]->flops && (*ks)[i]->dur_us <= (*ks)[j]->dur_us)
            why = fmt::format("not matched: #{} ({}) has >= 2x the FLOPs of #{} ({}) but is not slower", i,
                              matched[i]->name, j, matched[j]->name);
    }
    for (auto* ks : instances) {
      for (std::size_t i = 0; i < ks->size(); ++i) {
        KernelRecord& k = *(*ks)[i];
        if (!why.empty()) {
          k.shape.how = fmt::format("{} {}", rule.range, why);
          continue;
        }
        const Op& o = *matched[i];
        k.shape = Shape{o.m, o.n, o.k, 1, 0, 0,
                        fmt::format("layer-order: {} fp8_gemm #{} = {} {} ({}; counts and FLOP order checked)",
                                    rule.range, i, o.name, pass_name(o.pass), source)};
        k.dtype = o.dtype;
      }
    }
  }
}

}  // namespace

void infer_shapes(Profile& p, const ShapeModel& m) {
  if (m.tokens <= 0) return;
  const std::int64_t local_experts = m.routed_experts > 0 ? std::max<std::int64_t>(1, m.routed_experts / std::max<std::int64_t>(m.ep, 1)) : 0;
  // Balanced routing: each rank receives as many (token, expert) pairs as it sends.
  const std::int64_t m_per_group = local_experts > 0 ? m.tokens * m.top_k / local_experts : 0;
  std::map<std::pair<int, std::string>, int> seen;  // (annotation instance, class) -> kernels so far
  for (auto& k : p.kernels) {
    const int inst = k.launch_ts_us >= 0 ? innermost(p.annotations, k.launch_ts_us) : -1;
    const int nth = seen[{inst, k.op_class}]++;
    Shape& s = k.shape;
    if (k.op_class == "fp8_grouped_gemm" && local_experts > 0 && m.expert_intermediate > 0) {
      std::int64_t n = 0, kk = 0;
      if (k.phase == "mlp(F)" && nth < 2) {
        n = nth == 0 ? 2 * m.expert_intermediate : m.hidden;  // up(gate+up), then down
        kk = nth == 0 ? m.hidden : m.expert_intermediate;
      } else if (k.phase == "mlp(B)" && nth < 2) {
        n = nth == 0 ? m.expert_intermediate : m.hidden;  // dgrad of down, then of up
        kk = nth == 0 ? m.hidden : 2 * m.expert_intermediate;
      }
      if (n > 0) {
        s = Shape{m_per_group, n, kk, local_experts, m_per_group * local_experts, 0,
                  fmt::format("moe-grouped: {} #{} (model, balanced routing)", k.phase, nth)};
      }
    } else if ((k.op_class == "attn_fwd" || k.op_class == "attn_bwd") && m.qk_head_dim > 0) {
      const std::int64_t heads = k.grid[1] > 1 ? k.grid[1] : m.heads;
      s = Shape{m.tokens, m.tokens, m.qk_head_dim, heads, m.tokens, 0,
                k.grid[1] > 1 ? "attention: heads from grid.y (launch), tokens and head dim (model)"
                              : "attention: heads, tokens and head dim (model)"};
    } else if ((k.op_class == "a2a_dispatch" || k.op_class == "a2a_combine") && m.hidden > 0 && m.top_k > 0) {
      // FP8 dispatch in the forward (1 byte per element + one fp32 scale per 128), BF16 otherwise.
      const bool fp8 = k.op_class == "a2a_dispatch" && k.phase == "dispatch(F)";
      const std::int64_t per_token = fp8 ? m.hidden + m.hidden / 128 * 4 : 2 * m.hidden;
      if (k.dtype.empty()) k.dtype = fp8 ? "fp8" : "bf16";
      s = Shape{0, 0, 0, 0, m.tokens, m.tokens * m.top_k * per_token,
                fmt::format("a2a: tokens x top_k x {} bytes (model; {} payload, logical bytes)", per_token,
                            fp8 ? "fp8" : "bf16")};
    } else if (k.op_class == "a2a_notify") {
      s = Shape{0, 0, 0, 0, m.tokens, 0, "a2a-notify: tokens (model)"};
    } else if (k.op_class == "quant_cast" && k.name.find("per_token_cast") != std::string::npos && k.grid[0] > 0 &&
               k.grid[1] <= 1) {
      s = Shape{0, 0, 0, 0, k.grid[0], 0, "per-token kernel: tokens = grid.x (one block per token, launch)"};
    }
  }
  std::vector<Op> ops = m.layer_ops;
  if (ops.empty()) {
    const std::string path = m.source.substr(0, m.source.find(" ("));
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".toml") == 0 && std::ifstream(path).good())
      ops = shape_layer_ops(load_model(path), m.tokens);
  }
  if (!ops.empty()) match_dense_gemms(p, ops, "model layer op list");
  p.provenance.shapes = m.source;
}

}  // namespace trainsim::calibration
