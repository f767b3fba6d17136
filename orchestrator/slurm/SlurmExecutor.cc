#include "orchestrator/slurm/SlurmExecutor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>

#include "orchestrator/slurm/SlurmScript.h"

namespace dspy::orchestrator {
namespace fs = std::filesystem;
using slurm::JobState;
using slurm::meaningOf;
using slurm::Phase;

namespace {

std::string lowerWord(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string readTail(const std::string& path, std::size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0));
  const std::size_t from = size > bytes ? size - bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return out;
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

ExecOutcome detachedOutcome() {
  ExecOutcome o;
  o.detached = true;
  o.error = "detached at orchestrator shutdown";
  return o;
}

}  // namespace

SlurmExecutor::SlurmExecutor(SlurmConfig cfg, SlurmJobStore& store, std::shared_ptr<slurm::SlurmCommands> commands)
    : cfg_(std::move(cfg)), store_(store), cmds_(std::move(commands)), last_ok_(std::chrono::steady_clock::now()) {}

SlurmExecutor::~SlurmExecutor() { stop(); }

std::int64_t SlurmExecutor::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SlurmExecutor::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token st) { loop(st); });
}

void SlurmExecutor::stop() {
  detach();
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }
}

Result<std::string> SlurmExecutor::templateText(const std::string& name) const {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9_-]{0,63}");
  if (!std::regex_match(name, kName)) {
    return Error{"payload 'template': '" + name.substr(0, 64) + "' is not a template name (letters, digits, '_', '-')",
                 ErrorKind::InvalidArgument};
  }
  const std::string path = cfg_.templates_dir + "/" + name + ".sbatch";
  std::ifstream in(path);
  if (!in) {
    std::string known;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(cfg_.templates_dir, ec)) {
      if (entry.path().extension() == ".sbatch") known += (known.empty() ? "" : ", ") + entry.path().stem().string();
    }
    return Error{"no Slurm template '" + name + "' in " + cfg_.templates_dir + " (there are: " +
                     (known.empty() ? "none" : known) + ")",
                 ErrorKind::InvalidArgument};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::string> SlurmExecutor::render(const Payload& payload) const {
  auto t = payload.find("template");
  const std::string name = t == payload.end() || t->second.empty() ? cfg_.default_template : t->second;
  auto text = templateText(name);
  if (!text) return text;
  auto r = slurm::renderTemplate(name, text.value(), payload);
  if (!r) return r.fullError();
  return r.value().script;
}

Status SlurmExecutor::validate(const Payload& payload) const {
  auto script = render(payload);
  if (!script) return script.fullError();
  auto opts = slurm::sbatchOptions(payload);
  if (!opts) return opts.fullError();
  return Status::Ok();
}

Event SlurmExecutor::jobEvent(const std::string& type, const SlurmJobRecord& rec) const {
  Payload data{{"task_id", rec.task_id}, {"attempt", std::to_string(rec.attempt)}, {"status", lowerWord(rec.state)}};
  if (!rec.job_id.empty()) data["job_id"] = rec.job_id;
  if (type == "slurm_job_submitted") {
    data["template"] = rec.template_name;
    data["output_path"] = rec.output_path;
  }
  if (type == "slurm_job_started" && !rec.nodes.empty()) data["nodes"] = rec.nodes;
  if (type == "slurm_job_completed" || type == "slurm_job_failed") {
    data["slurm_state"] = rec.state;
    if (rec.exit_code >= 0) data["exit_code"] = std::to_string(rec.exit_code);
    if (!rec.error.empty()) data["error"] = rec.error;
    if (!rec.reason.empty()) data["reason"] = rec.reason;
  }
  return makeEvent(type, std::move(data));
}

Status SlurmExecutor::putNow(const SlurmJobRecord& rec, std::vector<Event> events) {
  auto done = std::make_shared<std::promise<Status>>();
  auto f = done->get_future();
  store_.putSlurmJob(rec, std::move(events), [done](Status s) { done->set_value(std::move(s)); });
  return f.get();
}

void SlurmExecutor::noteSubmission(const std::string& task_id, Submission s) {
  std::lock_guard lock(sub_mu_);
  if (submissions_.emplace(task_id, s).second) {
    submission_order_.push_back(task_id);
  } else {
    submissions_[task_id] = std::move(s);
  }
  if (submission_order_.size() > 10'000) {
    submissions_.erase(submission_order_.front());
    submission_order_.erase(submission_order_.begin());
  }
  sub_cv_.notify_all();
}

