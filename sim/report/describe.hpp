#pragma once
// `trainsim describe`: parameters, FLOPs per token, per-layer breakdown and (for scenarios)
// memory per GPU, as terminal text and as JSON.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "config/scenario.hpp"
#include "model/memory.hpp"

namespace trainsim {

struct DescribeInput {
  std::string file;
  ModelConfig model;
  std::int64_t seq_len = 4096;
  std::optional<Scenario> scenario;
};

nlohmann::json describe_json(const DescribeInput& in);
std::string describe_text(const DescribeInput& in);

}  // namespace trainsim
