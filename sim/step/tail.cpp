#include "step/tail.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include "config/plan_rules.hpp"
#include "core/error.hpp"

namespace trainsim::step {

namespace {

struct Bucket {
  Time ready;
  double params = 0;
  bool expert = false;
};

// Buckets of at least `size` parameters over the events in time order (dense and expert apart).
void bucketize(const std::vector<GradEvent>& ev, double size, std::vector<Bucket>& out) {
  for (int kind = 0; kind < 2; ++kind) {
    double acc = 0;
    Time last;
    for (const GradEvent& e : ev) {
      const double p = kind == 0 ? e.dense : e.expert;
      if (p <= 0) continue;
      acc += p;
      last = e.at;
      // A phase may complete several buckets' worth of gradients at once.
      while (acc >= size) {
        out.push_back(Bucket{e.at, size, kind == 1});
        acc -= size;
      }
    }
    if (acc > 0) out.push_back(Bucket{last, acc, kind == 1});
  }
}

}  // namespace

double grad_bucket_size(const PlanConfig& plan) {
  return plan.dp_bucket_params > 0 ? static_cast<double>(plan.dp_bucket_params)
                                   : std::max(40e6, 1e6 * static_cast<double>(plan.dp * plan.cp));
}

double grad_bucket_params(const PlanConfig& plan, int rank, int chunk) {
  const double size = grad_bucket_size(plan);
  if (effective_grad_buckets(plan) == "uniform") return size;
  if (!plan.overlap_grad_reduce || rank > 0 || chunk > 0) return std::numeric_limits<double>::infinity();
  return size;
}

std::vector<int> stages_of_rank(const graph::PipelineTopology& topo, int rank) {
  std::vector<int> out;
  for (int c = 0; c < topo.chunks(); ++c) out.push_back(topo.position_of(rank, c));
  return out;
}

TailTimes dp_tail(const CommPlan& comm, const PlanConfig& plan, const TrainingConfig& tr, const StepView& R) {
  TailTimes out;
  const auto& rep = *R.replay;
  const auto& topo = *R.topo;
  const int P = static_cast<int>(rep.ops.size());
  const Time makespan = rep.makespan;
  const Group dense = comm.dense_dp_group(), expert = comm.expert_dp_group();
  out.dp.bucket_params = grad_bucket_params(plan, 0, 0);
  const bool grad_step = plan.zero <= 1;
  const bool gather_step = (plan.zero == 1 || plan.zero == 2);

  // Per stage: the gradient events of its last backward on each holder, in absolute time.
  const int nstages = static_cast<int>(R.stages->size());
  std::vector<std::vector<std::vector<GradEvent>>> holders(static_cast<std::size_t>(nstages));
  std::vector<Time> rank_end(static_cast<std::size_t>(P));
  for (int r = 0; r < P; ++r) {
    const auto& ops = rep.ops[static_cast<std::size_t>(r)];
    if (!ops.empty()) rank_end[static_cast<std::size_t>(r)] = ops.back().end;
    std::map<int, const graph::OpTiming*> last;  // chunk -> last op carrying its weight gradients
    for (const auto& ot : ops) {
      if (ot.op.kind == graph::OpKind::B || ot.op.kind == graph::OpKind::W) last[ot.op.chunk] = &ot;
      if (ot.op.kind == graph::OpKind::FB) last[ot.op.chunk2] = &ot;
    }
    for (const auto& [chunk, ot] : last) {
      const OpRun* run = R.op_run(r, ot->op);
      TS_ASSERT(run != nullptr, "op run missing");
      std::vector<GradEvent> ev;
      for (const GradEvent& e : run->grads) ev.push_back(GradEvent{ot->start + e.at, e.dense, e.expert});
      holders[static_cast<std::size_t>(topo.position_of(r, chunk))].push_back(std::move(ev));
    }
  }
  // A stage's gradients are final when every holder has produced them.
  std::vector<std::vector<GradEvent>> stage_events(static_cast<std::size_t>(nstages));
  for (int s = 0; s < nstages; ++s) {
    auto& hs = holders[static_cast<std::size_t>(s)];
    if (hs.empty()) continue;
    std::vector<GradEvent> ev = hs.front();
    for (std::size_t h = 1; h < hs.size(); ++h) {
      if (hs[h].size() == ev.size()) {
        for (std::size_t k = 0; k < ev.size(); ++k) ev[k].at = std::max(ev[k].at, hs[h][k].at);
      } else {
        const Time end = hs[h].empty() ? Time::zero() : hs[h].back().at;
        for (auto& e : ev) e.at = std::max(e.at, end);
      }
    }
    stage_events[static_cast<std::size_t>(s)] = std::move(ev);
  }
  // Ranks holding the same stages (DualPipe's r and P-1-r) run the same DP work; a rank's
  // buckets wait for the pipeline end of every rank holding its stages when not overlapped.
  Time sync = makespan;
  std::vector<std::vector<int>> rank_stages(static_cast<std::size_t>(P));
  for (int r = 0; r < P; ++r) rank_stages[static_cast<std::size_t>(r)] = stages_of_rank(topo, r);
  for (int r = 0; r < P; ++r) {
    const std::vector<int>& stages = rank_stages[static_cast<std::size_t>(r)];
    Time partners_end = rank_end[static_cast<std::size_t>(r)];
    for (int q = 0; q < P; ++q) {
      const auto& qs = rank_stages[static_cast<std::size_t>(q)];
      if (std::any_of(qs.begin(), qs.end(), [&](int s) { return std::find(stages.begin(), stages.end(), s) != stages.end(); }))
        partners_end = std::max(partners_end, rank_end[static_cast<std::size_t>(q)]);
    }
    std::vector<Bucket> buckets;
    for (std::size_t c = 0; c < stages.size(); ++c)
      bucketize(stage_events[static_cast<std::size_t>(stages[c])], grad_bucket_params(plan, r, static_cast<int>(c)), buckets);
    out.dp.buckets = std::max(out.dp.buckets, static_cast<int>(buckets.size()));
    if (!plan.overlap_grad_reduce)
      for (auto& b : buckets) b.ready = partners_end;
    std::stable_sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) { return a.ready < b.ready; });
    Time t = Time::zero();
    double busy = 0, gather = 0;
    const double gbytes = dtype_bytes(tr.precision.gradients);
    for (const Bucket& b : buckets) {
      const Group& g = b.expert ? expert : dense;
      if (grad_step) {
        const auto kind = plan.zero == 0 ? network::CollectiveKind::AllReduce : network::CollectiveKind::ReduceScatter;
        const double s = comm.collective(kind, g, b.params * gbytes);
        t = std::max(t, b.ready) + Time::from_seconds(s);
        busy += s;
      }
      if (gather_step) gather += comm.collective(network::CollectiveKind::AllGather, g, b.params * 2.0);
    }
    out.dp.grad_reduce_s = std::max(out.dp.grad_reduce_s, busy);
    out.dp.param_gather_s = std::max(out.dp.param_gather_s, gather);
    sync = std::max({sync, t, rank_end[static_cast<std::size_t>(r)]});
  }
  out.sync_s = sync.seconds();
  out.dp.exposed_grad_s = (sync - makespan).seconds();

  // Parameter all-gather.
  if (gather_step && !plan.overlap_param_gather) {
    out.dp.exposed_param_s = out.dp.param_gather_s;
  } else if (gather_step) {
    // Each rank gathers its stages' buckets in forward order from t = 0, first-used stage first;
    // a layer's first forward waits for its bucket.
    double worst = 0;
    for (int r = 0; r < P; ++r) {
      const auto& ops = rep.ops[static_cast<std::size_t>(r)];
      std::map<int, const graph::OpTiming*> first;  // chunk -> first op with its forward
      for (const auto& ot : ops)
        if (ot.op.has_forward() && first.find(ot.op.chunk) == first.end()) first[ot.op.chunk] = &ot;
      std::vector<std::pair<const graph::OpTiming*, int>> order;  // (op, chunk) by start
      for (const auto& [c, ot] : first) order.push_back({ot, c});
      std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first->start < b.first->start; });
      double t = 0;
      for (const auto& [ot, chunk] : order) {
        const int s = topo.position_of(r, chunk);
        const double bucket_size = grad_bucket_params(plan, r, chunk);
        const StageCost& S = (*R.stages)[static_cast<std::size_t>(s)];
        const OpRun* run = R.op_run(r, ot->op);
        TS_ASSERT(run != nullptr, "op run missing");
        // Buckets in forward order (dense and expert apart, each gathered in turn on the DP
        // stream); a layer's parameters arrive with the bucket that holds them.
        const auto& layers = S.phases.params;
        std::vector<double> ready(layers.size(), t);
        for (int kind = 0; kind < 2; ++kind) {
          const Group& g = kind == 0 ? dense : expert;
          double acc = 0;
          std::size_t from = 0;
          for (std::size_t l = 0; l < layers.size(); ++l) {
            acc += kind == 0 ? layers[l].dense : layers[l].expert;
            if (acc >= bucket_size || l + 1 == layers.size()) {
              if (acc > 0) t += comm.collective(network::CollectiveKind::AllGather, g, acc * 2.0);
              for (std::size_t k = from; k <= l; ++k) ready[k] = std::max(ready[k], t);
              acc = 0;
              from = l + 1;
            }
          }
        }
        for (std::size_t l = 0; l < layers.size(); ++l) {
          Time offset;
          for (const Slice& sl : run->slices)
            if (!sl.backward && sl.phase == layers[l].first_forward_phase) offset = sl.start;
          worst = std::max(worst, ready[l] - (ot->start + offset).seconds());
        }
      }
    }
    out.dp.exposed_param_s = std::max(0.0, worst);
  }
  return out;
}

}  // namespace trainsim::step
