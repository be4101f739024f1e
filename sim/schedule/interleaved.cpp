// Interleaved 1F1B (Megatron-LM; Narayanan et al. SC21, "Efficient Large-Scale Language Model
// Training on GPU Clusters Using Megatron-LM", §2.2.2). Each rank holds v model chunks; virtual
// stage s = c*P + r. The order follows Megatron's forward_backward_pipelining_with_interleaving:
// micro-batches go through the chunks in groups of P; rank r runs (P-r-1)*2 + (v-1)*P warm-up
// forwards (all M*v when M == P), then one forward one backward, then the remaining backwards.
// Chunk op times are 1/v of a full stage's, so the bubble is (P-1)(F+B)/v in full-stage terms.
#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"
#include "schedule/families.hpp"

namespace trainsim::schedule {

std::optional<ParamProblem> check_interleaved(const ScheduleParams& p) {
  // Megatron-LM's arguments.py: "When interleaved schedule is used, pipeline-model-parallel size
  // should be greater than 1" (greater than 2 without overlap_p2p_comm, which trainsim does not
  // model); with one rank there is no pipeline to interleave.
  if (p.pp < 2) return ParamProblem{Param::Pp, "interleaved needs pp >= 2 (Megatron-LM: pipeline-model-parallel size greater than 1)"};
  if (p.microbatches % p.pp != 0)
    return ParamProblem{Param::Microbatches,
                        fmt::format("interleaved needs micro-batches per step in multiples of pp = {}", p.pp)};
  return std::nullopt;
}

Schedule build_interleaved(const ScheduleParams& p) {
  TS_ASSERT(!check_interleaved(p), "interleaved built with unchecked parameters");
  const int P = p.pp, v = p.vpp, m = p.microbatches;
  Schedule s{"interleaved", p, graph::PipelineTopology::interleaved(P, v), {}, 1, v};
  s.order.resize(static_cast<std::size_t>(P));
  const int total = m * v;
  // The k-th forward (backward) a rank runs: chunk and micro-batch in Megatron's order.
  auto micro = [&](int k) { return (k / (P * v)) * P + k % P; };
  auto fchunk = [&](int k) { return (k % (P * v)) / P; };
  auto bchunk = [&](int k) { return v - 1 - (k % (P * v)) / P; };
  for (int r = 0; r < P; ++r) {
    auto& ops = s.order[static_cast<std::size_t>(r)];
    const int warmup = m == P ? total : std::min((P - r - 1) * 2 + (v - 1) * P, total);
    for (int k = 0; k < warmup; ++k) ops.push_back(graph::Op::f(fchunk(k), micro(k)));
    for (int k = 0; k < total - warmup; ++k) {
      ops.push_back(graph::Op::f(fchunk(warmup + k), micro(warmup + k)));
      ops.push_back(graph::Op::b(bchunk(k), micro(k)));
    }
    for (int k = total - warmup; k < total; ++k) ops.push_back(graph::Op::b(bchunk(k), micro(k)));
  }
  return s;
}

}  // namespace trainsim::schedule
