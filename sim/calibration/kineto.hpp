#pragma once
// Importer for Chrome Trace Event JSON as written by the PyTorch profiler (Kineto/CUPTI):
// GPU kernels (cat "kernel") with stream, ts, dur, correlation id, grid and block; the
// user_annotation ranges (attn(F), mlp(B), dispatch(F), ...); the CPU launch of each kernel
// (cuda_runtime / cuda_driver events with the same correlation id) and the CPU-side sync calls
// (cudaStreamWaitEvent, cudaEventRecord, ...). Malformed, truncated or wrong-schema input and
// traces with no kernels throw DataError naming file, line and column.
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "calibration/classifier.hpp"
#include "calibration/profile.hpp"
#include "model/model_math.hpp"

namespace trainsim::calibration {

// What the trace held, counted while importing.
struct TraceStats {
  std::size_t events = 0;        // all entries of traceEvents
  std::size_t kernels = 0;       // cat "kernel"
  std::size_t annotations = 0;   // cat "user_annotation"
  std::size_t memsets = 0;       // cat "gpu_memset"
  std::size_t memcpys = 0;       // cat "gpu_memcpy"
  std::size_t launches = 0;      // cuda_runtime / cuda_driver events with a correlation id
  std::size_t flows = 0;         // cat "ac2g" (launch -> kernel flow arrows)
  std::set<std::int64_t> streams;  // streams that ran kernels
};

struct RawImport {
  Profile profile;   // kernels unclassified ("other"), no shapes, no SM accounting yet
  TraceStats stats;
};

// Step 1: parse and validate. `file` is used in error messages and the provenance.
RawImport parse_kineto_text(const std::string& text, const std::string& file);
RawImport parse_kineto(const std::string& path);

// What shape inference needs from the model and plan (see README.md "Shape inference").
struct ShapeModel {
  std::int64_t tokens = 0;               // tokens per micro-batch on this rank
  std::int64_t hidden = 0;
  std::int64_t expert_intermediate = 0;
  std::int64_t routed_experts = 0;
  std::int64_t top_k = 0;
  std::int64_t ep = 1;                   // expert-parallel degree
  std::int64_t heads = 0;
  std::int64_t qk_head_dim = 0;
  std::string source;                    // e.g. "models/deepseek-v3.toml, ep=64, tokens=4096"
  // The ops of one MoE layer (layer_ops with micro_batch 1, seq_len = tokens, FP8 GEMMs), for the
  // order-matching rules of the non-grouped FP8 GEMMs. When empty, infer_shapes loads the model
  // file that `source` starts with (text before the first " (", as `trainsim import`/`replay`
  // write it) if there is one.
  std::vector<Op> layer_ops;
};

// The shape-inference settings for a trace of `model` (read from `model_path`) with `tokens`
// tokens per micro-batch on the traced rank and expert parallelism `ep`; `source` records them
// as "<model_path> (model '<name>'), ep=<ep>, tokens=<tokens>" (what profiles' provenance keeps).
ShapeModel make_shape_model(const ModelConfig& model, const std::string& model_path, std::int64_t tokens,
                            std::int64_t ep);

// The ops infer_shapes matches kernels against: layer_ops of the model's first MoE layer
// (micro_batch 1, seq_len = tokens, gemm_dtype fp8); empty for a model without MoE layers.
std::vector<Op> shape_layer_ops(const ModelConfig& m, std::int64_t tokens);

// Step 2: class per kernel (first matching rule), dtype from the rule.
void classify(Profile& p, const Classifier& c);
// Step 3: SMs available / held by concurrent communication kernels (needs classes).
void account_sms(Profile& p);
// Step 4: shapes from the model config, the phase annotations and the launch grid.
void infer_shapes(Profile& p, const ShapeModel& m);

}  // namespace trainsim::calibration
