#include "calibration/replay.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "calibration/calibrate.hpp"
#include "calibration/fit.hpp"
#include "calibration/kineto.hpp"
#include "core/error.hpp"
#include "core/limits.hpp"
#include "engine/engine.hpp"
#include "engine/resource.hpp"

namespace trainsim::calibration {

namespace {

double d(std::int64_t v) { return static_cast<double>(v); }

bool is_comm(const std::string& cls) { return cls.rfind("a2a_", 0) == 0 || cls == "collective"; }

double launch_of(const KernelRecord& k) { return k.launch_ts_us >= 0 ? k.launch_ts_us : k.ts_us; }

// Length of the union of intervals.
using Intervals = std::vector<std::pair<double, double>>;
Intervals merged(Intervals v) {
  std::sort(v.begin(), v.end());
  Intervals out;
  for (const auto& iv : v) {
    if (iv.second <= iv.first) continue;
    if (!out.empty() && iv.first <= out.back().second) out.back().second = std::max(out.back().second, iv.second);
    else out.push_back(iv);
  }
  return out;
}
// |A \ B| for merged interval sets.
double minus_length(const Intervals& a, const Intervals& b) {
  double total = 0;
  std::size_t j = 0;
  for (const auto& [s, e] : a) {
    double covered = 0;
    while (j < b.size() && b[j].second <= s) ++j;
    for (std::size_t t = j; t < b.size() && b[t].first < e; ++t)
      covered += std::min(e, b[t].second) - std::max(s, b[t].first);
    total += (e - s) - covered;
  }
  return total;
}

double exposed_comm(const Profile& p, const std::vector<double>& start, const std::vector<double>& dur,
                    const std::set<std::int64_t>& comm_streams) {
  Intervals comm, compute;
  for (std::size_t i = 0; i < p.kernels.size(); ++i)
    (comm_streams.count(p.kernels[i].stream) ? comm : compute).push_back({start[i], start[i] + dur[i]});
  return minus_length(merged(comm), merged(compute));
}

struct SimCtx {
  const Profile* p = nullptr;
  const std::vector<double>* dur = nullptr;
  const std::vector<std::vector<std::size_t>>* deps = nullptr;
  std::map<std::int64_t, engine::Stream>* streams = nullptr;
  std::vector<double>* start = nullptr;
  std::vector<double>* end = nullptr;
  std::vector<std::size_t>* order = nullptr;
  double latency_us = 0, gap_us = 0;
};

// Engine event: kernel order[arg] is launched (CPU) now; it starts when its stream is free (plus
// the kernel gap), the launch has reached the GPU and the events it waits for have completed.
// Every stream predecessor and every event kernel was launched earlier, so their end times are
// already known when this event runs.
void on_launch(engine::Simulation& sim, void* ctx, std::uint64_t arg) {
  auto& c = *static_cast<SimCtx*>(ctx);
  const std::size_t i = (*c.order)[arg];
  const KernelRecord& k = c.p->kernels[i];
  engine::Stream& s = (*c.streams)[k.stream];
  Time ready = sim.now() + Time::from_us(c.latency_us);
  for (std::size_t dep : (*c.deps)[i]) ready = std::max(ready, Time::from_us((*c.end)[dep]));
  if (s.busy() > Time::zero()) ready = std::max(ready, s.free_at() + Time::from_us(c.gap_us));
  const Time st = s.reserve(ready, Time::from_us((*c.dur)[i]));
  (*c.start)[i] = st.micros();
  (*c.end)[i] = (st + Time::from_us((*c.dur)[i])).micros();
}

}  // namespace

std::vector<ReplayWait> resolve_waits(const Profile& p, std::int64_t* unresolved) {
  // Kernels in CPU launch order (per launching thread).
  std::vector<std::size_t> by_launch(p.kernels.size());
  std::iota(by_launch.begin(), by_launch.end(), 0);
  std::stable_sort(by_launch.begin(), by_launch.end(), [&](std::size_t a, std::size_t b) {
    return std::make_tuple(launch_of(p.kernels[a]), p.kernels[a].correlation) <
           std::make_tuple(launch_of(p.kernels[b]), p.kernels[b].correlation);
  });
  std::vector<ReplayWait> out;
  std::int64_t bad = 0;
  for (std::size_t si = 0; si < p.syncs.size(); ++si) {
    const SyncCall& sc = p.syncs[si];
    if (sc.name != "cudaStreamWaitEvent") continue;
    // Waiting stream: the stream of the next kernel this thread launches after the call.
    const KernelRecord* next = nullptr;
    std::size_t next_i = 0;
    for (std::size_t i : by_launch) {
      const auto& k = p.kernels[i];
      if (k.launch_tid == sc.tid && launch_of(k) >= sc.ts_us && (k.correlation > sc.correlation || launch_of(k) > sc.ts_us)) {
        next = &k, next_i = i;
        break;
      }
    }
    if (next == nullptr) { ++bad; continue; }
    // Event: the trace has no cudaEventRecord calls, so which kernel the event follows is not
    // recorded. Taken as the kernel on another stream, launched before the wait call, that ended
    // last by the time the waiting kernel started (measured; 1 us slack for the trace's rounding).
    // The measured timing identifies the edge only; no duration is taken from it.
    const KernelRecord* ev = nullptr;
    std::size_t ev_i = 0;
    for (std::size_t i : by_launch) {
      const auto& k = p.kernels[i];
      if (launch_of(k) > sc.ts_us || (launch_of(k) == sc.ts_us && k.correlation > sc.correlation)) break;
      if (k.stream == next->stream || k.ts_us + k.dur_us > next->ts_us + 1.0) continue;
      if (ev == nullptr || k.ts_us + k.dur_us > ev->ts_us + ev->dur_us) ev = &k, ev_i = i;
    }
    if (ev == nullptr) { ++bad; continue; }
    out.push_back(ReplayWait{si, next_i, ev_i});
  }
  if (unresolved != nullptr) *unresolved = bad;
  return out;
}

ReplayResult replay(const Profile& p, const Calibration& cal, std::int64_t v_head_dim, bool group_median) {
  ReplayResult r;
  const std::size_t n = p.kernels.size();
  // Every simulated instant must fit Time (int64 picoseconds): profile times are bounded here,
  // fitted durations below.
  const std::string& file = p.provenance.source_file;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& k = p.kernels[i];
    if (!(k.ts_us >= 0 && k.dur_us >= 0 && k.ts_us + k.dur_us <= kMaxTraceSpanUs && k.launch_ts_us <= kMaxTraceSpanUs))
      throw DataError(SourcePos{file}, fmt::format("kernel #{} ('{:.60}'): times outside [0, {:.0e}] us from the profile's "
                                                   "start; replay cannot represent them (docs/limits.md)",
                                                   i, k.name, kMaxTraceSpanUs));
  }
  {
    std::int64_t waits = 0;
    for (const auto& sc : p.syncs) waits += sc.name == "cudaStreamWaitEvent";
    if (waits > 0 && static_cast<double>(waits) * static_cast<double>(n) > static_cast<double>(kMaxReplayWaitPairs))
      throw DataError(SourcePos{file}, fmt::format("{} kernels and {} cudaStreamWaitEvent calls: resolving the waits "
                                                   "would take {:.2g} (wait, kernel) pairs, above the replay work limit "
                                                   "of {:.2g} (docs/limits.md); replay a shorter trace",
                                                   n, waits, static_cast<double>(waits) * static_cast<double>(n),
                                                   static_cast<double>(kMaxReplayWaitPairs)));
  }
  r.launch_latency_us = cal.launch_latency_us;
  r.kernel_gap_us = cal.kernel_gap_us;

