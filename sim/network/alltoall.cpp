#include "network/alltoall.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/memo.hpp"

namespace trainsim::network {

namespace {

// Raw 64-bit draws from std::mt19937_64 (fully specified by the standard) turned into numbers by
// our own transforms, so that output is byte-stable across standard libraries.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : g_(seed) {}
  double uniform() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }  // [0, 1)
  int below(int n) { return static_cast<int>(uniform() * n); }

 private:
  std::mt19937_64 g_;
};

// One EP group's routing: expert e lives on rank e / per_rank, node rank / gpn.
class Router {
 public:
  Router(const AllToAllSpec& s, int experts, int gpn, int nodes)
      : experts_(experts), per_rank_(experts / s.ep), gpn_(gpn), topk_(s.topk),
        max_nodes_(std::min(s.max_nodes, nodes)), drawn_(static_cast<std::size_t>(experts), 0) {
    if (s.skew > 0) {
      // Zipf popularity over a seeded random ranking of the experts (Fisher-Yates).
      std::vector<int> order(static_cast<std::size_t>(experts));
      for (int i = 0; i < experts; ++i) order[static_cast<std::size_t>(i)] = i;
      Rng r(mix64(s.seed ^ 0x5eedf00dULL));
      for (int i = experts - 1; i > 0; --i) std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(r.below(i + 1))]);
      std::vector<double> pop(static_cast<std::size_t>(experts));
      for (int q = 0; q < experts; ++q) pop[static_cast<std::size_t>(order[static_cast<std::size_t>(q)])] = std::pow(q + 1.0, -s.skew);
      cum_.resize(static_cast<std::size_t>(experts));
      double acc = 0;
      for (int e = 0; e < experts; ++e) cum_[static_cast<std::size_t>(e)] = acc += pop[static_cast<std::size_t>(e)];
      for (double& c : cum_) c /= acc;
    }
  }
  int rank_of(int e) const { return e / per_rank_; }
  int node_of_rank(int r) const { return r / gpn_; }

  // Fills `out` with the token's experts (topk of them).
  void route(Rng& rng, std::vector<int>& out) {
    out.clear();
    int sel[64];
    int nsel = 0;
    touched_.clear();
    while (static_cast<int>(out.size()) < topk_) {
      int e;
      if (cum_.empty()) {
        e = rng.below(experts_);
      } else {
        e = static_cast<int>(std::upper_bound(cum_.begin(), cum_.end(), rng.uniform()) - cum_.begin());
        e = std::min(e, experts_ - 1);
      }
      if (drawn_[static_cast<std::size_t>(e)]) continue;
      drawn_[static_cast<std::size_t>(e)] = 1;
      touched_.push_back(e);
      const int n = node_of_rank(rank_of(e));
      bool ok = false;
      for (int i = 0; i < nsel; ++i) ok = ok || sel[i] == n;
      if (!ok && nsel < max_nodes_) {
        sel[nsel++] = n;
        ok = true;
      }
      if (ok) out.push_back(e);
    }
    for (int e : touched_) drawn_[static_cast<std::size_t>(e)] = 0;
  }

 private:
  int experts_, per_rank_, gpn_, topk_, max_nodes_;
  std::vector<char> drawn_;
  std::vector<int> touched_;
  std::vector<double> cum_;
};

// Token counts of one EP group (local rank numbers 0..ep-1).
struct GroupTraffic {
  std::vector<double> ib;      // two-hop: [s * nodes + d], tokens from s to node d (d != own)
  std::vector<double> nvl;     // two-hop: [f * gpn + j], tokens forwarded by f to local GPU j
  std::vector<double> direct;  // direct: [s * ep + r]
  std::vector<double> rdma_logical;  // per s: (token, node) pairs incl. own node
  std::vector<double> nvl_logical;   // per r: tokens received incl. from itself
  double tokens = 0, pairs = 0, remote_pairs = 0, gpu_pairs = 0;
};

struct Shape {
  int ep, gpn, nodes, experts;
};

