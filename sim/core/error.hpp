#pragma once
// Two channels for errors (see sim/README.md):
//  * Bad user input -> a typed exception derived from InputError, caught once in main and
//    mapped to exit status 2. Its message names the file, line, column and key.
//  * Broken internal invariants -> TS_ASSERT, which stays on in Release and throws
//    InternalError (exit status 70).
// Library code never calls exit().

#include <cstdint>
#include <stdexcept>
#include <string>

namespace trainsim {

// Where in an input file something was found. line/column are 1-based; 0 = unknown.
struct SourcePos {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string str() const;  // "file:line:col", "file:line", or "file"
};

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A configuration value that is wrong: malformed TOML, unknown/missing key, wrong type, bad
// unit, out of range, or an inconsistent plan. what() = "file:line:col: key 'k': message".
class ConfigError : public InputError {
 public:
  ConfigError(SourcePos pos, std::string key, std::string message);
  const SourcePos& pos() const { return pos_; }
  const std::string& key() const { return key_; }
  const std::string& message() const { return message_; }

 private:
  SourcePos pos_;
  std::string key_;
  std::string message_;
};

// A command-line value that is wrong (not a file).
class UsageError : public InputError {
 public:
  using InputError::InputError;
};

// A data file (trace, profile) that is malformed or truncated.
class DataError : public InputError {
 public:
  DataError(SourcePos pos, std::string message);
  const SourcePos& pos() const { return pos_; }

 private:
  SourcePos pos_;
};

// Not an error of the input: the plan it describes does not fit GPU memory, so a report was
// printed without prices. main() maps it to exit status 3.
class PlanDoesNotFit : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

[[noreturn]] void assertion_failed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace trainsim

#define TS_ASSERT(cond, msg)                                                              \
  do {                                                                                    \
    if (!(cond)) ::trainsim::assertion_failed(#cond, __FILE__, __LINE__, (msg));          \
  } while (0)
