// DualPipeV (the V-shaped DualPipe): the public reference op order
// (shared/reference/dualpipe/dualpipev-order-ppP-mbM.txt), op for op; the placement and the two
// dependency rules at the turn of the V; the published bubble (P-1)(F&B+B-3W) and activation
// count 2P+1 = PP+1 against closed forms; the replay figures the reference README tabulates.
// Every expected number is written here from the formula or table it comes from.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>

#include <boost/graph/adjacency_list.hpp>

#include "graph/task_graph.hpp"
#include "schedule/schedule.hpp"
#include "schedule/schedule_report.hpp"
#include "support.hpp"

using trainsim::Time;
using trainsim::graph::Op;
using trainsim::graph::OpKind;
using trainsim::graph::OpTimes;
namespace ts = trainsim::schedule;

namespace {

struct Fixture {
  int pp;
  int mb;
};

const Fixture kFixtures[] = {{3, 7}, {4, 8}, {4, 10}, {4, 13}, {8, 16}, {8, 20}, {16, 32}, {16, 40}};

std::filesystem::path reference_dir() { return ts_test::shared_dir() / "reference" / "dualpipe"; }

std::filesystem::path fixture_path(const Fixture& f) {
  return reference_dir() / ("dualpipev-order-pp" + std::to_string(f.pp) + "-mb" + std::to_string(f.mb) + ".txt");
}

OpTimes times(Time f, Time b, Time w, Time fb) {
  OpTimes t;
  t.f = f;
  t.b = b;
  t.w = w;
  t.fb = fb;
  return t;
}

// The first n lines of a text.
std::string first_lines(const std::string& text, int n) {
  std::size_t pos = 0;
  for (int i = 0; i < n && pos != std::string::npos; ++i) {
    pos = text.find('\n', pos);
    if (pos != std::string::npos) ++pos;
  }
  return text.substr(0, pos);
}

}  // namespace

TEST_CASE("DualPipeV order matches every reference fixture", "[dualpipev]") {
  if (!std::filesystem::exists(reference_dir())) {
    WARN("skipped: no reference folder " << reference_dir().string());
    return;
  }
  for (const Fixture& f : kFixtures) {
    CAPTURE(f.pp, f.mb);
    const std::string expected = ts_test::read_file(fixture_path(f));
    REQUIRE(!expected.empty());
    const auto s = ts::build("dualpipev", {f.pp, f.mb, 1});
    CHECK(ts::order_text(s) == expected);

    const auto r = ts_test::run_trainsim("schedule --kind dualpipev --pp " + std::to_string(f.pp) +
                                         " --microbatches " + std::to_string(f.mb) + " --order");
    CHECK(r.status == 0);
    CHECK(r.out == expected);
    CHECK(r.err.empty());
  }
}

TEST_CASE("DualPipeV on P ranks is the first P ranks of DualPipe on 2P ranks with 2M micro-batches",
          "[dualpipev]") {
  // The reference README's identity, token for token (the tokens mean chunks, not directions).
  for (int pp = 1; pp <= 12; ++pp)
    for (int m = 2 * pp; m <= 2 * pp + 5; ++m) {
      CAPTURE(pp, m);
      const std::string v = ts::order_text(ts::build("dualpipev", {pp, m, 1}));
      const std::string d = ts::order_text(ts::build("dualpipe", {2 * pp, 2 * m, 1}));
      CHECK(v == first_lines(d, pp));
    }
}

TEST_CASE("DualPipeV placement: rank r holds stages r and 2P-1-r, one copy of the model", "[dualpipev]") {
  const int pp = GENERATE(1, 3, 4, 8);
  const auto s = ts::build("dualpipev", {pp, 2 * pp, 1});
  CHECK(s.topo.ranks() == pp);
  CHECK(s.topo.flows() == 1);
  CHECK(static_cast<int>(s.topo.path(0).size()) == 2 * pp);
  for (int r = 0; r < pp; ++r) {
    CHECK(s.topo.position_of(r, 0) == r);
    CHECK(s.topo.position_of(r, 1) == 2 * pp - 1 - r);
  }
  CHECK(s.weight_copies == 1);
  CHECK(s.stages_per_rank == 2);
}

