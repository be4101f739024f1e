#include "report/validate_report.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <set>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/output.hpp"
#include "core/table.hpp"
#include "core/input.hpp"

namespace trainsim {

namespace {

using json = nlohmann::json;
using validate::CaseResult;
using validate::Summary;
using validate::ValidationReport;

// ---------------------------------------------------------------------------------------------
// Numbers

// Fixed decimals with thousands separators: 2664000 -> "2,664,000".
std::string num(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.starts_with('-') && s.find_first_not_of("0.", 1) == std::string::npos) s.erase(0, 1);
  const std::size_t start = (!s.empty() && s[0] == '-') ? 1 : 0;
  std::size_t end = s.find('.');
  if (end == std::string::npos) end = s.size();
  for (std::size_t i = end; i > start + 3; i -= 3) s.insert(i - 3, 1, ',');
  return s;
}

// A metric value in its display unit, with the precision its sources print.
std::string value_text(const validate::Metric& m, double v) {
  const std::string_view u = m.unit;
  if (u == "TFLOP/s") return num(v, 1);
  if (u == "s") return num(v, std::fabs(v) < 10 ? 3 : std::fabs(v) < 100 ? 2 : 1);
  return num(v, 0);  // tokens/s, GPU-hours
}

std::string signed_pct(double v) {
  if (!std::isfinite(v)) return "n/a";
  std::string s = fmt::format("{:+.1f}%", v);
  if (s == "-0.0%") s = "+0.0%";
  return s;
}
std::string pct(const std::optional<double>& v) { return v ? fmt::format("{:.1f}%", *v) : "n/a"; }
std::string secs(double s) { return fmt::format("{:.3f}", s); }

std::string esc(std::string_view s) {
  std::string o;
  o.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

// Markdown table cells: no pipes or newlines.
std::string md(std::string s) {
  std::string o;
  for (char c : s) {
    if (c == '|') o += "\\|";
    else if (c == '\n') o += ' ';
    else o += c;
  }
  return o;
}

template <typename... Args>
void out(std::string& o, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(o), f, std::forward<Args>(args)...);
}

const validate::Metric& metric_of(const CaseResult& r) { return *r.family->metric; }

std::string trainsim_text(const CaseResult& r) {
  return r.expressible ? value_text(metric_of(r), r.trainsim) : "not expressible: " + r.c->not_expressible;
}
std::string error_text(const CaseResult& r) { return r.expressible ? signed_pct(r.error_pct) : "-"; }

std::string summary_title(const ValidationReport& rep, const Summary& s) {
  for (const auto& f : rep.suite->families)
    if (f.id == s.id) return f.title + (f.in_sample.empty() ? "" : " [in sample]");
  return s.title;
}

// The breakdown lines that are non-zero in any of `rs`.
std::vector<std::string> used_lines(const std::vector<const CaseResult*>& rs) {
  std::vector<std::string> names;
  std::set<std::string> used;
  for (const CaseResult* r : rs)
    for (const auto& l : r->breakdown.lines())
      if (l.seconds != 0) used.insert(l.name);
  for (const auto& l : step::Breakdown{}.lines())
    if (used.count(l.name)) names.emplace_back(l.name);
  return names;
}
double line_seconds(const step::Breakdown& b, const std::string& name) {
  for (const auto& l : b.lines())
    if (name == l.name) return l.seconds;
  return 0;
}
std::string line_label(const std::string& name) {
  for (const auto& l : step::Breakdown{}.lines())
    if (name == l.name) return l.label;
  return name;
}

std::vector<const CaseResult*> family_results(const ValidationReport& rep, const validate::Family& f) {
  std::vector<const CaseResult*> rs;
  for (const auto& r : rep.results)
    if (r.family == &f) rs.push_back(&r);
  return rs;
}

std::vector<std::string> all_notes(const ValidationReport& rep) {
  std::vector<std::string> notes;
  for (const auto& r : rep.results)
    for (const auto& n : r.notes)
      if (std::find(notes.begin(), notes.end(), n) == notes.end()) notes.push_back(n);
  return notes;
}

std::string headline(const ValidationReport& rep) {
  return fmt::format("{} published training run{} in {} famil{}{}", rep.results.size(),
                     rep.results.size() == 1 ? "" : "s", rep.families.size(), rep.families.size() == 1 ? "y" : "ies",
                     rep.filter.empty() ? "" : fmt::format(" (--filter '{}')", rep.filter));
}

json summary_json(const Summary& s) {
  return {{"id", s.id},
          {"cases", s.cases},
          {"expressible", s.expressible},
          {"not_expressible", s.not_expressible},
          {"median_abs_error_pct", s.median_abs_error_pct ? json(*s.median_abs_error_pct) : json(nullptr)},
          {"max_abs_error_pct", s.max_abs_error_pct ? json(*s.max_abs_error_pct) : json(nullptr)},
          {"worst_case", s.worst_case.empty() ? json(nullptr) : json(s.worst_case)}};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
std::string validate_text(const ValidationReport& rep) {
  std::string o;
  out(o, "trainsim validate: {} (the rule for unpublished choices: validation/README.md)\n\n", headline(rep));
  TextTable t({"case", "family", "GPU", "metric", "published", "trainsim", "error"},
              {false, false, false, false, true, true, true});
  for (const auto& r : rep.results)
    t.add_row({r.c->name, r.c->family, r.gpu, std::string(metric_of(r).label), value_text(metric_of(r), r.published),
               trainsim_text(r), error_text(r)});
  o += t.str();
  o += "\n";
  TextTable s({"family", "cases", "not expressible", "median |error|", "max |error|", "worst case", "title"},
              {false, true, true, true, true, false, false});
  for (const auto& f : rep.families)
    s.add_row({f.id, std::to_string(f.cases), std::to_string(f.not_expressible), pct(f.median_abs_error_pct),
               pct(f.max_abs_error_pct), f.worst_case, summary_title(rep, f)});
  s.add_rule();
  for (const Summary* x : {&rep.all, &rep.out_of_sample})
    s.add_row({x->id == "all" ? "all" : "out of sample", std::to_string(x->cases), std::to_string(x->not_expressible),
               pct(x->median_abs_error_pct), pct(x->max_abs_error_pct), x->worst_case, x->title});
  o += s.str();
  std::vector<const CaseResult*> ne;
  for (const auto& r : rep.results)
    if (!r.expressible) ne.push_back(&r);
  if (ne.empty()) o += "\n  every case is expressible\n";
  else {
    o += "\n  not expressible:\n";
    for (const auto* r : ne) out(o, "    {}: {}\n", r->c->id, r->c->not_expressible);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
json validate_json(const ValidationReport& rep) {
  json j;
  j["suite"] = "validation";
  j["rule"] = "validation/README.md";
  j["filter"] = rep.filter.empty() ? json(nullptr) : json(rep.filter);
  json fams = json::array();
  for (const auto& s : rep.families) {
    const validate::Family* f = nullptr;
    for (const auto& x : rep.suite->families)
      if (x.id == s.id) f = &x;
    json fj = summary_json(s);
    fj["title"] = f->title;
    fj["folder"] = f->folder;
    fj["metric"] = f->metric->name;
    fj["unit"] = f->metric->unit;
    fj["metric_definition"] = f->metric->definition;
    fj["metric_citation"] = f->metric->citation;
    fj["in_sample"] = f->in_sample.empty() ? json(nullptr) : json(f->in_sample);
    fj["sources"] = f->sources;
    fj["assumptions"] = f->assumptions;
    fams.push_back(std::move(fj));
  }
  j["families"] = fams;
  json cases = json::array();
  for (const auto& r : rep.results) {
    json c;
    c["id"] = r.c->id;
    c["family"] = r.c->family;
    c["name"] = r.c->name;
    c["source"] = r.c->source;
    c["metric"] = metric_of(r).name;
    c["unit"] = metric_of(r).unit;
    c["published"] = r.published;
    c["published_text"] = r.c->published_text;
    c["gpu"] = r.gpu;
    if (!r.expressible) {
      c["scenario"] = nullptr;
      c["not_expressible"] = r.c->not_expressible;
      cases.push_back(std::move(c));
      continue;
    }
    c["scenario"] = r.c->scenario_rel;
    c["not_expressible"] = nullptr;
    c["model"] = r.model;
    c["gpus"] = r.gpus;
    c["plan"] = r.plan;
    c["trainsim"] = r.trainsim;
    c["error_pct"] = r.error_pct;
    c["step_time_s"] = r.step_s;
    json b = json::object();
    for (const auto& l : r.breakdown.lines()) b[l.name] = l.seconds;
    c["breakdown_s"] = b;
    c["peak_memory_gib"] = r.peak_memory_gib;
    c["fits_memory"] = r.fits_memory;
    c["notes"] = r.notes;
    cases.push_back(std::move(c));
  }
  j["cases"] = cases;
  j["summary"] = {{"all", summary_json(rep.all)}, {"out_of_sample", summary_json(rep.out_of_sample)}};
  return j;
}

// ---------------------------------------------------------------------------------------------
std::string validate_markdown(const ValidationReport& rep) {
  std::string o;
  out(o, "# Validation: trainsim against published training runs\n\n");
  out(o,
      "`trainsim validate` ran {}. Every case is a scenario in `validation/` with the figure its source reports; "
      "what the source leaves open is decided by one rule for all cases (`validation/README.md`), and nothing is "
      "fitted to these figures. Error = (trainsim - published) / published.\n\n",
      headline(rep));
  out(o, "## Summary\n\n| family | title | cases | not expressible | median \\|error\\| | max \\|error\\| | worst case |\n");
  out(o, "|---|---|---:|---:|---:|---:|---|\n");
  for (const auto& f : rep.families)
    out(o, "| {} | {} | {} | {} | {} | {} | {} |\n", f.id, md(summary_title(rep, f)), f.cases, f.not_expressible,
        pct(f.median_abs_error_pct), pct(f.max_abs_error_pct), f.worst_case);
  for (const Summary* x : {&rep.all, &rep.out_of_sample})
    out(o, "| **{}** | {} | {} | {} | **{}** | **{}** | {} |\n", x->id == "all" ? "all" : "out of sample",
        md(x->title), x->cases, x->not_expressible, pct(x->median_abs_error_pct), pct(x->max_abs_error_pct),
        x->worst_case);
  out(o, "\n## Cases\n\n| case | GPU | GPUs | plan | metric | published | trainsim | error | fits memory |\n");
  out(o, "|---|---|---:|---|---|---:|---:|---:|---|\n");
  for (const auto& r : rep.results) {
    if (!r.expressible) {
      out(o, "| {} | {} | | | {} | {} | not expressible: {} | | |\n", r.c->id, md(r.gpu), md(metric_of(r).label),
          value_text(metric_of(r), r.published), md(r.c->not_expressible));
      continue;
    }
    out(o, "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.c->id, r.gpu, r.gpus, r.plan, md(metric_of(r).label),
        value_text(metric_of(r), r.published), value_text(metric_of(r), r.trainsim), signed_pct(r.error_pct),
        r.fits_memory ? "yes" : fmt::format("no ({:.1f} GiB)", r.peak_memory_gib));
  }
  for (const auto& f : rep.suite->families) {
    const auto rs = family_results(rep, f);
    if (rs.empty()) continue;
    out(o, "\n## {}: {}\n\n", f.id, md(f.title));
    if (!f.in_sample.empty()) out(o, "**In sample:** {}\n\n", f.in_sample);
    out(o, "Metric `{}` ({}): {} [{}].\n\n", f.metric->name, f.metric->unit, f.metric->definition, f.metric->citation);
    out(o, "Sources:\n\n");
    for (const auto& [tag, text] : f.sources) out(o, "- **{}**: {}\n", tag, text);
    if (!f.assumptions.empty()) {
      out(o, "\nApproximations every case of the family makes:\n\n");
      for (const auto& [k, v] : f.assumptions) out(o, "- *{}*: {}\n", k, v);
    }
    const auto lines = used_lines(rs);
    out(o, "\nOne simulated step, mean per GPU (seconds):\n\n| case | scenario | step |");
    for (const auto& l : lines) out(o, " {} |", line_label(l));
    out(o, "\n|---|---|---:|");
    for (std::size_t i = 0; i < lines.size(); ++i) out(o, "---:|");
    out(o, "\n");
    for (const CaseResult* r : rs) {
      if (!r->expressible) continue;
      out(o, "| {} | `{}` | {} |", r->c->name, r->c->scenario_rel, secs(r->step_s));
      for (const auto& l : lines) out(o, " {} |", secs(line_seconds(r->breakdown, l)));
      out(o, "\n");
    }
  }
  const auto notes = all_notes(rep);
  if (!notes.empty()) {
    out(o, "\n## Approximations the simulation names\n\n");
    for (const auto& n : notes) out(o, "- {}\n", n);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
namespace {

constexpr const char* kCss = R"css(
:root{--fg:#1f2933;--muted:#5f6b7a;--line:#dde3ea;--head:#f2f5f8;--accent:#2f5d8a}
*{box-sizing:border-box}
body{margin:0;background:#eef1f5;color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Liberation Sans",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 32px 40px;background:#fff;min-height:100vh}
header{border-bottom:3px solid var(--accent);padding-bottom:14px}
.brand{font-size:11px;letter-spacing:.12em;text-transform:uppercase;color:var(--accent);font-weight:700}
h1{font-size:26px;margin:2px 0 4px;line-height:1.2}
.desc{color:var(--muted);margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:20px 0 0}
.card{border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:4px;padding:8px 12px}
.card .v{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums}
.k{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
section{margin-top:30px}
h2{font-size:18px;margin:0 0 4px}
h3{font-size:15px;margin:18px 0 4px}
.note{color:var(--muted);font-size:12.5px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums;margin:6px 0}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600;font-size:12px;color:#334}
td.n,th.n{text-align:right;white-space:nowrap}
tr.total td{font-weight:650;border-top:2px solid #c5ced8}
code{font-family:"DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace;font-size:12px}
.gap{display:inline-block;min-width:62px;text-align:right;padding:1px 7px;border-radius:10px;font-weight:650}
.gap-ok{background:#e3f4e8;color:#176b33}.gap-warn{background:#fdf1dc;color:#8a5300}.gap-bad{background:#fbe3e4;color:#a61e25}
.tag{display:inline-block;padding:0 6px;border-radius:8px;background:#fdf1dc;color:#8a5300;font-size:11px;font-weight:600}
ul{margin:6px 0;padding-left:20px}li{margin:2px 0}
.chart{border:1px solid var(--line);border-radius:4px;padding:8px 6px 4px;margin:8px 0}
svg{display:block;width:100%;height:auto}
svg text{font-family:inherit;font-size:12px;fill:#1f2933}
svg .m{fill:#5f6b7a;font-size:11px}
svg .c{fill:#5f6b7a;font-size:10px}
svg .h{font-weight:650}
svg .g{stroke:#e3e8ee;stroke-width:1}
svg .ax{stroke:#9aa5b1;stroke-width:1}
svg .b10{fill:#fdf6e9}
svg .b5{fill:#e8f5ec}
svg .bl{stroke:#9aa5b1;stroke-width:1;stroke-dasharray:4 3}
svg .sep{stroke:#c5ced8;stroke-width:1}
svg .ne{fill:#9aa5b1;font-size:14px;font-weight:700}
.f0{fill:#4e79a7}.f1{fill:#f28e2b}.f2{fill:#59a14f}.f3{fill:#e15759}.f4{fill:#76b7b2}.f5{fill:#b07aa1}.f6{fill:#edc948}.f7{fill:#9c755f}
)css";

std::string gap_class(double e) {
  const double a = std::fabs(e);
  return a <= 5 ? "gap-ok" : a <= 10 ? "gap-warn" : "gap-bad";
}

// The 1/2/5 step covering `max` with about `target` ticks.
double tick_step(double max, int target) {
  const double raw = max / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

// The errors, one bar per case grouped by family, with the ±5% and ±10% bands. The axis is
// symmetric; it stops at ±100% and a bar beyond is drawn to the edge with its value printed.
std::string error_chart(const ValidationReport& rep) {
  constexpr double W = 1000, left = 58, right = 44, top = 34, plot_h = 300, label_h = 118, family_gap = 16;
  const double H = top + plot_h + label_h;
  double maxabs = 12;
  for (const auto& r : rep.results)
    if (r.expressible) maxabs = std::max(maxabs, std::fabs(r.error_pct));
  maxabs = std::min(maxabs, 100.0);
  const double step = tick_step(maxabs, 4);
  const double ymax = std::ceil(maxabs / step - 1e-9) * step;
  auto y = [&](double e) { return top + plot_h / 2 - std::clamp(e, -ymax, ymax) / ymax * (plot_h / 2); };

  std::vector<const validate::Family*> fams;
  for (const auto& f : rep.suite->families)
    if (!family_results(rep, f).empty()) fams.push_back(&f);
  const double n = static_cast<double>(rep.results.size());
  const double slot = (W - left - right - family_gap * static_cast<double>(fams.size() - 1)) / n;
  const double bar = std::min(slot * 0.72, 40.0);

  std::string o;
  out(o, "<svg id=\"chart-errors\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"error of every case, grouped by "
         "family, with the 5% and 10% bands\">\n", W, H);
  out(o, "<rect class=\"b10\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"/>\n", left, y(10),
      W - left - right, y(-10) - y(10));
  out(o, "<rect class=\"b5\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"/>\n", left, y(5),
      W - left - right, y(-5) - y(5));
  for (double v = -ymax; v <= ymax + 1e-9; v += step) {
    out(o, "<line class=\"g\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>", left, y(v), W - right, y(v));
    out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}{}%</text>\n", left - 6, y(v) + 4,
        v > 0 ? "+" : "", num(v, step < 1 ? 1 : 0));
  }
  // The band edges; labelled beside the plot when they are far enough apart, and in a legend.
  const bool label_bands = y(5) - y(10) >= 12;
  for (double b : {5.0, 10.0})
    for (double sgn : {1.0, -1.0}) {
      out(o, "<line class=\"bl\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>", left, y(sgn * b),
          W - right, y(sgn * b));
      if (label_bands)
        out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\">{}{:.0f}%</text>", W - right + 4, y(sgn * b) + 4,
            sgn > 0 ? "+" : "-", b);
      o += "\n";
    }
  out(o, "<rect class=\"b5\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"10\"/><text class=\"m\" x=\"{:.1f}\" "
         "y=\"{:.1f}\">±5%</text><rect class=\"b10\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"10\"/>"
         "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\">±10%</text>\n",
      W - right - 112, H - 16, W - right - 96, H - 7, W - right - 58, H - 16, W - right - 42, H - 7);
  out(o, "<line class=\"ax\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>\n", left, y(0), W - right, y(0));
  out(o, "<text class=\"m\" x=\"12\" y=\"{:.1f}\" transform=\"rotate(-90 12 {:.1f})\" text-anchor=\"middle\">"
         "error vs published</text>\n", top + plot_h / 2, top + plot_h / 2);

  double x = left;
  for (std::size_t fi = 0; fi < fams.size(); ++fi) {
    const auto rs = family_results(rep, *fams[fi]);
    const double x0 = x;
    for (const CaseResult* r : rs) {
      const double cx = x + slot / 2;
      if (r->expressible) {
        const double e = r->error_pct;
        const double y0 = y(0), y1 = y(e);
        out(o, "<rect class=\"f{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"><title>{}: published "
               "{} {}, trainsim {} ({})</title></rect>\n",
            fi % 8, cx - bar / 2, std::min(y0, y1), bar, std::max(0.5, std::fabs(y1 - y0)), esc(r->c->id),
            value_text(metric_of(*r), r->published), esc(metric_of(*r).unit), value_text(metric_of(*r), r->trainsim),
            signed_pct(e));
        if (std::fabs(e) > ymax)
          out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", cx,
              e > 0 ? y1 - 4 : y1 + 12, signed_pct(e));
      } else {
        out(o, "<text class=\"ne\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">×<title>{}: not expressible: "
               "{}</title></text>\n",
            cx, y(0) + 5, esc(r->c->id), esc(r->c->not_expressible));
      }
      const double ly = top + plot_h + 8;
      out(o, "<text class=\"c\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" transform=\"rotate(-60 {:.1f} {:.1f})\">"
             "{}</text>\n", cx + 3, ly, cx + 3, ly, esc(r->c->name));
      x += slot;
    }
    out(o, "<text class=\"h\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", (x0 + x) / 2, top - 12,
        esc(fams[fi]->id));
    if (fi + 1 < fams.size()) {
      out(o, "<line class=\"sep\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>\n", x + family_gap / 2,
          top - 24, x + family_gap / 2, top + plot_h);
      x += family_gap;
    }
  }
  o += "</svg>\n";
  return o;
}

}  // namespace

std::string validate_html(const ValidationReport& rep) {
  std::string o;
  o += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<title>trainsim validation</title>\n<style>";
  o += kCss;
  o += "</style>\n</head>\n<body>\n<main>\n<header>\n<div class=\"brand\">trainsim validate</div>\n";
  o += "<h1>trainsim against published training runs</h1>\n";
  out(o, "<p class=\"desc\">{}. Every case is a scenario in <code>validation/</code> with the figure its source "
         "reports; what the source leaves open follows one rule for all cases (<code>validation/README.md</code>); "
         "nothing is fitted to these figures. Error = (trainsim − published) / published.</p>\n",
      esc(headline(rep)));
  o += "<div class=\"cards\">\n";
  auto card = [&](const std::string& k, const std::string& v) {
    out(o, "<div class=\"card\"><span class=\"k\">{}</span><span class=\"v\">{}</span></div>\n", esc(k), esc(v));
  };
  card("median |error|, all", pct(rep.all.median_abs_error_pct));
  card("max |error|, all", pct(rep.all.max_abs_error_pct));
  card("median |error|, out of sample", pct(rep.out_of_sample.median_abs_error_pct));
  card("max |error|, out of sample", pct(rep.out_of_sample.max_abs_error_pct));
  card("cases", std::to_string(rep.all.cases));
  card("not expressible", std::to_string(rep.all.not_expressible));
  o += "</div>\n</header>\n";

  o += "<section>\n<h2>Error of every case</h2>\n<p class=\"note\">One bar per case, grouped by family; the green band "
       "is ±5%, the amber band ±10%. Hover a bar for its figures; × marks a case trainsim cannot express.</p>\n"
       "<div class=\"chart\">\n";
  o += error_chart(rep);
  o += "</div>\n</section>\n";

  o += "<section>\n<h2>Summary</h2>\n<table>\n<tr><th>family</th><th>title</th><th class=\"n\">cases</th>"
       "<th class=\"n\">not expressible</th><th class=\"n\">median |error|</th><th class=\"n\">max |error|</th>"
       "<th>worst case</th></tr>\n";
  for (const auto& f : rep.families)
    out(o, "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
           "<td class=\"n\">{}</td><td>{}</td></tr>\n",
        esc(f.id), esc(summary_title(rep, f)), f.cases, f.not_expressible, pct(f.median_abs_error_pct),
        pct(f.max_abs_error_pct), esc(f.worst_case));
  for (const Summary* x : {&rep.all, &rep.out_of_sample})
    out(o, "<tr class=\"total\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
           "<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
        x->id == "all" ? "all" : "out of sample", esc(x->title), x->cases, x->not_expressible,
        pct(x->median_abs_error_pct), pct(x->max_abs_error_pct), esc(x->worst_case));
  o += "</table>\n</section>\n";

  o += "<section>\n<h2>Cases</h2>\n<table>\n<tr><th>case</th><th>GPU</th><th class=\"n\">GPUs</th><th>plan</th>"
       "<th>metric</th><th class=\"n\">published</th><th class=\"n\">trainsim</th><th class=\"n\">error</th>"
       "<th>memory</th></tr>\n";
  for (const auto& r : rep.results) {
    if (!r.expressible) {
      out(o, "<tr><td>{}</td><td>{}</td><td class=\"n\"></td><td></td><td>{}</td><td class=\"n\">{}</td>"
             "<td colspan=\"3\"><span class=\"tag\">not expressible</span> {}</td></tr>\n",
          esc(r.c->id), esc(r.gpu), esc(metric_of(r).label), value_text(metric_of(r), r.published),
          esc(r.c->not_expressible));
      continue;
    }
    out(o, "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td>"
           "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\"><span class=\"gap {}\">{}</span></td>"
           "<td>{}</td></tr>\n",
        esc(r.c->id), esc(r.gpu), r.gpus, esc(r.plan), esc(metric_of(r).label), value_text(metric_of(r), r.published),
        value_text(metric_of(r), r.trainsim), gap_class(r.error_pct), signed_pct(r.error_pct),
        r.fits_memory ? fmt::format("{:.1f} GiB", r.peak_memory_gib)
                      : fmt::format("<span class=\"tag\">does not fit</span> {:.1f} GiB", r.peak_memory_gib));
  }
  o += "</table>\n</section>\n";

  o += "<section>\n<h2>Families</h2>\n";
  for (const auto& f : rep.suite->families) {
    const auto rs = family_results(rep, f);
    if (rs.empty()) continue;
    out(o, "<h3>{}: {}</h3>\n", esc(f.id), esc(f.title));
    if (!f.in_sample.empty()) out(o, "<p><span class=\"tag\">in sample</span> {}</p>\n", esc(f.in_sample));
    out(o, "<p>Metric <code>{}</code> ({}): {} [{}].</p>\n<ul>\n", esc(f.metric->name), esc(f.metric->unit),
        esc(f.metric->definition), esc(f.metric->citation));
    for (const auto& [tag, text] : f.sources) out(o, "<li><b>{}</b>: {}</li>\n", esc(tag), esc(text));
    for (const auto& [k, v] : f.assumptions) out(o, "<li><i>{}</i>: {}</li>\n", esc(k), esc(v));
    o += "</ul>\n";
    const auto lines = used_lines(rs);
    o += "<table>\n<tr><th>case</th><th class=\"n\">step (s)</th>";
    for (const auto& l : lines) out(o, "<th class=\"n\">{}</th>", esc(line_label(l)));
    o += "</tr>\n";
    for (const CaseResult* r : rs) {
      if (!r->expressible) continue;
      out(o, "<tr><td>{}</td><td class=\"n\">{}</td>", esc(r->c->name), secs(r->step_s));
      for (const auto& l : lines) out(o, "<td class=\"n\">{}</td>", secs(line_seconds(r->breakdown, l)));
      o += "</tr>\n";
    }
    o += "</table>\n";
  }
  o += "</section>\n";
  const auto notes = all_notes(rep);
  if (!notes.empty()) {
    o += "<section>\n<h2>Approximations the simulation names</h2>\n<ul>\n";
    for (const auto& n : notes) out(o, "<li>{}</li>\n", esc(n));
    o += "</ul>\n</section>\n";
  }
  o += "</main>\n</body>\n</html>\n";
  return o;
}

void write_validate_outputs(const ValidationReport& r, const std::string& dir) {
  // Render everything first: a failure leaves nothing half-written.
  const std::string mdtext = validate_markdown(r);
  const std::string html = validate_html(r);
  const std::string metrics = validate_json(r).dump(2) + "\n";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !is_dir(dir))
    throw UsageError(fmt::format("--out: cannot create directory '{}'{}", dir, ec ? ": " + ec.message() : ""));
  const std::filesystem::path d(dir);
  write_file_atomic((d / "report.md").string(), mdtext);
  write_file_atomic((d / "report.html").string(), html);
  write_file_atomic((d / "metrics.json").string(), metrics);
}

}  // namespace trainsim