  // Per-group costs (mean, or median with group_median). Group = (class, name, grid, phase, ordinal): the ordinal counts earlier
  // kernels of the same name and grid inside the same annotation range (the same phase
  // instance), so the k-th such kernel of every layer's attn(F) forms one group - the same
  // operation of each layer - rather than mixing the layer's differently shaped GEMMs.
  std::vector<std::int64_t> ordinal(n, 0);
  {
    std::vector<std::size_t> by_launch(n);
    std::iota(by_launch.begin(), by_launch.end(), 0);
    std::stable_sort(by_launch.begin(), by_launch.end(), [&](std::size_t a, std::size_t b) {
      return std::make_tuple(launch_of(p.kernels[a]), p.kernels[a].correlation) <
             std::make_tuple(launch_of(p.kernels[b]), p.kernels[b].correlation);
    });
    std::map<std::tuple<std::int64_t, std::string, std::array<std::int64_t, 3>>, std::int64_t> seen;
    // The phase instance: the innermost annotation around the launch (the one that named the
    // kernel's phase).
    std::vector<double> at(n);
    for (std::size_t i = 0; i < n; ++i) at[i] = p.kernels[i].phase.empty() ? -1.0 : launch_of(p.kernels[i]);
    const std::vector<int> inner = innermost_annotations(p.annotations, at);
    for (std::size_t i : by_launch) {
      const auto& k = p.kernels[i];
      std::int64_t inst = inner[i];
      if (inst >= 0 && p.annotations[static_cast<std::size_t>(inst)].name != k.phase) inst = -1;
      ordinal[i] = seen[{inst, k.name, k.grid}]++;
    }
  }
  using Key = std::tuple<std::string, std::string, std::array<std::int64_t, 3>, std::string, std::int64_t>;
  std::map<Key, std::vector<double>> groups;
  auto key_of = [&](std::size_t i) {
    const auto& k = p.kernels[i];
    return Key{k.op_class, k.name, k.grid, k.phase, ordinal[i]};
  };
  for (std::size_t i = 0; i < n; ++i) groups[key_of(i)].push_back(p.kernels[i].dur_us);
  std::map<Key, double> med;
  for (auto& [key, v] : groups) {
    double sum = 0;
    for (double x : v) sum += x;
    med[key] = group_median ? median(v) : sum / static_cast<double>(v.size());
  }

