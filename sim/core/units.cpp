#include "core/units.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace trainsim {
namespace {

struct Unit {
  const char* name;
  double factor;  // value in base units of 1 <unit>
};

const std::vector<Unit>& units_of(Dim d) {
  static const std::vector<Unit> bytes = {
      {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
      {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  static const std::vector<Unit> bandwidth = {
      {"B/s", 1},       {"KB/s", 1e3},      {"MB/s", 1e6},      {"GB/s", 1e9},   {"TB/s", 1e12},
      {"KiB/s", 1024.0}, {"MiB/s", 1048576.0}, {"GiB/s", 1073741824.0},
      {"b/s", 0.125},   {"Kb/s", 125.0},    {"Mb/s", 1.25e5},   {"Gb/s", 1.25e8}, {"Tb/s", 1.25e11}};
  static const std::vector<Unit> duration = {
      {"ps", 1e-12}, {"ns", 1e-9}, {"us", 1e-6}, {"\xC2\xB5s", 1e-6}, {"ms", 1e-3},
      {"s", 1},      {"min", 60},  {"h", 3600},  {"d", 86400}};
  static const std::vector<Unit> floprate = {
      {"FLOPS", 1}, {"KFLOPS", 1e3}, {"MFLOPS", 1e6}, {"GFLOPS", 1e9}, {"TFLOPS", 1e12}, {"PFLOPS", 1e15},
      {"FLOP/s", 1}, {"GFLOP/s", 1e9}, {"TFLOP/s", 1e12}, {"PFLOP/s", 1e15}};
  static const std::vector<Unit> flops = {
      {"FLOP", 1}, {"KFLOP", 1e3}, {"MFLOP", 1e6}, {"GFLOP", 1e9}, {"TFLOP", 1e12}, {"PFLOP", 1e15}, {"EFLOP", 1e18}};
  static const std::vector<Unit> power = {{"W", 1}, {"kW", 1e3}, {"MW", 1e6}};
  static const std::vector<Unit> price = {{"USD/h", 1}};
  static const std::vector<Unit> freq = {{"Hz", 1}, {"kHz", 1e3}, {"MHz", 1e6}, {"GHz", 1e9}};
  switch (d) {
    case Dim::Bytes: return bytes;
    case Dim::Bandwidth: return bandwidth;
    case Dim::Duration: return duration;
    case Dim::FlopRate: return floprate;
    case Dim::Flops: return flops;
    case Dim::Power: return power;
    case Dim::PricePerHour: return price;
    case Dim::Frequency: return freq;
  }
  return bytes;  // unreachable
}

}  // namespace

const char* dim_name(Dim d) {
  switch (d) {
    case Dim::Bytes: return "a size";
    case Dim::Bandwidth: return "a bandwidth";
    case Dim::Duration: return "a duration";
    case Dim::FlopRate: return "a FLOP rate";
    case Dim::Flops: return "a FLOP count";
    case Dim::Power: return "a power";
    case Dim::PricePerHour: return "a price per hour";
    case Dim::Frequency: return "a frequency";
  }
  return "a quantity";
}

std::string dim_units(Dim d) {
  std::string s;
  for (const auto& u : units_of(d)) {
    if (!s.empty()) s += ", ";
    s += u.name;
  }
  return s;
}

double parse_quantity(std::string_view text, Dim d) {
  const char* b = text.data();
  const char* e = b + text.size();
  while (b < e && *b == ' ') ++b;
  double v = 0;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p == b)
    throw QuantityError(fmt::format("'{}' is not a number followed by a unit; expected {} such as \"{}{}\"",
                                    text, dim_name(d), "10", units_of(d)[std::min<size_t>(3, units_of(d).size() - 1)].name));
  if (!std::isfinite(v)) throw QuantityError(fmt::format("'{}' is not a finite number", text));
  while (p < e && *p == ' ') ++p;
  std::string_view unit(p, static_cast<size_t>(e - p));
  while (!unit.empty() && unit.back() == ' ') unit.remove_suffix(1);
  if (unit.empty())
    throw QuantityError(fmt::format("'{}' has no unit; {} needs one of: {}", text, dim_name(d), dim_units(d)));
  for (const auto& u : units_of(d))
    if (unit == u.name) return v * u.factor;
  throw QuantityError(fmt::format("unknown unit '{}' in '{}'; {} takes one of: {}", unit, text, dim_name(d), dim_units(d)));
}

std::string format_quantity(double value, Dim d) {
  struct P { double f; const char* u; };
  std::vector<P> ps;
  switch (d) {
    case Dim::Bytes: ps = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}, {1, "B"}}; break;
    case Dim::Bandwidth: ps = {{1e12, "TB/s"}, {1e9, "GB/s"}, {1e6, "MB/s"}, {1e3, "KB/s"}, {1, "B/s"}}; break;
    case Dim::Duration: ps = {{86400, "d"}, {3600, "h"}, {1, "s"}, {1e-3, "ms"}, {1e-6, "us"}, {1e-9, "ns"}}; break;
    case Dim::FlopRate: ps = {{1e15, "PFLOPS"}, {1e12, "TFLOPS"}, {1e9, "GFLOPS"}, {1, "FLOPS"}}; break;
    case Dim::Flops: ps = {{1e18, "EFLOP"}, {1e15, "PFLOP"}, {1e12, "TFLOP"}, {1e9, "GFLOP"}, {1e6, "MFLOP"}, {1, "FLOP"}}; break;
    case Dim::Power: ps = {{1e6, "MW"}, {1e3, "kW"}, {1, "W"}}; break;
    case Dim::PricePerHour: ps = {{1, "USD/h"}}; break;
    case Dim::Frequency: ps = {{1e9, "GHz"}, {1e6, "MHz"}, {1, "Hz"}}; break;
  }
  for (const auto& p : ps)
    if (std::fabs(value) >= p.f) return fmt::format("{:.4g} {}", value / p.f, p.u);
  return fmt::format("{:.4g} {}", value / ps.back().f, ps.back().u);
}

}  // namespace trainsim
