// Model math against published parameter counts and FLOPs, and against hand calculations.
// Each published figure is quoted with its source; tolerances follow the figure's rounding.
#include <catch2/catch.hpp>

#include "config/scenario.hpp"
#include "model/model_math.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {
ModelConfig model(const std::string& name) { return load_model(ts_test::data("models/" + name + ".toml").string()); }
double rel(double a, double b) { return std::fabs(a - b) / b; }
}  // namespace

TEST_CASE("DeepSeek-V3 parameters: 671B total, 37B activated, MTP 11.5B", "[model][validation]") {
  const auto m = model("deepseek-v3");
  const auto p = count_params(m);
  // [V3-paper §4.2]: "671B total parameters, of which 37B are activated for each token".
  // Counted here: every weight and norm of the 61 layers, the embedding and the untied output head,
  // the router and its score-correction bias; not the MTP module (the HF checkpoint's 685B = 671B + 14B MTP).
  CHECK(rel(p.total, 671e9) < 0.01);
  // Activated: embedding and output head in full (36.7B in README_WEIGHTS "including 0.9B embedding
  // and 0.9B output head"); the paper's rounded 37B is the reference with ±2%.
  CHECK(rel(p.active, 37e9) < 0.02);
  // Hand count of the embedding: vocab 129280 x hidden 7168.
  CHECK(p.embedding == 129280.0 * 7168.0);
  // Routed experts: 58 MoE layers x 256 experts x 3 matrices of 7168 x 2048.
  CHECK(p.moe_routed == 58.0 * 256 * 3 * 7168.0 * 2048);
  // README_WEIGHTS: MTP "11.5B unique parameters excluding the shared embedding and head".
  CHECK(rel(p.mtp_total, 11.5e9) < 0.02);
}

TEST_CASE("MLA attention parameters of one DeepSeek-V3 layer by hand", "[model]") {
  const auto m = model("deepseek-v3");
  const double h = 7168, H = 128;
  const double q = h * 1536 + 1536 + 1536 * H * (128 + 64);  // wq_a, q_norm, wq_b
  const double kv = h * (512 + 64) + 512 + 512 * H * (128 + 128);  // wkv_a, kv_norm, wkv_b
  const double o = H * 128 * h;
  const double norms = 2 * h;
  const double dense_mlp = 3 * h * 18432;
  const LayerParams lp = layer_params(m, 0);  // layer 0 is dense
  CHECK(lp.dense == Approx(q + kv + o + norms + dense_mlp).epsilon(1e-12));
  CHECK(lp.routed == 0);
  const LayerParams moe = layer_params(m, 3);
  const double expert = 3 * h * 2048;
  CHECK(moe.dense == Approx(q + kv + o + norms + 1 * expert + h * 256 + 256).epsilon(1e-12));
  CHECK(moe.routed == Approx(256 * expert).epsilon(1e-12));
}

TEST_CASE("Published parameter counts of the model zoo", "[model][validation]") {
  struct Case {
    const char* name;
    double total, active;  // published
    double tol_total, tol_active;
    bool active_without_embedding;  // the publisher's convention for "activated"
    const char* source;
  };
  // DeepSeek's "activated" figures leave out the embedding table (a token reads one row of it):
  // V2 21B and V2-Lite 2.4B match that count; Mixtral's 12.9B counts the embedding.
  const Case cases[] = {
      {"deepseek-v2", 236e9, 21e9, 0.01, 0.02, true, "DeepSeek-V2 report (arXiv 2405.04434) abstract: 236B total, 21B activated"},
      // "2.4B" is rounded to one decimal: anything in [2.35, 2.45) would print so; ±3% covers it.
      {"deepseek-v2-lite", 15.7e9, 2.4e9, 0.01, 0.03, true, "DeepSeek-V2 report App. B: 15.7B total, 2.4B activated"},
      {"llama3-8b", 8.03e9, 8.03e9, 0.005, 0.005, false, "Llama 3 model card: 8.03B"},
      {"llama3-70b", 70.6e9, 70.6e9, 0.005, 0.005, false, "Llama 3 model card: 70.6B"},
      {"llama3-405b", 405.9e9, 405.9e9, 0.005, 0.005, false, "Llama 3.1 model card: 405.9B (the paper says 405B)"},
      {"gpt3-175b", 175e9, 175e9, 0.01, 0.01, false, "GPT-3 paper Table 2.1: 175.0B"},
      {"mixtral-8x7b", 46.7e9, 12.9e9, 0.005, 0.01, false, "Mixtral paper §1: 46.7B total, 12.9B active"},
  };
  for (const auto& c : cases) {
    INFO(c.name << " — " << c.source);
    const auto p = count_params(model(c.name));
    CHECK(rel(p.total, c.total) < c.tol_total);
    const double active = c.active_without_embedding ? p.active - p.embedding : p.active;
    CHECK(rel(active, c.active) < c.tol_active);
  }
}

