#include "engine/resource.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace trainsim::engine {

GpuCompute::GpuCompute(int sms, int comm_sms) : sms_(sms), comm_sms_(comm_sms) {
  if (sms < 1) throw InputError(fmt::format("a GPU needs at least 1 SM, got {}", sms));
  if (comm_sms < 0 || comm_sms >= sms)
    throw InputError(fmt::format(
        "communication SMs must be in [0, {}) so that compute keeps at least one SM, got {}", sms,
        comm_sms));
}

Time GpuCompute::shared(Time full) const {
  // full * N / (N-K), rounded to nearest, split as q*(N-K) + r so that it cannot overflow.
  const Time::rep n = sms_;
  const Time::rep d = sms_ - comm_sms_;
  const Time::rep q = full.count_ps() / d;
  const Time::rep r = full.count_ps() % d;
  return Time::ps(q * n + (r * n + d / 2) / d);
}

Time ConstantDelay::arrival(Time send, int /*src*/, int /*dst*/, std::uint64_t bytes) {
  Time t = send + latency_;
  if (bandwidth_ > 0.0) t += Time::from_seconds(static_cast<double>(bytes) / bandwidth_);
  return t;
}

std::string ConstantDelay::describe() const {
  if (bandwidth_ > 0.0) return fmt::format("constant delay {} + bytes / {} B/s", latency_, bandwidth_);
  return fmt::format("constant delay {}", latency_);
}

}  // namespace trainsim::engine
