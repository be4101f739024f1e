#include "calibration/kineto.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <queue>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/limits.hpp"

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
    if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX))
      fail(idx, ev, fmt::format("'{}{}' must be an integer below 2^63", where, key));
    return it->get<std::int64_t>();
  }
  // A thread id: Kineto writes integers; PyTorch 1.8 numeric strings ("25738"); other strings
  // ("PyTorch Profiler") count as 0.
  static std::int64_t tid(const json& ev) {
    auto it = ev.find("tid");
    if (it == ev.end()) return 0;
    if (it->is_number_integer()) return it->get<std::int64_t>();
    if (it->is_string()) {
      const std::string s = it->get<std::string>();
      std::int64_t v = 0;
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && p == s.data() + s.size()) return v;
    }
    return 0;
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


}  // namespace

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The event categories Kineto has written over its versions, lower-cased: PyTorch 1.8 wrote
// "Kernel", "Operator", "Runtime", "Memcpy", "Memset" and "async" flows; 1.9 and later
// "kernel", "cpu_op", "cuda_runtime", "cuda_driver", "gpu_memcpy", "gpu_memset", "ac2g".
enum class Cat { Kernel, CpuOp, Annotation, GpuAnnotation, Runtime, Memset, Memcpy, Flow, Other };

Cat cat_of(const std::string& c) {
  if (c == "kernel") return Cat::Kernel;
  if (c == "cpu_op" || c == "operator") return Cat::CpuOp;
  if (c == "user_annotation") return Cat::Annotation;
  if (c == "gpu_user_annotation") return Cat::GpuAnnotation;
  if (c == "cuda_runtime" || c == "cuda_driver" || c == "runtime" || c == "driver") return Cat::Runtime;
  if (c == "gpu_memset" || c == "memset") return Cat::Memset;
  if (c == "gpu_memcpy" || c == "memcpy") return Cat::Memcpy;
  if (c == "ac2g" || c == "async" || c == "async_gpu" || c == "async_cpu_to_gpu" || c == "fwdbwd") return Cat::Flow;
  return Cat::Other;
}

// Devices trainsim does not model, by the category prefix Kineto gives their events.
const char* foreign_device(const std::string& c) {
  if (c.rfind("mtia_", 0) == 0) return "Meta MTIA";
  if (c.rfind("xpu_", 0) == 0) return "Intel XPU";
  if (c.rfind("hpu_", 0) == 0) return "Intel Gaudi (HPU)";
  if (c.rfind("privateuse1_", 0) == 0) return "a PrivateUse1 accelerator backend";
  if (c.rfind("mlu_", 0) == 0) return "Cambricon MLU";
  if (c.rfind("gcu_", 0) == 0) return "Enflame GCU";
  return nullptr;
}

std::string id_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return {};
}

// The CPU thread an event ran on: "pid/tid" as written.
std::string thread_of(const json& ev) {
  auto p = ev.find("pid");
  auto t = ev.find("tid");
  return (p != ev.end() ? id_text(*p) : std::string()) + "/" + (t != ev.end() ? id_text(*t) : std::string());
}

// "External id" (1.9+) or "external id" (1.8), if an integer.
std::optional<std::int64_t> external_id(const json& args) {
  for (const char* k : {"External id", "external id"}) {
    auto it = args.find(k);
    if (it != args.end() && it->is_number_integer() && !(it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX))
      return it->get<std::int64_t>();
  }
  return std::nullopt;
}

struct CpuOp {
  std::string name;
  double ts = 0, end = 0;
  std::string thread;
  const json* args = nullptr;
  std::size_t event = 0;  // index in traceEvents
  int parent = -1;        // enclosing op on the same thread (-1 = none)
};

struct Launch {
  double ts = 0;
  std::int64_t tid = 0;
  std::string thread;
};

// Innermost CPU op of `thread` whose range holds time `t`: ops of a thread nest, so it is the
// latest-starting op before t, or the nearest of its ancestors that still holds t. The walk up
// is bounded (a pathological trace gets no link rather than quadratic time).
class OpIndex {
 public:
  explicit OpIndex(std::vector<CpuOp>& ops) : ops_(ops) {
    std::map<std::string, std::vector<int>> per;
    for (std::size_t i = 0; i < ops.size(); ++i) per[ops[i].thread].push_back(static_cast<int>(i));
    for (auto& [thread, v] : per) {
      std::stable_sort(v.begin(), v.end(), [&](int a, int b) {
        const auto& x = ops[static_cast<std::size_t>(a)];
        const auto& y = ops[static_cast<std::size_t>(b)];
        return x.ts != y.ts ? x.ts < y.ts : x.end > y.end;  // outer first on equal starts
      });
      std::vector<int> stack;
      for (int i : v) {
        auto& op = ops[static_cast<std::size_t>(i)];
        while (!stack.empty() && ops[static_cast<std::size_t>(stack.back())].end < op.ts) stack.pop_back();
        op.parent = stack.empty() ? -1 : stack.back();
        stack.push_back(i);
      }
      by_thread_[thread] = std::move(v);
    }
  }
  int innermost(const std::string& thread, double t) const {
    auto it = by_thread_.find(thread);
    if (it == by_thread_.end()) return -1;
    const auto& v = it->second;
    auto pos = std::upper_bound(v.begin(), v.end(), t, [&](double x, int i) { return x < ops_[static_cast<std::size_t>(i)].ts; });
    if (pos == v.begin()) return -1;
    int i = *(pos - 1);
    for (int steps = 0; i >= 0 && steps < 4096; ++steps) {
      if (ops_[static_cast<std::size_t>(i)].end >= t) return i;
      i = ops_[static_cast<std::size_t>(i)].parent;
    }
    return -1;
  }

