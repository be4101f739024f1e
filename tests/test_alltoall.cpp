// MoE all-to-all: the traffic model against combinatorics, the DeepEP H800 check, full-rank vs
// symmetric, skew, and the CLI.
#include <catch2/catch.hpp>

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "network/alltoall.hpp"
#include "support.hpp"

using namespace trainsim::network;

namespace {
TopologySpec h800(int gpus) {
  // profiles/hardware/h800.toml: NVLink 400 GB/s (bidirectional sum), one 400 Gb/s NIC per GPU.
  TopologySpec s;
  s.gpus = gpus;
  s.gpus_per_node = 8;
  s.nvlink_bidir = 400e9;
  s.nic = 50e9;
  s.net.fabric = Fabric::MultiPlaneFatTree;
  return s;
}

// P(a given set of m experts out of E misses all k chosen uniformly) = C(E-m, k) / C(E, k).
double miss(int E, int m, int k) {
  double p = 1;
  for (int i = 0; i < k; ++i) p *= static_cast<double>(E - m - i) / (E - i);
  return p;
}
}  // namespace

TEST_CASE("traffic model: uniform routing hits nodes and GPUs as combinatorics says") {
  // When max_nodes >= nodes, node-limited routing is plain uniform top-8 of 256 experts.
  // EP32 (4 nodes of 64 experts): nodes per token = 4·(1 - C(192,8)/C(256,8)).
  // GPUs per token = 32·(1 - C(248,8)/C(256,8)).
  const Topology t(h800(32));
  AllToAllSpec s;
  s.ep = 32;
  const auto r = simulate_alltoall(t, s);
  CHECK(r.rdma_pairs_per_token == Approx(4 * (1 - miss(256, 64, 8))).epsilon(0.005));
  CHECK(r.ib_pairs_per_token == Approx(3 * (1 - miss(256, 64, 8))).epsilon(0.005));
  CHECK(r.gpus_per_token == Approx(32 * (1 - miss(256, 8, 8))).epsilon(0.005));
  // EP64 with M = 4 of 8 nodes: each token reaches at most 4 nodes, and the node holding its
  // top-scored expert is always one of them; the own node is one of the 4 with probability 1/2,
  // so remote pairs = pairs · (1 - 1/8) exactly (in expectation).
  const Topology t64(h800(64));
  s.ep = 64;
  const auto r64 = simulate_alltoall(t64, s);
  CHECK(r64.rdma_pairs_per_token <= 4.0);
  CHECK(r64.rdma_pairs_per_token > 3.9);
  CHECK(r64.ib_pairs_per_token == Approx(r64.rdma_pairs_per_token * 7 / 8).epsilon(1e-9));
}

TEST_CASE("DeepEP H800 check: dispatch and combine bandwidth within 10% at EP 8/16/32/64") {
  // Reference: DeepEP README, normal kernels, initial release 2025-02-25 [DeepEP-README@ebfe47e],
  // shared/reference/public-figures.md C2. 4096 tokens, hidden 7168, top-4 groups, top-8 experts,
  // FP8 dispatch and BF16 combine, one CX7 400 Gb/s NIC per H800. GB/s in DeepEP's counting:
  // NVL (intranode, EP8) or RDMA (internode). The simulation uses one NVLink and one IB
  // efficiency for all sizes (sim/network/README.md "Calibration").
  struct Row {
    int ep;
    double dispatch, combine;
  };
  const Row rows[] = {{8, 153, 158}, {16, 43, 43}, {32, 44, 47}, {64, 46, 45}};
  for (const Row& row : rows) {
    const Topology t(h800(std::max(8, row.ep)));
    AllToAllSpec s;
    s.ep = row.ep;
    s.tokens = 4096;
    s.hidden = 7168;
    s.topk = 8;
    s.max_nodes = 4;
    const auto r = simulate_alltoall(t, s);
    INFO("EP " << row.ep << ": dispatch " << r.dispatch.gbps << " GB/s vs " << row.dispatch << ", combine "
               << r.combine.gbps << " GB/s vs " << row.combine);
    CHECK(r.internode == (row.ep > 8));
    CHECK(std::abs(r.dispatch.gbps / row.dispatch - 1) < 0.10);
    CHECK(std::abs(r.combine.gbps / row.combine - 1) < 0.10);
  }
}

