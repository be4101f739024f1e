// docs/configuration.md documents every section and key the reader accepts (issue 12, point 6).
//
// The accepted keys come from the reader itself: while a key log is installed (config/reader.hpp,
// set_key_log), every key a Section reads or allows is recorded with its full dotted name. The
// test loads every model, GPU and scenario of the data folder, plus a scenario that exercises
// every optional section and branch ([[phases]], [energy], [goodput], [network], [reference],
// [chunk_pair], [assumptions], MHA/GQA/MLA, MoE, MTP, learned positions, a batch ramp, precision),
// and checks each recorded key against the keys the document's TOML examples name.
#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "config/reader.hpp"
#include "config/scenario.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {

// The keys of the document's ```toml blocks, as "section.table.key" (model keys under "model.",
// hardware keys under "hardware."); commented-out keys ("# head_dim = 128") count, and the keys
// of inline tables ("batch_ramp = { start = .., tokens = .. }") too.
std::set<std::string> documented_keys(const std::string& doc) {
  std::set<std::string> keys;
  std::istringstream in(doc);
  std::string line, section_prefix, table;
  bool code = false;
  const std::regex header(R"(^#?\s*\[\[?([A-Za-z0-9_.]+)\]\]?\s*(#.*)?$)");
  const std::regex key(R"(^#?\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$)");
  const std::regex inline_key(R"(([A-Za-z_][A-Za-z0-9_]*)\s*=)");
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      section_prefix = line.find("Model") != std::string::npos ? "model."
                     : line.find("Hardware") != std::string::npos ? "hardware." : "";
      table.clear();
    }
    if (line.rfind("```", 0) == 0) {
      code = !code && line.rfind("```toml", 0) == 0;
      continue;
    }
    if (!code) continue;
    std::smatch m;
    if (std::regex_match(line, m, header)) {
      table = m[1].str() + ".";
      keys.insert(section_prefix + m[1].str());  // the table itself
      continue;
    }
    if (std::regex_match(line, m, key)) {
      const std::string k = section_prefix + table + m[1].str();
      keys.insert(k);
      const std::string rest = m[2].str();
      if (!rest.empty() && rest[0] == '{') {
        const std::string body = rest.substr(1, rest.find('}') - 1);
        for (std::sregex_iterator it(body.begin(), body.end(), inline_key), end; it != end; ++it)
          keys.insert(k + "." + (*it)[1].str());
      }
    }
  }
  return keys;
}

// The keys a load asked for, with `prefix` for files read on their own (a model file's "layers"
// is the scenario's "model.layers").
struct Recorder {
  std::set<std::string> keys;
  std::string prefix;
  KeyLog log = [this](const std::string& k) { keys.insert(prefix + k); };
  Recorder() { set_key_log(&log); }
  ~Recorder() { set_key_log(nullptr); }
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
};

// A recorded key in the document's terms: "phases[2].plan.dp" is a [plan] key of a phase,
// "phases[2].steps" a [training] key; an [assumptions] key is any name; a hardware value's
// value/source/note are the value table's.
std::string normalized(std::string k) {
  static const std::regex phase(R"(^phases\[\d+\]\.)");
  if (std::regex_search(k, phase)) {
    k = std::regex_replace(k, phase, "");
    return k.rfind("plan.", 0) == 0 ? k : k == "plan" ? "phases.plan" : "training." + k;
  }
  if (k.rfind("assumptions.", 0) == 0) return "assumptions";
  return k;
}

// Every hardware value is a { value, source, note } table; the document shows `note` once (on
// clock) and says it is allowed on every value: a value's note is documented with its value.
bool documented_key(const std::set<std::string>& doc, const std::string& k) {
  if (doc.count(k)) return true;
  const std::string note = ".note";
  if (k.rfind("hardware.", 0) == 0 && k.size() > note.size() && k.compare(k.size() - note.size(), note.size(), note) == 0)
    return doc.count(k.substr(0, k.size() - note.size())) && doc.count("hardware.compute.clock.note");
  return false;
}

}  // namespace

