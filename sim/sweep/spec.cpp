#include "sweep/spec.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "config/reader.hpp"
#include "config/scenario.hpp"
#include "core/input.hpp"
#include "core/limits.hpp"
#include "sweep/identity.hpp"

namespace fs = std::filesystem;

namespace trainsim::sweep {

std::string column_name(const std::string& key) {
  std::string out;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out = "k_" + out;
  return out;
}

std::size_t SweepSpec::size() const {
  std::size_t n = 1;
  for (const auto& d : dims) n *= d.settings.size();
  return n;
}

std::vector<std::string> Point::sets() const {
  std::vector<std::string> out;
  out.reserve(overrides.size());
  for (const auto& o : overrides) out.push_back(o.key + "=" + o.toml);
  return out;
}

Point point_at(const SweepSpec& spec, std::size_t index) {
  Point p;
  p.index = index;
  std::vector<std::size_t> digit(spec.dims.size());
  std::size_t rest = index;
  for (std::size_t i = spec.dims.size(); i-- > 0;) {
    const std::size_t n = spec.dims[i].settings.size();
    digit[i] = rest % n;
    rest /= n;
  }
  for (std::size_t i = 0; i < spec.dims.size(); ++i)
    for (const auto& o : spec.dims[i].settings[digit[i]]) p.overrides.push_back(o);
  std::vector<std::string> lines, files;
  for (const auto& o : p.overrides) {
    lines.push_back(o.key + "=" + o.toml);
    if (!o.file_sha256.empty()) files.push_back(o.key + " file sha256 " + o.file_sha256);
  }
  std::sort(lines.begin(), lines.end());
  std::sort(files.begin(), files.end());
  for (const auto& l : lines) p.canonical += l + "\n";
  std::string id_input = spec.base_hash + "\n" + p.canonical;
  for (const auto& f : files) id_input += f + "\n";
  p.id = sha256_hex(id_input).substr(0, 32);
  return p;
}

namespace {

std::string read_bytes(const std::string& path) { return read_input_text(path, "file"); }

std::string quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    switch (c) {
      case '"': q += "\\\""; break;
      case '\\': q += "\\\\"; break;
      case '\n': q += "\\n"; break;
      case '\t': q += "\\t"; break;
      case '\r': q += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) q += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else q += c;
    }
  }
  return q + "\"";
}

bool bare_key(const std::string& k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string real_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// A value as TOML text (arrays and tables inline, table keys in sorted order).
std::string toml_text(const toml::node& n, const std::string& file, const std::string& key) {
  if (auto v = n.as_integer()) return fmt::format("{}", v->get());
  if (auto v = n.as_floating_point()) return real_text(v->get());
  if (auto v = n.as_boolean()) return v->get() ? "true" : "false";
  if (auto v = n.as_string()) return quote(v->get());
  if (auto a = n.as_array()) {
    std::string s = "[";
    for (std::size_t i = 0; i < a->size(); ++i) s += (i ? ", " : "") + toml_text(*a->get(i), file, key);
    return s + "]";
  }
  if (auto t = n.as_table()) {
    std::string s = "{";
    bool first = true;
    for (const auto& [k, v] : *t) {
      const std::string ks(k.str());
      s += (first ? " " : ", ") + (bare_key(ks) ? ks : quote(ks)) + " = " + toml_text(v, file, key);
      first = false;
    }
    return s + (first ? "}" : " }");
  }
  throw ConfigError(pos_of(n, file), key, "dates and times are not scenario values");
}

// The dotted leaves of a value written at `key` (the key itself unless it is a non-empty table).
void leaf_keys(const std::string& key, const toml::node& n, std::vector<std::string>& out) {
  const toml::table* t = n.as_table();
  if (!t || t->empty()) {
    out.push_back(key);
    return;
  }
  for (const auto& [k, v] : *t) leaf_keys(key + "." + std::string(k.str()), v, out);
}

Override override_of(const std::string& key, const toml::node& n, const std::string& file) {
  Override o;
  o.key = key;
  o.toml = toml_text(n, file, key);
  o.display = o.toml;
  leaf_keys(key, n, o.leaves);
  if (auto v = n.as_integer()) {
    o.kind = Override::Kind::Integer;
    o.integer = v->get();
  } else if (auto f = n.as_floating_point()) {
    o.kind = Override::Kind::Real;
    o.real = f->get();
  } else if (auto b = n.as_boolean()) {
    o.kind = Override::Kind::Boolean;
    o.integer = b->get() ? 1 : 0;
  } else if (auto s = n.as_string()) {
    o.display = s->get();
  }
  return o;
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Checks a (possibly quoted-with-dots) scenario key: dot-separated bare parts.
void check_key(const std::string& key, const SourcePos& pos, const std::string& where) {
  bool ok = !key.empty() && key.front() != '.' && key.back() != '.' && key.find("..") == std::string::npos;
  for (char c : key) ok = ok && (is_key_char(c) || c == '.');
  if (!ok)
    throw ConfigError(pos, where, fmt::format("'{}' is not a scenario key; write dotted keys such as \"plan.pp\"", key));
}

// Flattens nested tables into dotted keys; calls leaf(key, node) for every non-table value.
template <class F>
void flatten(const toml::table& t, const std::string& prefix, F&& leaf) {
  for (const auto& [k, v] : t) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const toml::table* sub = v.as_table()) {
      if (sub->empty()) leaf(key, v);
      else flatten(*sub, key, leaf);
    } else {
      leaf(key, v);
    }
  }
}

