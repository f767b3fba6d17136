#include "orchestrator/slurm/SlurmParse.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <ctime>
#include <map>

namespace dspy::orchestrator::slurm {
namespace {

std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) out.push_back(line);
    start = nl + 1;
  }
  return out;
}

std::vector<std::string_view> splitBar(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t bar = line.find('|', start);
    out.push_back(line.substr(start, bar == std::string_view::npos ? std::string_view::npos : bar - start));
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  return out;
}

bool isJobId(std::string_view s) {
  return !s.empty() && s.size() <= 20 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string reasonOf(std::string_view r) {
  if (r == "None" || r == "(null)" || r == "N/A") return {};
  return std::string(r);
}

std::string nodesOf(std::string_view n) {
  if (n == "None assigned" || n == "(null)" || n == "N/A") return {};
  return std::string(n);
}

// The fields squeue, sacct and scontrol all give (as text).
void fillCommon(JobState& j, std::string_view exit_code, std::string_view submit, std::string_view start,
                std::string_view end, std::string_view reason, std::string_view nodes) {
  int code = 0, sig = 0;
  if (parseExitCode(exit_code, &code, &sig)) {
    j.exit_code = code;
    j.exit_signal = sig;
  }
  j.submit_ms = parseSlurmTime(submit);
  j.start_ms = parseSlurmTime(start);
  j.end_ms = parseSlurmTime(end);
  j.reason = reasonOf(reason);
  j.nodes = nodesOf(nodes);
}

Error badLine(const char* what, std::string_view line, const char* why) {
  std::string shown(line.substr(0, 120));
  return Error{std::string("unexpected ") + what + " output (" + why + "): '" + shown + "'", ErrorKind::Internal};
}

}  // namespace

std::string baseState(std::string_view state) {
  std::size_t end = 0;
  while (end < state.size() && ((state[end] >= 'A' && state[end] <= 'Z') || state[end] == '_')) ++end;
  return std::string(state.substr(0, end));
}

StateMeaning meaningOf(std::string_view state) {
  static const std::map<std::string, StateMeaning, std::less<>> kStates = {
      {"PENDING", {Phase::Queued, false, false, "waits in the queue"}},
      {"CONFIGURING", {Phase::Queued, false, false, "has nodes that are being set up"}},
      {"REQUEUED", {Phase::Queued, false, false, "was put back in the queue"}},
      {"REQUEUE_FED", {Phase::Queued, false, false, "was put back in the queue (federation)"}},
      {"REQUEUE_HOLD", {Phase::Queued, false, false, "was requeued and is held"}},
      {"RESV_DEL_HOLD", {Phase::Queued, false, false, "is held after its reservation was deleted"}},
      {"POWER_UP_NODE", {Phase::Queued, false, false, "waits for a node to power up"}},
      {"RUNNING", {Phase::Running, false, false, "runs"}},
      {"COMPLETING", {Phase::Running, false, false, "is completing"}},
      {"SUSPENDED", {Phase::Running, false, false, "is suspended"}},
      {"STOPPED", {Phase::Running, false, false, "is stopped"}},
      {"SIGNALING", {Phase::Running, false, false, "is being signalled"}},
      {"STAGE_OUT", {Phase::Running, false, false, "stages out"}},
      {"RESIZING", {Phase::Running, false, false, "is resizing"}},
      {"UPDATE_DB", {Phase::Running, false, false, "updates the database"}},
      {"COMPLETED", {Phase::Succeeded, true, false, "completed"}},
      {"CANCELLED", {Phase::Cancelled, true, false, "was cancelled"}},
      {"FAILED", {Phase::Failed, true, false, "failed"}},
      {"TIMEOUT", {Phase::Failed, true, false, "hit its time limit"}},
      {"OUT_OF_MEMORY", {Phase::Failed, true, false, "ran out of memory"}},
      {"DEADLINE", {Phase::Failed, true, false, "missed its deadline"}},
      {"SPECIAL_EXIT", {Phase::Failed, true, false, "ended with a special exit"}},
      {"NODE_FAIL", {Phase::Failed, true, true, "lost a node"}},
      {"BOOT_FAIL", {Phase::Failed, true, true, "could not boot its node"}},
      {"PREEMPTED", {Phase::Failed, true, true, "was preempted"}},
      {"LAUNCH_FAILED", {Phase::Failed, true, true, "could not be launched"}},
      {"RECONFIG_FAIL", {Phase::Failed, true, true, "failed a node reconfiguration"}},
      {"REVOKED", {Phase::Failed, true, true, "was revoked from this cluster"}},
  };
  auto it = kStates.find(baseState(state));
  return it == kStates.end() ? StateMeaning{} : it->second;
}

