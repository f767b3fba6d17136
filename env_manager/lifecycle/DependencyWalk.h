// DependencyWalk: the one walk over the service graph that start and stop share.
// Every service of the walk runs its step on a thread of its own once the services it
// waits for have released it: its dependencies for a start, its dependents for a stop.
// Container operations inside a step take a slot of one cap shared by every walk and
// by restarts, so at most `max_concurrent` of them run at once.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <semaphore>
#include <set>
#include <stop_token>
#include <string>

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

 private:
  const ServiceGraph& graph_;
  std::counting_semaphore<1024> slots_;
};

}  // namespace dspy::envmanager
