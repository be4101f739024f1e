// The step's models (sim/step/README.md), each against a closed form written here, with the
// synthetic cost model whose every answer the test computes itself (t = flops / 1 PFLOP/s +
// bytes / 1 TB/s, no kernel gap) and the network's closed forms (ring collectives on NVLink:
// (p-1)/p·S/B + (p-1)·α with B = 200 GB/s one way x NCCL's efficiency on the H800).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "calibration/cost_model.hpp"
#include "config/scenario.hpp"
#include "model/memory.hpp"
#include "model/model_math.hpp"
#include "model/recompute.hpp"
#include "network/collectives.hpp"
#include "step/comm_plan.hpp"
#include "step/op_lists.hpp"
#include "step/step.hpp"
#include "linear_cost.hpp"
#include "support.hpp"

using namespace trainsim;
using i64 = std::int64_t;

namespace {

using ts_test::LinearCost;

Scenario scenario(const std::string& tag, const std::string& model, int gpus, const std::string& plan,
                  const std::string& training) {
  const auto dir = ts_test::temp_dir("models-" + tag);
  ts_test::write_file(dir / "s.toml",
                      "name = \"t\"\nmodel = \"" + ts_test::data("models/" + model + ".toml").string() +
                          "\"\n[cluster]\ngpu = \"h800\"\ngpus = " + std::to_string(gpus) +
                          "\ngpus_per_node = 8\n[plan]\n" + plan + "\n[training]\n" + training + "\n");
  return load_scenario((dir / "s.toml").string());
}

// Sum of LinearCost seconds of the ops of `pass` whose name matches.
double seconds(const std::vector<Op>& ops, Pass pass, const std::function<bool(const Op&)>& keep) {
  double t = 0;
  for (const auto& o : ops)
    if (o.pass == pass && keep(o)) t += LinearCost::seconds(o);
  return t;
}

bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

const step::OpRun& run_of(const step::StepResult& r, graph::OpKind kind, int stage, int stage2 = -1) {
  return r.op_runs.at({static_cast<int>(kind), stage, stage2});
}

// NCCL on one H800 node: one-way NVLink 200 GB/s at NCCL's efficiency, 1 us per hop.
const double kNvl = 200e9 * network::kNcclNvlinkEfficiency;
const double kAlpha = 1e-6;
double ring_rs(int p, double S) { return (p - 1.0) / p * S / kNvl + (p - 1) * kAlpha; }
double ring_ar(int p, double S) { return 2 * ring_rs(p, S); }

const std::string kLlamaTraining = "seq_len = 4096\nglobal_batch = 32\ntokens = 1e9";

}  // namespace

// --- 1. recomputation ---------------------------------------------------------------------------

TEST_CASE("Recompute adds exactly the recomputed forward ops to the backward", "[step][recompute]") {
  // Llama 3 8B, dp 8 on one node, pp 1, 4 micro-batches: no communication inside an op, so each
  // op is the sum of its ops' times. Expectation per micro-batch, over the 32 layers:
  //   full      every forward op of the layer again
  //   selective the attention core (Korthikanti et al. 2022)
  //   deepseek  the RMSNorms, RoPE and the SwiGLU (DeepSeek-V3 §3.2.3, §3.3.3)
  //   full with recompute_num_layers = 2: the forward of the first two layers only.
  const LinearCost cost(132);
  OpContext oc;
  oc.seq_len = 4096;
  const ModelConfig m = load_model(ts_test::data("models/llama3-8b.toml").string());
  const std::vector<Op> layer = layer_ops(m, 0, oc);
  const double all = seconds(layer, Pass::Forward, [](const Op&) { return true; });
  const double core = seconds(layer, Pass::Forward, [](const Op& o) { return o.name == "attn.core"; });
  const double ds = seconds(layer, Pass::Forward, [](const Op& o) {
    return o.name == "attn.norm" || o.name == "ffn.norm" || o.name == "attn.rope" || o.name == "mlp.swiglu";
  });
  const std::string base = "dp = 8\nzero = 1\n";
  const auto none = step::simulate_step(scenario("rc0", "llama3-8b", 8, base, kLlamaTraining), 0, 32, cost);
  struct Case {
    const char* plan;
    double per_layer;
    int layers;
  };
  const Case cases[] = {{"recompute = \"full\"", all, 32},
                        {"recompute = \"selective\"", core, 32},
                        {"recompute = \"deepseek\"", ds, 32},
                        {"recompute = \"full\"\nrecompute_num_layers = 2", all, 2}};
  int k = 0;
  for (const Case& c : cases) {
    INFO(c.plan);
    const auto r = step::simulate_step(scenario("rc" + std::to_string(++k), "llama3-8b", 8, base + c.plan, kLlamaTraining), 0,
                                       32, cost);
    const double added = c.per_layer * c.layers;
    CHECK((r.stages[0].b - none.stages[0].b).seconds() == Approx(added).epsilon(1e-6));
    CHECK(r.stages[0].f == none.stages[0].f);
    // One rank, 4 micro-batches: the breakdown's recompute line is 4 x that.
    CHECK(r.breakdown.recompute_s == Approx(4 * added).epsilon(1e-6));
    CHECK(r.breakdown.compute_s == Approx(none.breakdown.compute_s).epsilon(1e-9));
  }
}

