#include "pipeline/profile.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "pipeline/error.hpp"

namespace lvmflow {

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  // Nearest-rank percentiles: the value below which q of the observations fall.
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

RunProfile profile_run(Store& store, std::int64_t run_id) {
  RunProfile prof;
  auto run = store.run(run_id);
  if (!run) throw Error("run " + std::to_string(run_id), "no such run in " + store.root().string(),
                        "`lvmflow runs` lists the runs");
  prof.run = *run;
  auto stage_runs = store.stage_runs(run_id);
  auto spans = store.spans(run_id);
  std::map<std::string, std::vector<const Span*>> by_stage;
  std::int64_t run_start = INT64_MAX, run_end = 0;
  for (const auto& s : spans) {
    by_stage[s.stage].push_back(&s);
    run_start = std::min(run_start, s.start_ns);
    run_end = std::max(run_end, s.end_ns);
  }
  for (const auto& sr : stage_runs) run_end = std::max(run_end, sr.finished_ns);
  if (run_start == INT64_MAX) run_start = 0;
  prof.wall_s = (run_end - std::min<std::int64_t>(run_start, 0)) / 1e9;

  for (const auto& sr : stage_runs) {
    StageProfile sp;
    sp.stage = sr.stage;
    sp.type = sr.type;
    sp.action = sr.action;
    std::vector<double> batch_ms, item_ms, queued_ms;
    std::int64_t first = INT64_MAX, last = 0;
    for (const Span* s : by_stage[sr.stage]) {
      double ms = (s->end_ns - s->start_ns) / 1e6;
      ++sp.calls;
      sp.items += s->items;
      sp.busy_s += ms / 1e3;
      batch_ms.push_back(ms);
      if (s->items > 0) item_ms.push_back(ms / static_cast<double>(s->items));
      queued_ms.push_back(s->queued_ns / 1e6);
      first = std::min(first, s->start_ns);
      last = std::max(last, s->end_ns);
    }
    if (sp.calls) {
      sp.wall_s = (last - first) / 1e9;
      sp.first_start_s = first / 1e9;
      sp.items_per_s = sp.wall_s > 0 ? static_cast<double>(sp.items) / sp.wall_s : 0;
    }
    sp.batch_ms = percentiles(batch_ms);
    sp.item_ms = percentiles(item_ms);
    sp.queued_ms = percentiles(queued_ms);
    sp.share = prof.wall_s > 0 ? sp.busy_s / prof.wall_s : 0;
    prof.stages.push_back(sp);
  }
  // The bottleneck: the stage that spent the most time working (replays are reads of stored
  // output, reported but never the bottleneck of the work).
  StageProfile* worst = nullptr;
  for (auto& sp : prof.stages)
    if (sp.action == "run" && sp.calls && (!worst || sp.busy_s > worst->busy_s)) worst = &sp;
  if (worst) worst->bottleneck = true;
  return prof;
}

}  // namespace lvmflow
