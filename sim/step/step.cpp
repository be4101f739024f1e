#include "step/step.hpp"

#include <algorithm>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "config/plan_rules.hpp"
#include "core/error.hpp"
#include "model/layer_split.hpp"
#include "model/model_math.hpp"
#include "model/recompute.hpp"
#include "step/breakdown.hpp"
#include "step/caches.hpp"
#include "step/comm_plan.hpp"
#include "step/models.hpp"
#include "step/op_lists.hpp"
#include "step/optimizer.hpp"
#include "step/overlap_policy.hpp"
#include "step/stage_split.hpp"
#include "step/tail.hpp"

namespace trainsim::step {

namespace {
using i64 = std::int64_t;
double d(i64 v) { return static_cast<double>(v); }

std::tuple<int, int, int> key_of(const graph::PipelineTopology& topo, int rank, const graph::Op& op) {
  const int s = topo.position_of(rank, op.chunk);
  const int s2 = op.kind == graph::OpKind::FB ? topo.position_of(rank, op.chunk2) : -1;
  return {static_cast<int>(op.kind), s, s2};
}

// flops_per_token(m, seq_len, true), memoised on every model field and the sequence length.
FlopsPerToken model_flops(const ModelConfig& m, i64 seq_len) {
  static StringMemo<FlopsPerToken> memo("model flops", 256);
  KeyWriter k;
  add_key(k, m);
  k.add(seq_len);
  return *memo.get(k.str(), [&] { return flops_per_token(m, seq_len, true); });
}

// Op-cost counts of two builders together: what one builder asked both questions would count.
CostCounts merged(const CostCounts& a, const CostCounts& b) {
  CostCounts c = a;
  c.measured += b.measured;
  c.fitted += b.fitted;
  c.transferred += b.transferred;
  std::set<std::string> bases(a.bases.begin(), a.bases.end());
  bases.insert(b.bases.begin(), b.bases.end());
  c.bases.assign(bases.begin(), bases.end());
  for (const auto& [key, n] : b.by_class) c.by_class[key] += n;
  return c;
}
}  // namespace

const OpRun* StepResult::op_run(int rank, const graph::Op& op) const {
  if (!pipeline) return nullptr;
  auto it = op_runs.find(key_of(pipeline->schedule.topo, rank, op));
  return it == op_runs.end() ? nullptr : &it->second;
}

const OpRun* StepView::op_run(int rank, const graph::Op& op) const {
  if (topo == nullptr || runs == nullptr) return nullptr;
  auto it = runs->find(key_of(*topo, rank, op));
  return it == runs->end() ? nullptr : it->second;
}

namespace {

// The step; `full` = false leaves out what only reports read (the stages, op runs and pipeline
// copied into the result, the idle split and its two replays, costs, notes): step_s and
// utilization are the same either way.
StepResult simulate(const Scenario& sc, std::size_t phase_index, i64 global_batch, const calibration::CostModel& cost,
                    bool full) {
  TS_ASSERT(phase_index < sc.phases.size(), "phase index out of range");
  const trainsim::Phase& sp = sc.phases[phase_index];
  const PlanConfig& plan = sp.plan;
  const TrainingConfig& tr = sp.training;
  const ModelConfig& m = sc.model;
  StepResult R;
  R.global_batch = global_batch;
  R.microbatches = global_batch / (plan.dp * plan.micro_batch);
  TS_ASSERT(R.microbatches >= 1, "a step needs at least one micro-batch");
  R.tokens = d(global_batch) * d(tr.seq_len);

  // --- per-stage op lists and phases: the same for every batch (step/caches.hpp) -------------
  const CommPlan comm(sc, plan, tr);
  PhaseBuilder builder(sc, plan, tr, cost, comm);  // counts the optimizer's op costs
  const std::shared_ptr<const StepSetup> setup = step_setup(sc, plan, tr, cost);

  // --- the schedule and the op runs it needs -------------------------------------------------
  const bool combined = plan.ep_comm_overlap && (plan.schedule == "1f1b" || plan.schedule == "interleaved");
  const int M = static_cast<int>(R.microbatches);
  const std::shared_ptr<const schedule::Schedule> sched = step_schedule(plan, M, combined);
  const graph::PipelineTopology& ptopo = sched->topo;
  // The op runs in order of first use (rank by rank, program order), each op's found by index.
  const std::shared_ptr<const ScheduleRuns> used = step_schedule_runs(plan, M, combined);
  std::map<OpRunKey, Time> durations;
  std::map<OpRunKey, const OpRun*> runs;
  std::vector<std::shared_ptr<const OpRun>> held;  // keeps `runs` valid, by index in used->keys
  held.reserve(used->keys.size());
  for (const OpRunKey& key : used->keys) {
    held.push_back(setup->op_run(key));
    durations.emplace(key, held.back()->duration);
    runs.emplace(key, held.back().get());
  }
  std::vector<std::vector<const OpRun*>> per_op(sched->order.size());
  std::vector<Time> node_times;  // every op's duration, rank by rank in program order
  TS_ASSERT(used->of_op.size() == sched->order.size(), "schedule runs of another schedule");
  for (std::size_t r = 0; r < sched->order.size(); ++r) {
    const auto& of_op = used->of_op[r];
    per_op[r].reserve(of_op.size());
    for (const std::uint32_t i : of_op) {
      const OpRun* run = held[i].get();
      per_op[r].push_back(run);
      node_times.push_back(run->duration);
    }
  }

  // --- the pipeline ----------------------------------------------------------------------------
  R.breakdown.p2p_s = comm.p2p.seconds();
  const std::shared_ptr<const PipelineReplays> replays =
      pipeline_replays(plan, M, combined, durations, node_times, comm.p2p);
  const StepView view{&replays->replay, &ptopo, &setup->stages, &runs, &per_op};
  const auto& rep = replays->replay;
  R.pipeline_s = rep.makespan.seconds();
  add_op_parts(view, rep, R.breakdown);
  if (full) {
    // The idle time split by two more replays: with free sends, and with equal stages.
    const graph::Replay& free_sends = replays->free_sends();
    const graph::Replay& even = replays->equal_stages();
    const std::size_t P = rep.ops.size();
    double idle_a = 0, idle_b = 0, idle_c = 0;
    for (std::size_t r = 0; r < P; ++r) {
      const double a = rep.bubble[r].seconds(), b = free_sends.bubble[r].seconds(), c = even.bubble[r].seconds();
      const IdleSplit s = split_idle(a, b, c);
      R.rank_exposed_pp_s.push_back(s.exposed_pp);
      R.rank_imbalance_s.push_back(s.imbalance);
      R.rank_bubble_s.push_back(s.bubble);
      idle_a += a;
      idle_b += b;
      idle_c += c;
    }
    const IdleSplit idle = split_idle(idle_a / d(static_cast<i64>(P)), idle_b / d(static_cast<i64>(P)), idle_c / d(static_cast<i64>(P)));
    R.breakdown.exposed_pp_s = idle.exposed_pp;
    R.breakdown.imbalance_s = idle.imbalance;
    R.breakdown.schedule_bubble_s = idle.bubble;
  }

  // --- after the pipeline --------------------------------------------------------------------
  const TailTimes tail = dp_tail(comm, plan, tr, view);
  R.dp = tail.dp;
  R.dp_reduce_scatter_s = tail.dp.grad_reduce_s;
  R.dp_all_gather_s = tail.dp.param_gather_s;
  R.breakdown.exposed_dp_s += tail.dp.exposed_grad_s + tail.dp.exposed_param_s;
  R.optimizer = optimizer_step(sc, plan, tr, comm, view, builder);
  R.breakdown.optimizer_s = R.optimizer.total_s;

  // --- totals --------------------------------------------------------------------------------
  R.step_s = tail.sync_s + R.optimizer.total_s + tail.dp.exposed_param_s;
  const FlopsPerToken fpt = model_flops(m, tr.seq_len);
  R.flops_per_step_causal = fpt.train_causal * R.tokens;
  R.flops_per_step_full = fpt.train_full * R.tokens;
  const double gpus = d(sc.cluster.gpus);
  R.mfu_peak_flops = sc.hardware.bf16.value;
  R.mfu_causal = R.flops_per_step_causal / (R.step_s * gpus * R.mfu_peak_flops);
  R.mfu_full = R.flops_per_step_full / (R.step_s * gpus * R.mfu_peak_flops);
  R.tokens_per_s_per_gpu = R.tokens / R.step_s / gpus;
  R.utilization = (R.breakdown.compute_s + R.breakdown.recompute_s) / R.step_s;
  if (!full) return R;
  R.bubble_fraction = (R.breakdown.schedule_bubble_s + R.breakdown.imbalance_s) / R.step_s;
  R.exposed_comm_fraction = (R.breakdown.exposed_tp_s + R.breakdown.exposed_ep_s + R.breakdown.exposed_cp_s +
                             R.breakdown.exposed_pp_s + R.breakdown.exposed_dp_s) / R.step_s;
  R.costs = merged(setup->counts, builder.counts());
  R.layer_split = setup->layer_split;
  R.stages = setup->stages;
  R.a2a_dispatch_s = setup->a2a_dispatch_s;
  R.a2a_combine_s = setup->a2a_combine_s;
  R.a2a_bottleneck = setup->a2a_bottleneck;
  for (const auto& [key, run] : runs) R.op_runs.emplace(key, *run);
  R.pipeline = replays->pipeline();
  R.models = models_in_use(plan, m.moe.enabled);

  // --- what this step assumed ----------------------------------------------------------------
  if (plan.zero <= 1 && (plan.dp * plan.cp > 1))
    R.notes.push_back(plan.overlap_grad_reduce
                          ? "data-parallel gradient reduction in buckets as the last backward produces them (overlap_grad_reduce)"
                          : "data-parallel gradient reduction after the pipeline (overlap_grad_reduce = false, Megatron's default)");
  if (plan.zero <= 1 && (plan.dp * plan.cp > 1 || plan.schedule == "dualpipe"))
    R.notes.push_back(effective_grad_buckets(plan) == "uniform"
                          ? fmt::format("gradient buckets of {:.0f}M parameters on every rank and model chunk (grad_buckets = uniform)",
                                        grad_bucket_size(plan) / 1e6)
                          : plan.overlap_grad_reduce
                          ? fmt::format("gradient buckets of {:.0f}M parameters on pipeline rank 0's first model chunk, one bucket "
                                        "per buffer elsewhere (grad_buckets = megatron-core)",
                                        grad_bucket_size(plan) / 1e6)
                          : "one gradient bucket per buffer: Megatron-Core DDP does not bucket without overlap_grad_reduce "
                            "(grad_buckets = megatron-core)");
  if ((plan.zero == 1 || plan.zero == 2) && plan.dp * plan.cp > 1)
    R.notes.push_back(plan.overlap_param_gather
                          ? "parameter all-gather during the next step's first forward (overlap_param_gather)"
                          : "parameter all-gather after the optimizer (overlap_param_gather = false, Megatron's default)");
  if (plan.schedule == "dualpipe")
    R.notes.push_back("DualPipe's two copies of every stage reduce their gradients together and share one ZeRO shard");
  if (m.moe.enabled && plan.ep > 1 && plan.comm_sms > 0 && plan.comm_sms < 24)
    R.notes.push_back(fmt::format("all-to-all bandwidth scaled by {}/24: DeepEP's tables, which the link efficiencies come "
                                  "from, were measured with 24 SMs",
                                  plan.comm_sms));
  if (combined) R.notes.push_back("combined 1F1B: each backward followed by a forward runs as one F&B op (ep_comm_overlap)");
  if (plan.cp > 1 && plan.cp_comm == "ring")
    R.notes.push_back("context parallelism: ring attention, each K/V send beside one block of attention");
  if (m.moe.enabled && plan.ep > 1 && sc.cluster.nvlink_domain > 0 && plan.ep <= sc.cluster.nvlink_domain &&
      sc.cluster.nvlink_domain % plan.ep != 0)
    R.notes.push_back("all-to-all of an EP group inside one NVLink domain; groups that straddle two domains are not modelled");
  return R;
}

}  // namespace

StepResult simulate_step(const Scenario& sc, std::size_t phase_index, i64 global_batch,
                         const calibration::CostModel& cost) {
  return simulate(sc, phase_index, global_batch, cost, true);
}

StepSeconds step_seconds(const Scenario& sc, std::size_t phase_index, i64 global_batch,
                         const calibration::CostModel& cost) {
  static StringMemo<StepSeconds> memo("step time", 4096);
  TS_ASSERT(phase_index < sc.phases.size(), "phase index out of range");
  const trainsim::Phase& sp = sc.phases[phase_index];
  KeyWriter k;
  k.add(step_inputs_key(sc, sp.plan, sp.training, cost)).add(global_batch);
  return *memo.get(k.str(), [&] {
    const StepResult r = simulate(sc, phase_index, global_batch, cost, false);
    return StepSeconds{r.step_s, r.utilization};
  });
}

}  // namespace trainsim::step
