#include "tools/lvmflow/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "pipeline/profile.hpp"
#include "tools/lvmflow/json_writer.hpp"
#include "tools/lvmflow/report_assets.hpp"

namespace lvmflow {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string json_for_script(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (char c : json) {
    // '<' only ever occurs inside JSON strings, where \u003c means the same character.
    if (c == '<') out += "\\u003c";
    else out += c;
  }
  return out;
}

std::string format_local_time(std::int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = ms / 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

namespace {

// Stage colours, shared with the script through the JSON block.
const std::vector<std::string> kPalette = {"#2f6fde", "#e8793a", "#12a39a", "#b44fc2", "#d6453d", "#5a9e2f",
                                           "#c99a00", "#3c8fbf", "#8a5a44", "#e05896", "#6b6ecf", "#4f7f6e"};

std::string format_seconds(double s) {
  char buf[32];
  double a = std::fabs(s);
  if (a >= 6000) std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
  else if (a >= 60) std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  else if (a >= 10) std::snprintf(buf, sizeof buf, "%.1f s", s);
  else if (a >= 1) std::snprintf(buf, sizeof buf, "%.2f s", s);
  else if (a >= 0.01) std::snprintf(buf, sizeof buf, "%.1f ms", s * 1e3);
  else if (a >= 1e-3) std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  else if (a >= 1e-6) std::snprintf(buf, sizeof buf, "%.0f \xC2\xB5s", s * 1e6);
  else std::snprintf(buf, sizeof buf, a > 0 ? "<1 \xC2\xB5s" : "0");
  return buf;
}

std::string format_ms(double ms) { return format_seconds(ms / 1e3); }

std::string format_number(double v) {
  char buf[48];
  double a = std::fabs(v);
  if (!std::isfinite(v)) return "-";
  if (v == std::floor(v) && a < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (a >= 1000 && a < 1e9) std::snprintf(buf, sizeof buf, "%.1f", v);
  else std::snprintf(buf, sizeof buf, "%.4g", v);   // 0.6123, 12.35, 1.5e-05
  return buf;
}

std::string format_rate(double per_s) {
  char buf[32];
  if (per_s >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", per_s / 1e6);
  else if (per_s >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", per_s / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", per_s);
  return buf;
}

std::string format_bytes(std::int64_t bytes) {
  char buf[32];
  if (bytes >= 1 << 30) std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1073741824.0);
  else if (bytes >= 1 << 20) std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1048576.0);
  else if (bytes >= 1 << 10) std::snprintf(buf, sizeof buf, "%.1f kB", bytes / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  return buf;
}

std::string percent(double fraction) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * fraction);
  return buf;
}

// The inline bar of a share/hit-rate cell, clamped to [0, 1].
std::string bar(double fraction, const std::string& color) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "<span class=\"bar-bg\"><span class=\"bar\" style=\"width:%.1f%%;background:%s\"></span></span>",
                100 * std::clamp(fraction, 0.0, 1.0), color.c_str());
  return buf;
}

std::string badge(const std::string& word) {
  return "<span class=\"badge " + html_escape(word) + "\">" + html_escape(word) + "</span>";
}

const std::string& stage_color(std::size_t i) { return kPalette[i % kPalette.size()]; }

// Everything the page shows, read from the store once.
struct ReportData {
  RunProfile profile;
  std::vector<StageRunRecord> stage_runs;
  std::vector<Span> spans;
  std::vector<MetricRecord> metrics;
  std::map<std::string, std::int64_t> stored_bytes;   // per stage: size of its cache entry
  double idle_s = 0;                                  // no stage working
};

ReportData gather(Store& store, std::int64_t run_id) {
  ReportData d;
  d.profile = profile_run(store, run_id);
  d.stage_runs = store.stage_runs(run_id);
  d.spans = store.spans(run_id);
  d.metrics = store.metrics(run_id);
  for (const auto& sr : d.stage_runs)
    if (auto entry = store.find_cache(sr.key)) d.stored_bytes[sr.stage] = entry->bytes;
  std::vector<std::pair<double, double>> intervals;
  for (const auto& s : d.spans) intervals.emplace_back(s.start_ns / 1e9, s.end_ns / 1e9);
  d.idle_s = std::max(0.0, d.profile.wall_s - union_length(std::move(intervals)));
  return d;
}