bool before(const SourcePos& a, const SourcePos& b) {
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

// A scenario key with phases by index, phase 0 as [plan] / [training] (as --set reads them).
std::string canonical_key(const std::string& key, const std::vector<std::string>& phase_names) {
  if (key.rfind("phases.", 0) != 0) return key;
  const auto dot = key.find('.', 7);
  const std::string which = key.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
  const std::string rest = dot == std::string::npos ? std::string() : key.substr(dot + 1);
  std::size_t index = phase_names.size();
  if (!which.empty() && which.size() < 7 && std::all_of(which.begin(), which.end(), [](char c) { return c >= '0' && c <= '9'; }))
    index = std::stoul(which);
  else if (auto it = std::find(phase_names.begin(), phase_names.end(), which); it != phase_names.end())
    index = static_cast<std::size_t>(it - phase_names.begin());
  if (index >= phase_names.size() || rest.empty()) return key;
  if (index == 0) return rest.rfind("plan", 0) == 0 && (rest.size() == 4 || rest[4] == '.') ? rest : "training." + rest;
  return fmt::format("phases.{}.{}", index, rest);
}

}  // namespace

Override make_override(const std::string& key, const toml::node& value, const std::string& file) {
  return override_of(key, value, file);
}

void hash_inputs(SweepSpec& spec, const Scenario& base) {
  std::string hashed = std::string("trainsim ") + TRAINSIM_VERSION + "\n" + build_identity() + "\ndata " + data_identity() +
                       "\n" + read_bytes(spec.scenario);
  {
    // The files the scenario reads, named relative to its folder, so that the same tree under
    // another path (or the scenario given by a relative or an absolute path) gives the same ids.
    const fs::path dir = fs::path(spec.scenario_abs).parent_path();
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& [file, t] : base.sources->files) {
      (void)t;
      std::error_code ec;
      const fs::path abs = fs::weakly_canonical(fs::absolute(file), ec);
      files.push_back({(ec ? fs::path(file) : abs).lexically_relative(dir).generic_string(), read_bytes(file)});
    }
    std::sort(files.begin(), files.end());
    for (const auto& [name, bytes] : files) hashed += "\n--- " + name + "\n" + bytes;
  }
  spec.base_hash = sha256_hex(hashed);
  // A string value that names an existing file (a model, a hardware file): its bytes are part
  // of the point's identity. Looked up as the scenario would (beside the scenario, in the
  // current folder, in the data folder).
  for (auto& d : spec.dims)
    for (auto& setting : d.settings)
      for (auto& o : setting) {
        if (o.kind != Override::Kind::Text || o.display.empty() || o.display.size() > 4096) continue;
        for (const fs::path& c : {fs::path(spec.scenario).parent_path() / o.display, fs::path(o.display),
                                  data_dir() / o.display, data_dir() / "profiles" / "hardware" / (o.display + ".toml")}) {
          std::error_code ec;
          if (fs::is_regular_file(c, ec)) {
            o.file_sha256 = sha256_hex(read_bytes(c.string()));
            break;
          }
        }
      }
}

