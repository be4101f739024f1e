// report.html without a browser: well-formed (tags nest), self-contained (no scripts, no
// external resources), every chart present, every text escaped, deterministic, small.
#include <catch2/catch.hpp>

#include <cctype>
#include <limits>
#include <string>
#include <vector>

#include "report/run_report.hpp"
#include "report_html_fixture.hpp"

using namespace trainsim;

namespace {

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

bool is_void(const std::string& name) { return name == "meta" || name == "br" || name == "hr" || name == "img" || name == "link"; }

// Checks that the tags nest: every start tag is closed by a matching end tag in order (void
// elements and self-closing SVG elements excepted), the <style> content is skipped. Returns ""
// or a description of the first problem.
std::string check_nesting(const std::string& html) {
  std::vector<std::string> stack;
  std::size_t p = 0;
  while ((p = html.find('<', p)) != std::string::npos) {
    if (html.compare(p, 4, "<!--") == 0) {
      p = html.find("-->", p);
      if (p == std::string::npos) return "unterminated comment";
      continue;
    }
    if (html.compare(p, 2, "<!") == 0) {  // doctype
      p = html.find('>', p);
      continue;
    }
    const auto end = html.find('>', p);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(p);
    const std::string tag = html.substr(p + 1, end - p - 1);
    p = end + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty()) return "</" + name + "> closes nothing";
      if (stack.back() != name) return "</" + name + "> closes <" + stack.back() + ">";
      stack.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0]))) return "bad tag <" + tag + ">";
    if (tag.back() == '/' || is_void(name)) continue;
    if (name == "style") {  // raw text
      p = html.find("</style>", p);
      if (p == std::string::npos) return "unterminated <style>";
      p += 8;
      continue;
    }
    stack.push_back(name);
  }
  if (!stack.empty()) return "<" + stack.back() + "> is never closed";
  return "";
}

}  // namespace

TEST_CASE("run_html: a well-formed, self-contained page with every chart") {
  const RunReport r = ts_test::synthetic_report();
  const std::string html = run_html(r);
  CHECK(html.starts_with("<!DOCTYPE html>"));
  CHECK(html.find("<html lang=\"en\">") != std::string::npos);
  CHECK(html.find("<title>Synthetic MoE run") != std::string::npos);
  CHECK(html.find("<meta charset=\"utf-8\">") != std::string::npos);
  CHECK(check_nesting(html) == "");
  CHECK(count(html, "<svg") == count(html, "</svg>"));
  for (const char* id : {"chart-breakdown", "chart-cost", "chart-timeline", "chart-hardware", "chart-memory"}) {
    INFO(id);
    CHECK(count(html, std::string("<svg id=\"") + id + "\"") == 1);
  }
  // Self-contained: nothing to fetch, nothing to run.
  for (const char* bad : {"http://", "https://", "//cdn", "src=", "<link", "@import", "<script", "<img", "@font-face"}) {
    INFO(bad);
    CHECK(html.find(bad) == std::string::npos);
  }
  for (std::size_t p = html.find("url("); p != std::string::npos; p = html.find("url(", p + 4)) {
    CHECK(html.compare(p, 5, "url(#") == 0);  // only in-document references (the hatch pattern)
  }
  // Content.
  CHECK(html.find("pre-training") != std::string::npos);
  CHECK(html.find("long context") != std::string::npos);
  CHECK(html.find("Synthetic paper, Table 1") != std::string::npos);
  CHECK(html.find("re-planned") != std::string::npos);
  CHECK(html.find("the original plan needs 91 GiB per GPU") != std::string::npos);
  CHECK(html.find("capacity 80 GiB") != std::string::npos);
  CHECK(html.find("h800/flashmla") != std::string::npos);
  CHECK(html.find("linear in tokens") != std::string::npos);
  CHECK(html.find("Energy assumes PUE 1.2.") != std::string::npos);
  CHECK(count(html, "DP collectives are not overlapped") == 1);  // notes of both phases, once
  CHECK(html.find("H800 × 256") != std::string::npos);
  CHECK(html.find("$2.00 per GPU-hour") != std::string::npos);
  // The gaps, coloured: pre-training GPU-hours 4.7% under (green), the step time 17.7% over (amber).
  CHECK(html.find("gap-ok\">-4.7%") != std::string::npos);
  CHECK(html.find("+17.7%") != std::string::npos);
  CHECK(html.find("gap-warn\">+17.7%") != std::string::npos);
  // The timeline has one rect per op of the 1F1B replay (16 ops per rank, all wide enough).
  const auto t0 = html.find("<svg id=\"chart-timeline\"");
  const std::string timeline = html.substr(t0, html.find("</svg>", t0) - t0);
  CHECK(count(timeline, "class=\"kF\"><title>rank") == 4 * 8);
  CHECK(count(timeline, "class=\"kB\"><title>rank") == 4 * 8);
  CHECK(timeline.find("F0:3") != std::string::npos);
}

