#include "cli/provenance.hpp"

#include <charconv>
#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

#include "cli/build_info.hpp"
#include "core/error.hpp"

namespace trainsim::cli {

std::string shell_quote(const std::string& w) {
  const bool plain = !w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                       "-_./=:,+%@") == std::string::npos;
  if (plain) return w;
  std::string q = "'";
  for (char c : w) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

namespace {

std::string utc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string report_date() {
  if (const char* e = std::getenv("SOURCE_DATE_EPOCH"); e && *e) {
    const std::string s(e);
    long long v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v < 0 || v > 253402300799LL)
      throw UsageError(fmt::format("SOURCE_DATE_EPOCH='{}' is not a number of seconds since 1970-01-01 (unset it to "
                                   "date reports by the clock)",
                                   s));
    return utc(static_cast<std::time_t>(v)) + " (SOURCE_DATE_EPOCH)";
  }
  return utc(std::time(nullptr));
}

}  // namespace

Provenance make_provenance(const std::vector<std::string>& args, const std::vector<std::string>& overrides) {
  Provenance p;
  p.command = "trainsim";
  for (const auto& a : args) p.command += " " + shell_quote(a);
  p.overrides = overrides;
  p.version = TRAINSIM_VERSION;
  if (const char* c = std::getenv("TRAINSIM_COMMIT"); c && *c) p.commit = std::string(c) + " (TRAINSIM_COMMIT)";
  else p.commit = build_commit();
  p.date = report_date();
  return p;
}

}  // namespace trainsim::cli