TEST_CASE("DualPipeV: each rank runs M forwards and M backwards of each of its chunks", "[dualpipev]") {
  const int pp = GENERATE(1, 3, 4, 5);
  const int m = GENERATE_COPY(2 * pp, 2 * pp + 1, 3 * pp + 2);
  CAPTURE(pp, m);
  const auto s = ts::build("dualpipev", {pp, m, 1});
  for (const auto& ops : s.order) {
    int f[2] = {0, 0}, b[2] = {0, 0}, i[2] = {0, 0}, w[2] = {0, 0};
    for (const Op& op : ops) {
      switch (op.kind) {
        case OpKind::F: ++f[op.chunk]; break;
        case OpKind::B: ++b[op.chunk]; break;
        case OpKind::I: ++i[op.chunk]; break;
        case OpKind::W: ++w[op.chunk]; break;
        case OpKind::FB:
          ++f[op.chunk];
          ++b[op.chunk2];
          // The pairs always join the two chunks of the rank.
          CHECK(op.chunk2 == 1 - op.chunk);
          break;
      }
    }
    for (int c = 0; c < 2; ++c) {
      CHECK(f[c] == m);
      CHECK(b[c] + i[c] == m);
      CHECK(w[c] == i[c]);
    }
  }
}

TEST_CASE("DualPipeV: the two dependency rules at the turn of the V, and the loss on rank 0", "[dualpipev]") {
  const int pp = 4, m = 8;
  const Time d = Time::us(7);
  const auto s = ts::build("dualpipev", {pp, m, 1});
  const auto tg = trainsim::graph::TaskGraph::build(s.topo, s.order, OpTimes{}, d);
  const auto& g = tg.graph();
  int turn_f = 0, turn_b = 0, loss = 0;
  for (auto v : boost::make_iterator_range(boost::vertices(g))) {
    const auto& node = g[v];
    for (auto e : boost::make_iterator_range(boost::in_edges(v, g))) {
      const auto& src = g[boost::source(e, g)];
      const auto& edge = g[e];
      if (edge.kind == trainsim::graph::EdgeKind::ProgramOrder) continue;
      // Every cross-rank edge pays the transfer, every same-rank edge none.
      CHECK(edge.delay == (src.rank == node.rank ? Time::zero() : d));
      const bool fwd_into_1 = node.op.has_forward() && node.op.chunk == 1;
      if (node.rank == pp - 1 && fwd_into_1 && edge.kind == trainsim::graph::EdgeKind::Activation) {
        // F1:k on rank P-1 waits for its own F0:k.
        CHECK(src.rank == pp - 1);
        CHECK(src.op.has_forward());
        CHECK(src.op.chunk == 0);
        CHECK(src.op.mb == node.op.mb);
        ++turn_f;
      }
      const bool bwd0 = (node.op.kind == OpKind::B || node.op.kind == OpKind::I) && node.op.chunk == 0;
      const bool fb_bwd0 = node.op.kind == OpKind::FB && node.op.chunk2 == 0;
      if (node.rank == pp - 1 && (bwd0 || fb_bwd0) && edge.kind == trainsim::graph::EdgeKind::Gradient) {
        // B0:k on rank P-1 waits for its own chunk-1 backward of k.
        CHECK(src.rank == pp - 1);
        const bool src_bwd1 = ((src.op.kind == OpKind::B || src.op.kind == OpKind::I) && src.op.chunk == 1) ||
                              (src.op.kind == OpKind::FB && src.op.chunk2 == 1);
        CHECK(src_bwd1);
        ++turn_b;
      }
      if (edge.kind == trainsim::graph::EdgeKind::Loss) {
        // Only rank 0's chunk 1 (the last stage) starts a backward from its own forward.
        CHECK(node.rank == 0);
        CHECK(src.rank == 0);
        CHECK(src.op.chunk == 1);
        ++loss;
      }
    }
  }
  CHECK(turn_f == m);
  CHECK(turn_b == m);
  CHECK(loss == m);
}

