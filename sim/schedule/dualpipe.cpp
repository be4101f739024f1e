// DualPipe (DeepSeek-V3 Technical Report, arXiv:2412.19437, §3.2.1; reference implementation
// deepseek-ai/DualPipe, dualpipe/dualpipe.py, DualPipe.step()).
//
// P ranks (P even) each hold two model chunks: chunk 0 is stage r of direction 0 (micro-batches
// entering at rank 0), chunk 1 is stage P-1-r of direction 1 (entering at rank P-1). Each
// direction carries M/2 micro-batches (M even, M >= 2P). Each rank's order is built in eight
// phases; "near" is the direction whose first stage is in this rank's half of the pipeline
// (direction 0 for r < P/2, 1 otherwise) and "far" the other one; h = min(r, P-1-r):
//   1. 2(P/2-h-1) forwards of near
//   2. h+1 times: forward near, forward far
//   3. P/2-h-1 times: split backward far (I then at once W), forward far
//   4. M/2-P+h+1 times: F&B (forward near + backward far), F&B (forward far + backward near);
//      the two middle ranks (h = P/2-1) run the first near forward and far backward apart,
//      not overlapped, which shortens their bubble
//   5. P/2-h-1 times: backward far, F&B (forward far + backward near)
//   6. h+1 times: backward far, backward near; from the middle iteration on (for odd h before
//      the far backward, for even h after it) backwards are split and their W deferred
//   7. P/2-h-1 times: W (oldest first), split backward near
//   8. h+1 times: W (oldest first)
// The fixtures in shared/reference/dualpipe/ are the arbiter; tests/test_schedule_dualpipe.cpp
// checks all of them. DualPipeV (dualpipev.cpp) runs the same eight steps with h = r over one
// arm of P ranks (append_dualpipe_steps).
#include <deque>

#include <fmt/format.h>

#include "core/error.hpp"
#include "schedule/families.hpp"

namespace trainsim::schedule {
namespace {

using graph::Op;

class RankOrder {
 public:
  RankOrder(std::vector<Op>& ops, int near) : ops_(ops), near_(near) {}

  int dir(bool near) const { return near ? near_ : 1 - near_; }
  void forward(bool near) {
    const int d = dir(near);
    ops_.push_back(Op::f(d, next_f_[d]++));
  }
  void backward(bool near, bool split) {
    const int d = dir(near);
    const int k = next_b_[d]++;
    if (split) {
      ops_.push_back(Op::i(d, k));
      deferred_w_.push_back(Op::w(d, k));
    } else {
      ops_.push_back(Op::b(d, k));
    }
  }
  void forward_backward(bool forward_near) {
    const int fd = dir(forward_near), bd = dir(!forward_near);
    const int fk = next_f_[fd]++, bk = next_b_[bd]++;
    ops_.push_back(Op::fb(fd, fk, bd, bk));
  }
  void weight() {
    TS_ASSERT(!deferred_w_.empty(), "DualPipe: W without a deferred backward");
    ops_.push_back(deferred_w_.front());
    deferred_w_.pop_front();
  }
  bool done() const { return deferred_w_.empty(); }

 private:
  std::vector<Op>& ops_;
  int near_;
  int next_f_[2] = {0, 0};
  int next_b_[2] = {0, 0};
  std::deque<Op> deferred_w_;
};

}  // namespace

void append_dualpipe_steps(std::vector<Op>& ops, int near_chunk, int h, int half, int per_chunk) {
  const bool middle = h == half - 1;
  RankOrder o(ops, near_chunk);
  constexpr bool kNear = true, kFar = false;

  for (int i = 0; i < 2 * (half - h - 1); ++i) o.forward(kNear);           // 1
  for (int i = 0; i < h + 1; ++i) {                                        // 2
    o.forward(kNear);
    o.forward(kFar);
  }
  for (int i = 0; i < half - h - 1; ++i) {                                 // 3
    o.backward(kFar, true);
    o.weight();
    o.forward(kFar);
  }
  for (int i = 0; i < per_chunk - 2 * half + h + 1; ++i) {                 // 4
    if (i == 0 && middle) {
      o.forward(kNear);
      o.backward(kFar, false);
    } else {
      o.forward_backward(kNear);
    }
    o.forward_backward(kFar);
  }
  for (int i = 0; i < half - h - 1; ++i) {                                 // 5
    o.backward(kFar, false);
    o.forward_backward(kFar);
  }
  bool split = false;                                                      // 6
  for (int i = 0; i < h + 1; ++i) {
    if (i == (h + 1) / 2 && h % 2 == 1) split = true;
    o.backward(kFar, split);
    if (i == (h + 1) / 2 && h % 2 == 0) split = true;
    o.backward(kNear, split);
  }
  for (int i = 0; i < half - h - 1; ++i) {                                 // 7
    o.weight();
    o.backward(kNear, true);
  }
  for (int i = 0; i < h + 1; ++i) o.weight();                              // 8
  TS_ASSERT(o.done(), "DualPipe: a deferred W was never run");
}

std::optional<ParamProblem> check_dualpipe(const ScheduleParams& p) {
  if (p.pp % 2 != 0) return ParamProblem{Param::Pp, "dualpipe needs an even pp"};
  if (p.microbatches % 2 != 0)
    return ParamProblem{Param::Microbatches,
                        "dualpipe splits micro-batches evenly over two directions and needs an even number per step"};
  if (p.microbatches < 2 * p.pp)
    return ParamProblem{Param::Microbatches,
                        fmt::format("dualpipe needs at least 2*pp = {} micro-batches per step", 2 * p.pp)};
  return std::nullopt;
}

Schedule build_dualpipe(const ScheduleParams& p) {
  TS_ASSERT(!check_dualpipe(p), "dualpipe built with unchecked parameters");
  const int P = p.pp, M = p.microbatches;
  Schedule s{"dualpipe", p, graph::PipelineTopology::bidirectional(P), {}, 2, 2};
  s.order.resize(static_cast<std::size_t>(P));
  const int half = P / 2;
  for (int r = 0; r < P; ++r)
    append_dualpipe_steps(s.order[static_cast<std::size_t>(r)], r < half ? 0 : 1, r < half ? r : P - 1 - r, half,
                          M / 2);
  return s;
}

}  // namespace trainsim::schedule
