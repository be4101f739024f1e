#pragma once
// The step's mechanisms as models registered by name, each with the plan key that switches it,
// the framework default of that key and its citation. StepResult::models lists those a step used;
// sim/step/README.md is the long form of this table.

#include <string>
#include <vector>

#include "config/config.hpp"

namespace trainsim::step {

struct StepModel {
  const char* name;
  const char* key;        // [plan] key ("" = always on)
  const char* default_;   // the key's default (Megatron-Core's argument default)
  const char* citation;
  const char* summary;
  bool (*used)(const PlanConfig& p, bool moe);
};

const std::vector<StepModel>& step_models();
// "name (citation)" of every model the plan uses.
std::vector<std::string> models_in_use(const PlanConfig& p, bool moe);

}  // namespace trainsim::step
