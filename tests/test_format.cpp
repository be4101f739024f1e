// One money and quantity formatter used everywhere (issue 12, point 9): core/format.hpp, and the
// same figure printed the same way in text, Markdown, HTML and compare.
#include <catch2/catch.hpp>

#include "core/format.hpp"
#include "report/compare.hpp"
#include "report/run_report.hpp"
#include "report_html_fixture.hpp"

using namespace trainsim;

TEST_CASE("format_usd, format_count, format_tokens, format_seconds", "[format]") {
  CHECK(format_usd(5.624e6) == "$5.624M");
  CHECK(format_usd(171.2e3) == "$171.2K");
  CHECK(format_usd(2.9e3) == "$2.9K");
  CHECK(format_usd(950) == "$950");
  CHECK(format_usd(1.25e9) == "$1.250B");
  CHECK(format_usd(-2.9e3) == "-$2.9K");
  CHECK(format_usd_delta(48e3) == "+$48.0K");
  CHECK(format_usd_delta(-1.549e6) == "-$1.549M");
  CHECK(format_usd_delta(0.2) == "±$0");
  CHECK(format_count(2.812e6) == "2.812M");
  CHECK(format_count(184.1e3) == "184.1K");
  CHECK(format_count_delta(-630) == "-630");
  CHECK(format_tokens(14.8e12) == "14.80T");
  CHECK(format_tokens(62.9e9) == "62.9B");
  CHECK(format_seconds(20.29) == "20.29 s");
  CHECK(format_seconds(0.0029) == "2.90 ms");
  CHECK(format_pct_change(100, 102.3) == "+2.3%");
  CHECK(format_pct_change(100, 100) == "0.0%");
  CHECK(format_pct_change(0, 1) == "n/a");
  CHECK(format_usd(std::numeric_limits<double>::quiet_NaN()) == "n/a");
}

TEST_CASE("A cost is printed one way in every output", "[format]") {
  RunReport r = ts_test::synthetic_report();
  // Make the total a figure whose old renderings differed ("$5.62M" in HTML, "$5.624M" in text).
  const double scale = 5.624e6 / r.run.cost_usd;
  r.run.cost_usd *= scale;
  for (auto& h : r.hardware) h.cost_usd = r.run.cost_usd;
  for (const std::string& out : {run_text(r), run_markdown(r), run_html(r), compare_text(r)}) {
    CHECK(out.find("$5.624M") != std::string::npos);
    CHECK(out.find("$5.62M") == std::string::npos);
  }
}
