#include "pipeline/graph.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <tbb/flow_graph.h>

#include "pipeline/error.hpp"
#include "pipeline/key_parts.hpp"

namespace lvmflow {

namespace fs = std::filesystem;
namespace flow = tbb::flow;

struct Packet;

namespace {

using Clock = std::chrono::steady_clock;

// Cached per thread: a gettid syscall per span would be most of what recording a span costs.
std::int64_t thread_id() {
  thread_local const auto id = static_cast<std::int64_t>(::syscall(SYS_gettid));
  return id;
}

// Bounds the batches in flight below one source: a Token per batch, handed back to the
// source's limiter when the batch's last copy is released. `alive` is cleared before the
// graph is torn down, so late releases do not touch destroyed nodes.
struct FlowGate {
  std::recursive_mutex mutex;
  bool alive = true;
  flow::limiter_node<std::shared_ptr<const Packet>>* limiter = nullptr;
  void release() {
    std::lock_guard lock(mutex);
    if (alive && limiter) limiter->decrementer().try_put(flow::continue_msg());
  }
  void close() {
    std::lock_guard lock(mutex);
    alive = false;
  }
};

struct Token {
  explicit Token(std::shared_ptr<FlowGate> g) : gate(std::move(g)) {}
  ~Token() { gate->release(); }
  std::shared_ptr<FlowGate> gate;
};

}  // namespace

struct Packet {
  Batch batch;
  bool end = false;   // end of stream; batch.seq is then the number of batches before it
  std::vector<std::shared_ptr<Token>> tokens;
};
using Msg = std::shared_ptr<const Packet>;

namespace {

struct WorkItem {
  Msg msg;
  std::int64_t enqueued_ns = 0;
};

Msg make_end(std::uint64_t count) {
  auto p = std::make_shared<Packet>();
  p->end = true;
  p->batch.seq = count;
  return p;
}

std::string describe_item(const Batch& b) {
  if (b.rows() == 0) return "batch #" + std::to_string(b.seq);
  std::string s = "batch #" + std::to_string(b.seq) + " (first item '" + b.ids.front() + "'";
  if (b.rows() > 1) s += ", " + std::to_string(b.rows()) + " items";
  return s + ")";
}

}  // namespace

struct StageRuntime;

struct RunGraph::Impl {
  Impl(const PipelineSpec& s, const Plan& p, Store& st, std::int64_t run, GraphOptions o, GraphEvents e)
      : spec(s), plan(p), store(st), run_id(run), options(o), events(std::move(e)) {}

  std::int64_t now_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  }
  void fail(const std::string& stage, const std::string& what) {
    {
      std::lock_guard lock(error_mutex);
      // Stages often name themselves in their errors already; say it once.
      const std::string prefix = "stage '" + stage + "'";
      if (error.empty()) error = stage.empty() || what.rfind(prefix, 0) == 0 ? what : prefix + ": " + what;
    }
    cancel_flag = true;
    graph.cancel();
  }

  const PipelineSpec& spec;
  const Plan& plan;
  Store& store;
  std::int64_t run_id;
  GraphOptions options;
  GraphEvents events;
  Clock::time_point t0 = Clock::now();
  std::atomic<bool> cancel_flag{false};
  std::atomic<bool> interrupted{false};   // cancelled from outside (a signal), not by an error
  std::mutex error_mutex;
  std::string error;
  flow::graph graph;   // declared before the runtimes: nodes must die before their graph
  std::vector<std::unique_ptr<StageRuntime>> runtimes;   // by plan index (null if not executing)
};

// One executing stage (run or replay): its nodes, counters and StageContext.
struct StageRuntime : StageContext, BatchSink {
  StageRuntime(RunGraph::Impl& g, std::size_t index) : g(g), planned(g.plan.stages[index]), spec(*planned.spec) {}