void write_data_json(const ReportData& d, std::ostream& out) {
  std::ostringstream json;
  JsonWriter j(json);
  const RunProfile& p = d.profile;
  j.begin_object();
  j.key("run").begin_object().field("id", static_cast<long long>(p.run.id)).field("pipeline", p.run.pipeline)
      .field("status", shown_status(p.run)).field("wall_ms", p.wall_s * 1e3).end_object();
  j.field("has_edges", p.has_edges);
  j.key("palette").begin_array();
  for (const auto& c : kPalette) j.value(c);
  j.end_array();
  std::map<std::string, std::vector<const Span*>> by_stage;
  for (const auto& s : d.spans) by_stage[s.stage].push_back(&s);
  auto pct = [&](const char* name, const Percentiles& q) {
    j.key(name).begin_object().field("p50", q.p50).field("p95", q.p95).field("p99", q.p99).field("max", q.max).end_object();
  };
  j.key("stages").begin_array();
  for (const auto& s : p.stages) {
    j.begin_object().field("name", s.stage).field("type", s.type).field("action", s.action).field("status", s.status)
        .field("calls", static_cast<long long>(s.calls)).field("items", static_cast<long long>(s.items))
        .field("busy_ms", s.busy_s * 1e3).field("active_ms", s.active_s * 1e3).field("share", s.share)
        .field("bottleneck", s.bottleneck);
    j.key("inputs").begin_array();
    for (const auto& in : s.inputs) j.value(in);
    j.end_array();
    pct("batch", s.batch_ms);
    pct("item", s.item_ms);
    pct("queued", s.queued_ms);
    // [start ms, end ms, seq, items, queued ms, thread]: compact for runs with many batches.
    j.key("spans").begin_array();
    for (const Span* sp : by_stage[s.stage]) {
      j.begin_array().value(sp->start_ns / 1e6).value(sp->end_ns / 1e6).value(static_cast<long long>(sp->seq))
          .value(static_cast<long long>(sp->items)).value(sp->queued_ns / 1e6).value(static_cast<long long>(sp->thread))
          .end_array();
    }
    j.end_array().end_object();
  }
  j.end_array();
  // Scalar series only: text metrics are written into the page as <pre> blocks.
  j.key("metrics").begin_array();
  for (const auto& m : d.metrics)
    if (m.text.empty())
      j.begin_object().field("stage", m.stage).field("name", m.name).field("label", m.label)
          .field("step", static_cast<long long>(m.step)).field("value", m.value).end_object();
  j.end_array();
  j.end_object();
  out << json_for_script(json.str());
}

void write_header(const ReportData& d, std::ostream& out) {
  const RunRecord& r = d.profile.run;
  std::string status = shown_status(r);
  out << "<header class=\"top\"><h1>" << html_escape(r.pipeline) << " <span class=\"run-id\">run #" << r.id
      << "</span></h1>\n<div class=\"meta\"><span class=\"status-" << html_escape(status) << "\">"
      << html_escape(status) << "</span> &middot; started " << html_escape(format_local_time(r.started_ms));
  if (r.finished_ms) out << " &middot; " << html_escape(format_seconds((r.finished_ms - r.started_ms) / 1e3)) << " in all";
  out << " &middot; spec <code>" << html_escape(r.spec_file) << "</code>";
  if (!r.args.empty()) out << " &middot; <code>" << html_escape(r.args) << "</code>";
  out << "</div>\n<nav><a href=\"#timeline\">Timeline</a><a href=\"#stages\">Stages</a><a href=\"#dag\">Pipeline</a>"
         "<a href=\"#latency\">Latency</a><a href=\"#cache\">Cache</a><a href=\"#metrics\">Metrics</a></nav></header>\n";
}

void write_cards(const ReportData& d, std::ostream& out) {
  const RunProfile& p = d.profile;
  std::map<std::string, int> actions;
  std::int64_t batches = 0;
  for (const auto& s : p.stages) {
    ++actions[s.action];
    batches += s.calls;
  }
  auto card = [&](const std::string& label, const std::string& value, const std::string& sub) {
    out << "<div class=\"card\"><div class=\"label\">" << html_escape(label) << "</div><div class=\"value\">"
        << html_escape(value) << "</div><div class=\"sub\">" << html_escape(sub) << "</div></div>\n";
  };
  out << "<div class=\"cards\">\n";
  card("Wall time", format_seconds(p.wall_s), "graph start to last stage end");
  std::ostringstream stages;
  stages << actions["run"] << " run, " << actions["replay"] << " replayed, " << actions["cached"] << " cached, "
         << actions["skipped"] << " skipped";
  card("Stages", std::to_string(p.stages.size()), stages.str());
  card("Batches", std::to_string(batches), "spans recorded");
  if (const StageProfile* b = p.bottleneck())
    card("Bottleneck", b->stage, "working " + percent(b->share) + " of the run, " + format_seconds(b->active_s));
  else
    card("Bottleneck", "-", "no stage ran");
  card("Graph idle", format_seconds(d.idle_s), p.wall_s > 0 ? percent(d.idle_s / p.wall_s) + " of the run: no stage working" : "");
  out << "</div>\n";
  if (!p.run.error.empty()) out << "<div class=\"error-line\">" << html_escape(p.run.error) << "</div>\n";
}

