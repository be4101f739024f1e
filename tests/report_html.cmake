# HTML report (issue 6, reports): structure and escaping without a browser (quick), and the page
# rendered in headless Chromium (slow: needs Debian's `chromium`; the screenshot is decoded with
# libpng: libpng-dev, a test-only dependency in scripts/install-deps.sh --test).
find_package(PNG REQUIRED)
trainsim_add_test(test_report_html_quick SOURCES test_report_html_quick.cpp LABELS quick)
trainsim_add_test(test_report_html SOURCES test_report_html.cpp LABELS slow)
target_link_libraries(test_report_html PRIVATE PNG::PNG)
