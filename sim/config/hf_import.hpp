#pragma once
// `trainsim import-model`: a model TOML (docs/configuration.md, "Model") from a Hugging Face
// config.json, for the architectures whose fields map onto trainsim's model description:
//
//   LlamaForCausalLM, MistralForCausalLM    GQA/MHA, SwiGLU, RMSNorm, RoPE; attention_bias, mlp_bias
//   Qwen2ForCausalLM                        the same with bias on q/k/v only (attention.qkv_bias)
//   MixtralForCausalLM                      every layer MoE: num_local_experts, top num_experts_per_tok
//   DeepseekV2ForCausalLM, DeepseekV3ForCausalLM  MLA + DeepSeekMoE (shared experts, node-limited
//                                           groups, softmax or sigmoid gate), MTP modules
//   GPTNeoXForCausalLM                      MHA with biases, LayerNorm, GELU, untied head
//
// Every field of the file is either mapped, known not to change parameters or FLOPs (token ids,
// dropout, norm epsilon, RoPE base and scaling, ...), or recorded as not modelled (sliding-window
// attention: FLOPs assume full causal attention). A field whose value the model cannot express
// (an MoE layer frequency other than 1, a non-gated activation in a gated family) refuses the
// file, naming the fields; so does an architecture not listed above, with the fields no mapping
// here reads. The TOML records the source (the file, or --source) and what was not modelled.

#include <string>
#include <vector>

#include "config/config.hpp"

namespace trainsim {

struct HfImport {
  std::string toml;                // the model file's text (parses with load_model)
  std::string architecture;        // e.g. "Qwen2ForCausalLM"
  std::vector<std::string> notes;  // fields recorded as not modelled
  ModelConfig model;               // the TOML read back
};

// `text`: the config.json; `file`: its name for messages; `name`/`source`: the model's name and
// source (empty: from `_name_or_path`, else an error asking for --name; the source defaults to
// the file). Throws DataError (file named) for malformed JSON, a missing or wrong-typed field,
// an unmappable value or architecture.
HfImport import_hf_config(const std::string& text, const std::string& file, const std::string& name,
                          const std::string& source);

// The architectures import_hf_config maps, in the order above.
const std::vector<std::string>& hf_architectures();

}  // namespace trainsim
