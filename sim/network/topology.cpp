#include "network/topology.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/units.hpp"

namespace trainsim::network {

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

namespace {
int ceil_div(int a, int b) { return (a + b - 1) / b; }
std::uint64_t key(int u, int v) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(u)) << 32) | static_cast<std::uint32_t>(v);
}
}  // namespace

int Topology::add_vertex(VertexKind k, int index) {
  return static_cast<int>(boost::add_vertex(VertexProps{k, index}, g_));
}

int Topology::add_link(int u, int v, LinkKind k, double cap, double lat) {
  const int id = static_cast<int>(cap_.size());
  for (int dir = 0; dir < 2; ++dir) {
    const int a = dir == 0 ? u : v, b = dir == 0 ? v : u;
    const int e = static_cast<int>(cap_.size());
    boost::add_edge(static_cast<std::size_t>(a), static_cast<std::size_t>(b), EdgeProps{e, k, cap, lat}, g_);
    cap_.push_back(cap);
    lat_.push_back(lat);
    kind_.push_back(k);
    ends_.emplace_back(a, b);
    edge_of_.emplace(key(a, b), e);  // keeps the first of parallel edges
  }
  return id;
}

int Topology::link(int u, int v) const {
  auto it = edge_of_.find(key(u, v));
  TS_ASSERT(it != edge_of_.end(), fmt::format("no link {} -> {}", u, v));
  return it->second;
}

double Topology::nvlink_bw() const { return spec_.nvlink_bidir / 2 * spec_.net.nvlink_efficiency; }
double Topology::nic_bw() const { return spec_.nic * spec_.nics_per_gpu * spec_.net.ib_efficiency; }