SweepSpec load_sweep(const std::string& path) {
  const toml::table root = parse_toml_file(path);
  SweepSpec spec;
  spec.file = path;
  Section top(root, "", path);
  spec.name = top.string_or("name", fs::path(path).stem().string());
  if (spec.name.empty()) top.fail("name", "a sweep name must not be empty");
  {
    // The default database is "<name>.sqlite" in the current folder: the name must not lead
    // out of it ("../x", "/tmp/x") or hide the file (".x").
    const bool plain = spec.name.size() <= 128 && spec.name.front() != '.' &&
                       std::all_of(spec.name.begin(), spec.name.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                                c == '_' || c == '.';
                       });
    if (!plain)
      top.fail("name", fmt::format("'{}' is not a plain name: use letters, digits, '-', '_' and '.' (not first), at most 128 "
                                   "characters; it names the default database <name>.sqlite in the current folder",
                                   spec.name));
  }
  spec.description = top.string_or("description", "");
  const std::string scen = top.string("scenario");
  {
    fs::path p = fs::path(scen);
    if (p.is_relative()) p = fs::path(path).parent_path() / p;
    p = p.lexically_normal();
    if (!is_file(p)) top.fail("scenario", fmt::format("no such scenario file '{}'", p.string()));
    spec.scenario = p.string();
    std::error_code ec;
    const fs::path abs = fs::weakly_canonical(fs::absolute(p), ec);
    spec.scenario_abs = ec ? fs::absolute(p).lexically_normal().string() : abs.string();
  }

  // [axes]: every leaf an array of at least one value.
  top.allow("axes");
  if (const toml::node* an = root.get("axes")) {
    const toml::table* at = an->as_table();
    if (!at) throw ConfigError(pos_of(*an, path), "axes", "expected a table of scenario keys, each with an array of values");
    flatten(*at, "", [&](const std::string& key, const toml::node& v) {
      const std::string full = "axes." + key;
      check_key(key, pos_of(v, path), full);
      const toml::array* arr = v.as_array();
      if (!arr)
        throw ConfigError(pos_of(v, path), full, fmt::format("expected an array of values, e.g. [{}]", toml_text(v, path, full)));
      if (arr->empty()) throw ConfigError(pos_of(v, path), full, "an axis needs at least one value");
      Dimension d;
      d.name = key;
      d.pos = pos_of(v, path);
      d.keys = {key};
      std::set<std::string> seen;
      for (const auto& el : *arr) {
        Override o = override_of(key, el, path);
        if (!seen.insert(o.toml).second)
          throw ConfigError(pos_of(el, path), full, fmt::format("value {} is listed twice", o.toml));
        d.settings.push_back({std::move(o)});
      }
      spec.dims.push_back(std::move(d));
    });
  }

  // [[link]]: values = [ {key = value, ...}, ... ], the same keys in every entry.
  top.allow("link");
  if (const toml::node* ln = root.get("link")) {
    const toml::array* arr = ln->as_array();
    if (!arr || !arr->is_array_of_tables())
      throw ConfigError(pos_of(*ln, path), "link", "expected an array of tables ([[link]])");
    std::size_t gi = 0;
    for (const auto& el : *arr) {
      ++gi;
      const toml::table& g = *el.as_table();
      const std::string gkey = fmt::format("link[{}]", gi);
      Section gs(g, gkey, path);
      Dimension d;
      d.name = gs.string_or("name", gkey);
      gs.allow("values");
      gs.finish();
      const toml::node* vn = g.get("values");
      if (!vn) gs.fail("values", "missing required key: an array of tables of overrides, e.g. [{ \"plan.pp\" = 8, \"plan.dp\" = 256 }]");
      const toml::array* va = vn->as_array();
      if (!va || !va->is_array_of_tables())
        throw ConfigError(pos_of(*vn, path), gkey + ".values", "expected an array of tables of overrides, e.g. [{ \"plan.pp\" = 8, \"plan.dp\" = 256 }]");
      if (va->empty()) throw ConfigError(pos_of(*vn, path), gkey + ".values", "a link group needs at least one entry");
      d.pos = pos_of(*vn, path);
      std::set<std::string> seen;
      for (std::size_t i = 0; i < va->size(); ++i) {
        const toml::node& entry = *va->get(i);
        const std::string ekey = fmt::format("{}.values[{}]", gkey, i + 1);
        std::map<std::string, Override> ov;
        flatten(*entry.as_table(), "", [&](const std::string& key, const toml::node& v) {
          check_key(key, pos_of(v, path), ekey + "." + key);
          ov.emplace(key, override_of(key, v, path));
        });
        if (ov.empty()) throw ConfigError(pos_of(entry, path), ekey, "an entry needs at least one key = value");
        std::vector<std::string> keys;
        for (const auto& [k, o] : ov) keys.push_back(k);
        if (i == 0) {
          d.keys = keys;
        } else if (keys != d.keys) {
          std::string missing, extra;
          for (const auto& k : d.keys)
            if (!ov.count(k)) missing += (missing.empty() ? "" : ", ") + k;
          for (const auto& k : keys)
            if (std::find(d.keys.begin(), d.keys.end(), k) == d.keys.end()) extra += (extra.empty() ? "" : ", ") + k;
          throw ConfigError(pos_of(entry, path), ekey,
                            fmt::format("every entry of a link group sets the same keys as the first{}{}",
                                        missing.empty() ? "" : "; missing: " + missing,
                                        extra.empty() ? "" : "; not in the first entry: " + extra));
        }
        std::vector<Override> setting;
        std::string canon;
        for (auto& [k, o] : ov) {
          canon += o.key + "=" + o.toml + "\n";
          setting.push_back(std::move(o));
        }
        if (!seen.insert(canon).second) throw ConfigError(pos_of(entry, path), ekey, "this entry is listed twice");
        d.settings.push_back(std::move(setting));
      }
      spec.dims.push_back(std::move(d));
    }
  }
  top.finish();
  if (spec.dims.empty())
    throw ConfigError(pos_of(root, path), "axes", "a sweep needs at least one axis ([axes]) or link group ([[link]])");
  {
    // The work limit on points (core/limits.hpp), with the product computed without overflow.
    std::uint64_t n = 1;
    for (const auto& d : spec.dims) {
      n = d.settings.size() == 0 ? 0 : (n > kMaxSweepPoints ? n : n * d.settings.size());
      if (n > kMaxSweepPoints)
        throw ConfigError(d.pos, d.name == d.keys.front() && d.keys.size() == 1 ? "axes." + d.name : d.name,
                          fmt::format("the sweep has more than {} points with this dimension ({} settings); the work limit "
                                      "is {} points per sweep (docs/limits.md)",
                                      kMaxSweepPoints, d.settings.size(), kMaxSweepPoints));
    }
  }

  std::stable_sort(spec.dims.begin(), spec.dims.end(), [](const Dimension& a, const Dimension& b) { return before(a.pos, b.pos); });
  std::map<std::string, const Dimension*> owner;
  for (const auto& d : spec.dims)
    for (const auto& k : d.keys) {
      auto [it, inserted] = owner.emplace(k, &d);
      if (!inserted)
        throw ConfigError(d.pos, d.name == k ? "axes." + k : d.name,
                          fmt::format("key '{}' is already varied by {} (line {})", k,
                                      it->second->name == k ? "axes." + k : it->second->name, it->second->pos.line));
      spec.keys.push_back(k);
    }
  // Prefix conflicts: "plan" and "plan.pp" cannot both be set.
  for (const auto& [k, d] : owner) {
    auto next = owner.upper_bound(k);
    if (next != owner.end() && next->first.rfind(k + ".", 0) == 0)
      throw ConfigError(next->second->pos, next->first, fmt::format("key '{}' is inside '{}', which the sweep also sets", next->first, k));
  }

  // The base scenario must be valid by itself; its bytes (and the files it reads) identify the points.
  const Scenario base = load_scenario(spec.scenario);
  hash_inputs(spec, base);

  // What the drop rule compares (keys_to_drop): the keys the base file writes, and the keys
  // each override writes, with phases by index.
  {
    std::vector<std::string> names;
    for (const auto& ph : base.phases) names.push_back(ph.training.name);
    for (auto& d : spec.dims)
      for (auto& setting : d.settings)
        for (auto& o : setting)
          for (auto& leaf : o.leaves) leaf = canonical_key(leaf, names);
    const toml::table base_root = parse_toml_file(spec.scenario);
    for (const auto& [k, v] : base_root) {
      const std::string head(k.str());
      if (const toml::array* arr = v.as_array(); arr && head == "phases") {
        for (std::size_t i = 0; i < arr->size(); ++i)
          if (const toml::table* e = arr->get(i)->as_table())
            flatten(*e, fmt::format("phases.{}", i + 1), [&](const std::string& key, const toml::node&) { spec.base_keys.insert(key); });
      } else if (const toml::table* t = v.as_table(); t && !t->empty()) {
        flatten(*t, head, [&](const std::string& key, const toml::node&) { spec.base_keys.insert(key); });
      } else {
        spec.base_keys.insert(head);
      }
    }
  }

  // Every key must be a scenario key: try each dimension's first setting alone on the base.
  for (const auto& d : spec.dims) {
    std::vector<std::string> sets;
    for (const auto& o : d.settings.front()) sets.push_back(o.key + "=" + o.toml);
    try {
      (void)load_scenario(spec.scenario, sets);
    } catch (const ConfigError& e) {
      if (e.pos().file == "--set" && e.message().rfind("unknown key", 0) == 0)
        throw ConfigError(d.pos, d.name == d.keys.front() && d.keys.size() == 1 ? "axes." + d.name : d.name,
                          fmt::format("'{}' is not a scenario key: {}", e.key(), e.message()));
      // Other errors (an invalid plan for this setting) are the point's, recorded as infeasible.
    }
  }
  return spec;
}

