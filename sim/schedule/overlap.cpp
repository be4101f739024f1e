#include "schedule/overlap.hpp"

#include <algorithm>
#include <array>

#include "core/error.hpp"

namespace trainsim::schedule {

ListSchedule list_schedule(const std::vector<Task>& tasks) {
  const std::size_t n = tasks.size();
  ListSchedule out;
  out.slots.assign(n, TaskSlot{});
  std::vector<int> waiting(n, 0);               // predecessors not yet placed
  std::vector<std::vector<int>> successors(n);
  std::vector<Time> ready(n, Time::zero());     // latest end of the placed predecessors
  std::vector<Time> stream_free;
  for (std::size_t i = 0; i < n; ++i) {
    const Task& t = tasks[i];
    TS_ASSERT(t.stream >= 0, "list_schedule: negative stream");
    if (static_cast<std::size_t>(t.stream) >= stream_free.size()) stream_free.resize(static_cast<std::size_t>(t.stream) + 1);
    for (int p : t.after) {
      TS_ASSERT(p >= 0 && static_cast<std::size_t>(p) < i, "list_schedule: a task waits for a later task");
      successors[static_cast<std::size_t>(p)].push_back(static_cast<int>(i));
      ++waiting[i];
    }
  }
  // Each task's level: its duration plus the longest chain of successors after it (any stream).
  std::vector<Time> level(n, Time::zero());
  for (std::size_t j = n; j-- > 0;) {
    Time after = Time::zero();
    for (int s : successors[j]) after = std::max(after, level[static_cast<std::size_t>(s)]);
    level[j] = tasks[j].duration + after;
  }
  std::vector<int> frontier;  // placeable tasks, kept in index order
  for (std::size_t i = 0; i < n; ++i)
    if (waiting[i] == 0) frontier.push_back(static_cast<int>(i));
  for (std::size_t placed = 0; placed < n; ++placed) {
    TS_ASSERT(!frontier.empty(), "list_schedule: no task can start");
    std::size_t best = 0;
    Time best_start = Time::max();
    for (std::size_t k = 0; k < frontier.size(); ++k) {
      const auto i = static_cast<std::size_t>(frontier[k]);
      const Time st = std::max(ready[i], stream_free[static_cast<std::size_t>(tasks[i].stream)]);
      const auto bi = static_cast<std::size_t>(frontier[best]);
      if (st < best_start ||
          (st == best_start && (level[i] > level[bi] || (level[i] == level[bi] && tasks[i].priority < tasks[bi].priority)))) {
        best = k;
        best_start = st;
      }
    }
    const auto i = static_cast<std::size_t>(frontier[best]);
    frontier.erase(frontier.begin() + static_cast<std::ptrdiff_t>(best));
    const Time end = best_start + tasks[i].duration;
    out.slots[i] = TaskSlot{best_start, end};
    stream_free[static_cast<std::size_t>(tasks[i].stream)] = end;
    out.makespan = std::max(out.makespan, end);
    for (int s : successors[i]) {
      const auto si = static_cast<std::size_t>(s);
      ready[si] = std::max(ready[si], end);
      if (--waiting[si] == 0) frontier.insert(std::upper_bound(frontier.begin(), frontier.end(), s), s);
    }
  }
  return out;
}

OverlapResult overlap_forward_backward(ChunkCost forward, ChunkCost backward, const engine::GpuCompute& gpu) {
  struct Phase {
    int stream;
    const char* name;
    Time dur;
  };
  auto halves = [](Time t) { return std::array<Time, 2>{t / 2, t - t / 2}; };
  const auto fc = halves(gpu.shared(forward.compute)), fa = halves(forward.comm);
  const auto bc = halves(gpu.shared(backward.compute)), ba = halves(backward.comm);
  const std::array<std::array<Phase, 4>, 2> chunks = {{
      {{{0, "attn", fc[0]}, {1, "dispatch", fa[0]}, {0, "mlp", fc[1]}, {1, "combine", fa[1]}}},
      {{{1, "combine", ba[0]}, {0, "mlp", bc[0]}, {1, "dispatch", ba[1]}, {0, "attn", bc[1]}}},
  }};
  // Two chains, the backward's tasks first in the list so they also win ties of equal level and priority.
  std::vector<Task> tasks;
  for (int c : {1, 0})
    for (std::size_t k = 0; k < 4; ++k) {
      Task t{chunks[static_cast<std::size_t>(c)][k].stream, chunks[static_cast<std::size_t>(c)][k].dur, {}, c == 1 ? 0 : 1};
      if (k > 0) t.after.push_back(static_cast<int>(tasks.size()) - 1);
      tasks.push_back(std::move(t));
    }
  const ListSchedule ls = list_schedule(tasks);
  OverlapResult out;
  out.duration = ls.makespan;
  std::vector<std::size_t> order(tasks.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return ls.slots[a].start < ls.slots[b].start; });
  for (std::size_t i : order) {
    const bool bwd = i < 4;
    const Phase& ph = chunks[bwd ? 1 : 0][i % 4];
    out.slices.push_back(OverlapSlice{ph.stream, bwd, ph.name, ls.slots[i].start, ls.slots[i].end});
  }
  return out;
}

}  // namespace trainsim::schedule
