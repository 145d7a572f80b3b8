#include "tools/lvmflow/cli.hpp"

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "pipeline/error.hpp"
#include "pipeline/executor.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/spec.hpp"
#include "pipeline/store.hpp"
#include "tools/lvmflow/json_writer.hpp"
#include "tools/lvmflow/report.hpp"
#include "tools/lvmflow/why.hpp"
#include "tools/lvmflow/shard_commands.hpp"

// Defined by stages/CMakeLists.txt when the encode family is built.
#ifdef LVMFLOW_HAVE_ENCODE_COMMAND
#include "stages/encode/encode_command.hpp"
#endif
#ifdef LVMFLOW_HAVE_TRAINING_RANKS
#include "stages/lvm/training_ranks.hpp"
#endif

namespace lvmflow {

namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<int> g_interrupt_signal{0};

void on_sigint(int sig) {
  g_interrupt_signal = sig;
  g_interrupted = true;
  std::signal(sig, SIG_DFL);   // a second Ctrl-C (or SIGTERM) ends the process at once
}

// Parsed command line: positionals and options. Options that take a value may repeat.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> options;
  bool has(const std::string& o) const { return options.count(o) != 0; }
  std::string get(const std::string& o, const std::string& fallback = {}) const {
    auto it = options.find(o);
    return it == options.end() || it->second.empty() ? fallback : it->second.back();
  }
  std::vector<std::string> all(const std::string& o) const {
    auto it = options.find(o);
    return it == options.end() ? std::vector<std::string>{} : it->second;
  }
};

struct CommandSpec {
  std::string name, usage, summary;
  std::set<std::string> flags;        // options without a value
  std::set<std::string> with_value;   // options with a value
};

