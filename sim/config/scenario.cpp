#include "config/scenario.hpp"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <optional>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "config/plan_rules.hpp"
#include "core/limits.hpp"
#include "schedule/schedule_rules.hpp"
#include "core/input.hpp"

namespace trainsim {

namespace fs = std::filesystem;

fs::path data_dir() {
  if (const char* e = std::getenv("TRAINSIM_DATA"); e && *e) return fs::path(e);
  // An installed trainsim (cmake --install) finds its data beside itself: <prefix>/bin/trainsim
  // and <prefix>/share/trainsim, wherever the prefix was moved to.
  static const fs::path installed = [] {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec || exe.empty()) return fs::path();
    const fs::path d = (exe.parent_path() / TRAINSIM_INSTALL_DATA_REL).lexically_normal();
    return fs::is_directory(d / "profiles" / "hardware", ec) ? d : fs::path();
  }();
  if (!installed.empty()) return installed;
  return fs::path(TRAINSIM_DATA_DIR);
}

namespace {

// The *.toml files below `dir` (recursively when `recurse`), as names relative to it without
// the extension, sorted.
std::vector<std::string> toml_names(const fs::path& dir, bool recurse) {
  std::vector<std::string> out;
  std::error_code ec;
  auto add = [&](const fs::directory_entry& e) {
    if (e.is_regular_file() && e.path().extension() == ".toml")
      out.push_back(fs::relative(e.path(), dir).replace_extension().generic_string());
  };
  if (recurse) {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      add(*it);
  } else {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) add(*it);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool looks_like_path(const std::string& name) { return name.find('/') != std::string::npos || name.ends_with(".toml"); }

}  // namespace

std::vector<std::string> hardware_names() { return toml_names(data_dir() / "profiles" / "hardware", false); }
std::vector<std::string> model_names() { return toml_names(data_dir() / "models", false); }

std::vector<std::string> scenario_names() {
  std::vector<std::string> out;
  for (const auto& n : toml_names(data_dir() / "scenarios", true)) {
    // Sweep files live beside scenarios; only files that are scenarios count.
    try {
      if (is_scenario(parse_toml_file((data_dir() / "scenarios" / (n + ".toml")).string()))) out.push_back(n);
    } catch (const InputError&) {
    }
  }
  return out;
}

std::string unknown_name_message(const std::string& what, const std::string& name, const std::vector<std::string>& known) {
  const std::string hint = closest_match(name, known);
  return fmt::format("unknown {} '{}'{}; known: {} (trainsim list {}s)", what, name,
                     hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), joined(known),
                     what == "GPU" ? "gpu" : what);
}

fs::path resolve_scenario(const std::string& name_or_path, const std::string& option) {
  if (is_file(name_or_path)) return fs::path(name_or_path);
  if (is_dir(name_or_path))
    throw UsageError(fmt::format("{}: '{}' is a directory, not a scenario file", option, name_or_path));
  // A name of trainsim list scenarios ("deepseek-v3-h800", "sweeps/base/llama3-8b-64xh100").
  if (!name_or_path.ends_with(".toml") && !fs::path(name_or_path).is_absolute()) {
    const fs::path p = data_dir() / "scenarios" / (name_or_path + ".toml");
    if (is_file(p)) return p;
    throw UsageError(fmt::format("{}: {}", option, unknown_name_message("scenario", name_or_path, scenario_names())));
  }
  throw UsageError(fmt::format("{}: no such file '{}'", option, name_or_path));
}

std::string check_hardware_name(const std::string& name, const std::string& option) {
  if (looks_like_path(name)) {
    if (is_dir(name)) throw UsageError(fmt::format("{}: '{}' is a directory, not a hardware file", option, name));
    if (!is_file(name)) throw UsageError(fmt::format("{}: no such file '{}'", option, name));
    return name;
  }
  const auto names = hardware_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw UsageError(fmt::format("{}: {}", option, unknown_name_message("GPU", name, names)));
  return name;
}

static fs::path relative_to_file(const std::string& p, const SourcePos& pos) {
  fs::path path(p);
  if (path.is_absolute()) return path;
  if (pos.file.empty() || pos.file == "--set" || pos.file.starts_with("<")) return path;
  return fs::path(pos.file).parent_path() / path;
}

