#pragma once
// The one formatter of money and counts that every output uses (terminal text, Markdown, HTML,
// compare, sweep): $5.624M is printed the same way everywhere.
//
//   format_usd(5.624e6)    "$5.624M"     format_usd(171.2e3)  "$171.2K"    format_usd(950) "$950"
//   format_count(2.812e6)  "2.812M"      format_count(184.1e3) "184.1K"    (GPU-hours, counts)
//   format_tokens(14.8e12) "14.80T"      format_tokens(62.9e9) "62.9B"
//   format_seconds(20.29)  "20.29 s"     format_seconds(0.0029) "2.90 ms"
// Negative values keep their sign in front ("-$2.9K"); the *_delta variants always sign
// ("+$48.0K", "-1.2K"). A value that is not finite prints "n/a".

#include <string>

namespace trainsim {

std::string format_usd(double usd);
std::string format_count(double v);
std::string format_tokens(double tokens);
std::string format_seconds(double s);
std::string format_usd_delta(double usd);
std::string format_count_delta(double v);
// A relative change in percent with its sign: "+2.3%", "-28.1%"; "n/a" when the base is 0.
std::string format_pct_change(double from, double to);

}  // namespace trainsim