Topology::Topology(const TopologySpec& spec) : spec_(spec) {
  const int N = spec.gpus, G = spec.gpus_per_node, K = spec.nics_per_gpu;
  if (N < 1 || G < 1 || N % G != 0) throw UsageError(fmt::format("{} GPUs do not fill nodes of {}", N, G));
  if (K < 1) throw UsageError("nics_per_gpu must be at least 1");
  if (spec.nvlink_domain < 0 || spec.nvlink_domain % G != 0)
    throw UsageError(fmt::format("an NVLink domain of {} GPUs does not join whole nodes of {}", spec.nvlink_domain, G));
  const NetworkConfig& net = spec.net;
  const int nodes_ = N / G;
  for (int g = 0; g < N; ++g) add_vertex(VertexKind::Gpu, g);
  first_nvswitch_ = N;
  const int D = domain_size();
  for (int n = 0; n < domains(); ++n) add_vertex(VertexKind::NvSwitch, n);
  const double nvl = nvlink_bw();
  nvl_up_.resize(static_cast<std::size_t>(N));
  nvl_down_.resize(static_cast<std::size_t>(N));
  for (int g = 0; g < N; ++g) {
    const int up = add_link(g, first_nvswitch_ + g / D, LinkKind::NvLink, nvl, net.nvlink_latency / 2);
    nvl_up_[static_cast<std::size_t>(g)] = up;
    nvl_down_[static_cast<std::size_t>(g)] = up + 1;
  }
  if (domains() == 1 && net.fabric != Fabric::SingleSwitch) return;  // no fabric needed

  const double ib = spec.nic * net.ib_efficiency;
  const int down = std::max(1, net.switch_ports / 2);
  int next_switch = 0;
  auto new_switch = [&] { return add_vertex(VertexKind::Switch, next_switch++); };
  leaf_of_nic_.assign(static_cast<std::size_t>(N * K), -1);
  const int rails = G * K;

  switch (net.fabric) {
    case Fabric::SingleSwitch: {
      leaves_.push_back(new_switch());
      std::fill(leaf_of_nic_.begin(), leaf_of_nic_.end(), leaves_[0]);
      break;
    }
    case Fabric::Rail:
    case Fabric::MultiPlaneFatTree: {
      leaves_per_group_ = ceil_div(nodes_, down);
      for (int r = 0; r < rails; ++r)
        for (int l = 0; l < leaves_per_group_; ++l) leaves_.push_back(new_switch());
      for (int g = 0; g < N; ++g)
        for (int k = 0; k < K; ++k) {
          const int r = (g % G) * K + k;
          leaf_of_nic_[static_cast<std::size_t>(g * K + k)] =
              leaves_[static_cast<std::size_t>(r * leaves_per_group_ + (g / G) / down)];
        }
      if (net.fabric == Fabric::MultiPlaneFatTree) {
        // One fat-tree per plane: each leaf has one uplink to each of the plane's spines.
        spines_per_group_ = leaves_per_group_ > 1 ? down : 0;
        for (int r = 0; r < rails; ++r)
          for (int s = 0; s < spines_per_group_; ++s) {
            const int sp = new_switch();
            spines_.push_back(sp);
            for (int l = 0; l < leaves_per_group_; ++l)
              add_link(leaves_[static_cast<std::size_t>(r * leaves_per_group_ + l)], sp, LinkKind::Fabric,
                       ib / net.oversubscription, net.switch_latency);
          }
      } else {
        // Rails joined by shared spines: every leaf has one uplink to each spine.
        spines_per_group_ = down;
        for (int s = 0; s < spines_per_group_; ++s) {
          const int sp = new_switch();
          spines_.push_back(sp);
          for (int leaf : leaves_)
            add_link(leaf, sp, LinkKind::Fabric, ib * down / spines_per_group_ / net.oversubscription,
                     net.switch_latency);
        }
      }
      break;
    }
    case Fabric::Clos3: {
      const int nleaves = ceil_div(N * K, down);
      leaves_per_group_ = std::min(net.pod_leaves, nleaves);
      const int pods = ceil_div(nleaves, leaves_per_group_);
      for (int l = 0; l < nleaves; ++l) leaves_.push_back(new_switch());
      for (int i = 0; i < N * K; ++i) leaf_of_nic_[static_cast<std::size_t>(i)] = leaves_[static_cast<std::size_t>(i / down)];
      spines_per_group_ = nleaves > 1 ? down : 0;
      for (int p = 0; p < pods; ++p)
        for (int s = 0; s < spines_per_group_; ++s) {
          const int sp = new_switch();
          spines_.push_back(sp);
          for (int l = p * leaves_per_group_; l < std::min(nleaves, (p + 1) * leaves_per_group_); ++l)
            add_link(leaves_[static_cast<std::size_t>(l)], sp, LinkKind::Fabric, ib, net.switch_latency);
        }
      if (pods > 1) {
        // Each spine carries leaves_per_group_ * ib down; up it gets that / oversubscription,
        // spread over `down` cores.
        const int ncores = down;
        for (int c = 0; c < ncores; ++c) cores_.push_back(new_switch());
        const double up = ib * leaves_per_group_ / net.oversubscription / ncores;
        for (int sp : spines_)
          for (int c : cores_) add_link(sp, c, LinkKind::Fabric, up, net.switch_latency);
      }
      break;
    }
  }
  for (int g = 0; g < N; ++g)
    for (int k = 0; k < K; ++k)
      add_link(g, leaf_of_nic_[static_cast<std::size_t>(g * K + k)], LinkKind::Nic, ib, net.ib_latency / 2);
}

std::vector<int> Topology::path(int src, int dst, std::uint64_t flow) const {
  std::vector<int> out;
  append_path(src, dst, flow, out);
  return out;
}

void Topology::append_path(int src, int dst, std::uint64_t flow, std::vector<int>& out) const {
  TS_ASSERT(src >= 0 && src < gpus() && dst >= 0 && dst < gpus(), "GPU id out of range");
  if (src == dst) return;
  if (domain_of(src) == domain_of(dst)) {
    out.push_back(nvlink_up(src));
    out.push_back(nvlink_down(dst));
    return;
  }
  const std::uint64_t h = mix64(key(src, dst) ^ mix64(flow));
  int from = src;
  if (spec_.net.fabric == Fabric::MultiPlaneFatTree && local_of(src) != local_of(dst)) {
    // Planes are disjoint: forward over NVLink to the GPU of the target's plane (PXN).
    from = node_of(src) * gpus_per_node() + local_of(dst);
    out.push_back(nvlink_up(src));
    out.push_back(nvlink_down(from));
  }
  fabric_path(from, dst, h, out);
}

