// The Perfetto timeline (Chrome Trace Event JSON, object form, times in microseconds) of one step
// of a run's first phase: timeline.json.
//
// One process per pipeline rank, with tracks:
//   ops        every pipeline op (F, B, I, W, F&B) with its micro-batch, chunk, stage, layers and
//              the parts of its time (compute, recompute, exposed TP/EP/CP/DP)
//   compute, TP, EP all-to-all, CP, DP
//              the op's phases on their streams, for the first, middle and last ops of each
//              rank (phase by phase for the whole step would be ~100k events)
//   PP sends   the activation and gradient sends into the ops shown phase by phase
//   idle       the gaps between ops, with the rank's split of its idle time (schedule bubble,
//              imbalance, exposed PP sends) in their args and as a counter
// Flow arrows join each op to the op on another rank whose activation or gradient it waits for
// (the pipeline sends). A "step" process shows what follows the pipeline: exposed DP, the
// optimizer, the parameter all-gather. Metadata: generator, scenario, phase, plan, the step's
// breakdown under its stable names. Pure function of the report: same inputs, same bytes.

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "report/run_report.hpp"
#include "schedule/schedule.hpp"

namespace trainsim {

namespace {

using J = nlohmann::ordered_json;
using graph::Op;
using graph::OpKind;

enum Tid { kOps = 0, kCompute = 1, kTp = 2, kEp = 3, kCp = 4, kPp = 5, kDp = 6, kIdle = 7 };

int tid_of(step::PhaseKind k) {
  switch (k) {
    case step::PhaseKind::Compute: return kCompute;
    case step::PhaseKind::Tp: return kTp;
    case step::PhaseKind::Ep: return kEp;
    case step::PhaseKind::Cp: return kCp;
    case step::PhaseKind::Dp: return kDp;
  }
  return kCompute;
}

std::string layers_of(const step::StageCost& s) {
  if (s.layers.empty()) return "";
  std::string out = s.layers.front();
  if (s.layers.size() > 1) out += ".." + s.layers.back();
  return out;
}

// Times to the nanosecond (us with 3 decimals) and milliseconds to the microsecond: shorter
// numbers in a file of ~10k events.
double round_to(double v, double unit) { return std::round(v / unit) * unit; }
double us(Time t) { return round_to(t.micros(), 1e-3); }
double ms(Time t) { return round_to(t.millis(), 1e-3); }
double ms(double seconds) { return round_to(seconds * 1e3, 1e-3); }

}  // namespace

nlohmann::json run_timeline(const RunReport& r) {
  TS_ASSERT(!r.phases.empty(), "a run report has a phase");
  const PhaseReport& ph = r.phases.front();
  const step::StepResult& s = ph.step;
  TS_ASSERT(s.pipeline.has_value(), "the step has a replayed pipeline");
  const auto& rep = s.pipeline->replay;
  const auto& topo = s.pipeline->schedule.topo;
  J events = J::array();
  auto meta = [&](const char* what, int pid, int tid, const std::string& name) {
    J e = {{"name", what}, {"ph", "M"}, {"pid", pid}};
    if (tid >= 0) e["tid"] = tid;
    e["args"] = {{"name", name}};
    events.push_back(std::move(e));
  };
  auto slice = [&](const std::string& name, const std::string& cat, int pid, int tid, Time start, Time end, J args) {
    events.push_back(J{{"name", name},
                       {"cat", cat},
                       {"ph", "X"},
                       {"pid", pid},
                       {"tid", tid},
                       {"ts", us(start)},
                       {"dur", us(end - start)},
                       {"args", std::move(args)}});
  };
  const int P = static_cast<int>(rep.ops.size());
  // Where each (rank, forward/backward part, chunk, micro-batch) ran, for the flow arrows.
  std::map<std::tuple<int, bool, int, int>, const graph::OpTiming*> where;
  for (int rank = 0; rank < P; ++rank)
    for (const auto& o : rep.ops[static_cast<std::size_t>(rank)]) {
      if (o.op.has_forward()) where[{rank, true, o.op.chunk, o.op.mb}] = &o;
      if (o.op.kind == OpKind::B || o.op.kind == OpKind::I) where[{rank, false, o.op.chunk, o.op.mb}] = &o;
      if (o.op.kind == OpKind::FB) where[{rank, false, o.op.chunk2, o.op.mb2}] = &o;
    }
  int flow_id = 0;
  for (int rank = 0; rank < P; ++rank) {
    meta("process_name", rank, -1, fmt::format("rank {}", rank));
    events.push_back(J{{"name", "process_sort_index"}, {"ph", "M"}, {"pid", rank}, {"args", {{"sort_index", rank}}}});
    meta("thread_name", rank, kOps, "ops");
    meta("thread_name", rank, kCompute, "compute");
    meta("thread_name", rank, kTp, "TP");
    meta("thread_name", rank, kEp, "EP all-to-all");
    meta("thread_name", rank, kCp, "CP");
    meta("thread_name", rank, kPp, "PP sends");
    meta("thread_name", rank, kDp, "DP");
    meta("thread_name", rank, kIdle, "idle");
    const auto& ops = rep.ops[static_cast<std::size_t>(rank)];
    const std::size_t n = ops.size();
    const double bubble = s.rank_bubble_s.empty() ? 0.0 : s.rank_bubble_s[static_cast<std::size_t>(rank)];
    const double imbalance = s.rank_imbalance_s.empty() ? 0.0 : s.rank_imbalance_s[static_cast<std::size_t>(rank)];
    const double sends = s.rank_exposed_pp_s.empty() ? 0.0 : s.rank_exposed_pp_s[static_cast<std::size_t>(rank)];
    events.push_back(J{{"name", "idle split (ms)"},
                       {"ph", "C"},
                       {"pid", rank},
                       {"ts", 0.0},
                       {"args", {{"schedule_bubble", ms(bubble)}, {"imbalance", ms(imbalance)}, {"exposed_pp", ms(sends)}}}});
    Time prev_end = Time::zero();
    for (std::size_t i = 0; i < n; ++i) {
      const auto& o = ops[i];
      const step::OpRun* run = s.op_run(rank, o.op);
      TS_ASSERT(run != nullptr, "op run missing");
      const int stage = topo.position_of(rank, o.op.chunk);
      const step::StageCost& st = s.stages[static_cast<std::size_t>(stage)];
      J args = {{"micro_batch", o.op.mb}, {"chunk", o.op.chunk}, {"stage", stage}, {"layers", layers_of(st)},
                {"compute_ms", ms(run->compute)}};
      // The other parts only where they are not zero.
      const std::pair<const char*, Time> parts[] = {{"recompute_ms", run->recompute}, {"exposed_tp_ms", run->exposed_tp},
                                                    {"exposed_ep_ms", run->exposed_ep}, {"exposed_cp_ms", run->exposed_cp},
                                                    {"exposed_dp_ms", run->exposed_dp}};
      for (const auto& [k, v] : parts)
        if (v > Time::zero()) args[k] = ms(v);
      const step::StageCost* st2 = nullptr;
      if (o.op.kind == OpKind::FB) {
        const int stage2 = topo.position_of(rank, o.op.chunk2);
        st2 = &s.stages[static_cast<std::size_t>(stage2)];
        args["backward_micro_batch"] = o.op.mb2;
        args["backward_chunk"] = o.op.chunk2;
        args["backward_stage"] = stage2;
        args["backward_layers"] = layers_of(*st2);
      }
      slice(graph::to_string(o.op), std::string(1, graph::kind_letter(o.op.kind)), rank, kOps, o.start, o.end, args);
      if (o.start > prev_end)
        slice("idle", "bubble", rank, kIdle, prev_end, o.start,
              J{{"rank_schedule_bubble_ms", ms(bubble)}, {"rank_imbalance_ms", ms(imbalance)}, {"rank_exposed_pp_ms", ms(sends)}});
      prev_end = o.end;
      // Phase by phase for the first, middle and last ops of the rank.
      const bool detail = i < 3 || i + 3 >= n || (i + 1 >= n / 2 && i <= n / 2 + 1);
      if (detail) {
        for (const step::Slice& sl : run->slices) {
          if (sl.end <= sl.start) continue;
          const std::vector<step::Phase>* list = nullptr;
          switch (o.op.kind) {
            case OpKind::F: list = &st.phases.forward; break;
            case OpKind::B: list = &st.phases.backward; break;
            case OpKind::I: list = &st.phases.backward_input; break;
            case OpKind::W: list = &st.phases.backward_weight; break;
            case OpKind::FB: list = sl.backward ? &st2->phases.backward : &st.phases.forward; break;
          }
          const step::Phase& p = (*list)[static_cast<std::size_t>(sl.phase)];
          const int mb = o.op.kind == OpKind::FB && sl.backward ? o.op.mb2 : o.op.mb;
          slice(p.name, step::phase_kind_name(p.kind), rank, tid_of(p.kind), o.start + sl.start, o.start + sl.end,
                p.recompute ? J{{"micro_batch", mb}, {"layer", p.layer}, {"recompute", true}} : J{{"micro_batch", mb}, {"layer", p.layer}});
        }
      }
      // Flow arrows from the op whose output this one waits for on another rank.
      auto link = [&](bool forward, int chunk, int mb) {
        const int flow = topo.flow_of(rank, chunk);
        const int pos = topo.position_of(rank, chunk);
        const auto& path = topo.path(flow);
        const int from = forward ? pos - 1 : pos + 1;
        if (from < 0 || from >= static_cast<int>(path.size())) return;
        const graph::Stage src = path[static_cast<std::size_t>(from)];
        if (src.rank == rank) return;
        auto it = where.find({src.rank, forward, src.chunk, mb});
        if (it == where.end()) return;
        const graph::OpTiming* so = it->second;
        ++flow_id;
        const char* what = forward ? "activation" : "gradient";
        events.push_back(J{{"name", what}, {"cat", "PP"}, {"ph", "s"}, {"id", flow_id}, {"pid", src.rank}, {"tid", kOps},
                           {"ts", us(so->end) - 1e-3}});
        events.push_back(J{{"name", what}, {"cat", "PP"}, {"ph", "f"}, {"bp", "e"}, {"id", flow_id}, {"pid", rank},
                           {"tid", kOps}, {"ts", us(o.start)}});
        // The send itself, on the sender's PP track (for the ops shown phase by phase).
        if (detail && s.breakdown.p2p_s > 0)
          slice(what, "PP", src.rank, kPp, so->end, so->end + Time::from_seconds(s.breakdown.p2p_s),
                J{{"to_rank", rank}, {"micro_batch", mb}});
      };
      if (o.op.has_forward()) link(true, o.op.chunk, o.op.mb);
      if (o.op.kind == OpKind::B || o.op.kind == OpKind::I) link(false, o.op.chunk, o.op.mb);
      if (o.op.kind == OpKind::FB) link(false, o.op.chunk2, o.op.mb2);
    }
    if (rep.makespan > prev_end)
      slice("idle", "bubble", rank, kIdle, prev_end, rep.makespan,
            J{{"rank_schedule_bubble_ms", ms(bubble)}, {"rank_imbalance_ms", ms(imbalance)}, {"rank_exposed_pp_ms", ms(sends)}});
  }
  // After the pipeline.
  const int step_pid = P;
  meta("process_name", step_pid, -1, "step");
  events.push_back(J{{"name", "process_sort_index"}, {"ph", "M"}, {"pid", step_pid}, {"args", {{"sort_index", step_pid}}}});
  meta("thread_name", step_pid, 0, "pipeline, DP, optimizer");
  const Time makespan = rep.makespan;
  const Time grad_end = makespan + Time::from_seconds(s.dp.exposed_grad_s);
  const Time opt_end = grad_end + Time::from_seconds(s.optimizer.total_s);
  slice("pipeline", "step", step_pid, 0, Time::zero(), makespan, J{{"schedule", s.pipeline->schedule.kind}});
  if (grad_end > makespan)
    slice("exposed DP gradient reduction", "DP", step_pid, 0, makespan, grad_end,
          J{{"busy_ms", ms(s.dp.grad_reduce_s)}, {"buckets", s.dp.buckets}});
  slice("optimizer", "optimizer", step_pid, 0, grad_end, opt_end,
        J{{"rank", s.optimizer.rank},
          {"shard_params", s.optimizer.shard_params},
          {"grad_norm_ms", ms(s.optimizer.grad_norm_s)},
          {"clip_ms", ms(s.optimizer.clip_s)},
          {"adamw_ms", ms(s.optimizer.adamw_s)},
          {"param_copy_ms", ms(s.optimizer.param_copy_s)},
          {"fp8_requant_ms", ms(s.optimizer.requant_s)}});
  if (s.dp.exposed_param_s > 0)
    slice("exposed DP parameter all-gather", "DP", step_pid, 0, opt_end, opt_end + Time::from_seconds(s.dp.exposed_param_s),
          J{{"busy_ms", ms(s.dp.param_gather_s)}});
  J breakdown = J::object();
  for (const auto& l : s.breakdown.lines()) breakdown[l.name] = l.seconds;
  J doc = {{"traceEvents", events},
           {"displayTimeUnit", "ns"},
           {"otherData",
            {{"generator", "trainsim " TRAINSIM_VERSION " run"},
             {"scenario", r.scenario},
             {"scenario_file", r.scenario_file},
             {"phase", ph.name},
             {"plan", ph.plan},
             {"global_batch", ph.global_batch},
             {"schedule", s.pipeline->schedule.kind},
             {"step_s", s.step_s},
             {"makespan_us", us(makespan)},
             {"breakdown_s", breakdown},
             {"models", s.models}}}};
  return nlohmann::json::parse(doc.dump());
}

}  // namespace trainsim
