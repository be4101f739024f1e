#pragma once
// `trainsim validate`: the suite's results rendered as a terminal table, JSON (metrics.json and
// --json), Markdown (report.md) and one self-contained HTML page (report.html: inline CSS and
// an inline SVG chart of the errors, one bar per case grouped by family, the ±5% and ±10% bands
// drawn; no script, no external resource). Every rendering is deterministic: fixed number
// formats, suite order, no clock, paths relative to the suite folder.

#include <string>

#include <nlohmann/json.hpp>

#include "validate/validate.hpp"

namespace trainsim {

std::string validate_text(const validate::ValidationReport& r);
nlohmann::json validate_json(const validate::ValidationReport& r);
std::string validate_markdown(const validate::ValidationReport& r);
std::string validate_html(const validate::ValidationReport& r);

// Writes report.md, report.html and metrics.json into `dir` (created if missing): every file
// is rendered before any is written, and each is written atomically. Throws UsageError naming
// --out if the folder cannot be made.
void write_validate_outputs(const validate::ValidationReport& r, const std::string& dir);

}  // namespace trainsim
