#pragma once
// Model math: exact parameter counts, per-layer operation lists and FLOPs per token.
//
// Conventions (stated here once, used by every caller and test):
//  * A GEMM op is Y[M×N] = X[M×K]·W[K×N] and costs 2·M·N·K FLOPs. Its backward is split as
//    zero-bubble schedules need it: backward-for-input dX = dY·Wᵀ (M×K, inner N) and
//    backward-for-weights dW = Xᵀ·dY (K×N, inner M), each 2·M·N·K.
//  * Attention core (QKᵀ and PV) is counted two ways: `flops` with the causal mask's half
//    (s²/2 query-key pairs per sequence and head) and `flops_full` with the whole s² matrix. Its
//    backward is twice its forward (model FLOPs; FlashAttention's recomputation of QKᵀ is a
//    hardware cost, not a model FLOP), all in backward-for-input since attention has no weights.
//  * Embedding lookups cost no FLOPs; the output head is a GEMM; norms, activation functions,
//    routing and permutation are memory-bound ops with their bytes moved (read + write).
//  * Parameter counts include every weight and bias, norm scales and DeepSeek's expert-score
//    correction bias; "activated" counts what one token touches: all non-expert weights, the
//    shared experts, top_k routed experts, the embedding row table and the output head in full
//    (DeepSeek-V3's 36.7B "including 0.9B embedding and 0.9B output head" counts them so).

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace trainsim {

enum class Pass { Forward, BackwardInput, BackwardWeight };
enum class OpClass { Gemm, GroupedGemm, Attention, Norm, Elementwise, Router, Permute, Embedding, Loss };

const char* pass_name(Pass p);        // "fwd", "bwd_input", "bwd_weight"
const char* op_class_name(OpClass c); // "gemm", "grouped_gemm", ...

struct Op {
  std::string name;        // e.g. "attn.q_b", "moe.experts.up"
  OpClass cls = OpClass::Gemm;
  Pass pass = Pass::Forward;
  std::int64_t m = 0, n = 0, k = 0;  // GEMM shape (for grouped GEMMs: m = rows over all groups)
  std::int64_t groups = 1;
  std::string dtype;       // fp8 | bf16 | fp32
  double flops = 0;        // causal-attention convention
  double flops_full = 0;   // full-matrix attention convention (= flops for non-attention ops)
  double bytes = 0;        // bytes read + written (memory-bound ops; GEMM operand traffic too)
};

enum class LayerKind { Dense, Moe, Mtp, Embedding, Head };
const char* layer_kind_name(LayerKind k);

struct ParamCounts {
  double embedding = 0;      // token (+ learned position) embedding
  double head = 0;           // output head (0 if tied) + final norm
  double attention = 0;      // all layers, incl. their norms
  double dense_mlp = 0;      // dense-MLP layers
  double moe_routed = 0;     // routed experts, all MoE layers
  double moe_shared = 0;     // shared experts
  double moe_gate = 0;       // router weights and score-correction bias
  double total = 0;          // main model (no MTP)
  double active = 0;         // activated per token (main model, embedding and head included)
  double mtp_total = 0;      // MTP modules' own parameters (embedding and head are shared)
  double mtp_active = 0;
  // Per layer, for the table: total and activated.
  std::vector<double> layer_total;
  std::vector<double> layer_active;
};

ParamCounts count_params(const ModelConfig& m);

// Parameters of one transformer layer split into non-expert (replicated over EP) and routed
// expert (sharded by EP) parts.
struct LayerParams {
  double dense = 0;   // attention, norms, dense MLP or shared experts, router
  double routed = 0;  // routed experts
};
LayerParams layer_params(const ModelConfig& m, std::int64_t layer);  // layer == m.layers: an MTP block
double mtp_extra_params(const ModelConfig& m);  // per MTP module, beyond its transformer block
double embedding_params(const ModelConfig& m);
double head_params(const ModelConfig& m);

struct OpContext {
  std::int64_t micro_batch = 1;   // sequences
  std::int64_t seq_len = 4096;
  std::string gemm_dtype = "bf16";  // dtype of linear-layer GEMMs (fp8 under DeepSeek's recipe)
  std::int64_t tokens() const { return micro_batch * seq_len; }
};

// The operations of one transformer layer (0-based), forward and both backward halves.
std::vector<Op> layer_ops(const ModelConfig& m, std::int64_t layer, const OpContext& ctx);
std::vector<Op> mtp_ops(const ModelConfig& m, const OpContext& ctx);   // one MTP module
std::vector<Op> embedding_ops(const ModelConfig& m, const OpContext& ctx);
std::vector<Op> head_ops(const ModelConfig& m, const OpContext& ctx);  // final norm, head, loss

struct FlopsPerToken {
  double forward_causal = 0;
  double forward_full = 0;
  double train_causal = 0;   // forward + backward (input and weight)
  double train_full = 0;
  double attention_train_causal = 0;  // the attention-core part of train_causal
  double mtp_train_causal = 0;        // included above only if include_mtp
};

FlopsPerToken flops_per_token(const ModelConfig& m, std::int64_t seq_len, bool include_mtp);

// Sums of an op list.
struct OpTotals {
  double flops = 0, flops_full = 0, bytes = 0;
};
OpTotals totals(const std::vector<Op>& ops, int pass_mask = 7);  // bit (1 << Pass)

}  // namespace trainsim