Args parse_args(const CommandSpec& cmd, int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 1 && s[0] == '-' && s != "-") {
      std::string name = s, value;
      bool inline_value = false;
      if (auto eq = s.find('='); eq != std::string::npos && s.rfind("--", 0) == 0) {
        name = s.substr(0, eq);
        value = s.substr(eq + 1);
        inline_value = true;
      }
      if (cmd.flags.count(name)) {
        a.options[name];
      } else if (cmd.with_value.count(name)) {
        if (!inline_value) {
          if (i + 1 >= argc) throw Error("lvmflow " + cmd.name, "option " + name + " needs a value", "usage: " + cmd.usage);
          value = argv[++i];
        }
        a.options[name].push_back(value);
      } else {
        throw Error("lvmflow " + cmd.name, "unknown option '" + s + "'", "usage: " + cmd.usage + "  (--help for details)");
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::string open_store_path(const Args& a) {
  if (a.has("--store")) return a.get("--store");
  if (a.has("--pipeline")) {
    return load_spec(a.get("--pipeline"), stage_registry()).store.string();
  }
  if (const char* env = std::getenv("LVMFLOW_STORE")) return env;
  return ".lvmflow";
}

// Read commands open the store read-only, so they work where the user cannot write.
Store open_existing_store(const Args& a, StoreMode mode = StoreMode::ReadOnly) {
  std::string path = open_store_path(a);
  if (!std::filesystem::exists(std::filesystem::path(path) / "lvmflow.db"))
    throw Error(path, "no lvmflow store here", "pass --store DIR or --pipeline FILE (the store a pipeline names)");
  return Store(path, mode);
}

std::int64_t resolve_run(Store& store, const Args& a, std::size_t index) {
  if (a.positional.size() <= index || a.positional[index] == "last" || a.positional[index] == "latest") {
    std::int64_t id = store.latest_run_id();
    if (!id) throw Error(store.root().string(), "the store has no runs yet", "run a pipeline first");
    return id;
  }
  const std::string& s = a.positional[index];
  std::string why;
  auto v = parse_param_value(ParamType::Int, s, &why);
  if (!v) throw Error("run '" + s + "'", "not a run id", "`lvmflow runs` lists them");
  return std::stoll(v->canonical);
}

PipelineSpec load_pipeline(const Args& a, const CommandSpec& cmd) {
  if (a.positional.size() != 1) throw Error("lvmflow " + cmd.name, "expected one pipeline FILE", "usage: " + cmd.usage);
  return load_spec(a.positional[0], stage_registry(), a.all("--set"), a.get("--store"));
}

PlanOptions plan_options(const Args& a) {
  PlanOptions o;
  for (const auto& f : a.all("--force")) o.force.insert(f);
  o.until = a.get("--until");
  return o;
}

// ---------------------------------------------------------------- commands

// Options shared by run and merge.
RunOptions run_options(const Args& a) {
  RunOptions o;
  o.plan = plan_options(a);
  if (a.has("--max-in-flight")) {
    std::string why;
    auto v = parse_param_value(ParamType::Int, a.get("--max-in-flight"), &why);
    if (!v || std::stoll(v->canonical) < 1) throw Error("--max-in-flight", "expects a positive integer");
    o.graph.max_in_flight = static_cast<std::size_t>(std::stoll(v->canonical));
  }
  o.progress = a.has("--quiet") ? ProgressMode::None : ::isatty(2) ? ProgressMode::Terminal : ProgressMode::Lines;
  o.interrupt = &g_interrupted;
  o.interrupt_signal = &g_interrupt_signal;
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  return o;
}

int cmd_run(const CommandSpec& cmd, const Args& a) {
#ifdef LVMFLOW_HAVE_TRAINING_RANKS
  // Started several times by srun/mpirun: ranks > 0 only serve rank 0's lvm.train stages.
  const auto launched = launched_rank();
  if (launched && launched->rank > 0) return serve_training_rank(*launched, std::cerr);
  // However rank 0 ends (even on a bad pipeline file), it lets the waiting ranks go.
  struct ReleaseRanks {
    const std::optional<RankInfo>& rank;
    ~ReleaseRanks() {
      if (rank) release_training_ranks(*rank);
    }
  } release_ranks{launched};
#endif
  PipelineSpec spec = load_pipeline(a, cmd);
  RunOptions o = run_options(a);
  if (a.has("--shard")) apply_shard_option(a.get("--shard"), spec, o);
  Store store(spec.store);
  RunResult r = run_pipeline(spec, store, o);
  int ran = 0, cached = 0, skipped = 0;
  for (const auto& p : r.plan.stages) {
    ran += p.action == Action::Run;
    cached += p.action == Action::Cached || p.action == Action::Replay;
    skipped += p.action == Action::Skipped;
  }
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_object().field("run", static_cast<long long>(r.run_id)).field("status", r.status)
        .field("error", r.error).field("seconds", r.seconds).field("store", spec.store.string())
        .field("stages_run", ran).field("stages_cached", cached).field("stages_skipped", skipped).end_object();
    std::cout << "\n";
  } else {
    std::fprintf(stderr, "run %lld %s in %.2f s: %d stage(s) run, %d cached, %d skipped (store %s)\n",
                 static_cast<long long>(r.run_id), r.status.c_str(), r.seconds, ran, cached, skipped,
                 spec.store.c_str());
  }
  if (!r.error.empty()) {
    std::cerr << "lvmflow: error: " << r.error << "\n";
    return 1;
  }
  return 0;
}

int cmd_merge(const CommandSpec& cmd, const Args& a) {
  PipelineSpec spec = load_pipeline(a, cmd);
  if (!a.has("--shards")) throw Error("lvmflow merge", "--shards N is required", "usage: " + cmd.usage);
  return merge_command(spec, parse_shard_count(a.get("--shards"), "--shards"), run_options(a), a.has("--json"));
}

int cmd_submit(const CommandSpec& cmd, const Args& a) {
  PipelineSpec spec = load_pipeline(a, cmd);
  if (!a.has("--shards")) throw Error("lvmflow submit", "--shards N is required", "usage: " + cmd.usage);
  SubmitRequest r;
  r.pipeline_file = a.positional[0];
  for (const auto& name : {"--set", "--force", "--store"})
    for (const auto& v : a.all(name)) r.pipeline_args.push_back(std::string(name) + "=" + v);
  r.shards = parse_shard_count(a.get("--shards"), "--shards");
  r.slurm_args = a.get("--slurm-args");
  r.rest_slurm_args = a.get("--rest-slurm-args");
  r.dry_run = a.has("--dry-run");
  return submit_command(spec, r);
}

int cmd_plan(const CommandSpec& cmd, const Args& a) {
  PipelineSpec spec = load_pipeline(a, cmd);
  Store store(spec.store, StoreMode::ReadOnly);
  Plan plan = make_plan(spec, store, plan_options(a));
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_object().field("pipeline", spec.name).field("store", spec.store.string()).key("stages").begin_array();
    for (const auto& p : plan.stages) {
      j.begin_object().field("name", p.spec->name).field("type", p.spec->type)
          .field("action", to_string(p.action)).field("key", p.key).field("reason", p.reason).key("inputs").begin_array();
      for (const auto& in : p.spec->inputs) j.value(in);
      j.end_array().end_object();
    }
    j.end_array().end_object();
    std::cout << "\n";
    return 0;
  }
  std::cout << "pipeline " << spec.name << " (" << spec.file.string() << "), store " << spec.store.string() << "\n";
  std::cout << std::left << std::setw(26) << "STAGE" << std::setw(20) << "TYPE" << std::setw(9) << "ACTION"
            << std::setw(14) << "KEY" << "WHY\n";
  for (const auto& p : plan.stages)
    std::cout << std::setw(26) << p.spec->name << std::setw(20) << p.spec->type << std::setw(9)
              << to_string(p.action) << std::setw(14) << p.key.substr(0, 12) << p.reason << "\n";
  return 0;
}