void add_token(const Shape& sh, const AllToAllSpec& spec, int s, const std::vector<int>& ranks_hit,
               const std::vector<int>& nodes_hit, double w, GroupTraffic& t) {
  const int sn = s / sh.gpn, si = s % sh.gpn;
  t.tokens += w;
  t.rdma_logical[static_cast<std::size_t>(s)] += w * static_cast<double>(nodes_hit.size());
  t.pairs += w * static_cast<double>(nodes_hit.size());
  t.gpu_pairs += w * static_cast<double>(ranks_hit.size());
  for (int d : nodes_hit)
    if (d != sn) {
      t.remote_pairs += w;
      if (spec.two_hop) t.ib[static_cast<std::size_t>(s * sh.nodes + d)] += w;
    }
  for (int r : ranks_hit) {
    t.nvl_logical[static_cast<std::size_t>(r)] += w;
    if (spec.two_hop) {
      const int f = (r / sh.gpn) * sh.gpn + si;  // forwarder: the sender's rail on r's node
      if (f != r) t.nvl[static_cast<std::size_t>(f * sh.gpn + r % sh.gpn)] += w;
    } else if (r != s) {
      t.direct[static_cast<std::size_t>(s * sh.ep + r)] += w;
    }
  }
}

void dedup(const Router& router, const std::vector<int>& experts, std::vector<int>& ranks, std::vector<int>& nodes) {
  ranks.clear();
  nodes.clear();
  for (int e : experts) {
    const int r = router.rank_of(e);
    if (std::find(ranks.begin(), ranks.end(), r) == ranks.end()) ranks.push_back(r);
    const int n = router.node_of_rank(r);
    if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
  }
}

struct HitProbabilities {
  std::vector<double> node, rank;  // P(a token hits node d / GPU r)
  std::vector<double> rows;        // expected experts of a token on GPU r
};

HitProbabilities sample_hit_probabilities(const Shape& sh, const AllToAllSpec& spec) {
  Router router(spec, sh.experts, sh.gpn, sh.nodes);
  std::vector<int> experts, ranks, nodes_hit;
  const auto ep = static_cast<std::size_t>(sh.ep);
  const auto nodes = static_cast<std::size_t>(sh.nodes);
  // Balanced: routing does not depend on the sender, so the probability that a token hits node
  // d or GPU r is estimated once from a large seeded sample (2^16 tokens); every sender then
  // sends exactly its expected share. With uniform popularity the estimates are averaged over
  // nodes and GPUs, which is exact by symmetry.
  constexpr int kSample = 1 << 16;
  std::vector<double> p_node(nodes, 0), p_rank(ep, 0), p_rows(ep, 0);
  Rng rng(mix64(spec.seed ^ 0xba1a2cedULL));
  for (int k = 0; k < kSample; ++k) {
    router.route(rng, experts);
    dedup(router, experts, ranks, nodes_hit);
    for (int r : ranks) p_rank[static_cast<std::size_t>(r)] += 1.0 / kSample;
    for (int d : nodes_hit) p_node[static_cast<std::size_t>(d)] += 1.0 / kSample;
    for (int e : experts) p_rows[static_cast<std::size_t>(router.rank_of(e))] += 1.0 / kSample;
  }
  if (spec.skew <= 0) {
    double sn = 0, sr = 0, sw = 0;
    for (double v : p_node) sn += v;
    for (double v : p_rank) sr += v;
    for (double v : p_rows) sw += v;
    std::fill(p_node.begin(), p_node.end(), sn / static_cast<double>(nodes));
    std::fill(p_rank.begin(), p_rank.end(), sr / static_cast<double>(ep));
    std::fill(p_rows.begin(), p_rows.end(), sw / static_cast<double>(ep));
  }
  return {p_node, p_rank, p_rows};
}

// The sample depends only on the routing problem (experts, top-k, node limit, node shape,
// popularity, seed), never on tokens or bandwidths, so it is computed once per process for each
// such problem and shared (a sweep or a batch ramp asks for the same one many times). Thread
// safe; the cached value is exactly what the sample would give again, so results do not change.
HitProbabilities hit_probabilities(const Shape& sh, const AllToAllSpec& spec) {
  // Memo "routing sample" (core/memo.hpp): counted, bounded, emptied by clear_memos().
  static StringMemo<HitProbabilities> memo("routing sample", 64);
  KeyWriter k;
  k.add(sh.ep).add(sh.experts).add(sh.gpn).add(sh.nodes).add(spec.topk).add(spec.max_nodes).add(spec.skew);
  k.add(static_cast<std::uint64_t>(spec.seed));
  return *memo.get(k.str(), [&] { return sample_hit_probabilities(sh, spec); });
}

