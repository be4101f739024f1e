#include "step/stage_split.hpp"

#include <algorithm>
#include <map>

#include "model/layer_split.hpp"
#include "step/op_lists.hpp"
#include "step/overlap_policy.hpp"

namespace trainsim::step {

namespace {
using i64 = std::int64_t;

Cost2 plus(Cost2 x, Cost2 y) { return Cost2{x.c + y.c, x.a + y.a}; }

// Forward and backward costs of a layer (compute, communication) as they run in F&B pairs.
struct PairCost {
  Cost2 f, b;
  Cost2 both() const { return plus(f, b); }
};
PairCost plus(PairCost x, PairCost y) { return PairCost{plus(x.f, y.f), plus(x.b, y.b)}; }
// A pair takes at least its compute, its communication, and each chunk's own chain (whose
// compute and communication alternate).
double pair_time(Cost2 f, Cost2 b) { return std::max({f.c + b.c, f.a + b.a, f.c + f.a, b.c + b.a}); }

// DualPipe / DualPipeV: rank r holds stages r and m = n-1-r and runs the F&B pairs (F_r, B_m) and
// (F_m, B_r), so a rank costs
// pair(F_r, B_m) + pair(F_m, B_r) (pair_time below). The two ends (embedding, head) are searched over their layer
// counts, the stages between them split evenly by cost.
std::vector<i64> mirrored_split(const std::vector<PairCost>& w, PairCost first, PairCost last, i64 stages) {
  const i64 n = static_cast<i64>(w.size());
  std::vector<Cost2> w2;
  for (const PairCost& x : w) w2.push_back(x.both());
  if (stages < 4) return balanced_split(w2, first.both(), last.both(), stages);
  const i64 per = (n + stages - 1) / stages;
  const i64 kmax = std::min(n - (stages - 2) - 1, 3 * per);
  std::vector<i64> best;
  double best_cost = 0;
  for (i64 k0 = 1; k0 <= kmax; ++k0)
    for (i64 kl = 1; kl <= kmax && k0 + kl <= n - (stages - 2); ++kl) {
      const std::vector<Cost2> mid(w2.begin() + k0, w2.end() - kl);
      std::vector<i64> split{k0};
      const auto inner = balanced_split(mid, Cost2{}, Cost2{}, stages - 2);
      split.insert(split.end(), inner.begin(), inner.end());
      split.push_back(kl);
      std::vector<PairCost> load(static_cast<std::size_t>(stages));
      i64 l = 0;
      for (i64 s = 0; s < stages; ++s)
        for (i64 k = 0; k < split[static_cast<std::size_t>(s)]; ++k)
          load[static_cast<std::size_t>(s)] = plus(load[static_cast<std::size_t>(s)], w[static_cast<std::size_t>(l++)]);
      load.front() = plus(load.front(), first);
      load.back() = plus(load.back(), last);
      double worst = 0;
      for (i64 r = 0; r < stages / 2; ++r) {
        const PairCost& a = load[static_cast<std::size_t>(r)];
        const PairCost& b = load[static_cast<std::size_t>(stages - 1 - r)];
        worst = std::max(worst, pair_time(a.f, b.b) + pair_time(b.f, a.b));
      }
      if (best.empty() || worst < best_cost * (1 - 1e-12)) {
        best = split;
        best_cost = worst;
      }
    }
  return best;
}
}  // namespace

std::vector<i64> cost_balanced_split(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                                     PhaseBuilder& builder) {
  if (!plan.layer_split.empty() || plan.split_rule != "balanced") return stage_layers(sc, plan, tr);
  const ModelConfig& m = sc.model;
  const i64 stages = pipeline_stage_count(plan);
  const bool mirrored = plan.schedule == "dualpipe" || plan.schedule == "dualpipev";
  const bool paired = mirrored || (plan.ep_comm_overlap && (plan.schedule == "1f1b" || plan.schedule == "interleaved"));
  auto weight = [&](const LayerOps& L) {
    const StagePhases S = builder.stage({L}, 0.0);
    if (!paired) return PairCost{Cost2{(run_alone(S.forward).duration + run_alone(S.backward).duration).seconds(), 0}, {}};
    auto split = [](const std::vector<Phase>& list) {
      Time compute, comm;
      for (const Phase& ph : list) (ph.kind == PhaseKind::Compute ? compute : comm) += ph.paired;
      return Cost2{compute.seconds(), comm.seconds()};
    };
    return PairCost{split(S.forward), split(S.backward)};
  };
  // Every layer of the model once (one stage holding them all), identical layers costed once.
  const std::vector<i64> whole{m.layers};
  const std::vector<LayerOps> all = stage_ops(m, plan, tr, whole, 0);
  std::map<std::pair<bool, std::string>, PairCost> memo;
  std::vector<PairCost> w;
  PairCost first, last;
  for (const LayerOps& L : all) {
    const auto key = std::make_pair(L.moe, L.transformer && L.label != "mtp" ? std::string("layer") : L.label);
    auto it = memo.find(key);
    if (it == memo.end()) it = memo.emplace(key, weight(L)).first;
    if (L.label == "embed") first = plus(first, it->second);
    else if (L.label == "head" || L.label == "mtp") last = plus(last, it->second);
    else w.push_back(it->second);
  }
  if (mirrored) return mirrored_split(w, first, last, stages);
  std::vector<Cost2> w2;
  for (const PairCost& x : w) w2.push_back(x.both());
  return balanced_split(w2, first.both(), last.both(), stages);
}

}  // namespace trainsim::step
