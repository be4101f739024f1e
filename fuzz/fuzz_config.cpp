// libFuzzer target for the configuration loader (built with -DTRAINSIM_FUZZ=ON and clang; run
// with scripts/fuzz.sh). The input is a TOML text. It goes through the parsing path the loader
// uses: parse_toml_string, then parse_model / parse_hardware / parse_cluster / parse_plan /
// parse_training on the sub-tables that are there (and parse_model on the whole text, as a model
// file), validate_scenario when every part parsed, and parse_sets with a `key=value` taken from
// the input (a "#set key=value" comment, or else the last line), laid over the parsed table
// as load_scenario does, followed by the same parsing.
// trainsim::InputError is the expected answer to bad input and is swallowed; anything else
// (another exception, an InternalError, a crash, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "config/config.hpp"
#include "config/reader.hpp"
#include "config/scenario.hpp"
#include "model/layer_split.hpp"
#include "core/error.hpp"

using namespace trainsim;

namespace {

const std::string kName = "fuzz.toml";

// Runs f; returns its result, or nothing if it rejected the input with an InputError.
template <class F>
auto expect_input_error(F&& f) -> std::optional<decltype(f())> {
  try {
    return f();
  } catch (const InputError&) {
    return std::nullopt;
  }
}

// The layers of one section as load_scenario builds them: --set's table over the file's.
std::vector<Section::Layer> layers_of(const toml::table& sets, const toml::table& root, const char* key) {
  std::vector<Section::Layer> out;
  for (const toml::table* t : {&sets, &root})
    if (const toml::node* n = t->get(key); n && n->as_table()) out.push_back(Section::Layer{n->as_table(), {}});
  return out;
}

template <class Parse>
auto parse_part(const std::vector<Section::Layer>& layers, const char* key, Parse parse)
    -> std::optional<decltype(parse(Section(layers, key, kName)))> {
  if (layers.empty()) return std::nullopt;
  return expect_input_error([&] { return parse(Section(layers, key, kName)); });
}

// The --set argument: what follows the last "#set " (a TOML comment, so the text still parses)
// up to the end of its line, or else the input's last line.
std::string set_argument(std::string_view text) {
  const auto mark = text.rfind("#set ");
  if (mark != std::string_view::npos) {
    std::string_view rest = text.substr(mark + 5);
    return std::string(rest.substr(0, rest.find('\n')));
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  const auto nl = text.rfind('\n');
  return std::string(nl == std::string_view::npos ? text : text.substr(nl + 1));
}

// Everything that can be read from a file's table with --set's table over it.
void parse_all(const toml::table& root, const toml::table& sets) {
  // The whole text as a model file.
  (void)expect_input_error([&] {
    return parse_model(Section({Section::Layer{&sets, {}}, Section::Layer{&root, {}}}, "", kName));
  });
  // The sections of a scenario.
  auto model = parse_part(layers_of(sets, root, "model"), "model", [](Section s) { return parse_model(std::move(s)); });
  auto hardware =
      parse_part(layers_of(sets, root, "hardware"), "hardware", [](Section s) { return parse_hardware(std::move(s)); });
  auto cluster =
      parse_part(layers_of(sets, root, "cluster"), "cluster", [](Section s) { return parse_cluster(std::move(s)); });
  const auto plan_layers = layers_of(sets, root, "plan");
  const auto training_layers = layers_of(sets, root, "training");
  auto plan = parse_part(plan_layers, "plan", [](Section s) { return parse_plan(std::move(s)); });
  auto training = parse_part(training_layers, "training", [](Section s) { return parse_training(std::move(s)); });
  (void)parse_part(layers_of(sets, root, "energy"), "energy", [](Section s) { return parse_energy(std::move(s)); });
  (void)parse_part(layers_of(sets, root, "goodput"), "goodput", [](Section s) { return parse_goodput(std::move(s)); });
  if (!(model && hardware && cluster && plan && training)) return;

  // All parts parsed: cross-check them as load_scenario does.
  Scenario sc;
  sc.file = kName;
  sc.model = std::move(*model);
  sc.hardware = std::move(*hardware);
  sc.cluster = std::move(*cluster);
  sc.plan = *plan;
  sc.training = *training;
  Phase main;
  main.training = std::move(*training);
  main.plan = std::move(*plan);
  main.key = "training";
  main.plan_layers = plan_layers;
  main.training_layers = training_layers;
  main.plan_prefix = "plan";
  main.training_prefix = "training";
  sc.phases.push_back(std::move(main));
  if (expect_input_error([&] {
        validate_scenario(sc);
        return true;
      })) {
    // A valid scenario: the derived quantities must be consistent with it.
    const auto layers = stage_layers(sc.model, sc.plan, sc.training.seq_len);
    TS_ASSERT(static_cast<std::int64_t>(layers.size()) == pipeline_stage_count(sc.plan), "stage count");
    TS_ASSERT(sc.microbatches_per_step(sc.training.global_batch) >= 1, "micro-batches per step");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const toml::table none;

  const std::optional<toml::table> root = expect_input_error([&] { return parse_toml_string(text, kName); });
  if (root) parse_all(*root, none);

  // --set: a key=value from the input, as a layer over the parsed table (or over nothing).
  const std::optional<toml::table> sets = expect_input_error([&] { return parse_sets({set_argument(text)}); });
  if (sets) parse_all(root ? *root : none, *sets);
  return 0;
}
