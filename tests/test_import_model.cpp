// trainsim import-model (issue 12, point 5): real Hugging Face config.json files, written here as
// published, become model TOMLs whose parameter counts match the published sizes; unknown
// architectures and unmappable fields are refused, naming the fields; the source is recorded.
// Every family the importer maps has a real file here: Qwen2, Mixtral (the Mistral layer), Llama,
// DeepSeek-V2 and -V3, GPT-NeoX.
//
// The config.json texts are the files of the public Hugging Face repositories named above each
// (configuration data, reproduced for the test); the published sizes are cited beside each check.
#include <catch2/catch.hpp>

#include <filesystem>

#include "config/scenario.hpp"
#include "model/model_math.hpp"
#include "ux_support.hpp"

using namespace trainsim;
namespace fs = std::filesystem;

namespace {

// Qwen/Qwen2.5-0.5B config.json (snapshot 060db6499f32faf8b98477b0a26969ef7d8b9987).
const char* kQwen = R"({
  "architectures": [
    "Qwen2ForCausalLM"
  ],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 24,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1",
  "use_cache": true,
  "use_mrope": false,
  "use_sliding_window": false,
  "vocab_size": 151936
}
)";

// mistralai/Mixtral-8x7B-v0.1 config.json.
const char* kMixtral = R"({
  "architectures": [
    "MixtralForCausalLM"
  ],
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mixtral",
  "num_attention_heads": 32,
  "num_experts_per_tok": 2,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "num_local_experts": 8,
  "output_router_logits": false,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "router_aux_loss_coef": 0.02,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.36.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
}
)";

// deepseek-ai/DeepSeek-V3 config.json.
const char* kDeepSeekV3 = R"({
  "architectures": [
    "DeepseekV3ForCausalLM"
  ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "auto_map": {
    "AutoConfig": "configuration_deepseek.DeepseekV3Config",
    "AutoModel": "modeling_deepseek.DeepseekV3Model",
    "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM"
  },
  "bos_token_id": 0,
  "eos_token_id": 1,
  "ep_size": 1,
  "first_k_dense_replace": 3,
  "hidden_act": "silu",
  "hidden_size": 7168,
  "initializer_range": 0.02,
  "intermediate_size": 18432,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v3",
  "moe_intermediate_size": 2048,
  "moe_layer_freq": 1,
  "n_group": 8,
  "n_routed_experts": 256,
  "n_shared_experts": 1,
  "norm_topk_prob": true,
  "num_attention_heads": 128,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 61,
  "num_key_value_heads": 128,
  "num_nextn_predict_layers": 1,
  "q_lora_rank": 1536,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "quantization_config": {
    "activation_scheme": "dynamic",
    "fmt": "e4m3",
    "quant_method": "fp8",
    "weight_block_size": [
      128,
      128
    ]
  },
  "rms_norm_eps": 1e-06,
  "rope_scaling": {
    "beta_fast": 32,
    "beta_slow": 1,
    "factor": 40,
    "mscale": 1.0,
    "mscale_all_dim": 1.0,
    "original_max_position_embeddings": 4096,
    "type": "yarn"
  },
  "rope_theta": 10000,
  "routed_scaling_factor": 2.5,
  "scoring_func": "sigmoid",
  "tie_word_embeddings": false,
  "topk_group": 4,
  "topk_method": "noaux_tc",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 129280
}
)";

// EleutherAI/gpt-neox-20b config.json (an early revision of the repository).
const char* kNeoX = R"({
  "architectures": [ "GPTNeoXForCausalLM" ],
  "attention_probs_dropout_prob": 0.1,
  "bos_token_id": 0,
  "eos_token_id": 2,
  "hidden_act": "gelu_fast",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 6144,
  "initializer_range": 0.02,
  "intermediate_size": 24576,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 2048,
  "model_type": "gpt_neox",
  "num_attention_heads": 64,
  "num_hidden_layers": 44,
  "rotary_emb_base": 10000,
  "rotary_pct": 0.25,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "transformers_version": "4.19.0.dev0",
  "use_cache": true,
  "vocab_size": 50432
}
)";

// meta-llama/Llama-3.1-70B config.json.
const char* kLlama = R"({
  "architectures": [
    "LlamaForCausalLM"
  ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [
    128001,
    128008,
    128009
  ],
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 8192,
  "initializer_range": 0.02,
  "intermediate_size": 28672,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 64,
  "num_hidden_layers": 80,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.47.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}
)";

