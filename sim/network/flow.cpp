#include "network/flow.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "core/error.hpp"
#include "network/topology.hpp"

namespace trainsim::network {

std::vector<double> max_min_rates(const std::vector<double>& capacity, const std::vector<FlowDemand>& flows) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const std::size_t n = flows.size();
  std::vector<double> rate(n, 0.0);
  std::vector<char> fixed(n, 0);
  // Only the links some flow uses take part; `left` is capacity not yet given to fixed flows.
  std::vector<int> used;
  std::vector<double> left(capacity.size(), 0.0);
  std::vector<int> count(capacity.size(), 0);
  for (const FlowDemand& f : flows)
    for (int l : *f.links) {
      const auto li = static_cast<std::size_t>(l);
      if (count[li]++ == 0) {
        used.push_back(l);
        left[li] = capacity[li];
      }
    }
  std::size_t unfixed = n;
  while (unfixed > 0) {
    // Progressive filling: every unfixed flow has the same rate; the next flows to freeze are
    // those crossing the link that saturates first, or those reaching their own cap first.
    double level = kInf;
    for (int l : used) {
      const auto li = static_cast<std::size_t>(l);
      if (count[li] > 0) level = std::min(level, std::max(0.0, left[li]) / count[li]);
    }
    for (std::size_t i = 0; i < n; ++i)
      if (!fixed[i] && flows[i].cap > 0) level = std::min(level, flows[i].cap);
    // Relative tolerance for "this link saturates at this level": several links usually do
    // so at once in symmetric patterns, and they must freeze together.
    const double tol = level * 1e-12;
    std::vector<char> tight(capacity.size(), 0);
    for (int l : used) {
      const auto li = static_cast<std::size_t>(l);
      if (count[li] > 0 && std::max(0.0, left[li]) / count[li] <= level + tol) tight[li] = 1;
    }
    std::size_t frozen = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (fixed[i]) continue;
      bool freeze = level == kInf || (flows[i].cap > 0 && flows[i].cap <= level + tol);
      for (int l : *flows[i].links) freeze = freeze || tight[static_cast<std::size_t>(l)];
      if (!freeze) continue;
      rate[i] = level;
      fixed[i] = 1;
      ++frozen;
      for (int l : *flows[i].links) {
        left[static_cast<std::size_t>(l)] -= level;
        --count[static_cast<std::size_t>(l)];
      }
    }
    TS_ASSERT(frozen > 0, "max-min filling made no progress");
    unfixed -= frozen;
  }
  return rate;
}

// ---------------------------------------------------------------------------------------------
FlowNetwork::FlowNetwork(engine::Simulation& sim, std::vector<double> capacity)
    : sim_(sim), capacity_(std::move(capacity)), link_bytes_(capacity_.size(), 0.0), last_(sim.now()) {}

int FlowNetwork::start(std::vector<int> links, double bytes, double latency_s, double rate_cap, Done done,
                       void* ctx, std::uint64_t arg) {
  TS_ASSERT(bytes >= 0 && latency_s >= 0, "flow with negative bytes or latency");
  for (int l : links) TS_ASSERT(l >= 0 && static_cast<std::size_t>(l) < capacity_.size(), "flow link out of range");
  advance();
  const int id = static_cast<int>(flows_.size());
  Flow f;
  f.links = std::move(links);
  f.remaining = bytes;
  f.cap = rate_cap;
  f.latency = latency_s;
  f.done = done;
  f.ctx = ctx;
  f.arg = arg;
  flows_.push_back(std::move(f));
  active_.push_back(id);
  // Flows started at the same instant are solved once: the re-solve runs as an event at now()
  // after every start already scheduled for this instant (engine order is FIFO).
  ++version_;
  sim_.schedule_at(sim_.now(), &FlowNetwork::on_completion, this, version_);
  return id;
}

