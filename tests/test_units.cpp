// parse_quantity: one number, one unit, per dimension. Every expectation is written as the
// arithmetic that defines it (a decimal prefix is a power of 1000, a binary one a power of 1024,
// a bit is 1/8 byte), never as a value copied from the implementation.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "core/units.hpp"

using namespace trainsim;

namespace {
// The message of the QuantityError that parse_quantity throws, or "" if it did not throw.
std::string quantity_error(const std::string& text, Dim d) {
  try {
    (void)parse_quantity(text, d);
  } catch (const QuantityError& e) {
    return e.msg;
  }
  return {};
}
}  // namespace

TEST_CASE("Sizes: decimal prefixes are powers of 1000, binary prefixes powers of 1024", "[units]") {
  CHECK(parse_quantity("80GB", Dim::Bytes) == 80 * 1e9);
  CHECK(parse_quantity("80GiB", Dim::Bytes) == 80 * std::pow(2.0, 30));
  CHECK(parse_quantity("1KiB", Dim::Bytes) == 1024);
  CHECK(parse_quantity("1KB", Dim::Bytes) == 1000);
  CHECK(parse_quantity("3MiB", Dim::Bytes) == 3 * std::pow(2.0, 20));
  CHECK(parse_quantity("2TiB", Dim::Bytes) == 2 * std::pow(2.0, 40));
  CHECK(parse_quantity("2TB", Dim::Bytes) == 2 * 1e12);
  CHECK(parse_quantity("84943110144B", Dim::Bytes) == 84943110144.0);
  // The two differ by (1024/1000)^3 = 7.4 %: 80 GiB is 85.9 GB.
  CHECK(parse_quantity("80GiB", Dim::Bytes) / parse_quantity("80GB", Dim::Bytes) == Approx(1.024 * 1.024 * 1.024));
}

TEST_CASE("Bandwidth: bits are an eighth of bytes, case matters", "[units]") {
  CHECK(parse_quantity("400Gb/s", Dim::Bandwidth) == 400e9 / 8);  // 50 GB/s
  CHECK(parse_quantity("400Gb/s", Dim::Bandwidth) == 50e9);
  CHECK(parse_quantity("400GB/s", Dim::Bandwidth) == 400e9);
  CHECK(parse_quantity("3.35TB/s", Dim::Bandwidth) == Approx(3.35 * 1e12));
  CHECK(parse_quantity("100Mb/s", Dim::Bandwidth) == 100e6 / 8);
  CHECK(parse_quantity("8b/s", Dim::Bandwidth) == 1);
  CHECK(parse_quantity("1GiB/s", Dim::Bandwidth) == std::pow(2.0, 30));
  // Lower-case "gb/s" is neither bits nor bytes: rejected, not guessed.
  CHECK_THAT(quantity_error("50gb/s", Dim::Bandwidth), Catch::Contains("unknown unit 'gb/s'"));
}

TEST_CASE("Durations", "[units]") {
  CHECK(parse_quantity("3.7us", Dim::Duration) == Approx(3.7 * 1e-6));
  CHECK(parse_quantity("3.7\xC2\xB5s", Dim::Duration) == Approx(3.7 * 1e-6));  // micro sign
  CHECK(parse_quantity("250ns", Dim::Duration) == Approx(250 * 1e-9));
  CHECK(parse_quantity("12ms", Dim::Duration) == Approx(12 * 1e-3));
  CHECK(parse_quantity("2s", Dim::Duration) == 2);
  CHECK(parse_quantity("5min", Dim::Duration) == 5 * 60);
  CHECK(parse_quantity("1.5h", Dim::Duration) == 1.5 * 3600);
  CHECK(parse_quantity("2d", Dim::Duration) == 2 * 24 * 3600);
  CHECK(parse_quantity("40ps", Dim::Duration) == Approx(40 * 1e-12));
}

