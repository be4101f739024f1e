#pragma once
// A scenario with [chunk_pair]: the predicted DualPipe forward+backward chunk pair beside the
// measured profile it describes (issue: predict a real profiled chunk from first principles).
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "step/step.hpp"

namespace trainsim {

struct ChunkReport {
  std::string scenario, profile, source, cost_model;
  step::ChunkPairResult predicted;
  double measured_span_us = 0;
  double measured_compute_busy_us = 0;  // the main compute stream (most kernels)
  double measured_comm_busy_us = 0;     // dispatch and combine kernels (notify/layout apart)
  double measured_exposed_comm_us = 0;
  std::map<std::string, double> measured_by_group_us;  // kernel time by the same groups
  std::map<std::string, double> measured_comm_by_class_us;
  double span_error_pct() const {
    return (predicted.span_s * 1e6 - measured_span_us) / measured_span_us * 100.0;
  }
};

// Predicts from the model math, the calibrated cost model and the network model; the measured
// figures come from the profile's own kernel timestamps (never used by the prediction).
ChunkReport build_chunk_report(const Scenario& sc);
std::string chunk_text(const ChunkReport& r);
nlohmann::json chunk_json(const ChunkReport& r);

}  // namespace trainsim
