#include "step/caches.hpp"

#include "core/error.hpp"
#include "network/memo.hpp"
#include "step/comm_plan.hpp"
#include "step/op_lists.hpp"
#include "step/stage_split.hpp"

namespace trainsim::step {

// A field added to one of these descriptions must join its key below (x86-64 sizes under the
// Itanium C++ ABI and libstdc++, which both g++ and clang++ use here).
static_assert(sizeof(AttentionConfig) == 80, "AttentionConfig changed: add the new field to add_key(ModelConfig)");
static_assert(sizeof(MlpConfig) == 24, "MlpConfig changed: add the new field to add_key(ModelConfig)");
static_assert(sizeof(MoeConfig) == 96, "MoeConfig changed: add the new field to add_key(ModelConfig)");
static_assert(sizeof(ModelConfig) == 360, "ModelConfig changed: add the new field to add_key(ModelConfig)");
static_assert(sizeof(HardwareConfig) == 560, "HardwareConfig changed: add the new field to add_key(HardwareConfig)");
static_assert(sizeof(ClusterConfig) == 56, "ClusterConfig changed: add the new field to add_key(ClusterConfig)");
static_assert(sizeof(PlanConfig) == 368, "PlanConfig changed: add the new field to add_key(PlanConfig)");
static_assert(sizeof(PrecisionConfig) == 160, "PrecisionConfig changed: add the new field to add_key(PrecisionConfig)");
static_assert(sizeof(TrainingConfig) == 296, "TrainingConfig changed: decide whether step_setup reads the new field");
static_assert(sizeof(schedule::ScheduleParams) == 12, "ScheduleParams changed: add the new field to the schedule keys");

void add_key(KeyWriter& k, const ModelConfig& m) {
  k.add(m.name).add(m.description).add(m.layers).add(m.hidden).add(m.vocab).add(m.tied_embeddings);
  k.add(static_cast<int>(m.norm)).add(m.learned_positions).add(m.max_position);
  const AttentionConfig& a = m.attention;
  k.add(static_cast<int>(a.kind)).add(a.heads).add(a.kv_heads).add(a.head_dim).add(a.bias).add(a.qkv_bias);
  k.add(a.q_lora_rank).add(a.kv_lora_rank).add(a.qk_nope_head_dim).add(a.qk_rope_head_dim).add(a.v_head_dim);
  k.add(static_cast<int>(m.mlp.activation)).add(m.mlp.intermediate).add(m.mlp.bias);
  const MoeConfig& e = m.moe;
  k.add(e.enabled).add(e.first_dense_layers).add(e.routed_experts).add(e.shared_experts).add(e.top_k);
  k.add(e.expert_intermediate).add(e.expert_groups).add(e.limited_groups).add(e.gate);
  k.add(m.mtp_depth);
}

void add_key(KeyWriter& k, const HardwareConfig& h) {
  k.add(h.name).add(h.description).add(h.sms);
  for (const Sourced* s : {&h.clock, &h.fp8, &h.bf16, &h.tf32, &h.fp32, &h.hbm_capacity, &h.hbm_bandwidth, &h.nvlink,
                           &h.nic})
    k.add(s->value).add(s->source);
  k.add(h.nics_per_gpu);
  for (const Sourced* s : {&h.tdp, &h.price}) k.add(s->value).add(s->source);
}

void add_key(KeyWriter& k, const ClusterConfig& c) { k.add(c.gpu).add(c.gpus).add(c.gpus_per_node).add(c.nvlink_domain); }

void add_key(KeyWriter& k, const PlanConfig& p) {
  k.add(p.dp).add(p.tp).add(p.pp).add(p.ep).add(p.cp).add(p.vpp).add(p.zero).add(p.schedule).add(p.micro_batch);
  k.add(static_cast<int>(p.recompute)).add(p.comm_sms).add(p.recompute_num_layers).add(p.layer_split).add(p.split_rule);
  k.add(p.comm_buffers).add(p.sequence_parallel).add(p.tp_comm_overlap).add(p.ep_comm_overlap);
  k.add(p.shared_expert_overlap).add(p.overlap_grad_reduce).add(p.overlap_param_gather).add(p.dp_bucket_params);
  k.add(p.cp_comm);
  k.add(p.attention);
  k.add(p.grad_buckets);
  k.add(p.ep_dispatcher);
}

void add_key(KeyWriter& k, const PrecisionConfig& p) {
  k.add(p.gemm).add(p.master_weights).add(p.gradients).add(p.optimizer_moments).add(p.activation_cache);
}

std::shared_ptr<const OpRun> StepSetup::op_run(const OpRunKey& key) const {
  {
    std::lock_guard<std::mutex> lock(runs_->mu);
    auto it = runs_->map.find(key);
    if (it != runs_->map.end()) return it->second;
  }
  const auto [kind, s, s2] = key;
  TS_ASSERT(kind == static_cast<int>(graph::OpKind::FB), "op runs alone are made with the stages");
  TS_ASSERT(s >= 0 && s2 >= 0 && static_cast<std::size_t>(std::max(s, s2)) < stages.size(), "F&B pair of unknown stages");
  auto run = std::make_shared<const OpRun>(run_pair(stages[static_cast<std::size_t>(s)].phases.forward,
                                                    stages[static_cast<std::size_t>(s2)].phases.backward));
  std::lock_guard<std::mutex> lock(runs_->mu);
  return runs_->map.emplace(key, std::move(run)).first->second;  // the first one stored (equal)
}

std::string step_inputs_key(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                            const calibration::CostModel& cost) {
  // Everything a step reads besides its batch: the op costs (through the model's identity), the
  // model, the GPU, the cluster and its network, the plan, and of the training only its sequence
  // length and precision (sim/step reads no other TrainingConfig field).
  KeyWriter k;
  k.add(cost.identity());
  add_key(k, sc.model);
  add_key(k, sc.hardware);
  add_key(k, sc.cluster);
  network::add_key(k, sc.net);
  add_key(k, plan);
  k.add(tr.seq_len);
  add_key(k, tr.precision);
  return k.take();
}

std::shared_ptr<const StepSetup> step_setup(const Scenario& sc, const PlanConfig& plan, const TrainingConfig& tr,
                                            const calibration::CostModel& cost) {
  static StringMemo<StepSetup> memo("step setup", 32);
  return memo.get(step_inputs_key(sc, plan, tr, cost), [&] {
    StepSetup S;
    const CommPlan comm(sc, plan, tr);
    PhaseBuilder builder(sc, plan, tr, cost, comm);
    S.layer_split = cost_balanced_split(sc, plan, tr, builder);
    const auto nstages = static_cast<std::int64_t>(S.layer_split.size());
    for (std::int64_t st = 0; st < nstages; ++st) {
      StageCost C;
      C.stage = static_cast<int>(st);
      const auto layers = stage_ops(sc.model, plan, tr, S.layer_split, st);
      for (const auto& L : layers) C.layers.push_back(L.label);
      C.phases = builder.stage(layers);
      C.flops_fwd = C.phases.flops_fwd;
      C.flops_bwd = C.phases.flops_bwd;
      auto f = std::make_shared<const OpRun>(run_alone(C.phases.forward));
      auto b = std::make_shared<const OpRun>(run_alone(C.phases.backward));
      auto i = std::make_shared<const OpRun>(run_alone(C.phases.backward_input));
      auto w = std::make_shared<const OpRun>(run_alone(C.phases.backward_weight));
      C.f = f->duration;
      C.b = b->duration;
      C.i = i->duration;
      C.w = w->duration;
      C.f_comm = f->comm_busy;
      C.b_comm = b->comm_busy;
      const int s = static_cast<int>(st);
      S.runs_->map.emplace(OpRunKey{static_cast<int>(graph::OpKind::F), s, -1}, std::move(f));
      S.runs_->map.emplace(OpRunKey{static_cast<int>(graph::OpKind::B), s, -1}, std::move(b));
      S.runs_->map.emplace(OpRunKey{static_cast<int>(graph::OpKind::I), s, -1}, std::move(i));
      S.runs_->map.emplace(OpRunKey{static_cast<int>(graph::OpKind::W), s, -1}, std::move(w));
      S.stages.push_back(std::move(C));
    }
    S.a2a_dispatch_s = comm.a2a_dispatch_s;
    S.a2a_combine_s = comm.a2a_combine_s;
    S.a2a_bottleneck = comm.a2a_bottleneck;
    S.counts = builder.counts();
    return S;
  });
}

namespace {
void add_schedule_key(KeyWriter& k, const PlanConfig& plan, int microbatches, bool combined) {
  k.add(plan.schedule).add(plan.pp).add(microbatches).add(plan.vpp).add(combined);
}
}  // namespace

std::shared_ptr<const schedule::Schedule> step_schedule(const PlanConfig& plan, int microbatches, bool combined) {
  static StringMemo<schedule::Schedule> memo("schedule", 256);
  KeyWriter k;
  add_schedule_key(k, plan, microbatches, combined);
  return memo.get(k.str(), [&] {
    schedule::ScheduleParams p;
    p.pp = static_cast<int>(plan.pp);
    p.microbatches = microbatches;
    p.vpp = static_cast<int>(plan.vpp);
    schedule::Schedule s = schedule::build(plan.schedule, p);
    if (combined) s.order = combine_1f1b_order(s.order);
    return s;
  });
}

std::shared_ptr<const graph::TaskGraph> step_task_graph(const PlanConfig& plan, int microbatches, bool combined) {
  static StringMemo<graph::TaskGraph> memo("task graph", 256);
  KeyWriter k;
  add_schedule_key(k, plan, microbatches, combined);
  return memo.get(k.str(), [&] {
    const auto sched = step_schedule(plan, microbatches, combined);
    return graph::TaskGraph::build(sched->topo, sched->order, graph::OpTimes{}, Time::zero());
  });
}

std::shared_ptr<const ScheduleRuns> step_schedule_runs(const PlanConfig& plan, int microbatches, bool combined) {
  static StringMemo<ScheduleRuns> memo("schedule runs", 256);
  KeyWriter k;
  add_schedule_key(k, plan, microbatches, combined);
  return memo.get(k.str(), [&] {
    const auto sched = step_schedule(plan, microbatches, combined);
    const graph::PipelineTopology& topo = sched->topo;
    ScheduleRuns out;
    std::map<OpRunKey, std::uint32_t> index;
    out.of_op.resize(sched->order.size());
    for (std::size_t r = 0; r < sched->order.size(); ++r) {
      out.of_op[r].reserve(sched->order[r].size());
      for (const graph::Op& op : sched->order[r]) {
        const int s = topo.position_of(static_cast<int>(r), op.chunk);
        const int s2 = op.kind == graph::OpKind::FB ? topo.position_of(static_cast<int>(r), op.chunk2) : -1;
        const OpRunKey key{static_cast<int>(op.kind), s, s2};
        auto [it, fresh] = index.emplace(key, static_cast<std::uint32_t>(out.keys.size()));
        if (fresh) out.keys.push_back(key);
        out.of_op[r].push_back(it->second);
      }
    }
    return out;
  });
}

std::shared_ptr<const PipelineReplays> pipeline_replays(const PlanConfig& plan, int microbatches, bool combined,
                                                        const std::map<OpRunKey, Time>& durations,
                                                        const std::vector<Time>& node_times, Time p2p) {
  static StringMemo<PipelineReplays> memo("pipeline replay", 64);
  KeyWriter k;
  add_schedule_key(k, plan, microbatches, combined);
  k.add(p2p.count_ps()).add(static_cast<std::uint64_t>(durations.size()));
  for (const auto& [key, t] : durations)
    k.add(std::get<0>(key)).add(std::get<1>(key)).add(std::get<2>(key)).add(t.count_ps());
  return memo.get(k.str(), [&] {
    const auto sched = step_schedule(plan, microbatches, combined);
    const graph::PipelineTopology& topo = sched->topo;
    auto table = std::make_shared<const std::map<OpRunKey, Time>>(durations);
    auto key_of = [topo](int rank, const graph::Op& op) {
      const int s = topo.position_of(rank, op.chunk);
      const int s2 = op.kind == graph::OpKind::FB ? topo.position_of(rank, op.chunk2) : -1;
      return OpRunKey{static_cast<int>(op.kind), s, s2};
    };
    graph::OpTimes times;
    times.per_op = [table, key_of](int rank, const graph::Op& op) -> Time {
      auto it = table->find(key_of(rank, op));
      TS_ASSERT(it != table->end(), "op run missing");
      return it->second;
    };
    // Equal stages: every op kind at its mean over the op runs (F&B: over the pairs the schedule runs).
    auto mean = std::make_shared<std::map<int, std::pair<Time, int>>>();
    for (const auto& [key, t] : durations) {
      auto& [sum, count] = (*mean)[std::get<0>(key)];
      sum += t;
      ++count;
    }
    graph::OpTimes equal;
    equal.per_op = [mean](int, const graph::Op& op) -> Time {
      const auto it = mean->find(static_cast<int>(op.kind));
      TS_ASSERT(it != mean->end(), "op kind missing");
      return it->second.first / it->second.second;
    };
    const auto shape = step_task_graph(plan, microbatches, combined);
    PipelineReplays out{sched, graph::replay_times(graph::TaskGraph::retimed(*shape, node_times, p2p)),
                        std::make_shared<PipelineReplays::Lazy>()};
    out.lazy->shape = shape;
    out.lazy->times = times;
    out.lazy->node_times = node_times;
    out.lazy->equal = equal;
    out.lazy->p2p = p2p;
    return out;
  });
}

const schedule::Result& PipelineReplays::pipeline() const {
  std::call_once(lazy->pipeline_once, [&] {
    // The same replay again with its critical path (graph::replay_times: replay()'s exactly).
    lazy->pipeline = schedule::result_of(
        *schedule, graph::replay_times(graph::TaskGraph::retimed(*lazy->shape, lazy->node_times, lazy->p2p), true),
        lazy->times, lazy->p2p);
  });
  return *lazy->pipeline;
}

const PipelineReplays::Lazy& PipelineReplays::idle_made() const {
  std::call_once(lazy->idle_once, [&] {
    lazy->free_sends = graph::replay_times(graph::TaskGraph::retimed(*lazy->shape, lazy->node_times, Time::zero()));
    lazy->equal_stages = graph::replay_times(graph::TaskGraph::retimed(*lazy->shape, lazy->equal, Time::zero()));
  });
  return *lazy;
}

const graph::Replay& PipelineReplays::free_sends() const { return idle_made().free_sends; }
const graph::Replay& PipelineReplays::equal_stages() const { return idle_made().equal_stages; }

}  // namespace trainsim::step
