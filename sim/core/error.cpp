#include "core/error.hpp"

#include <fmt/format.h>

#include "core/time.hpp"

namespace trainsim {

std::string SourcePos::str() const {
  if (line == 0) return file;
  if (column == 0) return fmt::format("{}:{}", file, line);
  return fmt::format("{}:{}:{}", file, line, column);
}

static std::string config_what(const SourcePos& pos, const std::string& key, const std::string& msg) {
  if (key.empty()) return fmt::format("{}: {}", pos.str(), msg);
  return fmt::format("{}: key '{}': {}", pos.str(), key, msg);
}

ConfigError::ConfigError(SourcePos pos, std::string key, std::string message)
    : InputError(config_what(pos, key, message)),
      pos_(std::move(pos)),
      key_(std::move(key)),
      message_(std::move(message)) {}

DataError::DataError(SourcePos pos, std::string message)
    : InputError(fmt::format("{}: {}", pos.str(), message)), pos_(std::move(pos)) {}

void assertion_failed(const char* expr, const char* file, int line, const std::string& msg) {
  throw InternalError(fmt::format("internal error at {}:{}: assertion '{}' failed: {}", file, line, expr, msg));
}

std::string to_string(Time t) {
  const double ps = static_cast<double>(t.count_ps());
  const double a = ps < 0 ? -ps : ps;
  if (a < 1e3) return fmt::format("{}ps", t.count_ps());
  if (a < 1e6) return fmt::format("{:.3g}ns", ps / 1e3);
  if (a < 1e9) return fmt::format("{:.4g}us", ps / 1e6);
  if (a < 1e12) return fmt::format("{:.4g}ms", ps / 1e9);
  return fmt::format("{:.4g}s", ps / 1e12);
}

}  // namespace trainsim