TEST_CASE("Llama 3 8B parameters by hand", "[model]") {
  const auto m = model("llama3-8b");
  // 32 layers: q and o 4096x4096, k and v 4096x1024 (8 KV heads x 128), SwiGLU 3 x 4096 x 14336,
  // two RMSNorms; embedding and head 128256 x 4096 each; final norm 4096.
  const double layer = 2 * 4096.0 * 4096 + 2 * 4096.0 * 1024 + 3 * 4096.0 * 14336 + 2 * 4096;
  const double expect = 32 * layer + 2 * 128256.0 * 4096 + 4096;
  CHECK(count_params(m).total == Approx(expect).epsilon(1e-12));
}

TEST_CASE("DeepSeek-V3 training FLOPs per token at 4K: 250 GFLOP", "[model][validation]") {
  // [ISCA25 Table 2]: about 250 GFLOP per token for training at 4K sequence length. Counted here:
  // forward + backward of the 61 layers and the output head, causal attention (half the s^2
  // matrix), no embedding FLOPs, no MTP module (reported apart).
  const auto f = flops_per_token(model("deepseek-v3"), 4096, false);
  CHECK(rel(f.train_causal, 250e9) < 0.05);
  // The same as 6 x (activated non-embedding parameters) + attention: a closed form.
  const auto p = count_params(model("deepseek-v3"));
  const double linear = 6 * (p.active - p.embedding - (p.head - 129280.0 * 7168.0) -
                             61 * (2 * 7168.0 + 1536 + 512));  // norms do no GEMM work
  // Attention core: per layer and token, QK^T (192-wide) and PV (128-wide) over s^2/2 pairs,
  // 128 heads, forward 2 FLOPs per MAC, training x3.
  const double attn = 61 * 3 * 2.0 * 128 * (192 + 128) * 4096 / 2;
  // Router bias and norm scales hold no GEMM work; the router GEMM is included in `linear`.
  CHECK(f.train_causal == Approx(linear + attn - 6 * 58 * 256.0).epsilon(1e-9));
  CHECK(f.attention_train_causal == Approx(attn).epsilon(1e-12));
  // Full-matrix attention counts twice the causal attention.
  CHECK(f.train_full - f.train_causal == Approx(attn).epsilon(1e-12));
}

TEST_CASE("DeepSeek-V2 training FLOPs per token: 155 GFLOP", "[model][validation]") {
  // [ISCA25 Table 2]: DeepSeek-V2 155 GFLOP/token, same convention as V3's 250.
  CHECK(rel(flops_per_token(model("deepseek-v2"), 4096, false).train_causal, 155e9) < 0.05);
}

TEST_CASE("Dense model FLOPs are 6N plus attention", "[model]") {
  // Llama 3 405B at 8K: 6 x non-embedding params + 6 x layers x heads x head_dim x 2 x s (causal:
  // 4 x s x d_attn per layer forward with s/2 pairs... written out below).
  const auto m = model("llama3-405b");
  const auto p = count_params(m);
  const double s = 8192, L = 126, H = 128, d = 128;
  const double nonemb_gemm = p.total - p.embedding - (2 * 16384.0) * 126 - 16384;  // minus norm scales
  const double attn_fwd = L * 2.0 * H * (d + d) * s / 2;  // QK^T and PV per token, causal half
  const auto f = flops_per_token(m, 8192, false);
  CHECK(f.train_causal == Approx(6 * nonemb_gemm + 3 * attn_fwd).epsilon(1e-9));
}

TEST_CASE("GEMM backward splits into input and weight halves of equal FLOPs", "[model]") {
  const auto m = model("deepseek-v3");
  OpContext ctx;
  ctx.seq_len = 4096;
  ctx.gemm_dtype = "fp8";
  const auto ops = layer_ops(m, 10, ctx);
  double fwd = 0, bi = 0, bw = 0;
  for (const auto& o : ops) {
    if (o.cls != OpClass::Gemm && o.cls != OpClass::GroupedGemm) continue;
    (o.pass == Pass::Forward ? fwd : o.pass == Pass::BackwardInput ? bi : bw) += o.flops;
    CHECK(o.flops == 2.0 * o.m * o.n * o.k);
  }
  CHECK(bi == Approx(fwd));
  CHECK(bw == Approx(fwd));
  // Routed experts: one grouped GEMM over 4096 x 8 dispatched rows, 256 groups, N = 2 x 2048, K = 7168.
  bool found = false;
  for (const auto& o : ops)
    if (o.name == "moe.experts.up_gate" && o.pass == Pass::Forward) {
      found = true;
      CHECK(o.cls == OpClass::GroupedGemm);
      CHECK(o.m == 4096 * 8);
      CHECK(o.n == 4096);
      CHECK(o.k == 7168);
      CHECK(o.groups == 256);
      CHECK(o.dtype == "fp8");
    }
  CHECK(found);
}
