#include "schedule/schedule_report.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace trainsim::schedule {

using graph::Op;
using graph::OpKind;

std::string order_text(const Schedule& s) {
  std::string out;
  for (std::size_t r = 0; r < s.order.size(); ++r) {
    out += fmt::format("rank {}:", r);
    for (const Op& op : s.order[r]) {
      out += ' ';
      out += graph::to_string(op);
    }
    out += "\n";
  }
  return out;
}

namespace {

const char* citation_of(const std::string& kind) {
  for (const auto& i : registry())
    if (kind == i.name) return i.citation;
  return "";
}

char timeline_char(const Op& op) {
  const char c = graph::kind_letter(op.kind);
  return op.chunk % 2 == 1 ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

std::string timeline(const Result& r) {
  const auto& rp = r.replay;
  Time unit = Time::max();
  for (const auto& ops : rp.ops)
    for (const auto& o : ops)
      if (o.end > o.start) unit = std::min(unit, o.end - o.start);
  if (unit == Time::max() || rp.makespan == Time::zero()) return {};
  constexpr Time::rep kMaxCols = 160;
  Time::rep cols = (rp.makespan.count_ps() + unit.count_ps() - 1) / unit.count_ps();
  if (cols > kMaxCols) {
    cols = kMaxCols;
    unit = Time::ps((rp.makespan.count_ps() + kMaxCols - 1) / kMaxCols);
  }
  std::string out = fmt::format(
      "timeline (1 column = {}; F forward, B backward, I input-grad, W weight-grad, X F&B; lowercase = "
      "odd chunk; . idle):\n",
      unit);
  for (std::size_t rank = 0; rank < rp.ops.size(); ++rank) {
    std::string line(static_cast<std::size_t>(cols), '.');
    std::size_t j = 0;
    const auto& ops = rp.ops[rank];
    for (Time::rep c = 0; c < cols; ++c) {
      const Time mid = Time::ps(c * unit.count_ps() + unit.count_ps() / 2);
      while (j < ops.size() && ops[j].end <= mid) ++j;
      if (j < ops.size() && ops[j].start <= mid) line[static_cast<std::size_t>(c)] = timeline_char(ops[j].op);
    }
    out += fmt::format("  rank {:>2} |{}|\n", rank, line);
  }
  return out;
}

}  // namespace

std::string summary_text(const Result& r) {
  const auto& s = r.schedule;
  const auto& rp = r.replay;
  std::string out = fmt::format("schedule {}: {} ranks, {} micro-batches", s.kind, s.params.pp, s.params.microbatches);
  if (s.stages_per_rank > 1)
    out += fmt::format(", {} stages per rank ({} in all)", s.stages_per_rank, s.stages_per_rank * s.params.pp);
  out += fmt::format("\n  {}\n", citation_of(s.kind));
  out += fmt::format("op times: F {}, B {}, W {} (I {}), F&B {}, p2p {}\n", r.times.f, r.times.b, r.times.w,
                     r.times.b - r.times.w, r.times.fb, r.p2p);
  out += fmt::format("makespan {}, bubble fraction {:.4f}, weight copies {}\n", rp.makespan, r.bubble_fraction,
                     s.weight_copies);
  out += fmt::format("{:>6}  {:>12}  {:>12}  {:>14}\n", "rank", "busy", "bubble", "peak in flight");
  for (std::size_t i = 0; i < rp.busy.size(); ++i)
    out += fmt::format("{:>6}  {:>12}  {:>12}  {:>14}\n", i, fmt::format("{}", rp.busy[i]),
                       fmt::format("{}", rp.bubble[i]), r.peak_inflight[i]);
  const auto& cp = rp.critical_path;
  out += fmt::format("critical path ({} ops):", cp.size());
  constexpr std::size_t kShow = 24;
  for (std::size_t i = 0; i < cp.size(); ++i) {
    if (cp.size() > kShow && i == kShow / 2) {
      out += fmt::format(" ... ({} more)", cp.size() - kShow);
      i = cp.size() - kShow / 2;
    }
    out += fmt::format(" {}r{}:{}", i ? "> " : "", cp[i].rank, graph::to_string(cp[i].op));
  }
  out += "\n";
  std::size_t max_ops = 0;
  for (const auto& ops : rp.ops) max_ops = std::max(max_ops, ops.size());
  if (rp.ops.size() <= 16 && max_ops <= 160) out += timeline(r);
  return out;
}

nlohmann::ordered_json to_json(const Result& r, bool with_order) {
  const auto& s = r.schedule;
  const auto& rp = r.replay;
  nlohmann::ordered_json j;
  j["kind"] = s.kind;
  j["citation"] = citation_of(s.kind);
  j["pp"] = s.params.pp;
  j["microbatches"] = s.params.microbatches;
  j["vpp"] = s.params.vpp;
  j["times_us"] = {{"f", r.times.f.micros()},   {"b", r.times.b.micros()},   {"w", r.times.w.micros()},
                   {"i", (r.times.b - r.times.w).micros()}, {"fb", r.times.fb.micros()}, {"p2p", r.p2p.micros()}};
  j["makespan_us"] = rp.makespan.micros();
  auto busy = nlohmann::ordered_json::array();
  auto bubble = nlohmann::ordered_json::array();
  for (Time t : rp.busy) busy.push_back(t.micros());
  for (Time t : rp.bubble) bubble.push_back(t.micros());
  j["busy_us"] = busy;
  j["bubble_us"] = bubble;
  j["bubble_fraction"] = r.bubble_fraction;
  j["peak_inflight_microbatches"] = r.peak_inflight;
  j["weight_copies"] = s.weight_copies;
  j["stages_per_rank"] = s.stages_per_rank;
  auto cp = nlohmann::ordered_json::array();
  for (const auto& c : rp.critical_path)
    cp.push_back({{"rank", c.rank},
                  {"op", graph::to_string(c.op)},
                  {"start_us", c.start.micros()},
                  {"end_us", c.end.micros()},
                  {"via", c.via ? graph::edge_kind_name(*c.via) : "start"}});
  j["critical_path"] = cp;
  if (with_order) {
    auto order = nlohmann::ordered_json::array();
    for (const auto& ops : s.order) {
      auto list = nlohmann::ordered_json::array();
      for (const Op& op : ops) list.push_back(graph::to_string(op));
      order.push_back(list);
    }
    j["order"] = order;
  }
  return j;
}

std::string chrome_trace(const Result& r, const std::vector<OverlapSlice>* fb_slices) {
  using J = nlohmann::ordered_json;
  const auto& rp = r.replay;
  J events = J::array();
  auto meta = [&](const char* what, int pid, int tid, const std::string& name) {
    J e = {{"name", what}, {"ph", "M"}, {"pid", pid}};
    if (tid >= 0) e["tid"] = tid;
    e["args"] = {{"name", name}};
    events.push_back(e);
  };
  auto slice = [&](const std::string& name, const std::string& cat, int pid, int tid, Time start, Time dur, J args) {
    events.push_back(J{{"name", name},
                       {"cat", cat},
                       {"ph", "X"},
                       {"pid", pid},
                       {"tid", tid},
                       {"ts", start.micros()},
                       {"dur", dur.micros()},
                       {"args", std::move(args)}});
  };
  bool any_fb = false;
  for (const auto& ops : rp.ops)
    for (const auto& o : ops) any_fb = any_fb || o.op.kind == OpKind::FB;
  for (std::size_t rank = 0; rank < rp.ops.size(); ++rank) {
    const int pid = static_cast<int>(rank);
    meta("process_name", pid, -1, fmt::format("rank {}", rank));
    events.push_back(J{{"name", "process_sort_index"}, {"ph", "M"}, {"pid", pid}, {"args", {{"sort_index", pid}}}});
    meta("thread_name", pid, 0, "ops");
    if (any_fb) {
      meta("thread_name", pid, 1, fb_slices ? "F&B compute stream" : "F&B forward chunk");
      meta("thread_name", pid, 2, fb_slices ? "F&B communication stream" : "F&B backward chunk");
    }
    for (const auto& o : rp.ops[rank]) {
      const std::string name = graph::to_string(o.op);
      J args = {{"rank", rank}, {"start_us", o.start.micros()}, {"end_us", o.end.micros()}};
      slice(name, std::string(1, graph::kind_letter(o.op.kind)), pid, 0, o.start, o.end - o.start, args);
      if (o.op.kind != OpKind::FB) continue;
      const std::string fname = fmt::format("F{}:{}", o.op.chunk, o.op.mb);
      const std::string bname = fmt::format("B{}:{}", o.op.chunk2, o.op.mb2);
      if (fb_slices) {
        for (const auto& s : *fb_slices)
          slice(fmt::format("{} {}", s.backward ? bname : fname, s.name), s.stream == 0 ? "compute" : "comm", pid,
                1 + s.stream, o.start + s.start, s.end - s.start, J::object());
      } else {
        slice(fname, "F", pid, 1, o.start, o.end - o.start, J::object());
        slice(bname, "B", pid, 2, o.start, o.end - o.start, J::object());
      }
    }
  }
  J doc = {{"traceEvents", events},
           {"displayTimeUnit", "ns"},
           {"otherData", {{"generator", "trainsim schedule"}, {"kind", r.schedule.kind},
                          {"makespan_us", rp.makespan.micros()}}}};
  return doc.dump(1) + "\n";
}

}  // namespace trainsim::schedule