  // --- StageContext ---
  const std::string& stage_name() const override { return spec.name; }
  const Params& params() const override { return spec.params; }
  fs::path artifact_dir() const override { return staging; }
  fs::path resume_dir(const std::string& id) override {
    auto folder = g.store.claim_resume_folder(id);
    fs::path path = folder->path();
    if (!folder->shared()) log("another run is doing the same work: this run keeps its resume state in " + path.string());
    std::lock_guard lock(mutex);
    resume_folders.push_back(std::move(folder));
    return path;
  }
  fs::path input_dir(std::size_t i) const override {
    return g.store.artifact_path(g.plan.stages.at(planned.inputs.at(i)).key);
  }
  std::size_t input_count() const override { return planned.inputs.size(); }
  const std::string& input_name(std::size_t i) const override { return spec.inputs.at(i); }
  const std::string& artifact_key() const override { return planned.key; }
  fs::path committed_artifact(const std::string& key) const override {
    // Never this stage's own key: it is recomputed because that output is forced, damaged or
    // gone, so whatever refers to it (item-cache row references) must not be served from it.
    if (key == planned.key) return {};
    auto entry = g.store.find_cache(key);
    if (!entry || !g.store.verify_artifact(key, VerifyDepth::Quick).ok()) return {};
    return entry->artifact;
  }
  void metric(const std::string& name, double value, std::int64_t step, const std::string& label) override {
    g.store.add_metric(g.run_id, {spec.name, name, label, "", step, value});
  }
  void metric_text(const std::string& name, const std::string& text) override {
    g.store.add_metric(g.run_id, {spec.name, name, "", text, -1, 0});
  }
  void log(const std::string& message) override {
    if (g.events.log) g.events.log(spec.name, message);
  }
  bool cancelled() const override { return g.cancel_flag.load(); }
  ItemCache& item_cache() override { return g.options.item_cache ? *g.options.item_cache : g.store; }
  void record_chunks(const Batch& chunks) override {
    std::lock_guard lock(mutex);
    chunk_rows.push_back(chunks);
  }
  // --- BatchSink (barrier output) ---
  void emit(Batch batch) override {
    batch.seq = barrier_out.size();
    batch.check_consistent("stage '" + spec.name + "' output");
    barrier_out.push_back(std::move(batch));
  }

  void add_span(std::uint64_t seq, std::int64_t start, std::int64_t end, std::int64_t queued, std::int64_t items) {
    std::lock_guard lock(mutex);
    // The first batch marks the stage running in the store, so `show` on a live run tells.
    if (first_start < 0) g.store.mark_stage_running(stage_run_id);
    if (first_start < 0 || start < first_start) first_start = start;
    if (g.options.record_spans) spans.push_back({spec.name, seq, start, end, queued, items, thread_id()});
  }

  bool running() const { return planned.action == Action::Run; }

  // Output side, called serially and in stream order.
  void record(const Batch& b) {
    if (running()) {
      if (auto* map = dynamic_cast<MapStage*>(stage.get())) map->consume_ordered(*this, b);
      // A stage that keeps its vectors in vectors.npy has them there in stream order.
      write_batch(batches_file, b, spec.info->vectors_file ? items_out.load() : -1);
    }
    items_out += static_cast<std::int64_t>(b.rows());
    ++batches;
  }
  void forward(const Msg& m) {
    for (auto& [consumer, slot] : outputs) consumer->inboxes[slot]->try_put(m);
  }
  void deliver(const Msg& m) {
    if (g.cancel_flag) return;
    try {
      if (!m->end) {
        record(m->batch);
        forward(m);
        return;
      }
      complete();
      forward(m);
    } catch (const std::exception& e) {
      g.fail(spec.name, std::string(e.what()) + (m->end ? "" : " at " + describe_item(m->batch)));
    }
  }
  // End of this stage's stream: finish, commit the artifact, mark done.
  void complete() {
    if (running()) {
      if (auto* map = dynamic_cast<MapStage*>(stage.get())) map->finish(*this);
      batches_file.close();
      if (!batches_file) throw Error(staging.string(), "could not write batches.bin", "check free disk space");
      CacheEntry entry;
      entry.key = planned.key;
      entry.stage_type = spec.type;
      entry.run_id = g.run_id;
      entry.items = items_out;
      entry.batches = batches;
      g.store.commit_artifact(staging, entry, chunk_rows, planned.replace_stored);
      committed = true;
    }
    finished_ns = g.now_ns();
    finished = true;
    // Recorded now, not at the end of the run: a run killed later still shows this stage done.
    record_stage_run("");
    if (g.events.stage_finished) g.events.stage_finished(snapshot());
  }
  void record_stage_run(const std::string& error) {
    const bool interrupted = g.interrupted.load();
    std::string status = finished ? "done" : (error.empty() || interrupted) ? "cancelled" : "failed";
    g.store.finish_stage_run(stage_run_id, status, std::max<std::int64_t>(first_start, 0),
                             finished ? finished_ns : g.now_ns(), items_in, items_out, batches,
                             finished ? "" : error);
  }
  StageProgress snapshot() const {
    StageProgress p;
    p.name = spec.name;
    p.action = planned.action;
    p.items_in = items_in;
    p.items_out = items_out;
    p.batches = batches;
    p.started = first_start >= 0 || finished;
    p.finished = finished;
    std::int64_t start = first_start >= 0 ? first_start : 0;
    p.seconds = finished ? (finished_ns - start) / 1e9 : 0;
    return p;
  }

