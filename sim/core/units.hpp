#pragma once
// Quantities with units, parsed in one place.
//
// Every physical value in a TOML file is a string "<number><unit>" (a space between is allowed):
// "50GB/s", "400Gb/s", "3.7us", "80GiB", "989TFLOPS", "700W", "2.0USD/h". The number is parsed
// with std::from_chars (locale-independent); the unit must be one of the dimension's units,
// spelled exactly (case matters: "Gb/s" is bits, "GB/s" bytes). Decimal prefixes are powers of
// 1000, binary prefixes (KiB, MiB, GiB, TiB) powers of 1024. The result is in SI base units:
// bytes, bytes/s, seconds, FLOP/s, FLOP, watts, USD per hour, hertz.

#include <string>
#include <string_view>

namespace trainsim {

enum class Dim { Bytes, Bandwidth, Duration, FlopRate, Flops, Power, PricePerHour, Frequency };

const char* dim_name(Dim d);        // "a size in bytes", ...
std::string dim_units(Dim d);       // "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"

// Parses text as a quantity of dimension d. Throws QuantityError (a plain message without
// position; callers add file/line/key) on a missing number, missing unit or unknown unit.
double parse_quantity(std::string_view text, Dim d);

class QuantityError {
 public:
  explicit QuantityError(std::string m) : msg(std::move(m)) {}
  std::string msg;
};

// Formats a value in base units with a sensible prefix: 5e10 B/s -> "50 GB/s".
std::string format_quantity(double value, Dim d);

}  // namespace trainsim