TEST_CASE("Unfused attention (Megatron-LM 2021): the score matrix through batched GEMMs, softmax and dropout",
          "[step][attention]") {
  // Megatron GPT 1.7B (24 heads x 96), seq s = 2048, micro-batch 1, tp 2: g = 1 x 24 / 2 = 12 score
  // matrices of s x s per GPU, head dim d = 96. de7dc40f88 ParallelAttention.forward runs
  //   scores  = baddbmm(Q, Kᵀ)   [s, d] x [d, s]   per matrix, bytes 2(sd + sd + s²)
  //   softmax (causal fused)     reads the lower half, writes whole rows: 2·s²/2 + 2·s² = 3 s²
  //   dropout                    2 s² in, 2 s² out, 1-byte mask s²: 5 s²
  //   context = bmm(P, V)        [s, s] x [s, d], bytes 2(s² + sd + sd)
  // and the backward dP = dO·Vᵀ, dV = Pᵀ·dO, dropout (5 s²), softmax (reads y and dy on the
  // lower half, writes whole rows: 4 s²), dQ = dS·K, dK = dSᵀ·Q.
  const i64 s = 2048, d = 96, g = 12;
  const double S2 = static_cast<double>(g) * s * s, SD = static_cast<double>(g) * s * d;
  const std::string tr = "seq_len = 2048\nglobal_batch = 4\ntokens = 1e9";
  const Scenario flash = scenario("attn-flash", "megatron-gpt-1.7b", 8, "dp = 4\ntp = 2", tr);
  const Scenario unfused = scenario("attn-unfused", "megatron-gpt-1.7b", 8, "dp = 4\ntp = 2\nattention = \"unfused\"", tr);
  const OpContext oc = step::gpu_op_context(unfused.plan, unfused.training);
  const auto fused_ops = step::for_gpu(flash.model, flash.plan, flash.training, layer_ops(flash.model, 0, oc));
  const auto ops = step::for_gpu(unfused.model, unfused.plan, unfused.training, layer_ops(unfused.model, 0, oc));
  auto find = [&](const std::string& name, Pass pass) -> const Op& {
    for (const Op& o : ops)
      if (o.name == name && o.pass == pass) return o;
    FAIL("no op " << name);
    return ops.front();
  };
  SECTION("shapes, bytes and FLOPs per op") {
    for (const Op& o : ops) CHECK(o.cls != OpClass::Attention);
    const Op& sc = find("attn.core.scores", Pass::Forward);
    CHECK(sc.cls == OpClass::Gemm);
    CHECK(sc.groups == g);
    CHECK(sc.m == s * g);  // rows over all matrices (grouped-GEMM convention)
    CHECK(sc.n == s);
    CHECK(sc.k == d);
    CHECK(sc.flops_full == Approx(2.0 * S2 * d));
    CHECK(find("attn.core.context", Pass::Forward).n == d);
    CHECK(find("attn.core.context", Pass::Forward).k == s);
    CHECK(find("attn.core.softmax", Pass::Forward).bytes == Approx(3 * S2));
    CHECK(find("attn.core.dropout", Pass::Forward).bytes == Approx(5 * S2));
    CHECK(find("attn.core.softmax", Pass::BackwardInput).bytes == Approx(4 * S2));
    CHECK(find("attn.core.dropout", Pass::BackwardInput).bytes == Approx(5 * S2));
    for (const char* n : {"attn.core.context_dgrad", "attn.core.context_vgrad", "attn.core.scores_qgrad", "attn.core.scores_kgrad"})
      CHECK(find(n, Pass::BackwardInput).flops_full == Approx(2.0 * S2 * d));
    // FLOPs are the fused op's in both conventions (model FLOPs do not depend on the kernels).
    for (Pass pass : {Pass::Forward, Pass::BackwardInput}) {
      double f = 0, ff = 0, uf = 0, uff = 0;
      for (const Op& o : fused_ops)
        if (o.cls == OpClass::Attention && o.pass == pass) f += o.flops, ff += o.flops_full;
      for (const Op& o : ops)
        if (o.name.rfind("attn.core", 0) == 0 && o.pass == pass) uf += o.flops, uff += o.flops_full;
      CHECK(uf == Approx(f));
      CHECK(uff == Approx(ff));
    }
  }
  SECTION("the step: forward longer by 12 g s² bytes, backward by 17 g s² bytes per layer") {
    // With t = flops / 1 PFLOP/s + bytes / 1 TB/s the FLOPs cancel; the fused op moves Q, K, V, O
    // (8 g s d bytes forward, twice that backward). Unfused GEMM operands: forward 8 g s d + 4 g s²,
    // backward 16 g s d + 8 g s²; plus softmax and dropout 8 g s² forward, 9 g s² backward.
    (void)SD;
    const LinearCost cost(132);
    const auto rf = step::simulate_step(flash, 0, 4, cost);
    const auto ru = step::simulate_step(unfused, 0, 4, cost);
    const double layers = 24;
    CHECK((ru.stages[0].f - rf.stages[0].f).seconds() == Approx(layers * 12 * S2 / 1e12).epsilon(1e-6));
    CHECK((ru.stages[0].b - rf.stages[0].b).seconds() == Approx(layers * 17 * S2 / 1e12).epsilon(1e-6));
  }
  SECTION("selective recomputation re-runs the unfused core") {
    CHECK(recomputed("attn.core.softmax", OpClass::Elementwise, Recompute::Selective));
    CHECK(recomputed("attn.core.scores", OpClass::Gemm, Recompute::Selective));
    CHECK_FALSE(recomputed("attn.qkv", OpClass::Gemm, Recompute::Selective));
  }
}

