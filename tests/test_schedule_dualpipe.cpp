// DualPipe against the public reference order (shared/reference/dualpipe/order-ppP-mbM.txt),
// op for op, through the library and through `trainsim schedule --order`.
#include <catch2/catch.hpp>

#include <string>

#include "schedule/schedule.hpp"
#include "schedule/schedule_report.hpp"
#include "support.hpp"

namespace {
struct Fixture {
  int pp;
  int mb;
};
std::filesystem::path fixture_path(const Fixture& f) {
  return ts_test::shared_dir() / "reference" / "dualpipe" /
         ("order-pp" + std::to_string(f.pp) + "-mb" + std::to_string(f.mb) + ".txt");
}
}  // namespace

TEST_CASE("DualPipe order matches every reference fixture") {
  const auto f = GENERATE(Fixture{4, 8}, Fixture{4, 12}, Fixture{8, 16}, Fixture{8, 20}, Fixture{16, 32},
                          Fixture{16, 40});
  CAPTURE(f.pp, f.mb);
  if (!std::filesystem::exists(fixture_path(f))) {
    WARN("skipped: no reference fixture " << fixture_path(f).string());
    return;
  }
  const std::string expected = ts_test::read_file(fixture_path(f));
  REQUIRE(!expected.empty());
  const auto s = trainsim::schedule::build("dualpipe", {f.pp, f.mb, 1});
  CHECK(trainsim::schedule::order_text(s) == expected);

  const auto r = ts_test::run_trainsim("schedule --kind dualpipe --pp " + std::to_string(f.pp) + " --microbatches " +
                                       std::to_string(f.mb) + " --order");
  CHECK(r.status == 0);
  CHECK(r.out == expected);
  CHECK(r.err.empty());
}

TEST_CASE("the reference order replays without deadlock with communication delays") {
  const auto f = GENERATE(Fixture{4, 8}, Fixture{8, 20}, Fixture{16, 40});
  trainsim::graph::OpTimes t;  // defaults: F 1, B 2, W 1, F&B 3 us
  const auto r = trainsim::schedule::run("dualpipe", {f.pp, f.mb, 1}, t, trainsim::Time::us(1));
  // Lower bound: each rank is busy at least its own work.
  for (std::size_t i = 0; i < r.replay.busy.size(); ++i) CHECK(r.replay.makespan >= r.replay.busy[i]);
}
