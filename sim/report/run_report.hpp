#pragma once
// `trainsim run`: everything a report shows, computed once, then rendered as terminal text,
// JSON (metrics.json / --json), Markdown, self-contained HTML with inline SVG charts, and a
// Perfetto timeline of one step.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "cost/training_run.hpp"
#include "model/memory.hpp"
#include "step/step.hpp"

namespace trainsim {

struct PhaseReport {
  std::string name;
  std::string kind;            // pretraining | context_extension | post_training
  std::int64_t seq_len = 0;
  std::int64_t global_batch = 0;
  std::string plan;            // "dp128 tp1 pp16 ep64 cp1 dualpipe"
  PhaseResult result;          // tokens, steps, GPU-hours, cost, energy
  step::StepResult step;       // one step at the phase's final batch
};

// A published figure beside trainsim's, with the gap in percent.
struct Comparison {
  std::string what;            // "GPU-hours, pre-training"
  double published = 0;
  double predicted = 0;
  double gap_pct() const { return published != 0 ? (predicted - published) / published * 100.0 : 0.0; }
};

// One GPU type in `trainsim compare`.
struct HardwareRow {
  std::string gpu;
  std::string plan;            // the plan used (re-planned if the original did not fit)
  bool replanned = false;
  std::string replan_note;
  double step_s = 0, gpu_hours = 0, days = 0, cost_usd = 0, mfu = 0;
  double memory_gib = 0;       // peak memory per GPU (over pipeline ranks) of the plan used
  bool fits = true;            // ... within the GPU's HBM
  std::string bottleneck;      // dominant non-compute part of the step
  // Where this GPU's costs come from, class by class (measured / fitted / transferred and the
  // basis), and what `compare` set to make the inputs like-for-like (filled by compare).
  std::vector<calibration::CostModel::ClassProvenance> provenance;
  std::vector<std::string> setup;  // e.g. "A100 has no FP8 tensor cores: training.precision.gemm = bf16"
};

struct RunReport {
  std::string scenario_file, scenario, description, model, gpu;
  std::int64_t gpus = 0;
  double price_per_gpu_hour = 0;
  std::string cost_model;      // CostModel::describe()
  std::vector<PhaseReport> phases;
  RunResult run;
  MemoryReport memory;
  std::map<std::string, std::string> assumptions;
  std::vector<std::string> notes;           // approximations the simulation made
  std::string reference_source;             // where the published figures come from
  std::vector<Comparison> comparisons;      // empty without a [reference] table
  std::vector<HardwareRow> hardware;        // filled by `compare`
};

// Simulates the whole run of a scenario (every phase, the batch ramp) and gathers the report,
// with the GPU's calibrated cost model (calibration::load_cost_model), or the one given.
RunReport build_run_report(const Scenario& sc);
RunReport build_run_report(const Scenario& sc, const calibration::CostModel& cost);

nlohmann::json run_json(const RunReport& r);       // the `run --json` contract (+ more)
std::string run_text(const RunReport& r);          // terminal report
std::string run_markdown(const RunReport& r);      // report.md
std::string run_html(const RunReport& r);          // report.html (self-contained, inline SVG)
nlohmann::json run_timeline(const RunReport& r);   // timeline.json (Chrome Trace Event / Perfetto)

// Writes report.md, report.html, metrics.json and timeline.json into `dir` (created if
// missing). Every file is rendered before any is written, and each is written atomically.
void write_run_outputs(const RunReport& r, const std::string& dir);

}  // namespace trainsim
