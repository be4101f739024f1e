#pragma once
// Resources that models attach to the engine.
//
//  * GpuCompute: a GPU's streaming multiprocessors. Communication kernels (all-to-all
//    dispatch/combine, p2p) may hold K of the N SMs; compute running beside them gets N-K and
//    takes N/(N-K) times longer (DeepSeek-V3 §3.2.1: 20 of 132 SMs on H800 for communication).
//  * Stream: one in-order queue of work on one device (a CUDA stream): work starts when it is
//    ready and the stream is free.
//  * TransferModel: the hook for links and NICs. The network model (a later issue) implements
//    it with flows sharing link capacity; until then ConstantDelay gives a fixed latency plus a
//    bandwidth term.
//
// All times are trainsim::Time (integer picoseconds). Rates are double.

#include <cstdint>
#include <memory>
#include <string>

#include "core/time.hpp"

namespace trainsim::engine {

class GpuCompute {
 public:
  // sms: SMs on the GPU (N >= 1); comm_sms: SMs held by communication kernels (0 <= K < N).
  GpuCompute(int sms, int comm_sms);
  int sms() const { return sms_; }
  int comm_sms() const { return comm_sms_; }
  int compute_sms() const { return sms_ - comm_sms_; }
  // Time of compute that takes `full` on all N SMs, when it runs on the N-K left to it while
  // communication kernels are resident. Rounded to the nearest picosecond.
  Time shared(Time full) const;

 private:
  int sms_;
  int comm_sms_;
};

// An in-order stream: reserve() returns the start of work that is ready at `ready` and takes
// `duration`, and marks the stream busy until its end.
class Stream {
 public:
  Time reserve(Time ready, Time duration) {
    const Time start = ready > free_at_ ? ready : free_at_;
    free_at_ = start + duration;
    busy_ += duration;
    return start;
  }
  Time free_at() const { return free_at_; }
  Time busy() const { return busy_; }

 private:
  Time free_at_ = Time::zero();
  Time busy_ = Time::zero();
};

// Hook for links and NICs: when does a message of `bytes` sent at `send` from src to dst
// arrive? Implementations may keep state (queues, shared capacity).
class TransferModel {
 public:
  virtual ~TransferModel() = default;
  virtual Time arrival(Time send, int src, int dst, std::uint64_t bytes) = 0;
  virtual std::string describe() const = 0;
};

// latency + bytes / bandwidth, no contention. bandwidth in bytes/s; 0 means "latency only".
class ConstantDelay final : public TransferModel {
 public:
  explicit ConstantDelay(Time latency, double bytes_per_second = 0.0)
      : latency_(latency), bandwidth_(bytes_per_second) {}
  Time arrival(Time send, int src, int dst, std::uint64_t bytes) override;
  std::string describe() const override;

 private:
  Time latency_;
  double bandwidth_;
};

}  // namespace trainsim::engine
