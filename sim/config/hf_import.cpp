#include "config/hf_import.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/reader.hpp"
#include "core/error.hpp"

namespace trainsim {

namespace {

using json = nlohmann::json;
using i64 = std::int64_t;

// Fields that change neither parameters nor FLOPs (token ids, dropout, epsilons, RoPE base and
// scaling, initialisation, runtime and serialisation settings, load-balancing losses, routing
// details that keep top-k).
const std::set<std::string, std::less<>> kHarmless = {
    "_name_or_path", "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "auto_map",
    "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range", "use_cache", "attention_dropout",
    "hidden_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "resid_pdrop",
    "embd_pdrop", "rms_norm_eps", "layer_norm_eps",
    "layer_norm_epsilon", "rope_theta", "rope_scaling", "rope_parameters", "rotary_emb_base", "rotary_pct",
    "partial_rotary_factor", "max_position_embeddings", "original_max_position_embeddings", "output_router_logits",
    "router_aux_loss_coef", "router_jitter_noise", "aux_loss_alpha", "seq_aux", "quantization_config", "pretraining_tp",
    "tokenizer_class", "routed_scaling_factor", "norm_topk_prob", "topk_method", "ep_size", "use_parallel_residual",
    "use_mrope", "tie_word_embeddings", "is_decoder", "return_dict", "output_attentions", "output_hidden_states",
    "bad_words_ids", "num_hashes", "use_return_dict"};

// The config.json object, recording which fields were read.
class Fields {
 public:
  Fields(const json& j, std::string file) : j_(j), file_(std::move(file)) {}

  bool has(std::string_view k) const {
    const auto it = j_.find(k);
    return it != j_.end() && !it->is_null();
  }
  void use(std::string_view k) { used_.emplace(k); }

  i64 integer(std::string_view k, i64 min = 1) {
    use(k);
    const auto it = j_.find(k);
    if (it == j_.end() || it->is_null()) fail({std::string(k)}, "missing (an integer is needed)");
    if (!it->is_number_integer()) fail({std::string(k)}, fmt::format("expected an integer, found {}", it->dump()));
    const i64 v = it->get<i64>();
    if (v < min) fail({std::string(k)}, fmt::format("{} is below {}", v, min));
    return v;
  }
  i64 integer_or(std::string_view k, i64 dflt, i64 min = 0) { return has(k) ? integer(k, min) : (use(k), dflt); }
  bool boolean_or(std::string_view k, bool dflt) {
    use(k);
    if (!has(k)) return dflt;
    const auto& v = j_.at(std::string(k));
    if (!v.is_boolean()) fail({std::string(k)}, fmt::format("expected true or false, found {}", v.dump()));
    return v.get<bool>();
  }
  std::string string_or(std::string_view k, std::string dflt) {
    use(k);
    if (!has(k)) return dflt;
    const auto& v = j_.at(std::string(k));
    if (!v.is_string()) fail({std::string(k)}, fmt::format("expected a string, found {}", v.dump()));
    return v.get<std::string>();
  }
  std::string raw(std::string_view k) const { return has(k) ? j_.at(std::string(k)).dump() : "null"; }

  // Fields neither read nor harmless.
  std::vector<std::string> unread() const {
    std::vector<std::string> out;
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!used_.count(it.key()) && !kHarmless.count(it.key())) out.push_back(it.key());
    return out;
  }

  [[noreturn]] void fail(const std::vector<std::string>& fields, const std::string& msg) const {
    std::string names;
    for (const auto& f : fields) names += (names.empty() ? "" : ", ") + f;
    throw DataError(SourcePos{file_, 0, 0}, fmt::format("field {} {}; nothing was written", names, msg));
  }

 private:
  const json& j_;
  std::string file_;
  std::set<std::string, std::less<>> used_;
};

// A TOML basic string.
std::string toml_str(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"') o += "\\\"";
    else if (c == '\\') o += "\\\\";
    else if (c == '\n') o += "\\n";
    else if (c == '\t') o += "\\t";
    else if (c < 0x20 || c == 0x7f) o += fmt::format("\\u{:04x}", c);
    else o += static_cast<char>(c);
  }
  return o + "\"";
}

