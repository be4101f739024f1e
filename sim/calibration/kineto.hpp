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

// The GPU the kernels ran on, from the trace's deviceProperties (empty name: not recorded).
struct DeviceInfo {
  std::int64_t id = 0;       // the device most kernels ran on
  std::string name;          // "NVIDIA H800", "NVIDIA A100-SXM4-80GB"
  std::int64_t sms = 0;      // numSms (0 = not recorded)
  std::int64_t memory = 0;   // totalGlobalMem, bytes (0 = not recorded)
};

struct RawImport {
  Profile profile;   // kernels unclassified ("other"), no shapes, no SM accounting yet
  TraceStats stats;
  DeviceInfo device;
};

// Step 1: parse and validate. `file` is used in error messages and the provenance. Reads every
// Kineto schema in public use (PyTorch 1.8's capitalised categories "Kernel"/"Operator"/
// "Runtime" and "external id"; 1.9+'s "kernel"/"cpu_op"/"cuda_runtime"; 2.x's fractional
// timestamps relative to baseTimeNanoseconds and NCCL metadata on kernels), links each kernel
// to its launching CPU operator (External id, else the operator around its launch call) and
// keeps that operator's recorded shapes and NCCL collective metadata. Refuses, saying what it
// found: traces of devices it does not model (AMD/ROCm, MTIA, XPU, HPU, ...), traces without GPU
// kernels (CPU-only), kernels of different GPU models. parse_kineto also reads gzip files.
RawImport parse_kineto_text(const std::string& text, const std::string& file);
RawImport parse_kineto(const std::string& path);

// The profiles/hardware/<key>.toml that describes the traced GPU, or "" when none does; `why`
// then says what was compared. A hardware file matches when its name's model token (the part
// before the first '-': "a100", "h800") is a word of the device name and its SM count and
// memory agree with the trace's (when recorded; memory within 12%).
std::string hardware_key(const DeviceInfo& d, std::string* why = nullptr);

// The innermost annotation (shortest range; ties: latest start) holding each time, or -1 (also
// for a negative time, "no launch"). O((annotations + times) log annotations).
std::vector<int> innermost_annotations(const std::vector<Annotation>& anns, const std::vector<double>& times);

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
// Step 5: shapes recorded in the trace (they replace inferred ones): GEMMs, attention and
// memory-bound kernels from their launching operator's Input Dims (README "Recorded shapes"),
// NCCL kernels' bytes from their collective's element count and type. Needs classes.
void recorded_shapes(Profile& p);

}  // namespace trainsim::calibration