// --- 2. tensor parallelism ----------------------------------------------------------------------

TEST_CASE("Tensor parallelism as Megatron runs it: all-reduce, sequence parallel, userbuffers overlap", "[step][tp]") {
  // Llama 3 8B on one node with tp 8, one 4096-token micro-batch per op. One collective moves the
  // activations S = 4096 x 4096 x 2 bytes over the 8-GPU ring.
  const LinearCost cost(132);
  const double S = 4096.0 * 4096 * 2;
  const std::string tr = "seq_len = 4096\nglobal_batch = 4\ntokens = 1e9";
  SECTION("without sequence parallelism: two all-reduces per layer forward, one after the embedding") {
    const auto r = step::simulate_step(scenario("tp1", "llama3-8b", 8, "dp = 1\ntp = 8", tr), 0, 4, cost);
    const auto& f = run_of(r, graph::OpKind::F, 0);
    CHECK(f.exposed_tp.seconds() == Approx((2 * 32 + 1) * ring_ar(8, S)).epsilon(1e-6));
    // TP traffic is never the all-to-all.
    CHECK(r.breakdown.exposed_ep_s == 0);
    CHECK(r.breakdown.exposed_tp_s > 0);
    // Backward: each block's input-gradient all-reduce runs beside its weight-gradient GEMM, so
    // what shows is max(0, t_AR - t_wgrad) per block, at most 2 per layer plus the head's.
    const auto& b = run_of(r, graph::OpKind::B, 0);
    CHECK(b.exposed_tp.seconds() <= (2 * 32 + 1) * ring_ar(8, S) * (1 + 1e-9));
  }
  SECTION("sequence parallel: all-gather and reduce-scatter per block") {
    const auto r =
        step::simulate_step(scenario("tp2", "llama3-8b", 8, "dp = 1\ntp = 8\nsequence_parallel = true", tr), 0, 4, cost);
    const auto& f = run_of(r, graph::OpKind::F, 0);
    // 4 per layer (AG, RS for attention and MLP), the embedding's reduce-scatter, the head's all-gather.
    CHECK(f.exposed_tp.seconds() == Approx((4 * 32 + 2) * ring_rs(8, S)).epsilon(1e-6));
  }
  SECTION("tp_comm_overlap leaves max(G, C) + min(G, C)/n - G of each collective exposed") {
    const auto plain = step::simulate_step(
        scenario("tp3", "llama3-8b", 8, "dp = 1\ntp = 8\nsequence_parallel = true", tr), 0, 4, cost);
    const auto ov = step::simulate_step(
        scenario("tp4", "llama3-8b", 8, "dp = 1\ntp = 8\nsequence_parallel = true\ntp_comm_overlap = true", tr), 0, 4, cost);
    // The GEMMs beside each collective, from this GPU's share of the layer (op_lists.hpp).
    PlanConfig p;
    p.tp = 8;
    p.sequence_parallel = true;
    TrainingConfig t;
    t.seq_len = 4096;
    OpContext oc;
    oc.seq_len = 4096;
    const ModelConfig m = load_model(ts_test::data("models/llama3-8b.toml").string());
    const auto ops = step::for_gpu(m, p, t, layer_ops(m, 0, oc));
    const double qkv = seconds(ops, Pass::Forward, [](const Op& o) { return o.name == "attn.qkv"; });
    const double o = seconds(ops, Pass::Forward, [](const Op& x) { return x.name == "attn.o"; });
    const double up = seconds(ops, Pass::Forward, [](const Op& x) { return x.name == "mlp.up_gate"; });
    const double down = seconds(ops, Pass::Forward, [](const Op& x) { return x.name == "mlp.down"; });
    const double C = ring_rs(8, S);
    auto residual = [&](double G, int n) { return std::max(G, C) + std::min(G, C) / n - G; };
    const double per_layer = residual(qkv, 8) + residual(o, 4) + residual(up, 8) + residual(down, 4);
    // Embedding reduce-scatter and head all-gather are not overlapped.
    CHECK(run_of(ov, graph::OpKind::F, 0).exposed_tp.seconds() == Approx(32 * per_layer + 2 * C).epsilon(1e-6));
    CHECK(run_of(ov, graph::OpKind::F, 0).exposed_tp < run_of(plain, graph::OpKind::F, 0).exposed_tp);
  }
}

// --- 3. expert parallelism outside DualPipe -------------------------------------------------------

