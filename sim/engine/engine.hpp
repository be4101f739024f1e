#pragma once
// The discrete-event engine: one owning event queue and a clock. It knows nothing about GPUs,
// networks or schedules; models plug in by scheduling events with a handler.
//
// Order: events run in increasing (time, sequence) order, where the sequence number is the
// order in which they were scheduled. Two events at the same instant therefore run in the
// order they were scheduled (FIFO), which makes every run reproducible to the byte.
//
// No globals: a Simulation is a plain value-owning object; tests build many side by side.
// Handlers are a function pointer plus an opaque context and a 64-bit argument, so that
// scheduling an event never allocates (the benchmark in bench/bench_engine.cpp relies on it).
//
// Complexity: schedule_at and each step are O(log n) in the number of pending events
// (4-ary heap held by value in one std::vector); an event scheduled at now() (zero delay) is O(1):
// it goes to a FIFO of the current instant instead, since every event already pending has a
// smaller sequence number, and step() takes whichever of the two fronts is earlier in
// (time, sequence): the order is exactly the one heap's.

#include <cstdint>
#include <vector>

#include "core/time.hpp"

namespace trainsim::engine {

class Simulation;

// Called when an event fires. `ctx` and `arg` are what was passed to schedule_at.
using Handler = void (*)(Simulation& sim, void* ctx, std::uint64_t arg);

struct Event {
  Time time;
  std::uint64_t seq = 0;
  Handler fn = nullptr;
  void* ctx = nullptr;
  std::uint64_t arg = 0;
};

// A 4-ary min-heap of events keyed by (time, seq). Holds events by value.
class EventQueue {
 public:
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  void reserve(std::size_t n) { heap_.reserve(n); }
  void push(const Event& e);
  const Event& top() const { return heap_.front(); }
  Event pop();  // precondition: !empty()
  void clear() { heap_.clear(); }

  static bool before(const Event& a, const Event& b) {
    return a.time < b.time || (a.time == b.time && a.seq < b.seq);
  }

 private:
  static constexpr std::size_t kArity = 4;
  std::vector<Event> heap_;
};

class Simulation {
 public:
  Time now() const { return now_; }

  // Schedules fn(ctx, arg) at absolute time t. t must not be in the past (TS_ASSERT).
  void schedule_at(Time t, Handler fn, void* ctx = nullptr, std::uint64_t arg = 0);
  // Schedules at now() + dt; dt >= 0.
  void schedule_in(Time dt, Handler fn, void* ctx = nullptr, std::uint64_t arg = 0) {
    schedule_at(now_ + dt, fn, ctx, arg);
  }

  // Runs the next event; false when none is left.
  bool step();
  // Runs until no event is left. Returns the number of events run by this call.
  std::uint64_t run();
  // Runs every event with time <= limit; the clock stops at the last event run.
  std::uint64_t run_until(Time limit);

  std::uint64_t events_run() const { return events_run_; }
  std::size_t pending() const { return queue_.size() + (now_fifo_.size() - now_head_); }
  void reserve(std::size_t n) { queue_.reserve(n); }

 private:
  bool next_from_fifo() const;  // the next event is the FIFO's front
  EventQueue queue_;
  std::vector<Event> now_fifo_;  // events at the current instant, in sequence order, from now_head_
  std::size_t now_head_ = 0;
  Time now_ = Time::zero();
  std::uint64_t next_seq_ = 0;
  std::uint64_t events_run_ = 0;
};

}  // namespace trainsim::engine
