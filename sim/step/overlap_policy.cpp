#include "step/overlap_policy.hpp"

#include <algorithm>
#include <array>

#include "core/error.hpp"
#include "schedule/overlap.hpp"

namespace trainsim::step {

namespace {

struct Ref {
  const Phase* ph;
  bool backward;
  int index;
};

OpRun evaluate(const std::vector<Ref>& refs, bool paired) {
  std::vector<schedule::Task> tasks;
  tasks.reserve(refs.size());
  // Backward list first (it wins ties of equal level, schedule/overlap.hpp); offsets turn each
  // list's own indices into task indices.
  int off_b = 0, off_f = 0;
  {
    int nb = 0;
    for (const Ref& r : refs) nb += r.backward ? 1 : 0;
    off_b = 0;
    off_f = nb;
  }
  for (const Ref& r : refs) {
    schedule::Task t;
    t.stream = stream_of(r.ph->kind);
    t.duration = paired ? r.ph->paired : r.ph->alone;
    t.priority = r.backward ? 0 : 1;
    for (int a : r.ph->after) t.after.push_back(a + (r.backward ? off_b : off_f));
    tasks.push_back(std::move(t));
  }
  const schedule::ListSchedule ls = schedule::list_schedule(tasks);
  OpRun run;
  run.duration = ls.makespan;
  // Compute-stream busy intervals and communication slots.
  struct Iv {
    Time a, b;
    const Phase* ph;
  };
  std::vector<Iv> busy, comm;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    const Phase& ph = *refs[i].ph;
    const schedule::TaskSlot& s = ls.slots[i];
    run.slices.push_back(Slice{refs[i].index, refs[i].backward, s.start, s.end});
    if (s.end <= s.start) continue;
    if (ph.kind == PhaseKind::Compute) {
      busy.push_back({s.start, s.end, &ph});
      (ph.recompute ? run.recompute : run.compute) += s.end - s.start;
    } else {
      comm.push_back({s.start, s.end, &ph});
      run.comm_busy += s.end - s.start;
    }
    if (ph.dense_grads > 0 || ph.expert_grads > 0) run.grads.push_back(GradEvent{s.end, ph.dense_grads, ph.expert_grads});
  }
  std::stable_sort(run.slices.begin(), run.slices.end(), [](const Slice& a, const Slice& b) { return a.start < b.start; });
  std::stable_sort(run.grads.begin(), run.grads.end(), [](const GradEvent& a, const GradEvent& b) { return a.at < b.at; });
  std::sort(busy.begin(), busy.end(), [](const Iv& x, const Iv& y) { return x.a < y.a; });
  // Idle stretches of the compute stream, cut at every communication boundary.
  std::vector<Time> cuts{Time::zero(), run.duration};
  for (const Iv& c : comm) {
    cuts.push_back(c.a);
    cuts.push_back(c.b);
  }
  for (const Iv& b : busy) {
    cuts.push_back(b.a);
    cuts.push_back(b.b);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  auto charge = [&](const Phase& ph, Time t) {
    if (ph.recompute) {
      run.recompute += t;
      return;
    }
    switch (ph.kind) {
      case PhaseKind::Tp: run.exposed_tp += t; break;
      case PhaseKind::Ep: run.exposed_ep += t; break;
      case PhaseKind::Cp: run.exposed_cp += t; break;
      case PhaseKind::Dp: run.exposed_dp += t; break;
      case PhaseKind::Compute: run.compute += t; break;
    }
  };
  std::size_t bi = 0;
  for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
    const Time a = cuts[k], b = cuts[k + 1];
    const Time mid = a + (b - a) / 2;
    while (bi < busy.size() && busy[bi].b <= mid) ++bi;
    if (bi < busy.size() && busy[bi].a <= mid) continue;  // compute busy
    std::vector<const Phase*> active;
    for (const Iv& c : comm)
      if (c.a <= mid && mid < c.b) active.push_back(c.ph);
    if (active.empty()) {
      const Phase* last = nullptr;
      Time last_end = Time::zero();
      for (const Iv& c : comm)
        if (c.b <= mid && (last == nullptr || c.b >= last_end)) {
          last = c.ph;
          last_end = c.b;
        }
      if (last == nullptr && !comm.empty()) last = comm.front().ph;
      if (last == nullptr) continue;  // no communication at all: nothing to wait for
      active.push_back(last);
    }
    const Time share = (b - a) / static_cast<Time::rep>(active.size());
    Time given;
    for (std::size_t i = 0; i < active.size(); ++i) {
      const Time t = i + 1 == active.size() ? (b - a) - given : share;
      charge(*active[i], t);
      given += t;
    }
  }
  return run;
}

}  // namespace

OpRun run_alone(const std::vector<Phase>& phases) {
  std::vector<Ref> refs;
  for (std::size_t i = 0; i < phases.size(); ++i) refs.push_back(Ref{&phases[i], false, static_cast<int>(i)});
  return evaluate(refs, false);
}

OpRun run_pair(const std::vector<Phase>& forward, const std::vector<Phase>& backward) {
  std::vector<Ref> refs;
  for (std::size_t i = 0; i < backward.size(); ++i) refs.push_back(Ref{&backward[i], true, static_cast<int>(i)});
  for (std::size_t i = 0; i < forward.size(); ++i) refs.push_back(Ref{&forward[i], false, static_cast<int>(i)});
  return evaluate(refs, true);
}

std::vector<std::vector<graph::Op>> combine_1f1b_order(const std::vector<std::vector<graph::Op>>& order) {
  std::vector<std::vector<graph::Op>> out;
  for (const auto& ops : order) {
    std::vector<graph::Op> r;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].kind == graph::OpKind::B && i + 1 < ops.size() && ops[i + 1].kind == graph::OpKind::F) {
        r.push_back(graph::Op::fb(ops[i + 1].chunk, ops[i + 1].mb, ops[i].chunk, ops[i].mb));
        ++i;
      } else {
        r.push_back(ops[i]);
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace trainsim::step
