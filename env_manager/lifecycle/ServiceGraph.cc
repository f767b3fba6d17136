// Dependency graph walks.
#include "env_manager/lifecycle/ServiceGraph.h"

#include <algorithm>
#include <functional>

namespace dspy::envmanager {

ServiceGraph::ServiceGraph(const ServicesFile& file) {
  for (const auto& s : file.services) {
    order_.push_back(s.name);
    deps_[s.name];
    rdeps_[s.name];
  }
  for (const auto& s : file.services) {
    for (const auto& d : s.depends_on) {
      deps_[s.name].push_back(d.service);
      rdeps_[d.service].push_back(s.name);
    }
  }
}

Result<std::set<std::string>> ServiceGraph::closure(const std::vector<std::string>& names,
                                                    const std::map<std::string, std::vector<std::string>>& edges) const {
  std::set<std::string> out;
  if (names.empty()) return std::set<std::string>(order_.begin(), order_.end());
  std::string unknown;
  for (const auto& n : names) {
    if (!contains(n)) unknown += (unknown.empty() ? "" : ", ") + n;
  }
  if (!unknown.empty()) return Error{"unknown service(s): " + unknown, ErrorKind::InvalidArgument};
  std::vector<std::string> todo(names.begin(), names.end());
  while (!todo.empty()) {
    std::string n = todo.back();
    todo.pop_back();
    if (!out.insert(n).second) continue;
    for (const auto& next : edges.at(n)) todo.push_back(next);
  }
  return out;
}

Result<std::set<std::string>> ServiceGraph::startClosure(const std::vector<std::string>& names) const {
  return closure(names, deps_);
}

Result<std::set<std::string>> ServiceGraph::stopClosure(const std::vector<std::string>& names) const {
  return closure(names, rdeps_);
}

const std::vector<std::string>& ServiceGraph::dependencies(const std::string& name) const { return deps_.at(name); }
const std::vector<std::string>& ServiceGraph::dependents(const std::string& name) const { return rdeps_.at(name); }

int ServiceGraph::depth(const std::string& name) const {
  int best = 0;
  for (const auto& d : deps_.at(name)) best = std::max(best, 1 + depth(d));
  return best;
}

std::vector<std::string> ServiceGraph::topologicalOrder() const {
  std::vector<std::string> out;
  std::set<std::string> done;
  std::function<void(const std::string&)> visit = [&](const std::string& n) {
    if (done.count(n)) return;
    done.insert(n);
    for (const auto& d : deps_.at(n)) visit(d);
    out.push_back(n);
  };
  for (const auto& n : order_) visit(n);
  return out;
}

}  // namespace dspy::envmanager
