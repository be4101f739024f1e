// Memory per GPU: weights, gradients, optimizer states and activations against hand counts,
// and the two fit / no-fit facts the foundation issue names.
#include <catch2/catch.hpp>

#include "config/scenario.hpp"
#include "model/memory.hpp"
#include "model/recompute.hpp"
#include "support.hpp"

using namespace trainsim;

namespace {

std::string scenario_text(const std::string& model, const std::string& gpu, int gpus, const std::string& plan,
                          const std::string& training) {
  return "name = \"t\"\nmodel = \"" + (ts_test::source_dir() / "models" / (model + ".toml")).string() +
         "\"\n[cluster]\ngpu = \"" + gpu + "\"\ngpus = " + std::to_string(gpus) + "\ngpus_per_node = 8\n[plan]\n" +
         plan + "\n[training]\n" + training + "\n";
}

Scenario load_text(const std::string& tag, const std::string& text) {
  auto dir = ts_test::temp_dir(tag);
  ts_test::write_file(dir / "s.toml", text);
  return load_scenario((dir / "s.toml").string());
}

}  // namespace

TEST_CASE("DeepSeek-V3's published plan fits the H800's 80 GB", "[memory][validation]") {
  // 2048 H800, PP16 DualPipe, EP64, ZeRO-1, 4096-token micro-batches (public-figures.md A2):
  // DeepSeek trained this way, so a faithful memory model must find it fits.
  const Scenario s = load_scenario(ts_test::data("scenarios/deepseek-v3-h800.toml").string());
  const MemoryReport r = memory_per_gpu(s);
  CHECK(r.fits);
  CHECK(r.capacity == 80e9);  // profiles/hardware/h800.toml: vendor-listed 80 GB (the one convention for every GPU)
  REQUIRE(r.ranks.size() == 16);
  // DualPipe: every rank holds two stages (r and 15 - r), PP + 1 = 17 micro-batches in flight.
  for (const auto& rank : r.ranks) {
    CHECK(rank.stages.size() == 2);
    CHECK(rank.stages[0] + rank.stages[1] == 15);
    CHECK(rank.inflight == 17);
  }
}

TEST_CASE("Llama 3 405B without model parallelism on 8 H100 does not fit", "[memory][validation]") {
  const Scenario s = load_text("l405", scenario_text("llama3-405b", "h100-sxm", 8, "dp = 8\nzero = 0",
                                                     "seq_len = 8192\nglobal_batch = 8\ntokens = 1e9"));
  const MemoryReport r = memory_per_gpu(s);
  CHECK_FALSE(r.fits);
  // Hand count: BF16 weights alone are 2 bytes x 405.85B params = 811.7 GB > 80 GB.
  const ParamCounts p = count_params(s.model);
  CHECK(r.ranks[0].weights == Approx(2.0 * p.total).epsilon(1e-12));
  CHECK(r.ranks[0].weights > 80e9);
}

TEST_CASE("ZeRO stages shard optimizer states, gradients and weights over DP", "[memory]") {
  // Llama 3 8B, dp 8, FP32 master weights + FP32 Adam moments (12 bytes) and FP32 gradients.
  for (int zero = 0; zero <= 3; ++zero) {
    const Scenario s = load_text("zero" + std::to_string(zero),
                                 scenario_text("llama3-8b", "h100-sxm", 8, "dp = 8\nzero = " + std::to_string(zero),
                                               "seq_len = 4096\nglobal_batch = 8\ntokens = 1e9"));
    const double N = count_params(s.model).total;
    const MemoryReport rep = memory_per_gpu(s);
    const StageMemory& m = rep.ranks[0];
    INFO("zero = " << zero);
    CHECK(m.optimizer == Approx(N * 12 / (zero >= 1 ? 8 : 1)));
    CHECK(m.gradients == Approx(N * 4 / (zero >= 2 ? 8 : 1)));
    CHECK(m.weights == Approx(N * 2 / (zero >= 3 ? 8 : 1)));
  }
}

