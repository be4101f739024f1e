// 1F1B, the flush variant of PipeDream (PipeDream-Flush; Narayanan et al. 2021, "Memory-Efficient
// Pipeline-Parallel DNN Training"): rank r runs min(P-r-1, M) warm-up forwards, then alternates
// one forward and one backward, then drains the remaining backwards. Same bubble as GPipe,
// (P-1)(F+B), but rank r holds at most P-r micro-batches' activations (P on rank 0).
#include <algorithm>

#include "schedule/families.hpp"

namespace trainsim::schedule {

Schedule build_1f1b(const ScheduleParams& p) {
  Schedule s{"1f1b", p, graph::PipelineTopology::linear(p.pp), {}, 1, 1};
  s.order.resize(static_cast<std::size_t>(p.pp));
  const int m = p.microbatches;
  for (int r = 0; r < p.pp; ++r) {
    auto& ops = s.order[static_cast<std::size_t>(r)];
    const int warmup = std::min(p.pp - r - 1, m);
    for (int k = 0; k < warmup; ++k) ops.push_back(graph::Op::f(0, k));
    for (int k = 0; k < m - warmup; ++k) {
      ops.push_back(graph::Op::f(0, warmup + k));
      ops.push_back(graph::Op::b(0, k));
    }
    for (int k = m - warmup; k < m; ++k) ops.push_back(graph::Op::b(0, k));
  }
  return s;
}

}  // namespace trainsim::schedule
