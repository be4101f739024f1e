#include "config/reader.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "core/input.hpp"
#include "core/limits.hpp"

namespace trainsim {

SourcePos pos_of(const toml::node& n, const std::string& fallback_file) {
  const auto& src = n.source();
  SourcePos p;
  p.file = src.path ? *src.path : fallback_file;
  p.line = src.begin.line;
  p.column = src.begin.column;
  return p;
}

static ConfigError parse_error_to_config(const toml::parse_error& e, const std::string& name) {
  SourcePos p;
  p.file = e.source().path ? *e.source().path : name;
  p.line = e.source().begin.line;
  p.column = e.source().begin.column;
  return ConfigError(p, "", fmt::format("malformed TOML: {}", e.description()));
}

toml::table parse_toml_file(const std::string& path) {
  std::string text;
  try {
    // A directory, a FIFO, an unreadable or oversized file: refused with the reason (core/input.hpp).
    text = read_input_text(path, "file", kMaxConfigBytes);
  } catch (const DataError& e) {
    throw ConfigError(e.pos(), "", std::string(e.what()).substr(e.pos().str().size() + 2));
  }
  return parse_toml_string(text, path);
}

toml::table parse_toml_string(std::string_view text, const std::string& source_name) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw parse_error_to_config(e, source_name);
  }
}

static std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(std::string_view key_in, const std::vector<std::string>& candidates) {
  // Rank by (shortcut distance, real edit distance, name): a candidate that contains the key
  // (of 3 or more characters) counts as distance 0 ("H100" ~ "h100-sxm", before "h200"); one that
  // contains a shorter key or is contained in the key counts as 1 ("pp" ~ "pp_size"); ties go
  // to the candidate with the smaller real edit distance ("nic_per_gpu" -> "nics_per_gpu", not
  // "nic"). Case does not count: names are matched as the user might type them.
  auto lower = [](std::string_view s) {
    std::string o(s);
    for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return o;
  };
  const std::string key = lower(key_in);
  std::string best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max(), best_real = best_d;
  for (const auto& cand : candidates) {
    const std::string c = lower(cand);
    const std::size_t real = edit_distance(key, c);
    std::size_t d = real;
    if (key.size() > 2 && c.find(key) != std::string::npos) d = 0;  // "h100" in "h100-sxm" beats "h200"
    else if (c.find(key) != std::string::npos || (key.size() > 2 && key.find(c) != std::string::npos))
      d = std::min<std::size_t>(d, 1);
    if (d < best_d || (d == best_d && real < best_real)) {
      best_d = d;
      best_real = real;
      best = cand;
    }
  }
  const std::size_t limit = std::max<std::size_t>(2, key.size() / 3);
  return best_d <= limit ? best : std::string();
}

Section::Section(const toml::table& t, std::string prefix, std::string file)
    : layers_{Layer{&t, {}}}, prefix_(std::move(prefix)), file_(std::move(file)) {}

Section::Section(std::vector<Layer> layers, std::string prefix, std::string file)
    : layers_(std::move(layers)), prefix_(std::move(prefix)), file_(std::move(file)) {
  TS_ASSERT(!layers_.empty() && layers_.front().table, "a Section needs a table");
}

static bool layer_has(const Section::Layer& l, std::string_view key) {
  if (l.only.empty()) return true;
  for (const auto& k : l.only)
    if (k == key) return true;
  return false;
}

const toml::node* Section::lookup(std::string_view key) const {
  for (const auto& l : layers_)
    if (layer_has(l, key))
      if (const toml::node* n = l.table->get(key)) return n;
  return nullptr;
}