std::optional<SlurmExecutor::Submission> SlurmExecutor::awaitSubmission(const std::string& task_id,
                                                                         std::chrono::milliseconds wait) {
  std::unique_lock lock(sub_mu_);
  if (sub_cv_.wait_for(lock, wait, [&] { return submissions_.count(task_id) > 0; })) return submissions_[task_id];
  lock.unlock();
  // Submitted by an earlier process, or the answer was dropped from the recent list.
  auto row = store_.latestSlurmJob(task_id);
  if (row && row.value() && (!row.value()->job_id.empty() || row.value()->terminal)) {
    return Submission{row.value()->job_id, row.value()->job_id.empty() ? row.value()->error : ""};
  }
  return std::nullopt;
}

ExecOutcome SlurmExecutor::outcomeOf(const SlurmJobRecord& rec) const {
  ExecOutcome o;
  o.result["slurm_job_id"] = rec.job_id;
  o.result["slurm_state"] = rec.state;
  if (rec.exit_code >= 0) o.result["exit_code"] = std::to_string(rec.exit_code);
  if (!rec.output_path.empty()) o.result["output_path"] = rec.output_path;
  if (!rec.nodes.empty()) o.result["nodes"] = rec.nodes;
  if (!rec.reason.empty()) o.result["reason"] = rec.reason;
  if (!rec.output_path.empty() && cfg_.output_tail_bytes > 0) {
    o.result["output"] = readTail(rec.output_path, static_cast<std::size_t>(cfg_.output_tail_bytes));
  }
  if (rec.state == "COMPLETED") {
    o.success = true;
    return o;
  }
  o.error = rec.error.empty() ? "Slurm job " + rec.job_id + " ended " + rec.state : rec.error;
  const auto m = meaningOf(rec.state);
  o.retryable = m.retryable || rec.state == "UNREACHABLE" || rec.state == "LOST";
  return o;
}

