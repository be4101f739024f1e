#pragma once
// MoE all-to-all, DeepEP style (deepseek-ai/DeepEP "normal" kernels; DeepSeek-V3 §3.2.2).
//
// Traffic. Per micro-batch and MoE layer every rank of an EP group holds `tokens` tokens and
// routes each to `topk` of `experts` routed experts (experts / ep per rank, placed in order),
// under node-limited routing: the experts of a token lie on at most `max_nodes` nodes. Routing
// is a Plackett-Luce draw, i.e. the order of i.i.d. (Gumbel-perturbed) scores: experts are drawn
// one by one without replacement with probability proportional to their popularity; the first
// `max_nodes` distinct nodes seen are the token's nodes (= top nodes by their best expert's
// score, DeepSeek-V3's group-limited gate with one group per node), and the first `topk` drawn
// experts on those nodes are its experts. Popularity is uniform (skew 0: the i.i.d. random
// scores of DeepEP's own benchmark, tests/test_internode.py) or Zipf with exponent `skew` over a
// seeded random ranking of the experts. `balanced` replaces sampling noise by the expectation:
// every node and GPU gets exactly its expected share (DeepSeek's profile is balanced).
//
// Paths. Two-hop (DeepEP internode): a token crosses InfiniBand once per target node, to the GPU
// with the sender's local index on that node (same rail/plane), which forwards it over NVLink
// to every target GPU of that node (deduplicated per node and per GPU). Direct: one send per
// target GPU (no node dedup); inter-node sends use the fabric (PXN on MPFT).
// Direct with expert rows (Megatron-Core's alltoall token dispatcher, token_dispatcher.py
// MoEAlltoAllTokenDispatcher: the tokens are permuted into one row per (token, expert) pair and
// exchanged by one all_to_all_single over the EP group): a token with two experts on one GPU is
// sent twice, and nothing is deduplicated per node.
// Dispatch carries FP8 with one FP32 scale per 128 channels, hidden·(1 + 4/128) bytes per token
// (DeepSeek-V3 §3.3.3, an FP8 run), or BF16, 2·hidden bytes (fp8_dispatch = false); combine
// carries BF16, 2·hidden bytes, on the reverse paths (the forwarder reduces per node).
//
// Timing. DeepEP pipelines all hops in chunks, so a dispatch or combine moves as concurrent
// fluid flows; its time is the largest link load over that link's achieved capacity (plus one
// path latency). The per-GPU achieved capacities are the nominal link bandwidths times one
// calibrated efficiency per link type (README.md "Calibration"); the K communication SMs can cap
// each GPU's send rate further (sm_bandwidth · K, 0 = no cap).
//
// SM count. DeepEP's normal kernels run one channel per pair of SMs and every channel carries an
// equal share of the traffic, so below the link limit the achieved bandwidth is proportional to
// the SMs given. The link efficiencies were fitted to DeepEP's tables, measured with 24 SMs
// (Buffer.set_num_sms(24), DeepEP README@0eee87b); the model takes those kernels as just able to
// fill the links at 24 SMs, so with K < 24 SMs every phase's bandwidth term takes 24/K as long
// (DeepSeek-V3 trained with 20: +20%), and more SMs than 24 buy nothing.
//
// Background traffic: `background_nic_bytes` per GPU and direction that cross its NIC while the
// phase runs (pipeline sends of the neighbouring stages). Under max-min sharing two demands on one
// link split it, so a link carrying A bytes of the all-to-all and B of background delivers the
// all-to-all after min(A + B, 2A) / C. Every rank is simulated
// (full-rank) or one representative rank stands for all (symmetric); with balanced routing the
// two are identical by symmetry.
//
// Reported bandwidth follows DeepEP's counting: internode, "RDMA" GB/s = (token, target node)
// pairs including the sender's own node x bytes per token / time; intranode, "NVL" GB/s =
// tokens received per rank (including from itself) x bytes per token / time.

#include <cstdint>
#include <string>
#include <vector>

#include "network/topology.hpp"

namespace trainsim::network {

struct AllToAllSpec {
  int ep = 64;              // ranks in the EP group (consecutive GPUs, whole nodes when > G)
  int tokens = 4096;        // per rank
  int hidden = 7168;
  int experts = 256;        // routed experts (rounded down to a multiple of ep, as DeepEP does)
  int topk = 8;
  int max_nodes = 4;        // node-limited routing (M)
  double skew = 0;          // Zipf exponent of expert popularity; 0 = uniform
  bool balanced = true;     // expected traffic instead of a sample
  bool two_hop = true;      // DeepEP path; false = direct sends
  bool expert_rows = false; // direct only: one row per (token, expert), not per target GPU
  bool fp8_dispatch = true; // dispatch payload FP8 + scales; false = BF16
  bool full_rank = true;    // every rank of every EP group; false = one representative rank
  int comm_sms = 24;        // SMs held by the communication kernels (DeepSeek-V3 trained with 20, §3.2.2)
  int calibration_sms = 24; // SMs of the measurements the link efficiencies come from (DeepEP's tables)
  double background_nic_bytes = 0;  // per GPU and direction, concurrent on its NIC (see above)
  double sm_bandwidth = 0;  // bytes/s one SM can push; 0 = not a limit
  std::uint64_t seed = 1;
};

struct PhaseResult {
  double seconds = 0;
  double gbps = 0;             // DeepEP counting (see above), GB/s
  double bottleneck_load = 0;  // bytes on the bottleneck link
  int bottleneck_link = -1;
  int slowest_rank = 0;        // rank whose attached links gate the phase
};

struct AllToAllResult {
  PhaseResult dispatch, combine;
  bool internode = false;          // counting: RDMA (true) or NVL (false)
  double rdma_pairs_per_token = 0; // mean (token, node) pairs per token, incl. own node
  double ib_pairs_per_token = 0;   // mean remote (token, node) pairs per token
  double gpus_per_token = 0;       // mean distinct target GPUs per token (expert rows: rows per token)
  double dispatch_bytes_per_token = 0, combine_bytes_per_token = 0;
  std::vector<double> rank_dispatch_seconds;  // full-rank: per GPU, from its own links
  std::string bottleneck_kind;     // "NVLink" | "NIC" | "fabric"
};

// Runs dispatch and combine of every EP group that fits in topo (topo.gpus() / ep groups at
// once, sharing the fabric), or of one group in symmetric mode. Throws UsageError on an
// inconsistent spec (ep not a multiple of the node size, too few experts, ...).
AllToAllResult simulate_alltoall(const Topology& topo, const AllToAllSpec& spec);

}  // namespace trainsim::network