TEST_CASE("run_html: every text is escaped") {
  const std::string evil = "<script>alert(\"x\")</script> & 'co'";
  RunReport r = ts_test::synthetic_report(evil);
  r.description = evil;
  r.model = evil;
  r.gpu = evil;
  r.scenario_file = evil;
  r.cost_model = evil;
  r.reference_source = evil;
  r.phases[0].name = evil;
  r.phases[1].kind = evil;
  r.phases[0].plan = evil;
  r.phases[0].step.costs.bases = {evil};
  r.phases[1].step.notes = {evil};
  r.comparisons[0].what = evil;
  r.hardware[1].gpu = evil;
  r.hardware[1].plan = evil;
  r.hardware[1].replan_note = evil;
  r.hardware[1].bottleneck = evil;
  r.assumptions[evil] = evil;
  r.notes.push_back(evil);
  const std::string html = run_html(r);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("alert(\"x\")") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;") != std::string::npos);
  CHECK(html.find("<title>&lt;script&gt;") != std::string::npos);
  CHECK(check_nesting(html) == "");
}

TEST_CASE("run_html: deterministic bytes") {
  CHECK(run_html(ts_test::synthetic_report()) == run_html(ts_test::synthetic_report()));
}

TEST_CASE("run_html: optional parts are left out, an empty report still renders") {
  RunReport r = ts_test::synthetic_report();
  r.hardware.clear();
  r.comparisons.clear();
  r.phases[0].step.pipeline.reset();
  const std::string html = run_html(r);
  CHECK(html.find("chart-hardware") == std::string::npos);
  CHECK(html.find("id=\"comparison\"") == std::string::npos);
  CHECK(html.find("chart-timeline") == std::string::npos);
  CHECK(html.find("No pipeline replay") != std::string::npos);
  CHECK(check_nesting(html) == "");

  const std::string empty = run_html(RunReport{});
  CHECK(check_nesting(empty) == "");
  CHECK(empty.find("n/a") == std::string::npos);
  CHECK(empty.find("nan") == std::string::npos);
}

