#include "config/scenario.hpp"

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include <fmt/format.h>

namespace trainsim {

namespace fs = std::filesystem;

fs::path data_dir() {
  if (const char* e = std::getenv("TRAINSIM_DATA"); e && *e) return fs::path(e);
  return fs::path(TRAINSIM_DATA_DIR);
}

std::vector<std::string> hardware_names() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir() / "profiles" / "hardware", ec))
    if (e.path().extension() == ".toml") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

static fs::path relative_to_file(const std::string& p, const SourcePos& pos) {
  fs::path path(p);
  if (path.is_absolute()) return path;
  if (pos.file.empty() || pos.file == "--set") return path;
  return fs::path(pos.file).parent_path() / path;
}

fs::path resolve_hardware(const std::string& name, const SourcePos& pos) {
  const bool is_path = name.find('/') != std::string::npos || name.ends_with(".toml");
  fs::path p = is_path ? relative_to_file(name, pos) : data_dir() / "profiles" / "hardware" / (name + ".toml");
  if (!fs::exists(p)) {
    std::string list;
    for (const auto& n : hardware_names()) list += (list.empty() ? "" : ", ") + n;
    std::string hint = is_path ? "" : closest_match(name, hardware_names());
    throw ConfigError(pos, "cluster.gpu",
                      fmt::format("no hardware file '{}'{}; known GPUs: {}", p.string(),
                                  hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), list));
  }
  return p;
}

bool is_scenario(const toml::table& t) { return t.contains("plan") || t.contains("cluster"); }

// Copies every key of `over` into `base`, recursing into tables present in both.
static void merge_into(toml::table& base, const toml::table& over) {
  for (const auto& [k, v] : over) {
    toml::node* b = base.get(k.str());
    if (b && b->is_table() && v.is_table()) {
      merge_into(*b->as_table(), *v.as_table());
    } else {
      base.insert_or_assign(k, v);
    }
  }
}

void apply_sets(toml::table& root, const std::vector<std::string>& sets) {
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError(SourcePos{"--set", 0, 0}, s, "expected key=value, e.g. --set plan.pp=8");
    const std::string key = s.substr(0, eq);
    const std::string val = s.substr(eq + 1);
    toml::table over;
    try {
      over = toml::parse(key + " = " + val, std::string_view("--set"));
    } catch (const toml::parse_error&) {
      // Not TOML: take the text as a string value (e.g. plan.schedule=1f1b).
      try {
        toml::table tmp = toml::parse(key + " = \"\"", std::string_view("--set"));
        over = std::move(tmp);
      } catch (const toml::parse_error&) {
        throw ConfigError(SourcePos{"--set", 0, 0}, key, "malformed key in --set; use dotted keys like plan.pp");
      }
      // Walk down the dotted path and put the string in place.
      toml::table* t = &over;
      std::string rest = key;
      while (true) {
        auto dot = rest.find('.');
        std::string head = rest.substr(0, dot);
        if (dot == std::string::npos) {
          t->insert_or_assign(head, val);
          break;
        }
        t = t->get(head)->as_table();
        rest = rest.substr(dot + 1);
      }
    }
    merge_into(root, over);
  }
}

// A section given as a path string becomes a table { file = "path" } (keeping the position).
static void expand_file_ref(toml::table& root, const char* key) {
  toml::node* n = root.get(key);
  if (n && n->is_string()) {
    toml::table t;
    t.insert("file", *n);
    root.insert_or_assign(key, std::move(t));
  }
}

// If root[key] holds 'file', load that file and lay the section's other keys over it.
static void resolve_file_section(toml::table& root, const char* key, const std::string& fallback_file) {
  toml::node* n = root.get(key);
  if (!n || !n->is_table()) return;
  toml::table& sec = *n->as_table();
  toml::node* f = sec.get("file");
  if (!f) return;
  SourcePos fpos = pos_of(*f, fallback_file);
  auto s = f->value_exact<std::string>();
  if (!s) throw ConfigError(fpos, std::string(key) + ".file", "expected a path string");
  fs::path p = relative_to_file(*s, fpos);
  if (!fs::exists(p)) throw ConfigError(fpos, std::string(key) + ".file", fmt::format("no such file '{}'", p.string()));
  toml::table base = parse_toml_file(p.string());
  sec.erase("file");
  merge_into(base, sec);
  root.insert_or_assign(key, std::move(base));
}

