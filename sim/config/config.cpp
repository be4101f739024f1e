#include "config/config.hpp"

#include <fmt/format.h>

#include "config/plan_rules.hpp"
#include "schedule/schedule_rules.hpp"

namespace trainsim {

namespace {
constexpr std::int64_t kBig = std::int64_t{1} << 40;
}

std::int64_t AttentionConfig::qk_dim() const {
  return kind == AttentionKind::MLA ? qk_nope_head_dim + qk_rope_head_dim : head_dim;
}
std::int64_t AttentionConfig::v_dim() const { return kind == AttentionKind::MLA ? v_head_dim : head_dim; }

double dtype_bytes(const std::string& dtype) {
  if (dtype == "fp32" || dtype == "tf32") return 4;
  if (dtype == "bf16" || dtype == "fp16") return 2;
  if (dtype == "fp8") return 1;
  throw InternalError("unknown dtype " + dtype);
}

// ---------------------------------------------------------------------------------------------
ModelConfig parse_model(Section s) {
  ModelConfig m;
  m.pos = s.pos();
  m.name = s.string("name");
  m.description = s.string_or("description", "");
  s.allow("source");
  m.layers = s.integer("layers", 1, 100000);
  m.hidden = s.integer("hidden", 1, INT32_MAX);  // the all-to-all model takes it as a 32-bit integer
  m.vocab = s.integer("vocab", 1, kBig);
  m.tied_embeddings = s.boolean("tied_embeddings");
  m.norm = s.choice("norm", {"rmsnorm", "layernorm"}) == "rmsnorm" ? NormKind::RMSNorm : NormKind::LayerNorm;
  m.learned_positions = s.choice("positions", {"rope", "learned"}) == "learned";
  if (m.learned_positions) m.max_position = s.integer("max_position", 1, kBig);

  {
    Section a = s.table("attention");
    const std::string type = a.choice("type", {"mha", "gqa", "mla"});
    auto& at = m.attention;
    at.heads = a.integer("heads", 1, 1 << 20);
    at.bias = a.boolean_or("bias", false);
    at.qkv_bias = a.boolean_or("qkv_bias", at.bias);
    if (at.bias && !at.qkv_bias) a.fail("qkv_bias", "bias = true puts a bias on q/k/v too; qkv_bias = false contradicts it");
    if (type == "mla") {
      at.kind = AttentionKind::MLA;
      at.q_lora_rank = a.integer("q_lora_rank", 0, kBig);
      at.kv_lora_rank = a.integer("kv_lora_rank", 1, kBig);
      at.qk_nope_head_dim = a.integer("qk_nope_head_dim", 1, kBig);
      at.qk_rope_head_dim = a.integer("qk_rope_head_dim", 0, kBig);
      at.v_head_dim = a.integer("v_head_dim", 1, kBig);
      at.kv_heads = at.heads;
    } else {
      at.kind = type == "mha" ? AttentionKind::MHA : AttentionKind::GQA;
      at.head_dim = a.integer("head_dim", 1, kBig);
      at.kv_heads = type == "mha" ? at.heads : a.integer("kv_heads", 1, at.heads);
      if (at.heads % at.kv_heads != 0)
        a.fail("kv_heads", fmt::format("kv_heads {} must divide heads {}", at.kv_heads, at.heads));
    }
    a.finish();
  }
  {
    Section p = s.table("mlp");
    const std::string act = p.choice("activation", {"swiglu", "gelu", "squared_relu"});
    m.mlp.activation = act == "swiglu" ? Activation::SwiGLU : act == "gelu" ? Activation::GELU : Activation::SquaredReLU;
    m.mlp.intermediate = p.integer("intermediate", 1, kBig);
    m.mlp.bias = p.boolean_or("bias", false);
    p.finish();
  }
  if (auto mo = s.opt_table("moe")) {
    auto& e = m.moe;
    e.enabled = true;
    e.first_dense_layers = mo->integer_or("first_dense_layers", 0, 0, m.layers - 1);
    e.routed_experts = mo->integer("routed_experts", 1, 1 << 20);
    e.shared_experts = mo->integer_or("shared_experts", 0, 0, 1 << 20);
    e.top_k = mo->integer("top_k", 1, e.routed_experts);
    e.expert_intermediate = mo->integer("expert_intermediate", 1, kBig);
    e.expert_groups = mo->integer_or("expert_groups", 1, 1, e.routed_experts);
    e.limited_groups = mo->integer_or("limited_groups", e.expert_groups, 1, e.expert_groups);
    if (e.routed_experts % e.expert_groups != 0)
      mo->fail("expert_groups", fmt::format("expert_groups {} must divide routed_experts {}", e.expert_groups, e.routed_experts));
    e.gate = mo->choice_or("gate", "softmax", {"softmax", "sigmoid"});
    mo->finish();
  }
  if (auto mt = s.opt_table("mtp")) {
    m.mtp_depth = mt->integer("depth", 0, 64);
    mt->finish();
  }
  s.finish();
  return m;
}

// ---------------------------------------------------------------------------------------------
// A hardware value: { value = "<quantity>", source = "..." }. An override (a scenario's
// [hardware] table or --set, anything but the GPU file `base_file` itself) may give a bare
// quantity instead: it sets the value, and the override is recorded as its source.
static Sourced sourced(Section& s, std::string_view key, Dim d, double min, double max, const std::string& base_file,
                       bool required = true) {
  if (!required && !s.has(key)) {
    s.allow(key);
    return {};
  }
  if (s.is_string(key)) {
    const SourcePos at = s.pos(key);
    if (base_file.empty() || at.file == base_file)
      s.fail(key, "a hardware value is a table { value = \"<quantity>\", source = \"...\" }; a bare quantity is "
                  "allowed only in an override (a scenario's [hardware] or --set)");
    Sourced v;
    const std::string text = s.string(key);
    v.value = s.quantity(key, d, min, max);
    v.source = at.file == "--set" ? fmt::format("--set {}={}", s.full_key(key), text)
                                  : fmt::format("override {} = \"{}\" ({})", s.full_key(key), text, at.str());
    return v;
  }
  Section t = s.table(key);
  Sourced v;
  v.value = t.quantity("value", d, min, max);
  v.source = t.string("source");
  if (v.source.empty()) t.fail("source", "a hardware value needs a non-empty source");
  t.allow("note");
  t.finish();
  return v;
}

HardwareConfig parse_hardware(Section s, const std::string& base_file) {
  HardwareConfig h;
  h.pos = s.pos();
  h.name = s.string("name");
  h.description = s.string_or("description", "");
  {
    Section c = s.table("compute");
    h.sms = c.integer("sms", 1, 100000);
    h.clock = sourced(c, "clock", Dim::Frequency, 1e6, 1e11, base_file, false);
    h.fp8 = sourced(c, "fp8", Dim::FlopRate, 0, 1e18, base_file, false);
    h.bf16 = sourced(c, "bf16", Dim::FlopRate, 1e9, 1e18, base_file);
    h.tf32 = sourced(c, "tf32", Dim::FlopRate, 1e9, 1e18, base_file);
    h.fp32 = sourced(c, "fp32", Dim::FlopRate, 1e9, 1e18, base_file);
    c.finish();
  }
  {
    Section mem = s.table("memory");
    h.hbm_capacity = sourced(mem, "capacity", Dim::Bytes, 1e6, 1e15, base_file);
    h.hbm_bandwidth = sourced(mem, "bandwidth", Dim::Bandwidth, 1e6, 1e15, base_file);
    mem.finish();
  }
  {
    Section n = s.table("interconnect");
    h.nvlink = sourced(n, "nvlink", Dim::Bandwidth, 1e6, 1e15, base_file);
    h.nic = sourced(n, "nic", Dim::Bandwidth, 1e6, 1e15, base_file);
    h.nics_per_gpu = n.integer_or("nics_per_gpu", 1, 1, 64);
    n.finish();
  }
  {
    Section p = s.table("power");
    h.tdp = sourced(p, "tdp", Dim::Power, 1, 1e5, base_file);
    p.finish();
  }
  {
    Section p = s.table("price");
    h.price = sourced(p, "per_gpu_hour", Dim::PricePerHour, 0, 1e4, base_file);
    p.finish();
  }
  s.finish();
  return h;
}

double HardwareConfig::peak_flops(const std::string& dtype) const {
  if (dtype == "fp8") return fp8.value > 0 ? fp8.value : bf16.value;  // no FP8 units: runs as BF16
  if (dtype == "bf16" || dtype == "fp16") return bf16.value;
  if (dtype == "tf32") return tf32.value;
  if (dtype == "fp32") return fp32.value;
  throw InternalError("unknown dtype " + dtype);
}

// ---------------------------------------------------------------------------------------------
ClusterConfig parse_cluster(Section s) {
  ClusterConfig c;
  c.gpu = s.string("gpu");
  c.gpus = s.integer("gpus", 1, 10'000'000);
  c.gpus_per_node = s.integer("gpus_per_node", 1, 1024);
  if (c.gpus % c.gpus_per_node != 0)
    s.fail("gpus", fmt::format("gpus {} is not a multiple of gpus_per_node {}", c.gpus, c.gpus_per_node));
  c.nvlink_domain = s.integer_or("nvlink_domain", 0, 1, 1'000'000);
  if (c.nvlink_domain > 0 && c.nvlink_domain % c.gpus_per_node != 0)
    s.fail("nvlink_domain", fmt::format("nvlink_domain {} is not a multiple of gpus_per_node {} (a domain joins whole nodes)",
                                        c.nvlink_domain, c.gpus_per_node));
  s.finish();
  return c;
}

// ---------------------------------------------------------------------------------------------
PlanConfig parse_plan(Section s) {
  PlanConfig p;
  p.pos = s.pos();
  p.dp = s.integer("dp", kPlanDpRange.lo, kPlanDpRange.hi);
  p.tp = s.integer_or("tp", 1, kPlanTpRange.lo, kPlanTpRange.hi);
  p.pp = s.integer_or("pp", 1, kPlanPpRange.lo, kPlanPpRange.hi);
  p.ep = s.integer_or("ep", 1, kPlanEpRange.lo, kPlanEpRange.hi);
  p.cp = s.integer_or("cp", 1, kPlanCpRange.lo, kPlanCpRange.hi);
  p.vpp = s.integer_or("vpp", 1, kPlanVppRange.lo, kPlanVppRange.hi);
  p.zero = s.integer_or("zero", 0, kPlanZeroRange.lo, kPlanZeroRange.hi);
  // The names the schedule registry knows (sim/schedule/schedule.cpp), so a name the config
  // accepts always runs.
  p.schedule = s.choice_or("schedule", "1f1b", schedule::known_schedules());
  p.micro_batch = s.integer_or("micro_batch", 1, kPlanMicroBatchRange.lo, kPlanMicroBatchRange.hi);
  const std::string rc = s.choice_or("recompute", "none", {"none", "selective", "deepseek", "full"});
  p.recompute = rc == "none" ? Recompute::None : rc == "selective" ? Recompute::Selective
              : rc == "deepseek" ? Recompute::DeepSeek : Recompute::Full;
  p.recompute_num_layers = s.integer_or("recompute_num_layers", 0, 1, 100000);
  p.comm_sms = s.integer_or("comm_sms", 0, 0, 100000);
  if (s.is_string("layer_split")) p.split_rule = s.choice("layer_split", {"balanced", "even"});
  else if (s.has("layer_split")) p.layer_split = s.integer_array("layer_split", 0, 100000);
  else s.allow("layer_split");
  p.comm_buffers = s.opt_quantity("comm_buffers", Dim::Bytes, 0, 1e15).value_or(0.0);
  p.sequence_parallel = s.boolean_or("sequence_parallel", false);
  p.tp_comm_overlap = s.boolean_or("tp_comm_overlap", false);
  p.ep_comm_overlap = s.boolean_or("ep_comm_overlap", false);
  p.shared_expert_overlap = s.boolean_or("shared_expert_overlap", false);
  p.overlap_grad_reduce = s.boolean_or("overlap_grad_reduce", false);
  p.overlap_param_gather = s.boolean_or("overlap_param_gather", false);
  p.dp_bucket_params = s.integer_or("dp_bucket_params", 0, 1, std::int64_t{1} << 40);
  if (s.has("grad_buckets")) p.grad_buckets = s.choice("grad_buckets", {"megatron-core", "uniform"});
  else s.allow("grad_buckets");
  p.cp_comm = s.choice_or("cp_comm", "ring", {"ring", "all_gather"});
  p.ep_dispatcher = s.choice_or("ep_dispatcher", "deepep", {"deepep", "alltoall"});
  p.attention = s.choice_or("attention", "flash", {"flash", "unfused"});
  if (p.attention == "unfused" && p.cp > 1)
    s.fail("attention", fmt::format("attention = \"unfused\" with cp {} is not modelled (context parallelism "
                                    "splits a fused attention kernel; give cp = 1 or attention = \"flash\")", p.cp));
  // The rules between keys live in config/plan_rules.hpp (shared with the plan search).
  if (const auto problem = plan_key_problem(p)) s.fail(problem->key, problem->message);
  s.finish();
  return p;
}

// ---------------------------------------------------------------------------------------------
const char* phase_kind_name(PhaseKind k) {
  switch (k) {
    case PhaseKind::Pretraining: return "pretraining";
    case PhaseKind::ContextExtension: return "context_extension";
    case PhaseKind::PostTraining: return "post_training";
  }
  return "?";
}

TrainingConfig parse_training(Section s) {
  TrainingConfig t;
  t.pos = s.pos();
  t.name = s.string_or("name", "pre-training");
  const std::string kind =
      s.choice_or("kind", "pretraining", {"pretraining", "context_extension", "post_training"});
  t.kind = kind == "pretraining" ? PhaseKind::Pretraining
         : kind == "context_extension" ? PhaseKind::ContextExtension : PhaseKind::PostTraining;
  t.seq_len = s.integer("seq_len", 1, std::int64_t{1} << 30);
  t.global_batch = s.integer("global_batch", 1, std::int64_t{1} << 40);
  const bool has_tokens = s.has("tokens"), has_steps = s.has("steps");
  if (has_tokens == has_steps)
    s.fail(has_tokens ? "steps" : "tokens", "give exactly one of 'tokens' and 'steps'");
  if (has_tokens) {
    t.tokens = s.number("tokens", 1, 1e18);
    s.allow("steps");
  } else {
    t.steps = s.integer("steps", 1, std::int64_t{1} << 40);
    s.allow("tokens");
  }
  if (auto r = s.opt_table("batch_ramp")) {
    if (t.steps > 0) r->fail("start", "a batch ramp needs the phase given in 'tokens'");
    BatchRamp br;
    br.start = r->integer("start", 1, t.global_batch);
    br.tokens = r->number("tokens", 0, t.tokens);
    r->finish();
    t.ramp = br;
  }
  if (auto p = s.opt_table("precision")) {
    t.precision.gemm = p->choice_or("gemm", "bf16", {"fp8", "bf16"});
    t.precision.master_weights = p->choice_or("master_weights", "fp32", {"fp32", "bf16"});
    t.precision.gradients = p->choice_or("gradients", "fp32", {"fp32", "bf16"});
    t.precision.optimizer_moments = p->choice_or("optimizer_moments", "fp32", {"fp32", "bf16"});
    t.precision.activation_cache = p->choice_or("activation_cache", "bf16", {"fp8", "bf16"});
    p->finish();
  }
  s.finish();
  return t;
}

// ---------------------------------------------------------------------------------------------
EnergyConfig parse_energy(Section s) {
  EnergyConfig e;
  e.idle_power = s.opt_quantity("idle_power", Dim::Power, 0, 1e5);
  if (s.has("pue")) e.pue = s.number("pue", 1.0, 10.0);
  else s.allow("pue");
  s.finish();
  return e;
}

GoodputConfig parse_goodput(Section s) {
  GoodputConfig g;
  g.failures_per_gpu_day = s.number("failures_per_gpu_day", 0, 100);
  g.checkpoint_interval = s.quantity("checkpoint_interval", Dim::Duration, 1, 1e9);
  g.checkpoint_cost = s.quantity("checkpoint_cost", Dim::Duration, 0, 1e9);
  g.restart = s.quantity("restart", Dim::Duration, 0, 1e9);
  s.finish();
  return g;
}

}  // namespace trainsim
