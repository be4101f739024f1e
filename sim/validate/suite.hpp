#pragma once
// The validation suite: published training runs, each a trainsim scenario with the figure its
// source reports (validation/README.md has the layout, the metrics and the one rule by which
// every unpublished choice is made).
//
// A suite folder holds one sub-folder per family with a case table `cases.toml`:
//
//   family = "V2"                                  # short id, unique in the suite
//   title = "Megatron-LM on Selene, A100 80GB ..."
//   metric = "megatron_eq3_tflops_per_gpu"         # a name from validate/metric.hpp
//   in_sample = "..."                              # optional: why this family is not out of sample
//   [sources]                                      # source tags and what they stand for
//   Megatron-SC21 = "Narayanan et al., ..."
//   [assumptions]                                  # optional: approximations every case shares
//   fp16 = "..."
//   [[cases]]
//   name = "t1-gpt-1.7b"                           # unique in the family; the id is "V2/t1-gpt-1.7b"
//   scenario = "t1-gpt-1.7b.toml"                  # relative to cases.toml
//   published = "137TFLOP/s"                       # as the metric says (metric.hpp: published_dim)
//   source = "Megatron-SC21 Table 1"               # starts with a tag of [sources]
//   # or, for a run trainsim cannot state: not_expressible = "<why>" and gpu = "<GPU>" instead of scenario
//
// Loading checks the tables strictly (unknown keys, types, the metric name, the source tag,
// that each scenario file exists) and throws ConfigError naming the file, line and key; the
// scenarios themselves are loaded when the suite runs.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "validate/metric.hpp"

namespace trainsim::validate {

struct Case {
  std::string family;           // "V2"
  std::string name;             // "t1-gpt-1.7b"
  std::string id;               // "V2/t1-gpt-1.7b"
  std::string scenario;         // the scenario file (resolved path); empty when not expressible
  std::string scenario_rel;     // the same, relative to the suite folder (for reports)
  std::string not_expressible;  // why trainsim cannot state this run ("" when it can)
  std::string gpu;              // not-expressible cases only: the GPU, for the table
  double published = 0;         // in the metric's display unit
  std::string published_text;   // as written
  std::string source;           // "Megatron-SC21 Table 1"
  SourcePos pos;                // the case's table in cases.toml
};

struct Family {
  std::string id;               // "V2"
  std::string title;
  std::string file;             // its cases.toml
  std::string folder;           // the sub-folder name ("v2-megatron-sc21")
  const Metric* metric = nullptr;
  SourcePos metric_pos;
  std::string in_sample;        // empty: out of sample
  std::map<std::string, std::string> sources;      // tag -> citation
  std::map<std::string, std::string> assumptions;  // name -> text
  std::vector<Case> cases;
};

struct Suite {
  std::string dir;
  std::vector<Family> families;  // in folder-name order
  std::size_t case_count() const;
};

// Reads every <dir>/*/cases.toml. Throws UsageError if `dir` has none, ConfigError for a bad
// table.
Suite load_suite(const std::filesystem::path& dir);

// Reads one case table (`folder` is its sub-folder name, for reports).
Family load_family(const std::filesystem::path& cases_toml, const std::filesystem::path& suite_dir);

// True if `pattern` (a shell glob, case-insensitive) matches the case's id ("V2/t1-gpt-1.7b"),
// its family id ("V2") or its name ("t1-gpt-1.7b").
bool case_matches(const Case& c, const std::string& pattern);

}  // namespace trainsim::validate
