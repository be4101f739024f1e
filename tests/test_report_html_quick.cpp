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
