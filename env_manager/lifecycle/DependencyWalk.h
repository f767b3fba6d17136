// DependencyWalk: the one walk over the service graph that start and stop share.
// Every service of the walk runs its step on a thread of its own once the services it
// waits for have released it: its dependencies for a start, its dependents for a stop.
// Container operations inside a step take a slot of one cap shared by every walk and
// by restarts, so at most `max_concurrent` of them run at once. Creates and starts also
// take a start turn (startTurn), which goes to the service heading the longest chain of
// dependents first.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <semaphore>
#include <set>
#include <stop_token>
#include <string>
#include <utility>

#include "env_manager/lifecycle/ServiceGraph.h"

namespace dspy::envmanager {

class DependencyWalk {
 public:
  enum class Order {
    DependenciesFirst,  // start: a service goes once its dependencies released it
    DependentsFirst,    // stop: a service goes once its dependents released it
  };

  struct Run;

  // One service's part in a walk.
  class Step {
   public:
    // Lets the services that wait for this one go on; the walk does it when the step
    // returns if the step did not do it before (a start releases its dependents once
    // the container runs, and then waits for health without holding them back).
    void release();

   private:
    friend class DependencyWalk;
    Step(Run& run, std::string name) : run_(run), name_(std::move(name)) {}
    Run& run_;
    std::string name_;
    bool released_ = false;
  };

  DependencyWalk(const ServiceGraph& graph, int max_concurrent);

  // Runs `step` for every service of `services` in `order`; returns when all returned.
  // When `stop` is requested, services no longer wait for the ones before them (their
  // steps see the same token and give up on their own).
  void run(const std::set<std::string>& services, Order order,
           const std::function<void(const std::string&, Step&)>& step, std::stop_token stop = {});

  // Runs `op` holding one slot of the cap; false (and `op` not run) when `stop` was
  // requested before a slot was free.
  bool withSlot(const std::function<void()>& op, std::stop_token stop = {});

  // A service's turn to create and start its container (held while it does): starts
  // that wait for a turn together go in critical-path order. A service's rank is the
  // length of the longest chain of services that wait for it (its dependents,
  // transitively); a turn begins only while no service of a higher rank waits for one
  // or holds one, so when the head of the longest chain and services nothing waits for
  // want Docker at the same moment, the head goes first and has it to itself, and the
  // others fill the time the chain spends on its health checks. Equal ranks go
  // together; a lower rank already holding a turn does not hold a higher one back; a
  // service that has not asked yet holds nothing back. Pulls are not part of a turn.
  class StartTurn {
   public:
    StartTurn(StartTurn&& o) noexcept : walk_(std::exchange(o.walk_, nullptr)), rank_(o.rank_) {}
    StartTurn(const StartTurn&) = delete;
    StartTurn& operator=(const StartTurn&) = delete;
    StartTurn& operator=(StartTurn&&) = delete;
    ~StartTurn();

   private:
    friend class DependencyWalk;
    StartTurn(DependencyWalk* walk, int rank) : walk_(walk), rank_(rank) {}
    DependencyWalk* walk_;
    int rank_;
  };
  // Waits for `service`'s turn; nullopt when `stop` was requested first.
  std::optional<StartTurn> startTurn(const std::string& service, std::stop_token stop = {});
  // How many services wait for a turn behind a higher rank (for tests).
  int turnsHeldBack() const;
  int rank(const std::string& service) const;

 private:
  const ServiceGraph& graph_;
  std::counting_semaphore<1024> slots_;
  std::map<std::string, int> ranks_;  // fixed: the graph does not change
  mutable std::mutex start_mu_;
  std::condition_variable_any start_cv_;
  std::multiset<int> waiting_ranks_, inside_ranks_;
};

}  // namespace dspy::envmanager
