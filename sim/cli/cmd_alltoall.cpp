// trainsim alltoall --hardware h800 --ep 64 --tokens 4096 --hidden 7168 --topk 8 --max-nodes 4
//                   [--skew S] [--sampled] [--direct] [--symmetric] [--gpus N] [--fabric F] [--json]
// Simulates one MoE layer's DeepEP-style dispatch and combine (sim/network/alltoall.hpp) and
// reports their times and the bottleneck bandwidth in DeepEP's counting.
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "config/scenario.hpp"
#include "core/error.hpp"
#include "core/limits.hpp"
#include "core/table.hpp"
#include "network/alltoall.hpp"

namespace trainsim::cli {

void setup_alltoall(CLI::App& sub) {
  struct Opts {
    std::string hardware = "h800";
    network::AllToAllSpec spec;
    int gpus = 0;
    int gpus_per_node = 8;
    std::string fabric = "mpft";
    bool sampled = false, direct = false, symmetric = false, json = false, expert_rows = false, bf16 = false;
    std::optional<double> skew;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("--hardware", o->hardware, "GPU type (profiles/hardware/NAME.toml) or a path")->capture_default_str();
  sub.add_option("--ep", o->spec.ep, "Expert-parallel group size")->capture_default_str();
  sub.add_option("--tokens", o->spec.tokens, "Tokens per rank per micro-batch")->capture_default_str();
  sub.add_option("--hidden", o->spec.hidden, "Hidden size")->capture_default_str();
  sub.add_option("--experts", o->spec.experts, "Routed experts")->capture_default_str();
  sub.add_option("--topk", o->spec.topk, "Routed experts per token")->capture_default_str();
  sub.add_option("--max-nodes", o->spec.max_nodes, "Node-limited routing: nodes per token at most")->capture_default_str();
  sub.add_option("--skew", o->skew, "Zipf exponent of expert popularity (sampled routing; 0 = uniform)");
  sub.add_flag("--sampled", o->sampled, "Sample each rank's routing (seeded) instead of the balanced expectation");
  sub.add_option("--seed", o->spec.seed, "Seed of the routing sample")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub.add_flag("--direct", o->direct, "Direct sends instead of DeepEP's two-hop IB-then-NVLink path");
  sub.add_flag("--expert-rows", o->expert_rows,
               "With --direct: one row per (token, expert), as Megatron-Core's alltoall dispatcher sends them");
  sub.add_flag("--bf16-dispatch", o->bf16, "Dispatch BF16 tokens (2 bytes per element) instead of FP8 with scales");
  sub.add_flag("--symmetric", o->symmetric, "Simulate one representative EP group instead of every GPU");
  sub.add_option("--gpus", o->gpus, "GPUs in the cluster (default: ep); every EP group runs at once");
  sub.add_option("--gpus-per-node", o->gpus_per_node, "GPUs per node")->capture_default_str();
  sub.add_option("--fabric", o->fabric, "single | rail | mpft | clos3")
      ->capture_default_str()
      ->check(CLI::IsMember({"single", "rail", "mpft", "clos3"}));
  sub.add_option("--comm-sms", o->spec.comm_sms, "SMs held by the communication kernels")->capture_default_str();
  sub.add_flag("--json", o->json, "Print JSON (dispatch_us, combine_us, dispatch_gbps, combine_gbps, counting, "
                                  "bottleneck, ...)");
  sub.callback([o] {
    network::AllToAllSpec spec = o->spec;
    // Every option checked by name before any work (the network model asserts positivity).
    const auto positive = [](const char* option, long long v) {
      if (v < 1) throw UsageError(fmt::format("{}: must be at least 1, got {}", option, v));
    };
    positive("--ep", spec.ep);
    positive("--tokens", spec.tokens);
    positive("--hidden", spec.hidden);
    positive("--experts", spec.experts);
    positive("--topk", spec.topk);
    positive("--max-nodes", spec.max_nodes);
    positive("--gpus-per-node", o->gpus_per_node);
    if (o->gpus < 0) throw UsageError(fmt::format("--gpus: must not be negative, got {}", o->gpus));
    if (spec.topk > spec.experts)
      throw UsageError(fmt::format("--topk: {} routed experts per token, but only --experts {}", spec.topk, spec.experts));
    if (spec.experts < spec.ep)
      throw UsageError(fmt::format("--experts: {} routed experts cannot cover --ep {} ranks", spec.experts, spec.ep));
    if (o->skew) {
      if (!std::isfinite(*o->skew) || *o->skew < 0)
        throw UsageError(fmt::format("--skew: a Zipf exponent must be a finite number >= 0, got {}", *o->skew));
      spec.skew = *o->skew;
      spec.balanced = false;
    }
    // Work limits (core/limits.hpp, docs/limits.md).
    const long long gpus = o->gpus > 0 ? o->gpus : std::max(spec.ep, o->gpus_per_node);
    if (gpus > kMaxNetworkGpus || spec.ep > kMaxNetworkGpus)
      throw UsageError(fmt::format("{}: {} GPUs; the network model's work limit is {} (docs/limits.md)",
                                   o->gpus > 0 ? "--gpus" : "--ep", std::max<long long>(gpus, spec.ep), kMaxNetworkGpus));
    if (o->sampled) spec.balanced = false;
    if (!spec.balanced && static_cast<double>(gpus) * spec.tokens * spec.topk > static_cast<double>(kMaxRoutedTokens))
      throw UsageError(fmt::format("--tokens: sampled routing of {} GPUs x {} tokens x top-{} = {:.3g} token-expert pairs; "
                                   "the work limit is {:.3g} (docs/limits.md)",
                                   gpus, spec.tokens, spec.topk, static_cast<double>(gpus) * spec.tokens * spec.topk,
                                   static_cast<double>(kMaxRoutedTokens)));
    spec.two_hop = !o->direct;
    if (o->expert_rows && !o->direct)
      throw UsageError("--expert-rows: rows per (token, expert) are sent directly; add --direct");
    spec.expert_rows = o->expert_rows;
    spec.fp8_dispatch = !o->bf16;
    spec.full_rank = !o->symmetric;
    if (o->spec.comm_sms < 0) throw UsageError("--comm-sms: must be >= 0");
    if ((spec.ep > o->gpus_per_node ? spec.ep % o->gpus_per_node : o->gpus_per_node % spec.ep) != 0)
      throw UsageError(fmt::format("--ep: EP {} does not fit nodes of --gpus-per-node {} GPUs (one must divide the other)",
                                   spec.ep, o->gpus_per_node));
    const HardwareConfig hw = [&] {
      try {
        return load_hardware(o->hardware);
      } catch (const ConfigError& e) {
        throw UsageError(fmt::format("--hardware {}: {}", o->hardware, e.message()));
      }
    }();
    if (o->spec.comm_sms >= hw.sms) throw UsageError(fmt::format("--comm-sms: {} leaves no SM of {}", o->spec.comm_sms, hw.sms));
    network::TopologySpec ts;
    ts.gpus = static_cast<int>(gpus);
    ts.gpus_per_node = o->gpus_per_node;
    ts.nics_per_gpu = static_cast<int>(hw.nics_per_gpu);
    ts.nvlink_bidir = hw.nvlink.value;
    ts.nic = hw.nic.value;
    ts.net.fabric = network::parse_fabric(o->fabric);
    if (ts.gpus % ts.gpus_per_node != 0 || ts.gpus % spec.ep != 0)
      throw UsageError(fmt::format("--gpus {} must be a multiple of --ep {} and of --gpus-per-node {}", ts.gpus, spec.ep,
                                   ts.gpus_per_node));
    const network::Topology topo(ts);
    const network::AllToAllResult r = network::simulate_alltoall(topo, spec);
    const char* counting = r.internode ? "RDMA" : "NVL";
    if (o->json) {
      nlohmann::json j;
      j["hardware"] = hw.name;
      j["ep"] = spec.ep;
      j["gpus"] = topo.gpus();
      j["tokens"] = spec.tokens;
      j["hidden"] = spec.hidden;
      j["topk"] = spec.topk;
      j["max_nodes"] = spec.max_nodes;
      j["routing"] = spec.balanced ? "balanced" : "sampled";
      j["skew"] = spec.skew;
      j["path"] = spec.two_hop ? "two-hop" : spec.expert_rows ? "direct, expert rows" : "direct";
      j["dispatch_dtype"] = spec.fp8_dispatch ? "fp8" : "bf16";
      j["mode"] = spec.full_rank ? "full-rank" : "symmetric";
      j["dispatch_us"] = r.dispatch.seconds * 1e6;
      j["combine_us"] = r.combine.seconds * 1e6;
      j["dispatch_gbps"] = r.dispatch.gbps;
      j["combine_gbps"] = r.combine.gbps;
      j["counting"] = counting;
      j["bottleneck"] = r.bottleneck_kind;
      j["slowest_rank"] = r.dispatch.slowest_rank;
      j["nodes_per_token"] = r.rdma_pairs_per_token;
      j["remote_nodes_per_token"] = r.ib_pairs_per_token;
      j["gpus_per_token"] = r.gpus_per_token;
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("{}\n", topo.describe());
    fmt::print("EP {} x {} tokens, hidden {}, top-{} on <= {} nodes, {} routing{}, {} path, {}\n", spec.ep, spec.tokens,
               spec.hidden, spec.topk, spec.max_nodes, spec.balanced ? "balanced" : "sampled",
               spec.skew > 0 ? fmt::format(" (Zipf {})", spec.skew) : std::string(),
               spec.two_hop ? "two-hop" : spec.expert_rows ? "direct (expert rows)" : "direct",
               spec.full_rank ? "full-rank" : "symmetric");
    fmt::print("per token: {:.3f} nodes ({:.3f} remote), {:.3f} {}\n\n", r.rdma_pairs_per_token,
               r.ib_pairs_per_token, r.gpus_per_token, spec.expert_rows ? "rows" : "GPUs");
    TextTable t({"phase", "time (us)", fmt::format("bandwidth (GB/s, {})", counting)}, {false, true, true});
    t.add_row({spec.fp8_dispatch ? "dispatch (FP8)" : "dispatch (BF16)", fmt::format("{:.1f}", r.dispatch.seconds * 1e6), fmt::format("{:.1f}", r.dispatch.gbps)});
    t.add_row({"combine (BF16)", fmt::format("{:.1f}", r.combine.seconds * 1e6), fmt::format("{:.1f}", r.combine.gbps)});
    fmt::print("{}", t.str());
    fmt::print("\nbottleneck: {} ({}), slowest rank {}\n", r.bottleneck_kind, topo.link_name(r.dispatch.bottleneck_link),
               r.dispatch.slowest_rank);
  });
}

}  // namespace trainsim::cli