TEST_CASE("run_html: a DeepSeek-sized replay stays small; sub-pixel ops are merged") {
  // DualPipe over 16 ranks with 200 micro-batches: about 250 ops per rank (the brief: DeepSeek-V3).
  const RunReport big = ts_test::synthetic_report("big", "dualpipe", 16, 200);
  std::size_t ops = 0;
  for (const auto& rank : big.phases[0].step.pipeline->replay.ops) ops += rank.size();
  CHECK(ops > 16 * 200);
  const std::string html = run_html(big);
  CHECK(html.size() < 1'500'000);
  CHECK(check_nesting(html) == "");

  // 1F1B over 2 ranks with 3000 micro-batches: 6000 ops per rank, each far below a pixel.
  const RunReport tiny = ts_test::synthetic_report("tiny", "1f1b", 2, 3000);
  const std::string h2 = run_html(tiny);
  const auto t0 = h2.find("<svg id=\"chart-timeline\"");
  const std::string timeline = h2.substr(t0, h2.find("</svg>", t0) - t0);
  // Runs of merged ops are cut every 6 px: at most ~150 runs per rank, one band per kind.
  CHECK(count(timeline, "ops merged") > 100);
  CHECK(count(timeline, "<rect") < 1000);
  CHECK(h2.size() < 200'000);
}

TEST_CASE("run_html: non-finite numbers do not leak into the page") {
  RunReport r = ts_test::synthetic_report();
  r.phases[1].step.step_s = std::numeric_limits<double>::quiet_NaN();
  r.phases[1].step.breakdown.compute_s = std::numeric_limits<double>::infinity();
  r.comparisons[1].published = 0;
  const std::string html = run_html(r);
  CHECK(check_nesting(html) == "");
  CHECK(html.find("nan") == std::string::npos);
  CHECK(html.find("inf\"") == std::string::npos);
  CHECK(html.find("=\"-nan") == std::string::npos);
}

// Issue 12, point 7: banners, what-ifs, an unpriced plan, op costs by class, communication by kind.
TEST_CASE("run_html: banners for feasibility and provenance come before every section") {
  RunReport r = ts_test::synthetic_report();
  r.provenance.command = "trainsim run scenarios/synthetic.toml";
  r.provenance.version = "0.1.0";
  r.provenance.commit = "0123456789ab";
  r.provenance.date = "2025-06-01T12:00:00Z";
  const std::string html = run_html(r);
  const auto feas = html.find("id=\"callout-feasibility\"");
  const auto prov = html.find("id=\"callout-origin\"");
  REQUIRE(feas != std::string::npos);
  REQUIRE(prov != std::string::npos);
  CHECK(feas < html.find("<section"));
  CHECK(prov < html.find("<section"));
  CHECK(html.find("Fits GPU memory", feas) < prov);
  CHECK(html.find("trainsim run scenarios/synthetic.toml", prov) != std::string::npos);
  CHECK(html.find("0123456789ab", prov) != std::string::npos);
  CHECK(html.find("2025-06-01T12:00:00Z", prov) != std::string::npos);
  CHECK(html.find("Overrides</b> none") != std::string::npos);
  CHECK(html.find("id=\"callout-whatif\"") == std::string::npos);
  // Energy and tokens/s among the headline figures: 3120 tokens/s/GPU x 256 GPUs = 798.7K.
  CHECK(html.find("<span class=\"k\">Tokens/s</span><div class=\"v\">798.7K</div>") != std::string::npos);
  CHECK(html.find("<span class=\"k\">Energy</span>") != std::string::npos);
}

TEST_CASE("run_html: a what-if names its overrides and shows published figures as the baseline's") {
  RunReport r = ts_test::synthetic_report();
  r.provenance.overrides = {"plan.pp=8", "hardware.interconnect.nic=200Gb/s"};
  const std::string html = run_html(r);
  CHECK(html.find("<h1>Synthetic MoE run (what-if: plan.pp=8, hardware.interconnect.nic=200Gb/s)</h1>") != std::string::npos);
  CHECK(html.find("id=\"callout-whatif\"") != std::string::npos);
  CHECK(html.find("<code>--set hardware.interconnect.nic=200Gb/s</code>") != std::string::npos);
  CHECK(html.find("<h2>Baseline published figures</h2>") != std::string::npos);
  CHECK(html.find("gap gap-ok") == std::string::npos);
  CHECK(html.find("gap-neutral\">-4.7%") != std::string::npos);
  CHECK(check_nesting(html) == "");
}

TEST_CASE("run_html: a plan that does not fit is not priced and says where it is short") {
  RunReport r = ts_test::synthetic_report();
  r.priced = false;
  constexpr double GiB = 1073741824.0;
  r.phases[1].memory.ranks[2].activations += 52 * GiB;  // rank 2 of the long-context phase: 51 + 52 = 103 GiB of 80
  r.phases[1].memory.peak = r.phases[1].memory.ranks[2].total();
  r.phases[1].memory.fits = false;
  const std::string html = run_html(r);
  const auto banner = html.find("Does not fit GPU memory.");
  REQUIRE(banner != std::string::npos);
  CHECK(banner < html.find("<section"));
  CHECK(html.find("long context: 103.0 GiB needed on pipeline rank 2 of 80.0 GiB (short by 23.0 GiB)") != std::string::npos);
  for (const char* id : {"chart-breakdown", "chart-cost", "chart-timeline", "id=\"sources\""}) {
    INFO(id);
    CHECK(html.find(id) == std::string::npos);
  }
  CHECK(html.find("not priced") != std::string::npos);
  CHECK(html.find("does not fit</span>") != std::string::npos);  // the phase row
  CHECK(html.find("Phase “long context” (the fullest)") != std::string::npos);
  CHECK(check_nesting(html) == "");
}

TEST_CASE("run_html: op-cost provenance is one row per op class, source and basis") {
  RunReport r = ts_test::synthetic_report();
  r.phases[0].step.costs.by_class = {{{"gemm", "fitted", "h800 fp8 GEMM fit"}, 120},
                                     {{"attention", "measured", "h800/flashmla"}, 30}};
  r.phases[1].step.costs.by_class = {{{"gemm", "fitted", "h800 fp8 GEMM fit"}, 80}};
  const std::string html = run_html(r);
  const auto t0 = html.find("<table id=\"op-costs\">");
  REQUIRE(t0 != std::string::npos);
  const std::string table = html.substr(t0, html.find("</table>", t0) - t0);
  CHECK(count(table, "<tr><td>") == 2);  // two classes, summed over the phases
  CHECK(table.find("<td>gemm</td><td>fitted</td><td class=\"mono\">h800 fp8 GEMM fit</td><td class=\"n\">200</td>") !=
        std::string::npos);
  CHECK(table.find("<td>attention</td><td>measured</td>") != std::string::npos);
  CHECK(count(html, "h800/flashmla") == 1);  // once, not a cell per phase
}

TEST_CASE("run_html: exposed communication by kind, from the breakdown's parts") {
  const RunReport r = ts_test::synthetic_report();
  const std::string html = run_html(r);
  const auto s0 = html.find("<section id=\"communication\">");
  REQUIRE(s0 != std::string::npos);
  const std::string sec = html.substr(s0, html.find("</section>", s0) - s0);
  for (const auto& l : step::Breakdown{}.lines())
    if (std::string_view(l.name).starts_with("exposed_")) {
      INFO(l.name);
      CHECK(sec.find(std::string("<th class=\"n\">") + l.label + "</th>") != std::string::npos);
    }
  // Phase 0 of the fixture: 1.10 s of exposed EP all-to-all in a 12.95 s step (8.5%); EP and DP
  // are its only exposed communication: 2.00 s (15.4%).
  CHECK(sec.find("1.10 s<br><span class=\"sub\">8.5%</span>") != std::string::npos);
  CHECK(sec.find("2.00 s<br><span class=\"sub\">15.4%</span>") != std::string::npos);
  // One bubble figure: the timeline quotes the step's (schedule bubble + imbalance) / step.
  RunReport b = ts_test::synthetic_report();
  b.phases[0].step.bubble_fraction = 0.185;
  CHECK(run_html(b).find("Pipeline bubble 18.5% of the step") != std::string::npos);
}