void print_param_docs(const StageInfo& info, std::ostream& out) {
  for (const auto& d : info.params) {
    out << "    " << std::left << std::setw(20) << d.name << std::setw(8) << to_string(d.type)
        << (d.required ? "required" : "default " + (d.default_value.empty() ? std::string("(unset)") : d.default_value))
        << (d.affects_output ? "" : " [not in cache key]") << "\n        " << d.help << "\n";
  }
}

int cmd_stages(const CommandSpec&, const Args& a) {
  auto infos = stage_registry().all();
  if (!a.positional.empty()) {
    std::vector<const StageInfo*> chosen;
    for (const auto* i : infos)
      for (const auto& want : a.positional)
        if (i->type == want || i->type.rfind(want + ".", 0) == 0) chosen.push_back(i);
    if (chosen.empty()) throw Error("lvmflow stages", "no stage type matches '" + a.positional[0] + "'", "run `lvmflow stages` for all");
    infos = chosen;
  }
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_array();
    for (const auto* i : infos) {
      j.begin_object().field("type", i->type).field("version", i->version).field("kind", to_string(i->kind))
          .field("summary", i->summary).field("min_inputs", static_cast<long long>(i->min_inputs))
          .field("max_inputs", i->max_inputs == SIZE_MAX ? -1LL : static_cast<long long>(i->max_inputs))
          .key("params").begin_array();
      for (const auto& d : i->params)
        j.begin_object().field("name", d.name).field("type", to_string(d.type)).field("default", d.default_value)
            .field("required", d.required).field("affects_output", d.affects_output).field("help", d.help).end_object();
      j.end_array().end_object();
    }
    j.end_array();
    std::cout << "\n";
    return 0;
  }
  for (const auto* i : infos) {
    std::string inputs = i->max_inputs == 0 ? "no inputs"
                         : i->max_inputs == SIZE_MAX ? std::to_string(i->min_inputs) + "+ inputs"
                         : i->min_inputs == i->max_inputs ? std::to_string(i->min_inputs) + " input(s)"
                         : std::to_string(i->min_inputs) + "-" + std::to_string(i->max_inputs) + " inputs";
    std::cout << i->type << "  (" << to_string(i->kind) << ", v" << i->version << ", " << inputs << ")\n  "
              << i->summary << "\n";
    if (!i->params.empty()) print_param_docs(*i, std::cout);
    std::cout << "\n";
  }
  return 0;
}

int cmd_runs(const CommandSpec&, const Args& a) {
  Store store = open_existing_store(a);
  int limit = a.has("--limit") ? std::max(1, std::atoi(a.get("--limit").c_str())) : 20;
  auto runs = store.runs(limit);
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_array();
    for (const auto& r : runs)
      j.begin_object().field("id", static_cast<long long>(r.id)).field("pipeline", r.pipeline)
          .field("status", shown_status(r)).field("started", format_local_time(r.started_ms))
          .field("seconds", r.finished_ms ? (r.finished_ms - r.started_ms) / 1e3 : 0.0)
          .field("error", r.error).field("spec_file", r.spec_file).end_object();
    j.end_array();
    std::cout << "\n";
    return 0;
  }
  std::cout << std::left << std::setw(6) << "RUN" << std::setw(18) << "PIPELINE" << std::setw(13) << "STATUS"
            << std::setw(21) << "STARTED" << std::setw(10) << "SECONDS" << "ERROR\n";
  for (const auto& r : runs) {
    std::ostringstream secs;
    if (r.finished_ms) secs << std::fixed << std::setprecision(2) << (r.finished_ms - r.started_ms) / 1e3;
    else secs << "-";
    std::cout << std::setw(6) << r.id << std::setw(18) << r.pipeline << std::setw(13) << shown_status(r)
              << std::setw(21) << format_local_time(r.started_ms) << std::setw(10) << secs.str() << r.error << "\n";
  }
  return 0;
}