TEST_CASE("FLOP rates, FLOP counts, power, price and frequency", "[units]") {
  CHECK(parse_quantity("989TFLOPS", Dim::FlopRate) == 989 * 1e12);
  CHECK(parse_quantity("989TFLOP/s", Dim::FlopRate) == 989 * 1e12);
  CHECK(parse_quantity("1.979PFLOPS", Dim::FlopRate) == Approx(1.979 * 1e15));
  CHECK(parse_quantity("66.9TFLOPS", Dim::FlopRate) == Approx(66.9 * 1e12));
  CHECK(parse_quantity("3GFLOP", Dim::Flops) == 3 * 1e9);
  CHECK(parse_quantity("2PFLOP", Dim::Flops) == 2 * 1e15);
  // "5EFLOP": the 'E' of the unit must not be read as an exponent of the number.
  CHECK(parse_quantity("5EFLOP", Dim::Flops) == 5 * 1e18);
  CHECK(parse_quantity("700W", Dim::Power) == 700);
  CHECK(parse_quantity("1.2kW", Dim::Power) == Approx(1.2 * 1e3));
  CHECK(parse_quantity("2.00USD/h", Dim::PricePerHour) == 2);
  CHECK(parse_quantity("1830MHz", Dim::Frequency) == 1830 * 1e6);
  CHECK(parse_quantity("1.83GHz", Dim::Frequency) == Approx(1.83 * 1e9));
  // A FLOP rate is not a FLOP count and vice versa.
  CHECK_THAT(quantity_error("989TFLOPS", Dim::Flops), Catch::Contains("unknown unit 'TFLOPS'"));
  CHECK_THAT(quantity_error("3GFLOP", Dim::FlopRate), Catch::Contains("unknown unit 'GFLOP'"));
}

TEST_CASE("Numbers: exponents, and spaces around number and unit", "[units]") {
  CHECK(parse_quantity("50 GB/s", Dim::Bandwidth) == 50 * 1e9);
  CHECK(parse_quantity("  50   GB/s  ", Dim::Bandwidth) == 50 * 1e9);
  CHECK(parse_quantity("1.5e3MB/s", Dim::Bandwidth) == 1.5e3 * 1e6);
  CHECK(parse_quantity("2e-3 s", Dim::Duration) == Approx(2 * 1e-3));
  CHECK(parse_quantity("0B", Dim::Bytes) == 0);
}

TEST_CASE("A bare number has no unit", "[units]") {
  const std::string m = quantity_error("50", Dim::Bandwidth);
  CHECK_THAT(m, Catch::Contains("'50' has no unit"));
  CHECK_THAT(m, Catch::Contains("GB/s"));  // lists the units of the dimension
  CHECK_THAT(quantity_error("50  ", Dim::Bytes), Catch::Contains("has no unit"));
  CHECK_THAT(quantity_error("3.7", Dim::Duration), Catch::Contains("has no unit"));
}

TEST_CASE("Unknown units are rejected with the list of known ones", "[units]") {
  const std::string m = quantity_error("50GB/sec", Dim::Bandwidth);
  CHECK_THAT(m, Catch::Contains("unknown unit 'GB/sec'"));
  CHECK_THAT(m, Catch::Contains("Gb/s"));
  CHECK_THAT(quantity_error("50 parsecs", Dim::Duration), Catch::Contains("unknown unit 'parsecs'"));
  CHECK_THAT(quantity_error("80GIB", Dim::Bytes), Catch::Contains("unknown unit 'GIB'"));
  CHECK_THAT(quantity_error("700 w", Dim::Power), Catch::Contains("unknown unit 'w'"));
  CHECK_THAT(quantity_error("2 USD", Dim::PricePerHour), Catch::Contains("unknown unit 'USD'"));
}

TEST_CASE("Text that is not a number is rejected", "[units]") {
  CHECK_THAT(quantity_error("GB/s", Dim::Bandwidth), Catch::Contains("is not a number followed by a unit"));
  CHECK_THAT(quantity_error("fast", Dim::Bandwidth), Catch::Contains("is not a number"));
  CHECK_THAT(quantity_error("", Dim::Bytes), Catch::Contains("is not a number"));
  CHECK_THAT(quantity_error("   ", Dim::Bytes), Catch::Contains("is not a number"));
  CHECK_THAT(quantity_error("+5GB", Dim::Bytes), Catch::Contains("is not a number"));
  CHECK_THAT(quantity_error("inf GB", Dim::Bytes), Catch::Contains("not a finite number"));
  CHECK_THAT(quantity_error("nan GB", Dim::Bytes), Catch::Contains("not a finite number"));
  CHECK_THAT(quantity_error("1e999GB", Dim::Bytes), Catch::Contains("is not a number"));  // overflows a double
}

TEST_CASE("format_quantity picks a decimal prefix", "[units]") {
  CHECK(format_quantity(50e9, Dim::Bandwidth) == "50 GB/s");
  CHECK(format_quantity(989e12, Dim::FlopRate) == "989 TFLOPS");
  CHECK(format_quantity(3.7e-6, Dim::Duration) == "3.7 us");
}