GroupTraffic make_traffic(const Shape& sh, const AllToAllSpec& spec, int group, const HitProbabilities* hp) {
  GroupTraffic t;
  const auto ep = static_cast<std::size_t>(sh.ep);
  const auto nodes = static_cast<std::size_t>(sh.nodes);
  const auto gpn = static_cast<std::size_t>(sh.gpn);
  t.ib.assign(ep * nodes, 0);
  t.nvl.assign(ep * gpn, 0);
  if (!spec.two_hop) t.direct.assign(ep * ep, 0);
  t.rdma_logical.assign(ep, 0);
  t.nvl_logical.assign(ep, 0);
  Router router(spec, sh.experts, sh.gpn, sh.nodes);
  std::vector<int> experts, ranks, nodes_hit;
  if (!spec.balanced) {
    for (int s = 0; s < sh.ep; ++s) {
      Rng rng(mix64(spec.seed * 0x100000001b3ULL + static_cast<std::uint64_t>(group) * 65536 + static_cast<std::uint64_t>(s)));
      for (int k = 0; k < spec.tokens; ++k) {
        router.route(rng, experts);
        dedup(router, experts, ranks, nodes_hit);
        if (spec.expert_rows) {  // one row per expert: the target GPU once per expert it holds
          ranks.clear();
          for (int e : experts) ranks.push_back(router.rank_of(e));
        }
        add_token(sh, spec, s, ranks, nodes_hit, 1.0, t);
      }
    }
    return t;
  }
  const std::vector<double>& p_node = hp->node;
  const std::vector<double>& p_rank = spec.expert_rows ? hp->rows : hp->rank;
  const double T = spec.tokens;
  for (int s = 0; s < sh.ep; ++s) {
    const int sn = s / sh.gpn, si = s % sh.gpn;
    t.tokens += T;
    for (int d = 0; d < sh.nodes; ++d) {
      const double w = T * p_node[static_cast<std::size_t>(d)];
      t.rdma_logical[static_cast<std::size_t>(s)] += w;
      t.pairs += w;
      if (d != sn) {
        t.remote_pairs += w;
        if (spec.two_hop) t.ib[static_cast<std::size_t>(s * sh.nodes + d)] += w;
      }
    }
    for (int r = 0; r < sh.ep; ++r) {
      const double w = T * p_rank[static_cast<std::size_t>(r)];
      t.gpu_pairs += w;
      t.nvl_logical[static_cast<std::size_t>(r)] += w;
      if (spec.two_hop) {
        const int f = (r / sh.gpn) * sh.gpn + si;
        if (f != r) t.nvl[static_cast<std::size_t>(f * sh.gpn + r % sh.gpn)] += w;
      } else if (r != s) {
        t.direct[static_cast<std::size_t>(s * sh.ep + r)] += w;
      }
    }
  }
  return t;
}

struct Load {
  std::vector<double> link;     // bytes per link
  std::vector<double> gpu_send; // bytes each GPU's kernel pushes
};

void add_flow(const Topology& topo, int src, int dst, double bytes, std::uint64_t id, Load& load,
              std::vector<int>& scratch) {
  if (bytes <= 0 || src == dst) return;
  scratch.clear();
  topo.append_path(src, dst, id, scratch);
  for (int l : scratch) load.link[static_cast<std::size_t>(l)] += bytes;
  load.gpu_send[static_cast<std::size_t>(src)] += bytes;
}

// Dispatch flows (reverse = combine: every flow from its destination back to its source).
void add_group_flows(const Topology& topo, const Shape& sh, const AllToAllSpec& spec, const GroupTraffic& t, int base,
                     double bytes_per_token, bool reverse, Load& load) {
  std::vector<int> scratch;
  auto flow = [&](int s, int d, double tokens) {
    const int a = base + (reverse ? d : s), b = base + (reverse ? s : d);
    add_flow(topo, a, b, tokens * bytes_per_token,
             static_cast<std::uint64_t>(a) * 1000003ULL + static_cast<std::uint64_t>(b), load, scratch);
  };
  if (spec.two_hop) {
    for (int s = 0; s < sh.ep; ++s)
      for (int d = 0; d < sh.nodes; ++d) flow(s, d * sh.gpn + s % sh.gpn, t.ib[static_cast<std::size_t>(s * sh.nodes + d)]);
    for (int f = 0; f < sh.ep; ++f)
      for (int j = 0; j < sh.gpn; ++j) flow(f, (f / sh.gpn) * sh.gpn + j, t.nvl[static_cast<std::size_t>(f * sh.gpn + j)]);
  } else {
    for (int s = 0; s < sh.ep; ++s)
      for (int r = 0; r < sh.ep; ++r) flow(s, r, t.direct[static_cast<std::size_t>(s * sh.ep + r)]);
  }
}

