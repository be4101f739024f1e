#pragma once
// The five descriptions every simulation starts from, as typed, validated structs:
//   ModelConfig    - the architecture (models/*.toml)
//   HardwareConfig - one GPU type with its sources (profiles/hardware/*.toml)
//   ClusterConfig  - how many GPUs, how many per node, which GPU type
//   PlanConfig     - the parallel plan (DP, TP, PP, EP, CP, schedule, ...)
//   TrainingConfig - sequence length, batch (with ramp), tokens, precision recipe
// and Scenario, which joins them (config/scenario.hpp). Every value is in SI base units
// (bytes, bytes/s, seconds, FLOP/s, watts, USD/h) unless the name says otherwise.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/reader.hpp"
#include "core/error.hpp"

namespace trainsim {

// ---------------------------------------------------------------------------------------------
enum class AttentionKind { MHA, GQA, MLA };
enum class Activation { SwiGLU, GELU, SquaredReLU };  // squared ReLU: Nemotron-4 (relu(x)^2, no gate)
enum class NormKind { RMSNorm, LayerNorm };

struct AttentionConfig {
  AttentionKind kind = AttentionKind::MHA;
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;   // MHA: = heads; GQA: fewer
  std::int64_t head_dim = 0;   // MHA/GQA
  bool bias = false;           // bias on q/k/v/o projections
  bool qkv_bias = false;       // bias on q/k/v only (Qwen2); implied by `bias`
  // MLA (DeepSeek-V2/V3). q_lora_rank == 0 means queries are projected directly (V2-Lite).
  std::int64_t q_lora_rank = 0;
  std::int64_t kv_lora_rank = 0;
  std::int64_t qk_nope_head_dim = 0;
  std::int64_t qk_rope_head_dim = 0;
  std::int64_t v_head_dim = 0;

  std::int64_t qk_dim() const;  // per-head q/k width used in QK^T
  std::int64_t v_dim() const;   // per-head v width
};

struct MlpConfig {
  Activation activation = Activation::SwiGLU;
  std::int64_t intermediate = 0;
  bool bias = false;
};

struct MoeConfig {
  bool enabled = false;
  std::int64_t first_dense_layers = 0;  // leading layers with a dense MLP
  std::int64_t routed_experts = 0;
  std::int64_t shared_experts = 0;
  std::int64_t top_k = 0;
  std::int64_t expert_intermediate = 0;
  std::int64_t expert_groups = 1;       // node-limited routing: groups of experts...
  std::int64_t limited_groups = 1;      // ...of which a token may use at most this many
  std::string gate = "softmax";         // softmax | sigmoid
};

struct ModelConfig {
  std::string name;
  std::string description;
  std::int64_t layers = 0;
  std::int64_t hidden = 0;
  std::int64_t vocab = 0;
  bool tied_embeddings = false;
  NormKind norm = NormKind::RMSNorm;
  bool learned_positions = false;       // GPT-style learned position embeddings
  std::int64_t max_position = 0;        // rows of the learned position table
  AttentionConfig attention;
  MlpConfig mlp;
  MoeConfig moe;
  std::int64_t mtp_depth = 0;           // multi-token-prediction modules
  SourcePos pos;

  bool is_moe_layer(std::int64_t layer) const {
    return moe.enabled && layer >= moe.first_dense_layers;
  }
};

ModelConfig parse_model(Section s);

// ---------------------------------------------------------------------------------------------
// A hardware value and where it came from.
struct Sourced {
  double value = 0;
  std::string source;
};

struct HardwareConfig {
  std::string name;
  std::string description;
  std::int64_t sms = 0;
  Sourced clock;          // Hz, clock behind the tensor peaks (0 = not given)
  Sourced fp8;            // dense FLOP/s; value 0 = not supported
  Sourced bf16;
  Sourced tf32;
  Sourced fp32;
  Sourced hbm_capacity;   // bytes
  Sourced hbm_bandwidth;  // bytes/s
  Sourced nvlink;         // bytes/s per GPU, both directions summed (vendor convention)
  Sourced nic;            // bytes/s per NIC, one direction
  std::int64_t nics_per_gpu = 1;
  Sourced tdp;            // W
  Sourced price;          // USD per GPU-hour
  SourcePos pos;

