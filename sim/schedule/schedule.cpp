#include "schedule/schedule.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "schedule/families.hpp"

namespace trainsim::schedule {

void require(bool ok, std::string_view option, std::string_view message) {
  if (!ok) throw UsageError(fmt::format("{}: {}", option, message));
}

const std::vector<ScheduleInfo>& registry() {
  static const std::vector<ScheduleInfo> table = {
      {"gpipe", "GPipe (Huang et al. 2019, arXiv:1811.06965)",
       "all forwards, then all backwards; bubble (P-1)(F+B), M micro-batches in flight", build_gpipe},
      {"1f1b", "1F1B / PipeDream-Flush (Narayanan et al. 2021, arXiv:2006.09503)",
       "P-r-1 warm-up forwards, then one forward one backward; bubble (P-1)(F+B), P in flight",
       build_1f1b},
      {"interleaved", "interleaved 1F1B (Megatron-LM, Narayanan et al. SC21, arXiv:2104.04473)",
       "v model chunks per rank in Megatron's order; bubble (P-1)(F+B)/v", build_interleaved},
      {"zb1p", "ZB-H1 (Qi et al. 2024, \"Zero Bubble Pipeline Parallelism\", arXiv:2401.10241)",
       "1F1B with backward split into I and W, W deferred into the bubbles; bubble (P-1)(F+B-2W)",
       build_zb1p},
      {"dualpipe", "DualPipe (DeepSeek-V3 report arXiv:2412.19437 §3.2.1; deepseek-ai/DualPipe)",
       "bidirectional, two chunks per rank, F&B pairs overlapped; bubble (P/2-1)(F&B+B-3W)",
       build_dualpipe},
  };
  return table;
}

const ScheduleInfo& find(std::string_view name) {
  for (const auto& s : registry())
    if (name == s.name) return s;
  std::string names;
  for (const auto& s : registry()) names += std::string(names.empty() ? "" : ", ") + s.name;
  throw UsageError(fmt::format("--kind: unknown schedule '{}' (known: {})", name, names));
}

Schedule build(std::string_view name, const ScheduleParams& params) {
  const ScheduleInfo& info = find(name);
  require(params.pp >= 1, "--pp", fmt::format("needs at least 1 pipeline rank, got {}", params.pp));
  require(params.microbatches >= 1, "--microbatches",
          fmt::format("needs at least 1 micro-batch, got {}", params.microbatches));
  require(params.vpp >= 1, "--vpp", fmt::format("needs at least 1 chunk per rank, got {}", params.vpp));
  require(params.vpp == 1 || name == "interleaved", "--vpp",
          fmt::format("applies to --kind interleaved only, not {}", name));
  // The work limit (core/limits.hpp, docs/limits.md), before anything is allocated.
  const std::int64_t slots = std::int64_t{params.pp} * params.vpp * params.microbatches;
  require(slots <= kMaxPipelineSlots, "--microbatches",
          fmt::format("--pp {} x --vpp {} x --microbatches {} = {} pipeline slots; the work limit is {} "
                      "(docs/limits.md)",
                      params.pp, params.vpp, params.microbatches, slots, kMaxPipelineSlots));
  return info.build(params);
}

std::vector<int> peak_inflight(const Schedule& s) {
  std::vector<int> out;
  for (const auto& ops : s.order) {
    int cur = 0, peak = 0;
    for (const auto& op : ops) {
      if (op.has_forward()) ++cur;
      peak = std::max(peak, cur);
      if (op.kind == graph::OpKind::B || op.kind == graph::OpKind::W || op.kind == graph::OpKind::FB) --cur;
    }
    out.push_back(peak);
  }
  return out;
}

Result run(Schedule s, const graph::OpTimes& times, Time p2p) {
  const auto tg = graph::TaskGraph::build(s.topo, s.order, times, p2p);
  Result r{std::move(s), times, p2p, graph::replay(tg), {}, 0.0};
  r.peak_inflight = peak_inflight(r.schedule);
  Time total_bubble = Time::zero();
  for (Time b : r.replay.bubble) total_bubble += b;
  const auto denom = static_cast<double>(r.replay.makespan.count_ps()) * static_cast<double>(r.replay.bubble.size());
  r.bubble_fraction = denom > 0 ? static_cast<double>(total_bubble.count_ps()) / denom : 0.0;
  return r;
}

Result run(std::string_view name, const ScheduleParams& params, const graph::OpTimes& times, Time p2p) {
  return run(build(name, params), times, p2p);
}

}  // namespace trainsim::schedule