fs::path resolve_hardware(const std::string& name, const SourcePos& pos) {
  const bool is_path = looks_like_path(name);
  fs::path p = is_path ? relative_to_file(name, pos) : data_dir() / "profiles" / "hardware" / (name + ".toml");
  if (path_exists(p) && !is_file(p))
    throw ConfigError(pos, "cluster.gpu", fmt::format("'{}' is a directory or device, not a hardware file", p.string()));
  if (!path_exists(p)) {
    std::string hint = is_path ? "" : closest_match(name, hardware_names());
    throw ConfigError(pos, "cluster.gpu",
                      fmt::format("no hardware file '{}'{}; known GPUs: {}", p.string(),
                                  hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), joined(hardware_names())));
  }
  return p;
}

bool is_scenario(const toml::table& t) { return t.contains("plan") || t.contains("cluster"); }

toml::table parse_sets(const std::vector<std::string>& sets) {
  toml::table out;
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError(SourcePos{"--set", 0, 0}, s, "expected key=value, e.g. --set plan.pp=8");
    const std::string key = s.substr(0, eq);
    const std::string val = s.substr(eq + 1);
    // One option sets one key: a line break (or any control character) would let the value
    // start a new TOML line and set other keys or tables.
    for (char c : s)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        throw ConfigError(SourcePos{"--set", 0, 0}, key,
                          "a --set option cannot contain a line break or other control character (one --set sets "
                          "one key; repeat --set for more)");
    toml::table one;
    try {
      one = toml::parse(key + " = " + val, std::string_view("--set"));
    } catch (const toml::parse_error&) {
      // Not TOML: take the text as a string value (e.g. plan.schedule=1f1b).
      std::string quoted = "\"";
      for (char c : val) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
      }
      quoted += '"';
      try {
        one = toml::parse(key + " = " + quoted, std::string_view("--set"));
      } catch (const toml::parse_error&) {
        throw ConfigError(SourcePos{"--set", 0, 0}, key, "malformed key in --set; use dotted keys like plan.pp");
      }
    }
    // Later --set options win: move the new nodes over the earlier ones (moves keep positions).
    std::function<void(toml::table&, toml::table&)> move_into = [&](toml::table& base, toml::table& over) {
      for (auto&& [k, v] : over) {
        toml::node* b = base.get(k.str());
        if (b && b->is_table() && v.is_table()) move_into(*b->as_table(), *v.as_table());
        else base.insert_or_assign(k.str(), std::move(v));
      }
    };
    move_into(out, one);
  }
  return out;
}