  double peak_flops(const std::string& dtype) const;  // "fp8" | "bf16" | "tf32" | "fp32"
};

// `base_file`: the GPU file under the overrides; its values must be { value, source } tables,
// while an override may be a bare quantity (see config.cpp: sourced).
HardwareConfig parse_hardware(Section s, const std::string& base_file = "");

// ---------------------------------------------------------------------------------------------
struct ClusterConfig {
  std::string gpu;            // hardware name or path, as written
  std::int64_t gpus = 0;
  std::int64_t gpus_per_node = 0;
  // GPUs joined by one NVLink/NVSwitch domain (GB200 NVL72: 72 over compute trays of 4). 0 = one
  // node. A multiple of gpus_per_node; need not divide gpus (the last domain is partial).
  std::int64_t nvlink_domain = 0;
  std::int64_t nodes() const { return gpus / gpus_per_node; }
  std::int64_t domain_size() const { return nvlink_domain > 0 ? nvlink_domain : gpus_per_node; }
};

ClusterConfig parse_cluster(Section s);

// ---------------------------------------------------------------------------------------------
enum class Recompute { None, Selective, DeepSeek, Full };

struct PlanConfig {
  std::int64_t dp = 1, tp = 1, pp = 1, ep = 1, cp = 1, vpp = 1;
  std::int64_t zero = 0;                 // ZeRO stage 0..3
  std::string schedule = "1f1b";         // gpipe | 1f1b | interleaved | zb1p | dualpipe | dualpipev
  std::int64_t micro_batch = 1;          // sequences per micro-batch
  Recompute recompute = Recompute::None;
  std::int64_t comm_sms = 0;             // SMs reserved for communication kernels
  std::int64_t recompute_num_layers = 0; // recompute = "full": layers per stage recomputed (0 = all)
  std::vector<std::int64_t> layer_split; // layers per pipeline stage (empty: see split_rule)
  std::string split_rule = "balanced";   // when layer_split is empty: balanced | even
  double comm_buffers = 0;               // bytes per GPU for communication buffers
  // Framework overlaps and communication switches (defaults: Megatron-Core's argument defaults,
  // docs/configuration.md). Each is a model in sim/step/ with its citation.
  bool sequence_parallel = false;        // Megatron sequence parallelism (TP all-gather/reduce-scatter)
  bool tp_comm_overlap = false;          // TransformerEngine userbuffers: TP collectives pipelined with GEMMs
  bool ep_comm_overlap = false;          // Megatron overlap_moe_expert_parallel_comm (combined 1F1B)
  bool shared_expert_overlap = false;    // shared-expert compute overlapped with the all-to-all
  bool overlap_grad_reduce = false;      // DP gradient reduce-scatter/all-reduce in buckets during backward
  bool overlap_param_gather = false;     // ZeRO parameter all-gather during the next forward
  std::int64_t dp_bucket_params = 0;     // parameters per gradient bucket; 0 = max(40M, 1M x dp) (Megatron)
  // Which ranks and model chunks bucket their gradients (step/tail.hpp grad_bucket_params):
  // "megatron-core" (Megatron-Core DDP: buckets only on pipeline rank 0's first model chunk and
  // only with overlap_grad_reduce; elsewhere one bucket per gradient buffer) or "uniform"
  // (buckets of dp_bucket_params on every rank and chunk: PyTorch DDP, Apex distributed Adam).
  // Empty when not written: "megatron-core", or "uniform" under DualPipe(V) (effective_grad_buckets).
  std::string grad_buckets;
  std::string cp_comm = "ring";          // context-parallel attention: ring (p2p K/V) | all_gather
  // The MoE token exchange: "deepep" (DeepEP's normal kernels: two hops, one IB send per target
  // node, FP8 dispatch in an FP8 run) or "alltoall" (Megatron-Core's alltoall token dispatcher:
  // one all_to_all_single of the (token, expert) rows, BF16).
  std::string ep_dispatcher = "deepep";
  // The attention core's kernels: "flash" (one fused FlashAttention kernel; scores stay on chip)
  // or "unfused" (Megatron-LM before FlashAttention: QK^T and PV as batched GEMMs, the score
  // matrix materialised and passed through the fused scale-mask-softmax and dropout kernels).
  std::string attention = "flash";
  SourcePos pos;
};

PlanConfig parse_plan(Section s);

// ---------------------------------------------------------------------------------------------
struct PrecisionConfig {
  std::string gemm = "bf16";              // fp8 | bf16
  std::string master_weights = "fp32";    // fp32 | bf16
  std::string gradients = "fp32";         // fp32 | bf16
  std::string optimizer_moments = "fp32"; // fp32 | bf16
  std::string activation_cache = "bf16";  // fp8 | bf16
};

struct BatchRamp {
  std::int64_t start = 0;  // sequences per step at the beginning
  double tokens = 0;       // tokens over which the batch grows to global_batch
};

enum class PhaseKind { Pretraining, ContextExtension, PostTraining };
const char* phase_kind_name(PhaseKind k);

struct TrainingConfig {
  std::string name = "pre-training";
  PhaseKind kind = PhaseKind::Pretraining;
  std::int64_t seq_len = 0;
  std::int64_t global_batch = 0;  // sequences per step
  double tokens = 0;              // training tokens of this phase (0 when given as steps)
  std::int64_t steps = 0;         // steps of this phase (0 when given as tokens)
  std::optional<BatchRamp> ramp;
  PrecisionConfig precision;
  SourcePos pos;
};

TrainingConfig parse_training(Section s);

// ---------------------------------------------------------------------------------------------
// Energy and availability assumptions. Everything here is optional and off unless set.
struct EnergyConfig {
  std::optional<double> idle_power;  // W per GPU when idle
  std::optional<double> pue;         // power usage effectiveness of the facility
};
EnergyConfig parse_energy(Section s);

struct GoodputConfig {
  double failures_per_gpu_day = 0;
  double checkpoint_interval = 0;  // s
  double checkpoint_cost = 0;      // s of lost training per checkpoint
  double restart = 0;              // s from a failure to training again
};
GoodputConfig parse_goodput(Section s);

// Bytes of one value of a dtype name ("fp32" 4, "bf16" 2, "fp8" 1).
double dtype_bytes(const std::string& dtype);

}  // namespace trainsim