 private:
  const std::vector<CpuOp>& ops_;
  std::map<std::string, std::vector<int>> by_thread_;
};

// "Input Dims" (1.9+) / "Input dims" (1.8): one entry per input, an array of integers for a
// tensor; anything else (a TensorList's nested arrays, a scalar's []) is kept as [].
LaunchOp launch_op(const CpuOp& op) {
  LaunchOp l;
  const json* dims = nullptr;
  for (const char* k : {"Input Dims", "Input dims"})
    if (auto it = op.args->find(k); it != op.args->end() && it->is_array()) dims = &*it;
  if (dims == nullptr) return l;
  l.name = op.name.empty() ? "(unnamed op)" : op.name;
  for (const auto& d : *dims) {
    std::vector<std::int64_t> v;
    bool ok = d.is_array();
    if (ok)
      for (const auto& x : d) {
        if (!x.is_number_integer() || (x.is_number_unsigned() && x.get<std::uint64_t>() > INT64_MAX)) {
          ok = false;
          break;
        }
        v.push_back(x.get<std::int64_t>());
      }
    l.input_dims.push_back(ok ? std::move(v) : std::vector<std::int64_t>{});
  }
  if (auto it = op.args->find("Input type"); it != op.args->end() && it->is_array())
    for (const auto& t : *it) l.input_types.push_back(t.is_string() ? t.get<std::string>() : std::string());
  return l;
}

std::int64_t int_arg(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end()) return 0;
  if (it->is_number_integer() && !(it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX))
    return std::max<std::int64_t>(0, it->get<std::int64_t>());
  if (it->is_string()) {  // some versions quote numbers
    const std::string s = it->get<std::string>();
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size() && v >= 0) return v;
  }
  return 0;
}

std::string str_arg(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_primitive()) return it->dump();
  return it->dump();
}

// The NCCL collective metadata Kineto records (kernel args since 2023, the record_param_comms
// operator's args before): "Collective name", "In msg nelems", "Out msg nelems", "dtype",
// "Group size", "Process Group Name", "Process Group Description", "Process Group Ranks".
Collective collective_of(const json& args) {
  Collective c;
  c.name = str_arg(args, "Collective name");
  if (c.name.empty()) return c;
  c.in_nelems = int_arg(args, "In msg nelems");
  c.out_nelems = int_arg(args, "Out msg nelems");
  c.dtype = str_arg(args, "dtype");
  c.group_size = int_arg(args, "Group size");
  c.group = str_arg(args, "Process Group Name");
  c.group_desc = str_arg(args, "Process Group Description");
  c.ranks = str_arg(args, "Process Group Ranks");
  return c;
}

struct DeviceProps {
  std::string name;
  std::int64_t sms = 0;
  std::int64_t memory = 0;
  bool hip = false;  // HIP-only keys (ROCm's Kineto writes maxSharedMemoryPerMultiProcessor)
};

bool amd_name(const std::string& n) {
  const std::string l = lower(n);
  return l.find("amd") != std::string::npos || l.find("radeon") != std::string::npos ||
         l.find("instinct") != std::string::npos || l.rfind("gfx", 0) == 0;
}