TEST_CASE("EP all-to-all: FP8 combine gradient, shared-expert overlap, combined 1F1B", "[step][ep]") {
  // DeepSeek-V2-Lite on one node: ep 8, dp 8, pp 1, 4 micro-batches, no communication SMs held.
  const LinearCost cost(132);
  const std::string tr = "seq_len = 4096\nglobal_batch = 32\ntokens = 1e9";
  const std::string base = "dp = 8\nep = 8\nzero = 1\n";
  const auto plain = step::simulate_step(scenario("ep0", "deepseek-v2-lite", 8, base, tr), 0, 32, cost);
  REQUIRE(plain.a2a_dispatch_s > 0);
  SECTION("the gradient of the combine travels in FP8 like the dispatch (DeepSeek-V3 §3.3.3)") {
    for (const auto& ph : plain.stages[0].phases.backward) {
      if (ends_with(ph.name, ".combine_grad")) CHECK(ph.alone.seconds() == Approx(plain.a2a_dispatch_s).margin(1e-12));
      if (ends_with(ph.name, ".dispatch_grad")) CHECK(ph.alone.seconds() == Approx(plain.a2a_combine_s).margin(1e-12));
    }
  }
  SECTION("shared experts beside the dispatch save min(t_shared, t_dispatch) per MoE layer") {
    const auto ov = step::simulate_step(scenario("ep1", "deepseek-v2-lite", 8, base + "shared_expert_overlap = true", tr),
                                        0, 32, cost);
    OpContext oc;
    oc.seq_len = 4096;
    const ModelConfig m = load_model(ts_test::data("models/deepseek-v2-lite.toml").string());
    const double shared = seconds(layer_ops(m, 1, oc), Pass::Forward,
                                  [](const Op& o) { return o.name.rfind("moe.shared", 0) == 0; });
    const double saved = 26 * std::min(shared, plain.a2a_dispatch_s);
    CHECK((plain.stages[0].f - ov.stages[0].f).seconds() == Approx(saved).epsilon(1e-6));
  }
  SECTION("combined 1F1B: F, then each backward beside the next forward, then the last backward") {
    const auto comb = step::simulate_step(scenario("ep2", "deepseek-v2-lite", 8, base + "ep_comm_overlap = true", tr),
                                          0, 32, cost);
    // pp 1, M = 4: F0, F1+B0, F2+B1, F3+B2, B3 on the one rank.
    const Time fb = run_of(comb, graph::OpKind::FB, 0, 0).duration;
    CHECK(comb.pipeline_s == Approx((comb.stages[0].f + fb * 3 + comb.stages[0].b).seconds()).epsilon(1e-9));
    // Each pair hides communication: shorter than its two ops one after the other, never
    // shorter than its compute or its communication.
    CHECK(fb < comb.stages[0].f + comb.stages[0].b);
    const auto& run = run_of(comb, graph::OpKind::FB, 0, 0);
    CHECK(fb >= run.compute + run.recompute);
    CHECK(fb >= run.comm_busy / 2);
    CHECK(comb.breakdown.exposed_ep_s < plain.breakdown.exposed_ep_s);
    CHECK(comb.step_s < plain.step_s);
  }
}

// --- 4. data parallelism ----------------------------------------------------------------------------

TEST_CASE("DP after the pipeline: every bucket exposed, reduce-scatter then all-gather", "[step][dp]") {
  // Llama 3 8B, dp 8 on one node, pp 1, ZeRO-1, FP32 gradients, BF16 parameters. Without overlap
  // every bucket starts after the pipeline:
  //   exposed DP = sum over buckets of RS(4 bytes x params) + AG(2 bytes x params)
  //             = 7/8·N·(4 + 2)/B + 2·n_buckets·7·α.
  // Megatron-Core DDP (the default grad_buckets) sets bucket_size = None without
  // overlap_grad_reduce: one bucket. Uniform bucketing cuts max(40M, 1M x 8) = 40M parameters.
  const LinearCost cost(132);
  const Scenario sc = scenario("dp0", "llama3-8b", 8, "dp = 8\nzero = 1", kLlamaTraining);
  const double N = count_params(sc.model).total;  // norm scales (3e-5 of N) are not bucketed: tolerance 1e-4
  const auto r = step::simulate_step(sc, 0, 32, cost);
  CHECK(r.dp.buckets == 1);
  CHECK(r.breakdown.exposed_dp_s == Approx(7.0 / 8 * N * (4 + 2) / kNvl + 2 * 7 * kAlpha).epsilon(1e-4));
  CHECK(r.dp.exposed_grad_s == Approx(r.dp.grad_reduce_s).epsilon(1e-9));  // nothing hides
  CHECK(r.breakdown.total() == Approx(r.step_s).epsilon(1e-9));

  const auto u = step::simulate_step(scenario("dp0u", "llama3-8b", 8, "dp = 8\nzero = 1\ngrad_buckets = \"uniform\"", kLlamaTraining),
                                     0, 32, cost);
  const double nb = u.dp.buckets;
  CHECK(nb == Approx(std::ceil(N / 40e6)).margin(2));
  CHECK(u.breakdown.exposed_dp_s == Approx(7.0 / 8 * N * (4 + 2) / kNvl + 2 * nb * 7 * kAlpha).epsilon(1e-4));
  CHECK(u.dp.exposed_grad_s == Approx(u.dp.grad_reduce_s).epsilon(1e-9));
  // The same bytes in more collectives: one more latency per extra bucket.
  CHECK(u.breakdown.exposed_dp_s - r.breakdown.exposed_dp_s == Approx(2 * (nb - 1) * 7 * kAlpha).epsilon(1e-3));
}