TEST_CASE("DualPipeV replay reproduces the reference README's worked check", "[dualpipev]") {
  // README table (F = 1, B = 2, W = 1, I = 1, free communication): makespan and the idle time
  // of the most idle rank at F&B = 2 / 2.5 / 3 us.
  struct Row {
    Fixture f;
    double makespan[3];
    double idle[3];
  };
  const Row rows[] = {
      {{3, 7}, {37, 41.5, 46}, {2, 3, 4}},       {{4, 8}, {44, 49, 54}, {3, 4.5, 6}},
      {{4, 10}, {52, 59, 66}, {3, 4.5, 6}},      {{4, 13}, {64, 74, 84}, {3, 4.5, 6}},
      {{8, 16}, {88, 99, 110}, {7, 10.5, 14}},   {{8, 20}, {104, 119, 134}, {7, 10.5, 14}},
      {{16, 32}, {176, 199, 222}, {15, 22.5, 30}}, {{16, 40}, {208, 239, 270}, {15, 22.5, 30}},
  };
  const double fbs[] = {2.0, 2.5, 3.0};
  for (const Row& row : rows)
    for (int k = 0; k < 3; ++k) {
      CAPTURE(row.f.pp, row.f.mb, fbs[k]);
      const auto r = ts::run("dualpipev", {row.f.pp, row.f.mb, 1},
                             times(Time::us(1), Time::us(2), Time::us(1), Time::from_seconds(fbs[k] * 1e-6)),
                             Time::zero());
      CHECK(r.replay.makespan.micros() == Approx(row.makespan[k]).epsilon(1e-12));
      const Time idle = *std::max_element(r.replay.bubble.begin(), r.replay.bubble.end());
      CHECK(idle.micros() == Approx(row.idle[k]).epsilon(1e-12));
    }
  // And the per-rank idle the README gives for pp4-mb10: 1, 2, 3, 3 at F&B = 2; 3.5, 4, 4.5,
  // 4.5 at F&B = 2.5; F&B = 4 > F+B: rank 0 the most idle, 11 against the formula's 9.
  const auto a = ts::run("dualpipev", {4, 10, 1}, times(Time::us(1), Time::us(2), Time::us(1), Time::us(2)),
                         Time::zero());
  CHECK(a.replay.bubble == std::vector<Time>{Time::us(1), Time::us(2), Time::us(3), Time::us(3)});
  const auto b = ts::run("dualpipev", {4, 10, 1},
                         times(Time::us(1), Time::us(2), Time::us(1), Time::ns(2500)), Time::zero());
  CHECK(b.replay.bubble == std::vector<Time>{Time::ns(3500), Time::us(4), Time::ns(4500), Time::ns(4500)});
  const auto c = ts::run("dualpipev", {4, 10, 1}, times(Time::us(1), Time::us(2), Time::us(1), Time::us(4)),
                         Time::zero());
  CHECK(c.replay.bubble[0] == Time::us(11));
  CHECK(*std::max_element(c.replay.bubble.begin(), c.replay.bubble.end()) == Time::us(11));
}

TEST_CASE("DualPipeV: the most idle device idles (P-1)(F&B+B-3W) in the published regime", "[dualpipev]") {
  // The DualPipe README's table: DualPipeV bubble (PP/2-1)(F&B+B-3W) with PP = 2P stages, i.e.
  // (P-1)(F&B+B-3W) on P devices. Exact when F = W = B/2 and B <= F&B <= F+B, communication free
  // (reference README). There the last two ranks (the tip of the V) are the most idle.
  const int pp = GENERATE(2, 3, 4, 5, 8, 16);
  const int m = GENERATE_COPY(2 * pp, 2 * pp + 1, 3 * pp + 2);
  const Time F = Time::us(3), W = Time::us(3), B = Time::us(6);
  const Time FB = GENERATE(Time::us(6), Time::us(7), Time::us(8), Time::us(9));  // B .. F+B
  CAPTURE(pp, m, FB.count_ps());
  const auto r = ts::run("dualpipev", {pp, m, 1}, times(F, B, W, FB), Time::zero());
  const Time bubble = (pp - 1) * (FB + B - 3 * W);
  CHECK(*std::max_element(r.replay.bubble.begin(), r.replay.bubble.end()) == bubble);
  CHECK(r.replay.bubble[static_cast<std::size_t>(pp - 1)] == bubble);
  CHECK(r.replay.bubble[static_cast<std::size_t>(pp - 2)] == bubble);
}

