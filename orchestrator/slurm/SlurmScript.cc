#include "orchestrator/slurm/SlurmScript.h"

#include <algorithm>
#include <cstdio>
#include <regex>

namespace dspy::orchestrator::slurm {
namespace {

struct Form {
  const char* key;
  const char* flag;
  const char* description;
  const char* pattern;
};

const std::vector<Form>& forms() {
  static const std::vector<Form> kForms = {
      {"job_name", "--job-name", "letters, digits, '_', '.', '-' (at most 128)", "[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"},
      {"partition", "--partition", "partition names separated by ','", "[A-Za-z0-9_.-]{1,64}(,[A-Za-z0-9_.-]{1,64}){0,15}"},
      {"account", "--account", "an account name", "[A-Za-z0-9_.-]{1,64}"},
      {"qos", "--qos", "a QOS name", "[A-Za-z0-9_.-]{1,64}"},
      {"gres", "--gres", "a GRES list such as gpu:a100:2", "[A-Za-z0-9_]{1,32}(:[A-Za-z0-9_.]{1,32}){0,2}(,[A-Za-z0-9_]{1,32}(:[A-Za-z0-9_.]{1,32}){0,2}){0,7}"},
      {"gpus", "--gpus", "a GPU count, optionally TYPE:COUNT", "([A-Za-z0-9_]{1,32}:)?[1-9][0-9]{0,4}"},
      {"gpus_per_node", "--gpus-per-node", "a GPU count, optionally TYPE:COUNT", "([A-Za-z0-9_]{1,32}:)?[1-9][0-9]{0,4}"},
      {"nodes", "--nodes", "a node count or MIN-MAX", "[1-9][0-9]{0,5}(-[1-9][0-9]{0,5})?"},
      {"ntasks", "--ntasks", "a whole number >= 1", "[1-9][0-9]{0,6}"},
      {"ntasks_per_node", "--ntasks-per-node", "a whole number >= 1", "[1-9][0-9]{0,5}"},
      {"cpus_per_task", "--cpus-per-task", "a whole number >= 1", "[1-9][0-9]{0,5}"},
      {"mem", "--mem", "a size such as 16G (K, M, G or T)", "[1-9][0-9]{0,9}[KMGT]?"},
      {"time_limit", "--time", "a Slurm time such as 90, 04:00:00 or 1-12:00:00",
       "([0-9]{1,4}-)?[0-9]{1,6}(:[0-9]{1,2}){0,2}|UNLIMITED|INFINITE"},
      {"array", "--array", "an index list such as 0-15%4 or 1,3,5",
       "[0-9]{1,7}(-[0-9]{1,7})?(:[1-9][0-9]{0,6})?(,[0-9]{1,7}(-[0-9]{1,7})?(:[1-9][0-9]{0,6})?){0,63}(%[1-9][0-9]{0,5})?"},
      {"dependency", "--dependency", "a dependency such as afterok:123:124 or singleton",
       "(singleton|(after|afterany|afterok|afternotok|aftercorr|afterburstbuffer)(:[0-9]{1,20}(_[0-9]{1,7})?(\\+[0-9]{1,6})?){1,64})"
       "([,?](singleton|(after|afterany|afterok|afternotok|aftercorr|afterburstbuffer)(:[0-9]{1,20}(_[0-9]{1,7})?(\\+[0-9]{1,6})?){1,64})){0,15}"},
      {"nproc_per_node", "", "a whole number >= 1", "[1-9][0-9]{0,3}"},
      {"master_port", "", "a port number 1024-65535",
       "(102[4-9]|10[3-9][0-9]|1[1-9][0-9]{2}|[2-9][0-9]{3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"},
      {"max_steps", "", "a whole number >= 1", "[1-9][0-9]{0,11}"},
  };
  return kForms;
}

const Form* formOf(const std::string& key) {
  for (const auto& f : forms()) {
    if (key == f.key) return &f;
  }
  return nullptr;
}

bool matchesForm(const Form& f, const std::string& value) {
  // Compiled once per form.
  static const std::map<std::string, std::regex> compiled = [] {
    std::map<std::string, std::regex> m;
    for (const auto& g : forms()) m.emplace(g.key, std::regex(g.pattern, std::regex::extended));
    return m;
  }();
  return std::regex_match(value, compiled.at(f.key));
}

bool hasControl(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

const std::vector<OptionKey>& optionKeys() {
  static const std::vector<OptionKey> keys = [] {
    std::vector<OptionKey> out;
    for (const auto& f : forms()) out.push_back({f.key, f.flag, f.description});
    return out;
  }();
  return keys;
}

Status checkOption(const std::string& key, const std::string& value) {
  const Form* f = formOf(key);
  if (f == nullptr) {
    if (hasControl(value)) {
      return Error{"payload '" + key + "': control characters (such as a newline) are not allowed", ErrorKind::InvalidArgument};
    }
    return Status::Ok();
  }
  if (value.size() > 2048 || !matchesForm(*f, value)) {
    std::string shown = value.substr(0, 60);
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20) c = '?';
    }
    return Error{"payload '" + key + "': '" + shown + "' is not " + f->description, ErrorKind::InvalidArgument};
  }
  return Status::Ok();
}

std::string shellQuote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

Result<Rendered> renderTemplate(const std::string& name, const std::string& text, const Payload& payload) {
  static const std::regex placeholder(R"(\$\{([A-Z][A-Z0-9_]*):([-?])([^}]*)\})");
  Rendered r;
  std::size_t line_no = 0;
  std::size_t start = 0;
  while (start < text.size() || (start == 0 && text.empty())) {
    if (text.empty()) break;
    std::size_t nl = text.find('\n', start);
    const bool last = nl == std::string::npos;
    if (last) nl = text.size();
    const std::string line = text.substr(start, nl - start);
    ++line_no;
    const bool directive = line.rfind("#SBATCH", 0) == 0;
    std::string out;
    auto pos = line.cbegin();
    for (std::sregex_iterator it(line.begin(), line.end(), placeholder), end; it != end; ++it) {
      const auto& m = *it;
      out.append(pos, m[0].first);
      pos = m[0].second;
      const std::string key = lower(m[1].str());
      const std::string where = "template '" + name + "' line " + std::to_string(line_no) + ", ${" + m[1].str() + "}";
      std::string value;
      auto v = payload.find(key);
      const bool given = v != payload.end() && !v->second.empty();
      if (given) {
        value = v->second;
      } else if (m[2] == "-") {
        value = m[3].str();
      } else {
        const std::string why = m[3].str();
        return Error{where + ": the payload needs '" + key + "'" + (why.empty() ? "" : " (" + why + ")"),
                     ErrorKind::InvalidArgument};
      }
      if (Status s = checkOption(key, value); !s.ok()) return Error{where + ": " + s.error(), ErrorKind::InvalidArgument};
      if (formOf(key) != nullptr) {
        out += value;
      } else if (directive) {
        return Error{where + ": '" + key + "' is free text and cannot fill an #SBATCH line (only option keys such as "
                         "partition, nodes or time_limit can)",
                     ErrorKind::InvalidArgument};
      } else {
        out += shellQuote(value);
      }
      if (std::find(r.used_keys.begin(), r.used_keys.end(), key) == r.used_keys.end()) r.used_keys.push_back(key);
    }
    out.append(pos, line.cend());
    r.script += out;
    if (!last) r.script += '\n';
    start = nl + 1;
    if (last) break;
  }
  return r;
}

Result<std::vector<std::string>> sbatchOptions(const Payload& payload) {
  std::vector<std::string> out;
  for (const auto& f : forms()) {
    if (*f.flag == '\0') continue;
    std::string key = f.key;
    auto it = payload.find(key);
    // Aliases the old payloads used.
    if (it == payload.end() && key == "time_limit") it = payload.find("time");
    if (it == payload.end() && key == "mem") it = payload.find("memory");
    if (it == payload.end() || it->second.empty()) continue;
    if (Status s = checkOption(key, it->second); !s.ok()) return s.fullError();
    out.push_back(std::string(f.flag) + "=" + it->second);
  }
  const bool has_time = payload.count("time_limit") || payload.count("time");
  if (auto t = payload.find("timeout_seconds"); !has_time && t != payload.end()) {
    long long secs = 0;
    try {
      secs = std::stoll(t->second);
    } catch (...) {
      return Error{"payload 'timeout_seconds': not a whole number", ErrorKind::InvalidArgument};
    }
    if (secs < 1) return Error{"payload 'timeout_seconds': must be >= 1", ErrorKind::InvalidArgument};
    out.push_back("--time=" + std::to_string((secs + 59) / 60));  // minutes, rounded up
  }
  return out;
}

std::string safeName(const std::string& task_id) {
  std::string s;
  for (const char c : task_id) {
    if (s.size() >= 48) break;
    s += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '_';
  }
  if (s.empty() || s[0] == '.') s.insert(s.begin(), 't');
  char hash[20];
  std::snprintf(hash, sizeof hash, "%08llx", static_cast<unsigned long long>(fnv1a(task_id) & 0xffffffffULL));
  return s + "-" + hash;
}

std::string jobMarker(const std::string& task_id, int attempt) {
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(task_id)));
  return std::string("dspy:") + hash + ":" + std::to_string(attempt);
}

}  // namespace dspy::orchestrator::slurm
