#include "profile_convert.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

namespace trainsim::profiler {

namespace {

std::string version_string(int v) {  // 13000 -> "13.0", 12080 -> "12.8"
  if (v <= 0) return "";
  return fmt::format("{}.{}", v / 1000, (v % 1000) / 10);
}

std::int64_t blocks(const ActivityKernel& k) {
  std::int64_t n = 1;
  for (auto d : k.grid) n *= std::max<std::int64_t>(d, 1);
  return n;
}

const DeviceInfo& device_of(const RunInfo& run, std::uint32_t id) {
  for (const auto& d : run.devices)
    if (d.id == id) return d;
  return run.devices.front();
}

}  // namespace

std::string gpu_key_from_name(const std::string& name) {
  std::vector<std::string> words;
  std::string w;
  for (char c : name + " ") {
    if (c == ' ') {
      if (!w.empty()) words.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  std::size_t i = 0;
  if (words.size() > 1 && (words[0] == "NVIDIA" || words[0] == "Nvidia" || words[0] == "nvidia")) i = 1;
  std::string key;
  if (i < words.size())
    for (char c : words[i])
      if (std::isalnum(static_cast<unsigned char>(c))) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key;
}

double median(std::vector<double> v) {
  if (v.empty()) throw std::invalid_argument("median of an empty list");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Conversion convert(const Recording& r) {
  if (r.run.devices.empty()) throw std::invalid_argument("recording names no device");
  const auto& classes = calibration::op_classes();
  for (const auto& op : r.ops)
    if (std::find(classes.begin(), classes.end(), op.op_class) == classes.end())
      throw std::invalid_argument(fmt::format("op '{}': unknown op class '{}'", op.name, op.op_class));

  std::map<std::uint64_t, const Launch*> by_external;
  for (const auto& l : r.launches) {
    if (l.op >= r.ops.size())
      throw std::invalid_argument(fmt::format("launch {} names op {} of {}", l.external_id, l.op, r.ops.size()));
    if (!by_external.emplace(l.external_id, &l).second)
      throw std::invalid_argument(fmt::format("two launches with external id {}", l.external_id));
  }
  // correlation id -> external id (the profiler's kind only). CUPTI writes one record per API
  // call under a pushed id, so one correlation id may appear more than once, always with the
  // same external id.
  std::map<std::uint32_t, std::uint64_t> ext_of;
  for (const auto& c : r.correlations) {
    if (c.kind != kExternalKindProfiler) continue;
    auto [it, fresh] = ext_of.emplace(c.correlation_id, c.external_id);
    if (!fresh && it->second != c.external_id)
      throw std::invalid_argument(fmt::format("correlation {} under two external ids ({} and {})", c.correlation_id,
                                              it->second, c.external_id));
  }
  std::map<std::uint32_t, const Launch*> by_corr;
  for (const auto& [corr, ext] : ext_of) {
    auto it = by_external.find(ext);
    if (it != by_external.end()) by_corr[corr] = it->second;
  }
  // correlation id -> the API call that launched it (runtime preferred over driver).
  std::map<std::uint32_t, const ApiCall*> api_of;
  for (const auto& a : r.api) {
    auto [it, fresh] = api_of.emplace(a.correlation_id, &a);
    if (!fresh && it->second->driver && !a.driver) it->second = &a;
  }

  Conversion out;
  // Kernels with their launch; warm-up and unattributed ones are dropped from the profile but
  // communication kernels among them still count as holding SMs.
  struct Attributed {
    const ActivityKernel* k;
    const Launch* l;  // nullptr = unattributed
  };
  std::vector<Attributed> all;
  for (const auto& k : r.kernels) {
    if (k.start_ns == 0 && k.end_ns == 0) {  // CUPTI: timestamps could not be collected
      ++out.untimed;
      continue;
    }
    if (k.end_ns < k.start_ns)
      throw std::invalid_argument(fmt::format("kernel '{}' (correlation {}) ends before it starts", k.name,
                                              k.correlation_id));
    auto it = by_corr.find(k.correlation_id);
    all.push_back({&k, it == by_corr.end() ? nullptr : it->second});
  }
  std::vector<const Attributed*> kept;
  for (const auto& a : all) {
    if (!a.l) ++out.unattributed;
    else if (a.l->warmup) ++out.warmup_kernels;
    else kept.push_back(&a);
  }
  std::sort(kept.begin(), kept.end(), [](const Attributed* a, const Attributed* b) {
    return std::tie(a->k->start_ns, a->k->device_id, a->k->stream_id, a->k->correlation_id) <
           std::tie(b->k->start_ns, b->k->device_id, b->k->stream_id, b->k->correlation_id);
  });

  // Per (device, stream), everything that ran there in start order: is a profile kernel's
  // predecessor on its stream also a profile kernel?
  std::set<const ActivityKernel*> in_profile;
  for (const Attributed* a : kept) in_profile.insert(a->k);
  struct StreamItem {
    std::uint64_t start, end;
    const ActivityKernel* k;  // nullptr = memset / memcpy
  };
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::vector<StreamItem>> on_stream;
  for (const auto& a : all) on_stream[{a.k->device_id, a.k->stream_id}].push_back({a.k->start_ns, a.k->end_ns, a.k});
  for (const auto& c : r.copies)
    if (c.start_ns != 0 || c.end_ns != 0) on_stream[{c.device_id, c.stream_id}].push_back({c.start_ns, c.end_ns, nullptr});
  std::map<const ActivityKernel*, bool> foreign_before;  // profile kernel -> predecessor not in profile
  for (auto& [key, items] : on_stream) {
    std::stable_sort(items.begin(), items.end(), [](const StreamItem& a, const StreamItem& b) {
      return std::tie(a.start, a.end) < std::tie(b.start, b.end);
    });
    for (std::size_t i = 1; i < items.size(); ++i)
      if (items[i].k && in_profile.count(items[i].k))
        foreign_before[items[i].k] = !(items[i - 1].k && in_profile.count(items[i - 1].k));
  }
  std::map<const ActivityKernel*, const ApiCall*> launch_of;
  for (const Attributed* a : kept) {
    auto it = api_of.find(a->k->correlation_id);
    if (it == api_of.end()) continue;
    ++out.with_launch;
    if (foreign_before[a->k]) ++out.launch_withheld;
    else launch_of[a->k] = it->second;
  }

  // Provenance.
  calibration::Profile& p = out.profile;
  const RunInfo& run = r.run;
  const DeviceInfo& d0 = run.devices.front();
  auto& pv = p.provenance;
  pv.gpu = d0.name;
  pv.gpu_key = run.gpu_key.empty() ? gpu_key_from_name(d0.name) : run.gpu_key;
  pv.num_sms = d0.num_sms;
  pv.driver = version_string(run.driver_version);
  pv.cuda = version_string(run.runtime_version);
  pv.software = run.software;
  pv.date = run.date;
  pv.source_file = run.model_file;
  std::string src = fmt::format("{}; warm-up {}, repetitions {}; compute capability {}.{}", run.command,
                                run.warmup, run.reps, d0.cc_major, d0.cc_minor);
  if (d0.sm_clock_khz > 0 || d0.mem_clock_khz > 0)
    src += fmt::format("; peak SM clock {} MHz, peak memory clock {} MHz", d0.sm_clock_khz / 1000,
                       d0.mem_clock_khz / 1000);
  for (const auto& n : run.notes) src += "; " + n;
  src += fmt::format("; {} of {} profile kernels matched to their runtime/driver launch record", out.with_launch,
                     kept.size());
  if (out.launch_withheld > 0)
    src += fmt::format(" ({} launch times withheld: other work ran on the stream just before them)", out.launch_withheld);
  if (out.auxiliary > 0)
    src += fmt::format("; {} auxiliary kernels (not the longest of their launch) are class other", out.auxiliary);
  src += fmt::format("; dropped: {} warm-up kernels, {} kernels of no launch, {} kernels without CUPTI timestamps",
                     out.warmup_kernels, out.unattributed, out.untimed);
  if (r.decoded.unknown_kind > 0 || r.decoded.other_external_kind > 0)
    src += fmt::format("; ignored: {} CUPTI records of other kinds, {} external correlations of other kinds",
                       r.decoded.unknown_kind, r.decoded.other_external_kind);
  pv.source = src;
  pv.trace_name = "CUPTI activity (CONCURRENT_KERNEL, RUNTIME, DRIVER, EXTERNAL_CORRELATION, MEMSET, MEMCPY)";
  pv.rank = -1;
  pv.world_size = static_cast<std::int64_t>(run.devices.size());
  pv.classifier = "";  // classes come from what was launched, not from name rules
  pv.shapes = "launched shapes (trainsim-profile)";

  // A non-communication launch with several kernels on a device (a split-K GEMM and its
  // reduction, ...): its longest kernel carries the op's class and shape, the others are
  // class "other", so that a fit never takes a reduction kernel for a whole GEMM.
  std::map<std::pair<const Launch*, std::uint32_t>, const ActivityKernel*> main_of;
  for (const Attributed* a : kept) {
    if (r.ops[a->l->op].comm) continue;
    auto& m = main_of[{a->l, a->k->device_id}];
    if (!m || a->k->end_ns - a->k->start_ns > m->end_ns - m->start_ns) m = a->k;
  }

  std::uint64_t t0 = kept.empty() ? 0 : kept.front()->k->start_ns;
  for (const auto& [k, a] : launch_of) t0 = std::min(t0, a->start_ns);
  p.t0_us = static_cast<double>(t0) / 1000.0;
  for (const Attributed* a : kept) {
    const ActivityKernel& k = *a->k;
    const OpSpec& op = r.ops[a->l->op];
    const std::int64_t sms = device_of(run, k.device_id).num_sms;
    calibration::KernelRecord rec;
    rec.name = k.name;
    rec.rule = "annotated";
    if (op.comm || main_of[{a->l, k.device_id}] == &k) {
      rec.op_class = op.op_class;
      rec.shape = calibration::Shape{op.m, op.n, op.k, op.groups, op.tokens, op.bytes, op.how};
    } else {
      ++out.auxiliary;
      rec.op_class = "other";
      rec.shape.how = fmt::format("auxiliary kernel of a {} launch (not its longest kernel): no shape; the op's time in "
                                  "the summary sums all its kernels",
                                  op.name);
    }
    rec.dtype = op.dtype;
    rec.ts_us = static_cast<double>(k.start_ns - t0) / 1000.0;
    rec.dur_us = static_cast<double>(k.end_ns - k.start_ns) / 1000.0;
    rec.device = k.device_id;
    rec.stream = k.stream_id;
    rec.correlation = k.correlation_id;
    for (std::size_t i = 0; i < 3; ++i) {
      rec.grid[i] = k.grid[i];
      rec.block[i] = k.block[i];
    }
    if (op.comm) {
      rec.sms_available = sms > 0 ? std::min(blocks(k), sms) : 0;
      rec.comm_sms_held = 0;
    } else if (sms > 0) {
      // Per other stream of the same device, the most SMs any one overlapping communication
      // kernel held (kernels of one stream run one after another); summed over streams.
      std::map<std::uint32_t, std::int64_t> per_stream;
      for (const auto& c : all) {
        if (!c.l || !r.ops[c.l->op].comm) continue;
        const ActivityKernel& ck = *c.k;
        if (ck.device_id != k.device_id || ck.stream_id == k.stream_id) continue;
        if (ck.start_ns < k.end_ns && k.start_ns < ck.end_ns)
          per_stream[ck.stream_id] = std::max(per_stream[ck.stream_id], std::min(blocks(ck), sms));
      }
      std::int64_t held = 0;
      for (const auto& [s, n] : per_stream) held += n;
      rec.comm_sms_held = std::min(held, sms);
      const std::int64_t limit = op.sm_limit > 0 ? std::min(op.sm_limit, sms) : sms;
      rec.sms_available = std::min(limit, sms - rec.comm_sms_held);
    }
    if (auto it = launch_of.find(&k); it != launch_of.end()) {
      rec.launch_ts_us = static_cast<double>(it->second->start_ns - t0) / 1000.0;
      rec.launch_tid = it->second->thread_id;
    } else {
      rec.launch_ts_us = -1;
      rec.launch_tid = 0;
    }
    rec.phase = op.name;
    p.kernels.push_back(std::move(rec));
  }

  // Summary: per (op, measured rep), per device the summed kernel time; max over devices.
  std::map<std::pair<std::size_t, int>, std::map<std::uint32_t, double>> rep_time;
  std::vector<std::size_t> kernels_of(r.ops.size(), 0);
  for (const Attributed* a : kept) {
    rep_time[{a->l->op, a->l->rep}][a->k->device_id] += static_cast<double>(a->k->end_ns - a->k->start_ns) / 1000.0;
    ++kernels_of[a->l->op];
  }
  std::vector<std::vector<double>> times(r.ops.size());
  for (const auto& [key, per_dev] : rep_time) {
    double t = 0;
    for (const auto& [dev, us] : per_dev) t = std::max(t, us);
    times[key.first].push_back(t);
  }
  for (std::size_t i = 0; i < r.ops.size(); ++i) {
    OpSummary s;
    s.op = i;
    s.reps = times[i].size();
    s.kernels = kernels_of[i];
    if (!times[i].empty()) {
      s.median_us = median(times[i]);
      s.min_us = *std::min_element(times[i].begin(), times[i].end());
      s.max_us = *std::max_element(times[i].begin(), times[i].end());
    }
    out.summary.push_back(s);
  }
  return out;
}

std::string write_summary(const Conversion& c, const std::vector<OpSpec>& ops) {
  std::string out =
      "op\tclass\tdtype\tm\tn\tk\tgroups\ttokens\tbytes\treps\tkernels_per_rep\tmedian_us\tmin_us\tmax_us\t"
      "tflops_at_median\tgbps_at_median\n";
  for (const auto& s : c.summary) {
    const OpSpec& op = ops.at(s.op);
    const double g = static_cast<double>(std::max<std::int64_t>(op.groups, 1));
    const double flops = 2.0 * static_cast<double>(op.m) * static_cast<double>(op.n) * static_cast<double>(op.k) * g;
    const bool timed = s.reps > 0 && s.median_us > 0;
    out += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.3f}\t{:.3f}\t{:.3f}\t{}\t{}\n", op.name,
                       op.op_class, op.dtype, op.m, op.n, op.k, op.groups, op.tokens, op.bytes, s.reps,
                       s.reps > 0 ? fmt::format("{:.2f}", static_cast<double>(s.kernels) / static_cast<double>(s.reps))
                                  : std::string("0"),
                       s.median_us, s.min_us, s.max_us,
                       timed && flops > 0 ? fmt::format("{:.1f}", flops / (s.median_us * 1e6)) : std::string("-"),
                       timed && op.bytes > 0 ? fmt::format("{:.1f}", static_cast<double>(op.bytes) / (s.median_us * 1e3))
                                             : std::string("-"));
  }
  return out;
}

}  // namespace trainsim::profiler
