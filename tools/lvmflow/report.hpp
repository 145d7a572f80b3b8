#pragma once
// `lvmflow report RUN -o report.html`: one self-contained HTML page about a run (no network):
// summary, timeline of every stage's batches, per-stage profile table, the pipeline's DAG,
// latency histograms, cache actions and item-cache hits, and the run's metrics (curves,
// tables, text). Tables are written here; the charts are drawn by the inlined script
// (report_assets.hpp) from a JSON block. How to read it: docs/profile.md.
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "pipeline/store.hpp"

namespace lvmflow {

void write_report(Store& store, std::int64_t run_id, std::ostream& out);

// Text for HTML element content and attribute values: & < > " ' escaped.
std::string html_escape(std::string_view text);
// JSON made safe to sit inside <script>: every '<' becomes \u003c, so no "</script>" or
// "<!--" in a string can end or alter the element.
std::string json_for_script(std::string_view json);

// "2026-11-24 04:18:35" in local time; "-" for 0.
std::string format_local_time(std::int64_t ms_since_epoch);

}  // namespace lvmflow
