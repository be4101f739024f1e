// Balanced layer split (sim/model/layer_split.hpp): checked against an exhaustive search over
// every contiguous partition, which is the definition of "the heaviest stage as light as
// possible", and against the closed form for uniform layers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <numeric>
#include <random>

#include "config/scenario.hpp"
#include "model/layer_split.hpp"
#include "support.hpp"

using namespace trainsim;
using i64 = std::int64_t;

namespace {

// Each stage's load: its layers, the first stage's extra and the last's.
std::vector<double> stage_loads(const std::vector<double>& w, double first, double last, const std::vector<i64>& split) {
  std::vector<double> loads;
  std::size_t l = 0;
  for (std::size_t s = 0; s < split.size(); ++s) {
    double load = (s == 0 ? first : 0) + (s + 1 == split.size() ? last : 0);
    for (i64 k = 0; k < split[s]; ++k) load += w[l++];
    loads.push_back(load);
  }
  return loads;
}

double max_stage(const std::vector<double>& w, double first, double last, const std::vector<i64>& split) {
  const auto loads = stage_loads(w, first, last, split);
  return *std::max_element(loads.begin(), loads.end());
}

// Calls `visit` with every way to cut n layers into `stages` non-empty runs.
void for_each_split(i64 n, i64 stages, const std::function<void(const std::vector<i64>&)>& visit) {
  std::vector<i64> split;
  std::function<void(i64, i64)> rec = [&](i64 used, i64 left) {
    if (left == 1) {
      split.push_back(n - used);
      visit(split);
      split.pop_back();
      return;
    }
    for (i64 k = 1; used + k <= n - (left - 1); ++k) {
      split.push_back(k);
      rec(used + k, left - 1);
      split.pop_back();
    }
  };
  rec(0, stages);
}

// The optimum over every split.
double brute_force(const std::vector<double>& w, double first, double last, i64 stages) {
  double best = 1e300;
  for_each_split(static_cast<i64>(w.size()), stages,
                 [&](const std::vector<i64>& split) { best = std::min(best, max_stage(w, first, last, split)); });
  return best;
}

double sum_squares(const std::vector<double>& w, double first, double last, const std::vector<i64>& split) {
  double sum = 0;
  for (double load : stage_loads(w, first, last, split)) sum += load * load;
  return sum;
}

// The least sum of squared stage loads over every split whose heaviest stage is at most `cap`.
double brute_force_even(const std::vector<double>& w, double first, double last, i64 stages, double cap) {
  double best = 1e300;
  for_each_split(static_cast<i64>(w.size()), stages, [&](const std::vector<i64>& split) {
    if (max_stage(w, first, last, split) <= cap) best = std::min(best, sum_squares(w, first, last, split));
  });
  return best;
}

}  // namespace

TEST_CASE("Uniform layers without extras split evenly", "[layer_split]") {
  const std::vector<double> w(32, 1.0);
  CHECK(balanced_split(w, 0, 0, 4) == std::vector<i64>{8, 8, 8, 8});
  CHECK(balanced_split(w, 0, 0, 32) == std::vector<i64>(32, 1));
}

TEST_CASE("Balanced split equals the exhaustive optimum on random small problems", "[layer_split]") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.5, 2.0);
  for (int trial = 0; trial < 200; ++trial) {
    const i64 n = 2 + static_cast<i64>(rng() % 11);
    const i64 stages = 1 + static_cast<i64>(rng() % static_cast<std::uint64_t>(n));
    std::vector<double> w(static_cast<std::size_t>(n));
    for (auto& x : w) x = u(rng);
    const double first = (rng() % 2) ? u(rng) : 0.0;
    const double last = (rng() % 2) ? 3 * u(rng) : 0.0;
    const auto split = balanced_split(w, first, last, stages);
    INFO("trial " << trial << " n " << n << " stages " << stages);
    REQUIRE(static_cast<i64>(split.size()) == stages);
    CHECK(std::accumulate(split.begin(), split.end(), i64{0}) == n);
    CHECK(*std::min_element(split.begin(), split.end()) >= 1);
    const double cap = brute_force(w, first, last, stages);
    CHECK(max_stage(w, first, last, split) == Approx(cap).epsilon(1e-9));
    // Of the splits that reach the cap, the most even.
    CHECK(sum_squares(w, first, last, split) == Approx(brute_force_even(w, first, last, stages, cap * (1 + 1e-9))).epsilon(1e-9));
  }
}

TEST_CASE("Under the cap the balanced split spreads the layers evenly instead of filling the first stages", "[layer_split]") {
  // 61 unit layers, 10 stages, an output head worth 3 layers on the last: total 64, so some stage
  // holds 7 (64 / 10 > 6) and the cap is 7. The greedy fill alone gives [7 x 8, 4, 1] (1 + 3 =
  // 4 on the last). The most even split under the cap: loads are whole numbers summing to 64
  // with at most 7 each and at least 4 on the last (1 layer + the head); sum of squares is least
  // with four 7s and six 6s (4 x 49 + 6 x 36 = 412, against [7 x 8, 4, 4]'s 424). Ties go to
  // the earlier stages taking more: [7, 7, 7, 7, 6, 6, 6, 6, 6, 3].
  const std::vector<double> w(61, 1.0);
  const auto split = balanced_split(w, 0, 3, 10);
  CHECK(split == std::vector<i64>{7, 7, 7, 7, 6, 6, 6, 6, 6, 3});
  CHECK(sum_squares(w, 0, 3, split) == Approx(412));
}

TEST_CASE("A heavy output head moves layers off the last stage", "[layer_split]") {
  // 8 unit layers, 4 stages, a head worth 2 layers: the optimum puts 3+3+... the cap is 3
  // (total 10 over 4 stages >= 2.5, and a stage holds whole layers): [3, 3, 1, 1] would put 3 on
  // the last stage; the greedy fill gives the earlier stages the extra layers: [3, 2, 2, 1]
  // has max(3, 2, 2, 1+2) = 3.
  const std::vector<double> w(8, 1.0);
  const auto split = balanced_split(w, 0, 2, 4);
  CHECK(max_stage(w, 0, 2, split) == Approx(3));
  CHECK(split.back() == 1);
}

TEST_CASE("DeepSeek-V3: the default balanced split is no heavier than the scenario's published-style split", "[layer_split]") {
  const Scenario sc = load_scenario(ts_test::data("scenarios/deepseek-v3-h800.toml"));
  PlanConfig p = sc.plan;
  const std::vector<i64> given = p.layer_split;
  p.layer_split.clear();
  p.split_rule = "balanced";
  const auto split = stage_layers(sc.model, p, 4096);
  const LayerWeights lw = layer_flop_weights(sc.model, 4096);
  REQUIRE(split.size() == 16);
  CHECK(std::accumulate(split.begin(), split.end(), i64{0}) == 61);
  CHECK(max_stage(lw.layers, lw.first, lw.last, split) <= max_stage(lw.layers, lw.first, lw.last, given) * (1 + 1e-12));
  p.split_rule = "even";
  p.pp = 1;  // 61 over 1 stage: even is the whole model
  p.schedule = "1f1b";
  CHECK(stage_layers(sc.model, p, 4096) == std::vector<i64>{61});
}