TEST_CASE("DualPipeV: peak live activations 2P+1 = PP+1 per device", "[dualpipev]") {
  // Walk each rank's list (reference README): chunks whose forward has run and whose backward
  // is not done; a split backward is done at its W (or, the README adds, at its I: same peak);
  // an overlapped pair's forward counts before its backward.
  const int pp = GENERATE(1, 2, 3, 4, 7, 8, 16);
  const int m = GENERATE_COPY(2 * pp, 2 * pp + 3, 4 * pp);
  CAPTURE(pp, m);
  const auto s = ts::build("dualpipev", {pp, m, 1});
  const auto peak = ts::peak_inflight(s);
  for (std::size_t r = 0; r < s.order.size(); ++r) {
    int live_w = 0, peak_w = 0, live_i = 0, peak_i = 0;
    for (const Op& op : s.order[r]) {
      if (op.has_forward()) {
        ++live_w;
        ++live_i;
      }
      peak_w = std::max(peak_w, live_w);
      peak_i = std::max(peak_i, live_i);
      if (op.kind == OpKind::B || op.kind == OpKind::FB) {
        --live_w;
        --live_i;
      }
      if (op.kind == OpKind::W) --live_w;
      if (op.kind == OpKind::I) --live_i;
    }
    CHECK(live_w == 0);
    CHECK(peak_w == 2 * pp + 1);
    CHECK(peak_i == 2 * pp + 1);
    CHECK(peak[r] == 2 * pp + 1);
  }
}

TEST_CASE("DualPipeV: M >= 2P is the only rule; odd P and odd M run", "[dualpipev]") {
  CHECK_THROWS_WITH(ts::build("dualpipev", {4, 7, 1}),
                    Catch::Contains("--microbatches: dualpipev needs at least 2*pp = 8 micro-batches per step, got 7"));
  CHECK_THROWS_WITH(ts::build("dualpipev", {4, 8, 2}), Catch::Contains("--vpp"));
  CHECK(!ts::check_params("dualpipev", {3, 7, 1}));
  CHECK(!ts::check_params("dualpipev", {5, 10, 1}));
  CHECK(!ts::check_params("dualpipev", {1, 2, 1}));
  const auto problem = ts::check_params("dualpipev", {5, 9, 1});
  REQUIRE(problem);
  CHECK(problem->param == ts::Param::Microbatches);
  // The fewest micro-batches it runs: 2P, then every count above.
  CHECK(ts::fewest_microbatches("dualpipev", 5, 1, 1) == 10);
  CHECK(ts::fewest_microbatches("dualpipev", 5, 1, 11) == 11);
  CHECK(ts::fewest_microbatches("dualpipe", 4, 1, 9) == 10);
  CHECK(ts::fewest_microbatches("interleaved", 4, 2, 5) == 8);
  // One rank: both chunks local, nothing to wait for, no idle time.
  const auto one = ts::run("dualpipev", {1, 3, 1}, OpTimes{}, Time::us(5));
  CHECK(one.replay.bubble[0] == Time::zero());
  // Odd P with a communication delay replays without deadlock.
  const auto odd = ts::run("dualpipev", {3, 7, 1}, OpTimes{}, Time::us(1));
  for (std::size_t i = 0; i < odd.replay.busy.size(); ++i) CHECK(odd.replay.makespan >= odd.replay.busy[i]);
}