TEST_CASE("full-rank and symmetric modes agree for balanced routing") {
  // 256 GPUs = 4 EP64 groups at once on the MPFT fabric (4 x 8 nodes, all on one leaf per
  // plane): balanced traffic makes every rank identical, so one representative group gives the
  // same times (expectation: equal within 1%).
  const Topology t(h800(256));
  AllToAllSpec s;
  s.ep = 64;
  s.full_rank = true;
  const auto full = simulate_alltoall(t, s);
  s.full_rank = false;
  const auto sym = simulate_alltoall(t, s);
  CHECK(full.dispatch.seconds == Approx(sym.dispatch.seconds).epsilon(0.01));
  CHECK(full.combine.seconds == Approx(sym.combine.seconds).epsilon(0.01));
}

TEST_CASE("step time rises monotonically with expert skew") {
  // Zipf popularity over a seeded ranking: hotter experts concentrate traffic on the GPUs that
  // hold them, and the slowest rank gates the all-to-all. Expectation: non-decreasing in skew.
  const Topology t(h800(64));
  AllToAllSpec s;
  s.ep = 64;
  s.tokens = 1024;
  s.balanced = false;
  double prev = 0;
  for (double skew : {0.0, 0.4, 0.8, 1.2, 1.6}) {
    s.skew = skew;
    const auto r = simulate_alltoall(t, s);
    INFO("skew " << skew << ": " << r.dispatch.seconds);
    CHECK(r.dispatch.seconds >= prev);
    prev = r.dispatch.seconds;
  }
  // And sampled uniform routing is a little slower than its balanced expectation (the slowest
  // rank of a sample is above the mean), but by little.
  s.skew = 0;
  const double sampled = simulate_alltoall(t, s).dispatch.seconds;
  s.balanced = true;
  const double balanced = simulate_alltoall(t, s).dispatch.seconds;
  CHECK(sampled >= balanced);
  CHECK(sampled < balanced * 1.15);
}

TEST_CASE("two-hop dispatch sends each token over IB once per node; direct sends once per GPU") {
  // Direct sends move (remote GPUs per token) copies over IB instead of (remote nodes per token):
  // at EP64 ~7.5·7/8 vs ~3.5 per token, so the direct dispatch takes longer.
  const Topology t(h800(64));
  AllToAllSpec s;
  s.ep = 64;
  const auto two = simulate_alltoall(t, s);
  s.two_hop = false;
  const auto direct = simulate_alltoall(t, s);
  CHECK(direct.dispatch.seconds > 1.5 * two.dispatch.seconds);
}

TEST_CASE("Megatron's alltoall dispatcher: every (token, expert) row sent directly in BF16", "[alltoall]") {
  // EP64 over 8 nodes, uniform balanced routing, 4 of 8 nodes per token. Each GPU sends
  // tokens x top-k rows, spread evenly over the 64 GPUs by symmetry; 56 of 64 leave the node, each
  // 2·hidden bytes. NIC-bound: t - latency = T·k·(56/64)·2h / C_nic, and the combine moves the same
  // rows back: the same time. Deduplicating per target GPU (the plain direct path) sends fewer.
  const Topology t(h800(64));
  AllToAllSpec s;
  s.ep = 64;
  s.two_hop = false;
  s.expert_rows = true;
  s.fp8_dispatch = false;
  const auto r = simulate_alltoall(t, s);
  CHECK(r.gpus_per_token == Approx(8.0).epsilon(1e-9));
  CHECK(r.dispatch_bytes_per_token == 2.0 * s.hidden);
  REQUIRE(r.bottleneck_kind == "NIC");
  const double lat = t.spec().net.nvlink_latency + t.spec().net.ib_latency;
  const double bytes = 4096.0 * 8 * 56.0 / 64 * 2 * s.hidden;
  CHECK(r.dispatch.seconds - lat == Approx(bytes / t.nic_bw()).epsilon(1e-6));
  CHECK(r.combine.seconds == Approx(r.dispatch.seconds).epsilon(1e-9));
  s.expert_rows = false;
  const auto per_gpu = simulate_alltoall(t, s);
  CHECK(per_gpu.gpus_per_token < 8.0);
  CHECK(per_gpu.dispatch.seconds < r.dispatch.seconds);
  // FP8 dispatch (the DeepEP recipe of an FP8 run): hidden·(1 + 4/128) bytes per token.
  s.fp8_dispatch = true;
  CHECK(simulate_alltoall(t, s).dispatch_bytes_per_token == Approx(s.hidden * (1 + 4.0 / 128)));
  // Expert rows exist only on the direct path.
  s.two_hop = true;
  s.expert_rows = true;
  CHECK_THROWS_AS(simulate_alltoall(t, s), trainsim::UsageError);
}