void write_stage_table(const ReportData& d, std::ostream& out) {
  out << "<section id=\"stages\"><h2>Stages</h2><p class=\"hint\">Per-stage latency profile (as <code>lvmflow profile "
      << d.profile.run.id << "</code>). Share: part of the run's wall time the stage was working. Queue: time a batch "
         "waited before its stage took it. Parallel: batches in progress at once (mean / most).</p>\n<div class=\"scroll\">"
         "<table class=\"grid\"><thead><tr><th>Stage</th><th class=\"text\">Type</th><th class=\"text\">Action</th>"
         "<th>Batches</th><th>Items</th><th>Busy</th><th>Active</th><th class=\"text\">Share</th><th>Batch p50</th>"
         "<th>p95</th><th>p99</th><th>Item p50</th><th>Items/s</th><th>Queue p50</th><th>Queue p95</th>"
         "<th>Parallel</th></tr></thead><tbody>\n";
  for (std::size_t i = 0; i < d.profile.stages.size(); ++i) {
    const auto& s = d.profile.stages[i];
    bool worked = s.calls > 0;
    auto cell = [&](const std::string& v) { out << "<td>" << (worked ? html_escape(v) : "<span class=\"muted\">-</span>") << "</td>"; };
    out << "<tr" << (s.bottleneck ? " class=\"bottleneck\"" : "") << "><td><span class=\"swatch\" style=\"background:"
        << stage_color(i) << "\"></span>" << html_escape(s.stage) << (s.bottleneck ? "<span class=\"tag\">bottleneck</span>" : "")
        << "</td><td class=\"text muted\">" << html_escape(s.type) << "</td><td class=\"text\">" << badge(s.action)
        << (s.status == "failed" || s.status == "cancelled" ? " " + badge(s.status) : "") << "</td>";
    cell(std::to_string(s.calls));
    cell(std::to_string(s.items));
    cell(format_seconds(s.busy_s));
    cell(format_seconds(s.active_s));
    out << "<td class=\"text\">" << (worked ? bar(s.share, stage_color(i)) + html_escape(percent(s.share)) : "") << "</td>";
    cell(format_ms(s.batch_ms.p50));
    cell(format_ms(s.batch_ms.p95));
    cell(format_ms(s.batch_ms.p99));
    cell(format_ms(s.item_ms.p50));
    cell(format_rate(s.items_per_s));
    bool queues = s.queued_s > 0;   // sources and barriers have no input queue
    cell(queues ? format_ms(s.queued_ms.p50) : "-");
    cell(queues ? format_ms(s.queued_ms.p95) : "-");
    char parallel[32];
    std::snprintf(parallel, sizeof parallel, "%.2f / %d", s.parallelism, s.max_parallel);
    cell(parallel);
    out << "</tr>\n";
  }
  out << "</tbody></table></div></section>\n";
}

// Item-cache counters a stage reported (metrics cache_hits / cache_misses), per label; the
// last value of each (stage, name, label) counts.
struct ItemCacheCounts {
  double hits = 0, misses = 0;
  std::vector<std::string> labels;
};

std::map<std::string, ItemCacheCounts> item_cache_counts(const std::vector<MetricRecord>& metrics) {
  std::map<std::tuple<std::string, std::string, std::string>, double> last;
  for (const auto& m : metrics)
    if (m.text.empty() && (m.name == "cache_hits" || m.name == "cache_misses")) last[{m.stage, m.label, m.name}] = m.value;
  std::map<std::string, ItemCacheCounts> out;
  for (const auto& [k, v] : last) {
    const auto& [stage, label, name] = k;
    auto& c = out[stage];
    (name == "cache_hits" ? c.hits : c.misses) += v;
    if (!label.empty() && (c.labels.empty() || c.labels.back() != label)) c.labels.push_back(label);
  }
  return out;
}

