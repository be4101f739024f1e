// The discrete-event engine and its resources (sim/engine).
#include <catch2/catch.hpp>

#include <vector>

#include "core/error.hpp"
#include "engine/engine.hpp"
#include "engine/resource.hpp"
#include "schedule/overlap.hpp"

using trainsim::Time;
using trainsim::engine::Simulation;

namespace {
struct Log {
  std::vector<std::uint64_t> ids;
  std::vector<Time> times;
};
void record(Simulation& sim, void* ctx, std::uint64_t arg) {
  auto& log = *static_cast<Log*>(ctx);
  log.ids.push_back(arg);
  log.times.push_back(sim.now());
}
}  // namespace

TEST_CASE("events run in (time, insertion sequence) order") {
  Simulation sim;
  Log log;
  // Expectation: sorted by time; equal times keep the order they were scheduled in.
  sim.schedule_at(Time::ns(5), record, &log, 0);
  sim.schedule_at(Time::ns(1), record, &log, 1);
  sim.schedule_at(Time::ns(3), record, &log, 2);
  sim.schedule_at(Time::ns(1), record, &log, 3);
  sim.schedule_at(Time::ns(5), record, &log, 4);
  sim.schedule_at(Time::ns(0), record, &log, 5);
  CHECK(sim.run() == 6);
  CHECK(log.ids == std::vector<std::uint64_t>{5, 1, 3, 2, 0, 4});
  CHECK(sim.now() == Time::ns(5));
}

TEST_CASE("an event scheduled for the current instant runs after those already queued") {
  Simulation sim;
  Log log;
  struct Ctx {
    Log* log;
  } ctx{&log};
  auto spawn = [](Simulation& s, void* c, std::uint64_t) {
    auto* l = static_cast<Ctx*>(c)->log;
    l->ids.push_back(100);
    s.schedule_in(Time::zero(), record, l, 7);
  };
  sim.schedule_at(Time::ns(2), spawn, &ctx, 0);
  sim.schedule_at(Time::ns(2), record, &log, 1);
  sim.run();
  CHECK(log.ids == std::vector<std::uint64_t>{100, 1, 7});
}

TEST_CASE("simulations are independent values") {
  Simulation a, b;
  Log la, lb;
  a.schedule_at(Time::us(1), record, &la, 1);
  b.schedule_at(Time::us(2), record, &lb, 2);
  b.schedule_at(Time::us(3), record, &lb, 3);
  CHECK(a.run() == 1);
  CHECK(b.run_until(Time::us(2)) == 1);
  CHECK(b.now() == Time::us(2));
  CHECK(b.pending() == 1);
  CHECK(b.run() == 1);
  CHECK(la.ids == std::vector<std::uint64_t>{1});
  CHECK(lb.ids == std::vector<std::uint64_t>{2, 3});
  CHECK(a.events_run() == 1);
  CHECK(b.events_run() == 2);
}

TEST_CASE("scheduling in the past is an internal error") {
  Simulation sim;
  Log log;
  sim.schedule_at(Time::us(5), record, &log, 0);
  sim.run();
  CHECK_THROWS_AS(sim.schedule_at(Time::us(4), record, &log, 0), trainsim::InternalError);
}

TEST_CASE("many events come out sorted") {
  Simulation sim;
  Log log;
  // A permutation of 0..999 by a multiplier coprime to 1000.
  for (std::uint64_t i = 0; i < 1000; ++i) sim.schedule_at(Time::ns(static_cast<Time::rep>((i * 337) % 1000)), record, &log, i);
  sim.run();
  REQUIRE(log.times.size() == 1000);
  for (std::size_t i = 0; i < 1000; ++i) CHECK(log.times[i] == Time::ns(static_cast<Time::rep>(i)));
}