TEST_CASE("comm_sms: below the 24 SMs DeepEP was measured with, the bandwidth term scales by 24/K") {
  // EP64 dispatch, NIC-bound. Expectation: t(K) - latency = (t(24) - latency) x 24/K for K < 24,
  // and no faster with more SMs than 24.
  const Topology t(h800(64));
  AllToAllSpec s;
  s.ep = 64;
  const double lat = t.spec().net.nvlink_latency + t.spec().net.ib_latency;
  s.comm_sms = 24;
  const double t24 = simulate_alltoall(t, s).dispatch.seconds - lat;
  s.comm_sms = 20;
  const auto r20 = simulate_alltoall(t, s);
  CHECK(r20.dispatch.seconds - lat == Approx(t24 * 24.0 / 20.0).epsilon(1e-12));
  CHECK_THAT(r20.bottleneck_kind, Catch::Contains("20 of the 24 SMs"));
  s.comm_sms = 32;
  CHECK(simulate_alltoall(t, s).dispatch.seconds - lat == Approx(t24).epsilon(1e-12));
}

TEST_CASE("pipeline sends beside the all-to-all share the NIC: min(A + B, 2A) / C on the bottleneck") {
  // EP64 over 8 nodes with 16 nodes in the topology (each GPU's pipeline neighbour one EP group
  // away). B bytes of background each way on every NIC: the NIC-bound dispatch takes B / C_nic
  // longer (B below the dispatch's own load A), and at most twice as long.
  const Topology t(h800(128));
  AllToAllSpec s;
  s.ep = 64;
  s.full_rank = false;
  const auto base = simulate_alltoall(t, s);
  REQUIRE(base.bottleneck_kind == "NIC");
  const double C = t.nic_bw();
  s.background_nic_bytes = 10e6;
  CHECK(simulate_alltoall(t, s).dispatch.seconds - base.dispatch.seconds == Approx(10e6 / C).epsilon(1e-9));
  s.background_nic_bytes = 1e12;
  const double lat = t.spec().net.nvlink_latency + t.spec().net.ib_latency;
  CHECK(simulate_alltoall(t, s).dispatch.seconds - lat == Approx(2 * (base.dispatch.seconds - lat)).epsilon(1e-9));
}

TEST_CASE("trainsim alltoall reports dispatch and combine") {
  const auto r = ts_test::run_trainsim("alltoall --hardware h800 --ep 64 --tokens 4096 --hidden 7168 --topk 8 --max-nodes 4 --json");
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"dispatch_us", "combine_us", "dispatch_gbps", "combine_gbps"}) CHECK(j.contains(k));
  CHECK(j["counting"] == "RDMA");
  CHECK(j["dispatch_gbps"].get<double>() == Approx(46).epsilon(0.10));
  const auto text = ts_test::run_trainsim("alltoall --ep 8");
  CHECK(text.status == 0);
  CHECK(text.out.find("dispatch (FP8)") != std::string::npos);
  const auto bad = ts_test::run_trainsim("alltoall --ep 12");
  CHECK(bad.status == 2);
  CHECK(bad.err.find("EP 12") != std::string::npos);
  CHECK(ts_test::run_trainsim("alltoall --ep 64 --fabric torus").status == 2);
  // A negative Zipf exponent is refused by name (it used to be silently taken as "not given").
  const auto skew = ts_test::run_trainsim("alltoall --ep 64 --skew -1");
  CHECK(skew.status == 2);
  CHECK(skew.err.find("--skew") != std::string::npos);
  // Megatron's dispatcher: expert rows need the direct path, refused by name without it.
  const auto rows = ts_test::run_trainsim("alltoall --ep 64 --expert-rows");
  CHECK(rows.status == 2);
  CHECK(rows.out.empty());
  CHECK(rows.err.find("--expert-rows") != std::string::npos);
  const auto mc = ts_test::run_trainsim("alltoall --ep 64 --direct --expert-rows --bf16-dispatch --json");
  REQUIRE(mc.status == 0);
  const auto jm = nlohmann::json::parse(mc.out);
  CHECK(jm["path"] == "direct, expert rows");
  CHECK(jm["dispatch_dtype"] == "bf16");
  CHECK(jm["gpus_per_token"].get<double>() == Approx(8.0).epsilon(1e-9));  // top-8 rows per token
}