std::int64_t parseSlurmTime(std::string_view text) {
  if (text.size() != 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':') {
    return 0;
  }
  auto num = [&](std::size_t at, std::size_t len, int* out) {
    const auto r = std::from_chars(text.data() + at, text.data() + at + len, *out);
    return r.ec == std::errc() && r.ptr == text.data() + at + len;
  };
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) || !num(14, 2, &mi) || !num(17, 2, &s)) {
    return 0;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1970) return 0;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  tm.tm_isdst = -1;
  const std::time_t t = std::mktime(&tm);  // Slurm prints local time
  return t < 0 ? 0 : static_cast<std::int64_t>(t) * 1000;
}

bool parseExitCode(std::string_view text, int* code, int* signal) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  int c = 0, s = 0;
  auto r1 = std::from_chars(text.data(), text.data() + colon, c);
  auto r2 = std::from_chars(text.data() + colon + 1, text.data() + text.size(), s);
  if (r1.ec != std::errc() || r1.ptr != text.data() + colon || r2.ec != std::errc() ||
      r2.ptr != text.data() + text.size() || c < 0 || c > 255 || s < 0 || s > 255) {
    return false;
  }
  *code = c;
  *signal = s;
  return true;
}

Result<std::vector<JobState>> parseSqueue(std::string_view text) {
  std::vector<JobState> out;
  for (std::string_view line : splitLines(text)) {
    auto f = splitBar(line);
    if (f.size() < 8) return badLine("squeue", line, "expected 8 fields");
    // The node list is last and may hold no '|'; more fields mean a format we did not ask for.
    if (f.size() > 8) return badLine("squeue", line, "too many fields");
    if (!isJobId(f[0])) return badLine("squeue", line, "not a job id");
    JobState j;
    j.job_id = std::string(f[0]);
    j.element = std::string(f[1]);
    j.state = baseState(f[2]);
    if (j.state.empty()) return badLine("squeue", line, "no state");
    fillCommon(j, "", f[4], f[5], f[6], f[3], f[7]);
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<JobState>> parseSacct(std::string_view text) {
  std::vector<JobState> out;
  for (std::string_view line : splitLines(text)) {
    auto f = splitBar(line);
    if (f.size() != 9) return badLine("sacct", line, "expected 9 fields");
    // JobIDRaw is the element's own id; JobID is "19_3" for an array element, "19" else.
    std::string_view shown = f[1];
    const std::size_t us = shown.find('_');
    std::string_view array_id = us == std::string_view::npos ? shown : shown.substr(0, us);
    if (!isJobId(f[0]) || !isJobId(array_id)) return badLine("sacct", line, "not a job id");
    JobState j;
    j.job_id = std::string(array_id);
    j.element = std::string(shown);
    j.state = baseState(f[2]);
    if (j.state.empty()) return badLine("sacct", line, "no state");
    fillCommon(j, f[3], f[4], f[5], f[6], f[7], f[8]);
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<JobState>> parseScontrol(std::string_view text) {
  std::vector<JobState> out;
  for (std::string_view line : splitLines(text)) {
    // Key=Value words; a value runs to the next " Key=" (values may hold spaces).
    std::map<std::string, std::string, std::less<>> kv;
    std::size_t pos = 0;
    std::string key;
    std::size_t value_start = std::string_view::npos;
    auto keyAt = [&](std::size_t at, std::size_t* eq) {
      std::size_t e = at;
      while (e < line.size() && (std::isalnum(static_cast<unsigned char>(line[e])) || line[e] == '_' ||
                                 line[e] == '/' || line[e] == ':' || line[e] == '.')) {
        ++e;
      }
      if (e == at || e >= line.size() || line[e] != '=' || !std::isalpha(static_cast<unsigned char>(line[at]))) {
        return false;
      }
      *eq = e;
      return true;
    };
    while (pos < line.size()) {
      std::size_t eq = 0;
      if ((pos == 0 || line[pos - 1] == ' ') && keyAt(pos, &eq)) {
        if (!key.empty()) {
          std::string_view v = line.substr(value_start, pos - value_start);
          while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
          kv[key] = std::string(v);
        }
        key = std::string(line.substr(pos, eq - pos));
        value_start = eq + 1;
        pos = eq + 1;
        continue;
      }
      ++pos;
    }
    if (!key.empty()) {
      std::string_view v = line.substr(value_start);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      kv[key] = std::string(v);
    }
    auto get = [&](const char* k) -> std::string {
      auto it = kv.find(k);
      return it == kv.end() ? std::string() : it->second;
    };
    const std::string id = get("JobId");
    if (!isJobId(id)) return badLine("scontrol", line, "no JobId");
    JobState j;
    const std::string array = get("ArrayJobId");
    j.job_id = isJobId(array) ? array : id;
    j.element = isJobId(array) ? array + "_" + get("ArrayTaskId") : id;
    j.state = baseState(get("JobState"));
    if (j.state.empty()) return badLine("scontrol", line, "no JobState");
    fillCommon(j, get("ExitCode"), get("SubmitTime"), get("StartTime"), get("EndTime"), get("Reason"), get("NodeList"));
    out.push_back(std::move(j));
  }
  return out;
}

JobState aggregate(const std::string& job_id, const std::vector<const JobState*>& parts) {
  JobState out;
  out.job_id = job_id;
  out.element = job_id;
  if (parts.empty()) return out;
  if (parts.size() == 1) {
    out = *parts.front();
    out.job_id = job_id;
    return out;
  }
  bool any_running = false, all_terminal = true, all_ok = true, any_unknown = false;
  const JobState* first_bad = nullptr;
  for (const JobState* p : parts) {
    const StateMeaning m = meaningOf(p->state);
    any_running = any_running || m.phase == Phase::Running;
    any_unknown = any_unknown || m.phase == Phase::Unknown;
    all_terminal = all_terminal && m.terminal;
    if (m.terminal && m.phase != Phase::Succeeded) {
      all_ok = false;
      if (first_bad == nullptr) first_bad = p;
    }
    if (p->submit_ms != 0 && (out.submit_ms == 0 || p->submit_ms < out.submit_ms)) out.submit_ms = p->submit_ms;
    if (p->start_ms != 0 && (out.start_ms == 0 || p->start_ms < out.start_ms)) out.start_ms = p->start_ms;
    out.end_ms = std::max(out.end_ms, p->end_ms);
    if (!p->nodes.empty() && out.nodes.find(p->nodes) == std::string::npos) {
      out.nodes += (out.nodes.empty() ? "" : ",") + p->nodes;
    }
  }
  if (!all_terminal) {
    out.end_ms = 0;
    out.state = any_running ? "RUNNING" : (any_unknown ? "UNKNOWN" : "PENDING");
    return out;
  }
  if (all_ok) {
    out.state = "COMPLETED";
    out.exit_code = 0;
    out.exit_signal = 0;
    return out;
  }
  out.state = first_bad->state;
  out.reason = first_bad->reason.empty() ? "array element " + first_bad->element : first_bad->reason + " (array element " + first_bad->element + ")";
  out.exit_code = first_bad->exit_code;
  out.exit_signal = first_bad->exit_signal;
  return out;
}

std::optional<std::string> parseJobId(std::string_view out) {
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.remove_suffix(1);
  const std::size_t nl = out.rfind('\n');
  if (nl != std::string_view::npos) out = out.substr(nl + 1);  // warnings may come first
  const std::size_t semi = out.find(';');
  std::string_view id = semi == std::string_view::npos ? out : out.substr(0, semi);
  if (!isJobId(id)) return std::nullopt;
  return std::string(id);
}

bool isUnreachable(std::string_view m) {
  for (const char* needle : {"Unable to contact slurm controller", "Socket timed out", "Connection refused",
                             "connect failure", "Zero Bytes were transmitted", "Slurm backup controller in standby",
                             "Communication connection failure", "Transport endpoint is not connected"}) {
    if (m.find(needle) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace dspy::orchestrator::slurm
