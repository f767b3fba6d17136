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
    : graph_(graph), slots_(std::clamp(max_concurrent, 1, 1024)) {
  // Dependents come after their dependencies in this order, so walking it backwards
  // sees every dependent's rank before the services it depends on.
  const auto order = graph_.topologicalOrder();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    int r = 0;
    for (const auto& d : graph_.dependents(*it)) r = std::max(r, 1 + ranks_.at(d));
    ranks_[*it] = r;
  }
}

int DependencyWalk::rank(const std::string& service) const {
  auto it = ranks_.find(service);
  return it == ranks_.end() ? 0 : it->second;
}

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

int DependencyWalk::turnsHeldBack() const {
  std::lock_guard lock(start_mu_);
  if (waiting_ranks_.empty()) return 0;
  const int top = std::max(*waiting_ranks_.rbegin(), inside_ranks_.empty() ? -1 : *inside_ranks_.rbegin());
  return static_cast<int>(std::count_if(waiting_ranks_.begin(), waiting_ranks_.end(), [&](int r) { return r < top; }));
}

std::optional<DependencyWalk::StartTurn> DependencyWalk::startTurn(const std::string& service, std::stop_token stop) {
  const int r = rank(service);
  std::unique_lock lock(start_mu_);
  waiting_ranks_.insert(r);
  start_cv_.wait(lock, stop, [&] {
    return r >= *waiting_ranks_.rbegin() && (inside_ranks_.empty() || r >= *inside_ranks_.rbegin());
  });
  waiting_ranks_.erase(waiting_ranks_.find(r));
  if (stop.stop_requested()) {
    lock.unlock();
    start_cv_.notify_all();  // a lower rank may go now that this one left
    return std::nullopt;
  }
  inside_ranks_.insert(r);
  return StartTurn(this, r);
}

DependencyWalk::StartTurn::~StartTurn() {
  if (walk_ == nullptr) return;
  {
    std::lock_guard lock(walk_->start_mu_);
    walk_->inside_ranks_.erase(walk_->inside_ranks_.find(rank_));
  }
  walk_->start_cv_.notify_all();
}

}  // namespace dspy::envmanager
