// Colour and live progress for the CLI's human output.
#include "cli/Terminal.h"

#include <unistd.h>

#include <cstdlib>

namespace dspy::cli {
namespace {
bool g_no_color = false;
}  // namespace

void setNoColor(bool no_color) { g_no_color = no_color; }

bool stdoutIsTty() { return ::isatty(STDOUT_FILENO) == 1; }

bool useColor() {
  if (g_no_color) return false;
  if (const char* v = std::getenv("NO_COLOR"); v != nullptr && *v != '\0') return false;
  if (const char* t = std::getenv("TERM"); t != nullptr && std::string(t) == "dumb") return false;
  return stdoutIsTty();
}

std::string paint(const std::string& text, Tone tone) {
  if (tone == Tone::Plain || !useColor()) return text;
  const char* code = tone == Tone::Good ? "32" : tone == Tone::Warn ? "33" : tone == Tone::Bad ? "31" : "2";
  return std::string("\x1b[") + code + "m" + text + "\x1b[0m";
}

Tone toneOf(const std::string& s) {
  for (const char* good : {"ok", "running", "healthy", "complete", "completed", "ready", "done", "succeeded",
                           "stopped", "up"}) {
    if (s == good) return Tone::Good;
  }
  for (const char* bad : {"failed", "error", "unhealthy", "crash_loop", "blocked", "down", "unreachable", "FAILED",
                          "missing"}) {
    if (s == bad) return Tone::Bad;
  }
  for (const char* warn : {"starting", "pulling", "creating", "waiting", "degraded", "restarting", "downloading",
                           "extracting", "stopping", "pending", "queued"}) {
    if (s == warn) return Tone::Warn;
  }
  return Tone::Plain;
}

ProgressBoard::ProgressBoard(int name_width, std::FILE* out)
    : name_width_(name_width), out_(out), live_(out == stdout && stdoutIsTty()) {}

std::string ProgressBoard::render(const Row& r) const {
  char head[256];
  std::snprintf(head, sizeof head, "%-*s ", name_width_, r.name.c_str());
  char state[32];
  std::snprintf(state, sizeof state, "%-11s", r.state.c_str());
  char pct[16];
  std::snprintf(pct, sizeof pct, " %3d%% ", r.percent);
  return head + paint(state, toneOf(r.state)) + pct + r.message;
}

void ProgressBoard::redraw() {
  if (drawn_ > 0) std::fprintf(out_, "\x1b[%dA", drawn_);  // back to the board's first line
  for (const auto& r : rows_) std::fprintf(out_, "\r\x1b[2K%s\n", render(r).c_str());
  drawn_ = static_cast<int>(rows_.size());
  std::fflush(out_);
}

void ProgressBoard::update(const std::string& name, const std::string& state, int percent,
                           const std::string& message) {
  Row* row = nullptr;
  for (auto& r : rows_) {
    if (r.name == name) row = &r;
  }
  if (row == nullptr) row = &rows_.emplace_back();
  *row = Row{name, state, message, percent};
  if (live_) {
    redraw();
    return;
  }
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  std::fprintf(out_, "%6.2fs %s\n", t, render(*row).c_str());
  std::fflush(out_);
}

void ProgressBoard::finish(const std::string& line) {
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  std::fprintf(out_, "%6.2fs %s\n", t, line.c_str());
  std::fflush(out_);
}

}  // namespace dspy::cli