namespace {

// Builds the layers of one top-level section (model, cluster, plan, training): the --set
// table's, the scenario's (a table, or a path string / table with `file`), then the referenced
// file's. Loads the file into `src.files`.
std::vector<Section::Layer> section_layers(ScenarioSources& src, const char* key, const std::string& path) {
  std::vector<Section::Layer> layers;
  std::optional<std::pair<std::string, SourcePos>> file;
  for (const toml::table* t : {&src.sets, &src.root}) {
    const toml::node* n = t->get(key);
    if (!n) continue;
    if (const auto* str = n->as_string()) {
      if (!file) file = {str->get(), pos_of(*n, path)};
      continue;
    }
    if (const toml::table* tt = n->as_table()) {
      layers.push_back(Section::Layer{tt, {}});
      if (const toml::node* f = tt->get("file"); f && !file) {
        const auto* fs = f->as_string();
        if (!fs) throw ConfigError(pos_of(*f, path), std::string(key) + ".file", "expected a path string");
        file = {fs->get(), pos_of(*f, path)};
      }
      continue;
    }
    throw ConfigError(pos_of(*n, path), key, "expected a table or a path string to a file");
  }
  if (file) {
    fs::path p = relative_to_file(file->first, file->second);
    if (!path_exists(p))
      throw ConfigError(file->second, std::string(key) + ".file", fmt::format("no such file '{}'", p.string()));
    if (!is_file(p))
      throw ConfigError(file->second, std::string(key) + ".file", fmt::format("'{}' is a directory or device, not a file", p.string()));
    auto [it, inserted] = src.files.try_emplace(p.string());
    if (inserted) it->second = parse_toml_file(p.string());
    layers.push_back(Section::Layer{&it->second, {}});
  }
  if (layers.empty()) throw ConfigError(pos_of(src.root, path), key, "missing required key");
  return layers;
}

// Moves `--set phases.<index or name>.*` out of the --set table into one training and one plan
// override table per phase (moves keep the nodes' positions). `names[i]` is phase i's name.
void split_phase_sets(ScenarioSources& src, const std::vector<std::string>& names) {
  toml::node* n = src.sets.get("phases");
  if (!n) return;
  std::string listing;
  for (std::size_t i = 0; i < names.size(); ++i) listing += fmt::format("{}{} '{}'", i ? ", " : "", i, names[i]);
  const std::string how = fmt::format(
      "--set phases.<index or name>.<key>=<value> sets one phase's key, e.g. phases.1.plan.dp=16 or "
      "phases.{}.steps=500; the phases are {}",
      names.size() > 1 ? names[1] : names[0], listing);
  toml::table* t = n->as_table();
  if (!t) throw ConfigError(pos_of(*n, "--set"), "phases", how);
  std::set<std::size_t> seen;
  for (auto&& [k, v] : *t) {
    const std::string key(k.str());
    std::optional<std::size_t> index;
    if (!key.empty() && key.size() < 7 && std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      index = static_cast<std::size_t>(std::stoul(key));
      if (*index >= names.size())
        throw ConfigError(pos_of(v, "--set"), "phases." + key,
                          fmt::format("no phase {}: the scenario has {} phase(s); {}", key, names.size(), how));
    } else {
      const auto hits = std::count(names.begin(), names.end(), key);
      if (hits > 1)
        throw ConfigError(pos_of(v, "--set"), "phases." + key,
                          fmt::format("{} phases are named '{}': address them by index; {}", hits, key, how));
      if (hits == 0) {
        const std::string hint = closest_match(key, names);
        throw ConfigError(pos_of(v, "--set"), "phases." + key,
                          fmt::format("no phase named '{}'{}; {}", key,
                                      hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), how));
      }
      index = static_cast<std::size_t>(std::find(names.begin(), names.end(), key) - names.begin());
    }
    if (!seen.insert(*index).second)
      throw ConfigError(pos_of(v, "--set"), "phases." + key, fmt::format("phase {} is addressed twice (by index and by name)", *index));
    toml::table* pt = v.as_table();
    if (!pt) throw ConfigError(pos_of(v, "--set"), "phases." + key, how);
    toml::table& training = src.phase_training_sets[*index];
    toml::table& plan = src.phase_plan_sets[*index];
    for (auto&& [pk, pv] : *pt) {
      if (pk.str() == "plan") {
        toml::table* pl = pv.as_table();
        if (!pl) throw ConfigError(pos_of(pv, "--set"), fmt::format("phases.{}.plan", key), "expected plan keys, e.g. phases.1.plan.dp=16");
        for (auto&& [qk, qv] : *pl) plan.insert_or_assign(qk, std::move(qv));
      } else {
        training.insert_or_assign(pk, std::move(pv));
      }
    }
  }
  src.sets.erase("phases");
}

Section make_section(std::vector<Section::Layer> layers, const std::string& prefix, const std::string& path) {
  Section s(std::move(layers), prefix, path);
  s.allow("file");
  return s;
}

}  // namespace

namespace {

// Erases one dotted key from the scenario file's tree; "phases.<i>." walks into the i-th
// [[phases]] entry. Absent keys are ignored.
void erase_key(toml::table& root, const std::string& key) {
  std::vector<std::string> parts;
  for (std::size_t p = 0;;) {
    const auto dot = key.find('.', p);
    parts.push_back(key.substr(p, dot == std::string::npos ? std::string::npos : dot - p));
    if (dot == std::string::npos) break;
    p = dot + 1;
  }
  toml::table* t = &root;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* n = t->get(parts[i]);
    if (!n) return;
    if (toml::array* arr = n->as_array(); arr && i == 0 && parts[0] == "phases") {
      const std::string& index = parts[++i];
      if (index.empty() || index.size() > 6 || !std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return;
      const std::size_t k = std::stoul(index);
      if (k == 0 || k > arr->size() || i + 1 >= parts.size()) return;
      t = arr->get(k - 1)->as_table();
    } else {
      t = n->as_table();
    }
    if (!t) return;
  }
  t->erase(parts.back());
}

}  // namespace