  std::vector<double> dur(n, 0);
  r.kernel_source.assign(n, group_median ? "per-group-median" : "per-group-mean");
  for (std::size_t i = 0; i < n; ++i) dur[i] = med[key_of(i)];
  for (std::size_t i = 0; i < n; ++i) {
    const auto& k = p.kernels[i];
    const std::int64_t sms = kernel_sms(k);
    if ((k.op_class == "fp8_grouped_gemm" || k.op_class == "fp8_gemm") && k.shape.m > 0 && k.shape.n > 0 &&
        k.shape.k > 0) {
      // Dense and grouped FP8 GEMMs with inferred shapes: the GEMM fit, times the
      // weight-gradient factor for kernels whose shape rule says they compute dW.
      const double wf = k.shape.how.find("bwd_weight") != std::string::npos ? cal.gemm_fp8_wgrad_factor : 1.0;
      dur[i] = wf * gemm_time_us(cal.gemm_fp8, k.shape.m, k.shape.n, k.shape.k, std::max<std::int64_t>(k.shape.groups, 1), sms);
      r.kernel_source[i] = "fitted-shape";
    } else if (k.op_class == "attn_fwd" && k.shape.m > 0 && v_head_dim > 0) {
      dur[i] = attention_flops(k.shape, v_head_dim, false) / (cal.attn_fwd_flops_per_sm_us * d(sms));
      r.kernel_source[i] = "fitted-shape";
    }
  }
  if (v_head_dim > 0) {
    // A backward op's fitted time is split over its kernels in proportion to their group medians.
    for (const auto& op : attention_bwd_ops(p)) {
      const KernelRecord* main = nullptr;
      double med_sum = 0;
      for (std::size_t i : op) {
        med_sum += med[key_of(i)];
        if (main == nullptr || p.kernels[i].dur_us > main->dur_us) main = &p.kernels[i];
      }
      if (main->shape.m <= 0 || med_sum <= 0) continue;
      const double t = attention_flops(main->shape, v_head_dim, true) / (cal.attn_bwd_flops_per_sm_us * d(kernel_sms(*main)));
      for (std::size_t i : op) {
        dur[i] = t * med[key_of(i)] / med_sum;
        r.kernel_source[i] = "fitted-shape";
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i)
    if (!(dur[i] >= 0 && dur[i] <= kMaxTraceSpanUs))
      throw DataError(SourcePos{file}, fmt::format("kernel #{} ('{:.60}'): its {} duration {:.3g} us is outside [0, {:.0e}] us "
                                                   "(a recorded or inferred shape too large for the fit?)",
                                                   i, p.kernels[i].name, r.kernel_source[i], dur[i], kMaxTraceSpanUs));
  {
    // The latest simulated end is below the latest launch plus every duration and gap.
    double bound = 0;
    for (std::size_t i = 0; i < n; ++i)
      bound = std::max(bound, launch_of(p.kernels[i]));
    for (std::size_t i = 0; i < n; ++i) bound += dur[i] + cal.kernel_gap_us + cal.launch_latency_us;
    if (!(bound <= 9e12))
      throw DataError(SourcePos{file}, fmt::format("the replayed kernels could end {:.3g} us after the start, beyond what "
                                                   "simulated time holds (9.2e12 us, docs/limits.md)",
                                                   bound));
  }
  for (const auto& s : r.kernel_source) ++r.cost_sources[s];

  // Cross-stream waits.
  r.waits = resolve_waits(p, &r.waits_unresolved);
  std::vector<std::vector<std::size_t>> deps(n);
  for (const auto& w : r.waits) {
    deps[w.waiter].push_back(w.event);
    const auto& a = p.kernels[w.event];
    if (p.kernels[w.waiter].ts_us + 1.0 < a.ts_us + a.dur_us) ++r.waits_inconsistent;  // 1 us: trace rounding
  }

  // Simulate: one engine event per kernel launch, in CPU launch order.
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::make_tuple(launch_of(p.kernels[a]), p.kernels[a].correlation, a) <
           std::make_tuple(launch_of(p.kernels[b]), p.kernels[b].correlation, b);
  });
  std::map<std::int64_t, engine::Stream> streams;
  r.simulated_start_us.assign(n, 0);
  std::vector<double> end(n, 0);
  SimCtx ctx{&p, &dur, &deps, &streams, &r.simulated_start_us, &end, &order, cal.launch_latency_us, cal.kernel_gap_us};
  engine::Simulation sim;
  sim.reserve(n);
  for (std::size_t j = 0; j < n; ++j)
    sim.schedule_at(Time::from_us(launch_of(p.kernels[order[j]])), on_launch, &ctx, j);
  sim.run();
  r.simulated_dur_us = dur;

