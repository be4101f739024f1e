#include "engine/engine.hpp"

#include <utility>

#include "core/error.hpp"

namespace trainsim::engine {

// A 4-ary heap: half the depth of a binary heap, and the four children of a node share one or
// two cache lines, which matters once the queue outgrows L1.
void EventQueue::push(const Event& e) {
  heap_.push_back(e);
  std::size_t i = heap_.size() - 1;
  // Sift up: move the hole towards the root while the parent is later.
  while (i > 0) {
    const std::size_t parent = (i - 1) / kArity;
    if (!before(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

Event EventQueue::pop() {
  Event out = heap_.front();
  const Event last = heap_.back();
  heap_.pop_back();
  const std::size_t n = heap_.size();
  if (n == 0) return out;
  // Sift the former last element down from the root.
  std::size_t i = 0;
  for (;;) {
    const std::size_t first = kArity * i + 1;
    if (first >= n) break;
    const std::size_t end = first + kArity < n ? first + kArity : n;
    std::size_t best = first;
    for (std::size_t c = first + 1; c < end; ++c)
      if (before(heap_[c], heap_[best])) best = c;
    if (!before(heap_[best], last)) break;
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = last;
  return out;
}

void Simulation::schedule_at(Time t, Handler fn, void* ctx, std::uint64_t arg) {
  TS_ASSERT(t >= now_, "event scheduled in the past");
  TS_ASSERT(fn != nullptr, "event without handler");
  const Event e{t, next_seq_++, fn, ctx, arg};
  // Every pending event has a smaller sequence number, so an event at the current instant runs
  // after all those at this instant: the back of the FIFO, which holds only this instant's.
  if (t == now_) now_fifo_.push_back(e);
  else queue_.push(e);
}

bool Simulation::next_from_fifo() const {
  if (now_head_ == now_fifo_.size()) return false;
  return queue_.empty() || EventQueue::before(now_fifo_[now_head_], queue_.top());
}

bool Simulation::step() {
  Event e;
  if (next_from_fifo()) {
    e = now_fifo_[now_head_++];
    if (now_head_ == now_fifo_.size()) {
      now_fifo_.clear();
      now_head_ = 0;
    }
  } else {
    if (queue_.empty()) return false;
    e = queue_.pop();
    // The clock moves on: the FIFO (events of the former instant) is empty, since its events
    // come before any later one.
  }
  now_ = e.time;
  ++events_run_;
  e.fn(*this, e.ctx, e.arg);
  return true;
}

std::uint64_t Simulation::run() {
  const std::uint64_t before_run = events_run_;
  while (step()) {
  }
  return events_run_ - before_run;
}

std::uint64_t Simulation::run_until(Time limit) {
  const std::uint64_t before_run = events_run_;
  for (;;) {
    const bool fifo = next_from_fifo();
    if (!fifo && (queue_.empty() || queue_.top().time > limit)) break;
    if (fifo && now_fifo_[now_head_].time > limit) break;
    step();
  }
  return events_run_ - before_run;
}

}  // namespace trainsim::engine