namespace {

// Whether the point writes `key`, something inside it, or a table that holds it.
bool touches(const Point& p, const std::string& key) {
  for (const auto& o : p.overrides)
    for (const auto& l : o.leaves)
      if (l == key || l.rfind(key + ".", 0) == 0 || key.rfind(l + ".", 0) == 0) return true;
  return false;
}

}  // namespace

// The rule (docs/sweep.md): a key the base scenario file writes is dropped from a point when the
// point is invalid at that key, the point does not write the key itself, and the point changes
// a key it is derived from:
//   plan.layer_split                 from plan.pp, plan.vpp, plan.schedule, model (its layers)
//   plan.vpp                         from plan.pp, plan.schedule
//   phases.<i>.plan.layer_split      the same, and phase i's own plan.pp, plan.vpp, plan.schedule
//   phases.<i>.plan.vpp              the same, and phase i's own plan.pp, plan.schedule
//   phases.<i>.plan.{dp,tp,pp,cp}    from plan.dp, plan.tp, plan.pp, plan.cp, cluster.gpus: phase
//                                    i's shape, dropped together (the phase takes [plan]'s)
std::vector<std::string> keys_to_drop(const SweepSpec& spec, const Point& p, const ConfigError& e,
                                      const std::vector<std::string>& dropped) {
  if (e.pos().file == "--set") return {};  // the point's own value
  // The key in canonical form: "phases[2].plan.dp" -> "phases.2.plan.dp".
  std::string key = e.key();
  if (key.rfind("phases[", 0) == 0) {
    const auto close = key.find(']');
    if (close == std::string::npos) return {};
    key = "phases." + key.substr(7, close - 7) + key.substr(close + 1);
  }
  std::string phase, leaf;  // "phases.<i>." and the plan key, for a phase's plan
  if (key.rfind("plan.", 0) == 0) {
    leaf = key.substr(5);
  } else if (key.rfind("phases.", 0) == 0) {
    const auto plan = key.find(".plan.");
    if (plan == std::string::npos) return {};
    phase = key.substr(0, plan + 1);
    leaf = key.substr(plan + 6);
  } else {
    return {};
  }
  const auto droppable = [&](const std::string& k) {
    return spec.base_keys.count(k) && !touches(p, k) && std::find(dropped.begin(), dropped.end(), k) == dropped.end();
  };
  const auto any_touched = [&](std::initializer_list<std::string> sources) {
    return std::any_of(sources.begin(), sources.end(), [&](const std::string& k) { return touches(p, k); });
  };
  std::vector<std::string> out;
  if (leaf == "layer_split" || leaf == "vpp") {
    const bool split = leaf == "layer_split";
    // Written by the phase itself, or inherited from [plan].
    const std::string own = phase + "plan." + leaf;
    const bool in_phase = !phase.empty() && spec.base_keys.count(own);
    const std::string k = in_phase ? own : "plan." + leaf;
    bool from = any_touched({"plan.pp", "plan.schedule"}) || (split && any_touched({"plan.vpp", "model"}));
    if (in_phase)
      from = from || any_touched({phase + "plan.pp", phase + "plan.schedule"}) || (split && touches(p, phase + "plan.vpp"));
    if (from && droppable(k)) out.push_back(k);
  } else if (!phase.empty() && (leaf == "dp" || leaf == "tp" || leaf == "pp" || leaf == "cp")) {
    if (any_touched({"plan.dp", "plan.tp", "plan.pp", "plan.cp", "cluster.gpus"}))
      for (const char* s : {"dp", "tp", "pp", "cp"})
        if (droppable(phase + "plan." + s)) out.push_back(phase + "plan." + s);
  }
  return out;
}

}  // namespace trainsim::sweep
