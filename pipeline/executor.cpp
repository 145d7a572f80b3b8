#include "pipeline/executor.hpp"

#include <chrono>
#include <csignal>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

namespace lvmflow {

namespace {

std::string format_rate(double items, double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f/s", seconds > 0 ? items / seconds : 0.0);
  return buf;
}

// Prints progress: one status line redrawn on a terminal, plain lines otherwise. Stage logs
// go through here too so they never tear the status line.
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& out, ProgressMode mode) : out_(out), mode_(mode) {}

  void log(const std::string& stage, const std::string& message) {
    if (mode_ == ProgressMode::None) return;
    std::lock_guard lock(mutex_);
    clear_line();
    std::istringstream lines(message);
    std::string line;
    while (std::getline(lines, line)) out_ << "[" << stage << "] " << line << "\n";
    out_.flush();
  }
  void stage_finished(const StageProgress& p) {
    if (mode_ == ProgressMode::None) return;
    std::lock_guard lock(mutex_);
    clear_line();
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-24s %-7s %8lld items out in %7.2f s  (%s)\n", p.name.c_str(),
                  p.action == Action::Replay ? "replay" : "done", static_cast<long long>(p.items_out),
                  p.seconds, format_rate(static_cast<double>(p.items_in), p.seconds).c_str());
    out_ << buf;
    out_.flush();
  }
  void status(const std::vector<StageProgress>& stages, double elapsed) {
    if (mode_ != ProgressMode::Terminal) return;
    std::lock_guard lock(mutex_);
    std::string line;
    for (const auto& s : stages) {
      if (s.finished || !s.started) continue;
      line += s.name + " " + std::to_string(s.items_in) + " (" +
              format_rate(static_cast<double>(s.items_in), elapsed) + ")  ";
    }
    clear_line();
    if (line.empty()) return;
    if (line.size() > 150) line = line.substr(0, 147) + "...";
    out_ << line << std::flush;
    drawn_ = true;
  }
  void clear_line() {
    if (drawn_) out_ << "\r\033[K";
    drawn_ = false;
  }

 private:
  std::ostream& out_;
  ProgressMode mode_;
  std::mutex mutex_;
  bool drawn_ = false;
};

}  // namespace

namespace {

std::string interrupt_reason(const RunOptions& o) {
  int sig = o.interrupt_signal ? o.interrupt_signal->load() : SIGINT;
  if (sig == SIGINT) return "interrupted (Ctrl-C)";
  const char* name = sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : nullptr;
  return std::string("interrupted (") + (name ? name : "signal " + std::to_string(sig)) + ")";
}

// Runs the graph with a watcher thread that turns an interrupt into a graph cancellation (not
// async-signal-safe in a handler) and redraws the progress line. Whatever happens, the watcher
// is stopped and joined before this returns; an exception becomes the run's error.
std::string run_watched(RunGraph& graph, ProgressPrinter& printer, const RunOptions& options, bool& interrupted) {
  const auto started = std::chrono::steady_clock::now();
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::thread watcher([&] {
    std::unique_lock lock(mutex);
    while (!cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return done; })) {
      if (options.interrupt && options.interrupt->load() && !interrupted) {
        interrupted = true;
        graph.cancel(interrupt_reason(options));
      }
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      printer.status(graph.progress(), elapsed);
    }
  });
  std::string error;
  try {
    error = graph.run();
  } catch (const std::exception& e) {
    error = e.what();
  }
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  cv.notify_all();
  watcher.join();
  printer.clear_line();
  return error;
}

}  // namespace

RunResult run_pipeline(const PipelineSpec& spec, Store& store, const RunOptions& options) {
  std::ostream& out = options.out ? *options.out : std::cerr;
  RunResult result;
  result.plan = make_plan(spec, store, options.plan);
  result.run_id = store.begin_run(spec.name, spec.file.string(), options.args);
  const auto started = std::chrono::steady_clock::now();
  ProgressPrinter printer(out, options.progress);
  bool interrupted = false;
  std::string error;
  try {
    std::vector<StageEdge> edges;
    for (const auto& p : result.plan.stages)
      for (std::size_t slot = 0; slot < p.spec->inputs.size(); ++slot)
        edges.push_back({p.spec->name, p.spec->inputs[slot], static_cast<std::int64_t>(slot)});
    store.add_stage_edges(result.run_id, edges);
    // Stages that take no part still get a record, so `show` lists the whole pipeline.
    for (const auto& p : result.plan.stages)
      if (p.action == Action::Cached || p.action == Action::Skipped) {
        auto id = store.begin_stage_run(result.run_id, p.spec->name, p.spec->type, p.key, to_string(p.action));
        store.finish_stage_run(id, p.action == Action::Cached ? "done" : "skipped", 0, 0, 0, 0, 0, "");
      }
    for (const auto& p : result.plan.stages)
      if (!p.damage.empty())
        printer.log(p.spec->name, "stored output is damaged (" + p.damage + "): recomputing it, the new output replaces it");

    GraphEvents events;
    events.log = [&](const std::string& stage, const std::string& msg) { printer.log(stage, msg); };
    events.stage_finished = [&](const StageProgress& p) { printer.stage_finished(p); };
    RunGraph graph(spec, result.plan, store, result.run_id, options.graph, events);
    error = run_watched(graph, printer, options, interrupted);
  } catch (const std::exception& e) {   // the store could not record the run's start (disk full?)
    error = e.what();
  }

  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.error = error;
  result.status = error.empty() ? "succeeded" : interrupted ? "cancelled" : "failed";
  try {
    store.finish_run(result.run_id, result.status, error);
  } catch (const std::exception& e) {
    result.status = "failed";
    result.error = (error.empty() ? "" : error + "; ") + "could not record the run's end: " + e.what();
  }
  return result;
}

}  // namespace lvmflow