TEST_CASE("GPU compute shares its SMs with communication kernels") {
  // DeepSeek-V3: 20 of 132 SMs for communication, so compute runs on 112:
  // 112 us of full-GPU compute takes 112 * 132 / 112 = 132 us.
  trainsim::engine::GpuCompute gpu(132, 20);
  CHECK(gpu.compute_sms() == 112);
  CHECK(gpu.shared(Time::us(112)) == Time::us(132));
  CHECK(trainsim::engine::GpuCompute(132, 0).shared(Time::us(7)) == Time::us(7));
  CHECK_THROWS_AS(trainsim::engine::GpuCompute(132, 132), trainsim::InputError);
  CHECK_THROWS_AS(trainsim::engine::GpuCompute(0, 0), trainsim::InputError);
}

TEST_CASE("constant-delay link hook") {
  // 2 us latency + 1e6 B at 1e9 B/s = 2 us + 1 ms.
  trainsim::engine::ConstantDelay link(Time::us(2), 1e9);
  CHECK(link.arrival(Time::us(10), 0, 1, 1'000'000) == Time::us(10) + Time::us(2) + Time::ms(1));
  trainsim::engine::ConstantDelay latency_only(Time::us(3));
  CHECK(latency_only.arrival(Time::zero(), 0, 1, 123) == Time::us(3));
}

TEST_CASE("F&B overlap: compute-bound pair keeps the compute stream busy") {
  using namespace trainsim::schedule;
  trainsim::engine::GpuCompute gpu(132, 20);
  // F: compute 112 us, all-to-all 40 us; B: compute 224 us, all-to-all 80 us.
  // On 112 of 132 SMs the computes take 132 and 264 us; total 396 us of compute against
  // 120 us of communication, and every comm phase (<= 40 us) is shorter than the compute phase
  // it hides behind, so the pair takes exactly the compute stream's 396 us
  // (serially F + B = 152 + 304 = 456 us).
  const auto r = overlap_forward_backward({Time::us(112), Time::us(40)}, {Time::us(224), Time::us(80)}, gpu);
  CHECK(r.duration == Time::us(396));
  CHECK(r.slices.size() == 8);
  // Comm-bound extreme: no compute at all, so the pair is the two all-to-alls back to back.
  const auto c = overlap_forward_backward({Time::zero(), Time::us(30)}, {Time::zero(), Time::us(50)}, gpu);
  CHECK(c.duration == Time::us(80));
}

TEST_CASE("list schedule: of tasks ready at once, the one with the longer chain ahead goes first") {
  using namespace trainsim::schedule;
  // Chain A: compute 10 us -> communication 30 us -> compute 10 us (level of its first task:
  // 10 + 30 + 10 = 50 us). Chain B: one compute task of 20 us (level 20 us), listed first and
  // with the lower priority, so it would win a tie decided by priority.
  // Highest level first: A1 [0, 10), A's communication [10, 40), B [10, 30) beside it, A2
  // [40, 50): makespan 50 us. (B first would give B [0, 20), A1 [20, 30), communication [30, 60),
  // A2 [60, 70): 70 us.)
  std::vector<Task> tasks = {
      {0, Time::us(20), {}, 0},   // B
      {0, Time::us(10), {}, 1},   // A1
      {1, Time::us(30), {1}, 1},  // A's communication
      {0, Time::us(10), {2}, 1},  // A2
  };
  const ListSchedule ls = list_schedule(tasks);
  CHECK(ls.makespan == Time::us(50));
  CHECK(ls.slots[1].start == Time::zero());
  CHECK(ls.slots[0].start == Time::us(10));
  CHECK(ls.slots[2].start == Time::us(10));
  CHECK(ls.slots[3].start == Time::us(40));
  // At equal levels the priority decides: two independent 10 us computes, the second listed
  // with the lower priority, runs first.
  const ListSchedule eq = list_schedule({{0, Time::us(10), {}, 1}, {0, Time::us(10), {}, 0}});
  CHECK(eq.slots[1].start == Time::zero());
  CHECK(eq.slots[0].start == Time::us(10));
}
