#include "env_manager/lifecycle/DependencyWalk.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace dspy::envmanager {

struct DependencyWalk::Run {
  std::mutex mu;
  std::condition_variable_any cv;
  std::set<std::string> released;
};

void DependencyWalk::Step::release() {
  if (released_) return;
  released_ = true;
  {
    std::lock_guard lock(run_.mu);
    run_.released.insert(name_);
  }
  run_.cv.notify_all();
}

DependencyWalk::DependencyWalk(const ServiceGraph& graph, int max_concurrent)
    : graph_(graph), slots_(std::clamp(max_concurrent, 1, 1024)) {}

void DependencyWalk::run(const std::set<std::string>& services, Order order,
                         const std::function<void(const std::string&, Step&)>& step, std::stop_token stop) {
  Run run;
  std::vector<std::jthread> workers;
  workers.reserve(services.size());
  for (const auto& name : services) {
    workers.emplace_back([&, name] {
      const auto& before = order == Order::DependenciesFirst ? graph_.dependencies(name) : graph_.dependents(name);
      {
        std::unique_lock lock(run.mu);
        run.cv.wait(lock, stop, [&] {
          return std::all_of(before.begin(), before.end(),
                             [&](const std::string& b) { return !services.count(b) || run.released.count(b); });
        });
      }
      Step s(run, name);
      step(name, s);
      s.release();
    });
  }
}  // the workers join here

bool DependencyWalk::withSlot(const std::function<void()>& op, std::stop_token stop) {
  using namespace std::chrono_literals;
  while (!slots_.try_acquire_for(50ms)) {
    if (stop.stop_requested()) return false;
  }
  struct Give {
    std::counting_semaphore<1024>& s;
    ~Give() { s.release(); }
  } give{slots_};
  op();
  return true;
}

}  // namespace dspy::envmanager