int cmd_show(const CommandSpec&, const Args& a) {
  Store store = open_existing_store(a);
  std::int64_t id = resolve_run(store, a, 0);
  auto run = store.run(id);
  if (!run) throw Error("run " + std::to_string(id), "no such run", "`lvmflow runs` lists them");
  auto stages = store.stage_runs(id);
  auto metrics = store.metrics(id);
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_object().field("id", static_cast<long long>(run->id)).field("pipeline", run->pipeline)
        .field("status", shown_status(*run)).field("error", run->error).field("spec_file", run->spec_file)
        .field("args", run->args).field("started", format_local_time(run->started_ms))
        .field("seconds", run->finished_ms ? (run->finished_ms - run->started_ms) / 1e3 : 0.0)
        .key("stages").begin_array();
    for (const auto& s : stages)
      j.begin_object().field("stage", s.stage).field("type", s.type).field("action", s.action)
          .field("status", shown_status(*run, s)).field("key", s.key).field("items_in", static_cast<long long>(s.items_in))
          .field("items_out", static_cast<long long>(s.items_out)).field("batches", static_cast<long long>(s.batches))
          .field("seconds", (s.finished_ns - s.started_ns) / 1e9).field("error", s.error).end_object();
    j.end_array().key("metrics").begin_array();
    for (const auto& m : metrics) {
      j.begin_object().field("stage", m.stage).field("name", m.name).field("label", m.label)
          .field("step", static_cast<long long>(m.step));
      if (m.text.empty()) j.field("value", m.value);
      else j.field("text", m.text);
      j.end_object();
    }
    j.end_array().end_object();
    std::cout << "\n";
    return 0;
  }
  std::cout << "run " << run->id << "  " << run->pipeline << "  " << shown_status(*run) << "  started "
            << format_local_time(run->started_ms) << "\n  spec " << run->spec_file << "\n";
  if (!run->error.empty()) std::cout << "  error: " << run->error << "\n";
  std::cout << "\n" << std::left << std::setw(26) << "STAGE" << std::setw(20) << "TYPE" << std::setw(9) << "ACTION"
            << std::setw(10) << "STATUS" << std::setw(10) << "IN" << std::setw(10) << "OUT" << std::setw(10)
            << "SECONDS" << "KEY\n";
  for (const auto& s : stages) {
    std::ostringstream secs;
    secs << std::fixed << std::setprecision(3) << (s.finished_ns - s.started_ns) / 1e9;
    std::cout << std::setw(26) << s.stage << std::setw(20) << s.type << std::setw(9) << s.action << std::setw(10)
              << shown_status(*run, s) << std::setw(10) << s.items_in << std::setw(10) << s.items_out << std::setw(10)
              << secs.str() << s.key.substr(0, 12) << "\n";
  }
  // Scalar metrics: the last value of each (stage, name, label); text metrics in full.
  std::map<std::tuple<std::string, std::string, std::string>, const MetricRecord*> last;
  std::vector<const MetricRecord*> texts;
  for (const auto& m : metrics) {
    if (!m.text.empty()) texts.push_back(&m);
    else last[{m.stage, m.name, m.label}] = &m;
  }
  if (!last.empty()) {
    std::cout << "\nmetrics (last value)\n";
    for (const auto& [k, m] : last)
      std::cout << "  " << std::setw(24) << m->stage << std::setw(22) << m->name << std::setw(14) << m->label
                << m->value << "\n";
  }
  for (const auto* m : texts) std::cout << "\n[" << m->stage << "] " << m->name << "\n" << m->text << "\n";
  return 0;
}