  RunGraph::Impl& g;
  const PlannedStage& planned;
  const StageSpec& spec;
  std::unique_ptr<Stage> stage;
  fs::path staging;
  std::ofstream batches_file;
  std::unique_ptr<ArtifactReader> replay;
  std::int64_t stage_run_id = 0;

  std::mutex mutex;
  std::vector<Span> spans;
  std::vector<Batch> chunk_rows;
  std::int64_t first_start = -1, finished_ns = 0;
  std::atomic<std::int64_t> items_in{0}, items_out{0}, batches{0};
  std::atomic<bool> finished{false};
  bool committed = false;
  std::vector<std::unique_ptr<ResumeFolder>> resume_folders;

  // Where this stage's output goes: (consumer, its input slot).
  std::vector<std::pair<StageRuntime*, std::size_t>> outputs;

  // Source / replay.
  std::shared_ptr<FlowGate> gate;
  std::unique_ptr<flow::input_node<Msg>> source;
  std::unique_ptr<flow::limiter_node<Msg>> limiter;
  std::unique_ptr<flow::function_node<Msg>> fanout;
  std::uint64_t produced = 0;
  bool source_done = false;

  // Inboxes, one per input.
  std::vector<std::unique_ptr<flow::function_node<Msg>>> inboxes;

  // Map.
  std::unique_ptr<flow::function_node<WorkItem, Msg>> work;
  std::unique_ptr<flow::sequencer_node<Msg>> sequencer;
  std::unique_ptr<flow::function_node<Msg>> emitter;
  std::size_t sides_pending = 0;
  bool gate_open = true;
  std::vector<Msg> pending;
  Batch rebatch;
  std::vector<std::shared_ptr<Token>> rebatch_tokens;
  std::uint64_t next_seq = 0;

  // Barrier.
  std::size_t inputs_pending = 0;
  std::vector<Batch> barrier_out;
  std::unique_ptr<flow::function_node<flow::continue_msg>> runner;
};