void SlurmExecutor::launch(const ExecRequest& req, std::stop_token cancel, Finish finish) {
  bool detached = false;
  {
    std::lock_guard lock(mu_);
    detached = detached_;
  }
  if (detached) {
    finish(detachedOutcome());
    return;
  }
  auto existing = store_.getSlurmJob(req.task_id, req.attempt);
  if (!existing) {
    finish(ExecOutcome::failure("cannot read the Slurm job of this attempt: " + existing.error(), true));
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(cfg_.unreachable_deadline_s);
  auto backoff = std::chrono::milliseconds(cfg_.poll_min_ms);
  // Waits before another try while slurmctld is away; false when the attempt must end
  // (cancelled, detached or past the deadline), with `finish` already called.
  auto waitToRetry = [&](SlurmJobRecord* rec, const std::string& why) {
    if (std::chrono::steady_clock::now() >= deadline) {
      rec->state = "UNREACHABLE";
      rec->terminal = true;
      rec->error = "slurmctld could not be reached for " + std::to_string(cfg_.unreachable_deadline_s) +
                   " s (slurm.unreachable_deadline_s): " + why;
      rec->updated_ms = nowMs();
      (void)putNow(*rec, {jobEvent("slurm_job_failed", *rec)});
      noteSubmission(rec->task_id, Submission{"", rec->error});
      {
        std::lock_guard lock(mu_);
        ++stats_.failed;
      }
      finish(outcomeOf(*rec));
      return false;
    }
    std::unique_lock lock(mu_);
    reachable_ = false;
    last_error_ = why;
    cv_.wait_for(lock, cancel, backoff, [this] { return detached_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(cfg_.poll_max_ms));
    if (detached_) {
      lock.unlock();
      finish(detachedOutcome());
      return false;
    }
    if (cancel.stop_requested()) {
      lock.unlock();
      finish(ExecOutcome::failure("cancelled before Slurm accepted the job", false));
      return false;
    }
    return true;
  };

  SlurmJobRecord rec;
  if (existing.value()) {
    rec = *existing.value();
    if (rec.terminal) {
      finish(outcomeOf(rec));
      return;
    }
    if (!rec.job_id.empty()) {
      {
        std::lock_guard lock(mu_);
        ++stats_.adopted;
      }
      spdlog::info("task {}: adopting Slurm job {} (attempt {})", rec.task_id, rec.job_id, rec.attempt);
      track(std::move(rec), cancel, std::move(finish));
      return;
    }
    // The last process wrote the row and may have died around sbatch: the marker tells.
    while (true) {
      auto found = cmds_->findByMarker(rec.marker);
      if (found) {
        rec.job_id = found.value();
        rec.state = "SUBMITTED";
        rec.output_path = replaceAll(rec.output_path, "%j", rec.job_id);
        rec.updated_ms = nowMs();
        (void)putNow(rec, {jobEvent("slurm_job_submitted", rec)});
        noteSubmission(rec.task_id, Submission{rec.job_id, ""});
        {
          std::lock_guard lock(mu_);
          ++stats_.adopted;
        }
        spdlog::info("task {}: found Slurm job {} by its marker; adopting it", rec.task_id, rec.job_id);
        track(std::move(rec), cancel, std::move(finish));
        return;
      }
      if (found.fullError().kind == ErrorKind::NotFound) break;  // never submitted: submit now
      if (!waitToRetry(&rec, found.error())) return;
    }
  }

  // A new job: script and output in the work directory.
  Payload with_ids = req.payload;
  with_ids["dspy_task_id"] = req.task_id;
  with_ids["dspy_attempt"] = std::to_string(req.attempt);
  auto script = render(with_ids);
  auto options = slurm::sbatchOptions(req.payload);
  if (!script || !options) {
    finish(ExecOutcome::failure(!script ? script.error() : options.error(), false));
    return;
  }
  const std::string dir = cfg_.work_dir + "/" + slurm::safeName(req.task_id);
  const std::string script_path = dir + "/attempt-" + std::to_string(req.attempt) + ".sbatch";
  std::error_code ec;
  fs::create_directories(dir, ec);
  {
    std::ofstream out(script_path, std::ios::trunc);
    out << script.value();
    if (!out.flush()) {
      finish(ExecOutcome::failure("cannot write the job script " + script_path, true));
      return;
    }
  }
  auto t = req.payload.find("template");
  rec = SlurmJobRecord{};
  rec.task_id = req.task_id;
  rec.attempt = req.attempt;
  rec.state = "SUBMITTING";
  rec.template_name = t == req.payload.end() || t->second.empty() ? cfg_.default_template : t->second;
  rec.script_path = script_path;
  rec.output_path = dir + "/attempt-" + std::to_string(req.attempt) + "-%j.out";
  rec.marker = slurm::jobMarker(req.task_id, req.attempt);
  rec.updated_ms = nowMs();
  if (Status s = putNow(rec, {}); !s.ok()) {
    finish(ExecOutcome::failure("cannot record the Slurm job before submitting it: " + s.error(), true));
    return;
  }
  std::vector<std::string> args = options.value();
  args.push_back("--output=" + rec.output_path);
  args.push_back("--chdir=" + dir);
  args.push_back("--comment=" + rec.marker);
  const std::string& body = script.value();
  if (!req.payload.count("job_name") && body.find("#SBATCH --job-name") == std::string::npos &&
      body.find("#SBATCH -J") == std::string::npos) {
    args.push_back("--job-name=dspy-" + slurm::safeName(req.task_id));
  }
  while (true) {
    auto id = cmds_->submit(args, script_path);
    if (id) {
      rec.job_id = id.value();
      rec.state = "SUBMITTED";
      rec.submit_ms = nowMs();
      rec.updated_ms = rec.submit_ms;
      rec.output_path = replaceAll(rec.output_path, "%j", rec.job_id);
      if (Status s = putNow(rec, {jobEvent("slurm_job_submitted", rec)}); !s.ok()) {
        spdlog::error("task {}: Slurm job {} submitted but not recorded ({}); its marker still finds it", rec.task_id,
                      rec.job_id, s.error());
      }
      {
        std::lock_guard lock(mu_);
        ++stats_.submitted;
        reachable_ = true;
      }
      noteSubmission(rec.task_id, Submission{rec.job_id, ""});
      track(std::move(rec), cancel, std::move(finish));
      return;
    }
    if (id.fullError().kind == ErrorKind::Unavailable) {
      if (!waitToRetry(&rec, id.error())) return;
      continue;
    }
    // Slurm said no (bad partition, over a limit, ...): its words end the task.
    rec.state = "REFUSED";
    rec.terminal = true;
    rec.error = id.error();
    rec.updated_ms = nowMs();
    (void)putNow(rec, {jobEvent("slurm_job_failed", rec)});
    {
      std::lock_guard lock(mu_);
      ++stats_.refused;
      ++stats_.failed;
    }
    noteSubmission(rec.task_id, Submission{"", rec.error});
    finish(ExecOutcome::failure(rec.error, false));
    return;
  }
}

void SlurmExecutor::track(SlurmJobRecord rec, std::stop_token cancel, Finish finish) {
  const std::string id = rec.job_id;
  {
    std::unique_lock lock(mu_);
    if (detached_) {
      lock.unlock();
      finish(detachedOutcome());
      return;
    }
    Tracked& t = tracked_[id];
    t.started = meaningOf(rec.state).phase == Phase::Running;
    t.rec = std::move(rec);
    t.finish = std::move(finish);
    woken_ = true;
  }
  cv_.notify_all();
  // The callback may run at once (already cancelled) or on the canceller's thread: it
  // only queues the job for the tracker's next scancel.
  auto cb = std::make_unique<std::stop_callback<std::function<void()>>>(cancel, std::function<void()>([this, id] {
    {
      std::lock_guard lock(cancel_mu_);
      cancel_requests_.push_back(id);
    }
    // Not under mu_ (see end()): a wake-up lost to the race costs at most one interval.
    woken_ = true;
    cv_.notify_all();
  }));
  std::lock_guard lock(mu_);
  auto it = tracked_.find(id);
  if (it != tracked_.end()) it->second.on_cancel = std::move(cb);
  // else: it ended already; `cb` goes at scope end, after the lock.
}

void SlurmExecutor::detach() {
  std::vector<Finish> finishes;
  std::vector<std::unique_ptr<std::stop_callback<std::function<void()>>>> callbacks;
  {
    std::lock_guard lock(mu_);
    detached_ = true;
    for (auto& [id, t] : tracked_) {
      if (t.finish) finishes.push_back(std::move(t.finish));
      callbacks.push_back(std::move(t.on_cancel));
    }
    tracked_.clear();
  }
  cv_.notify_all();
  callbacks.clear();
  for (auto& f : finishes) f(detachedOutcome());
}

ExecOutcome SlurmExecutor::execute(const ExecRequest& req, std::stop_token cancel) {
  auto p = std::make_shared<std::promise<ExecOutcome>>();
  auto f = p->get_future();
  launch(req, cancel, [p](ExecOutcome o) { p->set_value(std::move(o)); });
  return f.get();
}

void SlurmExecutor::loop(std::stop_token stop) {
  using Clock = std::chrono::steady_clock;
  const auto shortest = std::chrono::milliseconds(cfg_.poll_min_ms);
  auto interval = shortest;
  std::unique_lock lock(mu_);
  auto next = Clock::now() + interval;
  while (!stop.stop_requested()) {
    if (tracked_.empty()) {
      cv_.wait(lock, stop, [this] { return !tracked_.empty(); });
      woken_ = false;
      interval = shortest;
      next = Clock::now() + interval;
      continue;
    }
    // Until the tick. A submission or a cancel request brings it within poll_min (the
    // interval starts short again), so that a burst of them shares one squeue and one
    // scancel call.
    cv_.wait_until(lock, stop, next, [this] { return woken_.load(); });
    if (stop.stop_requested()) break;
    if (woken_.exchange(false)) {
      interval = shortest;
      next = std::min(next, Clock::now() + interval);
      continue;
    }
    if (Clock::now() < next) continue;
    bool changed = false;
    tick(lock, &changed);
    interval = changed ? shortest : std::min(interval * 2, std::chrono::milliseconds(cfg_.poll_max_ms));
    next = Clock::now() + interval;
  }
}

void SlurmExecutor::tick(std::unique_lock<std::mutex>& lock, bool* changed) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> ids;
  ids.reserve(tracked_.size());
  for (const auto& [id, t] : tracked_) ids.push_back(id);
  std::vector<std::string> cancels;
  {
    std::lock_guard c(cancel_mu_);
    cancels.swap(cancel_requests_);
  }
  std::vector<std::string> to_cancel;
  for (const auto& id : cancels) {
    auto it = tracked_.find(id);
    if (it == tracked_.end()) continue;
    it->second.cancel_asked = true;
    to_cancel.push_back(id);
  }
  lock.unlock();
  if (!to_cancel.empty()) {
    if (Status s = cmds_->cancel(to_cancel); !s.ok()) {
      spdlog::warn("scancel {}: {}", to_cancel.front(), s.error());
      if (s.kind() == ErrorKind::Unavailable) {
        std::lock_guard c(cancel_mu_);  // again on the next tick
        cancel_requests_.insert(cancel_requests_.end(), to_cancel.begin(), to_cancel.end());
      }
    }
  }
  auto q = cmds_->queue(ids);
  lock.lock();
  ++stats_.ticks;
  std::vector<Change> changes;
  const auto now = std::chrono::steady_clock::now();
  if (!q) {
    if (reachable_) spdlog::warn("Slurm: {} (tracking {} job(s); retrying with backoff)", q.error(), tracked_.size());
    reachable_ = false;
    last_error_ = q.error();
    if (now - last_ok_ > std::chrono::seconds(cfg_.unreachable_deadline_s)) {
      for (auto& id : ids) {
        auto it = tracked_.find(id);
        if (it == tracked_.end()) continue;
        SlurmJobRecord& r = it->second.rec;
        r.state = "UNREACHABLE";
        r.error = "slurmctld could not be reached for " + std::to_string(cfg_.unreachable_deadline_s) +
                  " s (slurm.unreachable_deadline_s); job " + r.job_id + " may still run: " + q.error();
        end(it->second, changes);
      }
    }
  } else {
    if (!reachable_) spdlog::info("Slurm answers again");
    reachable_ = true;
    last_ok_ = now;
    std::map<std::string, std::vector<const JobState*>> by_job;
    for (const auto& j : q.value()) by_job[j.job_id].push_back(&j);
    std::vector<std::string> need_end;
    std::map<std::string, JobState> seen_ended;
    for (const auto& id : ids) {
      auto it = tracked_.find(id);
      if (it == tracked_.end()) continue;
      auto parts = by_job.find(id);
      if (parts == by_job.end()) {
        need_end.push_back(id);
        continue;
      }
      it->second.misses = 0;
      JobState st = slurm::aggregate(id, parts->second);
      if (meaningOf(st.state).terminal) {
        need_end.push_back(id);
        seen_ended.emplace(id, std::move(st));
        continue;
      }
      apply(it->second, st, changes);
    }
    if (!need_end.empty()) {
      lock.unlock();
      auto e = cmds_->ended(need_end);
      lock.lock();
      std::map<std::string, std::vector<const JobState*>> ended_by;
      if (e) {
        for (const auto& j : e.value()) ended_by[j.job_id].push_back(&j);
      } else {
        spdlog::warn("Slurm: {}", e.error());
      }
      for (const auto& id : need_end) {
        auto it = tracked_.find(id);
        if (it == tracked_.end()) continue;
        auto parts = ended_by.find(id);
        auto squeue_end = seen_ended.find(id);
        if (parts != ended_by.end()) {
          JobState st = slurm::aggregate(id, parts->second);
          if (meaningOf(st.state).terminal) {
            apply(it->second, st, changes);
            continue;
          }
        }
        if (squeue_end != seen_ended.end()) {
          apply(it->second, squeue_end->second, changes);  // without an exit code
        } else if (e && ++it->second.misses >= cfg_.lost_after_misses) {
          it->second.rec.state = "LOST";
          it->second.rec.error = "Slurm no longer knows job " + id +
                                 ": it ended or was purged before the orchestrator saw its end";
          end(it->second, changes);
        }
      }
    }
  }
  stats_.tracked = static_cast<std::int64_t>(tracked_.size());
  stats_.last_tick_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  *changed = !changes.empty();
  if (changes.empty()) return;
  lock.unlock();
  commit(changes);
  lock.lock();
}

void SlurmExecutor::apply(Tracked& t, const JobState& st, std::vector<Change>& changes) {
  SlurmJobRecord& r = t.rec;
  const auto m = meaningOf(st.state);
  std::vector<Event> events;
  if (m.phase == Phase::Unknown && r.state != st.state) {
    spdlog::warn("Slurm job {}: unknown state '{}', still tracked", r.job_id, st.state);
  }
  const bool now_running = m.phase == Phase::Running;
  // A pending job that was cancelled carries a start time equal to its end.
  const bool ran = now_running || (m.terminal && st.start_ms != 0 &&
                                   (m.phase != Phase::Cancelled || st.start_ms < st.end_ms || t.started));
  if (st.submit_ms != 0) r.submit_ms = st.submit_ms;
  if (ran && st.start_ms != 0) r.start_ms = st.start_ms;
  if (!st.nodes.empty() && m.phase != Phase::Queued) r.nodes = st.nodes;
  const bool differs = r.state != st.state || r.reason != st.reason;
  if (ran && !t.started) {
    t.started = true;
    // First seen running (or already ended after running between two ticks).
    SlurmJobRecord started = r;
    started.state = now_running ? st.state : "RUNNING";
    events.push_back(jobEvent("slurm_job_started", started));
  }
  r.state = st.state;
  r.reason = st.reason;
  if (!m.terminal) {
    if (differs || !events.empty()) {
      r.updated_ms = nowMs();
      changes.push_back(Change{r, std::move(events), {}, {}});
    }
    return;
  }
  if (st.exit_code) r.exit_code = *st.exit_code;
  if (st.exit_signal) r.exit_signal = *st.exit_signal;
  r.end_ms = st.end_ms != 0 ? st.end_ms : nowMs();
  if (m.phase == Phase::Succeeded) {
    r.error.clear();
  } else if (m.phase == Phase::Cancelled) {
    r.error = t.cancel_asked ? "cancelled (scancel " + r.job_id + ")"
                             : "Slurm job " + r.job_id + " was cancelled outside the orchestrator";
  } else {
    r.error = "Slurm job " + r.job_id + " " + m.what + " (" + st.state;
    if (r.exit_code > 0) r.error += ", exit code " + std::to_string(r.exit_code);
    if (r.exit_signal > 0) r.error += ", signal " + std::to_string(r.exit_signal);
    if (!r.reason.empty()) r.error += ", " + r.reason;
    r.error += ")";
  }
  Change c{r, std::move(events), {}, {}};
  changes.push_back(std::move(c));
  end(t, changes);
}

void SlurmExecutor::end(Tracked& t, std::vector<Change>& changes) {
  // `changes` may already hold this job's last state (from apply): complete that entry.
  SlurmJobRecord& r = t.rec;
  r.terminal = true;
  r.updated_ms = nowMs();
  if (r.end_ms == 0) r.end_ms = r.updated_ms;
  Change* c = nullptr;
  if (!changes.empty() && changes.back().rec.job_id == r.job_id && changes.back().rec.task_id == r.task_id) {
    c = &changes.back();
    c->rec = r;
  } else {
    changes.push_back(Change{r, {}, {}, {}});
    c = &changes.back();
  }
  c->events.push_back(jobEvent("slurm_job_completed", r));
  c->outcome = outcomeOf(r);
  c->finish = std::move(t.finish);
  if (r.state == "COMPLETED") {
    ++stats_.completed;
  } else {
    ++stats_.failed;
  }
  auto cb = std::move(t.on_cancel);
  tracked_.erase(r.job_id);
  // `cb` goes here, under mu_: its callback never takes mu_, so waiting for a running
  // one cannot deadlock.
}

void SlurmExecutor::commit(std::vector<Change>& changes) {
  // All rows of this tick, then the attempts' ends (each after its row is durable).
  std::vector<std::future<Status>> writes;
  for (auto& c : changes) {
    auto p = std::make_shared<std::promise<Status>>();
    writes.push_back(p->get_future());
    store_.putSlurmJob(c.rec, std::move(c.events), [p](Status s) { p->set_value(std::move(s)); });
  }
  for (std::size_t i = 0; i < writes.size(); ++i) {
    Status s = writes[i].get();
    if (!s.ok()) spdlog::error("Slurm job {}: could not record state {}: {}", changes[i].rec.job_id, changes[i].rec.state, s.error());
  }
  for (auto& c : changes) {
    if (c.finish) c.finish(std::move(c.outcome));
  }
}

SlurmStats SlurmExecutor::stats() const {
  std::lock_guard lock(mu_);
  SlurmStats s = stats_;
  s.reachable = reachable_;
  s.last_error = last_error_;
  s.tracked = static_cast<std::int64_t>(tracked_.size());
  s.calls = cmds_->counts();
  return s;
}

std::string SlurmExecutor::health() const {
  std::lock_guard lock(mu_);
  if (reachable_) return "ok";
  return "unreachable: " + last_error_;
}

}  // namespace dspy::orchestrator