// Columns padded to their widest cell; the first column left-aligned, the rest right-aligned.
void print_aligned(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], r[c].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t c = 0; c < r.size(); ++c) {
      std::string pad(width[c] - r[c].size(), ' ');
      line += c == 0 ? r[c] + pad : "  " + pad + r[c];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

// Fixed significant-ish digits for durations and rates, so columns stay narrow.
std::string fmt(double v) {
  char buf[32];
  double a = std::fabs(v);
  if (!std::isfinite(v)) return "-";
  bool whole = v == std::floor(v) && a < 1e15;   // counts
  std::snprintf(buf, sizeof buf, whole || a >= 1000 ? "%.0f" : a >= 100 ? "%.1f" : a >= 10 ? "%.2f" : "%.3f", v);
  return buf;
}
std::string fmt_triple(const Percentiles& p) { return fmt(p.p50) + "/" + fmt(p.p95) + "/" + fmt(p.p99); }
std::string fmt_percent(double f) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * f);
  return buf;
}
std::string fmt_ratio(double r) {
  if (!std::isfinite(r)) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, r >= 100 ? "%.0fx" : "%.2fx", r);
  return buf;
}
// Map stages queue; sources and barriers have no input queue and record none.
bool has_queue(const StageProfile& s) { return s.queued_s > 0; }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}
std::string csv_number(double v) {
  if (!std::isfinite(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
std::string joined(const std::vector<std::string>& list, const char* sep) {
  std::string s;
  for (const auto& x : list) s += (s.empty() ? "" : sep) + x;
  return s;
}

void print_profile_table(const RunProfile& p, std::ostream& out) {
  out << "run " << p.run.id << "  " << p.run.pipeline << "  " << shown_status(p.run) << "  wall " << fmt(p.wall_s) << " s";
  if (const auto* b = p.bottleneck())
    out << "  bottleneck: " << b->stage << " (working " << fmt_percent(b->share) << " of the run)";
  out << "\n\n";
  std::vector<std::vector<std::string>> rows = {{"STAGE", "ACTION", "CALLS", "ITEMS", "BUSY s", "ACTIVE s", "SHARE",
                                                 "BATCH ms p50/p95/p99", "ITEM ms p50/p95/p99", "ITEMS/s",
                                                 "QUEUE ms p50/p95", "PARALLEL", ""}};
  for (const auto& s : p.stages) {
    if (!s.calls) {
      rows.push_back({s.stage, s.action, "0", "-", "-", "-", "-", "-", "-", "-", "-", "-", ""});
      continue;
    }
    char parallel[32];
    std::snprintf(parallel, sizeof parallel, "%.2f/%d", s.parallelism, s.max_parallel);
    rows.push_back({s.stage, s.action, std::to_string(s.calls), std::to_string(s.items), fmt(s.busy_s), fmt(s.active_s),
                    fmt_percent(s.share), fmt_triple(s.batch_ms), fmt_triple(s.item_ms), fmt(s.items_per_s),
                    has_queue(s) ? fmt(s.queued_ms.p50) + "/" + fmt(s.queued_ms.p95) : "-", parallel,
                    s.bottleneck ? "<- bottleneck" : ""});
  }
  print_aligned(rows, out);
}

void write_profile_fields(JsonWriter& j, const StageProfile& s) {
  for (const auto& f : profile_fields()) j.field(f.name, f.get(s));
}

int cmd_profile(const CommandSpec&, const Args& a) {
  Store store = open_existing_store(a);
  RunProfile p = profile_run(store, resolve_run(store, a, 0));
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_object().field("run", static_cast<long long>(p.run.id)).field("pipeline", p.run.pipeline)
        .field("status", shown_status(p.run)).field("wall_s", p.wall_s)
        .field("bottleneck", p.bottleneck() ? p.bottleneck()->stage : std::string()).key("stages").begin_array();
    for (const auto& s : p.stages) {
      j.begin_object().field("stage", s.stage).field("type", s.type).field("action", s.action).field("status", s.status);
      j.key("inputs").begin_array();
      for (const auto& in : s.inputs) j.value(in);
      j.end_array();
      write_profile_fields(j, s);
      j.field("bottleneck", s.bottleneck).end_object();
    }
    j.end_array().end_object();
    std::cout << "\n";
    return 0;
  }
  if (a.has("--csv")) {
    std::cout << "stage,type,action,status,inputs";
    for (const auto& f : profile_fields()) std::cout << "," << f.name;
    std::cout << ",bottleneck\n";
    for (const auto& s : p.stages) {
      std::cout << csv_field(s.stage) << "," << csv_field(s.type) << "," << s.action << "," << s.status << ","
                << csv_field(joined(s.inputs, ";"));
      for (const auto& f : profile_fields()) std::cout << "," << csv_number(f.get(s));
      std::cout << "," << (s.bottleneck ? 1 : 0) << "\n";
    }
    return 0;
  }
  print_profile_table(p, std::cout);
  return 0;
}

// ---------------------------------------------------------------- compare

std::size_t field_index(const char* name) {
  const auto& fields = profile_fields();
  for (std::size_t i = 0; i < fields.size(); ++i)
    if (std::string(fields[i].name) == name) return i;
  throw std::logic_error(std::string("no profile field ") + name);
}

const char* presence(const StageComparison& c) { return c.a && c.b ? "both" : c.a ? "a" : "b"; }

void print_compare_table(const RunComparison& c, std::ostream& out) {
  out << "compare run " << c.a.run.id << " (" << c.a.run.pipeline << ", " << shown_status(c.a.run) << ") -> run "
      << c.b.run.id << " (" << c.b.run.pipeline << ", " << shown_status(c.b.run) << "): wall " << fmt(c.a.wall_s)
      << " s -> " << fmt(c.b.wall_s) << " s (" << fmt_ratio(c.wall_ratio) << ")\n";
  out << "each cell: A -> B (B/A); a ratio below 1 is faster or smaller in B\n\n";
  struct Column {
    const char* title;
    const char* field;
  };
  const std::vector<Column> columns = {{"ITEMS", "items"},           {"ACTIVE s", "active_s"},
                                       {"BUSY s", "busy_s"},         {"BATCH p50 ms", "batch_p50_ms"},
                                       {"BATCH p95 ms", "batch_p95_ms"}, {"ITEMS/s", "items_per_s"},
                                       {"QUEUE p50 ms", "queued_p50_ms"}};
  const auto& fields = profile_fields();
  std::vector<std::vector<std::string>> rows(1);
  rows[0] = {"STAGE", "ACTION A -> B"};
  for (const auto& col : columns) rows[0].push_back(col.title);
  for (const auto& s : c.stages) {
    std::string action = s.a && s.b ? (s.a->action == s.b->action ? s.a->action : s.a->action + " -> " + s.b->action)
                         : s.a      ? s.a->action + " (only in A)"
                                    : s.b->action + " (only in B)";
    std::vector<std::string> row = {s.stage, action};
    for (const auto& col : columns) {
      std::size_t f = field_index(col.field);
      bool queue_column = std::string(col.field).rfind("queued", 0) == 0;
      auto value = [&](const std::optional<StageProfile>& p) {
        return p && p->calls && (!queue_column || has_queue(*p)) ? fmt(fields[f].get(*p)) : std::string("-");
      };
      std::string cell = value(s.a) + " -> " + value(s.b);
      if (s.a && s.b && s.a->calls && s.b->calls && (!queue_column || (has_queue(*s.a) && has_queue(*s.b))))
        cell += " (" + fmt_ratio(s.ratios[f]) + ")";
      row.push_back(cell);
    }
    rows.push_back(std::move(row));
  }
  print_aligned(rows, out);
}

int cmd_compare(const CommandSpec& cmd, const Args& a) {
  if (a.positional.size() != 2) throw Error("lvmflow compare", "expected two runs, A and B", "usage: " + cmd.usage);
  Store store = open_existing_store(a);
  RunComparison c = compare_runs(store, resolve_run(store, a, 0), resolve_run(store, a, 1));
  const auto& fields = profile_fields();
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    auto run = [&](const char* key, const RunProfile& p) {
      j.key(key).begin_object().field("run", static_cast<long long>(p.run.id)).field("pipeline", p.run.pipeline)
          .field("status", shown_status(p.run)).field("wall_s", p.wall_s).end_object();
    };
    j.begin_object();
    run("a", c.a);
    run("b", c.b);
    j.field("wall_ratio", c.wall_ratio).key("stages").begin_array();
    for (const auto& s : c.stages) {
      j.begin_object().field("stage", s.stage).field("in", presence(s));
      for (const auto& [key, p] : {std::pair{"a", &s.a}, std::pair{"b", &s.b}}) {
        j.key(key);
        if (!*p) {
          j.value(std::numeric_limits<double>::quiet_NaN());   // JsonWriter writes NaN as null
          continue;
        }
        j.begin_object().field("action", (*p)->action).field("status", (*p)->status);
        write_profile_fields(j, **p);
        j.field("bottleneck", (*p)->bottleneck).end_object();
      }
      j.key("ratio").begin_object();
      for (std::size_t f = 0; f < fields.size(); ++f) j.field(fields[f].name, s.ratios[f]);
      j.end_object().end_object();
    }
    j.end_array().end_object();
    std::cout << "\n";
    return 0;
  }
  if (a.has("--csv")) {
    std::cout << "stage,in,action_a,action_b";
    for (const auto& f : fields) std::cout << "," << f.name << "_a," << f.name << "_b," << f.name << "_ratio";
    std::cout << "\n";
    for (const auto& s : c.stages) {
      std::cout << csv_field(s.stage) << "," << presence(s) << "," << (s.a ? s.a->action : "") << ","
                << (s.b ? s.b->action : "");
      for (std::size_t f = 0; f < fields.size(); ++f)
        std::cout << "," << (s.a ? csv_number(fields[f].get(*s.a)) : "") << ","
                  << (s.b ? csv_number(fields[f].get(*s.b)) : "") << "," << csv_number(s.ratios[f]);
      std::cout << "\n";
    }
    return 0;
  }
  print_compare_table(c, std::cout);
  return 0;
}

// ---------------------------------------------------------------- report

int cmd_report(const CommandSpec&, const Args& a) {
  Store store = open_existing_store(a);
  std::int64_t id = resolve_run(store, a, 0);
  std::string path = a.has("-o") ? a.get("-o") : a.get("--output", "lvmflow-run-" + std::to_string(id) + ".html");
  std::ostringstream html;
  write_report(store, id, html);
  // Written whole to a temporary name and renamed, so a browser never opens half a report.
  std::filesystem::path target(path), temp = target;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary);
    out << html.str();
    out.close();
    if (!out) throw Error(path, "cannot write the report", "check that the folder exists and is writable");
  }
  std::error_code ec;
  std::filesystem::rename(temp, target, ec);
  if (ec) throw Error(path, "cannot write the report: " + ec.message(), "check that the folder is writable");
  std::fprintf(stderr, "wrote %s (%.0f kB): run %lld; open it in a browser\n", path.c_str(), html.str().size() / 1024.0,
               static_cast<long long>(id));
  return 0;
}

