#pragma once
// Small scenarios for the issue-12 tests, written into a temp folder.
#include <string>

#include "support.hpp"

namespace ts_test {

// Llama-3-8B on 8 GPUs, data parallel; `plan_extra`/`training_extra` are TOML lines added to
// [plan] and after [training]. With zero = 0 and seq_len 8192 this needs more than 80 GB per GPU.
inline std::string llama_scenario(const std::string& tag, const std::string& plan_extra = "zero = 1\n",
                                  const std::string& extra = "", const std::string& gpu = "h200") {
  const auto dir = temp_dir(tag);
  const auto path = dir / "s.toml";
  write_file(path, "name = \"" + tag + "\"\nmodel = \"" + data("models/llama3-8b.toml").string() +
                       "\"\n[cluster]\ngpu = \"" + gpu + "\"\ngpus = 8\ngpus_per_node = 8\n[plan]\ndp = 8\n" + plan_extra +
                       "[training]\nseq_len = 4096\nglobal_batch = 64\ntokens = 1e9\n" + extra);
  return path.string();
}

inline std::string q(const std::string& s) { return "'" + s + "'"; }

}  // namespace ts_test