namespace {

// --- sources and replays -------------------------------------------------------------

Msg next_source_packet(StageRuntime& rt) {
  auto p = std::make_shared<Packet>();
  if (rt.gate) p->tokens.push_back(std::make_shared<Token>(rt.gate));
  std::int64_t start = rt.g.now_ns();
  bool got = false;
  if (rt.running()) {
    std::size_t hint = rt.spec.batch_size ? rt.spec.batch_size : 64;
    got = static_cast<SourceStage&>(*rt.stage).next(rt, p->batch, hint);
    if (got) p->batch.check_consistent("stage '" + rt.spec.name + "' output");
  } else {
    got = rt.replay->next(p->batch);
  }
  if (!got) return nullptr;
  p->batch.seq = rt.produced++;
  rt.items_in += static_cast<std::int64_t>(p->batch.rows());
  rt.add_span(p->batch.seq, start, rt.g.now_ns(), 0, static_cast<std::int64_t>(p->batch.rows()));
  return p;
}

void build_source(StageRuntime& rt) {
  auto& g = rt.g;
  rt.gate = std::make_shared<FlowGate>();
  rt.source = std::make_unique<flow::input_node<Msg>>(g.graph, [&rt](tbb::flow_control& fc) -> Msg {
    if (rt.source_done || rt.g.cancel_flag) {
      fc.stop();
      return nullptr;
    }
    try {
      if (Msg m = next_source_packet(rt)) return m;
    } catch (const std::exception& e) {
      rt.g.fail(rt.spec.name, std::string(e.what()) + " after batch #" + std::to_string(rt.produced));
      fc.stop();
      return nullptr;
    }
    rt.source_done = true;
    auto end = std::make_shared<Packet>();
    end->end = true;
    end->batch.seq = rt.produced;
    end->tokens.push_back(std::make_shared<Token>(rt.gate));
    return end;
  });
  rt.limiter = std::make_unique<flow::limiter_node<Msg>>(g.graph, g.options.max_in_flight);
  rt.gate->limiter = rt.limiter.get();
  rt.fanout = std::make_unique<flow::function_node<Msg>>(g.graph, flow::serial,
                                                         [&rt](const Msg& m) { rt.deliver(m); });
  flow::make_edge(*rt.source, *rt.limiter);
  flow::make_edge(*rt.limiter, *rt.fanout);
}

// --- map stages --------------------------------------------------------------------------

void submit_work(StageRuntime& rt, const Msg& m) { rt.work->try_put(WorkItem{m, rt.g.now_ns()}); }

// Open the gate once all side inputs ended: start the stage and release what waited.
void open_map_gate(StageRuntime& rt) {
  rt.gate_open = true;
  static_cast<MapStage&>(*rt.stage).start(rt);
  for (auto& m : rt.pending) submit_work(rt, m);
  rt.pending.clear();
}

void gate_or_submit(StageRuntime& rt, Msg m) {
  std::lock_guard lock(rt.mutex);
  if (rt.gate_open) {
    submit_work(rt, m);
    return;
  }
  // Held batches give their tokens back: the side input may depend on the same source,
  // which must keep flowing for it to finish.
  auto copy = std::make_shared<Packet>();
  copy->batch = m->batch;
  copy->end = m->end;
  rt.pending.push_back(std::move(copy));
}

void on_primary(StageRuntime& rt, const Msg& m) {
  if (!m->end) rt.items_in += static_cast<std::int64_t>(m->batch.rows());
  const std::size_t want = rt.spec.batch_size;
  if (!want) {
    gate_or_submit(rt, m);
    return;
  }
  // Re-batch the stream to `batch_size` rows; sequence numbers are re-assigned in order.
  auto flush = [&](bool all) {
    while (rt.rebatch.rows() >= want || (all && rt.rebatch.rows() > 0)) {
      std::size_t n = std::min(want, rt.rebatch.rows());
      auto p = std::make_shared<Packet>();
      p->batch = rt.rebatch.slice(0, n);
      p->batch.seq = rt.next_seq++;
      p->tokens = rt.rebatch_tokens;
      rt.rebatch = rt.rebatch.slice(n, rt.rebatch.rows());
      if (rt.rebatch.rows() == 0) rt.rebatch_tokens.clear();
      gate_or_submit(rt, p);
    }
  };
  if (m->end) {
    flush(true);
    gate_or_submit(rt, make_end(rt.next_seq));
    return;
  }
  rt.rebatch.append(m->batch);
  rt.rebatch_tokens.insert(rt.rebatch_tokens.end(), m->tokens.begin(), m->tokens.end());
  flush(false);
  // The rows left over (fewer than batch_size) give their tokens back: holding them could
  // take every token of the source while still short of a full batch, and the source could
  // then never send the rows that complete it. The buffer itself is bounded by batch_size.
  rt.rebatch_tokens.clear();
}

void build_map(StageRuntime& rt) {
  auto& g = rt.g;
  rt.work = std::make_unique<flow::function_node<WorkItem, Msg>>(
      g.graph, static_cast<std::size_t>(rt.spec.concurrency), [&rt](const WorkItem& item) -> Msg {
        const Msg& in = item.msg;
        if (in->end || rt.g.cancel_flag) return in;
        auto out = std::make_shared<Packet>();
        out->tokens = in->tokens;
        std::int64_t start = rt.g.now_ns();
        try {
          out->batch = static_cast<MapStage&>(*rt.stage).process(rt, in->batch);
          out->batch.check_consistent("stage '" + rt.spec.name + "' output");
        } catch (const std::exception& e) {
          rt.g.fail(rt.spec.name, std::string(e.what()) + " at " + describe_item(in->batch));
        }
        out->batch.seq = in->batch.seq;
        rt.add_span(in->batch.seq, start, rt.g.now_ns(), start - item.enqueued_ns,
                    static_cast<std::int64_t>(in->batch.rows()));
        return out;
      });
  rt.sequencer = std::make_unique<flow::sequencer_node<Msg>>(
      g.graph, [](const Msg& m) -> std::size_t { return m->batch.seq; });
  rt.emitter = std::make_unique<flow::function_node<Msg>>(g.graph, flow::serial,
                                                          [&rt](const Msg& m) { rt.deliver(m); });
  flow::make_edge(*rt.work, *rt.sequencer);
  flow::make_edge(*rt.sequencer, *rt.emitter);

  rt.sides_pending = rt.planned.inputs.size() - 1;
  rt.gate_open = rt.sides_pending == 0;
  for (std::size_t slot = 0; slot < rt.planned.inputs.size(); ++slot) {
    rt.inboxes.push_back(std::make_unique<flow::function_node<Msg>>(
        g.graph, flow::serial, [&rt, slot](const Msg& m) {
          if (rt.g.cancel_flag) return;
          try {
            if (slot == 0) return on_primary(rt, m);
            if (!m->end) return;   // side inputs are read through input_dir()
            std::lock_guard lock(rt.mutex);
            if (--rt.sides_pending == 0) open_map_gate(rt);
          } catch (const std::exception& e) {
            rt.g.fail(rt.spec.name, e.what());
          }
        }));
  }
}

// --- barrier stages ----------------------------------------------------------------------

void run_barrier(StageRuntime& rt) {
  if (rt.g.cancel_flag) return;
  // Every input committed its artifact before its end reached us: the stage streams them.
  std::vector<StageInput> inputs;
  for (std::size_t i = 0; i < rt.planned.inputs.size(); ++i)
    inputs.push_back({rt.spec.inputs[i], rt.input_dir(i), {}, true});
  const std::int64_t items = rt.items_in;
  std::int64_t start = rt.g.now_ns();
  try {
    rt.g.store.mark_stage_running(rt.stage_run_id);
    static_cast<BarrierStage&>(*rt.stage).run(rt, inputs, rt);
    inputs.clear();
    rt.add_span(0, start, rt.g.now_ns(), 0, items);
    for (const auto& b : rt.barrier_out) rt.record(b);
    rt.complete();
  } catch (const std::exception& e) {
    rt.g.fail(rt.spec.name, e.what());
    return;
  }
  for (auto& b : rt.barrier_out) {
    auto p = std::make_shared<Packet>();
    p->batch = std::move(b);
    rt.forward(p);
  }
  std::uint64_t count = rt.barrier_out.size();
  rt.barrier_out.clear();
  rt.forward(make_end(count));
}

void build_barrier(StageRuntime& rt) {
  auto& g = rt.g;
  rt.inputs_pending = rt.planned.inputs.size();
  rt.runner = std::make_unique<flow::function_node<flow::continue_msg>>(
      g.graph, flow::serial, [&rt](const flow::continue_msg&) { run_barrier(rt); });
  for (std::size_t slot = 0; slot < rt.planned.inputs.size(); ++slot) {
    rt.inboxes.push_back(std::make_unique<flow::function_node<Msg>>(
        g.graph, flow::serial, [&rt](const Msg& m) {
          if (rt.g.cancel_flag) return;
          if (!m->end) {
            // Counted and dropped (its token goes back): the stage reads the committed input.
            rt.items_in += static_cast<std::int64_t>(m->batch.rows());
            return;
          }
          std::lock_guard lock(rt.mutex);
          if (--rt.inputs_pending == 0) rt.runner->try_put(flow::continue_msg());
        }));
  }
}

}  // namespace

