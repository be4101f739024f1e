// report.html: one self-contained page (inline CSS, inline SVG drawn here, no script, no
// external resource) rendering a RunReport. The bytes are deterministic: every number goes
// through fmt with a fixed format, maps iterate in key order, nothing reads the clock.
//
// Charts (each an <svg id="chart-...">):
//   chart-breakdown  step-time breakdown per phase, horizontal stacked bars
//   chart-cost       GPU-hours and cost per phase
//   chart-timeline   one step's pipeline replay of phase 0, one row per pipeline rank
//   chart-hardware   step time / GPU-hours / cost per GPU type (only with hardware rows)
//   chart-memory     memory per pipeline rank, stacked by kind, against the HBM capacity
// The timeline merges consecutive ops narrower than half a pixel into one rect (coloured by
// the kind that takes most of its time), so a replay of thousands of ops stays small.
//
// Above the charts, banners (id callout-feasibility, callout-whatif, callout-origin): whether
// the plan fits memory (a plan that does not is not priced: no breakdown, cost or timeline),
// what a what-if changed, and the command, overrides, version, commit and date. Tables:
// published figures (for a what-if, labelled as the baseline's), the what-if against its
// baseline, phases, the breakdown, exposed communication by kind, hardware, op costs by op class
// (id op-costs: one row per class, source and basis), assumptions.

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <regex>
#include <map>
#include <tuple>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/format.hpp"
#include "report/run_report.hpp"