// The model file being written: sections of `key = value  # field` lines.
struct Toml {
  std::vector<std::string> header;
  std::map<std::string, std::vector<std::string>> sections;  // "" first, then attention, mlp, moe, mtp
  void put(const std::string& section, const std::string& key, const std::string& value, const std::string& field = "") {
    std::string line = fmt::format("{} = {}", key, value);
    if (!field.empty()) line = fmt::format("{:<28}# {}", line, field);
    sections[section].push_back(line);
  }
  std::string text() const {
    std::string o;
    for (const auto& h : header) o += "# " + h + "\n";
    auto emit = [&](const std::string& name) {
      const auto it = sections.find(name);
      if (it == sections.end()) return;
      if (!name.empty()) o += "\n[" + name + "]\n";
      for (const auto& l : it->second) o += l + "\n";
    };
    for (const char* s : {"", "attention", "mlp", "moe", "mtp"}) emit(s);
    return o;
  }
};

std::string i(i64 v) { return std::to_string(v); }
std::string b(bool v) { return v ? "true" : "false"; }

struct Mapped {
  Toml toml;
  std::vector<std::string> notes;
  std::string summary;  // for the description
};

void common_top(Fields& f, Toml& t, const char* norm) {
  t.put("", "layers", i(f.integer("num_hidden_layers")), "num_hidden_layers");
  t.put("", "hidden", i(f.integer("hidden_size")), "hidden_size");
  t.put("", "vocab", i(f.integer("vocab_size")), "vocab_size");
  t.put("", "tied_embeddings", b(f.boolean_or("tie_word_embeddings", false)), "tie_word_embeddings");
  t.put("", "norm", toml_str(norm));
  t.put("", "positions", toml_str("rope"));
}

// The sliding window, when one applies, is recorded as not modelled.
void sliding_window(Fields& f, std::vector<std::string>& notes) {
  const bool on = f.boolean_or("use_sliding_window", true);
  f.use("sliding_window");
  f.use("max_window_layers");
  if (on && f.has("sliding_window"))
    notes.push_back(fmt::format("sliding_window = {}: sliding-window attention is not modelled; attention FLOPs and "
                                "costs assume full causal attention and are overstated for sequences longer than the window",
                                f.raw("sliding_window")));
}

// Llama, Mistral, Qwen2, Mixtral: GQA/MHA attention, SwiGLU, RMSNorm, RoPE.
Mapped map_llama_like(Fields& f, bool qwen2, bool mixtral) {
  Mapped m;
  auto& t = m.toml;
  common_top(f, t, "rmsnorm");
  const i64 hidden = f.integer("hidden_size"), heads = f.integer("num_attention_heads");
  const i64 kv = f.integer_or("num_key_value_heads", heads, 1);
  i64 head_dim = 0;
  if (f.has("head_dim")) {
    head_dim = f.integer("head_dim");
  } else {
    f.use("head_dim");
    if (hidden % heads != 0) f.fail({"hidden_size", "num_attention_heads"}, "do not give an integer head size (and head_dim is absent)");
    head_dim = hidden / heads;
  }
  t.put("attention", "type", toml_str(kv == heads ? "mha" : "gqa"), "num_key_value_heads == num_attention_heads ? mha : gqa");
  t.put("attention", "heads", i(heads), "num_attention_heads");
  if (kv != heads) t.put("attention", "kv_heads", i(kv), "num_key_value_heads");
  t.put("attention", "head_dim", i(head_dim), f.has("head_dim") ? "head_dim" : "hidden_size / num_attention_heads");
  const bool bias = f.boolean_or("attention_bias", false);
  if (bias) t.put("attention", "bias", "true", "attention_bias");
  else if (qwen2) t.put("attention", "qkv_bias", "true", "Qwen2: bias on q/k/v, none on o");
  const std::string act = f.string_or("hidden_act", "silu");
  if (act != "silu" && act != "swish")
    f.fail({"hidden_act"}, fmt::format("'{}' in a gated MLP is not modelled (trainsim's gated MLP is SwiGLU: silu)", act));
  t.put("mlp", "activation", toml_str("swiglu"), "hidden_act = \"" + act + "\", gated (gate/up/down)");
  const i64 inter = f.integer("intermediate_size");
  t.put("mlp", "intermediate", i(inter), "intermediate_size");
  if (f.boolean_or("mlp_bias", false)) t.put("mlp", "bias", "true", "mlp_bias");
  sliding_window(f, m.notes);
  m.summary = fmt::format("{} layers, hidden {}, {} heads / {} KV heads, FFN {}", f.integer("num_hidden_layers"), hidden,
                          heads, kv, inter);
  if (mixtral) {
    const i64 experts = f.integer("num_local_experts"), k = f.integer("num_experts_per_tok");
    if (k > experts) f.fail({"num_experts_per_tok", "num_local_experts"}, "choose more experts than there are");
    t.put("moe", "first_dense_layers", "0", "every layer is MoE");
    t.put("moe", "routed_experts", i(experts), "num_local_experts");
    t.put("moe", "shared_experts", "0");
    t.put("moe", "top_k", i(k), "num_experts_per_tok");
    t.put("moe", "expert_intermediate", i(inter), "intermediate_size");
    t.put("moe", "gate", toml_str("softmax"));
    m.summary += fmt::format(", {} experts top-{}", experts, k);
  }
  return m;
}