TEST_CASE("Saved activations per token of a Llama layer by hand", "[memory]") {
  const ModelConfig m = load_model(ts_test::data("models/llama3-8b.toml").string());
  const double h = 4096, I = 14336, H = 32, KV = 8, d = 128;
  PrecisionConfig bf16;  // BF16 activation cache
  // No recomputation: layer input, attention-norm output, q/k/v, attention output + LSE,
  // post-attention residual, ffn-norm output, SwiGLU input (2I) and output (I), all BF16.
  const double none = 2 * h + 2 * h + 2 * (H * d + 2 * KV * d) + (2 * H * d + 4 * H) + 2 * h + 2 * h + 2 * 2 * I + 2 * I;
  CHECK(activation_bytes_per_token(m, 0, Recompute::None, bf16) == Approx(none));
  // Selective (Korthikanti et al. 2022 §4: the attention core is recomputed): with FlashAttention
  // the core keeps no score matrix, so only its log-sum-exp (4 bytes per head) goes.
  CHECK(activation_bytes_per_token(m, 0, Recompute::Selective, bf16) == Approx(none - 4 * H));
  // DeepSeek (§3.2.3, §3.3.3): norm outputs and the SwiGLU output are recomputed (q/k/v of a GQA
  // layer come from a projection, not an MLA up-projection, and stay).
  CHECK(activation_bytes_per_token(m, 0, Recompute::DeepSeek, bf16) == Approx(none - 2 * h - 2 * h - 2 * I));
  // Full: only the layer input.
  CHECK(activation_bytes_per_token(m, 0, Recompute::Full, bf16) == Approx(2 * h));
  // Tensor parallelism over 4 ranks: tensors split by heads or by the MLP width are /4; the
  // hidden-width ones (layer input, attention-norm output, residual, ffn-norm output: 4 x 2h)
  // are replicated without sequence parallelism and /4 with it (Korthikanti et al. 2022 §4.2.2).
  const double hidden = 4 * 2 * h, split = none - hidden;
  CHECK(activation_bytes_per_token(m, 0, Recompute::None, bf16, 4, false) == Approx(hidden + split / 4));
  CHECK(activation_bytes_per_token(m, 0, Recompute::None, bf16, 4, true) == Approx(none / 4));
  CHECK(activation_bytes_per_token(m, 0, Recompute::Full, bf16, 4, false) == Approx(2 * h));
  CHECK(activation_bytes_per_token(m, 0, Recompute::Full, bf16, 4, true) == Approx(2 * h / 4));
}

TEST_CASE("Memory and time follow from the same recompute op list", "[memory]") {
  // Every saved tensor whose producer recompute.hpp marks as re-run is dropped, and only those:
  // the bytes a mode saves equal the sum over the tensors of recomputed producers.
  const ModelConfig m = load_model(ts_test::data("models/deepseek-v3.toml").string());
  PrecisionConfig fp8;
  fp8.activation_cache = "fp8";
  for (Recompute rc : {Recompute::Selective, Recompute::DeepSeek}) {
    double dropped = 0;
    for (const SavedTensor& t : saved_tensors(m, 10, fp8))
      if (!t.producer.empty() && recomputed(t.producer, t.cls, rc)) dropped += t.bytes_per_token;
    INFO(recompute_model(rc).name);
    CHECK(dropped > 0);
    CHECK(activation_bytes_per_token(m, 10, rc, fp8) == Approx(activation_bytes_per_token(m, 10, Recompute::None, fp8) - dropped));
  }
}

TEST_CASE("In-flight micro-batches by schedule", "[memory]") {
  PlanConfig p;
  p.pp = 8;
  p.schedule = "1f1b";
  CHECK(inflight_microbatches(p, 0, 64) == 8);  // PP on the first rank
  CHECK(inflight_microbatches(p, 7, 64) == 1);  // one on the last
  CHECK(inflight_microbatches(p, 0, 4) == 4);   // never more than the micro-batches
  p.schedule = "gpipe";
  CHECK(inflight_microbatches(p, 3, 64) == 64);
  p.schedule = "dualpipe";
  CHECK(inflight_microbatches(p, 3, 64) == 9);  // PP + 1
}
