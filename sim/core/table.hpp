#pragma once
// A plain-text table for terminal output: columns are padded to their widest cell; columns
// marked right-aligned (numbers) are padded on the left.

#include <string>
#include <vector>

namespace trainsim {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header, std::vector<bool> right_align = {});
  void add_row(std::vector<std::string> cells);
  void add_rule();  // a separator line
  std::string str(const std::string& indent = "  ") const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;  // an empty row = rule
};

// 6.71e11 -> "671.0B", 3.7e10 -> "37.0B", 1.2e6 -> "1.20M"
std::string human_count(double v);

}  // namespace trainsim
