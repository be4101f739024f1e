#pragma once
// Fluid flows sharing links under max-min fairness (SimGrid's LMM model, Casanova et al.,
// "Versatile, scalable, and accurate simulation of distributed applications and platforms",
// JPDC 2014; the max-min allocation is Bertsekas & Gallager, "Data Networks", §6.5.2).
//
// A flow is a byte count crossing a fixed list of links, optionally capped at its own rate (a
// sender that cannot go faster, e.g. a kernel limited by its SMs). At every instant each flow
// has the max-min fair rate: no flow's rate can grow without shrinking that of a flow with an
// equal or smaller rate. Rates are re-solved only when a flow starts or ends (style.md rule 5);
// between those events every rate is constant, so completion times are exact up to the one
// rate->Time rounding (Time::from_seconds).
//
// max_min_rates: progressive filling by bottleneck links, O(B * (L + P)) for B distinct
// bottleneck levels, L links and P total path length.

#include <cstdint>
#include <vector>

#include "core/time.hpp"
#include "engine/engine.hpp"
#include "engine/resource.hpp"

namespace trainsim::network {

class Topology;

struct FlowDemand {
  const std::vector<int>* links = nullptr;  // indexes into the capacity vector
  double cap = 0;                           // bytes/s upper bound of this flow; 0 = none
};

// Max-min fair rates (bytes/s) of `flows` over links with `capacity` (bytes/s). A flow with no
// links and no cap gets +infinity.
std::vector<double> max_min_rates(const std::vector<double>& capacity, const std::vector<FlowDemand>& flows);

// Engine-driven fluid flows. Each flow delivers at (last byte sent) + (path latency); the
// callback runs as an engine event at that instant.
class FlowNetwork {
 public:
  using Done = void (*)(engine::Simulation& sim, void* ctx, std::uint64_t arg);

  FlowNetwork(engine::Simulation& sim, std::vector<double> capacity);

  // Starts a flow at sim.now(). Returns its id.
  int start(std::vector<int> links, double bytes, double latency_s, double rate_cap = 0, Done done = nullptr,
            void* ctx = nullptr, std::uint64_t arg = 0);

  engine::Simulation& sim() { return sim_; }
  std::size_t active() const { return active_.size(); }
  double rate(int flow) const { return flows_[static_cast<std::size_t>(flow)].rate; }
  Time finished_at(int flow) const { return flows_[static_cast<std::size_t>(flow)].end; }
  Time delivered_at(int flow) const { return flows_[static_cast<std::size_t>(flow)].delivered; }
  // Bytes carried by a link so far, and its mean utilisation over [0, now] (0..1).
  double link_bytes(int link) const { return link_bytes_[static_cast<std::size_t>(link)]; }
  double link_utilisation(int link) const;
  std::uint64_t resolves() const { return resolves_; }

 private:
  struct Flow {
    std::vector<int> links;
    double remaining = 0;
    double rate = 0;
    double cap = 0;
    double latency = 0;
    Time end = Time::max(), delivered = Time::max();
    Done done = nullptr;
    void* ctx = nullptr;
    std::uint64_t arg = 0;
  };
  void advance();  // moves every active flow to now()
  void resolve();  // new rates, next completion event
  static void on_completion(engine::Simulation& sim, void* self, std::uint64_t version);
  static void on_delivery(engine::Simulation& sim, void* self, std::uint64_t flow);

  engine::Simulation& sim_;
  std::vector<double> capacity_;
  std::vector<double> link_bytes_;
  std::vector<Flow> flows_;
  std::vector<int> active_;
  Time last_ = Time::zero();
  std::uint64_t version_ = 0;
  std::uint64_t resolves_ = 0;
};

// The engine's TransferModel hook on a topology: each message is a flow from src to dst GPU.
// Messages in flight at the same time share links max-min fairly; arrival() runs the flow
// network until the message is delivered, so calls must come in non-decreasing `send` order.
class FlowTransfer final : public engine::TransferModel {
 public:
  explicit FlowTransfer(const Topology& topo);
  Time arrival(Time send, int src, int dst, std::uint64_t bytes) override;
  std::string describe() const override;

 private:
  const Topology& topo_;
  engine::Simulation sim_;
  FlowNetwork net_;
  std::uint64_t next_ = 0;
};

}  // namespace trainsim::network
