// Pipeline schedules replayed on the task graph: bubbles and memory against the closed forms
// of the papers (uniform op times, free communication unless stated). Every expected number is
// derived here from the formula written next to it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

#include "graph/task_graph.hpp"
#include "schedule/schedule.hpp"

using trainsim::Time;
using trainsim::graph::OpTimes;
namespace ts = trainsim::schedule;

namespace {
OpTimes times(Time f, Time b, Time w, Time fb) {
  OpTimes t;
  t.f = f;
  t.b = b;
  t.w = w;
  t.fb = fb;
  return t;
}
}  // namespace

TEST_CASE("GPipe and 1F1B: every rank idles (P-1)(F+B)") {
  const auto kind = GENERATE(as<std::string>{}, "gpipe", "1f1b");
  const int pp = GENERATE(4, 8, 16);
  const int mult = GENERATE(1, 2, 3);
  const int m = pp * mult + (mult == 3 ? 1 : 0);  // also a count that is not a multiple of P
  const Time F = Time::us(3), B = Time::us(5);
  CAPTURE(kind, pp, m);
  const auto r = ts::run(kind, {pp, m, 1}, times(F, B, Time::us(2), F + B), Time::zero());
  // Expectation: bubble = (P-1)(F+B) on every rank; makespan = (M+P-1)(F+B).
  const Time bubble = (pp - 1) * (F + B);
  CHECK(r.replay.makespan == (m + pp - 1) * (F + B));
  for (int rank = 0; rank < pp; ++rank) CHECK(r.replay.bubble[static_cast<std::size_t>(rank)] == bubble);
  // Memory: 1F1B holds P micro-batches on its first rank (P-r on rank r); GPipe holds all M.
  if (kind == "1f1b") {
    for (int rank = 0; rank < pp; ++rank) CHECK(r.peak_inflight[static_cast<std::size_t>(rank)] == pp - rank);
  } else {
    for (int p : r.peak_inflight) CHECK(p == m);
  }
  CHECK(r.schedule.weight_copies == 1);
}

TEST_CASE("interleaved: bubble (P-1)(F+B)/v") {
  const int pp = GENERATE(4, 8, 16);
  const int v = GENERATE(2, 4);
  const int m = pp * GENERATE(1, 2, 3);
  // F and B are a full stage's times; each of the v chunks takes 1/v of them.
  const Time F = Time::us(8), B = Time::us(16);
  CAPTURE(pp, v, m);
  const auto r = ts::run("interleaved", {pp, m, v}, times(F / v, B / v, Time::zero(), (F + B) / v), Time::zero());
  const Time bubble = (pp - 1) * (F + B) / v;
  for (int rank = 0; rank < pp; ++rank) CHECK(r.replay.bubble[static_cast<std::size_t>(rank)] == bubble);
  // Each rank is busy for all M micro-batches of its v chunks: v * M * (F+B)/v = M(F+B).
  for (Time busy : r.replay.busy) CHECK(busy == m * (F + B));
  CHECK(r.schedule.weight_copies == 1);
}

TEST_CASE("ZB-H1: bubble (P-1)(F+B-2W) when F = I = W, same memory as 1F1B") {
  const int pp = GENERATE(4, 8, 16);
  const int m = pp * GENERATE(1, 2, 3);
  // The zero-bubble paper's handcrafted schedules assume T_F = T_B(input) = T_W.
  const Time F = Time::us(2), W = Time::us(2), B = F + W;  // B = I + W
  CAPTURE(pp, m);
  const auto r = ts::run("zb1p", {pp, m, 1}, times(F, B, W, F + B), Time::zero());
  const Time bubble = (pp - 1) * (F + B - 2 * W);
  for (int rank = 0; rank < pp; ++rank) CHECK(r.replay.bubble[static_cast<std::size_t>(rank)] == bubble);
  CHECK(*std::max_element(r.peak_inflight.begin(), r.peak_inflight.end()) == pp);
  CHECK(r.peak_inflight[0] == pp);
  CHECK(r.schedule.weight_copies == 1);
}

