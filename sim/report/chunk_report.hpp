#pragma once
// A scenario with [chunk_pair]: the predicted DualPipe forward+backward chunk pair beside the
// measured profile it describes (issue: predict a real profiled chunk from first principles),
// and the pair's kernel time group by group (dense GEMM, grouped GEMM, MLP weight-gradient
// GEMMs, attention, memory-bound, each communication kernel type), each group predicted by fits
// made without that group's kernels from the trace.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "step/step.hpp"

namespace trainsim {

// One group of the pair's kernels: measured (sum of the trace's kernel durations) against
// predicted (sum of the model ops' costs, no inter-kernel gaps).
struct ChunkGroup {
  std::string key;             // dense_gemm, grouped_gemm, mlp_wgrad, attention, memory_bound, a2a_dispatch, ...
  std::string label;           // for people
  double measured_us = 0;
  double predicted_us = 0;     // held out: fits made without this group's trace kernels (0 = not modelled)
  double insample_us = 0;      // with the committed calibration (every group's kernels in the fits)
  std::int64_t kernels = 0;    // trace kernels in the group
  std::int64_t ops = 0;        // model ops in the group
  std::string basis;           // how the prediction was made
  bool modelled = true;
  double error_pct() const { return measured_us > 0 ? (predicted_us - measured_us) / measured_us * 100.0 : 0.0; }
};

struct ChunkReport {
  std::string scenario, profile, source, cost_model;
  step::ChunkPairResult predicted;
  double measured_span_us = 0;
  double measured_compute_busy_us = 0;  // the main compute stream (most kernels)
  double measured_comm_busy_us = 0;     // dispatch and combine kernels (notify/layout apart)
  double measured_exposed_comm_us = 0;
  std::map<std::string, double> measured_by_group_us;  // kernel time by ChunkGroup::key
  std::map<std::string, double> measured_comm_by_class_us;
  std::vector<ChunkGroup> groups;       // in the order of the table
  // The memory-bound group by the trace's kernel class (norm, quant_cast, permute, elementwise),
  // each predicted by the memory-bound group's held-out calibration.
  std::vector<ChunkGroup> memory_kinds;
  int compute_sms = 0;                  // SMs the per-group prediction gives each op (N - comm SMs)
  std::vector<std::string> notes;       // how ops map to groups, recomputation, what is not modelled
  double span_error_pct() const {
    return (predicted.span_s * 1e6 - measured_span_us) / measured_span_us * 100.0;
  }
};

// Predicts from the model math, the calibrated cost model and the network model; the measured
// figures come from the profile's own kernel timestamps (never used by the prediction; the
// per-group predictions refit the calibration without that group's trace kernels).
ChunkReport build_chunk_report(const Scenario& sc);
std::string chunk_text(const ChunkReport& r);
nlohmann::json chunk_json(const ChunkReport& r);

}  // namespace trainsim