static std::vector<std::string> sorted_keys(const toml::table& t) {
  std::vector<std::string> out;
  for (const auto& [k, v] : t) out.emplace_back(k.str());
  return out;
}

Scenario load_scenario(const std::string& path, const std::vector<std::string>& sets) {
  Scenario sc;
  sc.file = path;
  toml::table root = parse_toml_file(path);
  for (const char* k : {"model", "cluster", "plan", "training"}) expand_file_ref(root, k);
  apply_sets(root, sets);
  for (const char* k : {"model", "cluster", "plan", "training"}) resolve_file_section(root, k, path);

  Section top(root, "", path);
  sc.name = top.string("name");
  sc.description = top.string_or("description", "");
  sc.model = parse_model(top.table("model"));
  sc.cluster = parse_cluster(top.table("cluster"));

  // Hardware: the file cluster.gpu names, with the scenario's [hardware] keys laid over it.
  {
    const toml::node* g = root.get("cluster") ? root.get("cluster")->as_table()->get("gpu") : nullptr;
    SourcePos gpos = g ? pos_of(*g, path) : SourcePos{path, 0, 0};
    toml::table hw = parse_toml_file(resolve_hardware(sc.cluster.gpu, gpos).string());
    if (auto h = top.opt_table("hardware")) {
      const toml::table* ht = root.get("hardware")->as_table();
      merge_into(hw, *ht);
    }
    sc.hardware = parse_hardware(Section(hw, "hardware", path));
    root.insert_or_assign("hardware", hw);
  }
  sc.plan = parse_plan(top.table("plan"));
  sc.training = parse_training(top.table("training"));
  if (auto a = top.opt_table("assumptions")) {
    const toml::table* at = root.get("assumptions")->as_table();
    for (const auto& k : sorted_keys(*at)) sc.assumptions[k] = a->string(k);
    a->finish();
  }
  top.finish();
  sc.tree = std::move(root);
  validate_scenario(sc);
  return sc;
}

ModelConfig load_model(const std::string& path, const std::vector<std::string>& sets) {
  toml::table root = parse_toml_file(path);
  if (is_scenario(root)) return load_scenario(path, sets).model;
  apply_sets(root, sets);
  return parse_model(Section(root, "", path));
}

HardwareConfig load_hardware(const std::string& name_or_path) {
  fs::path p = resolve_hardware(name_or_path, SourcePos{"<command line>", 0, 0});
  toml::table t = parse_toml_file(p.string());
  return parse_hardware(Section(t, "", p.string()));
}

std::int64_t pipeline_stage_count(const PlanConfig& p) {
  return p.schedule == "dualpipev" ? 2 * p.pp : p.pp * p.vpp;
}

std::vector<std::int64_t> stage_layers(const ModelConfig& m, const PlanConfig& p) {
  if (!p.layer_split.empty()) return p.layer_split;
  const std::int64_t stages = pipeline_stage_count(p);
  return std::vector<std::int64_t>(static_cast<std::size_t>(stages), m.layers / stages);
}

// Position of a key inside a section of the merged tree.
static SourcePos key_pos(const Scenario& s, const char* section, const char* key) {
  const toml::node* sec = s.tree.get(section);
  if (sec && sec->is_table()) {
    if (const toml::node* n = sec->as_table()->get(key)) return pos_of(*n, s.file);
    return pos_of(*sec, s.file);
  }
  return SourcePos{s.file, 0, 0};
}