// deepseek-ai/DeepSeek-V2.5 config.json (the DeepSeek-V2 236B architecture).
const char* kDeepSeekV2 = R"({
  "architectures": [
    "DeepseekV2ForCausalLM"
  ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "auto_map": {
    "AutoConfig": "configuration_deepseek.DeepseekV2Config",
    "AutoModel": "modeling_deepseek.DeepseekV2Model",
    "AutoModelForCausalLM": "modeling_deepseek.DeepseekV2ForCausalLM"
  },
  "aux_loss_alpha": 0.001,
  "bos_token_id": 100000,
  "eos_token_id": 100001,
  "ep_size": 1,
  "first_k_dense_replace": 1,
  "hidden_act": "silu",
  "hidden_size": 5120,
  "initializer_range": 0.02,
  "intermediate_size": 12288,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v2",
  "moe_intermediate_size": 1536,
  "moe_layer_freq": 1,
  "n_group": 8,
  "n_routed_experts": 160,
  "n_shared_experts": 2,
  "norm_topk_prob": false,
  "num_attention_heads": 128,
  "num_experts_per_tok": 6,
  "num_hidden_layers": 60,
  "num_key_value_heads": 128,
  "pretraining_tp": 1,
  "q_lora_rank": 1536,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "rms_norm_eps": 1e-06,
  "rope_scaling": {
    "beta_fast": 32,
    "beta_slow": 1,
    "factor": 40,
    "mscale": 1.0,
    "mscale_all_dim": 1.0,
    "original_max_position_embeddings": 4096,
    "type": "yarn"
  },
  "rope_theta": 10000,
  "routed_scaling_factor": 16.0,
  "scoring_func": "softmax",
  "seq_aux": true,
  "tie_word_embeddings": false,
  "topk_group": 3,
  "topk_method": "group_limited_greedy",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.39.3",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 102400
}
)";

struct Imported {
  ts_test::RunResult run;
  fs::path toml;
};

Imported import(const std::string& tag, const char* json, const std::string& extra = "") {
  const auto dir = ts_test::temp_dir("import-" + tag);
  ts_test::write_file(dir / "config.json", json);
  Imported r;
  r.toml = dir / (tag + ".toml");
  r.run = ts_test::run_trainsim("import-model " + ts_test::q((dir / "config.json").string()) + " --name " + tag + " -o " +
                                ts_test::q(r.toml.string()) + extra);
  return r;
}

ParamCounts params_of(const Imported& r) {
  INFO(r.run.err);
  REQUIRE(r.run.status == 0);
  return count_params(load_model(r.toml.string()));
}

}  // namespace

TEST_CASE("import-model: Qwen2.5-0.5B, tied embeddings and q/k/v-only bias", "[import]") {
  const Imported r = import("qwen2.5-0.5b", kQwen);
  const ParamCounts pc = params_of(r);
  // Qwen2.5-0.5B model card: 0.49B parameters, 0.36B without the (tied) embedding.
  CHECK(pc.total == Approx(0.49e9).epsilon(0.01));
  CHECK(pc.total - pc.embedding == Approx(0.36e9).epsilon(0.01));
  // The bias on q, k and v (none on o) is in the file and in the count: 24 layers x (896 query +
  // 2 x 128 key/value) bias values.
  const std::string toml = ts_test::read_file(r.toml);
  CHECK(toml.find("qkv_bias = true") != std::string::npos);
  const double without = count_params(load_model(r.toml.string(), {"attention.qkv_bias=false"})).total;
  CHECK(pc.total - without == 24.0 * (896 + 2 * 128));
  // The source is recorded, and the run summary says what it wrote.
  CHECK(toml.find("source = \"Hugging Face config.json ") != std::string::npos);
  CHECK(r.run.out.find("Qwen2ForCausalLM model 'qwen2.5-0.5b'") != std::string::npos);
}

TEST_CASE("import-model: Mixtral-8x7B", "[import]") {
  const ParamCounts pc = params_of(import("mixtral-8x7b", kMixtral));
  // Mixtral of Experts (arXiv 2401.04088): 46.7B parameters, 12.9B active per token.
  CHECK(pc.total == Approx(46.7e9).epsilon(0.005));
  CHECK(pc.active == Approx(12.9e9).epsilon(0.005));
}

