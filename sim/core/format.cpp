#include "core/format.hpp"

#include <cmath>

#include <fmt/format.h>

namespace trainsim {

namespace {

// |v| with the K/M/B suffix rules shared by money and counts.
std::string magnitude(double a) {
  if (a >= 1e9) return fmt::format("{:.3f}B", a / 1e9);
  if (a >= 1e6) return fmt::format("{:.3f}M", a / 1e6);
  if (a >= 1e3) return fmt::format("{:.1f}K", a / 1e3);
  return fmt::format("{:.0f}", a);
}

// "-0" and friends: a value that rounds to zero prints without a sign.
bool rounds_to_zero(const std::string& digits) { return digits.find_first_not_of("0.KMB") == std::string::npos; }

std::string signed_text(double v, const std::string& prefix, bool always_sign) {
  if (!std::isfinite(v)) return "n/a";
  const std::string m = magnitude(std::fabs(v));
  if (rounds_to_zero(m)) return (always_sign ? "±" : "") + prefix + m;
  const char* sign = v < 0 ? "-" : always_sign ? "+" : "";
  return sign + prefix + m;
}

}  // namespace

std::string format_usd(double usd) { return signed_text(usd, "$", false); }
std::string format_count(double v) { return signed_text(v, "", false); }
std::string format_usd_delta(double usd) { return signed_text(usd, "$", true); }
std::string format_count_delta(double v) { return signed_text(v, "", true); }

std::string format_tokens(double t) {
  if (!std::isfinite(t)) return "n/a";
  const double a = std::fabs(t);
  if (a >= 1e12) return fmt::format("{:.2f}T", t / 1e12);
  if (a >= 1e9) return fmt::format("{:.1f}B", t / 1e9);
  if (a >= 1e6) return fmt::format("{:.1f}M", t / 1e6);
  return fmt::format("{:.3g}", t);
}

std::string format_seconds(double s) {
  if (!std::isfinite(s)) return "n/a";
  const double a = std::fabs(s);
  if (a == 0) return "0 s";
  auto sig3 = [](double v, const char* unit) {
    const double b = std::fabs(v);
    return fmt::format("{:.{}f} {}", v, b >= 100 ? 0 : b >= 10 ? 1 : 2, unit);
  };
  if (a >= 1) return fmt::format("{:.2f} s", s);
  if (a >= 1e-3) return sig3(s * 1e3, "ms");
  if (a >= 1e-6) return sig3(s * 1e6, "µs");
  return sig3(s * 1e9, "ns");
}

std::string format_pct_change(double from, double to) {
  if (!std::isfinite(from) || !std::isfinite(to) || from == 0) return "n/a";
  const double p = (to - from) / std::fabs(from) * 100.0;
  const std::string t = fmt::format("{:+.1f}%", p);
  return t == "-0.0%" || t == "+0.0%" ? "0.0%" : t;
}

}  // namespace trainsim
