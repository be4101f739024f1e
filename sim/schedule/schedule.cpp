#include "schedule/schedule.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "schedule/families.hpp"

namespace trainsim::schedule {

const std::vector<ScheduleInfo>& registry() {
  static const std::vector<ScheduleInfo> table = {
      {"gpipe", "GPipe (Huang et al. 2019, arXiv:1811.06965)",
       "all forwards, then all backwards; bubble (P-1)(F+B), M micro-batches in flight", nullptr, build_gpipe},
      {"1f1b", "1F1B / PipeDream-Flush (Narayanan et al. 2021, arXiv:2006.09503)",
       "P-r-1 warm-up forwards, then one forward one backward; bubble (P-1)(F+B), P in flight", nullptr,
       build_1f1b},
      {"interleaved", "interleaved 1F1B (Megatron-LM, Narayanan et al. SC21, arXiv:2104.04473)",
       "v model chunks per rank in Megatron's order; bubble (P-1)(F+B)/v", check_interleaved, build_interleaved},
      {"zb1p", "ZB-H1 (Qi et al. 2024, \"Zero Bubble Pipeline Parallelism\", arXiv:2401.10241)",
       "1F1B with backward split into I and W, W deferred into the bubbles; bubble (P-1)(F+B-2W)", nullptr,
       build_zb1p},
      {"dualpipe", "DualPipe (DeepSeek-V3 report arXiv:2412.19437 §3.2.1; deepseek-ai/DualPipe)",
       "bidirectional, two chunks per rank, F&B pairs overlapped; bubble (P/2-1)(F&B+B-3W)", check_dualpipe,
       build_dualpipe},
      {"dualpipev",
       "DualPipeV, the cut-in-half DualPipe (deepseek-ai/DualPipe README; dualpipe/dualpipev.py @3da1bbe, the "
       "reference op order in shared/reference/dualpipe/)",
       "V-shaped: rank r holds stages r and 2P-1-r of 2P, F&B pairs of its two chunks overlapped; bubble "
       "(P-1)(F&B+B-3W), 2P+1 chunk activations per rank, one copy of the model",
       check_dualpipev, build_dualpipev},
  };
  return table;
}

namespace {
const ScheduleInfo* lookup(std::string_view name) {
  for (const auto& s : registry())
    if (name == s.name) return &s;
  return nullptr;
}

const char* option_name(Param p) {
  switch (p) {
    case Param::Pp: return "--pp";
    case Param::Microbatches: return "--microbatches";
    case Param::Vpp: return "--vpp";
  }
  return "?";
}

int value_of(const ScheduleParams& params, Param p) {
  switch (p) {
    case Param::Pp: return params.pp;
    case Param::Microbatches: return params.microbatches;
    case Param::Vpp: return params.vpp;
  }
  return 0;
}
}  // namespace

std::vector<std::string> known_schedules() {
  std::vector<std::string> out;
  for (const auto& s : registry()) out.emplace_back(s.name);
  return out;
}

std::string known_schedules_list() {
  std::string names;
  for (const auto& s : registry()) names += std::string(names.empty() ? "" : ", ") + s.name;
  return names;
}

bool is_known_schedule(std::string_view name) { return lookup(name) != nullptr; }

const ScheduleInfo& find(std::string_view name) {
  if (const ScheduleInfo* s = lookup(name)) return *s;
  throw UsageError(fmt::format("--kind: unknown schedule '{}' (known: {})", name, known_schedules_list()));
}

std::optional<ParamProblem> check_params(std::string_view name, const ScheduleParams& params) {
  const ScheduleInfo* info = lookup(name);
  TS_ASSERT(info != nullptr, "check_params of an unknown schedule");
  if (params.pp < 1) return ParamProblem{Param::Pp, "needs at least 1 pipeline rank"};
  if (params.microbatches < 1) return ParamProblem{Param::Microbatches, "needs at least 1 micro-batch per step"};
  if (params.vpp < 1) return ParamProblem{Param::Vpp, "needs at least 1 model chunk per rank"};
  if (params.vpp != 1 && name != "interleaved")
    return ParamProblem{Param::Vpp,
                        fmt::format("more than 1 model chunk per rank (vpp) applies to interleaved only, not {}", name)};
  return info->check ? info->check(params) : std::nullopt;
}

int fewest_microbatches(std::string_view name, int pp, int vpp, int at_least) {
  const int start = std::max(1, at_least);
  const int limit = start + 4 * std::max(1, pp) * std::max(1, vpp) + 2;
  for (int m = start; m <= limit; ++m)
    if (!check_params(name, ScheduleParams{pp, m, vpp})) return m;
  return -1;
}

Schedule build(std::string_view name, const ScheduleParams& params) {
  const ScheduleInfo& info = find(name);
  if (auto problem = check_params(name, params))
    throw UsageError(fmt::format("{}: {}, got {}", option_name(problem->param), problem->need,
                                 value_of(params, problem->param)));
  // The work limit (core/limits.hpp, docs/limits.md), before anything is allocated.
  const std::int64_t slots = std::int64_t{params.pp} * params.vpp * params.microbatches;
  if (slots > kMaxPipelineSlots)
    throw UsageError(fmt::format("--microbatches: {}", fmt::format("--pp {} x --vpp {} x --microbatches {} = {} pipeline slots; the work limit is {} "
                      "(docs/limits.md)",
                      params.pp, params.vpp, params.microbatches, slots, kMaxPipelineSlots)));
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
  return run(std::move(s), tg, times, p2p);
}

Result run(Schedule s, const graph::TaskGraph& tg, const graph::OpTimes& times, Time p2p) {
  return result_of(std::move(s), graph::replay(tg), times, p2p);
}

Result result_of(Schedule s, graph::Replay replay, const graph::OpTimes& times, Time p2p) {
  Result r{std::move(s), times, p2p, std::move(replay), {}, 0.0};
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
