// ZB-H1 (Qi et al. 2024, "Zero Bubble Pipeline Parallelism", §3.1 handcrafted schedule H1).
// The backward splits into I (input gradient, on the critical path) and W (weight gradient,
// free to move). Rank r keeps 1F1B's warm-up of P-r-1 forwards and its memory limit, runs I in
// place of B, and holds back up to r pending W's, running each as soon as more than r are
// pending and the rest at the end. Later ranks thus send gradients upstream earlier, and the
// held-back W's fill the cool-down gaps: with F = I = W (the paper's assumption) every rank idles
// (P-1)(F+I-W) = (P-1)(F+B-2W) and holds at most P micro-batches (freed at W).
// The deferral depth r is this project's derivation; the validation test checks the bubble.
#include <algorithm>
#include <deque>

#include "schedule/families.hpp"

namespace trainsim::schedule {

Schedule build_zb1p(const ScheduleParams& p) {
  Schedule s{"zb1p", p, graph::PipelineTopology::linear(p.pp), {}, 1, 1};
  s.order.resize(static_cast<std::size_t>(p.pp));
  const int m = p.microbatches;
  for (int r = 0; r < p.pp; ++r) {
    auto& ops = s.order[static_cast<std::size_t>(r)];
    const int warmup = std::min(p.pp - r - 1, m);
    const std::size_t hold = static_cast<std::size_t>(r);
    std::deque<int> pending;
    auto input_grad = [&](int k) {
      ops.push_back(graph::Op::i(0, k));
      pending.push_back(k);
      if (pending.size() > hold) {
        ops.push_back(graph::Op::w(0, pending.front()));
        pending.pop_front();
      }
    };
    for (int k = 0; k < warmup; ++k) ops.push_back(graph::Op::f(0, k));
    for (int k = 0; k < m - warmup; ++k) {
      ops.push_back(graph::Op::f(0, warmup + k));
      input_grad(k);
    }
    for (int k = m - warmup; k < m; ++k) input_grad(k);
    for (int k : pending) ops.push_back(graph::Op::w(0, k));
  }
  return s;
}

}  // namespace trainsim::schedule
