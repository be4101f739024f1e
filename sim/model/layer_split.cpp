#include "model/layer_split.hpp"

#include <algorithm>
#include <numeric>

#include "config/scenario.hpp"
#include "core/error.hpp"
#include "model/model_math.hpp"

namespace trainsim {

namespace {
using i64 = std::int64_t;

// The split that fits under `cap`, or an empty vector if none does.
std::vector<i64> fill(const std::vector<double>& w, double first, double last, i64 stages, double cap) {
  const i64 n = static_cast<i64>(w.size());
  std::vector<i64> out;
  i64 l = 0;
  for (i64 s = 0; s < stages; ++s) {
    const bool final_stage = s == stages - 1;
    double load = (s == 0 ? first : 0.0) + (final_stage ? last : 0.0);
    const i64 must_leave = stages - 1 - s;
    i64 take = 0;
    if (final_stage) {
      for (i64 i = l; i < n; ++i) load += w[static_cast<std::size_t>(i)];
      take = n - l;
      if (take < 1 || load > cap) return {};
    } else {
      while (l + take < n - must_leave && load + w[static_cast<std::size_t>(l + take)] <= cap) {
        load += w[static_cast<std::size_t>(l + take)];
        ++take;
      }
      if (take < 1) return {};
    }
    out.push_back(take);
    l += take;
  }
  return out;
}
}  // namespace

std::vector<i64> balanced_split(const std::vector<double>& w, double first, double last, i64 stages) {
  TS_ASSERT(stages >= 1 && static_cast<i64>(w.size()) >= stages, "balanced_split: fewer layers than stages");
  double lo = 0, hi = first + last;
  for (double x : w) {
    TS_ASSERT(x >= 0, "balanced_split: negative weight");
    hi += x;
    lo = std::max(lo, x);
  }
  if (fill(w, first, last, stages, hi).empty()) hi *= 1.0 + 1e-9;  // rounding in the sum
  for (int it = 0; it < 200 && hi - lo > 1e-12 * hi; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (fill(w, first, last, stages, mid).empty()) lo = mid;
    else hi = mid;
  }
  std::vector<i64> out = fill(w, first, last, stages, hi);
  TS_ASSERT(!out.empty(), "balanced_split: no feasible split");
  return out;
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

std::vector<i64> stage_layers(const ModelConfig& m, const PlanConfig& p, i64 seq_len) {
  if (!p.layer_split.empty()) return p.layer_split;
  const i64 stages = pipeline_stage_count(p);
  if (p.split_rule == "even") return std::vector<i64>(static_cast<std::size_t>(stages), m.layers / stages);
  const LayerWeights lw = layer_flop_weights(m, seq_len);
  return balanced_split(lw.layers, lw.first, lw.last, stages);
}

}  // namespace trainsim
