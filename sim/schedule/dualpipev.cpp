// DualPipeV, the V-shaped "cut-in-half" DualPipe (deepseek-ai/DualPipe README, "DualPipeV";
// reference implementation dualpipe/dualpipev.py, DualPipeV.step(), at commit 3da1bbe as the
// op order in shared/reference/dualpipe/dualpipev-order-ppP-mbM.txt records it).
//
// P ranks, one device each, hold the 2P pipeline stages of the model in a V: rank r holds
// chunk 0 = stage r and chunk 1 = stage 2P-1-r (PipelineTopology::v_shape). Every micro-batch
// enters at rank 0, runs chunk 0 down to rank P-1, turns there without a transfer (the output of
// its chunk 0 is the input of its chunk 1), runs chunk 1 back up to rank 0, which computes the
// loss; its backward retraces the path. Each rank runs M forwards and M backwards of each chunk.
// Only the two rules at the turn differ from DualPipe: on rank P-1, F1:k waits for its own F0:k
// and B0:k for its own chunk-1 backward; the topology's single path of 2P stages gives exactly
// those dependencies, and every other rule is DualPipe's.
//
// The order is DualPipe's eight steps (append_dualpipe_steps in dualpipe.cpp) with chunk 0 as
// the "near" chunk, h = r and one arm of P ranks, as dualpipev.py counts its loops:
//   1. 2(P-r-1) F0        2. r+1 x (F0, F1)       3. P-r-1 x (I1, W, F1)
//   4. M-2P+r+1 x (F0+B1, F1+B0); the last rank runs its first F0 and B1 apart, not overlapped
//   5. P-r-1 x (B1, F1+B0)                        6. r+1 x (B1, B0), split (I, W deferred) from
//      the middle iteration on: before B1 for odd r, after it for even r
//   7. P-r-1 x (W, I0)    8. r+1 x W              (a W takes the oldest pending I of either chunk)
// It is, token for token, the first P lines of DualPipe's order for 2P ranks and 2M micro-batches
// (tests/test_schedule_dualpipev.cpp checks the fixtures and that identity).
//
// Rules (step() asserts only these): M >= 2P; any P >= 1, odd P and odd M allowed.
#include <fmt/format.h>

#include "core/error.hpp"
#include "schedule/families.hpp"

namespace trainsim::schedule {

std::optional<ParamProblem> check_dualpipev(const ScheduleParams& p) {
  if (p.microbatches < 2 * p.pp)
    return ParamProblem{Param::Microbatches,
                        fmt::format("dualpipev needs at least 2*pp = {} micro-batches per step", 2 * p.pp)};
  return std::nullopt;
}

Schedule build_dualpipev(const ScheduleParams& p) {
  TS_ASSERT(!check_dualpipev(p), "dualpipev built with unchecked parameters");
  const int P = p.pp, M = p.microbatches;
  // One copy of each stage's parameters (weight_copies 1), two stages per device.
  Schedule s{"dualpipev", p, graph::PipelineTopology::v_shape(P), {}, 1, 2};
  s.order.resize(static_cast<std::size_t>(P));
  for (int r = 0; r < P; ++r) append_dualpipe_steps(s.order[static_cast<std::size_t>(r)], 0, r, P, M);
  return s;
}

}  // namespace trainsim::schedule