  // Figures.
  double m0 = 1e300, m1 = -1e300, s0 = 1e300, s1 = -1e300;
  std::map<std::int64_t, ReplayStream> per;
  std::map<std::int64_t, double> comm_busy;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& k = p.kernels[i];
    m0 = std::min(m0, k.ts_us), m1 = std::max(m1, k.ts_us + k.dur_us);
    s0 = std::min(s0, r.simulated_start_us[i]), s1 = std::max(s1, end[i]);
    auto& st = per[k.stream];
    st.stream = k.stream;
    ++st.kernels;
    st.measured_busy_us += k.dur_us;
    st.simulated_busy_us += dur[i];
    if (is_comm(k.op_class)) comm_busy[k.stream] += k.dur_us;
  }
  std::set<std::int64_t> comm_streams;
  for (auto& [id, st] : per) {
    st.role = comm_busy[id] > 0.5 * st.measured_busy_us ? "communication" : "compute";
    if (st.role == "communication") comm_streams.insert(id);
    r.streams.push_back(st);
  }
  r.measured_span_us = n ? m1 - m0 : 0;
  r.simulated_span_us = n ? s1 - s0 : 0;
  r.error_pct = r.measured_span_us > 0 ? (r.simulated_span_us / r.measured_span_us - 1.0) * 100.0 : 0;
  std::vector<double> mstart(n), mdur(n);
  for (std::size_t i = 0; i < n; ++i) mstart[i] = p.kernels[i].ts_us, mdur[i] = p.kernels[i].dur_us;
  r.measured_exposed_comm_us = exposed_comm(p, mstart, mdur, comm_streams);
  r.simulated_exposed_comm_us = exposed_comm(p, r.simulated_start_us, dur, comm_streams);
  return r;
}

}  // namespace trainsim::calibration