TEST_CASE("Megatron-Core buckets only pipeline rank 0: a later rank's one bucket starts at its last backward",
          "[step][dp]") {
  // Llama 3 8B, pp 2 x dp 4, 1F1B, overlap_grad_reduce, 20M-parameter buckets. Megatron-Core DDP
  // sets bucket_size = None on pipeline ranks > 0 ("not on the critical path"): rank 1 reduces
  // its parameters p_1 as one bucket, which can start only when its last backward ends (the
  // bucket's last gradient is that op's last phase) and takes RS_4(4 bytes x p_1). With 4 layers
  // on rank 0 and 28 on rank 1, rank 1's reduction outlasts rank 0's last backwards, so
  //   exposed DP = end_1 + RS_4(4·p_1) - makespan,
  // while uniform bucketing starts rank 1's buckets during its last backward and exposes less.
  const LinearCost cost(132);
  const char* plan = "dp = 4\npp = 2\nzero = 1\nlayer_split = [4, 28]\noverlap_grad_reduce = true\ndp_bucket_params = 20000000";
  const char* training = "seq_len = 4096\nglobal_batch = 32\ntokens = 1e9";
  const auto r = step::simulate_step(scenario("mc", "llama3-8b", 8, plan, training), 0, 32, cost);
  double p1 = 0;
  for (const auto& lp : r.stages[1].phases.params) p1 += lp.dense;
  const double end1 = r.pipeline->replay.ops[1].back().end.seconds();
  const double rank1 = end1 + ring_rs(4, 4 * p1) - r.pipeline_s;
  REQUIRE(rank1 > 0);
  CHECK(r.dp.exposed_grad_s == Approx(rank1).epsilon(1e-6));
  const auto u = step::simulate_step(
      scenario("mcu", "llama3-8b", 8, std::string(plan) + "\ngrad_buckets = \"uniform\"", training), 0, 32, cost);
  CHECK(u.dp.exposed_grad_s < r.dp.exposed_grad_s);
  CHECK(u.dp.buckets >= static_cast<int>(p1 / 20e6));  // rank 1 in 20M buckets
  CHECK(r.breakdown.total() == Approx(r.step_s).epsilon(1e-9));
}

TEST_CASE("overlap_grad_reduce: exposed DP = max(0, DP time - the window after the rank's last gradient)", "[step][dp]") {
  // Llama 3 8B, pp 2 x dp 4, 1F1B, one bucket per rank (dp_bucket_params above the model): rank
  // r's reduce-scatter starts when its last backward ends (the bucket's last gradient is that
  // op's last phase) and takes RS_4(4 bytes x its parameters); the tail is
  //   max(0, max_r(end_r + RS_r) - makespan).
  const LinearCost cost(132);
  const Scenario sc = scenario("dp1", "llama3-8b", 8,
                               "dp = 4\npp = 2\nzero = 1\nlayer_split = [16, 16]\noverlap_grad_reduce = true\n"
                               "dp_bucket_params = 100000000000",
                               "seq_len = 4096\nglobal_batch = 32\ntokens = 1e9");
  const auto r = step::simulate_step(sc, 0, 32, cost);
  REQUIRE(r.dp.buckets == 1);
  const auto& rep = r.pipeline->replay;
  double tail = 0;
  for (int rank = 0; rank < 2; ++rank) {
    double p = 0;
    for (const auto& lp : r.stages[static_cast<std::size_t>(rank)].phases.params) p += lp.dense;
    const double end = rep.ops[static_cast<std::size_t>(rank)].back().end.seconds();
    tail = std::max(tail, end + ring_rs(4, 4 * p));
  }
  // The DP group of a stage is 4 GPUs one apart: still one node, NVLink.
  CHECK(r.dp.exposed_grad_s == Approx(std::max(0.0, tail - r.pipeline_s)).epsilon(1e-6));
  // Without the overlap the same: one bucket, ready only at the end either way.
  const auto off = step::simulate_step(scenario("dp2", "llama3-8b", 8,
                                                "dp = 4\npp = 2\nzero = 1\nlayer_split = [16, 16]",
                                                "seq_len = 4096\nglobal_batch = 32\ntokens = 1e9"),
                                       0, 32, cost);
  CHECK(off.dp.exposed_grad_s == Approx(r.dp.exposed_grad_s).epsilon(1e-6));
  // Small buckets start during the last backward: less exposed.
  const auto small = step::simulate_step(scenario("dp3", "llama3-8b", 8,
                                                  "dp = 4\npp = 2\nzero = 1\nlayer_split = [16, 16]\n"
                                                  "overlap_grad_reduce = true\ndp_bucket_params = 20000000",
                                                  "seq_len = 4096\nglobal_batch = 32\ntokens = 1e9"),
                                         0, 32, cost);
  CHECK(small.dp.exposed_grad_s < r.dp.exposed_grad_s);
  CHECK(small.breakdown.total() == Approx(small.step_s).epsilon(1e-9));
}

