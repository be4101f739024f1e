#pragma once
// Sorts kernels into op classes by name with rules read from a TOML file
// (profiles/classifier.toml). Rules are tried in file order; the first that matches wins; a
// kernel no rule matches is "other". Each rule:
//   [[rule]]
//   name = "deepep-dispatch"         # for reports and the profile's `rule` field
//   class = "a2a_dispatch"           # one of op_classes()
//   contains = "internode::dispatch<" # substring of the kernel name ... or
//   regex = "..."                    # RE2 regex searched in the name (exactly one of the two)
//   dtype = "fp8"                    # optional: dtype the class instance computes in
//   stream = 27                      # optional: only kernels on this stream
//
// Matching is bounded in time and memory whatever the rules or names: regexes are RE2 (a
// linear-time automaton, no backtracking, no recursion: a pattern such as (a*)*b cannot blow
// up, and a kernel name of megabytes cannot overflow the stack), compiled with a memory budget
// (kMaxRegexMemory; a pattern that needs more is refused when the file is read), patterns are
// at most kMaxPatternBytes long, and a kernel name is matched on its first kMaxNameBytes bytes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace re2 {
class RE2;
}

namespace trainsim::calibration {

inline constexpr std::size_t kMaxPatternBytes = 4096;
inline constexpr std::int64_t kMaxRegexMemory = 8 << 20;  // bytes per compiled rule
inline constexpr std::size_t kMaxNameBytes = 1 << 20;      // of a kernel name, for matching

struct Rule {
  std::string name;
  std::string op_class;
  std::string contains;                 // "" when regex is used
  std::shared_ptr<const re2::RE2> regex;  // null when `contains` is used
  std::string pattern;                  // the regex text (for messages)
  std::string dtype;
  std::optional<std::int64_t> stream;
  SourcePos pos;
};

struct Match {
  std::string op_class = "other";
  std::string rule;   // "" = no rule matched
  std::string dtype;
};

class Classifier {
 public:
  static Classifier load(const std::string& path);
  static Classifier parse(const std::string& toml_text, const std::string& source_name);

  Match classify(const std::string& kernel_name, std::int64_t stream) const;
  const std::vector<Rule>& rules() const { return rules_; }
  const std::string& source() const { return source_; }

 private:
  std::vector<Rule> rules_;
  std::string source_;
};

}  // namespace trainsim::calibration
