// The memos (core/memo.hpp, sim/step/caches.hpp, network/memo.hpp, the op-cost memo of
// calibration/cost_model.hpp) change only the speed: a run evaluated cold and warm, or after
// other points, gives the same report bytes, and the reuse counters count what a hand count of
// the DeepSeek-V3 batch ramp says they should.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <thread>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "core/memo.hpp"
#include "report/run_report.hpp"
#include "step/op_lists.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {

std::string report_bytes(const Scenario& sc) {
  const RunReport r = build_run_report(sc);
  return run_text(r) + "\n" + run_json(r).dump() + "\n" + run_markdown(r);
}

Scenario deepseek(const std::vector<std::string>& sets = {}) {
  return load_scenario(ts_test::data("scenarios/deepseek-v3-h800.toml").string(), sets);
}

}  // namespace

TEST_CASE("Memo: hits return the stored value, the oldest entry is evicted, a throw stores nothing", "[memo]") {
  Memo<int, int> m("test memo", 2);
  int computed = 0;
  auto square = [&](int k) {
    return *m.get(k, [&] {
      ++computed;
      return k * k;
    });
  };
  CHECK(square(3) == 9);  // miss
  CHECK(square(3) == 9);  // hit
  CHECK(square(4) == 16);  // miss
  CHECK(square(5) == 25);  // miss: full (2), 3 (the oldest) goes
  CHECK(square(4) == 16);  // hit
  CHECK(square(3) == 9);  // miss again: 4 goes
  CHECK(computed == 4);
  MemoStats s = m.stats();
  CHECK(s.hits == 2);
  CHECK(s.misses == 4);
  CHECK(s.evictions == 2);
  CHECK(s.entries == 2);
  CHECK(s.hit_rate() == Approx(2.0 / 6.0));

  CHECK_THROWS_AS(m.get(7, []() -> int { throw std::runtime_error("no"); }), std::runtime_error);
  CHECK(m.peek(7) == nullptr);
  CHECK(m.stats().entries == 2);

  // The registry sums memos of one name.
  Memo<int, int> other("test memo", 4);
  (void)other.get(1, [] { return 1; });
  CHECK(memo_stats("test memo").misses == 5);
}

TEST_CASE("Memo::get_valid: a stale value is computed again and replaced in place", "[memo]") {
  // The value records the "file version" it was computed from; it is valid while that is current.
  Memo<int, int> m("test memo stale", 4);
  int version = 1, computed = 0;
  auto read = [&](int k) {
    return *m.get_valid(k, [&](const int& v) { return v % 100 == version; }, [&] {
      ++computed;
      return k * 100 + version;
    });
  };
  CHECK(read(7) == 701);  // miss
  CHECK(read(7) == 701);  // hit
  version = 2;            // the file changed
  CHECK(read(7) == 702);  // stale: computed again
  CHECK(read(7) == 702);  // hit
  CHECK(computed == 2);
  const MemoStats s = m.stats();
  CHECK(s.hits == 2);
  CHECK(s.misses == 2);
  CHECK(s.entries == 1);   // replaced, not added
  CHECK(s.evictions == 0);
}

TEST_CASE("KeyWriter: different inputs give different keys", "[memo]") {
  const auto key = [](auto f) {
    KeyWriter k;
    f(k);
    return k.take();
  };
  CHECK(key([](KeyWriter& k) { k.add("ab").add("c"); }) != key([](KeyWriter& k) { k.add("a").add("bc"); }));
  CHECK(key([](KeyWriter& k) { k.add(0.0); }) != key([](KeyWriter& k) { k.add(-0.0); }));
  CHECK(key([](KeyWriter& k) { k.add(std::vector<int>{1, 2}).add(3); }) !=
        key([](KeyWriter& k) { k.add(std::vector<int>{1}).add(2).add(3); }));
  CHECK(key([](KeyWriter& k) { k.add(1.5).add("x"); }) == key([](KeyWriter& k) { k.add(1.5).add("x"); }));
}

TEST_CASE("Op-cost memo: the answer op_time gives, for every op of a DeepSeek-V3 stage", "[memo]") {
  clear_memos();
  const Scenario sc = deepseek();
  const auto a = calibration::load_cost_model(sc.hardware, data_dir());
  const auto b = calibration::load_cost_model(sc.hardware, data_dir());  // kept: a copy
  CHECK(a->identity() == b->identity());
  CHECK(memo_stats("cost model").hits == 1);
  CHECK(memo_stats("cost model").misses == 1);
  const auto& plan = sc.phases[0].plan;
  const auto layers = step::stage_ops(sc.model, plan, sc.phases[0].training, plan.layer_split, 0);
  int ops = 0;
  for (const auto& L : layers)
    for (const Op& o : L.ops)
      for (int sms : {132, 112}) {
        const calibration::OpCost direct = a->op_time(o, sms);
        const auto first = a->op_cost(o, sms);
        const auto again = b->op_cost(o, sms);  // the copy shares the memo
        CHECK(first.get() == again.get());
        CHECK(first->time == direct.time);
        CHECK(first->source == direct.source);
        CHECK(first->basis == direct.basis);
        ++ops;
      }
  REQUIRE(ops > 0);
  // Each distinct (op, SMs) missed once; the second model's questions all hit.
  const MemoStats s = memo_stats("op cost");
  CHECK(s.hits >= static_cast<std::uint64_t>(ops));
  CHECK(s.hits + s.misses == static_cast<std::uint64_t>(2 * ops));
}

