#pragma once
// Strict, position-aware reading of TOML tables.
//
// A Section reads one table given as a stack of layers (top first): a scenario's overrides over
// a referenced file, `--set` over both. A key is taken from the top-most layer that has it;
// nested tables are layered the same way. Layers are never merged or copied (toml++ drops the
// source position of copied nodes), so every value keeps the file, line and column where it
// was written. A layer may be restricted to some keys (a phase inherits only `precision` from
// [training]).
//
// Every accessor records the key it was asked for; finish() then rejects any key, in any
// layer, that nobody asked for, suggesting the closest known key ("did you mean
// 'micro_batch'?"). Every error is a ConfigError naming the file, line, column and full dotted
// key of the offending node.

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "core/error.hpp"
#include "core/units.hpp"

namespace trainsim {

SourcePos pos_of(const toml::node& n, const std::string& fallback_file = {});

// Parses a TOML file; a syntax error becomes a ConfigError with the parser's position.
toml::table parse_toml_file(const std::string& path);
toml::table parse_toml_string(std::string_view text, const std::string& source_name);

// The keys readers accept, as they ask for them: while a log is installed, every key a Section
// reads or allows (with its full dotted name, e.g. "phases[1].plan.dp") is passed to it. The
// documentation test derives the accepted keys from this (tests/test_docs.cpp), so a key added
// to a reader is a key the test checks docs/configuration.md for. Not for production use: one
// log at a time, installed and removed by one thread while no other thread reads.
using KeyLog = std::function<void(const std::string& full_key)>;
void set_key_log(const KeyLog* log);  // nullptr removes it
const KeyLog* key_log();
// Suspends the key log while reading files that are not user configuration (calibration files,
// written by `trainsim calibrate` and documented in sim/calibration/README.md).
class KeyLogPause {
 public:
  KeyLogPause() : saved_(key_log()) { set_key_log(nullptr); }
  ~KeyLogPause() { set_key_log(saved_); }
  KeyLogPause(const KeyLogPause&) = delete;
  KeyLogPause& operator=(const KeyLogPause&) = delete;

 private:
  const KeyLog* saved_;
};

// Levenshtein-based suggestion among candidates; empty if nothing is close.
std::string closest_match(std::string_view key, const std::vector<std::string>& candidates);

class Section {
 public:
  struct Layer {
    const toml::table* table = nullptr;
    std::vector<std::string> only;  // empty: every key; else just these keys
  };

  Section(const toml::table& t, std::string prefix, std::string file);
  Section(std::vector<Layer> layers, std::string prefix, std::string file);

  const std::string& prefix() const { return prefix_; }
  std::string full_key(std::string_view key) const;
  bool has(std::string_view key) const;
  bool is_string(std::string_view key) const;  // the key is present and its value is a string

  // Required values. min/max bound the value (inclusive).
  std::int64_t integer(std::string_view key, std::int64_t min, std::int64_t max);
  double number(std::string_view key, double min, double max);
  bool boolean(std::string_view key);
  std::string string(std::string_view key);
  std::string choice(std::string_view key, const std::vector<std::string>& options);
  double quantity(std::string_view key, Dim d, double min, double max);
  Section table(std::string_view key);
  std::vector<std::int64_t> integer_array(std::string_view key, std::int64_t min, std::int64_t max);

  // Optional values: the default is used only when the key is absent (documented per key).
  std::int64_t integer_or(std::string_view key, std::int64_t dflt, std::int64_t min, std::int64_t max);
  double number_or(std::string_view key, double dflt, double min, double max);
  bool boolean_or(std::string_view key, bool dflt);
  std::string string_or(std::string_view key, std::string dflt);
  std::string choice_or(std::string_view key, std::string dflt, const std::vector<std::string>& options);
  std::optional<double> opt_quantity(std::string_view key, Dim d, double min, double max);
  std::optional<Section> opt_table(std::string_view key);

  // Marks a key as known without reading it (e.g. documentation-only keys such as 'source').
  void allow(std::string_view key);

  // Rejects keys nobody asked for. Call after all accessors.
  void finish() const;

  // Position of a key's value (or of the table if the key is absent), for plan-level errors.
  SourcePos pos(std::string_view key) const;
  SourcePos pos() const;
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;

 private:
  const toml::node& require(std::string_view key);
  const toml::node* find(std::string_view key);
  const toml::node* lookup(std::string_view key) const;
  [[noreturn]] void wrong_type(std::string_view key, const toml::node& n, const char* expected) const;

  std::vector<Layer> layers_;
  std::string prefix_;
  std::string file_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace trainsim