TEST_CASE("DualPipe: middle ranks idle (P/2-1)(F&B+B-3W); PP+1 in flight; 2x parameters") {
  const int pp = GENERATE(4, 8, 16);
  const int m = GENERATE_COPY(2 * pp, 2 * pp + 4, 3 * pp);
  // The report's regime: F = W = B/2 and F&B >= B.
  const Time F = Time::us(2), B = Time::us(4), W = Time::us(2);
  const Time FB = GENERATE(Time::us(4), Time::us(5), Time::us(7));
  CAPTURE(pp, m, FB.count_ps());
  const auto r = ts::run("dualpipe", {pp, m, 1}, times(F, B, W, FB), Time::zero());
  const Time bubble = (pp / 2 - 1) * (FB + B - 3 * W);
  CHECK(r.replay.bubble[static_cast<std::size_t>(pp / 2 - 1)] == bubble);
  CHECK(r.replay.bubble[static_cast<std::size_t>(pp / 2)] == bubble);
  // The middle ranks are the most idle.
  CHECK(*std::max_element(r.replay.bubble.begin(), r.replay.bubble.end()) >= bubble);
  // Activations: PP+1 micro-batches on every rank (the F of an F&B pair is held while its B
  // runs); parameters: both directions' chunks on every rank.
  for (int p : r.peak_inflight) CHECK(p == pp + 1);
  CHECK(r.schedule.weight_copies == 2);
}

TEST_CASE("a point-to-point delay shifts the makespan by the hand-derived amount") {
  const int pp = GENERATE(4, 8);
  const Time F = Time::us(3), B = Time::us(5), d = Time::us(1);
  SECTION("GPipe") {
    const int m = 2 * pp;
    // Rank r's F_k ends at (k+1)F + r(F+d); the last rank's F_{M-1} at MF + (P-1)(F+d).
    // Backwards then flow back: rank 0's B_{M-1} ends at MF + (P-1)(F+d) + MB + (P-1)(B+d)
    // = (M+P-1)(F+B) + 2(P-1)d: each of the P-1 hops costs d once per direction.
    const auto base = ts::run("gpipe", {pp, m, 1}, times(F, B, Time::zero(), F + B), Time::zero());
    const auto late = ts::run("gpipe", {pp, m, 1}, times(F, B, Time::zero(), F + B), d);
    CHECK(late.replay.makespan - base.replay.makespan == 2 * (pp - 1) * d);
  }
  SECTION("one micro-batch through 1F1B is a single chain") {
    // P forwards, P backwards and 2(P-1) transfers in sequence.
    const auto r = ts::run("1f1b", {pp, 1, 1}, times(F, B, Time::zero(), F + B), d);
    CHECK(r.replay.makespan == pp * (F + B) + 2 * (pp - 1) * d);
  }
}

TEST_CASE("critical path runs contiguously from 0 to the makespan") {
  const auto kind = GENERATE(as<std::string>{}, "gpipe", "1f1b", "zb1p", "dualpipe", "dualpipev");
  CAPTURE(kind);
  const Time d = Time::us(1);
  const auto r = ts::run(kind, {4, 8, 1}, times(Time::us(2), Time::us(4), Time::us(2), Time::us(5)), d);
  const auto& cp = r.replay.critical_path;
  REQUIRE(!cp.empty());
  CHECK(cp.front().start == Time::zero());
  CHECK(!cp.front().via.has_value());
  CHECK(cp.back().end == r.replay.makespan);
  for (std::size_t i = 1; i < cp.size(); ++i) {
    // Each op starts when the binding dependency arrives: at the predecessor's end, plus the
    // p2p delay when it came from another rank.
    const Time gap = cp[i].rank == cp[i - 1].rank ? Time::zero() : d;
    CHECK(cp[i].start == cp[i - 1].end + gap);
  }
}