TEST_CASE("ZeRO-3 prefetch: a layer's gather hides behind the previous layer's forward", "[step][dp]") {
  // Llama 3 8B, dp 8 ZeRO-3, micro-batch 2. Each layer's parameters are all-gathered one layer
  // ahead on the DP stream: AG_l starts when layer l-1 starts and layer l waits for it. A
  // layer's forward (c) outlasts the next layer's gather (t_layer), so what is exposed is the
  // forward's first gather (the embedding), what the first layer's gather does not hide behind
  // the embedding's lookup (c_e), and what the output head's gather (as large as the embedding)
  // does not hide behind the last layer: t_embed + max(0, t_layer - c_e) + max(0, t_head - c).
  const LinearCost cost(132);
  const Scenario sc = scenario("z3", "llama3-8b", 8, "dp = 8\nzero = 3\nmicro_batch = 2",
                               "seq_len = 4096\nglobal_batch = 32\ntokens = 1e9");
  const auto r = step::simulate_step(sc, 0, 32, cost);
  const ModelConfig& m = sc.model;
  OpContext oc;
  oc.micro_batch = 2;
  oc.seq_len = 4096;
  const double c = seconds(layer_ops(m, 0, oc), Pass::Forward, [](const Op&) { return true; });
  const double layer = layer_params(m, 0).dense - 2.0 * static_cast<double>(m.hidden);  // GEMM weights (no norm scales)
  const double t_layer = ring_rs(8, 2 * layer);
  const double t_embed = ring_rs(8, 2 * embedding_params(m));
  const double t_head = ring_rs(8, 2.0 * static_cast<double>(m.vocab * m.hidden));
  const double c_e = seconds(embedding_ops(m, oc), Pass::Forward, [](const Op&) { return true; });
  REQUIRE(t_layer < c);
  CHECK(run_of(r, graph::OpKind::F, 0).exposed_dp.seconds() ==
        Approx(t_embed + std::max(0.0, t_layer - c_e) + std::max(0.0, t_head - c)).epsilon(1e-6));
  CHECK(r.breakdown.total() == Approx(r.step_s).epsilon(1e-9));
}

TEST_CASE("DualPipe's two copies of a stage reduce together and share one ZeRO shard", "[step][dp][memory]") {
  // DeepSeek-V3's plan: every stage lives on ranks r and 15 - r, so its optimizer states are
  // sharded over 2 x 128 GPUs (dense) and 2 x 2 (experts: dp*tp*cp/ep = 2): a rank holds
  // (dense / 256 + experts / 4) x (4 + 2 x 2) bytes of FP32 master weights and BF16 moments.
  const Scenario sc = load_scenario(ts_test::data("scenarios/deepseek-v3-h800.toml").string());
  const MemoryReport mem = memory_per_gpu(sc);
  const auto& rank = mem.ranks[1];  // stages 1 and 14: four MoE layers each
  // Split [3, 4 x 14, 2]: stage 1 holds layers 3..6, stage 14 layers 55..58.
  double dense = 0, experts = 0;
  for (i64 st : rank.stages) {
    const i64 first = st == 1 ? 3 : 3 + 13 * 4;
    for (i64 l = first; l < first + 4; ++l) {
      const LayerParams lp = layer_params(sc.model, l);
      dense += lp.dense;
      experts += lp.routed / 64;
    }
  }
  CHECK(rank.optimizer == Approx((dense / 256 + experts / 4) * 8).epsilon(1e-9));
}

// --- 5. context parallelism ---------------------------------------------------------------------

TEST_CASE("Context parallelism communicates under its own name", "[step][cp]") {
  // Llama 3 8B, cp 2 x dp 4 on one node, 8192-token sequences: 4096 tokens per rank. K and V of
  // the local tokens: 4096 x 2 x 8 KV heads x 128 x 2 bytes.
  const LinearCost cost(132);
  const double kv = 4096.0 * 2 * 8 * 128 * 2;
  const std::string tr = "seq_len = 8192\nglobal_batch = 16\ntokens = 1e9";
  SECTION("ring: cp-1 sends, each beside one block of attention: (cp-1)·max(0, t_kv - t_attn/cp) per layer") {
    const auto r = step::simulate_step(scenario("cp1", "llama3-8b", 8, "dp = 4\ncp = 2", tr), 0, 16, cost);
    PlanConfig p;
    p.cp = 2;
    TrainingConfig t;
    t.seq_len = 8192;
    OpContext oc;
    oc.seq_len = 4096;
    const ModelConfig m = load_model(ts_test::data("models/llama3-8b.toml").string());
    const auto ops = step::for_gpu(m, p, t, layer_ops(m, 0, oc));
    const double attn = seconds(ops, Pass::Forward, [](const Op& o) { return o.cls == OpClass::Attention; });
    const double t_kv = kv / kNvl + kAlpha;  // send/recv to the neighbour over NVLink
    CHECK(run_of(r, graph::OpKind::F, 0).exposed_cp.seconds() == Approx(32 * std::max(0.0, t_kv - attn / 2)).margin(1e-9));
    CHECK(r.breakdown.total() == Approx(r.step_s).epsilon(1e-9));
  }
  SECTION("all_gather: the K/V all-gather before every attention is exposed") {
    const auto r = step::simulate_step(scenario("cp2", "llama3-8b", 8, "dp = 4\ncp = 2\ncp_comm = \"all_gather\"", tr), 0,
                                       16, cost);
    CHECK(run_of(r, graph::OpKind::F, 0).exposed_cp.seconds() == Approx(32 * ring_rs(2, 2 * kv)).epsilon(1e-6));
    CHECK(r.breakdown.exposed_cp_s > 0);
    CHECK(r.breakdown.exposed_tp_s == 0);
  }
}

