#pragma once
// Sorts kernels into op classes by name with rules read from a TOML file
// (profiles/classifier.toml). Rules are tried in file order; the first that matches wins; a
// kernel no rule matches is "other". Each rule:
//   [[rule]]
//   name = "deepep-dispatch"         # for reports and the profile's `rule` field
//   class = "a2a_dispatch"           # one of op_classes()
//   contains = "internode::dispatch<" # substring of the kernel name ... or
//   regex = "..."                    # ECMAScript regex searched in the name (exactly one of the two)
//   dtype = "fp8"                    # optional: dtype the class instance computes in
//   stream = 27                      # optional: only kernels on this stream
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace trainsim::calibration {

struct Rule {
  std::string name;
  std::string op_class;
  std::string contains;                 // "" when regex is used
  std::optional<std::regex> regex;
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
