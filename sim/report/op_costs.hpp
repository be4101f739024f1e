#pragma once
// `trainsim describe SCENARIO --costs`: what every operation of one pipeline stage costs for one
// micro-batch on one GPU of the scenario's cluster, op by op, with the cost model's answer and
// where it came from (measured, fitted, transferred), and the totals per op class. The op
// lists are the step's (step/op_lists.hpp: TP, SP, EP, CP and the attention implementation
// applied), under the first phase's plan and training keys ([plan], [training]), the split the
// step uses, the whole GPU's SMs; recomputation repeats forward ops
// and is not listed again, kernel gaps and communication are not in these times.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "config/scenario.hpp"

namespace trainsim {

// `stage` must be < the plan's pipeline stages (ConfigError otherwise).
nlohmann::json op_costs_json(const Scenario& sc, std::int64_t stage);
std::string op_costs_text(const Scenario& sc, std::int64_t stage);

}  // namespace trainsim