// --- 7. the optimizer ---------------------------------------------------------------------------

TEST_CASE("The optimizer step as measured: norm, clip, AdamW, working copy, on the largest shard", "[step][optimizer]") {
  // Llama 3 8B, dp 8 ZeRO-1: a rank updates N/8 parameters. Memory-bound passes at 1 TB/s:
  //   norm   read 4 B/param (+ the all-reduce of one scalar over 8 GPUs: 2 x log2(8) NVLink hops)
  //   clip   read + write 4 B     AdamW  read g 4 + master 4 + moments 8, write 4 + 8 = 28 B
  //   copy   read FP32 + write BF16 = 6 B       (BF16 GEMMs: no FP8 re-quantisation)
  const LinearCost cost(132);
  const Scenario sc = scenario("opt", "llama3-8b", 8, "dp = 8\nzero = 1", kLlamaTraining);
  const auto r = step::simulate_step(sc, 0, 32, cost);
  const double shard = count_params(sc.model).total / 8;
  const auto& o = r.optimizer;
  CHECK(o.shard_params == Approx(shard).epsilon(1e-4));
  CHECK(o.grad_norm_s == Approx(shard * 4 / 1e12 + 2 * 3 * 1e-6).epsilon(1e-4));
  CHECK(o.clip_s == Approx(shard * 8 / 1e12).epsilon(1e-4));
  CHECK(o.adamw_s == Approx(shard * 28 / 1e12).epsilon(1e-4));
  CHECK(o.param_copy_s == Approx(shard * 6 / 1e12).epsilon(1e-4));
  CHECK(o.requant_s == 0);
  CHECK(r.breakdown.optimizer_s == Approx(o.total_s));
  // pp 4 with 9 layers and the embedding on stage 0: rank 0 holds the largest shard.
  const auto r4 = step::simulate_step(
      scenario("opt4", "llama3-8b", 32, "dp = 8\npp = 4\nzero = 1\nlayer_split = [9, 8, 8, 7]", "seq_len = 4096\nglobal_batch = 64\ntokens = 1e9"),
      0, 64, cost);
  CHECK(r4.optimizer.rank == 0);
}

// --- 8. balanced stages ------------------------------------------------------------------------

TEST_CASE("A balanced split's slowest stage is no slower than any other split of the same layers", "[step][split]") {
  // Llama 3 8B, pp 4 1F1B: a stage's F + B is the sum of its layers' (no communication inside an
  // op), plus the embedding on stage 0 and the head on stage 3. Every split of 32 layers into 4
  // non-empty runs is tried (4495 of them).
  const LinearCost cost(132);
  const Scenario sc = scenario("bal", "llama3-8b", 32, "dp = 8\npp = 4\nzero = 1",
                               "seq_len = 4096\nglobal_batch = 64\ntokens = 1e9");
  const auto r = step::simulate_step(sc, 0, 64, cost);
  OpContext oc;
  oc.seq_len = 4096;
  auto total = [&](const std::vector<Op>& ops) {
    double t = 0;
    for (const auto& o : ops) t += LinearCost::seconds(o);
    return t;
  };
  const double layer = total(layer_ops(sc.model, 0, oc));
  const double first = total(embedding_ops(sc.model, oc)), last = total(head_ops(sc.model, oc));
  auto worst = [&](const std::vector<i64>& split) {
    double w = 0;
    for (std::size_t s = 0; s < split.size(); ++s)
      w = std::max(w, static_cast<double>(split[s]) * layer + (s == 0 ? first : 0) + (s + 1 == split.size() ? last : 0));
    return w;
  };
  double best = 1e300;
  for (i64 a = 1; a <= 29; ++a)
    for (i64 b = 1; a + b <= 30; ++b)
      for (i64 c = 1; a + b + c <= 31; ++c) best = std::min(best, worst({a, b, c, 32 - a - b - c}));
  CHECK(worst(r.layer_split) == Approx(best).epsilon(1e-9));
  // The simulated stages agree with the hand sums.
  double sim = 0;
  for (const auto& st : r.stages) sim = std::max(sim, (st.f + st.b).seconds());
  CHECK(sim == Approx(best).epsilon(1e-6));
}