void Topology::fabric_path(int src, int dst, std::uint64_t h, std::vector<int>& out) const {
  const int K = spec_.nics_per_gpu;
  const int k = static_cast<int>(h % static_cast<std::uint64_t>(K));
  const int la = leaf_of_nic_[static_cast<std::size_t>(src * K + k)];
  const int lb = leaf_of_nic_[static_cast<std::size_t>(dst * K + k)];
  // NIC edges: the k-th parallel edge GPU -> leaf. Parallel edges were added in order, so the
  // k-th one of (g, leaf) is found by scanning out-edges; K is small.
  auto nic_edge = [&](int u, int v) {
    int seen = 0;
    for (auto [e, end] = boost::out_edges(static_cast<std::size_t>(u), g_); e != end; ++e)
      if (static_cast<int>(boost::target(*e, g_)) == v && seen++ == k) return g_[*e].id;
    return link(u, v);
  };
  out.push_back(K == 1 ? link(src, la) : nic_edge(src, la));
  if (la != lb) {
    const auto pick = [&](std::uint64_t salt, std::size_t n) { return static_cast<std::size_t>(mix64(h ^ salt) % n); };
    const auto leaf_no = [&](int v) {
      return static_cast<int>(std::find(leaves_.begin(), leaves_.end(), v) - leaves_.begin());
    };
    const auto spg = static_cast<std::size_t>(spines_per_group_);
    switch (spec_.net.fabric) {
      case Fabric::MultiPlaneFatTree: {
        const int plane = leaf_no(la) / leaves_per_group_;
        const int sp = spines_[static_cast<std::size_t>(plane) * spg + pick(1, spg)];
        out.push_back(link(la, sp));
        out.push_back(link(sp, lb));
        break;
      }
      case Fabric::Rail: {
        const int sp = spines_[pick(1, spg)];
        out.push_back(link(la, sp));
        out.push_back(link(sp, lb));
        break;
      }
      case Fabric::Clos3: {
        const int pa = leaf_no(la) / leaves_per_group_, pb = leaf_no(lb) / leaves_per_group_;
        const int sa = spines_[static_cast<std::size_t>(pa) * spg + pick(1, spg)];
        out.push_back(link(la, sa));
        if (pa == pb) {
          out.push_back(link(sa, lb));
        } else {
          const int c = cores_[pick(2, cores_.size())];
          const int sb = spines_[static_cast<std::size_t>(pb) * spg + pick(3, spg)];
          out.push_back(link(sa, c));
          out.push_back(link(c, sb));
          out.push_back(link(sb, lb));
        }
        break;
      }
      case Fabric::SingleSwitch:
        TS_ASSERT(false, "single switch has one leaf");
    }
  }
  out.push_back(K == 1 ? link(lb, dst) : nic_edge(lb, dst));
}

int Topology::attached_gpu(int l) const {
  const auto [a, b] = ends_[static_cast<std::size_t>(l)];
  if (a < gpus()) return a;
  if (b < gpus()) return b;
  return -1;
}

double Topology::path_latency(const std::vector<int>& links) const {
  double s = 0;
  for (int l : links) s += latency(l);
  return s;
}

std::string Topology::link_name(int l) const {
  const auto [a, b] = ends_[static_cast<std::size_t>(l)];
  auto name = [&](int v) {
    const VertexProps& p = g_[static_cast<std::size_t>(v)];
    switch (p.kind) {
      case VertexKind::Gpu: return fmt::format("gpu{}", p.index);
      case VertexKind::NvSwitch: return fmt::format("nvswitch{}", p.index);
      case VertexKind::Switch: return fmt::format("sw{}", p.index);
    }
    return std::string("?");
  };
  return name(a) + "->" + name(b);
}

std::string Topology::describe() const {
  const std::string domains_text =
      spec_.nvlink_domain > 0 ? fmt::format(" (NVLink domains of {})", spec_.nvlink_domain) : std::string();
  return fmt::format("{} GPUs in {} nodes of {}{}, {} fabric, {} switches, {} directed links; NVLink {} per GPU per "
                     "direction, NIC {} per GPU",
                     gpus(), nodes(), gpus_per_node(), domains_text, fabric_name(spec_.net.fabric),
                     boost::num_vertices(g_) - static_cast<std::size_t>(gpus() + domains()), link_count(),
                     format_quantity(nvlink_bw(), Dim::Bandwidth), format_quantity(nic_bw(), Dim::Bandwidth));
}

}  // namespace trainsim::network
