// report.html in a real browser: Debian's headless Chromium opens the page from a file:// URL,
// takes a screenshot, and logs the page's console to stderr.
//
// Console detector. Chromium 156 (Debian 12) with --enable-logging=stderr --v=0 logs every console
// message of the page, whatever its level, as
//   [pid:tid:MMDD/HHMMSS.micros:INFO:CONSOLE:1] "Uncaught Error: x", source: file:///... (1)
// (older releases wrote "INFO:CONSOLE(1)"); console.error() and uncaught exceptions both show up
// as INFO lines, so the detector flags any line containing "CONSOLE" (the report has no script,
// so any console message is unexpected) or "Uncaught". The detector is checked on a page that
// throws.
//
// Not blank: the screenshot is decoded (libpng's simplified API, to 8-bit RGB) and the fraction
// of "ink" pixels (some channel below 200: text, bars, lines; the page's light backgrounds do
// not count) is measured. An empty page, shot the same way, has none; the report must have at
// least 3% (the synthetic report measures about 9% at 1280x2000).
#include <catch2/catch.hpp>

#include <png.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "report/run_report.hpp"
#include "report_html_fixture.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace {

struct Shot {
  int status = -1;
  std::string err;
  fs::path png;
};

bool have_chromium() { return std::system("command -v chromium >/dev/null 2>&1") == 0; }

// Runs headless Chromium on `page` (a file), writing `<name>.png` into `dir`.
Shot screenshot(const fs::path& dir, const std::string& name, const fs::path& page) {
  Shot s;
  s.png = dir / (name + ".png");
  const fs::path profile = dir / ("profile-" + name);
  const fs::path err = dir / (name + ".stderr");
  fs::create_directories(profile);
  const std::string cmd =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--user-data-dir='" + profile.string() + "' --enable-logging=stderr --v=0 "
      "--screenshot='" + s.png.string() + "' --window-size=1280,2000 'file://" + page.string() +
      "' >/dev/null 2>'" + err.string() + "'";
  const int raw = std::system(cmd.c_str());
  s.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  s.err = ts_test::read_file(err);
  return s;
}

// The console lines of Chromium's log (see the header comment).
std::vector<std::string> console_errors(const std::string& log) {
  std::vector<std::string> found;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (line.find("CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos) found.push_back(line);
  return found;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

struct Image {
  std::uint32_t width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // width*height*3
  std::string error;
};

// Decodes a PNG into 8-bit RGB with libpng (any bit depth, colour type or interlacing).
Image decode_png(const std::string& png) {
  Image img;
  png_image pi{};
  pi.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&pi, png.data(), png.size())) {
    img.error = std::string("not a PNG: ") + pi.message;
    return img;
  }
  pi.format = PNG_FORMAT_RGB;
  img.width = pi.width;
  img.height = pi.height;
  img.rgb.resize(PNG_IMAGE_SIZE(pi));
  if (!png_image_finish_read(&pi, nullptr, img.rgb.data(), 0, nullptr)) {
    img.error = std::string("bad PNG: ") + pi.message;
    img.rgb.clear();
  }
  png_image_free(&pi);
  return img;
}

// Fraction of pixels with some channel below 200.
double ink_fraction(const Image& img) {
  std::size_t ink = 0;
  const std::size_t n = static_cast<std::size_t>(img.width) * img.height;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* p = img.rgb.data() + i * 3;
    if (p[0] < 200 || p[1] < 200 || p[2] < 200) ++ink;
  }
  return n ? static_cast<double>(ink) / static_cast<double>(n) : 0.0;
}

}  // namespace

TEST_CASE("report.html renders in headless Chromium without console errors and is not blank") {
  if (!have_chromium())
    FAIL("chromium is not installed: this test opens report.html in Debian's headless Chromium "
         "(apt-get install chromium; scripts/install-deps.sh installs it)");
  const fs::path dir = ts_test::temp_dir("report-html");

  // The detector fires on a page whose script throws.
  ts_test::write_file(dir / "broken.html",
                      "<!DOCTYPE html><html lang=\"en\"><head><title>broken</title></head><body><p>x</p>"
                      "<script>throw new Error(\"x\")</script></body></html>\n");
  const Shot broken = screenshot(dir, "broken", dir / "broken.html");
  INFO("chromium stderr (broken page):\n" << broken.err);
  REQUIRE(broken.status == 0);
  const auto broken_errors = console_errors(broken.err);
  REQUIRE(!broken_errors.empty());
  CHECK(joined(broken_errors).find("Uncaught Error: x") != std::string::npos);

  // An empty page: the reference for "blank".
  ts_test::write_file(dir / "empty.html", "<!DOCTYPE html><html lang=\"en\"><head><title>empty</title></head><body></body></html>\n");
  const Shot empty = screenshot(dir, "empty", dir / "empty.html");
  INFO("chromium stderr (empty page):\n" << empty.err);
  REQUIRE(empty.status == 0);
  CHECK(console_errors(empty.err).empty());
  const std::string empty_png = ts_test::read_file(empty.png);
  const Image blank = decode_png(empty_png);
  REQUIRE(blank.error == "");
  CHECK(blank.width == 1280);
  CHECK(blank.height == 2000);
  CHECK(ink_fraction(blank) < 0.001);

  // The report.
  ts_test::write_file(dir / "report.html", trainsim::run_html(ts_test::synthetic_report()));
  const Shot shot = screenshot(dir, "report", dir / "report.html");
  INFO("chromium stderr (report):\n" << shot.err);
  REQUIRE(shot.status == 0);
  CHECK(joined(console_errors(shot.err)) == "");
  const std::string png = ts_test::read_file(shot.png);
  CHECK(png.size() > 3 * empty_png.size());
  const Image img = decode_png(png);
  REQUIRE(img.error == "");
  CHECK(img.width == 1280);
  CHECK(img.height == 2000);
  const double ink = ink_fraction(img);
  INFO("ink fraction " << ink);
  CHECK(ink > 0.03);

  // A what-if whose plan does not fit (issue 12): banners, no charts; it renders cleanly too.
  trainsim::RunReport w = ts_test::synthetic_report();
  w.provenance.overrides = {"plan.pp=8"};
  w.provenance.command = "trainsim run scenarios/synthetic.toml --set plan.pp=8";
  w.priced = false;
  w.phases[1].memory.ranks[0].activations *= 4;
  w.phases[1].memory.peak = w.phases[1].memory.ranks[0].total();
  w.phases[1].memory.fits = false;
  ts_test::write_file(dir / "whatif.html", trainsim::run_html(w));
  const Shot ws = screenshot(dir, "whatif", dir / "whatif.html");
  INFO("chromium stderr (what-if):\n" << ws.err);
  REQUIRE(ws.status == 0);
  CHECK(joined(console_errors(ws.err)) == "");
  const Image wimg = decode_png(ts_test::read_file(ws.png));
  REQUIRE(wimg.error == "");
  CHECK(ink_fraction(wimg) > 0.01);

  // Keep the screenshot for a look when TRAINSIM_KEEP_SCREENSHOT names a file.
  if (const char* keep = std::getenv("TRAINSIM_KEEP_SCREENSHOT")) fs::copy_file(shot.png, keep, fs::copy_options::overwrite_existing);
  fs::remove_all(dir);
}