void FlowNetwork::advance() {
  const Time now = sim_.now();
  if (now == last_) return;
  const double dt = (now - last_).seconds();
  for (int id : active_) {
    Flow& f = flows_[static_cast<std::size_t>(id)];
    const double moved = std::min(f.remaining, f.rate * dt);
    f.remaining -= moved;
    for (int l : f.links) link_bytes_[static_cast<std::size_t>(l)] += moved;
  }
  last_ = now;
}

void FlowNetwork::resolve() {
  ++resolves_;
  std::vector<FlowDemand> demand;
  demand.reserve(active_.size());
  for (int id : active_) {
    const Flow& f = flows_[static_cast<std::size_t>(id)];
    demand.push_back(FlowDemand{&f.links, f.cap});
  }
  const std::vector<double> rates = max_min_rates(capacity_, demand);
  Time next = Time::max();
  for (std::size_t i = 0; i < active_.size(); ++i) {
    Flow& f = flows_[static_cast<std::size_t>(active_[i])];
    f.rate = rates[i];
    const Time end = f.remaining <= 0 || f.rate == std::numeric_limits<double>::infinity()
                         ? sim_.now()
                         : sim_.now() + Time::from_seconds(f.remaining / f.rate);
    f.end = end;
    next = std::min(next, end);
  }
  ++version_;
  if (next != Time::max()) sim_.schedule_at(next, &FlowNetwork::on_completion, this, version_);
}

void FlowNetwork::on_completion(engine::Simulation& sim, void* self, std::uint64_t version) {
  auto& net = *static_cast<FlowNetwork*>(self);
  if (version != net.version_) return;  // superseded by a later start or re-solve
  net.advance();
  const Time now = sim.now();
  std::vector<int> still;
  still.reserve(net.active_.size());
  for (int id : net.active_) {
    Flow& f = net.flows_[static_cast<std::size_t>(id)];
    if (f.end <= now) {
      // Finished: whatever rounding left in `remaining` (< 1 ps of traffic) is accounted.
      for (int l : f.links) net.link_bytes_[static_cast<std::size_t>(l)] += f.remaining;
      f.remaining = 0;
      f.end = now;
      f.delivered = now + Time::from_seconds(f.latency);
      sim.schedule_at(f.delivered, &FlowNetwork::on_delivery, self, static_cast<std::uint64_t>(id));
    } else {
      still.push_back(id);
    }
  }
  net.active_.swap(still);
  net.resolve();
}

void FlowNetwork::on_delivery(engine::Simulation& sim, void* self, std::uint64_t flow) {
  auto& net = *static_cast<FlowNetwork*>(self);
  const Flow& f = net.flows_[static_cast<std::size_t>(flow)];
  if (f.done != nullptr) f.done(sim, f.ctx, f.arg);
}

double FlowNetwork::link_utilisation(int link) const {
  const double t = sim_.now().seconds();
  const double c = capacity_[static_cast<std::size_t>(link)];
  return t > 0 && c > 0 ? link_bytes_[static_cast<std::size_t>(link)] / (c * t) : 0.0;
}

// ---------------------------------------------------------------------------------------------
FlowTransfer::FlowTransfer(const Topology& topo) : topo_(topo), net_(sim_, topo.capacities()) {}

Time FlowTransfer::arrival(Time send, int src, int dst, std::uint64_t bytes) {
  TS_ASSERT(send >= sim_.now(), "FlowTransfer::arrival called out of send order");
  sim_.run_until(send);
  if (sim_.now() < send) sim_.schedule_at(send, [](engine::Simulation&, void*, std::uint64_t) {});
  sim_.run_until(send);
  std::vector<int> links = topo_.path(src, dst, next_++);
  const double lat = topo_.path_latency(links);
  const int id = net_.start(std::move(links), static_cast<double>(bytes), lat);
  while (net_.delivered_at(id) == Time::max() || sim_.now() < net_.delivered_at(id))
    if (!sim_.step()) break;
  return net_.delivered_at(id);
}

std::string FlowTransfer::describe() const {
  return "max-min fluid flows on " + topo_.describe();
}

}  // namespace trainsim::network