int cmd_gc(const CommandSpec&, const Args& a) {
  Store store = open_existing_store(a, StoreMode::ReadWrite);
  GcResult r = store.gc(a.has("--all"));
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_object().field("removed", static_cast<long long>(r.removed)).field("bytes", static_cast<long long>(r.bytes))
        .field("kept_resume", static_cast<long long>(r.kept_resume))
        .field("kept_resume_bytes", static_cast<long long>(r.kept_resume_bytes)).end_object();
    std::cout << "\n";
  } else {
    std::printf("removed %lld folder(s), %.1f MB freed\n", static_cast<long long>(r.removed), r.bytes / 1e6);
    if (r.kept_resume)
      std::printf("kept %lld resume folder(s) of interrupted work (%.1f MB): a re-run continues from them; "
                  "`lvmflow gc --all` removes them too\n",
                  static_cast<long long>(r.kept_resume), r.kept_resume_bytes / 1e6);
  }
  return 0;
}

// ---------------------------------------------------------------- verify

// The committed artifacts named on the command line (a stage name or a key prefix), or all.
std::vector<CacheEntry> select_artifacts(Store& store, const Args& a,
                                         const std::map<std::string, std::set<std::string>>& stages_of) {
  auto entries = store.cache_entries();
  if (a.positional.empty()) return entries;
  std::vector<CacheEntry> chosen;
  std::set<std::string> seen;
  for (const auto& want : a.positional) {
    bool found = false;
    for (const auto& e : entries) {
      auto it = stages_of.find(e.key);
      bool by_stage = it != stages_of.end() && it->second.count(want);
      bool by_key = want.size() >= 4 && e.key.rfind(want, 0) == 0;
      if (!by_stage && !by_key) continue;
      found = true;
      if (seen.insert(e.key).second) chosen.push_back(e);
    }
    if (!found)
      throw Error("lvmflow verify " + want, "no committed artifact of a stage or key '" + want + "'",
                  "`lvmflow verify` alone checks every artifact of the store");
  }
  return chosen;
}