PhaseResult evaluate(const Topology& topo, const AllToAllSpec& spec, const Load& load, double latency,
                     double logical_bytes_per_rank, std::vector<double>* rank_seconds, std::string* kind) {
  PhaseResult r;
  double worst = 0;
  const std::size_t L = topo.link_count();
  std::vector<double> per_gpu(static_cast<std::size_t>(topo.gpus()), 0.0);
  for (std::size_t l = 0; l < L; ++l) {
    if (load.link[l] <= 0) continue;
    const double t = load.link[l] / topo.capacity(static_cast<int>(l));
    const int g = topo.attached_gpu(static_cast<int>(l));
    if (g >= 0) per_gpu[static_cast<std::size_t>(g)] = std::max(per_gpu[static_cast<std::size_t>(g)], t);
    if (t > worst) {
      worst = t;
      r.bottleneck_link = static_cast<int>(l);
      r.bottleneck_load = load.link[l];
    }
  }
  if (spec.comm_sms > 0 && spec.comm_sms < spec.calibration_sms) {
    const double scale = static_cast<double>(spec.calibration_sms) / spec.comm_sms;
    worst *= scale;
    for (double& t : per_gpu) t *= scale;
  }
  if (spec.sm_bandwidth > 0 && spec.comm_sms > 0) {
    const double cap = spec.sm_bandwidth * spec.comm_sms;
    for (std::size_t g = 0; g < per_gpu.size(); ++g) per_gpu[g] = std::max(per_gpu[g], load.gpu_send[g] / cap);
  }
  double slowest = 0;
  for (std::size_t g = 0; g < per_gpu.size(); ++g)
    if (per_gpu[g] > slowest) {
      slowest = per_gpu[g];
      r.slowest_rank = static_cast<int>(g);
    }
  worst = std::max(worst, slowest);
  r.seconds = worst + latency;
  r.gbps = r.seconds > 0 ? logical_bytes_per_rank / r.seconds / 1e9 : 0;
  if (rank_seconds != nullptr) {
    rank_seconds->resize(per_gpu.size());
    for (std::size_t g = 0; g < per_gpu.size(); ++g) (*rank_seconds)[g] = per_gpu[g] > 0 ? per_gpu[g] + latency : 0;
  }
  if (kind != nullptr && r.bottleneck_link >= 0) {
    switch (topo.kind(r.bottleneck_link)) {
      case LinkKind::NvLink: *kind = "NVLink"; break;
      case LinkKind::Nic: *kind = "NIC"; break;
      case LinkKind::Fabric: *kind = "fabric"; break;
    }
    if (slowest > 0 && worst == slowest && spec.sm_bandwidth > 0 &&
        load.gpu_send[static_cast<std::size_t>(r.slowest_rank)] / (spec.sm_bandwidth * spec.comm_sms) >= worst)
      *kind = "SMs";
    if (spec.comm_sms > 0 && spec.comm_sms < spec.calibration_sms)
      *kind += fmt::format(" (at {} of the {} SMs it was measured with)", spec.comm_sms, spec.calibration_sms);
  }
  return r;
}

}  // namespace