TEST_CASE("Schedule bubble is the equal-stage bubble; the rest of the idle time is imbalance", "[step][split]") {
  // 1F1B, pp 4, the even split (8 layers each: the embedding and head make stages 0 and 3
  // heavier). With every stage at the mean F and B and free sends 1F1B leaves (P-1)(F+B) idle
  // per rank: schedule bubble = 3 (F_mean + B_mean). The parts add up to the step.
  const LinearCost cost(132);
  const Scenario sc = scenario("bub", "llama3-8b", 32, "dp = 8\npp = 4\nzero = 1\nlayer_split = \"even\"",
                               "seq_len = 4096\nglobal_batch = 64\ntokens = 1e9");
  const auto r = step::simulate_step(sc, 0, 64, cost);
  Time f, b;
  for (const auto& st : r.stages) {
    f += st.f;
    b += st.b;
  }
  CHECK(r.breakdown.schedule_bubble_s == Approx(3 * (f + b).seconds() / 4).epsilon(1e-6));
  CHECK(r.breakdown.imbalance_s > 0);
  CHECK(r.breakdown.exposed_pp_s > 0);
  CHECK(r.breakdown.total() == Approx(r.step_s).epsilon(1e-9));
  double idle = 0;
  for (Time t : r.pipeline->replay.bubble) idle += t.seconds();
  CHECK(r.breakdown.schedule_bubble_s + r.breakdown.imbalance_s + r.breakdown.exposed_pp_s ==
        Approx(idle / 4).epsilon(1e-9));
}

TEST_CASE("The breakdown adds up to the step for every mechanism", "[step]") {
  const LinearCost cost(132);
  const std::string tr = "seq_len = 4096\nglobal_batch = 256\ntokens = 1e9";
  const char* plans[] = {
      "dp = 16\npp = 4\nep = 16\nzero = 1\ncomm_sms = 20\nlayer_split = [6, 7, 7, 7]\nschedule = \"dualpipe\"",
      "dp = 16\npp = 4\nep = 16\nzero = 1\nschedule = \"1f1b\"\nep_comm_overlap = true\nshared_expert_overlap = true\n"
      "overlap_grad_reduce = true\noverlap_param_gather = true\nrecompute = \"full\"\nrecompute_num_layers = 3",
      "dp = 8\ntp = 2\npp = 4\nep = 16\nzero = 1\nsequence_parallel = true\ntp_comm_overlap = true\nschedule = \"interleaved\"\n"
      "vpp = 3\nlayer_split = \"balanced\"",
  };
  int k = 0;
  for (const char* p : plans) {
    INFO(p);
    const auto r = step::simulate_step(scenario("sum" + std::to_string(++k), "deepseek-v2-lite", 64, p, tr), 0, 256, cost);
    CHECK(r.breakdown.total() == Approx(r.step_s).epsilon(1e-9));
    for (const auto& l : r.breakdown.lines()) CHECK(l.seconds >= 0);
  }
}

TEST_CASE("MoE all-to-all tokens: a TP rank with sequence parallelism exchanges its own 1/tp", "[step][ep]") {
  // DeepSeek-V2-Lite on 16 H800 (two nodes), EP16. With TP2 and sequence parallelism each TP rank
  // holds half of a 4096-token micro-batch and exchanges only that half: the same all-to-all as
  // TP1 with 2048-token sequences. Without sequence parallelism every TP rank holds all 4096
  // tokens and sends them: the all-to-all of TP1 at 4096.
  auto a2a = [](const std::string& plan, int seq) {
    const Scenario sc = scenario("a2a-" + std::to_string(seq) + plan.substr(0, 8), "deepseek-v2-lite", 16, plan,
                                 "seq_len = " + std::to_string(seq) + "\nglobal_batch = 64\ntokens = 1e9");
    const step::CommPlan c(sc, sc.phases.front().plan, sc.phases.front().training);
    REQUIRE(c.ep_comm());
    return c.alltoall(0.0);
  };
  const auto sp = a2a("dp = 8\ntp = 2\nep = 16\nsequence_parallel = true", 4096);
  const auto half = a2a("dp = 16\ntp = 1\nep = 16", 2048);
  const auto full_sp_off = a2a("dp = 8\ntp = 2\nep = 16", 4096);
  const auto full = a2a("dp = 16\ntp = 1\nep = 16", 4096);
  CHECK(sp.dispatch_fwd == half.dispatch_fwd);
  CHECK(sp.combine_fwd == half.combine_fwd);
  CHECK(full_sp_off.dispatch_fwd == full.dispatch_fwd);
  CHECK(sp.dispatch_fwd < full.dispatch_fwd);
  // The dispatch payload: BF16 in a BF16 run (the combine's size, so the same time on these
  // symmetric paths), FP8 with scales in an FP8 run with DeepEP (DeepSeek-V3 §3.3.3), BF16 again
  // with Megatron's alltoall dispatcher.
  CHECK(full.dispatch_fwd == full.combine_fwd);
  const auto fp8 = [](const std::string& plan) {
    const Scenario sc = scenario("a2a-fp8" + plan.substr(plan.size() - 4), "deepseek-v2-lite", 16, plan,
                                 "seq_len = 4096\nglobal_batch = 64\ntokens = 1e9\n[training.precision]\ngemm = \"fp8\"");
    const step::CommPlan c(sc, sc.phases.front().plan, sc.phases.front().training);
    return c.alltoall(0.0);
  };
  CHECK(fp8("dp = 16\nep = 16").dispatch_fwd < full.dispatch_fwd);
  CHECK(fp8("dp = 16\nep = 16\nep_dispatcher = \"alltoall\"").dispatch_fwd ==
        a2a("dp = 16\nep = 16\nep_dispatcher = \"alltoall\"", 4096).dispatch_fwd);
}
