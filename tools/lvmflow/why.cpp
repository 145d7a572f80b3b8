#include "tools/lvmflow/why.hpp"

#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>

#include "pipeline/error.hpp"
#include "pipeline/key_parts.hpp"
#include "pipeline/plan.hpp"

namespace lvmflow {

namespace {

constexpr const char* kUsage = "lvmflow why STAGE [--pipeline FILE] [--set STAGE.PARAM=VALUE]... [--store DIR]";
constexpr int kRunsSearched = 1000;   // how far back the newest stored entry is looked for

// Values as a reader compares them: keys and fingerprints shortened like `plan` shows keys.
std::string shown(const KeyPart& p) {
  if (p.kind == "type") return "version " + p.value;
  if (p.kind == "input") return "key " + p.value.substr(0, 12);
  if (p.kind == "file") return "sha256 " + p.value.substr(0, 12);
  return p.value.empty() ? "\"\"" : p.value;
}

// Parts are matched by kind and name; the type and batch size by kind alone (a changed
// type is one part that changed, not one removed and one added).
std::string identity(const KeyPart& p) {
  return p.kind == "type" || p.kind == "batch_size" ? p.kind : p.kind + '\0' + p.name;
}

struct StoredEntry {
  std::int64_t run_id = 0;
  std::string key;
  std::optional<std::vector<KeyPart>> parts;   // nullopt: committed before key.json existed
};

// The newest committed output of stage `name` whose artifact is still in the store.
std::optional<StoredEntry> newest_stored(Store& store, const std::string& name) {
  for (const RunRecord& run : store.runs(kRunsSearched))
    for (const StageRunRecord& s : store.stage_runs(run.id)) {
      if (s.stage != name || s.action != "run" || s.status != "done" || !store.find_cache(s.key)) continue;
      return StoredEntry{run.id, s.key, read_key_parts(store.artifact_path(s.key) / kKeyPartsFile)};
    }
  return std::nullopt;
}

void print_parts(const std::vector<KeyPart>& parts, std::ostream& out) {
  for (const auto& p : parts)
    out << "  " << std::left << std::setw(11) << p.kind << std::setw(34) << p.name
        << " " << shown(p) << "\n";
}

void print_changes(const std::vector<KeyPart>& before, const std::vector<KeyPart>& now, std::ostream& out) {
  std::map<std::string, const KeyPart*> old_parts;
  for (const auto& p : before) old_parts[identity(p)] = &p;
  std::size_t unchanged = 0;
  std::vector<std::string> lines;
  for (const auto& p : now) {
    auto it = old_parts.find(identity(p));
    if (it == old_parts.end()) {
      lines.push_back("  added    " + p.kind + " " + p.name + " = " + shown(p));
      continue;
    }
    const KeyPart& o = *it->second;
    old_parts.erase(it);
    if (o == p) {
      ++unchanged;
    } else if (p.kind == "type" && o.name != p.name) {
      lines.push_back("  changed  type: " + o.name + " " + shown(o) + " -> " + p.name + " " + shown(p));
    } else {
      lines.push_back("  changed  " + p.kind + " " + p.name + ": " + shown(o) + " -> " + shown(p));
    }
  }
  for (const auto& p : before)
    if (old_parts.count(identity(p))) lines.push_back("  removed  " + p.kind + " " + p.name + " (was " + shown(p) + ")");
  if (lines.empty()) {
    out << "  no part differs, yet the keys do: the stored entry was hashed by another lvmflow key scheme\n";
    return;
  }
  for (const auto& l : lines) out << l << "\n";
  out << "  (" << unchanged << " part" << (unchanged == 1 ? "" : "s") << " unchanged)\n";
}

void explain_one(const PlannedStage& p, Store& store, std::ostream& out) {
  out << "stage " << p.spec->name << " (" << p.spec->type << "): plan says " << to_string(p.action) << " — "
      << p.reason << "\n";
  out << "key " << p.key.substr(0, 12) << " is the SHA-256 of " << p.key_parts.size() << " parts:\n";
  print_parts(p.key_parts, out);
  const auto stored = newest_stored(store, p.spec->name);
  if (!stored) {
    out << "never ran: no stored output of '" << p.spec->name
        << "' in this store (or `lvmflow gc` removed it), so there is nothing to compare with\n";
    return;
  }
  out << "newest stored entry: run " << stored->run_id << ", key " << stored->key.substr(0, 12) << "\n";
  if (!p.spec->cache) out << "the stage has `cache: false`: it runs every time, whatever changed\n";
  if (stored->key == p.key || (stored->parts && *stored->parts == p.key_parts)) {
    out << "nothing changed: the stored output was made from these very parts\n";
    return;
  }
  if (!stored->parts) {
    out << "the stored entry predates key records (" << kKeyPartsFile
        << " in its artifact), so its parts are unknown; run the stage once to record them\n";
    return;
  }
  out << "changed since then:\n";
  print_changes(*stored->parts, p.key_parts, out);
}

}  // namespace

void explain_stage(const PipelineSpec& spec, Store& store, const std::string& name, std::ostream& out) {
  const Plan plan = make_plan(spec, store, {});
  bool found = false;
  for (const auto& p : plan.stages) {
    if (p.spec->name != name && p.spec->group != name) continue;
    if (found) out << "\n";
    explain_one(p, store, out);
    found = true;
  }
  if (!found) {
    std::string names;
    for (const auto& p : plan.stages) names += (names.empty() ? "" : ", ") + p.spec->name;
    throw Error(spec.file.string(), "no stage named '" + name + "'", "stages: " + names);
  }
}

int run_why_command(int argc, char** argv) {
  try {
    std::string stage, pipeline, store_dir;
    std::vector<std::string> overrides;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw Error("lvmflow why", "option " + a + " needs a value", std::string("usage: ") + kUsage);
        return argv[++i];
      };
      if (a == "--help" || a == "-h") {
        std::cout << "usage: " << kUsage << "\n\nShow the parts of STAGE's cache key and which of them changed since "
                     "its newest stored output.\nWithout --pipeline: the pipeline file of the newest run of STAGE in "
                     "--store DIR, $LVMFLOW_STORE or ./.lvmflow.\n";
        return 0;
      }
      if (a == "--pipeline") pipeline = value();
      else if (a == "--set") overrides.push_back(value());
      else if (a == "--store") store_dir = value();
      else if (!a.starts_with("-") && stage.empty()) stage = a;
      else throw Error("lvmflow why", "unexpected argument '" + a + "'", std::string("usage: ") + kUsage);
    }
    if (stage.empty()) throw Error("lvmflow why", "no STAGE given", std::string("usage: ") + kUsage);
    if (pipeline.empty()) {
      // The pipeline file of the newest run that had this stage.
      std::string dir = store_dir;
      if (dir.empty()) dir = std::getenv("LVMFLOW_STORE") ? std::getenv("LVMFLOW_STORE") : ".lvmflow";
      if (!std::filesystem::exists(std::filesystem::path(dir) / "lvmflow.db"))
        throw Error(dir, "no lvmflow store here", "pass --pipeline FILE (or --store DIR)");
      Store store(dir);
      for (const RunRecord& run : store.runs(kRunsSearched)) {
        for (const StageRunRecord& s : store.stage_runs(run.id))
          if (s.stage == stage || s.stage.starts_with(stage + ".")) pipeline = run.spec_file;
        if (!pipeline.empty()) break;
      }
      if (pipeline.empty())
        throw Error(dir, "no run of a stage named '" + stage + "' in this store", "pass --pipeline FILE");
      std::cout << "pipeline " << pipeline << " (from the newest run of " << stage << ")\n";
    }
    const PipelineSpec spec = load_spec(pipeline, stage_registry(), overrides, store_dir);
    Store store(spec.store);
    explain_stage(spec, store, stage, std::cout);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "lvmflow: error: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace lvmflow
