// The pool for blocking work: runs everything it accepts, grows only to its thread
// limit, refuses beyond its queue limit, and waits for its jobs when destroyed.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/WorkerPool.h"

using namespace std::chrono_literals;

namespace {
// A gate the jobs wait at until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void pass() {
    std::unique_lock lock(mu);
    ++waiting;
    cv.notify_all();
    cv.wait_for(lock, 10s, [&] { return open; });
  }
  bool waitForWaiting(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return waiting >= n; });
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};
}  // namespace

TEST_CASE("the pool runs every job it accepted, on as many threads as jobs block at once", "[pool]") {
  std::atomic<int> done{0};
  Gate gate;
  {
    dspy::WorkerPool pool;
    for (int i = 0; i < 8; ++i) REQUIRE(pool.run([&] { gate.pass(); ++done; }));
    REQUIRE(gate.waitForWaiting(8));  // all eight block at once: eight threads
    CHECK(pool.threads() == 8);
    gate.release();
  }  // the destructor waits for the jobs
  CHECK(done == 8);
}

TEST_CASE("a bounded pool queues beyond its threads and refuses beyond its queue", "[pool]") {
  std::atomic<int> done{0};
  Gate gate;
  {
    dspy::WorkerPool pool(dspy::WorkerPool::Limits{.max_threads = 2, .max_queued = 3});
    for (int i = 0; i < 2; ++i) REQUIRE(pool.run([&] { gate.pass(); ++done; }));
    REQUIRE(gate.waitForWaiting(2));
    for (int i = 0; i < 3; ++i) REQUIRE(pool.run([&] { ++done; }));
    CHECK(pool.queued() == 3);
    CHECK_FALSE(pool.run([&] { done += 100; }));  // full: refused, never run
    CHECK(pool.threads() == 2);
    gate.release();
  }
  CHECK(done == 5);
}
