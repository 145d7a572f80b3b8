#pragma once
// A plan turned into one tbb::flow::graph (see docs/architecture.md for the node layout):
//   source / replay : input_node -> limiter_node (batches in flight) -> ordered output
//   map             : inbox per input -> function_node(concurrency) -> sequencer -> output
//   barrier         : inbox per input (count, drop) -> runner (once all inputs ended; it streams
//                     the committed inputs from the store) -> output
// Every batch carries a token of the source it descends from; the token goes back to that
// source's limiter when the last copy of the batch is gone, which bounds memory end to end.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/plan.hpp"
#include "pipeline/store.hpp"

namespace lvmflow {

struct StageProgress {
  std::string name;
  Action action = Action::Run;
  std::int64_t items_in = 0, items_out = 0, batches = 0;
  bool started = false, finished = false;
  double seconds = 0;
};

struct GraphEvents {
  std::function<void(const std::string& stage, const std::string& message)> log;
  std::function<void(const StageProgress&)> stage_finished;
};

struct GraphOptions {
  std::size_t max_in_flight = 4;   // batches per source/replay between it and its consumers
  // Off only to measure what span recording costs (tools/bench/profile); runs then store no spans.
  bool record_spans = true;
  // A shard's run: sources emit only the shard's rows (pipeline/shard.hpp).
  ShardSpec shard;
  // Replaces the store as the stages' item cache (a merge refuses new items); null: the store.
  ItemCache* item_cache = nullptr;
};

class RunGraph {
 public:
  RunGraph(const PipelineSpec& spec, const Plan& plan, Store& store, std::int64_t run_id,
           GraphOptions options, GraphEvents events);
  ~RunGraph();

  // Runs until every executing stage finished or the first error; returns "" on success,
  // else the error naming stage and item.
  std::string run();
  // Thread-safe; the first reason given wins.
  void cancel(const std::string& why);
  bool cancelled() const;
  std::vector<StageProgress> progress() const;

  struct Impl;   // defined in graph.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lvmflow
