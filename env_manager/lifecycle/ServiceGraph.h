// ServiceGraph: the dependency graph of a validated (acyclic) services file, with the
// walks the lifecycle needs: what a start pulls in, what a stop must take down first.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/Result.h"
#include "env_manager/services/ServiceSpec.h"

namespace dspy::envmanager {

class ServiceGraph {
 public:
  explicit ServiceGraph(const ServicesFile& file);

  // `names` plus everything they depend on, transitively; empty = every service.
  // Unknown names are an InvalidArgument error naming them.
  Result<std::set<std::string>> startClosure(const std::vector<std::string>& names) const;
  // `names` plus everything that depends on them, transitively; empty = every service.
  Result<std::set<std::string>> stopClosure(const std::vector<std::string>& names) const;
  // Direct dependencies and direct dependents.
  const std::vector<std::string>& dependencies(const std::string& name) const;
  const std::vector<std::string>& dependents(const std::string& name) const;
  // Length of the longest dependency chain below `name` (0 for a service with none).
  int depth(const std::string& name) const;
  // Every service in an order where dependencies come first (file order breaks ties).
  std::vector<std::string> topologicalOrder() const;
  bool contains(const std::string& name) const { return deps_.count(name) != 0; }

 private:
  Result<std::set<std::string>> closure(const std::vector<std::string>& names,
                                        const std::map<std::string, std::vector<std::string>>& edges) const;
  std::vector<std::string> order_;  // file order
  std::map<std::string, std::vector<std::string>> deps_;
  std::map<std::string, std::vector<std::string>> rdeps_;
};

}  // namespace dspy::envmanager