namespace trainsim {

namespace {

constexpr double kGiB = 1073741824.0;

// ---------------------------------------------------------------------------------------------
// Text and numbers

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

bool finite(double v) { return std::isfinite(v); }

// Fixed decimals with thousands separators: 2788000 -> "2,788,000".
std::string num(double v, int decimals) {
  if (!finite(v)) return "n/a";
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.starts_with('-') && s.find_first_not_of("0.", 1) == std::string::npos) s.erase(0, 1);  // "-0.00"
  const std::size_t start = (!s.empty() && s[0] == '-') ? 1 : 0;
  std::size_t end = s.find('.');
  if (end == std::string::npos) end = s.size();
  for (std::size_t i = end; i > start + 3; i -= 3) s.insert(i - 3, 1, ',');
  return s;
}

// A general figure with a precision that suits its size.
std::string gnum(double v) {
  if (!finite(v)) return "n/a";
  const double a = std::fabs(v);
  if (a >= 1000) return num(v, 0);
  if (a >= 100) return num(v, 1);
  if (a >= 1) return num(v, 2);
  if (a == 0) return "0";
  return fmt::format("{:.3g}", v);
}

// 14.8e12 -> "14.8T".
std::string si(double v) {
  if (!finite(v)) return "n/a";
  const double a = std::fabs(v);
  if (a >= 1e12) return fmt::format("{:.2f}T", v / 1e12);
  if (a >= 1e9) return fmt::format("{:.2f}B", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (a >= 1e3) return fmt::format("{:.1f}K", v / 1e3);
  return fmt::format("{:.0f}", v);
}

// Money and counts: the one formatter every output uses (core/format.hpp).
std::string usd(double v) { return format_usd(v); }
std::string hrs(double v) { return format_count(v); }

// Seconds with a unit that suits them.
std::string secs(double s) { return format_seconds(s); }

std::string pct(double fraction) { return finite(fraction) ? fmt::format("{:.1f}%", fraction * 100) : "n/a"; }

// Shortens a label for an SVG row (the full text goes in a <title>).
std::string clip(const std::string& s, std::size_t n) {
  if (s.size() <= n) return s;
  std::size_t cut = n - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
  return s.substr(0, cut) + "…";
}

double pos(double v) { return finite(v) && v > 0 ? v : 0.0; }

// Axis ticks: 0, step, 2*step ... covering `max` with a 1/2/5 step, about `target` ticks.
struct Ticks {
  double step = 1, top = 1;
};
Ticks ticks(double max, int target) {
  if (!(max > 0) || !finite(max)) return {1, 1};
  const double raw = max / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / mag;
  const double step = (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
  return {step, std::ceil(max / step - 1e-9) * step};
}

std::string tick_label(double v, double step) {
  if (step >= 1) return num(v, 0);
  const int d = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
  return num(v, d);
}

template <typename... Args>
void out(std::string& o, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(o), f, std::forward<Args>(args)...);
}

// ---------------------------------------------------------------------------------------------
// Style

constexpr const char* kCss = R"css(
:root{--fg:#1f2933;--muted:#5f6b7a;--line:#dde3ea;--head:#f2f5f8;--accent:#2f5d8a}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#eef1f5;color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Liberation Sans",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 32px 40px;background:#fff;min-height:100vh}
header{border-bottom:3px solid var(--accent);padding-bottom:14px}
.brand{font-size:11px;letter-spacing:.12em;text-transform:uppercase;color:var(--accent);font-weight:700}
h1{font-size:26px;margin:2px 0 4px;line-height:1.2}
.desc{color:var(--muted);margin:0}
.meta{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:10px 24px;margin:16px 0 0}
.meta div{min-width:0;overflow-wrap:anywhere}
.sub{font-size:12px;color:var(--muted)}
.k{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:20px 0 0}
.card{border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:4px;padding:8px 12px}
.card .v{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums}
section{margin-top:30px}
h2{font-size:18px;margin:0 0 4px}
.note{color:var(--muted);font-size:12.5px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums;margin:6px 0}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600;font-size:12px;color:#334}
td.n,th.n{text-align:right;white-space:nowrap}
tr.total td{font-weight:650;border-top:2px solid #c5ced8}
code,.mono{font-family:"DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace;font-size:12px}
.gap{display:inline-block;min-width:62px;text-align:right;padding:1px 7px;border-radius:10px;font-weight:650}
.gap-ok{background:#e3f4e8;color:#176b33}.gap-warn{background:#fdf1dc;color:#8a5300}.gap-bad{background:#fbe3e4;color:#a61e25}
.tag{display:inline-block;padding:0 6px;border-radius:8px;background:#fdf1dc;color:#8a5300;font-size:11px;font-weight:600}
.fit-ok{color:#176b33;font-weight:650}.fit-bad{color:#a61e25;font-weight:650}
pre{white-space:pre-wrap;background:var(--head);border:1px solid var(--line);border-radius:4px;padding:8px 10px;margin:6px 0}
ul{margin:6px 0;padding-left:20px}li{margin:2px 0}
.chart{border:1px solid var(--line);border-radius:4px;padding:8px 6px 4px;margin:8px 0}
svg{display:block;width:100%;height:auto}
svg text{font-family:inherit;font-size:12px;fill:#1f2933}
svg .m{fill:#5f6b7a;font-size:11px}
svg .in{fill:#fff;font-size:11px;font-weight:600}
svg .h{font-weight:650}
svg .g{stroke:#e3e8ee;stroke-width:1}
svg .ax{stroke:#9aa5b1;stroke-width:1}
svg .band{fill:#f4f6f9}
svg .cap{stroke:#c0262d;stroke-width:1.5;stroke-dasharray:6 4;fill:none}
svg .capt{fill:#c0262d;font-size:11px;font-weight:600}
.s0{fill:#4e79a7}.s1{fill:#f28e2b}.s2{fill:#b8b0ab}.s3{fill:#e15759}.s4{fill:#76b7b2}.s5{fill:#59a14f}.s6{fill:#edc948}.s7{fill:#b07aa1}.s8{fill:#ff9da7}.s9{fill:#9c755f}
.m0{fill:#4e79a7}.m1{fill:#a0cbe8}.m2{fill:#f28e2b}.m3{fill:#59a14f}.m4{fill:#b8b0ab}
.b0{fill:#4e79a7}.b1{fill:#59a14f}.b2{fill:#9c755f}
.kF{fill:#4e79a7}.kB{fill:#59a14f}.kI{fill:#8cd17d}.kW{fill:#b6992d}.kX{fill:#f28e2b}
.a{fill-opacity:.62}
.rp{fill:url(#hatch)}
.callout{border-radius:4px;padding:10px 14px;margin:14px 0 0;border:1px solid}
.callout b{font-weight:700}
.b-ok{background:#e3f4e8;border-color:#b5dcc0;color:#174d2a}
.b-bad{background:#fbe3e4;border-color:#efb3b6;color:#7a1419}
.b-whatif{background:#fdf1dc;border-color:#efd3a1;color:#6b4100}
.b-prov{background:var(--head);border-color:var(--line);color:var(--fg);font-size:12.5px}
.b-prov .mono{overflow-wrap:anywhere}
.gap-neutral{background:#eef1f5;color:#334}
footer{margin-top:36px;padding-top:10px;border-top:1px solid var(--line);color:var(--muted);font-size:12px}
@page{margin:14mm}
@media print{
 body{background:#fff;font-size:12px}
 main{max-width:none;padding:0;min-height:0}
 section{break-inside:avoid-page}
 .chart,table,.cards{break-inside:avoid}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
)css";

// ---------------------------------------------------------------------------------------------
// SVG pieces

constexpr double kW = 1000;  // viewBox width of every chart

void svg_open(std::string& o, const char* id, double h, const std::string& label) {
  out(o, "<div class=\"chart\"><svg id=\"{}\" viewBox=\"0 0 {} {:.0f}\" "
         "width=\"{}\" height=\"{:.0f}\" role=\"img\" aria-label=\"{}\">\n",
      id, kW, h, kW, h, esc(label));
}
void svg_close(std::string& o) { o += "</svg></div>\n"; }

struct Swatch {
  std::string label, cls;
};

// A row of legend swatches starting at (x, y); returns the x after the last one.
double legend(std::string& o, double x, double y, const std::vector<Swatch>& items) {
  for (const auto& s : items) {
    out(o, "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" rx=\"2\" class=\"{}\"/>"
           "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        x, y - 10, s.cls, x + 17, y, esc(s.label));
    x += 17 + 6.6 * static_cast<double>(s.label.size()) + 22;
  }
  return x;
}

// Vertical grid lines and labels under a horizontal value axis from x0 (value 0) to x1 (top).
void x_axis(std::string& o, double x0, double x1, double y_top, double y_bottom, Ticks t,
            const std::string& unit) {
  const double scale = (x1 - x0) / t.top;
  for (double v = 0; v <= t.top + t.step * 1e-6; v += t.step) {
    const double x = x0 + v * scale;
    out(o, "<line class=\"g\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>"
           "<text class=\"m\" x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
        x, y_top, y_bottom, y_bottom + 14, tick_label(v, t.step));
  }
  out(o, "<line class=\"ax\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>\n", x0, y_bottom, x1, y_bottom);
  if (!unit.empty()) out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", x1, y_bottom + 28, esc(unit));
}

// ---------------------------------------------------------------------------------------------
// Sections

void banner(std::string& o, const RunReport& r) {
  // Feasibility first.
  if (r.fits()) {
    double peak = 0, cap = r.memory.capacity;
    for (const auto& p : r.phases) peak = std::max(peak, p.memory.peak);
    out(o, "<div class=\"callout b-ok\" id=\"callout-feasibility\"><b>Fits GPU memory</b> in every phase: peak {:.1f} GiB "
           "of {:.1f} GiB per GPU.</div>\n",
        peak / kGiB, cap / kGiB);
  } else {
    o += "<div class=\"callout b-bad\" id=\"callout-feasibility\"><b>Does not fit GPU memory.</b> The plan cannot run as "
         "given, so nothing in this report is priced.<ul>\n";
    for (const auto& p : r.phases) {
      const auto sf = shortfalls(p.memory);
      if (sf.empty()) continue;
      const auto worst = *std::max_element(sf.begin(), sf.end(), [](const auto& a, const auto& b) { return a.shortfall < b.shortfall; });
      out(o, "<li>{}: {:.1f} GiB needed on pipeline rank {} of {:.1f} GiB (short by {:.1f} GiB); {} of {} ranks do not "
             "fit.</li>\n",
          esc(p.name), worst.need / kGiB, worst.rank, p.memory.capacity / kGiB, worst.shortfall / kGiB, sf.size(),
          p.memory.ranks.size());
    }
    o += "</ul></div>\n";
  }
  if (r.what_if()) {
    o += "<div class=\"callout b-whatif\" id=\"callout-whatif\"><b>What-if.</b> This run changes the scenario:";
    for (const auto& x : r.provenance.overrides) out(o, " <code>--set {}</code>", esc(x));
    o += ". Published figures, if any, are for the unmodified scenario.</div>\n";
  }
  const auto& p = r.provenance;
  o += "<div class=\"callout b-prov\" id=\"callout-origin\">";
  out(o, "<b>Command</b> <span class=\"mono\">{}</span><br>", esc(p.command.empty() ? std::string("(not recorded)") : p.command));
  if (p.overrides.empty()) {
    o += "<b>Overrides</b> none (the scenario as written)<br>";
  } else {
    o += "<b>Overrides</b>";
    for (const auto& x : p.overrides) out(o, " <span class=\"mono\">--set {}</span>", esc(x));
    o += "<br>";
  }
  out(o, "<b>trainsim</b> {}, commit <span class=\"mono\">{}</span> · <b>Date</b> {}</div>\n",
      esc(p.version.empty() ? std::string(TRAINSIM_VERSION) : p.version),
      esc(p.commit.empty() ? std::string("(not recorded)") : p.commit), esc(p.date.empty() ? std::string("not recorded") : p.date));
}

void header(std::string& o, const RunReport& r) {
  o += "<header>\n<div class=\"brand\">trainsim run report</div>\n";
  out(o, "<h1>{}</h1>\n", esc(r.scenario.empty() ? std::string("(unnamed scenario)") : r.title()));
  if (!r.description.empty()) out(o, "<p class=\"desc\">{}</p>\n", esc(r.description));
  banner(o, r);
  o += "<div class=\"meta\">\n";
  out(o, "<div><span class=\"k\">Model</span>{}</div>\n", esc(r.model));
  out(o, "<div><span class=\"k\">Hardware</span>{} × {}</div>\n", esc(r.gpu), num(static_cast<double>(r.gpus), 0));
  out(o, "<div><span class=\"k\">Price</span>${:.2f} per GPU-hour</div>\n", r.price_per_gpu_hour);
  if (!r.scenario_file.empty()) out(o, "<div><span class=\"k\">Scenario file</span><span class=\"mono\">{}</span></div>\n", esc(r.scenario_file));
  o += "</div>\n";

  const auto& t = r.run;
  o += "<div class=\"cards\">\n";
  auto card = [&](const char* k, const std::string& v) {
    out(o, "<div class=\"card\"><span class=\"k\">{}</span><div class=\"v\">{}</div></div>\n", k, v);
  };
  if (!r.priced) {
    card("GPU-hours", "not priced");
    card("Cost", "not priced");
    o += "</div>\n</header>\n";
    return;
  }
  card("GPU-hours", hrs(t.gpu_hours));
  card("Cost", usd(t.cost_usd));
  card("Wall-clock", fmt::format("{:.1f} days", t.wall_clock_days));
  if (t.pretraining_tokens > 0) card("GPU-h / 1T tokens", hrs(t.gpu_hours_per_trillion_tokens));
  if (!r.phases.empty()) {
    const auto& s0 = r.phases.front().step;
    card("Tokens/s", si(s0.tokens_per_s_per_gpu * static_cast<double>(r.gpus)));
    card("Tokens/s/GPU", num(s0.tokens_per_s_per_gpu, 0));
  }
  card("Energy", t.energy_mwh ? fmt::format("{} MWh", num(*t.energy_mwh, 0)) : std::string("not modelled"));
  if (t.goodput < 1) card("Goodput", pct(t.goodput));
  o += "</div>\n</header>\n";
}

bool hours_like(const std::string& what) { return what.rfind("GPU-hours", 0) == 0; }

void comparisons(std::string& o, const RunReport& r) {
  if (r.comparisons.empty() || !r.priced) return;
  const bool wi = r.what_if();
  o += "<section id=\"comparison\">\n";
  o += wi ? "<h2>Baseline published figures</h2>\n" : "<h2>Published figures</h2>\n";
  if (!r.reference_source.empty()) out(o, "<p class=\"note\">Source: {}</p>\n", esc(r.reference_source));
  if (wi)
    o += "<p class=\"note\">Published for the unmodified scenario; this run is a what-if, so the difference is what the "
         "change does, not an error of the model.</p>\n";
  out(o, "<table>\n<thead><tr><th>Figure</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr></thead>\n<tbody>\n",
      wi ? "Published (baseline)" : "Published", wi ? "This what-if" : "trainsim", wi ? "vs baseline published" : "Gap");
  for (const auto& c : r.comparisons) {
    const double g = c.gap_pct();
    const double a = std::fabs(g);
    const char* cls = wi ? "gap-neutral" : !finite(g) ? "gap-bad" : a <= 10 ? "gap-ok" : a <= 25 ? "gap-warn" : "gap-bad";
    const bool money = c.what.rfind("USD", 0) == 0;
    out(o, "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\"><span class=\"gap {}\">{}{:.1f}%</span></td></tr>\n",
        esc(c.what), money ? usd(c.published) : hours_like(c.what) ? hrs(c.published) : gnum(c.published),
        money ? usd(c.predicted) : hours_like(c.what) ? hrs(c.predicted) : gnum(c.predicted), cls,
        g > 0 ? "+" : "", g);
  }
  o += "</tbody></table>\n";
  if (!wi)
    o += "<p class=\"note\">Gap = (trainsim − published) / published. Green within ±10%, amber within ±25%, red "
         "beyond.</p>\n";
  o += "</section>\n";
}

void baseline_section(std::string& o, const RunReport& r) {
  if (!r.baseline) return;
  o += "<section id=\"baseline\">\n<h2>What-if against the baseline</h2>\n";
  out(o, "<p class=\"note\">Baseline: {} (the scenario without the overrides).</p>\n", esc(r.baseline->title()));
  o += "<table>\n<thead><tr><th></th><th class=\"n\">Baseline</th><th class=\"n\">What-if</th><th class=\"n\">Change</th></tr></thead>\n<tbody>\n";
  for (const auto& d : baseline_rows(r))
    out(o, "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n", esc(d.what),
        esc(delta_value_text(d, d.baseline)), esc(delta_value_text(d, d.what_if)), esc(delta_change_text(d)));
  o += "</tbody></table>\n</section>\n";
}

void phase_table(std::string& o, const RunReport& r) {
  o += "<section id=\"phases\">\n<h2>Phases</h2>\n";
  if (r.phases.empty()) {
    o += "<p class=\"note\">The scenario has no phases.</p>\n</section>\n";
    return;
  }
  if (!r.priced) {
    o += "<table>\n<thead><tr><th>Phase</th><th>Plan</th><th class=\"n\">Seq × batch</th><th class=\"n\">Peak memory</th>"
         "<th class=\"n\">HBM</th><th>Fits</th></tr></thead>\n<tbody>\n";
    for (const auto& p : r.phases)
      out(o, "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{} × {}</td><td class=\"n\">{:.1f} GiB</td>"
             "<td class=\"n\">{:.1f} GiB</td><td><span class=\"{}\">{}</span></td></tr>\n",
          esc(p.name), esc(p.plan), num(static_cast<double>(p.seq_len), 0), num(static_cast<double>(p.global_batch), 0),
          p.memory.peak / kGiB, p.memory.capacity / kGiB, p.memory.fits ? "fit-ok" : "fit-bad",
          p.memory.fits ? "fits" : "does not fit");
    o += "</tbody></table>\n<p class=\"note\">Not simulated: a phase does not fit GPU memory.</p>\n</section>\n";
    return;
  }
  bool energy = false;
  for (const auto& p : r.phases) energy = energy || p.result.energy_mwh.has_value();
  o += "<table>\n<thead><tr><th>Phase</th><th>Plan</th><th class=\"n\">Seq × batch</th><th class=\"n\">Tokens</th>"
       "<th class=\"n\">Steps</th><th class=\"n\">Step time</th><th class=\"n\">GPU-hours</th><th class=\"n\">Days</th>"
       "<th class=\"n\">Cost</th>";
  if (energy) o += "<th class=\"n\">Energy</th>";
  o += "</tr></thead>\n<tbody>\n";
  double tokens = 0;
  std::int64_t steps = 0;
  for (const auto& p : r.phases) {
    const auto& x = p.result;
    tokens += x.tokens;
    steps += x.steps;
    std::string kind = p.kind;
    std::replace(kind.begin(), kind.end(), '_', ' ');
    out(o, "<tr><td>{}<br><span class=\"sub\">{}</span></td><td class=\"mono\">{}</td><td class=\"n\">{} × {}</td>"
           "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
           "<td class=\"n\">{:.1f}</td><td class=\"n\">{}</td>",
        esc(p.name), esc(kind), esc(p.plan), num(static_cast<double>(p.seq_len), 0),
        num(static_cast<double>(p.global_batch), 0), si(x.tokens), num(static_cast<double>(x.steps), 0),
        secs(x.step_time_s), hrs(x.gpu_hours), x.wall_s / 86400.0, usd(x.cost_usd));
    if (energy) out(o, "<td class=\"n\">{}</td>", x.energy_mwh ? num(*x.energy_mwh, 1) + " MWh" : std::string("–"));
    o += "</tr>\n";
  }
  const auto& t = r.run;
  out(o, "<tr class=\"total\"><td>Total</td><td></td><td></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td></td>"
         "<td class=\"n\">{}</td><td class=\"n\">{:.1f}</td><td class=\"n\">{}</td>",
      si(tokens), num(static_cast<double>(steps), 0), hrs(t.gpu_hours), t.wall_clock_days, usd(t.cost_usd));
  if (energy) out(o, "<td class=\"n\">{}</td>", t.energy_mwh ? num(*t.energy_mwh, 1) + " MWh" : std::string("–"));
  o += "</tr>\n</tbody></table>\n";
  if (t.goodput < 1) out(o, "<p class=\"note\">Days include goodput losses (goodput {}).</p>\n", pct(t.goodput));
  o += "</section>\n";
}

// (a) step-time breakdown
void breakdown_chart(std::string& o, const RunReport& r) {
  if (r.phases.empty()) return;
  o += "<section id=\"breakdown\">\n<h2>Step-time breakdown</h2>\n"
       "<p class=\"note\">One step at each phase's final batch, mean per GPU; the parts add up to the step "
       "time (parts no phase has are left out).</p>\n";
  // One swatch per part of the breakdown (step::Breakdown::lines(), stable order, names and
  // colours) that some phase has; parts every phase lacks are left out of the chart and table.
  static const char* const kClasses[] = {"s0", "s5", "s1", "s3", "s6", "s7", "s8", "s4", "s2", "s9"};
  std::vector<Swatch> parts;
  std::vector<std::size_t> keep;
  {
    const auto proto = step::Breakdown{}.lines();
    for (std::size_t k = 0; k < proto.size(); ++k) {
      bool any = false;
      for (const auto& p : r.phases) any = any || pos(p.step.breakdown.lines()[k].seconds) > 0;
      if (!any) continue;
      keep.push_back(k);
      parts.push_back({proto[k].label, kClasses[k % 10]});
    }
  }
  auto values = [&](const step::Breakdown& b) {
    std::vector<double> v;
    const auto lines = b.lines();
    for (std::size_t k : keep) v.push_back(pos(lines[k].seconds));
    return v;
  };
  double max = 0;
  for (const auto& p : r.phases) {
    const auto v = values(p.step.breakdown);
    double sum = 0;
    for (double x : v) sum += x;
    max = std::max({max, sum, pos(p.step.step_s)});
  }
  const Ticks t = ticks(max, 8);
  const double X0 = 180, X1 = 880, row = 38, bar = 24, top = 40;
  const double n = static_cast<double>(r.phases.size());
  const double h = top + n * row + 40;
  svg_open(o, "chart-breakdown", h, "Step-time breakdown per phase");
  legend(o, X0, 16, parts);
  x_axis(o, X0, X1, top - 6, top + n * row, t, "seconds per step");
  const double scale = (X1 - X0) / t.top;
  for (std::size_t i = 0; i < r.phases.size(); ++i) {
    const auto& p = r.phases[i];
    const double y = top + static_cast<double>(i) * row + (row - bar) / 2;
    out(o, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\"><title>{}</title>{}</text>\n", X0 - 10, y + bar / 2 + 4,
        esc(p.name), esc(clip(p.name, 24)));
    const auto v = values(p.step.breakdown);
    double sum = 0;
    for (double x : v) sum += x;
    double x = X0;
    for (std::size_t k = 0; k < v.size(); ++k) {
      const double w = v[k] * scale;
      if (w <= 0) continue;
      out(o, "<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.0f}\" class=\"{}\"><title>{}: {} ({})</title></rect>\n",
          x, y, w, bar, parts[k].cls, esc(parts[k].label), secs(v[k]), pct(sum > 0 ? v[k] / sum : 0));
      const std::string lab = fmt::format("{:.2f}", v[k]);
      if (w >= 7.0 * static_cast<double>(lab.size()) + 8)
        out(o, "<text class=\"in\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x + w / 2, y + bar / 2 + 4, lab);
      x += w;
    }
    out(o, "<text class=\"h\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", std::max(x, X0 + pos(p.step.step_s) * scale) + 8,
        y + bar / 2 + 4, secs(p.step.step_s));
  }
  svg_close(o);

  o += "<table>\n<thead><tr><th>Phase</th><th class=\"n\">Step</th>";
  for (const auto& sw : parts) out(o, "<th class=\"n\">{}</th>", esc(sw.label));
  o += "<th class=\"n\">MFU (causal / full)</th><th class=\"n\">Tokens/s/GPU</th></tr></thead>\n<tbody>\n";
  for (const auto& p : r.phases) {
    const auto& s = p.step;
    out(o, "<tr><td>{}</td><td class=\"n\">{}</td>", esc(p.name), secs(s.step_s));
    const auto lines = s.breakdown.lines();
    for (std::size_t k : keep) out(o, "<td class=\"n\">{}</td>", secs(lines[k].seconds));
    out(o, "<td class=\"n\">{} / {}</td><td class=\"n\">{}</td></tr>\n", pct(s.mfu_causal), pct(s.mfu_full),
        num(s.tokens_per_s_per_gpu, 0));
  }
  o += "</tbody></table>\n</section>\n";
}

// The exposed communication of each phase's step by kind (the breakdown's exposed_* parts:
// tensor-, expert-, context-, pipeline- and data-parallel), with its share of the step.
void communication_section(std::string& o, const RunReport& r) {
  if (r.phases.empty()) return;
  std::vector<std::size_t> cols;
  const auto proto = step::Breakdown{}.lines();
  for (std::size_t k = 0; k < proto.size(); ++k)
    if (std::string_view(proto[k].name).starts_with("exposed_")) cols.push_back(k);
  o += "<section id=\"communication\">\n<h2>Exposed communication by kind</h2>\n"
       "<p class=\"note\">Communication not hidden behind compute, mean per GPU per step, by the parallelism it serves; "
       "the share is of the step time.</p>\n<table>\n<thead><tr><th>Phase</th>";
  for (std::size_t k : cols) out(o, "<th class=\"n\">{}</th>", esc(proto[k].label));
  o += "<th class=\"n\">All exposed</th></tr></thead>\n<tbody>\n";
  for (const auto& p : r.phases) {
    const auto lines = p.step.breakdown.lines();
    const double st = p.step.step_s;
    out(o, "<tr><td>{}</td>", esc(p.name));
    double sum = 0;
    for (std::size_t k : cols) {
      sum += pos(lines[k].seconds);
      out(o, "<td class=\"n\">{}<br><span class=\"sub\">{}</span></td>", secs(lines[k].seconds),
          pct(st > 0 ? lines[k].seconds / st : 0));
    }
    out(o, "<td class=\"n\">{}<br><span class=\"sub\">{}</span></td></tr>\n", secs(sum), pct(st > 0 ? sum / st : 0));
  }
  o += "</tbody></table>\n</section>\n";
}

// Horizontal bars for one quantity, in a panel [x, x + w) of an SVG.
struct Bar {
  std::string label;
  double value = 0;
  std::string text;    // value label
  bool hatched = false;
};
void bar_panel(std::string& o, double x, double w, double top, double row, const std::string& title,
               const std::string& cls, const std::vector<Bar>& bars, double label_w) {
  double max = 0;
  for (const auto& b : bars) max = std::max(max, pos(b.value));
  const double X0 = x + label_w, X1 = x + w - 70;
  const double scale = max > 0 ? (X1 - X0) / max : 0;
  const double bar = std::min(22.0, row * 0.66);
  out(o, "<text class=\"h\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", x, top - 12, esc(title));
  out(o, "<line class=\"ax\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>\n", X0, top - 4,
      top + static_cast<double>(bars.size()) * row + 2);
  const std::size_t chars = static_cast<std::size_t>(std::max(4.0, (label_w - 10) / 7));
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    const double y = top + static_cast<double>(i) * row + (row - bar) / 2;
    const double bw = std::max(pos(b.value) * scale, b.value > 0 ? 1.0 : 0.0);
    out(o, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\"><title>{}</title>{}</text>\n", X0 - 8, y + bar / 2 + 4,
        esc(b.label), esc(clip(b.label, chars)));
    out(o, "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" class=\"{}\"><title>{}: {}</title></rect>\n",
        X0, y, bw, bar, cls, esc(b.label), esc(b.text));
    if (b.hatched)
      out(o, "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" class=\"rp\"/>\n", X0, y, bw, bar);
    out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", X0 + bw + 6, y + bar / 2 + 4, esc(b.text));
  }
}

// (b) GPU-hours and cost per phase
void cost_chart(std::string& o, const RunReport& r) {
  if (r.phases.empty()) return;
  o += "<section id=\"cost\">\n<h2>GPU-hours and cost by phase</h2>\n";
  std::vector<Bar> hours, cost;
  for (const auto& p : r.phases) {
    hours.push_back({p.name, p.result.gpu_hours, hrs(p.result.gpu_hours), false});
    cost.push_back({p.name, p.result.cost_usd, usd(p.result.cost_usd), false});
  }
  const double row = 34, top = 34;
  const double h = top + static_cast<double>(r.phases.size()) * row + 12;
  svg_open(o, "chart-cost", h, "GPU-hours and cost per phase");
  bar_panel(o, 0, 495, top, row, "GPU-hours", "b0", hours, 150);
  bar_panel(o, 505, 495, top, row, "Cost (USD)", "b2", cost, 150);
  svg_close(o);
  o += "</section>\n";
}

// (c) one step's pipeline timeline, phase 0
void timeline_chart(std::string& o, const RunReport& r) {
  o += "<section id=\"timeline\">\n<h2>Pipeline timeline: one step</h2>\n";
  if (r.phases.empty() || !r.phases[0].step.pipeline || r.phases[0].step.pipeline->replay.ops.empty()) {
    o += "<p class=\"note\">No pipeline replay is available for this run.</p>\n</section>\n";
    return;
  }
  const auto& ph = r.phases[0];
  const auto& res = *ph.step.pipeline;
  const auto& rep = res.replay;
  double makespan = rep.makespan.seconds();
  for (const auto& ops : rep.ops)
    for (const auto& ot : ops) makespan = std::max(makespan, ot.end.seconds());
  out(o, "<p class=\"note\">Phase “{}”: schedule <b>{}</b>, {} pipeline ranks, {} micro-batches; makespan {}. "
         "Pipeline bubble {} of the step (schedule bubble and stage imbalance, as in the breakdown). One rect per op "
         "(hover for its name and times); runs of ops narrower than half a pixel are merged and drawn as stacked bands "
         "of their kinds.</p>\n",
      esc(ph.name), esc(res.schedule.kind), rep.ops.size(), res.schedule.params.microbatches, secs(makespan),
      pct(ph.step.bubble_fraction));

  // Time unit for the axis.
  double unit = 1;
  std::string uname = "s";
  if (makespan < 1e-3) { unit = 1e-6; uname = "µs"; }
  else if (makespan < 1) { unit = 1e-3; uname = "ms"; }
  const Ticks t = ticks(makespan / unit, 10);

  const double n = static_cast<double>(rep.ops.size());
  const double row = std::clamp(440.0 / n, 9.0, 24.0), bar = std::max(6.0, row - 4);
  const double X0 = 70, X1 = 980, top = 40;
  const double h = top + n * row + 40;
  svg_open(o, "chart-timeline", h, "Pipeline timeline of one step");
  legend(o, X0, 16, {{"F  forward", "kF"}, {"B  backward", "kB"}, {"I  backward (input)", "kI"},
                     {"W  backward (weights)", "kW"}, {"F&B  overlapped pair", "kX"}});
  out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"16\" text-anchor=\"end\">lighter: odd chunk</text>\n", X1);
  x_axis(o, X0, X1, top - 4, top + n * row, t, "time (" + uname + ")");
  const double scale = (X1 - X0) / (t.top * unit);  // px per second

  static constexpr const char* kCls[] = {"kF", "kB", "kI", "kW", "kX"};
  static constexpr const char* kNames[] = {"F", "B", "I", "W", "F&amp;B"};
  constexpr double kGroupPx = 6;  // a run of merged ops is cut every few pixels
  struct Run {
    double x0 = 0, x1 = 0;
    std::array<double, 5> kind_s{};
    int count = 0;
    int kind = 0;
    bool alt = false;
    std::string title;
  };
  o += "<g>\n";
  for (std::size_t rk = 0; rk < rep.ops.size(); ++rk) {
    const double y = top + static_cast<double>(rk) * row;
    const double yb = y + (row - bar) / 2;
    out(o, "<rect class=\"band\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"/>"
           "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">rank {}</text>\n",
        X0, yb, X1 - X0, bar, X0 - 8, y + row / 2 + 4, rk);
    std::vector<graph::OpTiming> ops = rep.ops[rk];
    std::stable_sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
    std::optional<Run> pend;
    auto flush = [&] {
      if (!pend) return;
      const double w = pend->x1 - pend->x0;
      if (pend->count == 1) {
        const std::string cls = std::string(kCls[pend->kind]) + (pend->alt ? " a" : "");
        const double dw = w >= 3 ? w - 0.8 : std::max(w, 0.5);  // a hairline gap between wide ops
        out(o, "<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" class=\"{}\"><title>rank {} {}</title></rect>\n",
            pend->x0, yb, dw, bar, cls, rk, pend->title);
      } else {
        // Merged ops: one band per kind, its height the kind's share of the busy time.
        double total = 0;
        for (double v : pend->kind_s) total += v;
        std::string shares;
        for (std::size_t k = 0; k < 5; ++k)
          if (pend->kind_s[k] > 0) shares += fmt::format("{}{} {:.0f}%", shares.empty() ? "" : ", ", kNames[k], pend->kind_s[k] / total * 100);
        out(o, "<g><title>rank {}: {} ops merged ({})</title>", rk, pend->count, shares);
        double yy = yb;
        for (std::size_t k = 0; k < 5; ++k) {
          if (pend->kind_s[k] <= 0) continue;
          const double hh = bar * pend->kind_s[k] / total;
          out(o, "<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" class=\"{}\"/>", pend->x0, yy,
              std::max(w, 0.5), hh, kCls[k]);
          yy += hh;
        }
        o += "</g>\n";
      }
      pend.reset();
    };
    for (const auto& ot : ops) {
      const double s0 = ot.start.seconds(), s1 = ot.end.seconds();
      const double x0 = X0 + s0 * scale, x1 = X0 + s1 * scale;
      const int kind = static_cast<int>(ot.op.kind);
      const bool narrow = x1 - x0 < 0.5;
      const bool pend_narrow = pend && (pend->count > 1 || pend->x1 - pend->x0 < 0.5) && pend->x1 - pend->x0 < kGroupPx;
      if (narrow && pend_narrow && x0 - pend->x1 < 0.5) {
        pend->x1 = std::max(pend->x1, x1);
        pend->kind_s[static_cast<std::size_t>(kind)] += s1 - s0;
        ++pend->count;
        continue;
      }
      flush();
      Run run;
      run.x0 = x0;
      run.x1 = x1;
      run.kind_s[static_cast<std::size_t>(kind)] = s1 - s0;
      run.count = 1;
      run.kind = kind;
      run.alt = ot.op.chunk % 2 == 1;
      run.title = fmt::format("{}: {:.3f}–{:.3f} {}", esc(graph::to_string(ot.op)), s0 / unit, s1 / unit, uname);
      pend = std::move(run);
    }
    flush();
  }
  o += "</g>\n";
  svg_close(o);
  o += "</section>\n";
}

// (d) hardware comparison
void hardware_section(std::string& o, const RunReport& r) {
  if (r.hardware.empty()) return;
  o += "<section id=\"hardware\">\n<h2>Hardware comparison</h2>\n"
       "<table>\n<thead><tr><th>GPU</th><th>Plan</th><th class=\"n\">Step time</th><th class=\"n\">GPU-hours</th>"
       "<th class=\"n\">Days</th><th class=\"n\">Cost</th><th class=\"n\">MFU</th><th>Bottleneck</th></tr></thead>\n<tbody>\n";
  bool any_replanned = false;
  for (const auto& h : r.hardware) {
    any_replanned = any_replanned || h.replanned;
    if (!h.fits) {
      out(o, "<tr><td>{}{}</td><td><span class=\"mono\">{}</span></td><td colspan=\"6\"><span class=\"fit-bad\">does not "
             "fit</span>: {}</td></tr>\n",
          esc(h.gpu), h.replanned ? " <span class=\"tag\">re-planned</span>" : "", esc(h.plan), esc(h.fit_note));
      continue;
    }
    out(o, "<tr><td>{}{}</td><td><span class=\"mono\">{}</span>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1f}</td>"
           "<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
        esc(h.gpu), h.replanned ? " <span class=\"tag\">re-planned</span>" : "", esc(h.plan),
        h.replan_note.empty() ? std::string() : "<br><span class=\"sub\">" + esc(h.replan_note) + "</span>", secs(h.step_s),
        hrs(h.gpu_hours), h.days, usd(h.cost_usd), pct(h.mfu), esc(h.bottleneck));
  }
  o += "</tbody></table>\n";
  // Where each GPU's costs come from (compare fills the provenance rows).
  bool any_prov = false;
  for (const auto& h : r.hardware) any_prov = any_prov || !h.provenance.empty() || !h.setup.empty();
  if (any_prov) {
    o += "<h3>Cost provenance per GPU</h3>\n<table>\n<thead><tr><th>GPU</th><th>Class</th><th>Source</th><th>Basis</th>"
         "<th class=\"n\">Held-out RMS</th></tr></thead>\n<tbody>\n";
    for (const auto& h : r.hardware) {
      for (const auto& s : h.setup) out(o, "<tr><td>{}</td><td colspan=\"4\">{}</td></tr>\n", esc(h.gpu), esc(s));
      for (const auto& c : h.provenance)
        out(o, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>\n", esc(h.gpu), esc(c.cls),
            calibration::cost_source_name(c.source), esc(c.basis),
            c.heldout_rms >= 0 ? fmt::format("{:.1f}%", 100 * c.heldout_rms) : std::string("-"));
    }
    o += "</tbody></table>\n";
  }
  std::vector<Bar> step, hours, cost;
  for (const auto& h : r.hardware) {
    if (!h.fits) continue;  // not priced
    const std::string label = h.gpu + (h.replanned ? " *" : "");
    step.push_back({label, h.step_s, secs(h.step_s), h.replanned});
    hours.push_back({label, h.gpu_hours, si(h.gpu_hours), h.replanned});
    cost.push_back({label, h.cost_usd, usd(h.cost_usd), h.replanned});
  }
  if (step.empty()) {
    o += "</section>\n";
    return;
  }
  const double row = 30, top = 34;
  const double h = top + static_cast<double>(step.size()) * row + (any_replanned ? 30 : 10);
  svg_open(o, "chart-hardware", h, "Step time, GPU-hours and cost per GPU type");
  o += "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
       "<rect width=\"3\" height=\"6\" fill=\"#ffffff\" fill-opacity=\"0.45\"/></pattern></defs>\n";
  bar_panel(o, 0, 330, top, row, "Step time", "b0", step, 95);
  bar_panel(o, 335, 330, top, row, "GPU-hours", "b1", hours, 95);
  bar_panel(o, 670, 330, top, row, "Cost", "b2", cost, 95);
  if (any_replanned)
    out(o, "<text class=\"m\" x=\"0\" y=\"{:.1f}\">* hatched: re-planned, the scenario's plan does not fit this GPU</text>\n",
        h - 8);
  svg_close(o);
  o += "</section>\n";
}

void memory_section(std::string& o, const RunReport& r) {
  // The phase closest to (or furthest over) the capacity; the report's phase-0 memory without phases.
  const MemoryReport* mp = &r.memory;
  std::string which;
  for (const auto& p : r.phases)
    if (!p.memory.ranks.empty() && (which.empty() || p.memory.peak - p.memory.capacity > mp->peak - mp->capacity)) {
      mp = &p.memory;
      which = p.name;
    }
  const auto& m = *mp;
  if (m.ranks.empty()) return;
  o += "<section id=\"memory\">\n<h2>Memory per GPU</h2>\n";
  out(o, "<p class=\"note\">{}Peak {:.1f} GiB of {:.1f} GiB HBM: <span class=\"{}\">{}</span>. One bar per pipeline rank.</p>\n",
      r.phases.size() > 1 ? fmt::format("Phase “{}” (the fullest). ", esc(which)) : std::string(), m.peak / kGiB,
      m.capacity / kGiB, m.fits ? "fit-ok" : "fit-bad", m.fits ? "fits" : "does not fit");
  const std::vector<Swatch> parts = {{"Weights", "m0"}, {"Gradients", "m1"}, {"Optimizer", "m2"}, {"Activations", "m3"},
                                     {"Buffers", "m4"}};
  double max = pos(m.capacity);
  for (const auto& s : m.ranks) max = std::max(max, pos(s.total()));
  const Ticks t = ticks(max / kGiB, 6);
  const double X0 = 60, X1 = 960, top = 40, H = 220;
  const double y0 = top + H;  // baseline
  const double h = y0 + 40;
  svg_open(o, "chart-memory", h, "Memory per pipeline rank against HBM capacity");
  legend(o, X0, 16, parts);
  const double scale = H / t.top;  // px per GiB
  for (double v = 0; v <= t.top + t.step * 1e-6; v += t.step) {
    const double y = y0 - v * scale;
    out(o, "<line class=\"g\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\"/>"
           "<text class=\"m\" x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        X0, y, X1, X0 - 6, y + 4, tick_label(v, t.step));
  }
  out(o, "<text class=\"m\" transform=\"translate(14 {:.1f}) rotate(-90)\" text-anchor=\"middle\">GiB</text>\n", top + H / 2);
  const double n = static_cast<double>(m.ranks.size());
  const double slot = (X1 - X0) / n;
  const double bw = std::max(1.0, std::min(48.0, slot * 0.7));
  const std::size_t every = static_cast<std::size_t>(std::max(1.0, std::ceil(28.0 / slot)));
  for (std::size_t i = 0; i < m.ranks.size(); ++i) {
    const auto& s = m.ranks[i];
    const std::array<double, 5> v = {pos(s.weights), pos(s.gradients), pos(s.optimizer), pos(s.activations), pos(s.buffers)};
    const double x = X0 + (static_cast<double>(i) + 0.5) * slot - bw / 2;
    double y = y0;
    for (std::size_t k = 0; k < v.size(); ++k) {
      const double hh = v[k] / kGiB * scale;
      if (hh <= 0) continue;
      y -= hh;
      out(o, "<rect x=\"{:.1f}\" y=\"{:.2f}\" width=\"{:.1f}\" height=\"{:.2f}\" class=\"{}\"><title>rank {} {}: {:.2f} GiB</title></rect>\n",
          x, y, bw, hh, parts[k].cls, s.rank, parts[k].label, v[k] / kGiB);
    }
    if (bw >= 24)
      out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:.1f}</text>\n", x + bw / 2, y - 4, s.total() / kGiB);
    if (i % every == 0)
      out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x + bw / 2, y0 + 14, s.rank);
  }
  out(o, "<line class=\"ax\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\"/>\n", X0, y0, X1);
  out(o, "<text class=\"m\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">pipeline rank</text>\n", (X0 + X1) / 2, y0 + 30);
  if (m.capacity > 0) {
    const double yc = y0 - m.capacity / kGiB * scale;
    out(o, "<line class=\"cap\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\"/>"
           "<text class=\"capt\" x=\"{2:.1f}\" y=\"{3:.1f}\" text-anchor=\"end\">capacity {4:.0f} GiB</text>\n",
        X0, yc, X1, yc - 5, m.capacity / kGiB);
  }
  svg_close(o);
  o += "</section>\n";
}

void sources_section(std::string& o, const RunReport& r) {
  if (!r.priced) return;
  o += "<section id=\"sources\">\n<h2>Where the op costs come from</h2>\n";
  if (!r.cost_model.empty()) out(o, "<p class=\"note\">{}</p>\n", esc(r.cost_model));
  // One row per op class, counted over every phase's step: its sources and its bases (a basis
  // that differs only in the SMs it ran on, as inside an F&B pair, is one basis).
  struct ClassRow {
    std::map<std::string, long> sources, bases;
    long n = 0;
  };
  std::map<std::string, ClassRow> rows;
  static const std::regex sms(R"(, \d+ SMs)");
  for (const auto& p : r.phases)
    for (const auto& [k, n] : p.step.costs.by_class) {
      ClassRow& row = rows[std::get<0>(k)];
      row.sources[std::get<1>(k)] += n;
      row.bases[std::regex_replace(std::get<2>(k), sms, "")] += n;
      row.n += n;
    }
  if (!rows.empty()) {
    o += "<table id=\"op-costs\">\n<thead><tr><th>Op class</th><th>Source</th><th>Basis</th><th class=\"n\">Op costs</th></tr></thead>\n<tbody>\n";
    auto cell = [](const std::map<std::string, long>& m, const char* sep) {
      std::string c;
      for (const auto& [k, n] : m)
        c += (c.empty() ? "" : sep) + esc(k) + (m.size() > 1 ? fmt::format(" ({})", num(static_cast<double>(n), 0)) : "");
      return c;
    };
    for (const auto& [cls, row] : rows)
      out(o, "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td></tr>\n", esc(cls),
          cell(row.sources, ", "), cell(row.bases, "<br>"), num(static_cast<double>(row.n), 0));
    o += "</tbody></table>\n";
  } else if (!r.phases.empty()) {
    // Reports built without per-class counts: the totals.
    long m = 0, f = 0, t = 0;
    std::set<std::string> bases;
    for (const auto& p : r.phases) {
      m += p.step.costs.measured;
      f += p.step.costs.fitted;
      t += p.step.costs.transferred;
      bases.insert(p.step.costs.bases.begin(), p.step.costs.bases.end());
    }
    std::string b;
    for (const auto& x : bases) b += (b.empty() ? "" : ", ") + esc(x);
    o += "<table id=\"op-costs\">\n<thead><tr><th>Source</th><th>Bases</th><th class=\"n\">Op costs</th></tr></thead>\n<tbody>\n";
    out(o, "<tr><td>measured</td><td class=\"mono\" rowspan=\"3\">{}</td><td class=\"n\">{}</td></tr>\n"
           "<tr><td>fitted</td><td class=\"n\">{}</td></tr>\n<tr><td>transferred</td><td class=\"n\">{}</td></tr>\n",
        b.empty() ? std::string("–") : b, m, f, t);
    o += "</tbody></table>\n";
  }
  o += "<p class=\"note\">Op costs by source: measured on the GPU, fitted from measurements, or transferred from "
       "another GPU by the ratio of peak rates; counted over one step of every phase (an op is costed once on all SMs and "
       "once on the SMs communication leaves it).</p>\n</section>\n";
}

void assumptions_section(std::string& o, const RunReport& r) {
  std::vector<std::string> notes;
  std::set<std::string> seen;
  auto add = [&](const std::string& s) {
    if (!s.empty() && seen.insert(s).second) notes.push_back(s);
  };
  for (const auto& s : r.notes) add(s);
  for (const auto& p : r.phases)
    for (const auto& s : p.step.notes) add(s);
  if (r.assumptions.empty() && notes.empty()) return;
  o += "<section id=\"assumptions\">\n<h2>Assumptions and notes</h2>\n";
  if (!r.assumptions.empty()) {
    o += "<table>\n<thead><tr><th>Assumption</th><th>Value</th></tr></thead>\n<tbody>\n";
    for (const auto& [k, v] : r.assumptions) out(o, "<tr><td>{}</td><td>{}</td></tr>\n", esc(k), esc(v));
    o += "</tbody></table>\n";
  }
  if (!notes.empty()) {
    o += "<ul>\n";
    for (const auto& s : notes) out(o, "<li>{}</li>\n", esc(s));
    o += "</ul>\n";
  }
  o += "</section>\n";
}

}  // namespace

std::string run_html(const RunReport& r) {
  std::string o;
  o.reserve(64 * 1024);
  o += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<meta name=\"generator\" content=\"trainsim " TRAINSIM_VERSION "\">\n";
  out(o, "<title>{} · trainsim report</title>\n", esc(r.scenario.empty() ? std::string("Run") : r.title()));
  o += "<style>";
  o += kCss;
  o += "</style>\n</head>\n<body>\n<main>\n";
  header(o, r);
  comparisons(o, r);
  baseline_section(o, r);
  phase_table(o, r);
  if (r.priced) {
    breakdown_chart(o, r);
    communication_section(o, r);
    cost_chart(o, r);
    timeline_chart(o, r);
  }
  hardware_section(o, r);
  memory_section(o, r);
  sources_section(o, r);
  assumptions_section(o, r);
  o += "<footer>Generated by trainsim " TRAINSIM_VERSION
       ". Self-contained: no scripts, fonts or images are loaded.</footer>\n</main>\n</body>\n</html>\n";
  return o;
}

}  // namespace trainsim