Scenario load_scenario(const std::string& path, const std::vector<std::string>& sets, const std::vector<std::string>& unset) {
  auto src = std::make_shared<ScenarioSources>();
  src->root = parse_toml_file(path);
  for (const auto& k : unset) erase_key(src->root, k);
  src->sets = parse_sets(sets);
  Scenario sc;
  sc.file = path;

  Section top({Section::Layer{&src->sets, {}}, Section::Layer{&src->root, {}}}, "", path);
  sc.name = top.string("name");
  sc.description = top.string_or("description", "");
  for (const char* k : {"model", "cluster", "plan", "training"}) top.allow(k);

  sc.model = parse_model(make_section(section_layers(*src, "model", path), "model", path));
  sc.cluster = parse_cluster(make_section(section_layers(*src, "cluster", path), "cluster", path));

  // Hardware: the file cluster.gpu names, under the scenario's (and --set's) [hardware] keys.
  {
    Section cl = make_section(section_layers(*src, "cluster", path), "cluster", path);
    const fs::path hw = resolve_hardware(sc.cluster.gpu, cl.pos("gpu"));
    auto [it, inserted] = src->files.try_emplace(hw.string());
    if (inserted) it->second = parse_toml_file(hw.string());
    std::vector<Section::Layer> layers;
    for (const toml::table* t : {&src->sets, &src->root})
      if (const toml::node* n = t->get("hardware")) {
        if (!n->as_table()) throw ConfigError(pos_of(*n, path), "hardware", "expected a table of hardware overrides");
        layers.push_back(Section::Layer{n->as_table(), {}});
      }
    layers.push_back(Section::Layer{&it->second, {}});
    top.allow("hardware");
    sc.hardware = parse_hardware(Section(std::move(layers), "hardware", path), hw.string());
  }

  // The phases: [training] with [plan], then the [[phases]] entries. `--set phases.<index or
  // name>.<key>=<value>` sets one phase's key (phases.0 is [training]/[plan]).
  const std::vector<Section::Layer> base_plan = section_layers(*src, "plan", path);
  const std::vector<Section::Layer> base_training = section_layers(*src, "training", path);
  std::vector<const toml::table*> entries;
  top.allow("phases");
  if (const toml::node* pn = src->root.get("phases")) {
    const toml::array* arr = pn->as_array();
    if (!arr || !arr->is_array_of_tables())
      throw ConfigError(pos_of(*pn, path), "phases", "expected an array of tables ([[phases]])");
    for (const auto& el : *arr) entries.push_back(el.as_table());
  }
  {
    std::vector<std::string> names;
    std::string first = "pre-training";
    for (const auto& l : base_training)
      if (const toml::node* n = l.table->get("name")) {
        if (n->is_string()) first = n->as_string()->get();
        break;
      }
    names.push_back(first);
    for (const toml::table* e : entries) {
      const toml::node* n = e->get("name");
      names.push_back(n && n->is_string() ? n->as_string()->get() : std::string("pre-training"));
    }
    split_phase_sets(*src, names);
  }
  auto with_sets = [&](std::map<std::size_t, toml::table>& per_phase, std::size_t i, std::vector<Section::Layer> layers) {
    if (auto it = per_phase.find(i); it != per_phase.end()) layers.insert(layers.begin(), Section::Layer{&it->second, {}});
    return layers;
  };

  Phase main;
  main.key = "training";
  main.plan_layers = with_sets(src->phase_plan_sets, 0, base_plan);
  main.training_layers = with_sets(src->phase_training_sets, 0, base_training);
  main.plan_prefix = "plan";
  main.training_prefix = "training";
  main.plan = parse_plan(make_section(main.plan_layers, "plan", path));
  main.training = parse_training(make_section(main.training_layers, "training", path));
  sc.plan = main.plan;
  sc.training = main.training;
  sc.phases.push_back(main);

  for (std::size_t i = 1; i <= entries.size(); ++i) {
    const toml::table& ph = *entries[i - 1];
    Phase phase;
    phase.key = fmt::format("phases[{}]", i);
    phase.training_prefix = phase.key;
    phase.plan_prefix = phase.key + ".plan";
    // Training keys: --set's for this phase, the phase's own; `precision` inherited from
    // [training] unless given.
    std::vector<Section::Layer> training{Section::Layer{&ph, {}}};
    for (const auto& l : base_training) training.push_back(Section::Layer{l.table, {"precision"}});
    phase.training_layers = with_sets(src->phase_training_sets, i, std::move(training));
    // Plan: --set's for this phase, the phase's `plan` overrides, then the main plan's layers.
    std::vector<Section::Layer> plan;
    if (const toml::node* po = ph.get("plan")) {
      if (!po->as_table()) throw ConfigError(pos_of(*po, path), phase.key + ".plan", "expected a table of plan overrides");
      plan.push_back(Section::Layer{po->as_table(), {}});
    }
    for (const auto& l : base_plan) plan.push_back(l);
    phase.plan_layers = with_sets(src->phase_plan_sets, i, std::move(plan));
    Section ts = make_section(phase.training_layers, phase.training_prefix, path);
    ts.allow("plan");
    phase.training = parse_training(ts);
    phase.plan = parse_plan(make_section(phase.plan_layers, phase.plan_prefix, path));
    sc.phases.push_back(std::move(phase));
  }
  // Link efficiencies default to the GPU's calibration (profiles/<gpu>/calibration.toml).
  sc.net = network::calibrated_network(sc.hardware.name, data_dir());
  if (auto n = top.opt_table("network")) sc.net = network::parse_network(*n, sc.net);
  if (auto e = top.opt_table("energy")) sc.energy = parse_energy(*e);
  if (auto g = top.opt_table("goodput")) sc.goodput = parse_goodput(*g);
  if (auto cp = top.opt_table("chunk_pair")) {
    ChunkPairConfig c;
    c.moe_layers = cp->integer("moe_layers", 1, 1000);
    const std::string prof = cp->string("measured_profile");
    c.measured_profile = relative_to_file(prof, cp->pos("measured_profile")).string();
    if (!path_exists(c.measured_profile))
      cp->fail("measured_profile", fmt::format("no such file '{}'", c.measured_profile));
    c.source = cp->string("source");
    cp->finish();
    sc.chunk_pair = std::move(c);
  }
  if (auto rf = top.opt_table("reference")) {
    ReferenceFigures ref;
    ref.source = rf->string("source");
    const std::vector<std::string> kinds = {"pretraining", "context_extension", "post_training", "total"};
    for (const char* what : {"gpu_hours", "cost_usd"}) {
      if (auto t = rf->opt_table(what)) {
        auto& dst = std::string_view(what) == "gpu_hours" ? ref.gpu_hours : ref.cost_usd;
        for (const auto& k : kinds) {
          t->allow(k);  // every kind is a known key, so a misspelt one gets a suggestion
          if (t->has(k)) dst[k] = t->number(k, 0, 1e15);
        }
        t->finish();
      }
    }
    if (rf->has("gpu_hours_per_trillion_tokens"))
      ref.gpu_hours_per_trillion_tokens = rf->number("gpu_hours_per_trillion_tokens", 0, 1e15);
    else
      rf->allow("gpu_hours_per_trillion_tokens");
    rf->finish();
    sc.reference = std::move(ref);
  }
  if (auto a = top.opt_table("assumptions")) {
    std::vector<std::string> keys;
    for (const toml::table* t : {&src->sets, &src->root})
      if (const toml::node* n = t->get("assumptions"); n && n->as_table())
        for (const auto& [k, v] : *n->as_table()) keys.emplace_back(k.str());
    for (const auto& k : keys) sc.assumptions[k] = a->string(k);
    a->finish();
  }
  top.finish();
  sc.sources = std::move(src);
  validate_scenario(sc);
  return sc;
}