// DeepSeek-V2/V3: MLA attention and DeepSeekMoE.
Mapped map_deepseek(Fields& f, bool v3) {
  Mapped m;
  auto& t = m.toml;
  common_top(f, t, "rmsnorm");
  const i64 heads = f.integer("num_attention_heads");
  f.use("num_key_value_heads");  // MLA: one latent per token, every head its own k/v
  if (f.boolean_or("attention_bias", false)) f.fail({"attention_bias"}, "= true is not modelled for MLA");
  t.put("attention", "type", toml_str("mla"));
  t.put("attention", "heads", i(heads), "num_attention_heads");
  t.put("attention", "q_lora_rank", i(f.integer_or("q_lora_rank", 0, 0)), "q_lora_rank (null: queries projected directly)");
  t.put("attention", "kv_lora_rank", i(f.integer("kv_lora_rank")), "kv_lora_rank");
  t.put("attention", "qk_nope_head_dim", i(f.integer("qk_nope_head_dim")), "qk_nope_head_dim");
  t.put("attention", "qk_rope_head_dim", i(f.integer("qk_rope_head_dim", 0)), "qk_rope_head_dim");
  t.put("attention", "v_head_dim", i(f.integer("v_head_dim")), "v_head_dim");
  const std::string act = f.string_or("hidden_act", "silu");
  if (act != "silu" && act != "swish") f.fail({"hidden_act"}, fmt::format("'{}' in a gated MLP is not modelled", act));
  t.put("mlp", "activation", toml_str("swiglu"), "hidden_act = \"" + act + "\", gated");
  t.put("mlp", "intermediate", i(f.integer("intermediate_size")), "intermediate_size (the dense layers)");
  const i64 layers = f.integer("num_hidden_layers");
  const i64 experts = f.integer("n_routed_experts"), k = f.integer("num_experts_per_tok");
  if (f.integer_or("moe_layer_freq", 1, 1) != 1)
    f.fail({"moe_layer_freq"}, fmt::format("= {}: MoE in every other layer is not modelled (only the first layers dense)",
                                           f.raw("moe_layer_freq")));
  const i64 first_dense = f.integer_or("first_k_dense_replace", 0, 0);
  if (first_dense >= layers) f.fail({"first_k_dense_replace"}, "leaves no MoE layer");
  const i64 groups = f.integer_or("n_group", 1, 1);
  const i64 limited = f.integer_or("topk_group", groups, 1);
  const std::string gate = f.string_or("scoring_func", "softmax");
  if (gate != "softmax" && gate != "sigmoid") f.fail({"scoring_func"}, fmt::format("'{}' is not softmax or sigmoid", gate));
  t.put("moe", "first_dense_layers", i(first_dense), "first_k_dense_replace");
  t.put("moe", "routed_experts", i(experts), "n_routed_experts");
  t.put("moe", "shared_experts", i(f.integer_or("n_shared_experts", 0, 0)), "n_shared_experts");
  t.put("moe", "top_k", i(k), "num_experts_per_tok");
  t.put("moe", "expert_intermediate", i(f.integer("moe_intermediate_size")), "moe_intermediate_size");
  t.put("moe", "expert_groups", i(groups), "n_group");
  t.put("moe", "limited_groups", i(limited), "topk_group");
  t.put("moe", "gate", toml_str(gate), "scoring_func");
  const i64 mtp = f.integer_or("num_nextn_predict_layers", 0, 0);
  if (mtp > 0) t.put("mtp", "depth", i(mtp), "num_nextn_predict_layers");
  if (!v3 && mtp > 0) m.notes.push_back("num_nextn_predict_layers on a DeepSeek-V2 config: read as MTP modules");
  m.summary = fmt::format("{} layers MLA + DeepSeekMoE ({} shared + {} routed, top-{}){}", layers,
                          f.integer_or("n_shared_experts", 0, 0), experts, k, mtp > 0 ? fmt::format(", MTP depth {}", mtp) : "");
  return m;
}

