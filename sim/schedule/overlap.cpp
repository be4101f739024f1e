#include "schedule/overlap.hpp"

#include <algorithm>
#include <array>

namespace trainsim::schedule {

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
  std::array<std::size_t, 2> next = {0, 0};       // next phase per chunk
  std::array<Time, 2> chunk_ready = {Time::zero(), Time::zero()};
  std::array<Time, 2> stream_free = {Time::zero(), Time::zero()};
  OverlapResult out;
  // List scheduling: repeatedly start the phase that can start earliest; ties go to the
  // backward chunk (index 1). 8 phases, so the quadratic scan is fine.
  for (int step = 0; step < 8; ++step) {
    int best = -1;
    Time best_start = Time::max();
    for (int c = 1; c >= 0; --c) {
      const auto ci = static_cast<std::size_t>(c);
      if (next[ci] == 4) continue;
      const Phase& ph = chunks[ci][next[ci]];
      const Time st = std::max(chunk_ready[ci], stream_free[static_cast<std::size_t>(ph.stream)]);
      if (st < best_start) {
        best_start = st;
        best = c;
      }
    }
    const auto bi = static_cast<std::size_t>(best);
    const Phase& ph = chunks[bi][next[bi]];
    const Time end = best_start + ph.dur;
    chunk_ready[bi] = end;
    stream_free[static_cast<std::size_t>(ph.stream)] = end;
    ++next[bi];
    out.slices.push_back(OverlapSlice{ph.stream, best == 1, ph.name, best_start, end});
    if (end > out.duration) out.duration = end;
  }
  return out;
}

}  // namespace trainsim::schedule