std::string examples(const std::map<std::string, std::size_t>& names, std::size_t n = 3) {
  std::vector<std::pair<std::size_t, std::string>> v;
  for (const auto& [k, c] : names) v.push_back({c, k});
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < n; ++i) {
    std::string k = v[i].second.size() > 60 ? v[i].second.substr(0, 57) + "..." : v[i].second;
    s += fmt::format("{}{} ({})", i ? ", " : "", k, v[i].first);
  }
  return s;
}

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
      std::size_t n = 0;
      for (const auto& [k, v] : doc.items())
        if (n++ < 12) keys += (keys.empty() ? "" : ", ") + (k.size() > 40 ? k.substr(0, 37) + "..." : k);
      if (n > 12) keys += fmt::format(" and {} more", n - 12);
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
  std::map<std::int64_t, DeviceProps> devices;
  double base_us = 0;  // baseTimeNanoseconds (PyTorch 2.4+ writes ts relative to it), in us
  if (doc.is_object()) {
    if (auto it = doc.find("deviceProperties"); it != doc.end() && it->is_array()) {
      for (const auto& d : *it) {
        if (!d.is_object()) continue;
        auto id = d.find("id");
        auto name = d.find("name");
        DeviceProps dp;
        dp.name = name != d.end() && name->is_string() ? name->get<std::string>() : std::string();
        dp.sms = int_arg(d, "numSms");
        dp.memory = int_arg(d, "totalGlobalMem");
        dp.hip = d.contains("maxSharedMemoryPerMultiProcessor") || d.contains("gcnArchName");
        devices[id != d.end() && id->is_number_integer() ? id->get<std::int64_t>() : 0] = dp;
      }
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
    if (auto it = doc.find("baseTimeNanoseconds"); it != doc.end() && it->is_number() && it->get<double>() > 0)
      base_us = it->get<double>() / 1e3;
    std::string schema;
    if (auto it = doc.find("schemaVersion"); it != doc.end()) schema = json_text(*it);
    pv.software = schema.empty() ? "PyTorch Profiler (Kineto)" : fmt::format("PyTorch Profiler (Kineto), schemaVersion {}", schema);
  } else {
    pv.software = "Chrome Trace Event (array form)";
  }

  EventReader rd(text, file, top_is_array);
  std::map<std::int64_t, Launch> launches;
  std::vector<CpuOp> ops;
  std::vector<std::optional<std::int64_t>> kernel_ext;     // per kernel, its External id
  std::vector<Collective> kernel_coll;                     // per kernel, collective args on the kernel itself
  std::map<std::string, std::size_t> foreign;              // "category (device)" -> events
  std::map<std::string, std::size_t> hip_calls;            // HIP runtime calls by name
  std::map<std::string, std::size_t> kernel_names;
  std::size_t cpu_ops = 0, python = 0, amd_kernel_kind = 0, profiler_ranges = 0;
  r.stats.events = events->size();
  for (std::size_t i = 0; i < events->size(); ++i) {
    const json& ev = (*events)[i];
    if (!ev.is_object()) rd.fail(i, ev, "expected a JSON object");
    const std::string cat = lower(event_kind(ev));
    switch (cat_of(cat)) {
      case Cat::Kernel: {
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
        if (auto kind = args.find("kind"); kind != args.end() && kind->is_string() &&
                                            kind->get<std::string>().find("Dispatch") != std::string::npos)
          ++amd_kernel_kind;  // roctracer's "kind": "Dispatch Kernel"
        r.stats.streams.insert(k.stream);
        kernel_ext.push_back(external_id(args));
        kernel_coll.push_back(collective_of(args));
        if (kernel_names.size() < 10000) ++kernel_names[k.name.substr(0, 200)];
        p.kernels.push_back(std::move(k));
        break;
      }
      case Cat::Annotation: {
        Annotation a;
        a.name = rd.str(i, ev, "name");
        a.ts_us = rd.number(i, ev, "ts"); 
        a.dur_us = rd.number(i, ev, "dur");
        if (a.dur_us < 0) rd.fail(i, ev, "'dur' must not be negative");
        a.tid = EventReader::tid(ev);
        p.annotations.push_back(std::move(a));
        break;
      }
      case Cat::GpuAnnotation:
        break;  // GPU-side copies of the same ranges
      case Cat::Runtime: {
        auto name_it = ev.find("name");
        if (name_it != ev.end() && name_it->is_string() && name_it->get<std::string>().rfind("hip", 0) == 0 &&
            hip_calls.size() < 1000)
          ++hip_calls[name_it->get<std::string>()];
        auto args = ev.find("args");
        if (args == ev.end() || !args->is_object()) break;
        auto corr = args->find("correlation");
        if (corr == args->end() || !corr->is_number_integer()) break;
        const std::string name = rd.str(i, ev, "name");
        const double ts = rd.number(i, ev, "ts"); 
        ++r.stats.launches;
        launches[corr->get<std::int64_t>()] = Launch{ts, EventReader::tid(ev), thread_of(ev)};
        if (is_sync_call(name)) p.syncs.push_back(SyncCall{name, ts, EventReader::tid(ev), corr->get<std::int64_t>()});
        break;
      }
      case Cat::CpuOp: {
        ++cpu_ops;
        auto ph = ev.find("ph");
        if (ph != ev.end() && ph->is_string() && ph->get<std::string>() != "X") break;  // only complete events have a range
        CpuOp op;
        op.name = rd.str(i, ev, "name");
        op.ts = rd.number(i, ev, "ts"); 
        const double dur = rd.number(i, ev, "dur");
        if (dur < 0) rd.fail(i, ev, "'dur' must not be negative");
        op.end = op.ts + dur;
        op.thread = thread_of(ev);
        auto args = ev.find("args");
        op.args = args != ev.end() && args->is_object() ? &*args : nullptr;
        op.event = i;
        if (op.args != nullptr) ops.push_back(std::move(op));
        break;
      }
      case Cat::Memset: ++r.stats.memsets; break;
      case Cat::Memcpy: ++r.stats.memcpys; break;
      case Cat::Flow: ++r.stats.flows; break;
      case Cat::Other:
        if (const char* dev = foreign_device(cat)) ++foreign[fmt::format("{}: {}", dev, cat)];
        else if (cat == "python_function" || cat == "python") ++python;
        else if (cat == "cuda_profiler_range") ++profiler_ranges;
        break;
    }
  }
  r.stats.kernels = p.kernels.size();
  r.stats.annotations = p.annotations.size();

  // What trainsim cannot model is refused with what was found.
  if (!foreign.empty()) {
    std::string found;
    for (const auto& [k, n] : foreign) found += fmt::format("{}{} {} events", found.empty() ? "" : ", ", n, k);
    throw DataError(SourcePos{file}, fmt::format("unsupported device: the trace holds {} (and {} \"kernel\" events); "
                                                 "trainsim imports NVIDIA GPU (CUDA/CUPTI) traces only",
                                                 found, p.kernels.size()));
  }
  std::string amd;
  for (const auto& [id, d] : devices)
    if (amd.empty() && (amd_name(d.name) || d.hip))
      amd = fmt::format("device {} '{}' ({} compute units)", id, d.name, d.sms);
  if (amd.empty() && !hip_calls.empty()) amd = "HIP runtime calls";
  if (amd.empty() && amd_kernel_kind > 0) amd = "roctracer kernel records";
  if (!amd.empty()) {
    std::string what = amd;
    if (!hip_calls.empty()) what += fmt::format("; HIP runtime calls {}", examples(hip_calls));
    if (!p.kernels.empty()) what += fmt::format("; {} kernels, e.g. {}", p.kernels.size(), examples(kernel_names, 2));
    throw DataError(SourcePos{file}, fmt::format("unsupported device: an AMD GPU (ROCm) trace: {}. trainsim imports NVIDIA "
                                                 "GPU (CUDA/CUPTI) traces only: its kernel classes and cost models are "
                                                 "NVIDIA's",
                                                 what));
  }
  if (p.kernels.empty()) {
    std::string what;
    if (profiler_ranges > 0)
      what = fmt::format("a CUPTI range-profiler trace ({} cuda_profiler_range events): it holds counters, not kernel "
                         "records; record the trace with ProfilerActivity.CUDA and no experimental profiler metrics",
                         profiler_ranges);
    else if (r.stats.launches > 0)
      what = "the trace has CUDA runtime calls but no kernel records: GPU activity was not traced; record it with "
             "ProfilerActivity.CUDA";
    else if (cpu_ops + p.annotations.size() + python > 0)
      what = "a CPU-only trace; record it with ProfilerActivity.CUDA";
    else
      what = "was the trace recorded with ProfilerActivity.CUDA?";
    throw DataError(SourcePos{file},
                    fmt::format("no GPU kernels: none of the {} trace events has \"cat\": \"kernel\" ({} CPU operators, "
                                "{} user annotations, {} Python functions, {} CUDA runtime calls): {}",
                                events->size(), cpu_ops, p.annotations.size(), python, r.stats.launches, what));
  }

  // The GPU: the device most kernels ran on, as deviceProperties describes it.
  {
    std::map<std::int64_t, std::size_t> per_device;
    for (const auto& k : p.kernels) ++per_device[k.device];
    std::int64_t dev = per_device.begin()->first;
    for (const auto& [d, n] : per_device)
      if (n > per_device[dev]) dev = d;
    r.device.id = dev;
    if (auto it = devices.find(dev); it != devices.end()) {
      r.device.name = it->second.name;
      r.device.sms = it->second.sms;
      r.device.memory = it->second.memory;
    }
    for (const auto& [d, n] : per_device) {
      auto it = devices.find(d);
      if (it != devices.end() && !r.device.name.empty() && it->second.name != r.device.name)
        throw DataError(SourcePos{file}, fmt::format("kernels ran on different GPU models: device {} '{}' and device {} "
                                                     "'{}'; import one device's kernels per profile",
                                                     dev, r.device.name, d, it->second.name));
    }
    pv.gpu = r.device.name;
    pv.num_sms = std::max<std::int64_t>(0, r.device.sms);
  }

  // Each kernel's launching CPU op: the op with the kernel's External id when that op holds the
  // kernel's launch call (some versions write the correlation id there instead), else the
  // innermost op around the launch call on its thread. Kept only when the trace recorded shapes
  // (Input Dims) or the op carries NCCL collective metadata (record_param_comms).
  {
    std::map<std::int64_t, int> by_ext;  // External id -> op, -2 = ambiguous
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (auto e = external_id(*ops[i].args)) {
        auto [it, inserted] = by_ext.emplace(*e, static_cast<int>(i));
        if (!inserted) it->second = -2;
      }
    }
    const OpIndex index(ops);
    for (std::size_t i = 0; i < p.kernels.size(); ++i) {
      KernelRecord& k = p.kernels[i];
      const auto launch = launches.find(k.correlation);
      int op = -1;
      if (kernel_ext[i]) {
        if (auto it = by_ext.find(*kernel_ext[i]); it != by_ext.end() && it->second >= 0) {
          const CpuOp& c = ops[static_cast<std::size_t>(it->second)];
          const bool holds = launch == launches.end() ||
                             (c.thread == launch->second.thread && c.ts <= launch->second.ts && launch->second.ts <= c.end);
          if (holds) op = it->second;
        }
      }
      if (op < 0 && launch != launches.end()) op = index.innermost(launch->second.thread, launch->second.ts);
      k.collective = kernel_coll[i];
      if (op < 0) continue;
      const CpuOp& c = ops[static_cast<std::size_t>(op)];
      k.op = launch_op(c);
      if (k.collective.empty()) {
        // Before 2023 the collective's metadata sat on the record_param_comms op around the launch.
        for (int a = op, steps = 0; a >= 0 && steps < 64 && k.collective.empty(); a = ops[static_cast<std::size_t>(a)].parent, ++steps)
          k.collective = collective_of(*ops[static_cast<std::size_t>(a)].args);
      }
    }
  }

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
  p.t0_us = t0 + base_us;  // absolute: the ts fields stay relative to the base (no precision lost)
  double latest = 0;
  for (auto& k : p.kernels) {
    k.ts_us -= t0;
    if (launches.count(k.correlation) != 0) k.launch_ts_us -= t0;
    latest = std::max({latest, k.ts_us + k.dur_us, k.launch_ts_us});
  }
  for (auto& a : p.annotations) a.ts_us -= t0;
  for (auto& s : p.syncs) s.ts_us -= t0;
  if (latest > kMaxTraceSpanUs)
    throw DataError(SourcePos{file}, fmt::format("the kernels span {:.3g} s from the trace's first event; a profile may "
                                                 "span at most {:.3g} s (docs/limits.md)",
                                                 latest / 1e6, kMaxTraceSpanUs / 1e6));
  std::sort(p.kernels.begin(), p.kernels.end(), [](const KernelRecord& a, const KernelRecord& b) {
    return std::tie(a.ts_us, a.stream, a.correlation, a.name) < std::tie(b.ts_us, b.stream, b.correlation, b.name);
  });
  std::sort(p.annotations.begin(), p.annotations.end(), [](const Annotation& a, const Annotation& b) {
    return std::tie(a.ts_us, a.tid, a.name, a.dur_us) < std::tie(b.ts_us, b.tid, b.name, b.dur_us);
  });
  std::sort(p.syncs.begin(), p.syncs.end(), [](const SyncCall& a, const SyncCall& b) {
    return std::tie(a.ts_us, a.correlation, a.tid, a.name) < std::tie(b.ts_us, b.correlation, b.tid, b.name);
  });
  {
    std::vector<double> at;
    for (const auto& k : p.kernels) at.push_back(k.launch_ts_us);
    const std::vector<int> inner = innermost_annotations(p.annotations, at);
    for (std::size_t i = 0; i < p.kernels.size(); ++i)
      if (inner[i] >= 0) p.kernels[i].phase = p.annotations[static_cast<std::size_t>(inner[i])].name;
  }
  pv.date = date_of(p.t0_us);  // capture date from the epoch-microsecond timestamps
  return r;
}