RunGraph::RunGraph(const PipelineSpec& spec, const Plan& plan, Store& store, std::int64_t run_id,
                   GraphOptions options, GraphEvents events)
    : impl_(std::make_unique<Impl>(spec, plan, store, run_id, options, std::move(events))) {}

RunGraph::~RunGraph() {
  if (!impl_) return;
  for (auto& rt : impl_->runtimes)
    if (rt && rt->gate) rt->gate->close();
  for (auto& rt : impl_->runtimes) {
    if (!rt || !rt->running() || rt->committed) continue;
    std::error_code ec;
    rt->batches_file.close();
    fs::remove_all(rt->staging, ec);
  }
}

void RunGraph::cancel(const std::string& why) {
  impl_->interrupted = true;
  impl_->fail("", why);
}
bool RunGraph::cancelled() const { return impl_->cancel_flag.load(); }

std::vector<StageProgress> RunGraph::progress() const {
  std::vector<StageProgress> out;
  for (const auto& rt : impl_->runtimes)
    if (rt) out.push_back(rt->snapshot());
  return out;
}

std::string RunGraph::run() {
  Impl& g = *impl_;
  const auto& stages = g.plan.stages;
  g.runtimes.resize(stages.size());
  std::vector<StageRuntime*> barriers_without_inputs;
  try {
    for (std::size_t i = 0; i < stages.size(); ++i) {
      const auto& p = stages[i];
      if (p.action != Action::Run && p.action != Action::Replay) continue;
      auto rt = std::make_unique<StageRuntime>(g, i);
      rt->stage_run_id = g.store.begin_stage_run(g.run_id, p.spec->name, p.spec->type, p.key, to_string(p.action));
      if (p.action == Action::Replay) {
        // Consumers that are all barriers read the artifact themselves: the replay then only
        // paces them and need not read the vectors.
        bool only_barriers = true;
        for (std::size_t c : p.consumers)
          only_barriers = only_barriers && stages[c].spec->info->kind == StageKind::Barrier;
        fs::path dir = g.store.artifact_path(p.key);
        if (!fs::exists(dir / "batches.bin"))
          throw Error((dir / "batches.bin").string(), "cannot open stored output", "run with --force " + p.spec->name);
        rt->replay = std::make_unique<ArtifactReader>(dir, !only_barriers);
        build_source(*rt);
      } else {
        rt->stage = p.spec->info->make(p.spec->params);
        if (g.options.shard.active() && p.spec->info->kind == StageKind::Source)
          rt->stage = shard_filtered_source(std::move(rt->stage), g.options.shard);
        rt->staging = g.store.make_staging_dir(p.key);
        write_key_parts(rt->staging / kKeyPartsFile, p);   // read by `lvmflow why`
        rt->batches_file.open(rt->staging / "batches.bin", std::ios::binary);
        switch (p.spec->info->kind) {
          case StageKind::Source: build_source(*rt); break;
          case StageKind::Map: build_map(*rt); break;
          case StageKind::Barrier:
            build_barrier(*rt);
            if (p.inputs.empty()) barriers_without_inputs.push_back(rt.get());
            break;
        }
      }
      g.runtimes[i] = std::move(rt);
    }
    // Wire outputs to consumers' inboxes.
    for (std::size_t i = 0; i < stages.size(); ++i) {
      if (!g.runtimes[i] || !g.runtimes[i]->running()) continue;
      for (std::size_t slot = 0; slot < stages[i].inputs.size(); ++slot)
        g.runtimes[stages[i].inputs[slot]]->outputs.emplace_back(g.runtimes[i].get(), slot);
    }
    for (auto& rt : g.runtimes)
      if (rt && rt->running() && rt->spec.info->kind == StageKind::Map && rt->gate_open)
        static_cast<MapStage&>(*rt->stage).start(*rt);
  } catch (const std::exception& e) {
    g.fail("", e.what());
    return g.error;
  }

  g.t0 = Clock::now();
  for (auto* rt : barriers_without_inputs) rt->runner->try_put(flow::continue_msg());
  for (auto& rt : g.runtimes)
    if (rt && rt->source) rt->source->activate();
  g.graph.wait_for_all();

  if (g.error.empty()) {
    for (auto& rt : g.runtimes)
      if (rt && !rt->finished) g.fail(rt->spec.name, "stage did not receive the end of its input (internal error)");
  }
  // Spans and stage records, also for a failed run: they show where it stopped.
  for (auto& rt : g.runtimes) {
    if (!rt) continue;
    g.store.add_spans(g.run_id, rt->spans);
    rt->record_stage_run(g.error);
  }
  return g.error;
}

}  // namespace lvmflow
