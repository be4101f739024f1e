#pragma once
// Simulated time: an integer count of picoseconds in a strong type.
//
// Why integers: event order must be exact and reproducible; doubles with epsilons are a known
// source of ordering bugs in simulators (SimGrid). Why picoseconds: an int64 holds ±106 days at
// 1 ps resolution, far beyond one training step, while a 1 B transfer at 900 GB/s (1.1 ps) still
// rounds to a non-zero duration. Whole training runs (weeks) are computed from step times in
// double seconds by the cost model, never as Time.
//
// Rates stay double; the one conversion from "amount at a rate" to a duration is
// Time::from_seconds (round to nearest picosecond).

#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <string>

#include <fmt/format.h>

namespace trainsim {

class Time {
 public:
  using rep = std::int64_t;

  constexpr Time() = default;
  static constexpr Time ps(rep v) { return Time{v}; }
  static constexpr Time ns(rep v) { return Time{v * 1'000}; }
  static constexpr Time us(rep v) { return Time{v * 1'000'000}; }
  static constexpr Time ms(rep v) { return Time{v * 1'000'000'000}; }
  static constexpr Time zero() { return Time{0}; }
  static constexpr Time max() { return Time{std::numeric_limits<rep>::max()}; }
  // The single double -> Time conversion. Rounds to the nearest picosecond.
  static Time from_seconds(double s) { return Time{static_cast<rep>(std::llround(s * 1e12))}; }
  static Time from_us(double us) { return from_seconds(us * 1e-6); }

  constexpr rep count_ps() const { return ps_; }
  constexpr double seconds() const { return static_cast<double>(ps_) * 1e-12; }
  constexpr double micros() const { return static_cast<double>(ps_) * 1e-6; }
  constexpr double millis() const { return static_cast<double>(ps_) * 1e-9; }

  constexpr auto operator<=>(const Time&) const = default;
  constexpr Time operator+(Time o) const { return Time{ps_ + o.ps_}; }
  constexpr Time operator-(Time o) const { return Time{ps_ - o.ps_}; }
  constexpr Time& operator+=(Time o) { ps_ += o.ps_; return *this; }
  constexpr Time& operator-=(Time o) { ps_ -= o.ps_; return *this; }
  constexpr Time operator*(rep k) const { return Time{ps_ * k}; }
  constexpr Time operator/(rep k) const { return Time{ps_ / k}; }

 private:
  constexpr explicit Time(rep v) : ps_(v) {}
  rep ps_ = 0;
};

constexpr Time operator*(Time::rep k, Time t) { return t * k; }

// Human-readable: picks ns/us/ms/s so that the mantissa is in [1, 1000).
std::string to_string(Time t);

}  // namespace trainsim

template <>
struct fmt::formatter<trainsim::Time> : fmt::formatter<std::string> {
  template <typename Ctx>
  auto format(trainsim::Time t, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(trainsim::to_string(t), ctx);
  }
};