// GPT-NeoX (Pythia, GPT-NeoX-20B): MHA with biases, LayerNorm, GELU MLP with biases.
Mapped map_neox(Fields& f) {
  Mapped m;
  auto& t = m.toml;
  common_top(f, t, "layernorm");
  const i64 hidden = f.integer("hidden_size"), heads = f.integer("num_attention_heads");
  if (hidden % heads != 0) f.fail({"hidden_size", "num_attention_heads"}, "do not give an integer head size");
  t.put("attention", "type", toml_str("mha"));
  t.put("attention", "heads", i(heads), "num_attention_heads");
  t.put("attention", "head_dim", i(hidden / heads), "hidden_size / num_attention_heads");
  t.put("attention", "bias", b(f.boolean_or("attention_bias", true)), "attention_bias (GPT-NeoX default true)");
  const std::string act = f.string_or("hidden_act", "gelu");
  if (act.rfind("gelu", 0) != 0) f.fail({"hidden_act"}, fmt::format("'{}' is not a GELU", act));
  t.put("mlp", "activation", toml_str("gelu"), "hidden_act = \"" + act + "\"");
  const i64 inter = f.integer("intermediate_size");
  t.put("mlp", "intermediate", i(inter), "intermediate_size");
  t.put("mlp", "bias", "true", "GPT-NeoX MLP biases");
  m.summary = fmt::format("{} layers, hidden {}, {} heads, FFN {}", f.integer("num_hidden_layers"), hidden, heads, inter);
  return m;
}

std::string default_name(const json& j, const std::string& file) {
  const auto it = j.find("_name_or_path");
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty())
    throw UsageError(fmt::format("import-model: {} has no _name_or_path: give the model a name with --name", file));
  std::string n = it->get<std::string>();
  while (!n.empty() && n.back() == '/') n.pop_back();
  if (const auto slash = n.rfind('/'); slash != std::string::npos) n = n.substr(slash + 1);
  for (auto& c : n) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '-';
  }
  if (n.empty()) throw UsageError(fmt::format("import-model: {}: _name_or_path gives no name: use --name", file));
  return n;
}

}  // namespace

const std::vector<std::string>& hf_architectures() {
  static const std::vector<std::string> a = {"LlamaForCausalLM",      "MistralForCausalLM",    "Qwen2ForCausalLM",
                                             "MixtralForCausalLM",    "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM",
                                             "GPTNeoXForCausalLM"};
  return a;
}