TEST_CASE("docs/configuration.md names every key the reader accepts", "[docs]") {
  const std::string doc = ts_test::read_file(ts_test::source_dir() / "docs" / "configuration.md");
  REQUIRE(!doc.empty());
  const std::set<std::string> documented = documented_keys(doc);
  // The sections the issue names are there.
  for (const char* h : {"[[phases]]", "[energy]", "[reference]", "[goodput]", "[network]", "[chunk_pair]", "[assumptions]"}) {
    INFO(h);
    CHECK(doc.find(std::string("\n") + h) != std::string::npos);
  }

  Recorder rec;
  rec.prefix = "model.";
  for (const auto& n : model_names()) (void)load_model((data_dir() / "models" / (n + ".toml")).string());
  // A model with every optional branch: MHA with biases and learned positions (GPT-3), and MoE
  // keys beyond the shipped files' (expert groups, gate).
  rec.prefix = "hardware.";
  for (const auto& n : hardware_names()) (void)load_hardware(n);
  rec.prefix = "";
  for (const auto& n : scenario_names()) (void)load_scenario((data_dir() / "scenarios" / (n + ".toml")).string());
  const auto dir = ts_test::temp_dir("docs");
  ts_test::write_file(dir / "s.toml", "name = \"all\"\ndescription = \"every section\"\nmodel = \"" +
                                          ts_test::data("models/deepseek-v2-lite.toml").string() + R"("
[hardware]
interconnect.nic = "200Gb/s"
[cluster]
gpu = "h800"
gpus = 64
gpus_per_node = 8
nvlink_domain = 8
[plan]
dp = 8
tp = 2
pp = 4
ep = 16
zero = 1
schedule = "interleaved"
vpp = 2
micro_batch = 1
recompute = "full"
recompute_num_layers = 1
layer_split = "balanced"
comm_buffers = "1GB"
sequence_parallel = true
tp_comm_overlap = true
overlap_param_gather = true
dp_bucket_params = 1000000
grad_buckets = "uniform"
[training]
seq_len = 4096
global_batch = 256
tokens = 2e10
batch_ramp = { start = 128, tokens = 5e9 }
[training.precision]
gemm = "fp8"
[[phases]]
name = "ctx"
kind = "context_extension"
seq_len = 8192
global_batch = 128
steps = 5
plan = { dp = 4, cp = 2 }
[energy]
idle_power = "90W"
pue = 1.2
[goodput]
failures_per_gpu_day = 0.0001
checkpoint_interval = "1h"
checkpoint_cost = "30s"
restart = "10min"
[network]
fabric = "rail"
[reference]
source = "test"
gpu_hours = { total = 1 }
cost_usd = { total = 1 }
gpu_hours_per_trillion_tokens = 1
[assumptions]
anything = "a named assumption"
)");
  (void)load_scenario((dir / "s.toml").string());
  // A model file reached through a scenario's `model.file`, and a cluster in its own file.
  ts_test::write_file(dir / "c.toml", "gpu = \"h800\"\ngpus = 8\ngpus_per_node = 8\n");
  ts_test::write_file(dir / "s2.toml", "name = \"files\"\n[model]\nfile = \"" + ts_test::data("models/gpt3-175b.toml").string() +
                                           "\"\n[cluster]\nfile = \"c.toml\"\n[plan]\ndp = 8\n[training]\nseq_len = 2048\n"
                                           "global_batch = 64\nsteps = 10\n");
  (void)load_scenario((dir / "s2.toml").string());

  std::set<std::string> missing;
  for (const auto& k : rec.keys) {
    const std::string n = normalized(k);
    if (documented_key(documented, n)) continue;
    missing.insert(k == n ? n : n + " (read as " + k + ")");
  }
  std::string list;
  for (const auto& m : missing) list += "\n  " + m;
  INFO("keys the reader accepts that docs/configuration.md does not name:" << list);
  CHECK(missing.empty());
  // The recorder saw the reader: a key from each kind of file.
  for (const char* k : {"model.attention.kv_lora_rank", "hardware.compute.bf16.source", "plan.dp", "phases[1].plan.dp",
                        "goodput.restart", "network.fabric", "chunk_pair.moe_layers", "reference.cost_usd.total"}) {
    INFO(k);
    CHECK(rec.keys.count(k) == 1);
  }
}