AllToAllResult simulate_alltoall(const Topology& topo, const AllToAllSpec& spec) {
  const int G = topo.gpus_per_node();
  if (spec.ep < 1 || spec.tokens < 1 || spec.hidden < 1 || spec.topk < 1 || spec.max_nodes < 1)
    throw UsageError("all-to-all: ep, tokens, hidden, topk and max-nodes must be positive");
  if (spec.ep > G ? spec.ep % G != 0 : G % spec.ep != 0)
    throw UsageError(fmt::format("all-to-all: EP {} does not fit nodes of {} GPUs", spec.ep, G));
  if (spec.ep > topo.gpus()) throw UsageError(fmt::format("all-to-all: EP {} exceeds the cluster's {} GPUs", spec.ep, topo.gpus()));
  Shape sh{spec.ep, std::min(G, spec.ep), std::max(1, spec.ep / G), (spec.experts / spec.ep) * spec.ep};
  if (sh.experts < spec.ep) throw UsageError(fmt::format("all-to-all: {} experts cannot cover EP {}", spec.experts, spec.ep));
  if (spec.topk > std::min(spec.max_nodes, sh.nodes) * (sh.experts / sh.nodes))
    throw UsageError("all-to-all: topk exceeds the experts on max-nodes nodes");
  if (spec.skew < 0 || !std::isfinite(spec.skew)) throw UsageError("all-to-all: skew must be >= 0");

  AllToAllResult res;
  res.internode = sh.nodes > 1;
  if (spec.expert_rows && spec.two_hop) throw UsageError("all-to-all: expert rows are sent directly, not over DeepEP's two hops");
  res.dispatch_bytes_per_token = spec.fp8_dispatch ? spec.hidden * (1.0 + 4.0 / 128.0) : spec.hidden * 2.0;
  res.combine_bytes_per_token = spec.hidden * 2.0;
  const int groups = spec.full_rank ? topo.gpus() / spec.ep : 1;
  Load disp{std::vector<double>(topo.link_count(), 0.0), std::vector<double>(static_cast<std::size_t>(topo.gpus()), 0.0)};
  Load comb = disp;
  double logical_tokens = 0;  // summed over ranks, in DeepEP's counting
  double tok = 0, pairs = 0, remote = 0, gpus = 0;
  // Balanced routing: the hit probabilities do not depend on the group or sender; sample once.
  const HitProbabilities hp = spec.balanced ? hit_probabilities(sh, spec) : HitProbabilities{};
  for (int grp = 0; grp < groups; ++grp) {
    const GroupTraffic t = make_traffic(sh, spec, grp, &hp);
    add_group_flows(topo, sh, spec, t, grp * spec.ep, res.dispatch_bytes_per_token, false, disp);
    add_group_flows(topo, sh, spec, t, grp * spec.ep, res.combine_bytes_per_token, true, comb);
    for (int r = 0; r < spec.ep; ++r)
      logical_tokens += res.internode ? t.rdma_logical[static_cast<std::size_t>(r)] : t.nvl_logical[static_cast<std::size_t>(r)];
    tok += t.tokens;
    pairs += t.pairs;
    remote += t.remote_pairs;
    gpus += t.gpu_pairs;
  }
  if (spec.background_nic_bytes > 0) {
    // Each GPU's NIC carries B bytes each way beside the phase: a link with A bytes of the
    // all-to-all then delivers it after min(A + B, 2A) (max-min sharing of two demands).
    std::vector<int> scratch;
    const int gpn = topo.gpus_per_node();
    const int limit = std::min(topo.gpus(), groups * spec.ep);
    for (Load* ld : {&disp, &comb})
      for (int g = 0; g < limit && topo.domains() > 1; ++g) {
        const int peer = (g + topo.domain_size()) % topo.gpus();
        if (topo.domain_of(peer) == topo.domain_of(g) || peer % gpn != g % gpn) continue;
        scratch = topo.path(g, peer);
        for (int l : {scratch.front(), scratch.back()}) {
          if (topo.kind(l) != LinkKind::Nic) continue;
          double& a = ld->link[static_cast<std::size_t>(l)];
          a = a > 0 ? std::min(a + spec.background_nic_bytes, 2 * a) : 0.0;
        }
      }
  }
  const double ranks = static_cast<double>(groups) * spec.ep;
  res.rdma_pairs_per_token = pairs / tok;
  res.ib_pairs_per_token = remote / tok;
  res.gpus_per_token = gpus / tok;
  const NetworkConfig& net = topo.spec().net;
  const double latency = net.nvlink_latency + (res.internode ? net.ib_latency : 0.0);
  res.dispatch = evaluate(topo, spec, disp, latency, logical_tokens / ranks * res.dispatch_bytes_per_token,
                          &res.rank_dispatch_seconds, &res.bottleneck_kind);
  res.combine = evaluate(topo, spec, comb, latency, logical_tokens / ranks * res.combine_bytes_per_token, nullptr, nullptr);
  return res;
}

}  // namespace trainsim::network