std::string Section::full_key(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

bool Section::has(std::string_view key) const { return lookup(key) != nullptr; }

SourcePos Section::pos() const {
  // The first layer written in a file (not a --set override), so that "missing key" points at
  // the table where the key belongs.
  for (const auto& l : layers_) {
    const auto& src = l.table->source();
    if (src.path && *src.path != "--set" && src.begin.line > 0) return pos_of(*l.table, file_);
  }
  for (const auto& l : layers_) {
    const auto& src = l.table->source();
    if (!src.path || *src.path != "--set") return pos_of(*l.table, file_);
  }
  return pos_of(*layers_.front().table, file_);
}

SourcePos Section::pos(std::string_view key) const {
  if (const toml::node* n = lookup(key)) return pos_of(*n, file_);
  return pos();
}

void Section::fail(std::string_view key, const std::string& message) const {
  throw ConfigError(pos(key), full_key(key), message);
}

namespace {
std::atomic<const KeyLog*> g_key_log{nullptr};
void log_key(const Section& s, std::string_view key) {
  if (const KeyLog* l = g_key_log.load(std::memory_order_relaxed)) (*l)(s.full_key(key));
}
}  // namespace

void set_key_log(const KeyLog* log) { g_key_log.store(log); }
const KeyLog* key_log() { return g_key_log.load(); }

const toml::node* Section::find(std::string_view key) {
  known_.emplace(key);
  log_key(*this, key);
  return lookup(key);
}

const toml::node& Section::require(std::string_view key) {
  const toml::node* n = find(key);
  if (!n) {
    // A key written here that nobody asks for and that is close to the missing one is
    // probably the same key misspelt: say so.
    std::vector<std::string> present;
    for (const auto& l : layers_)
      for (const auto& [k, v] : *l.table) {
        (void)v;
        if (!known_.count(k.str())) present.emplace_back(k.str());
      }
    const std::string hint = closest_match(key, present);
    throw ConfigError(pos(), full_key(key),
                      hint.empty() ? std::string("missing required key")
                                   : fmt::format("missing required key (found '{}': a misspelling?)", hint));
  }
  return *n;
}

static const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

void Section::wrong_type(std::string_view key, const toml::node& n, const char* expected) const {
  throw ConfigError(pos_of(n, file_), full_key(key), fmt::format("expected {}, found {}", expected, type_name(n)));
}

static std::int64_t check_int(const Section& s, std::string_view key, std::int64_t v, std::int64_t min, std::int64_t max) {
  if (v < min || v > max) {
    if (max == std::numeric_limits<std::int64_t>::max())
      s.fail(key, fmt::format("value {} is out of range: must be at least {}", v, min));
    s.fail(key, fmt::format("value {} is out of range [{}, {}]", v, min, max));
  }
  return v;
}

std::int64_t Section::integer(std::string_view key, std::int64_t min, std::int64_t max) {
  const toml::node& n = require(key);
  auto v = n.value_exact<std::int64_t>();
  if (!v) wrong_type(key, n, "an integer");
  return check_int(*this, key, *v, min, max);
}

double Section::number(std::string_view key, double min, double max) {
  const toml::node& n = require(key);
  double v = 0;
  if (auto i = n.value_exact<std::int64_t>()) v = static_cast<double>(*i);
  else if (auto f = n.value_exact<double>()) v = *f;
  else wrong_type(key, n, "a number");
  if (!std::isfinite(v) || v < min || v > max) fail(key, fmt::format("value {} is out of range [{}, {}]", v, min, max));
  return v;
}

bool Section::boolean(std::string_view key) {
  const toml::node& n = require(key);
  auto v = n.value_exact<bool>();
  if (!v) wrong_type(key, n, "a boolean (true or false)");
  return *v;
}

std::string Section::string(std::string_view key) {
  const toml::node& n = require(key);
  auto v = n.value_exact<std::string>();
  if (!v) wrong_type(key, n, "a string");
  return *v;
}

std::string Section::choice(std::string_view key, const std::vector<std::string>& options) {
  std::string v = string(key);
  if (std::find(options.begin(), options.end(), v) == options.end()) {
    std::string list;
    for (const auto& o : options) list += (list.empty() ? "" : ", ") + o;
    std::string hint = closest_match(v, options);
    fail(key, fmt::format("unknown value '{}'; expected one of: {}{}", v, list,
                          hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
  }
  return v;
}

double Section::quantity(std::string_view key, Dim d, double min, double max) {
  const toml::node& n = require(key);
  auto s = n.value_exact<std::string>();
  if (!s) {
    if (n.is_number())
      throw ConfigError(pos_of(n, file_), full_key(key),
                        fmt::format("a bare number has no unit; write {} as a string with one of: {}", dim_name(d), dim_units(d)));
    wrong_type(key, n, "a quantity string such as \"50GB/s\"");
  }
  double v = 0;
  try {
    v = parse_quantity(*s, d);
  } catch (const QuantityError& e) {
    throw ConfigError(pos_of(n, file_), full_key(key), e.msg);
  }
  if (v < min || v > max)
    throw ConfigError(pos_of(n, file_), full_key(key),
                      fmt::format("value {} is out of range [{}, {}]", *s, format_quantity(min, d), format_quantity(max, d)));
  return v;
}

Section Section::table(std::string_view key) {
  const toml::node& n = require(key);
  if (!n.as_table()) wrong_type(key, n, "a table");
  // The sub-table of every layer that has one, in layer order; a non-table lower down is
  // shadowed by the table above it.
  std::vector<Layer> sub;
  for (const auto& l : layers_)
    if (layer_has(l, key))
      if (const toml::node* x = l.table->get(key); x && x->as_table()) sub.push_back(Layer{x->as_table(), {}});
  return Section(std::move(sub), full_key(key), file_);
}

std::vector<std::int64_t> Section::integer_array(std::string_view key, std::int64_t min, std::int64_t max) {
  const toml::node& n = require(key);
  const toml::array* a = n.as_array();
  if (!a) wrong_type(key, n, "an array of integers");
  std::vector<std::int64_t> out;
  for (const auto& el : *a) {
    auto v = el.value_exact<std::int64_t>();
    if (!v) throw ConfigError(pos_of(el, file_), full_key(key), fmt::format("expected an array of integers, found {} in it", type_name(el)));
    if (*v < min || *v > max)
      throw ConfigError(pos_of(el, file_), full_key(key), fmt::format("element {} is out of range [{}, {}]", *v, min, max));
    out.push_back(*v);
  }
  return out;
}

std::int64_t Section::integer_or(std::string_view key, std::int64_t dflt, std::int64_t min, std::int64_t max) {
  if (!find(key)) return dflt;
  return integer(key, min, max);
}
double Section::number_or(std::string_view key, double dflt, double min, double max) {
  if (!find(key)) return dflt;
  return number(key, min, max);
}
bool Section::boolean_or(std::string_view key, bool dflt) {
  if (!find(key)) return dflt;
  return boolean(key);
}
std::string Section::string_or(std::string_view key, std::string dflt) {
  if (!find(key)) return dflt;
  return string(key);
}
std::string Section::choice_or(std::string_view key, std::string dflt, const std::vector<std::string>& options) {
  if (!find(key)) return dflt;
  return choice(key, options);
}
std::optional<double> Section::opt_quantity(std::string_view key, Dim d, double min, double max) {
  if (!find(key)) return std::nullopt;
  return quantity(key, d, min, max);
}
std::optional<Section> Section::opt_table(std::string_view key) {
  if (!find(key)) return std::nullopt;
  return table(key);
}

void Section::allow(std::string_view key) {
  known_.emplace(key);
  log_key(*this, key);
}

bool Section::is_string(std::string_view key) const {
  const toml::node* n = lookup(key);
  return n && n->is_string();
}

void Section::finish() const {
  // Report the first unknown key of the top-most layer that has one, in file order, so the
  // message points at the top-most mistake.
  for (const auto& l : layers_) {
    const toml::key* first = nullptr;
    for (const auto& [k, v] : *l.table) {
      (void)v;
      if (known_.count(k.str()) || !layer_has(l, k.str())) continue;
      const auto& s = k.source().begin;
      if (!first || s.line < first->source().begin.line ||
          (s.line == first->source().begin.line && s.column < first->source().begin.column))
        first = &k;
    }
    if (!first) continue;
    const std::string first_key(first->str());
    std::vector<std::string> cands(known_.begin(), known_.end());
    std::string hint = closest_match(first_key, cands);
    std::string msg = "unknown key";
    if (!hint.empty()) {
      msg += fmt::format("; did you mean '{}'?", hint);
    } else if (!cands.empty()) {
      std::string list;
      for (const auto& c : cands) list += (list.empty() ? "" : ", ") + c;
      msg += fmt::format("; known keys here: {}", list);
    }
    SourcePos p;
    p.file = first->source().path ? *first->source().path : file_;
    p.line = first->source().begin.line;
    p.column = first->source().begin.column;
    throw ConfigError(p, full_key(first_key), msg);
  }
}

}  // namespace trainsim
