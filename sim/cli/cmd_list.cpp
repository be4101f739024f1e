// trainsim list gpus|models|schedules|scenarios: what is installed, one line each, from the
// data folder (data_dir(): $TRAINSIM_DATA, the installed share/trainsim, or the source tree).
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/table.hpp"
#include "model/model_math.hpp"
#include "schedule/schedule.hpp"

namespace trainsim::cli {

namespace {

std::string list_gpus() {
  TextTable t({"gpu", "HBM", "BF16", "FP8", "NIC", "price", "description"}, {false, true, true, true, true, true, false});
  for (const auto& n : hardware_names()) {
    const HardwareConfig h = load_hardware(n);
    t.add_row({n, fmt::format("{:.0f} GB", h.hbm_capacity.value / 1e9), fmt::format("{:.0f} TFLOPS", h.bf16.value / 1e12),
               h.fp8.value > 0 ? fmt::format("{:.0f} TFLOPS", h.fp8.value / 1e12) : std::string("-"),
               fmt::format("{:.0f} Gb/s", h.nic.value * 8 / 1e9), fmt::format("${:.2f}/h", h.price.value), h.description});
  }
  return t.str("");
}

std::string list_models() {
  TextTable t({"model", "params", "activated", "layers", "description"}, {false, true, true, true, false});
  for (const auto& n : model_names()) {
    const ModelConfig m = load_model((data_dir() / "models" / (n + ".toml")).string());
    const ParamCounts pc = count_params(m);
    t.add_row({n, human_count(pc.total), human_count(pc.active), std::to_string(m.layers), m.description});
  }
  return t.str("");
}

std::string list_schedules() {
  TextTable t({"schedule", "summary", "citation"}, {false, false, false});
  for (const auto& s : schedule::registry()) t.add_row({s.name, s.summary, s.citation});
  return t.str("");
}

std::string list_scenarios() {
  TextTable t({"scenario", "model", "cluster", "description"}, {false, false, false, false});
  for (const auto& n : scenario_names()) {
    const auto path = (data_dir() / "scenarios" / (n + ".toml")).string();
    try {
      const Scenario sc = load_scenario(path);
      t.add_row({n, sc.model.name, fmt::format("{} x {}", sc.cluster.gpus, sc.hardware.name), sc.description});
    } catch (const InputError& e) {
      t.add_row({n, "-", "-", fmt::format("(does not load: {})", e.what())});
    }
  }
  return t.str("");
}

}  // namespace

void setup_list(CLI::App& sub) {
  auto what = std::make_shared<std::string>();
  sub.add_option("what", *what, "gpus | models | schedules | scenarios")->required();
  sub.footer("Names come from the data folder: profiles/hardware/, models/, scenarios/ (TRAINSIM_DATA, the installed "
             "share/trainsim, or the source tree), and the schedule registry. Each name works where the option expects "
             "one: --hardware h100-sxm, --set cluster.gpu=h200, trainsim run deepseek-v3-h800.");
  sub.callback([what] {
    const std::vector<std::string> kinds = {"gpus", "models", "schedules", "scenarios"};
    std::string out;
    if (*what == "gpus") out = list_gpus();
    else if (*what == "models") out = list_models();
    else if (*what == "schedules") out = list_schedules();
    else if (*what == "scenarios") out = list_scenarios();
    else {
      const std::string hint = closest_match(*what, kinds);
      throw UsageError(fmt::format("list: unknown list '{}'{}; choose one of gpus, models, schedules, scenarios", *what,
                                   hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
    fmt::print("{}", out);
  });
}

}  // namespace trainsim::cli