TEST_CASE("a schedule that would deadlock reports its cycle") {
  using trainsim::graph::Op;
  // Rank 0 runs B0:0 before F0:0. B0:0 needs rank 1's B0:0, which needs rank 1's F0:0, which
  // needs rank 0's F0:0, which waits (program order) for rank 0's B0:0.
  const auto topo = trainsim::graph::PipelineTopology::linear(2);
  const std::vector<std::vector<Op>> order = {{Op::b(0, 0), Op::f(0, 0)}, {Op::f(0, 0), Op::b(0, 0)}};
  const auto tg = trainsim::graph::TaskGraph::build(topo, order, OpTimes{}, Time::zero());
  REQUIRE(tg.find_cycle().has_value());
  try {
    (void)trainsim::graph::replay(tg);
    FAIL("no deadlock reported");
  } catch (const trainsim::graph::DeadlockError& e) {
    auto c = e.cycle();
    std::sort(c.begin(), c.end());
    CHECK(c == std::vector<std::string>{"rank 0 B0:0", "rank 0 F0:0", "rank 1 B0:0", "rank 1 F0:0"});
    CHECK_THAT(e.what(), Catch::Contains("deadlock"));
  }
}

TEST_CASE("an op whose dependency no rank runs is an input error") {
  using trainsim::graph::Op;
  const auto topo = trainsim::graph::PipelineTopology::linear(2);
  const std::vector<std::vector<Op>> order = {{Op::f(0, 0), Op::b(0, 0)}, {Op::f(0, 1), Op::b(0, 1)}};
  CHECK_THROWS_WITH(trainsim::graph::TaskGraph::build(topo, order, OpTimes{}, Time::zero()),
                    Catch::Contains("needs B0:0 (or I0:0) on rank 1, which no rank runs"));
}

TEST_CASE("op names round-trip through the fixture notation") {
  using trainsim::graph::Op;
  for (const auto* s : {"F0:3", "B1:12", "I0:0", "W1:7", "F1:2+B0:0"})
    CHECK(trainsim::graph::to_string(trainsim::graph::parse_op(s)) == s);
  CHECK_THROWS_AS(trainsim::graph::parse_op("X0:1"), trainsim::InputError);
  CHECK_THROWS_AS(trainsim::graph::parse_op("B0:1+F1:1"), trainsim::InputError);
}

TEST_CASE("every schedule runs each micro-batch's forward and backward on every stage once") {
  const auto kind = GENERATE(as<std::string>{}, "gpipe", "1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev");
  const int pp = 4, m = 8;
  const int v = kind == "interleaved" ? 2 : 1;
  const auto s = ts::build(kind, {pp, m, v});
  int forwards = 0, backwards = 0;
  for (const auto& ops : s.order)
    for (const auto& op : ops) {
      forwards += op.has_forward() ? 1 : 0;
      backwards += (op.kind == trainsim::graph::OpKind::B || op.kind == trainsim::graph::OpKind::I ||
                    op.kind == trainsim::graph::OpKind::FB) ? 1 : 0;
    }
  // Stages per micro-batch: P (v*P interleaved, 2P DualPipeV). DualPipe: M/2 per direction,
  // P stages each.
  const int stages = kind == "dualpipev" ? 2 * pp : pp * v;
  CHECK(s.stages_per_rank * pp == (kind == "dualpipe" ? 2 * pp : stages));
  CHECK(forwards == m * stages);
  CHECK(backwards == m * stages);
}

