#include "pipeline/executor.hpp"

#include <chrono>
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

RunResult run_pipeline(const PipelineSpec& spec, Store& store, const RunOptions& options) {
  std::ostream& out = options.out ? *options.out : std::cerr;
  RunResult result;
  result.plan = make_plan(spec, store, options.plan);
  result.run_id = store.begin_run(spec.name, spec.file.string(), options.args);
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

  ProgressPrinter printer(out, options.progress);
  GraphEvents events;
  events.log = [&](const std::string& stage, const std::string& msg) { printer.log(stage, msg); };
  events.stage_finished = [&](const StageProgress& p) { printer.stage_finished(p); };
  RunGraph graph(spec, result.plan, store, result.run_id, options.graph, events);

  // A watcher turns Ctrl-C into a graph cancellation (not async-signal-safe in a handler)
  // and redraws the progress line.
  auto started = std::chrono::steady_clock::now();
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false, interrupted = false;
  std::thread watcher([&] {
    std::unique_lock lock(mutex);
    while (!cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return done; })) {
      if (options.interrupt && options.interrupt->load() && !interrupted) {
        interrupted = true;
        graph.cancel("interrupted (Ctrl-C)");
      }
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      printer.status(graph.progress(), elapsed);
    }
  });
  std::string error = graph.run();
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  cv.notify_all();
  watcher.join();
  printer.clear_line();

  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.error = error;
  result.status = error.empty() ? "succeeded" : interrupted ? "cancelled" : "failed";
  store.finish_run(result.run_id, result.status, error);
  return result;
}

}  // namespace lvmflow