ModelConfig load_model(const std::string& path, const std::vector<std::string>& sets) {
  toml::table root = parse_toml_file(path);
  if (is_scenario(root)) return load_scenario(path, sets).model;
  toml::table over = parse_sets(sets);
  return parse_model(Section({Section::Layer{&over, {}}, Section::Layer{&root, {}}}, "", path));
}

HardwareConfig load_hardware(const std::string& name_or_path, const std::string& option) {
  check_hardware_name(name_or_path, option);
  const fs::path p = looks_like_path(name_or_path) ? fs::path(name_or_path)
                                                   : data_dir() / "profiles" / "hardware" / (name_or_path + ".toml");
  toml::table t = parse_toml_file(p.string());
  return parse_hardware(Section(t, "", p.string()), p.string());
}

std::vector<std::string> phase_own_plan_keys(const Scenario& s, std::size_t phase) {
  TS_ASSERT(phase < s.phases.size() && s.sources, "phase_own_plan_keys: no such phase");
  std::set<std::string> keys;
  const auto add = [&](const toml::table& t) {
    for (const auto& [k, v] : t) keys.insert(std::string(k.str()));
  };
  if (auto it = s.sources->phase_plan_sets.find(phase); it != s.sources->phase_plan_sets.end()) add(it->second);
  if (phase > 0)
    if (const toml::node* pn = s.sources->root.get("phases"))
      if (const toml::array* arr = pn->as_array(); arr && phase - 1 < arr->size())
        if (const toml::table* e = arr->get(phase - 1)->as_table())
          if (const toml::node* po = e->get("plan"); po && po->as_table()) add(*po->as_table());
  return {keys.begin(), keys.end()};
}