TEST_CASE("replay_times: the hand-derived makespans, and the engine's times, events and critical path on every schedule") {
  using trainsim::graph::TaskGraph;
  const Time F = Time::us(3), B = Time::us(5), d = Time::us(1);
  SECTION("closed forms, as the engine cases above") {
    const int pp = GENERATE(4, 8);
    CAPTURE(pp);
    // GPipe, free sends: makespan (M+P-1)(F+B), bubble (P-1)(F+B) on every rank.
    const auto g = ts::build("gpipe", {pp, 2 * pp, 1});
    const auto rg = trainsim::graph::replay_times(TaskGraph::build(g.topo, g.order, times(F, B, Time::zero(), F + B), Time::zero()));
    CHECK(rg.makespan == (3 * pp - 1) * (F + B));
    for (Time b : rg.bubble) CHECK(b == (pp - 1) * (F + B));
    // One micro-batch through 1F1B with sends: P forwards, P backwards, 2(P-1) transfers.
    const auto o = ts::build("1f1b", {pp, 1, 1});
    const auto ro = trainsim::graph::replay_times(TaskGraph::build(o.topo, o.order, times(F, B, Time::zero(), F + B), d));
    CHECK(ro.makespan == pp * (F + B) + 2 * (pp - 1) * d);
    // Events as the engine counts them: one finish per op and one arrival per edge.
    const TaskGraph tg = TaskGraph::build(o.topo, o.order, OpTimes{}, d);
    CHECK(trainsim::graph::replay_times(tg).events == tg.shape().nodes.size() + tg.shape().edges.size());
  }
  SECTION("every op's start and end and the critical path as the engine replays them (uneven per-op times, zero durations)") {
    const auto kind = GENERATE(as<std::string>{}, "gpipe", "1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev");
    const Time p2p = GENERATE(Time::zero(), Time::us(1));
    const int mode = GENERATE(0, 1, 2);
    const int v = kind == "interleaved" ? 2 : 1;
    CAPTURE(kind, p2p.count_ps(), mode);
    const auto s = ts::build(kind, {4, 8, v});
    OpTimes t;
    // Durations that differ by rank, chunk, micro-batch and kind (some zero), so that ties and
    // non-ties both occur (mode 0); every op 2 us (mode 1: many equal instants); every op 0
    // (mode 2: the whole replay at one instant).
    t.per_op = [mode](int rank, const trainsim::graph::Op& op) {
      const int k = static_cast<int>(op.kind);
      if (mode == 1) return Time::us(2);
      if (mode == 2) return Time::zero();
      return Time::us((rank * 7 + op.chunk * 3 + op.mb * 5 + k * 11) % 6);
    };
    const TaskGraph tg = TaskGraph::build(s.topo, s.order, t, p2p);
    const auto engine = trainsim::graph::replay(tg);
    const auto fast = trainsim::graph::replay_times(tg, true);
    CHECK(trainsim::graph::replay_times(tg).critical_path.empty());
    CHECK(fast.makespan == engine.makespan);
    CHECK(fast.events == engine.events);
    CHECK(fast.busy == engine.busy);
    CHECK(fast.bubble == engine.bubble);
    // The critical path: the same ops, times and binding dependencies (among equal arrivals the
    // one the engine ran last).
    REQUIRE(fast.critical_path.size() == engine.critical_path.size());
    for (std::size_t i = 0; i < fast.critical_path.size(); ++i) {
      const auto& a = fast.critical_path[i];
      const auto& b = engine.critical_path[i];
      CAPTURE(i);
      CHECK(a.rank == b.rank);
      CHECK(trainsim::graph::to_string(a.op) == trainsim::graph::to_string(b.op));
      CHECK(a.start == b.start);
      CHECK(a.end == b.end);
      CHECK(a.via == b.via);
    }
    REQUIRE(fast.ops.size() == engine.ops.size());
    for (std::size_t r = 0; r < fast.ops.size(); ++r) {
      REQUIRE(fast.ops[r].size() == engine.ops[r].size());
      for (std::size_t i = 0; i < fast.ops[r].size(); ++i) {
        CHECK(fast.ops[r][i].start == engine.ops[r][i].start);
        CHECK(fast.ops[r][i].end == engine.ops[r][i].end);
      }
    }
  }
  SECTION("a deadlocking order is reported as replay() reports it") {
    using trainsim::graph::Op;
    const auto topo = trainsim::graph::PipelineTopology::linear(2);
    const std::vector<std::vector<Op>> order = {{Op::b(0, 0), Op::f(0, 0)}, {Op::f(0, 0), Op::b(0, 0)}};
    CHECK_THROWS_AS(trainsim::graph::replay_times(TaskGraph::build(topo, order, OpTimes{}, Time::zero())),
                    trainsim::graph::DeadlockError);
  }
}
