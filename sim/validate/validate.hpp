#pragma once
// Running the validation suite: every case's scenario simulated with the same code and the
// same defaults as `trainsim run` (the GPU's calibrated cost model, the network model, the
// plan's schedule), its metric computed as the source defines it, and the error against the
// published figure. Nothing here is fitted; the suite only measures.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "step/step.hpp"
#include "validate/suite.hpp"

namespace trainsim::validate {

struct CaseResult {
  const Family* family = nullptr;
  const Case* c = nullptr;
  bool expressible = false;
  std::string scenario_name, model, gpu, plan;  // from the scenario
  std::int64_t gpus = 0;
  double published = 0;      // the metric's display unit
  double trainsim = 0;       // the same metric from trainsim's output
  double error_pct = 0;      // (trainsim - published) / published x 100
  double step_s = 0;         // phase 0's step at its global batch
  step::Breakdown breakdown; // that step's parts
  double peak_memory_gib = 0;
  bool fits_memory = false;
  std::vector<std::string> notes;  // approximations the simulation names
};

// Median and maximum |error| over a set of cases.
struct Summary {
  std::string id;            // a family id, "all" or "out_of_sample"
  std::string title;
  std::size_t cases = 0;     // selected cases
  std::size_t expressible = 0;
  std::size_t not_expressible = 0;
  std::optional<double> median_abs_error_pct, max_abs_error_pct;  // empty without expressible cases
  std::string worst_case;    // the id with the largest |error|
};
Summary summarize(const std::string& id, const std::string& title, const std::vector<const CaseResult*>& rs);

struct ValidationReport {
  const Suite* suite = nullptr;
  std::string filter;                 // empty: every case
  std::vector<CaseResult> results;    // in suite order
  std::vector<Summary> families;      // one per family with a selected case
  Summary all, out_of_sample;         // every selected case; those of families not in_sample
};

// Called as each case finishes: (cases done so far, count, the case), one call at a time.
using Progress = std::function<void(std::size_t, std::size_t, const Case&)>;

// Runs the cases of `suite` that `filter` matches (case_matches; empty = all) on `jobs`
// threads; the results are in suite order whatever `jobs` is. Throws UsageError if the filter
// matches no case; a case's bad scenario throws its ConfigError (the first in suite order).
ValidationReport run_suite(const Suite& suite, const std::string& filter, const Progress& progress = {},
                           unsigned jobs = 1);

// One case: loads its scenario, simulates, computes the metric.
CaseResult run_case(const Family& f, const Case& c);

}  // namespace trainsim::validate
