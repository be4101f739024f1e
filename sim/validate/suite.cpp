#include "validate/suite.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "config/reader.hpp"
#include "core/input.hpp"

namespace trainsim::validate {

namespace fs = std::filesystem;

std::size_t Suite::case_count() const {
  std::size_t n = 0;
  for (const auto& f : families) n += f.cases.size();
  return n;
}

namespace {

// A table of free-form string values (`[sources]`, `[assumptions]`), every key read.
std::map<std::string, std::string> string_table(Section& top, const toml::table& root, const char* key,
                                                bool required) {
  std::map<std::string, std::string> out;
  std::optional<Section> s = required ? std::optional<Section>(top.table(key)) : top.opt_table(key);
  if (!s) return out;
  if (const toml::node* n = root.get(key); n && n->as_table())
    for (const auto& [k, v] : *n->as_table()) out[std::string(k.str())] = s->string(k.str());
  s->finish();
  return out;
}

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
  });
}

}  // namespace

Family load_family(const fs::path& cases_toml, const fs::path& suite_dir) {
  const std::string file = cases_toml.string();
  const toml::table root = parse_toml_file(file);
  Section top(root, "", file);
  Family f;
  f.file = file;
  f.folder = cases_toml.parent_path().filename().string();
  f.id = top.string("family");
  if (!valid_name(f.id)) top.fail("family", "expected a short id of letters, digits, '-', '.' or '_' (e.g. \"V2\")");
  f.title = top.string("title");
  {
    const std::string m = top.string("metric");
    f.metric = find_metric(m);
    f.metric_pos = top.pos("metric");
    if (!f.metric) {
      std::vector<std::string> names;
      for (const auto& x : metrics()) names.emplace_back(x.name);
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      const std::string hint = closest_match(m, names);
      top.fail("metric", fmt::format("unknown metric '{}'{}; known: {}", m,
                                     hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), list));
    }
  }
  f.in_sample = top.string_or("in_sample", "");
  f.sources = string_table(top, root, "sources", true);
  if (f.sources.empty()) top.fail("sources", "name at least one source tag");
  f.assumptions = string_table(top, root, "assumptions", false);

  top.allow("cases");
  const toml::node* cn = root.get("cases");
  if (!cn) top.fail("cases", "missing required key: the [[cases]] of this family");
  const toml::array* arr = cn->as_array();
  if (!arr || !arr->is_array_of_tables() || arr->empty())
    throw ConfigError(pos_of(*cn, file), "cases", "expected one or more [[cases]] tables");
  std::set<std::string> names;
  std::size_t i = 0;
  for (const auto& el : *arr) {
    const toml::table& t = *el.as_table();
    Section s(t, fmt::format("cases[{}]", i++), file);
    Case c;
    c.family = f.id;
    c.pos = pos_of(t, file);
    c.name = s.string("name");
    if (!valid_name(c.name)) s.fail("name", "expected letters, digits, '-', '.' or '_'");
    if (!names.insert(c.name).second) s.fail("name", fmt::format("case '{}' is listed twice", c.name));
    c.id = f.id + "/" + c.name;
    const bool has_scenario = s.has("scenario"), has_ne = s.has("not_expressible");
    if (has_scenario == has_ne)
      s.fail(has_scenario ? "not_expressible" : "scenario",
             "give either scenario (a file) or not_expressible (why trainsim cannot state this run), not both");
    if (has_scenario) {
      const std::string rel = s.string("scenario");
      fs::path p = fs::path(rel).is_absolute() ? fs::path(rel) : cases_toml.parent_path() / rel;
      if (!is_file(p)) s.fail("scenario", fmt::format("no such file '{}'", p.string()));
      c.scenario = p.string();
      c.scenario_rel = p.lexically_normal().lexically_relative(suite_dir.lexically_normal()).generic_string();
      if (c.scenario_rel.empty()) c.scenario_rel = p.generic_string();
      s.allow("gpu");
      if (s.has("gpu")) s.fail("gpu", "gpu is taken from the scenario; give it only with not_expressible");
    } else {
      c.not_expressible = s.string("not_expressible");
      if (c.not_expressible.empty()) s.fail("not_expressible", "say why trainsim cannot state this run");
      c.gpu = s.string("gpu");
    }
    const Metric& m = *f.metric;
    if (m.published_dim) {
      c.published = s.quantity("published", *m.published_dim, 1e-300, 1e300) * m.to_display;
      c.published_text = s.string("published");
    } else {
      if (s.is_string("published"))
        s.fail("published", fmt::format("metric '{}' takes a plain number in {} (no unit string)", m.name, m.unit));
      c.published = s.number("published", 1e-300, 1e300);
      c.published_text = fmt::format("{}", c.published);
    }
    c.source = s.string("source");
    {
      bool known = false;
      for (const auto& [tag, text] : f.sources)
        if (c.source == tag || c.source.rfind(tag + " ", 0) == 0) known = true;
      if (!known) {
        std::string list;
        for (const auto& [tag, text] : f.sources) list += (list.empty() ? "" : ", ") + tag;
        s.fail("source", fmt::format("'{}' does not start with a tag of [sources] ({})", c.source, list));
      }
    }
    s.finish();
    f.cases.push_back(std::move(c));
  }
  top.finish();
  return f;
}

Suite load_suite(const fs::path& dir) {
  Suite s;
  s.dir = dir.string();
  std::vector<fs::path> tables;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && is_file(e.path() / "cases.toml")) tables.push_back(e.path() / "cases.toml");
  if (ec) throw UsageError(fmt::format("--suite: cannot read '{}': {}", dir.string(), ec.message()));
  if (tables.empty())
    throw UsageError(fmt::format("--suite: '{}' has no case tables (expected <family>/cases.toml)", dir.string()));
  std::sort(tables.begin(), tables.end());
  std::map<std::string, std::string> ids;
  for (const auto& t : tables) {
    Family f = load_family(t, dir);
    if (auto [it, ok] = ids.emplace(f.id, f.file); !ok) {
      const toml::table root = parse_toml_file(f.file);
      Section top(root, "", f.file);
      top.fail("family", fmt::format("family '{}' is also defined by {}", f.id, it->second));
    }
    s.families.push_back(std::move(f));
  }
  return s;
}

bool case_matches(const Case& c, const std::string& pattern) {
  for (const std::string* s : {&c.id, &c.family, &c.name})
    if (::fnmatch(pattern.c_str(), s->c_str(), FNM_CASEFOLD) == 0) return true;
  return false;
}

}  // namespace trainsim::validate