bool phase_plan_writes(const Scenario& s, std::size_t phase, const std::string& key) {
  TS_ASSERT(phase < s.phases.size(), "phase_plan_writes: no such phase");
  const Phase& ph = s.phases[phase];
  return Section(ph.plan_layers, ph.plan_prefix, s.file).has(key);
}

std::int64_t pipeline_stage_count(const PlanConfig& p) {
  return p.schedule == "dualpipev" ? 2 * p.pp : p.pp * p.vpp;
}


namespace {

// Where a phase's plan and training keys were written, for error messages.
struct PhaseLocator {
  const Scenario& s;
  const Phase& phase;

  // The Section of `section` ("plan"/"training"), walked down a dotted key's tables.
  std::pair<Section, std::string> leaf(const char* section, const std::string& key) const {
    const bool plan = std::string_view(section) == "plan";
    Section sec(plan ? phase.plan_layers : phase.training_layers, plan ? phase.plan_prefix : phase.training_prefix,
                s.file);
    std::string rest = key;
    for (auto dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
      const std::string head = rest.substr(0, dot);
      if (!sec.has(head)) break;
      sec = sec.table(head);
      rest = rest.substr(dot + 1);
    }
    return {sec, rest};
  }
  SourcePos pos(const char* section, const std::string& key) const {
    auto [sec, k] = leaf(section, key);
    return sec.pos(k);
  }
  std::string name(const char* section, const std::string& key) const {
    const bool plan = std::string_view(section) == "plan";
    return (plan ? phase.plan_prefix : phase.training_prefix) + "." + key;
  }
};

void validate_phase(const Scenario& s, const PhaseLocator& at) {
  // The rules themselves are config/plan_rules.hpp's, shared with the plan search (sim/plan/).
  std::vector<const PlanConfig*> plans;
  for (const auto& ph : s.phases) plans.push_back(&ph.plan);
  const PlanRuleContext ctx{s.model, s.hardware, s.cluster};
  const bool cp_comm_written = at.phase.plan.cp == 1 && at.leaf("plan", "cp_comm").first.has("cp_comm");
  if (const auto problem = phase_plan_problem(ctx, at.phase.plan, at.phase.training, plans, cp_comm_written)) {
    const char* section = problem->training ? "training" : "plan";
    throw ConfigError(at.pos(section, problem->key), at.name(section, problem->key), problem->message);
  }
}

}  // namespace

void validate_scenario(const Scenario& s) {
  for (const auto& ph : s.phases) validate_phase(s, PhaseLocator{s, ph});
}

}  // namespace trainsim