void write_cache(const ReportData& d, std::ostream& out) {
  auto items = item_cache_counts(d.metrics);
  std::map<std::string, int> actions;
  for (const auto& sr : d.stage_runs) ++actions[sr.action];
  out << "<section id=\"cache\"><h2>Cache</h2><p class=\"hint\">What the plan did with each stage: <b>run</b> "
         "(computed), <b>replay</b> (stored output streamed to stages that ran), <b>cached</b> (stored, not needed), "
         "<b>skipped</b> (outside <code>--until</code>). Item cache: per-item hits and misses a stage reported "
         "(metrics <code>cache_hits</code> / <code>cache_misses</code>).</p>\n<p>";
  for (const char* a : {"run", "replay", "cached", "skipped"}) out << badge(a) << " " << actions[a] << " &nbsp; ";
  out << "</p>\n<div class=\"scroll\"><table class=\"grid\"><thead><tr><th>Stage</th><th class=\"text\">Action</th>"
         "<th class=\"text\">Status</th><th class=\"text\">Cache key</th><th>Batches</th><th>Items out</th><th>Stored</th>"
         "<th>Item-cache hits</th><th>Misses</th><th class=\"text\">Hit rate</th></tr></thead><tbody>\n";
  for (const auto& s : d.profile.stages) {
    const StageRunRecord* sr = nullptr;
    for (const auto& r : d.stage_runs)
      if (r.stage == s.stage) sr = &r;
    if (!sr) continue;
    out << "<tr><td>" << html_escape(s.stage) << "</td><td class=\"text\">" << badge(sr->action) << "</td><td class=\"text\">"
        << html_escape(sr->status) << "</td><td class=\"text muted\"><code title=\"" << html_escape(sr->key) << "\">"
        << html_escape(sr->key.substr(0, 12)) << "</code></td><td>" << sr->batches << "</td><td>" << sr->items_out << "</td><td>";
    auto stored = d.stored_bytes.find(s.stage);
    out << (stored != d.stored_bytes.end() ? html_escape(format_bytes(stored->second)) : "<span class=\"muted\">-</span>") << "</td>";
    auto ic = items.find(s.stage);
    if (ic == items.end()) {
      out << "<td><span class=\"muted\">-</span></td><td><span class=\"muted\">-</span></td><td></td>";
    } else {
      double total = ic->second.hits + ic->second.misses;
      out << "<td>" << format_number(ic->second.hits) << "</td><td>" << format_number(ic->second.misses)
          << "</td><td class=\"text\">" << (total > 0 ? bar(ic->second.hits / total, "#12a39a") + percent(ic->second.hits / total) : "");
      if (!ic->second.labels.empty()) {
        std::string labels;
        for (const auto& l : ic->second.labels) labels += (labels.empty() ? "" : ", ") + l;
        out << " <span class=\"muted\">(" << html_escape(labels) << ")</span>";
      }
      out << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody></table></div></section>\n";
}

// Scalar metrics as tables of last values (rows: stage and label, columns: metric names), one
// table per stage type so that a foreach group (train.amn, train.lstm, ...) reads as one
// comparison; text metrics (e.g. an evaluation table) preformatted; curves drawn by the script.
void write_metrics(const ReportData& d, std::ostream& out) {
  out << "<section id=\"metrics\"><h2>Metrics</h2><p class=\"hint\">What the stages reported. Series with steps (e.g. "
         "epochs) are drawn as curves, one line per label; tables show each metric's last value.</p>\n<div class=\"body\">"
         "<div class=\"charts\"></div>\n";
  if (d.metrics.empty()) out << "<p class=\"muted\">This run recorded no metrics.</p>\n";
  // Stages in pipeline order, grouped by type (a stage missing from the profile is its own group).
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;   // (type, stages)
  auto add_stage = [&](const std::string& stage, const std::string& type) {
    for (auto& g : groups)
      if (g.first == type) {
        if (std::find(g.second.begin(), g.second.end(), stage) == g.second.end()) g.second.push_back(stage);
        return;
      }
    groups.push_back({type, {stage}});
  };
  for (const auto& s : d.profile.stages) add_stage(s.stage, s.type);
  for (const auto& m : d.metrics)
    if (!d.profile.find(m.stage)) add_stage(m.stage, "stage " + m.stage);
  for (const auto& [type, stages] : groups) {
    std::vector<std::string> names;
    std::vector<std::pair<std::string, std::string>> rows;   // (stage, label)
    std::map<std::tuple<std::string, std::string, std::string>, std::pair<double, int>> cells;   // -> (last, count)
    for (const auto& m : d.metrics) {
      if (!m.text.empty() || std::find(stages.begin(), stages.end(), m.stage) == stages.end()) continue;
      if (std::find(names.begin(), names.end(), m.name) == names.end()) names.push_back(m.name);
      if (std::find(rows.begin(), rows.end(), std::pair{m.stage, m.label}) == rows.end()) rows.push_back({m.stage, m.label});
      auto& c = cells[{m.stage, m.label, m.name}];
      c.first = m.value;
      ++c.second;
    }
    if (!names.empty()) {
      auto position = [&](const std::string& stage) { return std::find(stages.begin(), stages.end(), stage) - stages.begin(); };
      std::stable_sort(rows.begin(), rows.end(), [&](const auto& x, const auto& y) { return position(x.first) < position(y.first); });
      std::vector<std::string> with_metrics;
      for (const auto& [stage, label] : rows)
        if (std::find(with_metrics.begin(), with_metrics.end(), stage) == with_metrics.end()) with_metrics.push_back(stage);
      bool several = with_metrics.size() > 1;
      std::string heading;
      for (std::size_t i = 0; i < with_metrics.size(); ++i) heading += (i ? ", " : "") + with_metrics[i];
      out << "<h3>" << html_escape(heading) << (several ? " <span class=\"muted\">(" + html_escape(type) + ")</span>" : "")
          << "</h3><div class=\"scroll\"><table class=\"grid compact\"><thead><tr>" << (several ? "<th>stage</th>" : "")
          << "<th class=\"text\">label</th>";
      for (const auto& n : names) out << "<th>" << html_escape(n) << "</th>";
      out << "</tr></thead><tbody>\n";
      for (const auto& [stage, label] : rows) {
        out << "<tr>" << (several ? "<td>" + html_escape(stage) + "</td>" : "") << "<td class=\"text\">"
            << (label.empty() ? "<span class=\"muted\">-</span>" : html_escape(label)) << "</td>";
        for (const auto& n : names) {
          auto it = cells.find({stage, label, n});
          if (it == cells.end()) {
            out << "<td></td>";
            continue;
          }
          out << "<td" << (it->second.second > 1 ? " title=\"last of " + std::to_string(it->second.second) + " values\"" : "")
              << ">" << html_escape(format_number(it->second.first)) << "</td>";
        }
        out << "</tr>\n";
      }
      out << "</tbody></table></div>\n";
    }
    for (const auto& m : d.metrics)
      if (!m.text.empty() && std::find(stages.begin(), stages.end(), m.stage) != stages.end())
        out << "<h3>" << html_escape(m.stage) << " &middot; " << html_escape(m.name) << "</h3><pre class=\"text-metric\">"
            << html_escape(m.text) << "</pre>\n";
  }
  out << "</div></section>\n";
}

}  // namespace

void write_report(Store& store, std::int64_t run_id, std::ostream& out) {
  ReportData d = gather(store, run_id);
  const RunRecord& r = d.profile.run;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
         "script-src 'unsafe-inline'; img-src data:\">\n<title>"
      << html_escape(r.pipeline) << " run #" << r.id << " \xC2\xB7 lvmflow report</title>\n<style>"
      << report_assets::kStyle << "</style>\n<script>" << report_assets::kErrorHandler << "</script>\n</head>\n<body>\n";
  write_header(d, out);
  out << "<main>\n<noscript><div>The timeline, DAG and charts need JavaScript; the tables below do not.</div></noscript>\n";
  write_cards(d, out);
  out << "<section id=\"timeline\"><h2>Timeline</h2><p class=\"hint\">Every batch of every stage over the run's wall "
         "time, one lane per stage. Overlapping bars in different lanes: stages working at the same time. Empty "
         "stretches in a lane: the stage waited for input or for its consumers. Hover a bar for its numbers.</p>"
         "<div class=\"body\"></div></section>\n";
  write_stage_table(d, out);
  out << "<section id=\"dag\"><h2>Pipeline</h2><p class=\"hint\">Stages and their inputs, as planned for this run "
         "(spec <code>"
      << html_escape(r.spec_file)
      << "</code>). Colour bar: action; dashed edges: side inputs; orange frame: the bottleneck.</p>"
         "<div class=\"body\"></div></section>\n";
  out << "<section id=\"latency\"><h2>Latency</h2><p class=\"hint\">Distribution of time per batch for each stage, "
         "with p50 / p95 / p99 marked.</p><div class=\"body\"></div></section>\n";
  write_cache(d, out);
  write_metrics(d, out);
  out << "<p class=\"muted\">Generated by lvmflow on " << html_escape(format_local_time(now_ms())) << " from the store "
      << html_escape(store.root().string()) << ".</p>\n</main>\n<script type=\"application/json\" id=\"report-data\">";
  write_data_json(d, out);
  out << "</script>\n<script>" << report_assets::kScript << "</script>\n</body></html>\n";
}

}  // namespace lvmflow