HfImport import_hf_config(const std::string& text, const std::string& file, const std::string& name_in,
                          const std::string& source_in) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw DataError(SourcePos{file, 0, 0}, fmt::format("not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) throw DataError(SourcePos{file, 0, 0}, "not a config.json: expected a JSON object");
  Fields f(j, file);
  const auto arch_it = j.find("architectures");
  if (arch_it == j.end() || !arch_it->is_array() || arch_it->size() != 1 || !(*arch_it)[0].is_string())
    throw DataError(SourcePos{file, 0, 0},
                    "field architectures: expected one architecture name, e.g. [\"LlamaForCausalLM\"]; nothing was written");
  const std::string arch = (*arch_it)[0].get<std::string>();
  const auto& known = hf_architectures();
  if (std::find(known.begin(), known.end(), arch) == known.end()) {
    // Which fields would no mapping here read? Every mapping's fields, on a scratch copy.
    std::set<std::string> mapped = {"num_hidden_layers", "hidden_size", "vocab_size", "num_attention_heads",
                                    "num_key_value_heads", "head_dim", "attention_bias", "hidden_act",
                                    "intermediate_size", "mlp_bias", "use_sliding_window", "sliding_window",
                                    "max_window_layers", "num_local_experts", "num_experts_per_tok", "q_lora_rank",
                                    "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                                    "n_routed_experts", "moe_layer_freq", "first_k_dense_replace", "n_group",
                                    "topk_group", "scoring_func", "n_shared_experts", "moe_intermediate_size",
                                    "num_nextn_predict_layers"};
    std::string unmapped;
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!mapped.count(it.key()) && !kHarmless.count(it.key())) unmapped += (unmapped.empty() ? "" : ", ") + it.key();
    std::string list;
    for (const auto& a : known) list += (list.empty() ? "" : ", ") + a;
    throw DataError(SourcePos{file, 0, 0},
                    fmt::format("architecture '{}' is not one import-model maps ({}); fields it could not map: {}; "
                                "nothing was written (write the model TOML by hand: docs/configuration.md)",
                                arch, list,
                                unmapped.empty() ? "none beyond the architecture itself (it may differ in ways config.json "
                                                   "does not state)"
                                                 : unmapped));
  }
  Mapped m;
  if (arch == "DeepseekV2ForCausalLM" || arch == "DeepseekV3ForCausalLM") m = map_deepseek(f, arch == "DeepseekV3ForCausalLM");
  else if (arch == "GPTNeoXForCausalLM") m = map_neox(f);
  else m = map_llama_like(f, arch == "Qwen2ForCausalLM", arch == "MixtralForCausalLM");
  if (const auto rest = f.unread(); !rest.empty())
    f.fail(rest, fmt::format("of this {} config.json {} not mapped by import-model (it may change parameters or FLOPs)", arch,
                             rest.size() == 1 ? "is" : "are"));

  const std::string name = name_in.empty() ? default_name(j, file) : name_in;
  std::string source = source_in;
  if (source.empty()) {
    source = "Hugging Face config.json " + file;
    if (const auto it = j.find("_name_or_path"); it != j.end() && it->is_string()) source += " (" + it->get<std::string>() + ")";
  }
  Toml& t = m.toml;
  t.header = {"Imported by `trainsim import-model` from a Hugging Face config.json.",
              "Source: " + source,
              fmt::format("Architecture {} (model_type {}). Each value names the config.json field it comes from.", arch,
                          f.raw("model_type"))};
  for (const auto& n : m.notes) t.header.push_back("Not modelled: " + n);
  auto& top = t.sections[""];
  top.insert(top.begin(), {fmt::format("name = {}", toml_str(name)),
                           fmt::format("description = {}", toml_str(fmt::format("{} (imported): {}", name, m.summary))),
                           fmt::format("source = {}", toml_str(source))});
  HfImport out;
  out.toml = t.text();
  out.architecture = arch;
  out.notes = m.notes;
  // Read it back: the file must be a valid model.
  try {
    const toml::table tt = parse_toml_string(out.toml, "<import-model>");
    out.model = parse_model(Section(tt, "", "<import-model>"));
  } catch (const ConfigError& e) {
    throw DataError(SourcePos{file, 0, 0}, fmt::format("the mapped model is not valid ({}); nothing was written", e.what()));
  }
  return out;
}

}  // namespace trainsim