void validate_scenario(const Scenario& s) {
  const auto& p = s.plan;
  const auto& m = s.model;
  const auto fail = [&](const char* section, const char* key, const std::string& msg) {
    throw ConfigError(key_pos(s, section, key), fmt::format("{}.{}", section, key), msg);
  };
  // Which plan key to blame for a product mismatch: the first one written in the file.
  const std::int64_t product = p.dp * p.tp * p.pp * p.cp;
  if (product != s.cluster.gpus)
    fail("plan", "dp",
         fmt::format("dp*tp*pp*cp = {}*{}*{}*{} = {} does not equal cluster.gpus = {}", p.dp, p.tp, p.pp, p.cp,
                     product, s.cluster.gpus));
  if (p.ep > 1) {
    if (!m.moe.enabled) fail("plan", "ep", fmt::format("ep = {} but model '{}' has no experts", p.ep, m.name));
    if (m.moe.routed_experts % p.ep != 0)
      fail("plan", "ep", fmt::format("ep = {} does not divide the {} routed experts", p.ep, m.moe.routed_experts));
    const std::int64_t group = p.dp * p.tp * p.cp;
    if (group % p.ep != 0)
      fail("plan", "ep", fmt::format("ep = {} does not fit the dp*tp*cp = {} GPUs of a pipeline stage (must divide it)",
                                     p.ep, group));
  }
  if (m.attention.heads % p.tp != 0)
    fail("plan", "tp", fmt::format("tp = {} does not divide the {} attention heads", p.tp, m.attention.heads));
  if (s.training.seq_len % p.cp != 0)
    fail("plan", "cp", fmt::format("cp = {} does not divide seq_len {}", p.cp, s.training.seq_len));
  if (p.comm_sms >= s.hardware.sms)
    fail("plan", "comm_sms", fmt::format("comm_sms = {} leaves no SM for compute ({} has {})", p.comm_sms,
                                         s.hardware.name, s.hardware.sms));
  const std::int64_t stages = pipeline_stage_count(p);
  if (p.layer_split.empty()) {
    if (m.layers % stages != 0)
      fail("plan", "pp", fmt::format("{} layers cannot be split evenly over {} pipeline stages (pp*vpp); "
                                     "give plan.layer_split with {} entries", m.layers, stages, stages));
  } else {
    if (static_cast<std::int64_t>(p.layer_split.size()) != stages)
      fail("plan", "layer_split", fmt::format("has {} entries but pp*vpp = {} stages", p.layer_split.size(), stages));
    const std::int64_t sum = std::accumulate(p.layer_split.begin(), p.layer_split.end(), std::int64_t{0});
    if (sum != m.layers)
      fail("plan", "layer_split", fmt::format("sums to {} layers but the model has {}", sum, m.layers));
  }
  const std::int64_t per_step = p.dp * p.micro_batch;
  if (s.training.global_batch % per_step != 0)
    fail("training", "global_batch",
         fmt::format("global_batch {} is not divisible by dp*micro_batch = {}*{} = {}", s.training.global_batch, p.dp,
                     p.micro_batch, per_step));
  if (s.training.ramp && s.training.ramp->start % per_step != 0)
    throw ConfigError(
        [&] {
          const toml::node* t = s.tree.get("training");
          const toml::node* r = t ? t->as_table()->get("batch_ramp") : nullptr;
          const toml::node* st = r ? r->as_table()->get("start") : nullptr;
          return st ? pos_of(*st, s.file) : key_pos(s, "training", "batch_ramp");
        }(),
        "training.batch_ramp.start",
        fmt::format("ramp start {} is not divisible by dp*micro_batch = {}", s.training.ramp->start, per_step));
  const std::int64_t mbs = s.training.global_batch / per_step;
  if (p.schedule == "dualpipe" || p.schedule == "dualpipev") {
    if (p.pp % 2 != 0) fail("plan", "pp", fmt::format("{} needs an even pp, got {}", p.schedule, p.pp));
    if (mbs < 2 * p.pp)
      fail("plan", "schedule",
           fmt::format("{} needs at least 2*pp = {} micro-batches per step; global_batch/(dp*micro_batch) = {}",
                       p.schedule, 2 * p.pp, mbs));
    if (mbs % 2 != 0)
      fail("plan", "schedule", fmt::format("{} needs an even number of micro-batches per step, got {}", p.schedule, mbs));
  }
  if (p.schedule == "interleaved" && mbs % p.pp != 0)
    fail("plan", "schedule",
         fmt::format("interleaved needs micro-batches per step ({}) divisible by pp ({})", mbs, p.pp));
}

}  // namespace trainsim
