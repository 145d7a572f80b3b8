#include "tools/lvmflow/cli.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "pipeline/error.hpp"
#include "pipeline/executor.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/spec.hpp"
#include "pipeline/store.hpp"
#include "tools/lvmflow/json_writer.hpp"

#if __has_include("stages/encode/encode_command.hpp")
#include "stages/encode/encode_command.hpp"
#define LVMFLOW_HAVE_ENCODE_COMMAND 1
#endif

namespace lvmflow {

namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) {
  g_interrupted = true;
  std::signal(SIGINT, SIG_DFL);   // a second Ctrl-C ends the process at once
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

std::string format_time(std::int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = ms / 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string run_status(const RunRecord& r) {
  // A run still marked running whose process is gone was killed: it never finished.
  if (r.status == "running" && !r.process_alive) return "interrupted";
  return r.status;
}

std::string open_store_path(const Args& a) {
  if (a.has("--store")) return a.get("--store");
  if (a.has("--pipeline")) {
    return load_spec(a.get("--pipeline"), stage_registry()).store.string();
  }
  if (const char* env = std::getenv("LVMFLOW_STORE")) return env;
  return ".lvmflow";
}

Store open_existing_store(const Args& a) {
  std::string path = open_store_path(a);
  if (!std::filesystem::exists(std::filesystem::path(path) / "lvmflow.db"))
    throw Error(path, "no lvmflow store here", "pass --store DIR or --pipeline FILE (the store a pipeline names)");
  return Store(path);
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

int cmd_run(const CommandSpec& cmd, const Args& a) {
  PipelineSpec spec = load_pipeline(a, cmd);
  Store store(spec.store);
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
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
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

int cmd_plan(const CommandSpec& cmd, const Args& a) {
  PipelineSpec spec = load_pipeline(a, cmd);
  Store store(spec.store);
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
          .field("status", run_status(r)).field("started", format_time(r.started_ms))
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
    std::cout << std::setw(6) << r.id << std::setw(18) << r.pipeline << std::setw(13) << run_status(r)
              << std::setw(21) << format_time(r.started_ms) << std::setw(10) << secs.str() << r.error << "\n";
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
        .field("status", run_status(*run)).field("error", run->error).field("spec_file", run->spec_file)
        .field("args", run->args).field("started", format_time(run->started_ms))
        .field("seconds", run->finished_ms ? (run->finished_ms - run->started_ms) / 1e3 : 0.0)
        .key("stages").begin_array();
    for (const auto& s : stages)
      j.begin_object().field("stage", s.stage).field("type", s.type).field("action", s.action)
          .field("status", s.status).field("key", s.key).field("items_in", static_cast<long long>(s.items_in))
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
  std::cout << "run " << run->id << "  " << run->pipeline << "  " << run_status(*run) << "  started "
            << format_time(run->started_ms) << "\n  spec " << run->spec_file << "\n";
  if (!run->error.empty()) std::cout << "  error: " << run->error << "\n";
  std::cout << "\n" << std::left << std::setw(26) << "STAGE" << std::setw(20) << "TYPE" << std::setw(9) << "ACTION"
            << std::setw(10) << "STATUS" << std::setw(10) << "IN" << std::setw(10) << "OUT" << std::setw(10)
            << "SECONDS" << "KEY\n";
  for (const auto& s : stages) {
    std::ostringstream secs;
    secs << std::fixed << std::setprecision(3) << (s.finished_ns - s.started_ns) / 1e9;
    std::cout << std::setw(26) << s.stage << std::setw(20) << s.type << std::setw(9) << s.action << std::setw(10)
              << s.status << std::setw(10) << s.items_in << std::setw(10) << s.items_out << std::setw(10)
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

void print_profile_table(const RunProfile& p, std::ostream& out) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "run %lld  %s  %s  wall %.3f s\n\n", static_cast<long long>(p.run.id),
                p.run.pipeline.c_str(), run_status(p.run).c_str(), p.wall_s);
  out << buf;
  std::snprintf(buf, sizeof buf, "%-24s %-7s %6s %8s %9s %9s %26s %26s %10s %6s %9s\n", "STAGE", "ACTION", "CALLS",
                "ITEMS", "BUSY s", "WALL s", "BATCH ms p50/p95/p99", "ITEM ms p50/p95/p99", "ITEMS/s", "SHARE",
                "QUEUE ms");
  out << buf;
  for (const auto& s : p.stages) {
    char batch[64], item[64];
    std::snprintf(batch, sizeof batch, "%.3f/%.3f/%.3f", s.batch_ms.p50, s.batch_ms.p95, s.batch_ms.p99);
    std::snprintf(item, sizeof item, "%.4f/%.4f/%.4f", s.item_ms.p50, s.item_ms.p95, s.item_ms.p99);
    std::snprintf(buf, sizeof buf, "%-24s %-7s %6lld %8lld %9.3f %9.3f %26s %26s %10.0f %5.1f%% %9.3f%s\n",
                  s.stage.c_str(), s.action.c_str(), static_cast<long long>(s.calls),
                  static_cast<long long>(s.items), s.busy_s, s.wall_s, batch, item, s.items_per_s,
                  100 * s.share, s.queued_ms.p50, s.bottleneck ? "  <- bottleneck" : "");
    out << buf;
  }
}

int cmd_profile(const CommandSpec&, const Args& a) {
  Store store = open_existing_store(a);
  RunProfile p = profile_run(store, resolve_run(store, a, 0));
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_object().field("run", static_cast<long long>(p.run.id)).field("pipeline", p.run.pipeline)
        .field("status", run_status(p.run)).field("wall_s", p.wall_s).key("stages").begin_array();
    auto pct = [&](const char* name, const Percentiles& q) {
      j.key(name).begin_object().field("p50", q.p50).field("p95", q.p95).field("p99", q.p99).field("max", q.max).end_object();
    };
    for (const auto& s : p.stages) {
      j.begin_object().field("stage", s.stage).field("type", s.type).field("action", s.action)
          .field("calls", static_cast<long long>(s.calls)).field("items", static_cast<long long>(s.items))
          .field("busy_s", s.busy_s).field("wall_s", s.wall_s).field("first_start_s", s.first_start_s)
          .field("items_per_s", s.items_per_s).field("share", s.share).field("bottleneck", s.bottleneck);
      pct("batch_ms", s.batch_ms);
      pct("item_ms", s.item_ms);
      pct("queued_ms", s.queued_ms);
      j.end_object();
    }
    j.end_array().end_object();
    std::cout << "\n";
    return 0;
  }
  if (a.has("--csv")) {
    std::cout << "stage,type,action,calls,items,busy_s,wall_s,batch_p50_ms,batch_p95_ms,batch_p99_ms,"
                 "item_p50_ms,item_p95_ms,item_p99_ms,items_per_s,share,queued_p50_ms,queued_p95_ms,bottleneck\n";
    for (const auto& s : p.stages)
      std::cout << s.stage << "," << s.type << "," << s.action << "," << s.calls << "," << s.items << ","
                << s.busy_s << "," << s.wall_s << "," << s.batch_ms.p50 << "," << s.batch_ms.p95 << ","
                << s.batch_ms.p99 << "," << s.item_ms.p50 << "," << s.item_ms.p95 << "," << s.item_ms.p99 << ","
                << s.items_per_s << "," << s.share << "," << s.queued_ms.p50 << "," << s.queued_ms.p95 << ","
                << (s.bottleneck ? 1 : 0) << "\n";
    return 0;
  }
  print_profile_table(p, std::cout);
  return 0;
}

int cmd_gc(const CommandSpec&, const Args& a) {
  Store store = open_existing_store(a);
  auto [removed, bytes] = store.gc();
  if (a.has("--json")) {
    JsonWriter j(std::cout);
    j.begin_object().field("removed", static_cast<long long>(removed)).field("bytes", static_cast<long long>(bytes)).end_object();
    std::cout << "\n";
  } else {
    std::printf("removed %lld folder(s), %.1f MB freed\n", static_cast<long long>(removed), bytes / 1e6);
  }
  return 0;
}

const std::vector<CommandSpec>& commands() {
  static const std::set<std::string> pipeline_opts = {"--set", "--force", "--until", "--store"};
  static const std::vector<CommandSpec> list = {
      {"run", "lvmflow run FILE [--set STAGE.PARAM=VALUE]... [--force STAGE]... [--until STAGE] [--store DIR] [--max-in-flight N] [--quiet] [--json]",
       "Run a pipeline: stages whose output is stored are replayed, the rest run.",
       {"--quiet", "--json"}, {"--set", "--force", "--until", "--store", "--max-in-flight"}},
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
       "Per-stage latency profile of a run: calls, items, busy and wall time, p50/p95/p99 per batch and per item, items/s, share, queueing; marks the bottleneck.",
       {"--json", "--csv"}, {"--store", "--pipeline"}},
      {"gc", "lvmflow gc [--store DIR | --pipeline FILE] [--json]",
       "Delete artifact folders no cache entry points to, and staging folders of dead runs.", {"--json"}, {"--store", "--pipeline"}},
  };
  return list;
}

void print_help(std::ostream& out) {
  out << "lvmflow — dataflow pipelines for latent-vector-model research\n\n"
         "usage: lvmflow COMMAND [ARGS]   (lvmflow COMMAND --help for details)\n\ncommands:\n";
  for (const auto& c : commands()) out << "  " << std::left << std::setw(9) << c.name << c.summary << "\n";
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
      if (name == "stages") return cmd_stages(cmd, a);
      if (name == "runs") return cmd_runs(cmd, a);
      if (name == "show") return cmd_show(cmd, a);
      if (name == "profile") return cmd_profile(cmd, a);
      if (name == "gc") return cmd_gc(cmd, a);
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
