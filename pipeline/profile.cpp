#include "pipeline/profile.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "pipeline/error.hpp"

namespace lvmflow {

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  // Nearest-rank percentiles: the smallest observation with at least q of them at or below it.
  auto at = [&](double q) {
    std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank ? rank - 1 : 0)];
  };
  p.p50 = at(0.50);
  p.p95 = at(0.95);
  p.p99 = at(0.99);
  p.max = v.back();
  return p;
}

double union_length(std::vector<std::pair<double, double>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  double total = 0, cur_start = 0, cur_end = 0;
  bool open = false;
  for (const auto& [start, end] : intervals) {
    if (open && start <= cur_end) {
      cur_end = std::max(cur_end, end);
      continue;
    }
    if (open) total += cur_end - cur_start;
    cur_start = start;
    cur_end = end;
    open = true;
  }
  if (open) total += cur_end - cur_start;
  return total;
}

namespace {

// Most intervals open at one instant (a sweep over start/end events; ends sort first, so
// back-to-back batches do not count as overlapping).
int max_overlap(const std::vector<const Span*>& spans) {
  std::vector<std::pair<std::int64_t, int>> events;
  for (const Span* s : spans) {
    events.emplace_back(s->start_ns, +1);
    events.emplace_back(s->end_ns, -1);
  }
  std::sort(events.begin(), events.end());
  int open = 0, most = 0;
  for (const auto& e : events) most = std::max(most, open += e.second);
  return most;
}

StageProfile profile_stage(const StageRunRecord& sr, const std::vector<const Span*>& spans, double run_wall_s) {
  StageProfile sp;
  sp.stage = sr.stage;
  sp.type = sr.type;
  sp.action = sr.action;
  sp.status = sr.status;
  std::vector<double> batch_ms, item_ms, queued_ms;
  std::vector<std::pair<double, double>> intervals;
  std::int64_t first = INT64_MAX, last = INT64_MIN;
  for (const Span* s : spans) {
    double ms = static_cast<double>(s->end_ns - s->start_ns) / 1e6;
    ++sp.calls;
    sp.items += s->items;
    sp.busy_s += ms / 1e3;
    batch_ms.push_back(ms);
    if (s->items > 0) item_ms.push_back(ms / static_cast<double>(s->items));
    queued_ms.push_back(static_cast<double>(s->queued_ns) / 1e6);
    sp.queued_s += static_cast<double>(s->queued_ns) / 1e9;
    intervals.emplace_back(static_cast<double>(s->start_ns) / 1e9, static_cast<double>(s->end_ns) / 1e9);
    first = std::min(first, s->start_ns);
    last = std::max(last, s->end_ns);
  }
  if (sp.calls) {
    sp.first_start_s = static_cast<double>(first) / 1e9;
    sp.last_end_s = static_cast<double>(last) / 1e9;
    sp.wall_s = sp.last_end_s - sp.first_start_s;
    sp.active_s = union_length(std::move(intervals));
    sp.items_per_s = sp.wall_s > 0 ? static_cast<double>(sp.items) / sp.wall_s : 0;
    sp.parallelism = sp.active_s > 0 ? sp.busy_s / sp.active_s : 0;
    sp.max_parallel = max_overlap(spans);
  }
  sp.batch_ms = percentiles(std::move(batch_ms));
  sp.item_ms = percentiles(std::move(item_ms));
  sp.queued_ms = percentiles(std::move(queued_ms));
  sp.share = run_wall_s > 0 ? sp.active_s / run_wall_s : 0;
  return sp;
}

// Topological order of the recorded stages (inputs first). Ties follow the order in which the
// plan's edges name the stages (they are written in plan order), then the stage_runs rows.
std::vector<std::size_t> pipeline_order(const std::vector<StageRunRecord>& stage_runs,
                                        const std::vector<StageEdge>& edges) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < stage_runs.size(); ++i) index.emplace(stage_runs[i].stage, i);
  std::map<std::string, std::size_t> named_at;
  for (const auto& e : edges) {
    named_at.emplace(e.input, named_at.size());
    named_at.emplace(e.stage, named_at.size());
  }
  std::vector<std::size_t> priority(stage_runs.size());
  for (std::size_t i = 0; i < stage_runs.size(); ++i) {
    auto it = named_at.find(stage_runs[i].stage);
    priority[i] = it != named_at.end() ? it->second : named_at.size() + i;
  }
  std::vector<std::vector<std::size_t>> readers(stage_runs.size());
  std::vector<int> pending(stage_runs.size(), 0);
  for (const auto& e : edges) {
    auto s = index.find(e.stage), in = index.find(e.input);
    if (s == index.end() || in == index.end()) continue;
    readers[in->second].push_back(s->second);
    ++pending[s->second];
  }
  std::set<std::pair<std::size_t, std::size_t>> ready;   // (priority, index)
  for (std::size_t i = 0; i < stage_runs.size(); ++i)
    if (!pending[i]) ready.emplace(priority[i], i);
  std::vector<std::size_t> order;
  while (!ready.empty()) {
    std::size_t i = ready.begin()->second;
    ready.erase(ready.begin());
    order.push_back(i);
    for (std::size_t r : readers[i])
      if (--pending[r] == 0) ready.emplace(priority[r], r);
  }
  // A cycle cannot come from a valid plan; keep any leftover stage rather than drop it.
  for (std::size_t i = 0; i < stage_runs.size(); ++i)
    if (pending[i] > 0) order.push_back(i);
  return order;
}

}  // namespace

