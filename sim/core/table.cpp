#include "core/table.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace trainsim {

TextTable::TextTable(std::vector<std::string> header, std::vector<bool> right_align)
    : header_(std::move(header)), right_(std::move(right_align)) {
  right_.resize(header_.size(), false);
}

void TextTable::add_row(std::vector<std::string> cells) {
  cells.resize(header_.size());
  rows_.push_back(std::move(cells));
}

void TextTable::add_rule() { rows_.emplace_back(); }

static std::size_t display_width(const std::string& s) {
  // UTF-8: count code points, not bytes.
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string TextTable::str(const std::string& indent) const {
  std::vector<std::size_t> w(header_.size(), 0);
  for (std::size_t i = 0; i < header_.size(); ++i) w[i] = display_width(header_[i]);
  for (const auto& r : rows_)
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], display_width(r[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = indent;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::size_t pad = w[i] - display_width(cells[i]);
      if (i) out += "  ";
      if (right_[i]) out += std::string(pad, ' ') + cells[i];
      else out += cells[i] + (i + 1 < cells.size() ? std::string(pad, ' ') : "");
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::size_t total = 0;
  for (auto x : w) total += x;
  total += 2 * (w.empty() ? 0 : w.size() - 1);
  const std::string rule = indent + std::string(total, '-') + "\n";
  std::string out = line(header_) + rule;
  for (const auto& r : rows_) out += r.empty() ? rule : line(r);
  return out;
}

std::string human_count(double v) {
  const double a = std::fabs(v);
  if (a >= 1e12) return fmt::format("{:.2f}T", v / 1e12);
  if (a >= 1e9) return fmt::format("{:.2f}B", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (a >= 1e3) return fmt::format("{:.2f}K", v / 1e3);
  return fmt::format("{:.0f}", v);
}

}  // namespace trainsim
