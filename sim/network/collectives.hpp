#pragma once
// Collectives as NCCL runs them, simulated step by step as fluid flows on a Topology.
//
// Each algorithm is a sequence of steps; a step is a set of concurrent point-to-point
// transfers that share links max-min fairly (flow.hpp) and ends when its last transfer is
// delivered (bandwidth term + path latency α). Closed forms for an uncongested ring of p ranks,
// per-rank link bandwidth B and per-step latency α (Thakur, Rabenseifner & Gropp, "Optimization
// of Collective Communication Operations in MPICH", IJHPCA 2005; NCCL's docs/PERFORMANCE.md):
//   ring all-reduce      2(p-1)/p · S/B + 2(p-1)·α
//   reduce-scatter       (p-1)/p · S/B + (p-1)·α     (S = the full buffer, output S/p)
//   all-gather           (p-1)/p · S/B + (p-1)·α     (S = the full output)
//   send/recv            S/B + α
//   tree all-reduce      NCCL's double binary tree: two trees each carry S/2, reduce and
//                        broadcast pipelined concurrently; + 2·depth·α to fill the pipeline
//   hierarchical         reduce-scatter inside each node (NVLink), all-reduce of S/G across
//                        nodes per rail (fabric), all-gather inside each node
// Bus bandwidth (nccl-tests convention): busbw = algbw · f with algbw = S/t and
//   f = 2(p-1)/p (all-reduce), (p-1)/p (reduce-scatter, all-gather), 1 (send/recv).

#include <string>
#include <vector>

#include "network/topology.hpp"

namespace trainsim::network {

enum class CollectiveKind { AllReduce, ReduceScatter, AllGather, SendRecv };
enum class CollectiveAlgo { Ring, Tree, Hierarchical };

struct Transfer {
  int src = 0, dst = 0;
  double bytes = 0;
};

struct CollectiveResult {
  double seconds = 0;
  double algbw = 0;  // bytes/s: S / t
  double busbw = 0;  // bytes/s: algbw · bus factor
  int steps = 0;
};

// nccl-tests bus factor.
double bus_factor(CollectiveKind k, int p);

// Runs steps one after another (each starts when the previous one is delivered); returns the
// total time in seconds.
double run_steps(const Topology& topo, const std::vector<std::vector<Transfer>>& steps);

// `ranks`: the GPUs taking part, in ring order. `bytes`: S as defined above.
CollectiveResult all_reduce(const Topology& topo, const std::vector<int>& ranks, double bytes,
                            CollectiveAlgo algo = CollectiveAlgo::Ring);
CollectiveResult reduce_scatter(const Topology& topo, const std::vector<int>& ranks, double bytes);
CollectiveResult all_gather(const Topology& topo, const std::vector<int>& ranks, double bytes);
CollectiveResult send_recv(const Topology& topo, int src, int dst, double bytes);

}  // namespace trainsim::network