RawImport parse_kineto(const std::string& path) {
  const InputFile in = read_input(path, "trace file", true);
  try {
    return parse_kineto_text(in.text, path);
  } catch (const DataError& e) {
    if (!in.gzip || e.pos().line == 0) throw;
    // Positions refer to the inflated text.
    throw DataError(e.pos(), std::string(e.what()).substr(e.pos().str().size() + 2) + " (position in the inflated gzip text)");
  }
}

std::vector<int> innermost_annotations(const std::vector<Annotation>& anns, const std::vector<double>& times) {
  // A sweep over the query times in order: annotations enter when they start, leave (lazily)
  // when they end; the active set is ordered by (duration, latest start, latest index).
  std::vector<int> out(times.size(), -1);
  std::vector<std::size_t> q(times.size());
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = i;
  std::stable_sort(q.begin(), q.end(), [&](std::size_t a, std::size_t b) { return times[a] < times[b]; });
  std::vector<std::size_t> order(anns.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return anns[a].ts_us < anns[b].ts_us; });
  using Key = std::tuple<double, double, std::size_t>;  // (dur, -ts, ~index): begin() is the innermost
  std::set<Key> active;
  std::priority_queue<std::pair<double, std::size_t>, std::vector<std::pair<double, std::size_t>>, std::greater<>> ends;
  std::size_t next = 0;
  for (std::size_t qi : q) {
    const double t = times[qi];
    if (t < 0) continue;
    while (next < order.size() && anns[order[next]].ts_us <= t) {
      const auto& a = anns[order[next]];
      active.insert(Key{a.dur_us, -a.ts_us, ~order[next]});
      ends.push({a.ts_us + a.dur_us, order[next]});
      ++next;
    }
    while (!ends.empty() && ends.top().first < t) {
      const auto& a = anns[ends.top().second];
      active.erase(Key{a.dur_us, -a.ts_us, ~ends.top().second});
      ends.pop();
    }
    if (!active.empty()) out[qi] = static_cast<int>(~std::get<2>(*active.begin()));
  }
  return out;
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
  std::vector<double> at;
  for (const auto& k : p.kernels) at.push_back(k.op_class == "fp8_gemm" ? k.launch_ts_us : -1.0);
  const std::vector<int> inner = innermost_annotations(p.annotations, at);
  for (std::size_t i = 0; i < p.kernels.size(); ++i)
    if (inner[i] >= 0) per_instance[inner[i]].push_back(&p.kernels[i]);
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
  std::vector<double> at;
  for (const auto& k : p.kernels) at.push_back(k.launch_ts_us);
  const std::vector<int> inner = innermost_annotations(p.annotations, at);
  for (std::size_t ki = 0; ki < p.kernels.size(); ++ki) {
    KernelRecord& k = p.kernels[ki];
    const int inst = inner[ki];
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

namespace trainsim::calibration {

std::string hardware_key(const DeviceInfo& d, std::string* why) {
  namespace fs = std::filesystem;
  auto say = [&](std::string s) {
    if (why != nullptr) *why = std::move(s);
    return std::string();
  };
  if (d.name.empty()) return say("the trace records no GPU: no deviceProperties entry for the kernels' device");
  std::vector<std::string> words;
  {
    std::string w;
    for (char c : d.name + " ") {
      if (std::isalnum(static_cast<unsigned char>(c))) {
        w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else if (!w.empty()) {
        words.push_back(w);
        w.clear();
      }
    }
  }
  std::vector<std::string> keys;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(data_dir() / "profiles" / "hardware", ec))
    if (f.path().extension() == ".toml") keys.push_back(f.path().stem().string());
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> matches, mismatches;
  for (const auto& key : keys) {
    const std::string model = key.substr(0, key.find('-'));
    if (std::find(words.begin(), words.end(), model) == words.end()) continue;
    HardwareConfig h;
    try {
      h = load_hardware(key);
    } catch (const InputError&) {
      continue;
    }
    std::string diff;
    if (d.sms > 0 && h.sms != d.sms) diff = fmt::format("{} SMs, the trace's GPU {}", h.sms, d.sms);
    const double cap = h.hbm_capacity.value;
    if (diff.empty() && d.memory > 0 && cap > 0 && std::fabs(static_cast<double>(d.memory) / cap - 1.0) > 0.12)
      diff = fmt::format("{:.0f} GB of memory, the trace's GPU {:.1f} GB", cap / 1e9, static_cast<double>(d.memory) / 1e9);
    if (diff.empty()) matches.push_back(key);
    else mismatches.push_back(fmt::format("{} has {}", key, diff));
  }
  if (matches.size() == 1) return matches.front();
  if (matches.size() > 1) {
    std::string list;
    for (const auto& m : matches) list += (list.empty() ? "" : ", ") + m;
    return say(fmt::format("device '{}' matches several hardware profiles ({}); name one with --gpu", d.name, list));
  }
  std::string tried;
  for (const auto& m : mismatches) tried += "; " + m;
  return say(fmt::format("no hardware profile in profiles/hardware/ describes device '{}'{}{}", d.name,
                         mismatches.empty() ? " (no profile's model name is a word of it)" : "", tried));
}

namespace {

// Bytes per element of a recorded tensor type ("Input type" spellings and the collectives'
// dtype names); 0 = unknown.
std::int64_t type_bytes(const std::string& t) {
  static const std::map<std::string, std::int64_t> k = {
      {"float", 4},          {"double", 8},         {"c10::half", 2},       {"c10::bfloat16", 2},
      {"half", 2},           {"bfloat16", 2},       {"long", 8},            {"long int", 8},
      {"int64_t", 8},        {"int", 4},            {"short", 2},           {"unsigned char", 1},
      {"signed char", 1},    {"bool", 1},           {"c10::complex<float>", 8}, {"c10::complex<double>", 16},
      {"c10::float8_e4m3fn", 1}, {"c10::float8_e5m2", 1}, {"c10::float8_e4m3fnuz", 1}, {"c10::float8_e5m2fnuz", 1},
      {"float8_e4m3fn", 1},  {"float8_e5m2", 1},    {"byte", 1},            {"char", 1},
  };
  const auto it = k.find(lower(t));
  return it == k.end() ? 0 : it->second;
}

std::string dtype_name(const std::string& t) {
  const std::string l = lower(t);
  if (l == "float") return "fp32";
  if (l == "c10::bfloat16" || l == "bfloat16") return "bf16";
  if (l == "c10::half" || l == "half") return "fp16";
  if (l.find("float8") != std::string::npos) return "fp8";
  if (l == "double") return "fp64";
  return "";
}

// Checked product of dims (0 when a dim is negative or the product exceeds 2^62).
std::int64_t numel(const std::vector<std::int64_t>& d, std::size_t from = 0, std::size_t to = SIZE_MAX) {
  std::int64_t n = 1;
  for (std::size_t i = from; i < d.size() && i < to; ++i) {
    if (d[i] < 0) return 0;
    if (d[i] != 0 && n > (std::int64_t{1} << 62) / d[i]) return 0;
    n *= d[i];
  }
  return n;
}

struct GemmDims {
  std::int64_t m = 0, n = 0, k = 0, batch = 1;
  std::size_t a = 0;  // index of the first operand (its type gives the dtype)
};

// M, N, K (and the batch) of the ATen GEMM ops from their inputs; nullopt when the op is not a
// GEMM, `why` set when it is one but the dims do not fit.
std::optional<GemmDims> gemm_dims(const LaunchOp& op, std::string& why) {
  const auto& d = op.input_dims;
  auto dim = [&](std::size_t i) -> const std::vector<std::int64_t>& {
    static const std::vector<std::int64_t> none;
    return i < d.size() ? d[i] : none;
  };
  const std::string& n = op.name;
  GemmDims g;
  auto two = [&](std::size_t a, std::size_t b, bool batched) -> std::optional<GemmDims> {
    const auto& x = dim(a);
    const auto& y = dim(b);
    const std::size_t rank = batched ? 3 : 2;
    if (x.size() != rank || y.size() != rank) {
      why = fmt::format("{}: expected {}-D operands, recorded {}-D and {}-D", n, rank, x.size(), y.size());
      return std::nullopt;
    }
    if (batched && x[0] != y[0]) {
      why = fmt::format("{}: batch sizes differ ({} vs {})", n, x[0], y[0]);
      return std::nullopt;
    }
    if (x[rank - 1] != y[rank - 2]) {
      why = fmt::format("{}: inner dims differ ({} vs {})", n, x[rank - 1], y[rank - 2]);
      return std::nullopt;
    }
    g.batch = batched ? x[0] : 1;
    g.m = x[rank - 2], g.k = x[rank - 1], g.n = y[rank - 1], g.a = a;
    return g;
  };
  if (n == "aten::mm" || n == "aten::_scaled_mm" || n == "aten::_int_mm") return two(0, 1, false);
  if (n == "aten::addmm" || n == "aten::_addmm_activation") return two(1, 2, false);
  if (n == "aten::bmm") return two(0, 1, true);
  if (n == "aten::baddbmm") return two(1, 2, true);
  if (n == "aten::linear") {
    const auto& x = dim(0);
    const auto& w = dim(1);
    if (x.empty() || w.size() != 2 || x.back() != w[1]) {
      why = fmt::format("{}: input and weight dims do not fit", n);
      return std::nullopt;
    }
    g.m = numel(x, 0, x.size() - 1), g.k = x.back(), g.n = w[0], g.a = 0;
    return g;
  }
  return std::nullopt;
}

// Attention ops: (layout of q: true = [B, H, S, D], false = [B, S, H, D]; index of q).
std::optional<std::pair<bool, std::size_t>> attention_layout(const std::string& n) {
  if (n == "aten::_scaled_dot_product_flash_attention" || n == "aten::_scaled_dot_product_efficient_attention" ||
      n == "aten::_scaled_dot_product_cudnn_attention" || n == "aten::_scaled_dot_product_flash_attention_for_cpu")
    return std::pair{true, std::size_t{0}};
  if (n == "aten::_scaled_dot_product_flash_attention_backward" ||
      n == "aten::_scaled_dot_product_efficient_attention_backward" ||
      n == "aten::_scaled_dot_product_cudnn_attention_backward")
    return std::pair{true, std::size_t{1}};  // grad_out first
  if (n == "aten::_flash_attention_forward" || n == "aten::_efficient_attention_forward")
    return std::pair{false, std::size_t{0}};
  if (n == "aten::_flash_attention_backward" || n == "aten::_efficient_attention_backward")
    return std::pair{false, std::size_t{1}};
  return std::nullopt;
}

bool is_gemm_class(const std::string& c) {
  return c == "fp8_gemm" || c == "fp8_grouped_gemm" || c == "bf16_gemm" || c == "gemm";
}

std::string dims_text(const std::vector<std::int64_t>& d) {
  std::string s = "[";
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

}  // namespace

void recorded_shapes(Profile& p) {
  // Kernels per launching op instance (same op name and launch): an op that launched several
  // kernels of one kind gives none of them its shape (it cannot be split among them).
  std::map<std::tuple<std::string, double, std::int64_t>, std::pair<int, int>> per_op;  // -> (gemm-class, others)
  for (const auto& k : p.kernels) {
    if (k.op.empty()) continue;
    auto& c = per_op[{k.op.name, k.launch_ts_us, k.launch_tid}];
    (is_gemm_class(k.op_class) ? c.first : c.second)++;
  }
  for (auto& k : p.kernels) {
    if (!k.collective.empty()) {
      const auto& c = k.collective;
      const std::int64_t b = type_bytes(c.dtype);
      const std::int64_t elems = std::max(c.in_nelems, c.out_nelems);
      if (b > 0 && elems > 0 && elems <= (std::int64_t{1} << 58)) {
        k.shape = Shape{0, 0, 0, 0, 0, elems * b,
                        fmt::format("recorded collective: {} of {} x {} ({} B) in group '{}' of {} ranks", c.name, elems,
                                    c.dtype, b, c.group, c.group_size)};
      } else {
        k.shape.how = fmt::format("recorded collective {}: bytes unknown (dtype '{}', {} elements)", c.name, c.dtype, elems);
      }
      continue;
    }
    if (k.op.empty()) continue;
    const auto& op = k.op;
    const auto counts = per_op[{op.name, k.launch_ts_us, k.launch_tid}];
    std::string why;
    if (const auto g = gemm_dims(op, why)) {
      if (!is_gemm_class(k.op_class)) continue;  // e.g. a split-K reduction kernel of the GEMM
      if (counts.first > 1) {
        k.shape.how = fmt::format("recorded {}: launched {} GEMM kernels; the shape is not split among them", op.name,
                                  counts.first);
        continue;
      }
      if (g->m <= 0 || g->n <= 0 || g->k <= 0) {
        k.shape.how = fmt::format("recorded {}: empty or negative dims", op.name);
        continue;
      }
      k.shape = Shape{g->m, g->n, g->k, g->batch, 0, 0,
                      fmt::format("recorded {}: M={} N={} K={}{} (Input Dims)", op.name, g->m, g->n, g->k,
                                  g->batch > 1 ? fmt::format(" x {} batches", g->batch) : "")};
      if (g->a < op.input_types.size() && !dtype_name(op.input_types[g->a]).empty())
        k.dtype = dtype_name(op.input_types[g->a]);
      continue;
    }
    if (!why.empty()) {
      if (is_gemm_class(k.op_class)) k.shape.how = "recorded " + why;
      continue;
    }
    if (const auto att = attention_layout(op.name)) {
      if (k.op_class != "attn_fwd" && k.op_class != "attn_bwd") continue;
      const auto& [bhsd, qi] = *att;
      if (qi + 1 >= op.input_dims.size() || op.input_dims[qi].size() != 4 || op.input_dims[qi + 1].size() != 4) {
        k.shape.how = fmt::format("recorded {}: expected 4-D query and key", op.name);
        continue;
      }
      const auto& q = op.input_dims[qi];
      const auto& kk = op.input_dims[qi + 1];
      const std::int64_t b = q[0], h = bhsd ? q[1] : q[2], s = bhsd ? q[2] : q[1], d = q[3];
      const std::int64_t skv = bhsd ? kk[2] : kk[1];
      if (b <= 0 || h <= 0 || s <= 0 || d <= 0 || skv <= 0 || numel(q) == 0) {
        k.shape.how = fmt::format("recorded {}: empty or negative dims", op.name);
        continue;
      }
      k.shape = Shape{s, skv, d, b * h, b * s, 0,
                      fmt::format("recorded {}: q {} (batch {} x {} heads, {} query / {} key tokens, head dim {}; causal "
                                  "masking not recorded)",
                                  op.name, dims_text(q), b, h, s, skv, d)};
      continue;
    }
    // Memory-bound: the bytes of the op's input tensors (outputs are not recorded).
    if (k.op_class == "norm" || k.op_class == "elementwise" || k.op_class == "permute" || k.op_class == "quant_cast") {
      if (counts.second > 1) {
        k.shape.how = fmt::format("recorded {}: launched {} kernels; its bytes are not split among them", op.name,
                                  counts.second);
        continue;
      }
      std::int64_t bytes = 0;
      bool known = true;
      for (std::size_t i = 0; i < op.input_dims.size(); ++i) {
        const std::string t = i < op.input_types.size() ? op.input_types[i] : std::string();
        if (t == "Scalar" || t.empty() || op.input_dims[i].empty()) continue;
        const std::int64_t b = type_bytes(t);
        const std::int64_t n = numel(op.input_dims[i]);
        if (b == 0 || (n > 0 && bytes > (std::int64_t{1} << 58) - n * b)) {
          known = false;
          break;
        }
        bytes += n * b;
      }
      if (known && bytes > 0)
        k.shape = Shape{0, 0, 0, 0, 0, bytes,
                        fmt::format("recorded {}: input tensor bytes (Input Dims x Input type; outputs not recorded)", op.name)};
    }
  }
}

}  // namespace trainsim::calibration