std::string shown_status(const RunRecord& run) {
  if (run.status == "running" && !run.process_alive) return "interrupted";
  return run.status;
}

std::string shown_status(const RunRecord& run, const StageRunRecord& stage) {
  bool unfinished = stage.status == "pending" || stage.status == "running";
  return unfinished && shown_status(run) == "interrupted" ? "interrupted" : stage.status;
}

const StageProfile* RunProfile::bottleneck() const {
  for (const auto& s : stages)
    if (s.bottleneck) return &s;
  return nullptr;
}

const StageProfile* RunProfile::find(const std::string& stage) const {
  for (const auto& s : stages)
    if (s.stage == stage) return &s;
  return nullptr;
}

RunProfile profile_run(Store& store, std::int64_t run_id) {
  RunProfile prof;
  auto run = store.run(run_id);
  if (!run) throw Error("run " + std::to_string(run_id), "no such run in " + store.root().string(),
                        "`lvmflow runs` lists the runs");
  prof.run = *run;
  auto stage_runs = store.stage_runs(run_id);
  auto spans = store.spans(run_id);
  auto edges = store.stage_edges(run_id);
  prof.has_edges = !edges.empty();
  std::map<std::string, std::vector<const Span*>> by_stage;
  // Span times count from the graph's start, so the run's wall time is its last end.
  std::int64_t run_end = 0;
  for (const auto& s : spans) {
    by_stage[s.stage].push_back(&s);
    run_end = std::max(run_end, s.end_ns);
  }
  for (const auto& sr : stage_runs) run_end = std::max(run_end, sr.finished_ns);
  prof.wall_s = static_cast<double>(run_end) / 1e9;

  std::map<std::string, std::vector<std::string>> inputs;
  for (const auto& e : edges) {
    auto& list = inputs[e.stage];
    if (list.size() <= static_cast<std::size_t>(e.slot)) list.resize(static_cast<std::size_t>(e.slot) + 1);
    list[static_cast<std::size_t>(e.slot)] = e.input;
  }
  for (std::size_t i : pipeline_order(stage_runs, edges)) {
    const auto& sr = stage_runs[i];
    prof.stages.push_back(profile_stage(sr, by_stage[sr.stage], prof.wall_s));
    prof.stages.back().inputs = inputs[sr.stage];
  }
  // The bottleneck: the working stage that was busy for the longest part of the run. Active
  // time (not summed batch time) so that a stage running 4 batches at once counts what it
  // cost the run's wall clock. Replays read stored output and are never the bottleneck.
  StageProfile* worst = nullptr;
  for (auto& sp : prof.stages)
    if (sp.action == "run" && sp.calls && (!worst || sp.active_s > worst->active_s)) worst = &sp;
  if (worst) worst->bottleneck = true;
  return prof;
}

