#pragma once
// Helpers shared by the tests: paths to data, and running the trainsim binary.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ts_test {

// Compiled into support_paths.cpp alone, so test sources do not depend on where the tree is.
std::filesystem::path source_dir();
std::filesystem::path shared_dir();
const char* trainsim_bin();
inline std::filesystem::path data(const std::string& rel) { return source_dir() / rel; }

// Whether a file of the read-only ../shared/ folder is there. The product builds and runs without
// it; a test that needs it calls this first and, when it is absent, says so on stdout and skips.
inline bool shared_present(const std::filesystem::path& p) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(p, ec) || std::filesystem::is_directory(p, ec)) return true;
  std::printf("skipped: %s is absent (the read-only shared/ folder beside the tree)\n", p.string().c_str());
  return false;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh, empty temporary directory for one test.
inline std::filesystem::path temp_dir(const std::string& tag) {
  auto base = std::filesystem::temp_directory_path() /
              ("trainsim-test-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  return base;
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << text;
}

struct RunResult {
  int status = -1;  // exit status
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `trainsim ARGS` (ARGS is passed to /bin/sh, so quote paths) and captures its output.
// `env` is put before the command ("VAR=value ").
inline RunResult run_trainsim(const std::string& args, const std::string& cwd = "", const std::string& env = "") {
  static int counter = 0;
  auto dir = std::filesystem::temp_directory_path();
  auto tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
  auto out = dir / ("ts-out-" + tag);
  auto err = dir / ("ts-err-" + tag);
  std::string cmd = env + "'" + trainsim_bin() + "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
  if (!cwd.empty()) cmd = "cd '" + cwd + "' && " + cmd;
  int raw = std::system(cmd.c_str());
  RunResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace ts_test
