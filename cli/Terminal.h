// How the CLI writes for a person: colour only on a terminal (never with --no-color or
// $NO_COLOR), and a live board of per-item progress that redraws itself on a terminal
// and prints plain lines otherwise.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace dspy::cli {

// Set once from the command line (--no-color) before any command runs.
void setNoColor(bool no_color);
// True when stdout is a terminal.
bool stdoutIsTty();
// True when colour may be written to stdout.
bool useColor();

enum class Tone { Plain, Good, Warn, Bad, Dim };
// `text` in the tone's colour when colour is on; `text` unchanged otherwise.
std::string paint(const std::string& text, Tone tone);
// The tone of a state word: running/healthy/ok/complete... good, failed/error... bad.
Tone toneOf(const std::string& state);

// Rows of "NAME STATE PERCENT MESSAGE" updated as events arrive. On a terminal the
// board is redrawn in place; otherwise each update is one line with the elapsed time.
class ProgressBoard {
 public:
  explicit ProgressBoard(int name_width = 18, std::FILE* out = stdout);
  void update(const std::string& name, const std::string& state, int percent, const std::string& message);
  // A closing line under the board.
  void finish(const std::string& line);

 private:
  struct Row {
    std::string name, state, message;
    int percent = 0;
  };
  std::string render(const Row& r) const;
  void redraw();

  int name_width_;
  std::FILE* out_;
  bool live_;
  int drawn_ = 0;
  std::vector<Row> rows_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

}  // namespace dspy::cli
