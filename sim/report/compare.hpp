#pragma once
// `trainsim compare`: the same model and token budget on each GPU type (and, optionally, each
// pipeline schedule), re-planned when the scenario's plan does not fit a GPU's memory.
#include <string>
#include <vector>

#include "report/run_report.hpp"

namespace trainsim {

struct CompareRequest {
  std::string scenario_file;
  std::vector<std::string> sets;       // --set overrides applied to every variant
  std::vector<std::string> gpus;       // hardware names
  std::vector<std::string> schedules;  // empty: the scenario's own
};

// The scenario's own report with `hardware` filled: one row per GPU (x schedule); no GPUs: the
// scenario's own. Re-planning: a schedule that holds a different number of stages per rank
// than the scenario's (dualpipev 2, the others 1) keeps an explicit layer_split and its stages,
// on half (or twice) the ranks with dp scaled in every phase; when a variant's peak memory
// exceeds the GPU's HBM, recompute is raised to "full"; if it still does not fit, the row says
// so and is simulated anyway (marked). Each row carries the peak memory per GPU of its plan.
RunReport compare_hardware(const CompareRequest& req);

std::string compare_text(const RunReport& r);

}  // namespace trainsim