int cmd_verify(const CommandSpec&, const Args& a) {
  Store store = open_existing_store(a);
  const auto stages_of = store.stage_names_by_key();
  const auto entries = select_artifacts(store, a, stages_of);
  const VerifyDepth depth = a.has("--quick") ? VerifyDepth::Quick : VerifyDepth::Full;
  auto stage_list = [&](const std::string& key) {
    auto it = stages_of.find(key);
    return it == stages_of.end() ? std::string("?") : joined(std::vector<std::string>(it->second.begin(), it->second.end()), ",");
  };
  std::vector<ArtifactStatus> results;
  for (const auto& e : entries) results.push_back(store.verify_artifact(e.key, depth));
  std::size_t damaged = 0, unrecorded = 0;
  for (const auto& r : results) {
    damaged += !r.ok();
    unrecorded += r.ok() && !r.recorded;
  }
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_object().field("store", store.root().string()).field("checked", static_cast<long long>(results.size()))
        .field("damaged", static_cast<long long>(damaged)).key("artifacts").begin_array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      j.begin_object().field("key", results[i].key).field("stages", stage_list(results[i].key))
          .field("type", entries[i].stage_type).field("ok", results[i].ok()).field("recorded", results[i].recorded)
          .key("problems").begin_array();
      for (const auto& p : results[i].problems) j.value(p);
      j.end_array().end_object();
    }
    j.end_array().end_object();
    std::cout << "\n";
  } else {
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      const char* state = !r.ok() ? "DAMAGED" : r.recorded ? "ok" : "unchecked";
      std::cout << std::left << std::setw(10) << state << r.key.substr(0, 12) << "  " << stage_list(r.key) << " ("
                << entries[i].stage_type << ")";
      if (!r.recorded && r.ok()) std::cout << ": no checksums recorded (committed by an older lvmflow)";
      std::cout << "\n";
      for (const auto& p : r.problems) std::cout << "          " << p << "\n";
    }
    std::cout << "verified " << results.size() << " artifact(s)" << (depth == VerifyDepth::Full ? "" : " (--quick)")
              << ": " << damaged << " damaged";
    if (unrecorded) std::cout << ", " << unrecorded << " without checksums";
    std::cout << "\n";
    if (damaged)
      std::cout << "a run treats a damaged output as not stored and recomputes it (or: lvmflow run FILE --force STAGE)\n";
  }
  return damaged ? 1 : 0;
}

