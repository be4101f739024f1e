#pragma once
// `trainsim calibrate`: turns measured inputs (kernel profiles, measurement tables) into a
// Calibration for one GPU. Which input feeds which class, how points measured on another GPU
// are used (same die: as measured; otherwise transferred by rule) and how the held-out errors
// are formed is documented in sim/calibration/README.md ("trainsim calibrate").
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "calibration/calibration_file.hpp"
#include "calibration/fit.hpp"
#include "calibration/profile.hpp"
#include "config/config.hpp"

namespace trainsim::calibration {

// Groups of a profile's kernels that can be left out of the fits (held-out predictions of that
// group, e.g. the chunk-pair report): dense_gemm (non-grouped GEMMs outside mlp(W)),
// grouped_gemm, mlp_wgrad (the GEMMs launched in mlp(W)), attention, memory_bound.
const std::vector<std::string>& trace_groups();

struct CalibrateInputs {
  HardwareConfig hardware;                  // the GPU calibrated for
  // Specs of the GPUs that tables and profiles were measured on, by profiles/hardware name.
  std::function<HardwareConfig(const std::string&)> hardware_of;
  const ModelConfig* model = nullptr;       // the profiled model (attention dims, norm widths)
  std::vector<std::string> profile_paths;   // *.profile.jsonl
  std::vector<std::string> table_paths;     // *.toml measurement tables
  std::string command;
  std::set<std::string> exclude_trace;      // trace_groups() left out of every fit
  // profiles/mamf.toml (measured maximum matmul throughput per GPU and dtype): the transfer rule
  // of GEMM classes fitted on another GPU uses it (README "Which points a class uses"). "" = no
  // table: such classes are transferred by spec peak ratios without a ceiling, and say so.
  std::string mamf_path;
};

// One measured point and how well the calibration predicts it (the printed tables).
struct PointResidual {
  std::string cls;     // "gemm_fp8", "attention_fwd", "memory_bound.norm", "network.ib", ...
  std::string source;
  double measured_us = 0;
  double rel = 0;      // in-sample: predicted / measured - 1
};

struct CalibrateResult {
  Calibration cal;
  std::vector<PointResidual> points;
  std::vector<std::string> notes;  // rejected columns, classes left to a rule, ...
};

// SMs a kernel could use: the SMs not held by communication, and no more than its blocks
// (DeepGEMM's persistent kernels launch one block per SM they were told to use).
std::int64_t kernel_sms(const KernelRecord& k);

// Attention model FLOPs of a trace kernel (causal; backward = 2x forward), from its shape
// (m = n = tokens, k = q/k head dim, groups = heads) and the value head dim.
double attention_flops(const Shape& s, std::int64_t v_head_dim, bool backward);

// Attention backward ops in a profile: each FlashAttention backward is a preprocess, main and
// postprocess kernel; one op = a run of attn_bwd kernels on one stream starting at a
// preprocess kernel. Returns index groups into p.kernels.
std::vector<std::vector<std::size_t>> attention_bwd_ops(const Profile& p);

// The trace group of a kernel (trace_groups()), "" for communication and unclassified kernels.
std::string trace_group(const KernelRecord& k);

// Bytes a profile's memory-bound kernel moves, from its name, launch grid and the GEMM it feeds
// (README "Memory-bound kernels of a trace"); 0 when not determined. `kind` gets norm | cast.
double trace_kernel_bytes(const Profile& p, std::size_t index, std::int64_t tokens, std::string& kind);

CalibrateResult calibrate(const CalibrateInputs& in);

// The inputs of a calibration file's recorded command (`trainsim calibrate INPUT... --gpu G
// [--model M] -o OUT`; paths relative to `root`, no spaces in them), to refit it, e.g. without
// some trace groups. `model` receives the --model file's config. Throws DataError on a command
// that is not a calibrate command.
CalibrateInputs inputs_from_command(const std::string& command, const std::filesystem::path& root, ModelConfig& model);

}  // namespace trainsim::calibration
