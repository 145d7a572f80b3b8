#include "pipeline/plan.hpp"

#include <algorithm>
#include <cstdint>
#include <map>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/store.hpp"

namespace lvmflow {

const char* to_string(Action a) {
  switch (a) {
    case Action::Run: return "run";
    case Action::Cached: return "cached";
    case Action::Replay: return "replay";
    case Action::Skipped: return "skipped";
  }
  return "?";
}

std::size_t Plan::index_of(const std::string& name) const {
  for (std::size_t i = 0; i < stages.size(); ++i)
    if (stages[i].spec->name == name) return i;
  throw Error("plan", "no stage named '" + name + "'");
}

namespace {

std::vector<KeyPart> key_parts(const StageSpec& s, const std::vector<std::pair<std::string, std::string>>& inputs,
                               Store& store) {
  std::vector<KeyPart> parts;
  parts.push_back({"type", s.type, std::to_string(s.info->version)});
  for (const auto& doc : s.info->params) {
    if (!doc.affects_output || !s.params.has(doc.name)) continue;
    parts.push_back({"param", doc.name, s.params.values().at(doc.name).canonical});
  }
  for (const auto& [name, key] : inputs) parts.push_back({"input", name, key});
  if (s.info->files_read) {
    for (const auto& f : s.info->files_read(s.params)) parts.push_back({"file", f.string(), store.file_fingerprint(f)});
  }
  // Batching changes how a source splits its output into batches, which is part of what is
  // stored and replayed.
  if (s.batch_size) parts.push_back({"batch_size", "batch_size", std::to_string(s.batch_size)});
  return parts;
}

}  // namespace

std::string key_of(const std::vector<KeyPart>& parts) {
  Sha256 h;
  h.field("lvmflow-stage-key-v1");
  for (const auto& p : parts) {
    if (p.kind != "input") h.field(p.name);   // inputs enter by key alone
    h.field(p.value);
  }
  return h.hex();
}

Plan make_plan(const PipelineSpec& spec, Store& store, const PlanOptions& options) {
  auto known = [&](const std::string& name) {
    for (const auto& s : spec.stages)
      if (s.name == name || s.group == name) return true;
    return false;
  };
  for (const auto& f : options.force)
    if (!known(f)) throw Error("--force " + f, "no stage named '" + f + "' in " + spec.file.string());
  if (!options.until.empty() && !spec.find(options.until))
    throw Error("--until " + options.until, "no stage named '" + options.until + "' in " + spec.file.string());

  // Topological order, stable with respect to file order.
  Plan plan;
  std::map<std::string, std::size_t> placed;
  while (placed.size() < spec.stages.size()) {
    bool progress = false;
    for (const auto& s : spec.stages) {
      if (placed.count(s.name)) continue;
      bool ready = true;
      for (const auto& in : s.inputs) ready = ready && placed.count(in);
      if (!ready) continue;
      PlannedStage p;
      p.spec = &s;
      for (const auto& in : s.inputs) p.inputs.push_back(placed[in]);
      placed[s.name] = plan.stages.size();
      plan.stages.push_back(p);
      progress = true;
    }
    if (!progress) throw Error(spec.file.string(), "stages form a cycle");
  }

  // --until: only the target and its ancestors take part.
  std::vector<bool> wanted(plan.stages.size(), options.until.empty());
  if (!options.until.empty()) {
    std::vector<std::size_t> todo = {placed[options.until]};
    while (!todo.empty()) {
      std::size_t i = todo.back();
      todo.pop_back();
      if (wanted[i]) continue;
      wanted[i] = true;
      for (auto in : plan.stages[i].inputs) todo.push_back(in);
    }
  }

  std::vector<bool> shardable;
  if (options.shardable_only || options.shard.active()) shardable = shardable_stages(plan.stages);
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    auto& p = plan.stages[i];
    std::vector<std::pair<std::string, std::string>> inputs;
    for (auto in : p.inputs) inputs.emplace_back(plan.stages[in].spec->name, plan.stages[in].key);
    p.key_parts = key_parts(*p.spec, inputs, store);
    // A shard's output holds only its articles: its key must never meet the unsharded one.
    if (options.shard.count > 1 && shardable[i]) p.key_parts.push_back({"shard", "shard", options.shard.text()});
    p.key = key_of(p.key_parts);
    // An uncached stage gets a fresh key each run, so everything downstream of it re-runs too:
    // its output may differ from the last run's.
    if (!p.spec->cache) p.key = Sha256().field(p.key).field("uncached").field(std::to_string(now_ms()) + "-" + std::to_string(i) + "-" + std::to_string(reinterpret_cast<std::uintptr_t>(&p))).hex();
    bool forced = options.force.count(p.spec->name) || options.force.count(p.spec->group);
    if (!wanted[i]) {
      p.action = Action::Skipped;
      p.reason = "not needed for --until " + options.until;
    } else if (!shardable.empty() && !shardable[i]) {
      p.action = Action::Skipped;
      p.reason = "not shardable: runs after lvmflow merge";
    } else if (!p.spec->cache) {
      p.action = Action::Run;
      p.reason = "cache: false";
    } else if (forced) {
      p.action = Action::Run;
      p.reason = "--force";
      p.replace_stored = true;
    } else if (store.find_cache(p.key)) {
      // Never use a damaged output: it is a miss, and the recomputed one replaces it.
      ArtifactStatus status = store.verify_artifact(p.key, VerifyDepth::Quick);
      if (status.ok()) {
        p.action = Action::Cached;
        p.reason = "output stored";
      } else {
        p.action = Action::Run;
        p.damage = status.problems.front() +
                   (status.problems.size() > 1 ? " (+" + std::to_string(status.problems.size() - 1) + " more)" : "");
        p.reason = "stored output is damaged (" + p.damage + ")";
        p.replace_stored = true;
      }
    } else {
      p.action = Action::Run;
      p.reason = "no stored output for this key (`lvmflow why " + p.spec->name + "` says what changed)";
    }
  }
  // A cached stage streams its stored output only when a stage that runs reads it.
  for (std::size_t i = plan.stages.size(); i-- > 0;) {
    auto& p = plan.stages[i];
    if (p.action != Action::Run) continue;  // only running stages read their inputs
    for (auto in : p.inputs) {
      auto& up = plan.stages[in];
      up.consumers.push_back(i);
      if (up.action == Action::Cached) {
        up.action = Action::Replay;
        up.reason = "output stored; replayed for " + p.spec->name;
      }
    }
  }
  // consumers were collected in reverse; keep them in plan order.
  for (auto& p : plan.stages) std::reverse(p.consumers.begin(), p.consumers.end());
  return plan;
}

}  // namespace lvmflow