const std::vector<CommandSpec>& commands() {
  static const std::set<std::string> pipeline_opts = {"--set", "--force", "--until", "--store"};
  static const std::vector<CommandSpec> list = {
      {"run", "lvmflow run FILE [--set STAGE.PARAM=VALUE]... [--force STAGE]... [--until STAGE] [--store DIR] [--max-in-flight N] [--shard I/N] [--quiet] [--json]",
       "Run a pipeline: stages whose output is stored are replayed, the rest run. --shard I/N: only the shardable prefix, on shard I's articles, into <store>/shards/I-of-N.",
       {"--quiet", "--json"}, {"--set", "--force", "--until", "--store", "--max-in-flight", "--shard"}},
      {"merge", "lvmflow merge FILE --shards N [--set STAGE.PARAM=VALUE]... [--store DIR] [--quiet] [--json]",
       "Check that shards 0..N-1 finished and commit the shardable stages to the main store as an unsharded run would (docs/scale-out.md).",
       {"--quiet", "--json"}, {"--shards", "--set", "--force", "--store", "--max-in-flight"}},
      {"submit", "lvmflow submit FILE --shards N [--slurm-args \"...\"] [--rest-slurm-args \"...\"] [--dry-run] [--set STAGE.PARAM=VALUE]... [--store DIR]",
       "Submit a sharded rebuild to Slurm: a job array of N shards, a merge job after it, the rest of the pipeline after that (data-parallel lvm.train with --rest-slurm-args \"--ntasks=K\"); prints the job ids.",
       {"--dry-run"}, {"--shards", "--slurm-args", "--rest-slurm-args", "--set", "--force", "--store"}},
      {"plan", "lvmflow plan FILE [--set STAGE.PARAM=VALUE]... [--force STAGE]... [--until STAGE] [--store DIR] [--json]",
       "Show what `run` would do per stage (run / cached / replay / skipped) with cache keys; runs nothing.",
       {"--json"}, pipeline_opts},
      {"stages", "lvmflow stages [TYPE|FAMILY]... [--json]",
       "List the registered stage types with their kind, version, inputs and params (the stage reference).",
       {"--json"}, {}},
      {"runs", "lvmflow runs [--store DIR | --pipeline FILE] [--limit N] [--json]",
       "List the runs in a store, newest first.", {"--json"}, {"--store", "--pipeline", "--limit"}},
      {"show", "lvmflow show [RUN|last] [--store DIR | --pipeline FILE] [--json]",
       "Show one run: its stages (action, status, items, time, key) and metrics.", {"--json"}, {"--store", "--pipeline"}},
      {"profile", "lvmflow profile [RUN|last] [--store DIR | --pipeline FILE] [--json | --csv]",
       "Per-stage latency profile of a run: calls, items, busy/active time, p50/p95/p99 per batch and per item, items/s, share, queueing, parallelism; marks the bottleneck (docs/profile.md).",
       {"--json", "--csv"}, {"--store", "--pipeline"}},
      {"compare", "lvmflow compare RUN_A RUN_B [--store DIR | --pipeline FILE] [--json | --csv]",
       "Compare two runs stage by stage: the profile's numbers for A and B and their ratio B/A.",
       {"--json", "--csv"}, {"--store", "--pipeline"}},
      {"report", "lvmflow report [RUN|last] [-o FILE.html] [--store DIR | --pipeline FILE]",
       "Write one self-contained HTML report of a run (default lvmflow-run-RUN.html): timeline, DAG, latency histograms, cache, metrics.",
       {}, {"-o", "--output", "--store", "--pipeline"}},
      {"gc", "lvmflow gc [--store DIR | --pipeline FILE] [--all] [--json]",
       "Delete artifact folders no cache entry points to and staging folders of dead runs; --all also resume state of interrupted work.",
       {"--json", "--all"}, {"--store", "--pipeline"}},
      {"verify", "lvmflow verify [STAGE|KEY]... [--store DIR | --pipeline FILE] [--quick] [--json]",
       "Check committed artifacts against the checksums recorded at commit (every byte; --quick: sizes and files up to 64 MiB); names the damaged ones, exit 1 if any.",
       {"--json", "--quick"}, {"--store", "--pipeline"}},
  };
  return list;
}

void print_help(std::ostream& out) {
  out << "lvmflow — dataflow pipelines for latent-vector-model research\n\n"
         "usage: lvmflow COMMAND [ARGS]   (lvmflow COMMAND --help for details)\n\ncommands:\n";
  for (const auto& c : commands()) out << "  " << std::left << std::setw(9) << c.name << c.summary << "\n";
  out << "  " << std::setw(9) << "why" << "Show the parts of a stage's cache key and which changed since its stored output.\n";
#ifdef LVMFLOW_HAVE_ENCODE_COMMAND
  out << "  " << std::setw(9) << "encode" << "Embed one text per line into an .npy file (GTR-T5 or the built-in encoder).\n";
#endif
  out << "\nread commands look for the store in --store DIR, the store of --pipeline FILE, $LVMFLOW_STORE, or ./.lvmflow\n";
}

}  // namespace

int cli_main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    print_help(std::cout);
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
#ifdef LVMFLOW_HAVE_ENCODE_COMMAND
  if (name == "encode") return run_encode_command(argc - 1, argv + 1);
#endif
  if (name == "why") return run_why_command(argc - 1, argv + 1);
  for (const auto& cmd : commands()) {
    if (cmd.name != name) continue;
    for (int i = 2; i < argc; ++i)
      if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
        std::cout << "usage: " << cmd.usage << "\n\n" << cmd.summary << "\n";
        return 0;
      }
    try {
      Args a = parse_args(cmd, argc, argv, 2);
      if (name == "run") return cmd_run(cmd, a);
      if (name == "plan") return cmd_plan(cmd, a);
      if (name == "merge") return cmd_merge(cmd, a);
      if (name == "submit") return cmd_submit(cmd, a);
      if (name == "stages") return cmd_stages(cmd, a);
      if (name == "runs") return cmd_runs(cmd, a);
      if (name == "show") return cmd_show(cmd, a);
      if (name == "profile") return cmd_profile(cmd, a);
      if (name == "compare") return cmd_compare(cmd, a);
      if (name == "report") return cmd_report(cmd, a);
      if (name == "gc") return cmd_gc(cmd, a);
      if (name == "verify") return cmd_verify(cmd, a);
    } catch (const Error& e) {
      std::cerr << "lvmflow: error: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "lvmflow: error: " << e.what() << "\n";
      return 2;
    }
  }
  std::cerr << "lvmflow: error: unknown command '" << name << "' (lvmflow --help lists the commands)\n";
  return 2;
}

}  // namespace lvmflow