TEST_CASE("import-model: DeepSeek-V3, with a --source", "[import]") {
  const Imported r = import("deepseek-v3", kDeepSeekV3, " --source 'deepseek-ai/DeepSeek-V3 config.json'");
  const ParamCounts pc = params_of(r);
  // DeepSeek-V3 report §4.2: 671B total, 37B activated; README_WEIGHTS: the MTP module adds 11.5B
  // unique parameters (685B in all).
  CHECK(pc.total == Approx(671e9).epsilon(0.002));
  CHECK(pc.active == Approx(37e9).epsilon(0.02));
  CHECK(pc.mtp_total == Approx(11.5e9).epsilon(0.02));
  // The import equals the hand-written models/deepseek-v3.toml.
  CHECK(pc.total == count_params(load_model(ts_test::data("models/deepseek-v3.toml").string())).total);
  CHECK(ts_test::read_file(r.toml).find("source = \"deepseek-ai/DeepSeek-V3 config.json\"") != std::string::npos);
}

TEST_CASE("import-model: GPT-NeoX-20B, biases and LayerNorm", "[import]") {
  const ParamCounts pc = params_of(import("gpt-neox-20b", kNeoX));
  // Black et al., GPT-NeoX-20B (arXiv 2204.06745): 20,554,567,680 parameters.
  CHECK(pc.total == Approx(20554567680.0).epsilon(1e-6));
}

TEST_CASE("import-model refuses what it cannot map, naming the fields, and writes nothing", "[import]") {
  // An unknown architecture: refused with the fields no mapping reads.
  std::string q3 = kQwen;
  q3.replace(q3.find("Qwen2ForCausalLM"), 16, "Qwen3ForCausalLM");
  q3.replace(q3.find("\"use_cache\""), 0, "\"layer_types\": [\"full_attention\"],\n  ");
  Imported r = import("qwen3", q3.c_str());
  CHECK(r.run.status == 2);
  CHECK(r.run.err.find("architecture 'Qwen3ForCausalLM' is not one import-model maps") != std::string::npos);
  CHECK(r.run.err.find("fields it could not map: layer_types") != std::string::npos);
  CHECK_FALSE(fs::exists(r.toml));
  // A known architecture with a field that would change the model: refused, naming it.
  std::string more = kMixtral;
  more.replace(more.find("\"use_cache\""), 0, "\"num_shared_experts\": 2,\n  ");
  r = import("mixtral-shared", more.c_str());
  CHECK(r.run.status == 2);
  CHECK(r.run.err.find("field num_shared_experts") != std::string::npos);
  CHECK_FALSE(fs::exists(r.toml));
  // A value the model cannot express.
  std::string freq = kDeepSeekV3;
  freq.replace(freq.find("\"moe_layer_freq\": 1"), 19, "\"moe_layer_freq\": 2");
  r = import("ds-freq", freq.c_str());
  CHECK(r.run.status == 2);
  CHECK(r.run.err.find("field moe_layer_freq = 2") != std::string::npos);
  // Not JSON; and no name to give the model.
  r = import("broken", "{ \"architectures\": [");
  CHECK(r.run.status == 2);
  CHECK(r.run.err.find("not valid JSON") != std::string::npos);
  const auto dir = ts_test::temp_dir("import-noname");
  ts_test::write_file(dir / "config.json", kMixtral);
  const auto n = ts_test::run_trainsim("import-model " + ts_test::q((dir / "config.json").string()));
  CHECK(n.status == 2);
  CHECK(n.err.find("--name") != std::string::npos);
}

TEST_CASE("import-model records what it does not model", "[import]") {
  // Mistral-style sliding-window attention: the parameters map, the window is named as not modelled.
  std::string sw = kMixtral;
  sw.replace(sw.find("\"sliding_window\": null"), 22, "\"sliding_window\": 4096");
  const Imported r = import("mixtral-sw", sw.c_str());
  INFO(r.run.err);
  REQUIRE(r.run.status == 0);
  CHECK(r.run.out.find("not modelled: sliding_window = 4096") != std::string::npos);
  CHECK(ts_test::read_file(r.toml).find("# Not modelled: sliding_window = 4096") != std::string::npos);
}

TEST_CASE("import-model: Llama-3.1-70B and DeepSeek-V2.5", "[import]") {
  const ParamCounts llama = params_of(import("llama3.1-70b", kLlama));
  // The Llama 3 Herd of Models (arXiv 2407.21783): 70B; the released checkpoint has 70.6B.
  CHECK(llama.total == Approx(70.6e9).epsilon(0.002));
  CHECK(llama.total == count_params(load_model(ts_test::data("models/llama3-70b.toml").string())).total);
  const ParamCounts v2 = params_of(import("deepseek-v2.5", kDeepSeekV2));
  // DeepSeek-V2 (arXiv 2405.04434): 236B total, 21B activated.
  CHECK(v2.total == Approx(236e9).epsilon(0.003));
  CHECK(v2.active == Approx(21e9).epsilon(0.02));
}