TEST_CASE("DeepSeek-V3 run: cold, warm and after other points give the same bytes", "[memo]") {
  clear_memos();
  const Scenario sc = deepseek();
  const std::string cold = report_bytes(sc);
  const std::string warm = report_bytes(sc);
  CHECK(warm == cold);
  // The warm run simulated no step again.
  CHECK(memo_stats("step time").misses == 36 - 3);  // the cold run's (see the hand count below)
  // Other points first (another schedule, another GPU), then the scenario as written.
  clear_memos();
  (void)report_bytes(deepseek({"plan.schedule=1f1b"}));
  (void)report_bytes(deepseek({"cluster.gpu=h100-sxm"}));
  CHECK(report_bytes(sc) == cold);
  // The same from two threads at once (a sweep with --jobs 2), memos shared.
  clear_memos();
  std::string t1, t2;
  std::thread a([&] { t1 = report_bytes(deepseek({"plan.schedule=zb1p"})); });
  std::thread b([&] { t2 = report_bytes(sc); });
  a.join();
  b.join();
  CHECK(t2 == cold);
  clear_memos();
  CHECK(report_bytes(deepseek({"plan.schedule=zb1p"})) == t1);
}

TEST_CASE("Reuse counters on DeepSeek-V3's batch ramp, counted by hand", "[memo]") {
  // The scenario: pre-training from batch 3072 to 15360 over 469B of 14.8T tokens at dp 128 x
  // micro-batch 1 (batches are multiples of 128), 16 ramp segments (cost/training_run.hpp);
  // DualPipe runs an even number of at least 2 x pp = 32 micro-batches, other counts are
  // extrapolated from the next two it runs (report/run_report.cpp). Then context-32k (1920
  // sequences at dp 16) and context-128k (480 at dp 4), 120 micro-batches each, other plans;
  // and SFT: 4096 sequences = 32 micro-batches on the pre-training plan and sequence length.
  const int segments = 16;
  std::vector<std::int64_t> asked;  // micro-batch counts whose step time the pre-training asks for
  for (int i = 0; i < segments; ++i) {
    const double b = 3072 + (15360 - 3072) * (i + 0.5) / segments;  // the ramp reaches 15360 at 469B < 14.8T
    const auto M = static_cast<std::int64_t>(std::floor(b / 128));   // 27, 33, 39, ..., 117: all odd
    if (M >= 32 && M % 2 == 0) {
      asked.push_back(M);
    } else {
      const std::int64_t lo = std::max<std::int64_t>(32, M % 2 == 0 ? M : M + 1);
      asked.push_back(lo);
      asked.push_back(lo + 2);
    }
  }
  asked.push_back(120);  // the tokens after the ramp, at the full batch
  const std::set<std::int64_t> distinct(asked.begin(), asked.end());
  REQUIRE(asked.size() == 33);     // 16 segments x 2 + 1
  REQUIRE(distinct.size() == 31);  // 34 (from 27 and 33) and 120 (from 117 and the rest) twice
  REQUIRE(distinct.count(32) == 1);  // SFT's 32 micro-batches: already simulated
  // Step times: the pre-training's distinct counts, one each for the context phases; SFT's is a
  // hit. Asked: 33 + 3.
  const std::uint64_t time_misses = distinct.size() + 2;
  const std::uint64_t time_hits = asked.size() + 3 - time_misses;
  // Step setups: one per simulated step time, one for each phase's full step in the report (4),
  // and one for each phase's memory check, on the layer split its step runs, before anything is
  // simulated (4); three distinct (pre-training and SFT share theirs).
  const std::uint64_t setup_misses = 3;
  const std::uint64_t setup_hits = time_misses + 4 + 4 - setup_misses;
  // Pipeline replays: one per distinct (setup, micro-batches), the report's full steps all hits.
  const std::uint64_t replay_misses = time_misses, replay_hits = 4;

  clear_memos();
  (void)build_run_report(deepseek());
  const MemoStats t = memo_stats("step time"), s = memo_stats("step setup"), p = memo_stats("pipeline replay");
  CHECK(t.misses == time_misses);
  CHECK(t.hits == time_hits);
  CHECK(s.misses == setup_misses);
  CHECK(s.hits == setup_hits);
  CHECK(p.misses == replay_misses);
  CHECK(p.hits == replay_hits);
  CHECK(memo_stats("cost model").misses == 1);

  // Another global batch on the same plan: every setup is reused; 7680 = 60 micro-batches.
  reset_memo_counters();
  (void)build_run_report(deepseek({"training.global_batch=7680"}));
  CHECK(memo_stats("step setup").misses == 0);
}
