// GPipe (Huang et al. 2019, "GPipe: Efficient Training of Giant Neural Networks using Pipeline
// Parallelism"): every rank runs all M forwards, then all M backwards (in micro-batch order, as
// Megatron's all-forward-all-backward schedule does). With uniform op times each rank idles
// (P-1)(F+B), and every rank holds all M micro-batches' activations at the turn.
#include "schedule/families.hpp"

namespace trainsim::schedule {

Schedule build_gpipe(const ScheduleParams& p) {
  Schedule s{"gpipe", p, graph::PipelineTopology::linear(p.pp), {}, 1, 1};
  s.order.resize(static_cast<std::size_t>(p.pp));
  for (auto& ops : s.order) {
    for (int k = 0; k < p.microbatches; ++k) ops.push_back(graph::Op::f(0, k));
    for (int k = 0; k < p.microbatches; ++k) ops.push_back(graph::Op::b(0, k));
  }
  return s;
}

}  // namespace trainsim::schedule
