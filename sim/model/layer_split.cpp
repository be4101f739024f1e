#include "model/layer_split.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "model/model_math.hpp"
#include "model/recompute.hpp"

namespace trainsim {

namespace {
using i64 = std::int64_t;

// The split that fits under `cap`, or an empty vector if none does. Stage cost: the larger of its
// two sums (one-component weights have a = 0).
std::vector<i64> fill(const std::vector<Cost2>& w, Cost2 first, Cost2 last, i64 stages, double cap) {
  const i64 n = static_cast<i64>(w.size());
  std::vector<i64> out;
  i64 l = 0;
  auto cost = [](Cost2 x) { return std::max(x.c, x.a); };
  auto plus = [](Cost2 x, Cost2 y) { return Cost2{x.c + y.c, x.a + y.a}; };
  for (i64 s = 0; s < stages; ++s) {
    const bool final_stage = s == stages - 1;
    Cost2 load{};
    if (s == 0) load = plus(load, first);
    if (final_stage) load = plus(load, last);
    const i64 must_leave = stages - 1 - s;
    i64 take = 0;
    if (final_stage) {
      for (i64 i = l; i < n; ++i) load = plus(load, w[static_cast<std::size_t>(i)]);
      take = n - l;
      if (take < 1 || cost(load) > cap) return {};
    } else {
      while (l + take < n - must_leave && cost(plus(load, w[static_cast<std::size_t>(l + take)])) <= cap) {
        load = plus(load, w[static_cast<std::size_t>(l + take)]);
        ++take;
      }
      if (take < 1) return {};
    }
    out.push_back(take);
    l += take;
  }
  return out;
}
// Among the splits whose every stage costs at most `cap`, the most even one: the least sum of
// squared stage costs (dynamic programming over (stage, layers placed), O(stages x layers x
// layers per stage)). Ties go to the earlier stages taking more layers. The greedy fill alone
// puts every earlier stage at the cap and leaves the remainder to the last stages (e.g. 61
// layers on 10 stages as [7, 7, 7, 7, 7, 7, 7, 7, 4, 1]); a schedule whose ranks run several
// stages each (interleaved) then waits on the uneven chunks.
std::vector<i64> even_under_cap(const std::vector<Cost2>& w, Cost2 first, Cost2 last, i64 stages, double cap) {
  const auto n = static_cast<std::size_t>(w.size());
  const auto S = static_cast<std::size_t>(stages);
  std::vector<Cost2> pre(n + 1);
  for (std::size_t i = 0; i < n; ++i) pre[i + 1] = Cost2{pre[i].c + w[i].c, pre[i].a + w[i].a};
  // The cost of stage s holding layers [i, j).
  const auto stage_cost = [&](std::size_t s, std::size_t i, std::size_t j) {
    double c = pre[j].c - pre[i].c, a = pre[j].a - pre[i].a;
    if (s == 0) c += first.c, a += first.a;
    if (s == S - 1) c += last.c, a += last.a;
    return std::max(c, a);
  };
  constexpr double kNone = std::numeric_limits<double>::infinity();
  // best[s][j]: the least sum of squares placing layers [0, j) on stages 0..s; from[s][j] the
  // first layer of stage s there.
  std::vector<std::vector<double>> best(S, std::vector<double>(n + 1, kNone));
  std::vector<std::vector<std::size_t>> from(S, std::vector<std::size_t>(n + 1, 0));
  for (std::size_t j = 1; j + (S - 1) <= n; ++j) {
    const double c = stage_cost(0, 0, j);
    if (c <= cap) best[0][j] = c * c;
  }
  for (std::size_t s = 1; s < S; ++s)
    for (std::size_t j = s + 1; j + (S - 1 - s) <= n; ++j)
      for (std::size_t i = j - 1; i >= s; --i) {  // stage s holds [i, j); larger i first
        const double c = stage_cost(s, i, j);
        if (c > cap) break;  // the stage only grows as i falls
        if (best[s - 1][i] == kNone) continue;
        const double v = best[s - 1][i] + c * c;
        if (v < best[s][j]) {
          best[s][j] = v;
          from[s][j] = i;
        }
        if (i == s) break;
      }
  TS_ASSERT(best[S - 1][n] != kNone, "balanced_split: no feasible split under the cap");
  std::vector<i64> out(S);
  std::size_t j = n;
  for (std::size_t s = S; s-- > 0;) {
    const std::size_t i = s == 0 ? 0 : from[s][j];
    out[s] = static_cast<i64>(j - i);
    j = i;
  }
  return out;
}
}  // namespace

std::vector<i64> balanced_split(const std::vector<Cost2>& w, Cost2 first, Cost2 last, i64 stages) {
  TS_ASSERT(stages >= 1 && static_cast<i64>(w.size()) >= stages, "balanced_split: fewer layers than stages");
  double lo = 0, hi = std::max(first.c, first.a) + std::max(last.c, last.a);
  for (const Cost2& x : w) {
    TS_ASSERT(x.c >= 0 && x.a >= 0, "balanced_split: negative weight");
    hi += std::max(x.c, x.a);
    lo = std::max(lo, std::max(x.c, x.a));
  }
  if (fill(w, first, last, stages, hi).empty()) hi *= 1.0 + 1e-9;  // rounding in the sum
  for (int it = 0; it < 200 && hi - lo > 1e-12 * hi; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (fill(w, first, last, stages, mid).empty()) lo = mid;
    else hi = mid;
  }
  TS_ASSERT(!fill(w, first, last, stages, hi).empty(), "balanced_split: no feasible split");
  return even_under_cap(w, first, last, stages, hi * (1.0 + 1e-9));
}

std::vector<i64> balanced_split(const std::vector<double>& w, double first, double last, i64 stages) {
  std::vector<Cost2> w2;
  for (double x : w) w2.push_back(Cost2{x, 0});
  return balanced_split(w2, Cost2{first, 0}, Cost2{last, 0}, stages);
}

LayerWeights layer_flop_weights(const ModelConfig& m, i64 seq_len) {
  OpContext ctx;
  ctx.micro_batch = 1;
  ctx.seq_len = seq_len;
  const double T = static_cast<double>(seq_len);
  LayerWeights lw;
  for (i64 l = 0; l < m.layers; ++l) lw.layers.push_back(totals(layer_ops(m, l, ctx)).flops / T);
  lw.first = totals(embedding_ops(m, ctx)).flops / T;
  lw.last = totals(head_ops(m, ctx)).flops / T;
  for (i64 i = 0; i < m.mtp_depth; ++i) lw.last += totals(mtp_ops(m, ctx)).flops / T;
  return lw;
}

LayerWeights layer_time_weights(const ModelConfig& m, const HardwareConfig& hw, const PlanConfig& p,
                                const TrainingConfig& tr) {
  OpContext ctx;
  ctx.micro_batch = 1;
  ctx.seq_len = tr.seq_len;
  ctx.gemm_dtype = tr.precision.gemm;
  const double bw = hw.hbm_bandwidth.value;
  auto roofline = [&](const std::vector<Op>& ops) {
    double t = 0;
    for (const Op& o : ops) {
      const int runs = 1 + (recomputed(o, p.recompute) ? 1 : 0);
      double c = 0;
      if (o.cls == OpClass::Gemm || o.cls == OpClass::GroupedGemm || o.cls == OpClass::Attention) {
        const std::string dt = o.cls == OpClass::Attention ? "bf16" : o.dtype;
        double peak = hw.peak_flops(dt);
        if (peak <= 0) peak = hw.peak_flops("bf16");
        c = peak > 0 ? o.flops / peak : 0.0;
      }
      const double mem = bw > 0 ? o.bytes / bw : 0.0;
      t += runs * std::max(c, mem);
    }
    return t;
  };
  LayerWeights lw;
  for (i64 l = 0; l < m.layers; ++l) lw.layers.push_back(roofline(layer_ops(m, l, ctx)));
  lw.first = roofline(embedding_ops(m, ctx));
  lw.last = roofline(head_ops(m, ctx));
  for (i64 i = 0; i < m.mtp_depth; ++i) lw.last += roofline(mtp_ops(m, ctx));
  return lw;
}

std::vector<i64> stage_layers(const Scenario& sc, const PlanConfig& p, const TrainingConfig& tr) {
  if (!p.layer_split.empty()) return p.layer_split;
  const i64 stages = pipeline_stage_count(p);
  if (p.split_rule == "even") return std::vector<i64>(static_cast<std::size_t>(stages), sc.model.layers / stages);
  const LayerWeights lw = layer_time_weights(sc.model, sc.hardware, p, tr);
  return balanced_split(lw.layers, lw.first, lw.last, stages);
}

std::vector<i64> stage_layers(const ModelConfig& m, const PlanConfig& p, i64 seq_len) {
  if (!p.layer_split.empty()) return p.layer_split;
  const i64 stages = pipeline_stage_count(p);
  if (p.split_rule == "even") return std::vector<i64>(static_cast<std::size_t>(stages), m.layers / stages);
  const LayerWeights lw = layer_flop_weights(m, seq_len);
  return balanced_split(lw.layers, lw.first, lw.last, stages);
}

}  // namespace trainsim