const std::vector<ProfileField>& profile_fields() {
  using S = const StageProfile&;
  static const std::vector<ProfileField> fields = {
      {"calls", [](S s) { return static_cast<double>(s.calls); }},
      {"items", [](S s) { return static_cast<double>(s.items); }},
      {"busy_s", [](S s) { return s.busy_s; }},
      {"active_s", [](S s) { return s.active_s; }},
      {"wall_s", [](S s) { return s.wall_s; }},
      {"first_start_s", [](S s) { return s.first_start_s; }},
      {"batch_p50_ms", [](S s) { return s.batch_ms.p50; }},
      {"batch_p95_ms", [](S s) { return s.batch_ms.p95; }},
      {"batch_p99_ms", [](S s) { return s.batch_ms.p99; }},
      {"batch_max_ms", [](S s) { return s.batch_ms.max; }},
      {"item_p50_ms", [](S s) { return s.item_ms.p50; }},
      {"item_p95_ms", [](S s) { return s.item_ms.p95; }},
      {"item_p99_ms", [](S s) { return s.item_ms.p99; }},
      {"items_per_s", [](S s) { return s.items_per_s; }},
      {"share", [](S s) { return s.share; }},
      {"parallelism", [](S s) { return s.parallelism; }},
      {"max_parallel", [](S s) { return static_cast<double>(s.max_parallel); }},
      {"queued_p50_ms", [](S s) { return s.queued_ms.p50; }},
      {"queued_p95_ms", [](S s) { return s.queued_ms.p95; }},
      {"queued_p99_ms", [](S s) { return s.queued_ms.p99; }},
      {"queued_s", [](S s) { return s.queued_s; }},
  };
  return fields;
}

double ratio(double a, double b) {
  return a != 0 ? b / a : std::numeric_limits<double>::quiet_NaN();
}

RunComparison compare_runs(Store& store, std::int64_t run_a, std::int64_t run_b) {
  RunComparison c;
  c.a = profile_run(store, run_a);
  c.b = profile_run(store, run_b);
  c.wall_ratio = ratio(c.a.wall_s, c.b.wall_s);
  const auto& fields = profile_fields();
  for (const auto& sa : c.a.stages) {
    StageComparison sc;
    sc.stage = sa.stage;
    sc.a = sa;
    if (const auto* sb = c.b.find(sa.stage)) sc.b = *sb;
    c.stages.push_back(std::move(sc));
  }
  // Stages only in b go right after the stage that precedes them in b.
  std::string previous;
  for (const auto& sb : c.b.stages) {
    if (!c.a.find(sb.stage)) {
      StageComparison sc;
      sc.stage = sb.stage;
      sc.b = sb;
      auto at = c.stages.begin();   // no predecessor in b: it comes first
      if (!previous.empty()) {
        auto before = std::find_if(c.stages.begin(), c.stages.end(),
                                   [&](const StageComparison& x) { return x.stage == previous; });
        at = before == c.stages.end() ? c.stages.end() : before + 1;
      }
      c.stages.insert(at, std::move(sc));
    }
    previous = sb.stage;
  }
  for (auto& sc : c.stages) {
    sc.ratios.assign(fields.size(), std::numeric_limits<double>::quiet_NaN());
    if (sc.a && sc.b)
      for (std::size_t f = 0; f < fields.size(); ++f) sc.ratios[f] = ratio(fields[f].get(*sc.a), fields[f].get(*sc.b));
  }
  return c;
}

}  // namespace lvmflow
