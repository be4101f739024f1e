#include "calibration/classifier.hpp"

#include <cstdint>

#include <fmt/format.h>
#include <re2/re2.h>

#include "calibration/profile.hpp"
#include "config/reader.hpp"

namespace trainsim::calibration {

namespace {

void build(const toml::table& root, const std::string& file, std::vector<Rule>& out) {
  Section top(root, "", file);
  top.integer("version", 1, 1);
  top.allow("rule");
  top.finish();
  const toml::node* node = root.get("rule");
  if (node == nullptr) top.fail("rule", "no [[rule]] entries: a classifier needs at least one rule");
  const toml::array* arr = node->as_array();
  if (arr == nullptr || arr->empty())
    top.fail("rule", "expected an array of tables ([[rule]] entries), at least one");
  std::size_t i = 0;
  for (const toml::node& el : *arr) {
    const std::string prefix = fmt::format("rule[{}]", i++);
    const toml::table* t = el.as_table();
    if (t == nullptr) throw ConfigError(pos_of(el, file), prefix, "expected a table ([[rule]])");
    Section s(*t, prefix, file);
    Rule r;
    r.pos = s.pos();
    r.name = s.string("name");
    r.op_class = s.choice("class", op_classes());
    const bool has_contains = s.has("contains"), has_regex = s.has("regex");
    if (has_contains == has_regex) s.fail("contains", "give exactly one of 'contains' and 'regex'");
    if (has_contains) {
      r.contains = s.string("contains");
      if (r.contains.empty()) s.fail("contains", "must not be empty");
    } else {
      r.pattern = s.string("regex");
      if (r.pattern.empty()) s.fail("regex", "must not be empty");
      if (r.pattern.size() > kMaxPatternBytes)
        s.fail("regex", fmt::format("is {} bytes long; a rule's pattern may have at most {}", r.pattern.size(),
                                    kMaxPatternBytes));
      RE2::Options opt;
      opt.set_log_errors(false);
      opt.set_max_mem(kMaxRegexMemory);
      auto re = std::make_shared<const RE2>(r.pattern, opt);
      if (!re->ok())
        s.fail("regex", fmt::format("not a valid RE2 regular expression (github.com/google/re2/wiki/Syntax): {}",
                                    re->error()));
      r.regex = std::move(re);
    }
    r.dtype = s.choice_or("dtype", "", {"", "fp8", "bf16", "fp16", "fp32", "int64", "mixed"});
    if (s.has("stream")) r.stream = s.integer("stream", 0, INT64_MAX);
    s.finish();
    for (const auto& prev : out)
      if (prev.name == r.name)
        s.fail("name", fmt::format("duplicate rule name '{}' (first at {})", r.name, prev.pos.str()));
    out.push_back(std::move(r));
  }
}

}  // namespace

Classifier Classifier::load(const std::string& path) {
  Classifier c;
  const toml::table root = parse_toml_file(path);
  build(root, path, c.rules_);
  c.source_ = path;
  return c;
}

Classifier Classifier::parse(const std::string& toml_text, const std::string& source_name) {
  Classifier c;
  const toml::table root = parse_toml_string(toml_text, source_name);
  build(root, source_name, c.rules_);
  c.source_ = source_name;
  return c;
}

Match Classifier::classify(const std::string& kernel_name, std::int64_t stream) const {
  for (const Rule& r : rules_) {
    if (r.stream && *r.stream != stream) continue;
    const std::string_view name(kernel_name.data(), std::min(kernel_name.size(), kMaxNameBytes));
    const bool hit = r.regex ? RE2::PartialMatch(name, *r.regex) : name.find(r.contains) != std::string_view::npos;
    if (hit) return Match{r.op_class, r.name, r.dtype};
  }
  return Match{};
}

}  // namespace trainsim::calibration
