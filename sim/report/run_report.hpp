#pragma once
// `trainsim run`: everything a report shows, computed once, then rendered as terminal text,
// JSON (metrics.json / --json), Markdown, self-contained HTML with inline SVG charts, and a
// Perfetto timeline of one step.

#include <map>
#include <memory>
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

// Who made a report, from what and when. Every output (text, JSON, Markdown, HTML) shows it.
// The command line is the one that reproduces the figures: output options (--out, --json) are
// left out. The date is SOURCE_DATE_EPOCH's when that is set (reproducible reports), else the
// time of the run; the commit is the git commit trainsim was built from, or TRAINSIM_COMMIT's
// value when that is set (cli/provenance.cpp).
struct Provenance {
  std::string command;                 // "trainsim run scenarios/x.toml --set plan.pp=8"
  std::vector<std::string> overrides;  // the --set options as given, in order
  std::string version;                 // trainsim version
  std::string commit;                  // "3ef7efb", "3ef7efb-dirty", "unknown (...)"
  std::string date;                    // ISO 8601 UTC, e.g. "2025-06-01T12:00:00Z (SOURCE_DATE_EPOCH)"
};

struct PhaseReport {
  std::string name;
  std::string kind;            // pretraining | context_extension | post_training
  std::int64_t seq_len = 0;
  std::int64_t global_batch = 0;
  std::string plan;            // "dp128 tp1 pp16 ep64 cp1 dualpipe"
  PhaseResult result;          // tokens, steps, GPU-hours, cost, energy (priced runs only)
  step::StepResult step;       // one step at the phase's final batch (priced runs only)
  MemoryReport memory;         // memory per GPU under this phase's plan and sequence length
};

// One pipeline rank's memory need beyond the GPU's HBM.
struct RankShortfall {
  std::int64_t rank = 0;
  double need = 0, shortfall = 0;  // bytes
};
std::vector<RankShortfall> shortfalls(const MemoryReport& m);  // ranks that do not fit, in order

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
  bool fits = true;            // false: the plan does not fit this GPU even re-planned; not priced
  std::string fit_note;        // why not: "needs 91.0 GiB on pipeline rank 0 of 74.5 GiB"
  double step_s = 0, gpu_hours = 0, days = 0, cost_usd = 0, mfu = 0;
  double memory_gib = 0;       // peak memory per GPU (over pipeline ranks) of the plan used
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
  Provenance provenance;                    // filled by the command (cli/provenance.cpp)
  // False when some phase's plan does not fit GPU memory: then nothing is simulated or priced
  // (phases carry their memory only) and `run` exits with status 3.
  bool priced = true;
  std::shared_ptr<const RunReport> baseline;  // `run --baseline`: the unmodified scenario

  bool what_if() const { return !provenance.overrides.empty(); }
  bool fits() const;            // every phase fits memory
  // The scenario name, and for a what-if what changed: "x (what-if: plan.pp=8, ...)".
  std::string title() const;
};

// One line of `run --baseline`: a figure of the baseline and of the what-if. Absent values (a
// run that does not fit is not priced) are empty.
struct DeltaRow {
  std::string what;            // "pre-training: step time", "total: cost"
  std::string unit;            // s | usd | hours | days | pct | gib | tokens_s | mwh | bool
  std::optional<double> baseline, what_if;
};
std::vector<DeltaRow> baseline_rows(const RunReport& what_if);  // empty without a baseline
std::string delta_value_text(const DeltaRow& d, const std::optional<double>& v);  // "20.29 s", "$5.624M", "n/a"
std::string delta_change_text(const DeltaRow& d);  // "+1.20 s (+5.9%)", "" when a side is absent

// Memory per GPU of the scenario's main plan on the layer split its step runs (a balanced split is
// the step's cost-balanced one, step::step_setup, which can differ from the memory model's own
// roofline split, model/layer_split.hpp), with `cost`.
MemoryReport memory_as_run(const Scenario& sc, const calibration::CostModel& cost);
// The same for every phase of the scenario (its plan, sequence length and batch), with the GPU's
// calibrated cost model.
std::vector<MemoryReport> memory_per_phase(const Scenario& sc);
std::vector<MemoryReport> memory_per_phase(const Scenario& sc, const calibration::CostModel& cost);

// Simulates the whole run of a scenario (every phase, the batch ramp) and gathers the report,
// with the GPU's calibrated cost model (calibration::load_cost_model), or the one given.
RunReport build_run_report(const Scenario& sc);
RunReport build_run_report(const Scenario& sc, const calibration::CostModel& cost);
// The same, but simulated and priced even where the memory model says a phase does not fit
// (`fits()` still says so): for runs that are known to have happened, such as the validation
// suite's published ones, whose time is measured whatever trainsim's memory model thinks.
RunReport build_run_report_even_if_unfit(const Scenario& sc);

nlohmann::json run_json(const RunReport& r);       // the `run --json` contract (+ more)
std::string run_text(const RunReport& r);          // terminal report
std::string run_markdown(const RunReport& r);      // report.md
std::string run_html(const RunReport& r);          // report.html (self-contained, inline SVG)
nlohmann::json run_timeline(const RunReport& r);   // timeline.json (Chrome Trace Event / Perfetto)

// Writes report.md, report.html, metrics.json and timeline.json into `dir` (created if
// missing). Every file is rendered before any is written, and each is written atomically. A
// run that is not priced (does not fit memory) has no step to show: its timeline.json is an
// empty trace whose metadata says why.
void write_run_outputs(const RunReport& r, const std::string& dir);

}  // namespace trainsim
