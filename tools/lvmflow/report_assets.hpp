#pragma once
// The style and script of `lvmflow report`, inlined into every report so that one HTML file
// works offline (no CDN, no network). The script reads the JSON in <script id="report-data">
// and draws the timeline, DAG, histograms and metric charts as SVG. Text reaches the page only
// through textContent / setAttribute, never innerHTML, so stage names and metric text are
// always shown literally. When it has drawn everything it adds <div id="report-ok">; any
// script error adds a visible <div id="report-error"> (tests/pipeline/report_test.cpp checks both).

namespace lvmflow::report_assets {

// Registered first, in <head>, so that even a syntax error in the main script is reported.
inline constexpr const char* kErrorHandler = R"JS(
window.reportFail = function (message) {
  var box = document.getElementById('report-error');
  if (!box) {
    box = document.createElement('div');
    box.id = 'report-error';
    (document.body || document.documentElement).insertBefore(box, document.body ? document.body.firstChild : null);
  }
  var line = document.createElement('div');
  line.textContent = 'report script error: ' + message;
  box.appendChild(line);
};
window.onerror = function (message, source, line, column) {
  window.reportFail(message + ' (line ' + line + ':' + column + ')');
};
)JS";

inline constexpr const char* kStyle = R"CSS(
:root {
  --ink: #1d2430; --muted: #667085; --line: #e3e7ee; --panel: #ffffff; --page: #f4f6f9;
  --run: #2f6fde; --replay: #12a39a; --cached: #8a97ab; --skipped: #c5ccd6; --bad: #d6453d;
  --idle: rgba(214, 69, 61, 0.08);
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: var(--page); }
header.top { background: #182030; color: #fff; padding: 18px 28px 14px; }
header.top h1 { margin: 0 0 4px; font-size: 21px; font-weight: 600; letter-spacing: .2px; }
header.top h1 .run-id { color: #9fb3d1; font-weight: 400; }
header.top .meta { color: #b8c4d6; font-size: 12.5px; }
header.top .meta code { color: #dfe7f3; }
header.top nav { margin-top: 10px; }
header.top nav a { color: #cfe0ff; text-decoration: none; margin-right: 16px; font-size: 13px; }
header.top nav a:hover { text-decoration: underline; }
main { padding: 18px 28px 40px; max-width: 1500px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
          margin-bottom: 18px; }
section h2 { margin: 0 0 4px; font-size: 16px; font-weight: 600; }
section p.hint { margin: 0 0 12px; color: var(--muted); font-size: 12.5px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 18px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px;
        min-width: 150px; }
.card .label { color: var(--muted); font-size: 11.5px; text-transform: uppercase; letter-spacing: .5px; }
.card .value { font-size: 20px; font-weight: 600; margin-top: 2px; }
.card .sub { color: var(--muted); font-size: 12px; }
.status-succeeded { color: #1f9d55; } .status-failed, .status-interrupted { color: var(--bad); }
.status-cancelled, .status-running { color: #c98a00; }
.error-line { background: #fdecea; border: 1px solid #f5c2be; color: #8c1d18; border-radius: 6px;
              padding: 8px 12px; margin-bottom: 18px; white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 12.5px; }
#report-error { background: var(--bad); color: #fff; padding: 10px 28px; font-weight: 600; }
table.grid { border-collapse: collapse; width: 100%; font-size: 12.5px; font-variant-numeric: tabular-nums; }
table.grid th { text-align: right; color: var(--muted); font-weight: 500; padding: 5px 8px; border-bottom: 1px solid var(--line);
                white-space: nowrap; font-size: 11.5px; }
table.grid td { text-align: right; padding: 5px 8px; border-bottom: 1px solid #f0f2f5; white-space: nowrap; }
table.grid th:first-child, table.grid td:first-child, table.grid td.text, table.grid th.text { text-align: left; }
table.grid tr.bottleneck td { background: #fff6e5; }
table.grid.compact { width: auto; min-width: 420px; }
table.grid.compact td, table.grid.compact th { padding-left: 18px; }
table.grid tr:hover td { background: #f5f8fd; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 11px; font-weight: 600; color: #fff; line-height: 18px; }
.badge.run { background: var(--run); } .badge.replay { background: var(--replay); }
.badge.cached { background: var(--cached); } .badge.skipped { background: var(--skipped); color: #4a5466; }
.badge.failed, .badge.cancelled { background: var(--bad); }
.tag { color: #a15c00; font-size: 11px; font-weight: 600; margin-left: 6px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.muted { color: var(--muted); }
.small { font-size: 12.5px; }
.bar { display: inline-block; height: 8px; border-radius: 4px; background: var(--run); vertical-align: 0; }
.bar-bg { display: inline-block; width: 90px; height: 8px; border-radius: 4px; background: #edf0f5; margin-right: 6px; overflow: hidden; }
.chart-grid { display: flex; flex-wrap: wrap; gap: 14px; }
.chart { border: 1px solid #eef0f4; border-radius: 6px; padding: 8px 10px 4px; }
.chart .title { font-weight: 600; font-size: 13px; }
.chart .sub { color: var(--muted); font-size: 11.5px; }
svg text { font-family: -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg .axis { fill: var(--muted); font-size: 10.5px; }
svg .lane-label { fill: var(--ink); font-size: 12px; }
svg .lane-sub { fill: var(--muted); font-size: 10px; }
.scroll { overflow-x: auto; }
pre.text-metric { background: #f7f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
                  font-size: 12px; overflow-x: auto; margin: 6px 0 14px; }
h3 { font-size: 13.5px; margin: 14px 0 4px; }
.toolbar { font-size: 12px; color: var(--muted); margin-bottom: 6px; }
.toolbar button { font: inherit; border: 1px solid var(--line); background: #fff; border-radius: 4px; padding: 1px 8px; cursor: pointer; }
.legend { font-size: 12px; color: var(--muted); margin-top: 6px; }
.legend span { margin-right: 14px; white-space: nowrap; }
noscript div { color: var(--bad); margin-bottom: 12px; }
)CSS";

inline constexpr const char* kScript = R"JS(
(function () {
  'use strict';
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var PALETTE = D.palette;
  var ACTION_COLOR = { run: '#2f6fde', replay: '#12a39a', cached: '#8a97ab', skipped: '#c5ccd6' };

  function svg(tag, attrs, parent, text) {
    var e = document.createElementNS(SVG_NS, tag);
    for (var k in attrs) if (attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, cls, parent, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function tip(node, text) { svg('title', {}, node, text); return node; }
  function fmtMs(ms) {
    var a = Math.abs(ms);
    if (a >= 60000) return (ms / 60000).toFixed(a >= 6000000 ? 0 : 1).replace(/\.0$/, '') + ' min';
    if (a >= 1000) return (ms / 1000).toFixed(a >= 10000 ? 1 : 2) + ' s';
    if (a >= 10) return ms.toFixed(a >= 100 ? 0 : 1) + ' ms';
    if (a >= 1) return ms.toFixed(2) + ' ms';
    if (a >= 0.001) return (ms * 1000).toFixed(a >= 0.01 ? 0 : 1) + ' \u00b5s';
    return a > 0 ? '<1 \u00b5s' : '0';
  }
  function fmtNum(v) {
    if (!isFinite(v)) return '-';
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
    if (Number.isInteger(v)) return String(v);
    return v.toFixed(a >= 100 ? 1 : a >= 1 ? 3 : 4);
  }
  function niceStep(span, count) {
    var raw = span / Math.max(1, count), mag = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / mag;
    return mag * (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10);
  }
  // Steps of 1, 2, 5 x 10^k; for time axes (ms) past a minute, whole minutes that read well.
  function niceTimeStep(span, count) {
    var raw = span / Math.max(1, count);
    if (raw < 30000) return niceStep(span, count);
    var minutes = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 240];
    for (var i = 0; i < minutes.length; i++) if (minutes[i] * 60000 >= raw) return minutes[i] * 60000;
    return niceStep(span, count);
  }
  function ticks(lo, hi, count, stepOf) {
    if (!(hi > lo)) return [lo];
    var step = (stepOf || niceStep)(hi - lo, count), out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return out;
  }
  function stageColor(i) { return PALETTE[i % PALETTE.length]; }
  function section(id) {
    var s = document.getElementById(id);
    return s && s.querySelector('.body');
  }
  function guarded(name, fn) {
    try { fn(); } catch (e) { window.reportFail(name + ': ' + (e && e.stack ? e.stack : e)); }
  }
  // Greedy interval colouring: overlapping batches of one stage go to separate rows.
  function assignRows(spans) {
    var ends = [], rows = new Array(spans.length);
    var order = spans.map(function (_, i) { return i; }).sort(function (a, b) { return spans[a][0] - spans[b][0]; });
    order.forEach(function (i) {
      var r = 0;
      while (r < ends.length && ends[r] > spans[i][0] + 1e-9) r++;
      ends[r] = spans[i][1];
      rows[i] = r;
    });
    return { rows: rows, count: Math.max(1, ends.length) };
  }
  // Loops, not Math.min.apply: that overflows the stack on runs with ~100k batches.
  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < values.length; i++) { if (values[i] < lo) lo = values[i]; if (values[i] > hi) hi = values[i]; }
    return [lo, hi];
  }
  function mergedIntervals(list) {
    list.sort(function (a, b) { return a[0] - b[0]; });
    var out = [];
    list.forEach(function (iv) {
      if (out.length && iv[0] <= out[out.length - 1][1]) out[out.length - 1][1] = Math.max(out[out.length - 1][1], iv[1]);
      else out.push([iv[0], iv[1]]);
    });
    return out;
  }

  // ------------------------------------------------------------------ timeline
  var zoom = null;
  function renderTimeline() {
    var body = section('timeline');
    if (!body) return;
    body.textContent = '';
    var lanes = D.stages;
    var allSpans = [];
    lanes.forEach(function (s) { s.spans.forEach(function (sp) { allSpans.push([sp[0], sp[1]]); }); });
    if (!allSpans.length) { html('p', 'muted', body, 'No stage processed a batch in this run (everything was cached or skipped).'); return; }
    var wall = Math.max(D.run.wall_ms, 1e-6);
    var lo = zoom ? zoom[0] : 0, hi = zoom ? zoom[1] : wall;
    var bar = html('div', 'toolbar', body);
    html('span', '', bar, zoom ? 'Showing ' + fmtMs(lo) + ' \u2013 ' + fmtMs(hi) + ' of ' + fmtMs(wall) + '. '
                                : 'Drag across the chart to zoom in. ');
    if (zoom) {
      var reset = html('button', '', bar, 'Show the whole run');
      reset.addEventListener('click', function () { zoom = null; renderTimeline(); });
    }
    var W = Math.max(820, body.clientWidth || 1200), labelW = 200, padR = 16, plotW = W - labelW - padR;
    var x = function (t) { return labelW + (t - lo) / (hi - lo) * plotW; };
    var activityH = 34, top = 22 + activityH + 10;
    var layout = lanes.map(function (s) {
      var rows = assignRows(s.spans);
      var inner = rows.count === 1 ? 16 : Math.min(rows.count * 9, 60);
      return { rows: rows, inner: inner, h: Math.max(36, inner + 14) };
    });
    var H = top + layout.reduce(function (a, l) { return a + l.h; }, 0) + 26;
    var root = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img' }, body);
    svg('title', {}, root, 'Timeline of every stage\u2019s batches');
    var clip = svg('clipPath', { id: 'plot-clip' }, svg('defs', {}, root));
    svg('rect', { x: labelW, y: 0, width: plotW, height: H }, clip);

    // Graph idle time: no stage working. Shaded across all lanes.
    var busy = mergedIntervals(allSpans), gaps = [], prev = 0;
    busy.forEach(function (iv) { if (iv[0] > prev) gaps.push([prev, iv[0]]); prev = Math.max(prev, iv[1]); });
    if (wall > prev) gaps.push([prev, wall]);
    var minGap = (hi - lo) * 0.004, idleTotal = 0;
    var plot = svg('g', { 'clip-path': 'url(#plot-clip)' }, root);
    gaps.forEach(function (g) {
      idleTotal += g[1] - g[0];
      if (g[1] - g[0] < minGap || g[1] < lo || g[0] > hi) return;
      tip(svg('rect', { x: x(g[0]), y: 22, width: Math.max(1, x(g[1]) - x(g[0])), height: H - 22 - 26, fill: 'rgba(214, 69, 61, 0.08)' }, plot),
          'graph idle ' + fmtMs(g[1] - g[0]) + ' (' + fmtMs(g[0]) + ' \u2013 ' + fmtMs(g[1]) + '): no stage was working');
    });

    // Activity strip: how many stages were working at once, averaged per pixel column.
    var cols = Math.max(1, Math.round(plotW)), acc = new Float64Array(cols), colW = (hi - lo) / cols;
    lanes.forEach(function (s) {
      mergedIntervals(s.spans.map(function (sp) { return [sp[0], sp[1]]; })).forEach(function (iv) {
        var a = Math.max(iv[0], lo), b = Math.min(iv[1], hi);
        if (b <= a) return;
        for (var c = Math.floor((a - lo) / colW); c < cols && lo + c * colW < b; c++) {
          var c0 = lo + c * colW, c1 = c0 + colW;
          acc[c] += (Math.min(b, c1) - Math.max(a, c0)) / colW;
        }
      });
    });
    var most = 1;
    for (var c = 0; c < cols; c++) most = Math.max(most, acc[c]);
    var base = 22 + activityH, path = 'M' + labelW + ' ' + base;
    for (c = 0; c < cols; c++) {
      var yv = base - acc[c] / most * (activityH - 4);
      path += 'L' + (labelW + c * plotW / cols) + ' ' + yv + 'L' + (labelW + (c + 1) * plotW / cols) + ' ' + yv;
    }
    path += 'L' + (labelW + plotW) + ' ' + base + 'Z';
    svg('path', { d: path, fill: '#c9d7f2', stroke: '#6f8fd1', 'stroke-width': 0.8 }, root);
    svg('text', { x: labelW - 10, y: 22 + activityH / 2 + 4, 'text-anchor': 'end', class: 'lane-sub' }, root,
        'stages working (max ' + Math.round(most * 10) / 10 + ')');

    // Time axis.
    ticks(lo, hi, Math.max(2, Math.floor(plotW / 110)), niceTimeStep).forEach(function (t) {
      svg('line', { x1: x(t), x2: x(t), y1: 18, y2: H - 24, stroke: '#eef0f4' }, root);
      svg('text', { x: x(t), y: 13, 'text-anchor': 'middle', class: 'axis' }, root, fmtMs(t));
      svg('text', { x: x(t), y: H - 10, 'text-anchor': 'middle', class: 'axis' }, root, fmtMs(t));
    });

    var y = top, pxPerMs = plotW / (hi - lo);
    lanes.forEach(function (s, i) {
      var L = layout[i], color = stageColor(i);
      svg('line', { x1: 0, x2: W, y1: y, y2: y, stroke: '#f0f2f5' }, root);
      var label = svg('text', { x: 8, y: y + L.h / 2 + (s.spans.length ? -2 : 4), class: 'lane-label' }, root,
                      s.name.length > 28 ? s.name.slice(0, 27) + '\u2026' : s.name);
      tip(label, s.name + ' (' + s.type + ')');
      if (s.spans.length) {
        svg('text', { x: 8, y: y + L.h / 2 + 11, class: 'lane-sub' }, root,
            s.action + ' \u00b7 ' + s.calls + ' batch' + (s.calls === 1 ? '' : 'es') + ' \u00b7 ' + fmtMs(s.active_ms) + (s.bottleneck ? ' \u00b7 bottleneck' : ''));
      } else {
        svg('text', { x: labelW + 8, y: y + L.h / 2 + 4, class: 'lane-sub' }, root,
            s.action === 'cached' ? 'cached: stored output not needed in this run' :
            s.action === 'skipped' ? 'skipped (outside --until)' : 'no batches recorded');
      }
      var rowH = L.inner / L.rows.count, laneTop = y + (L.h - L.inner) / 2;
      var g = svg('g', { 'clip-path': 'url(#plot-clip)' }, root);
      // Spans narrower than a pixel are merged per row, so huge runs stay light to draw.
      var pending = null;
      function flush() {
        if (!pending) return;
        var r = svg('rect', { x: x(pending.a), y: laneTop + pending.row * rowH + (rowH > 4 ? 0.5 : 0),
                              width: Math.max(1, (pending.b - pending.a) * pxPerMs), height: Math.max(1.5, rowH - (rowH > 4 ? 1 : 0)),
                              rx: rowH > 6 ? 2 : 0, fill: color, 'fill-opacity': s.action === 'replay' ? 0.55 : 0.9 }, g);
        var sp = pending.first;
        tip(r, pending.n === 1
            ? s.name + ' batch #' + sp[2] + ': ' + fmtMs(sp[1] - sp[0]) + ', ' + sp[3] + ' item' + (sp[3] === 1 ? '' : 's') +
              (sp[4] > 0 ? ', waited ' + fmtMs(sp[4]) + ' before it started' : '') + ', starts at ' + fmtMs(sp[0]) + ', thread ' + sp[5]
            : s.name + ': ' + pending.n + ' batches between ' + fmtMs(pending.a) + ' and ' + fmtMs(pending.b) + ' (zoom in to see each)');
        pending = null;
      }
      var order = s.spans.map(function (_, k) { return k; }).sort(function (a, b) {
        return L.rows.rows[a] - L.rows.rows[b] || s.spans[a][0] - s.spans[b][0];
      });
      order.forEach(function (k) {
        var sp = s.spans[k], row = L.rows.rows[k];
        if (sp[1] < lo || sp[0] > hi) return;
        // Queue wait: a thin line before the bar, from when the batch was ready to when it started.
        if (sp[4] > 0 && sp[4] * pxPerMs >= 2) {
          svg('line', { x1: x(sp[0] - sp[4]), x2: x(sp[0]), y1: laneTop + row * rowH + rowH / 2, y2: laneTop + row * rowH + rowH / 2,
                        stroke: color, 'stroke-opacity': 0.35, 'stroke-width': 1, 'stroke-dasharray': '2 2' }, g);
        }
        if (pending && pending.row === row && (sp[0] - pending.b) * pxPerMs < 0.5 && (sp[1] - pending.a) * pxPerMs < 3) {
          pending.b = Math.max(pending.b, sp[1]);
          pending.n++;
          return;
        }
        flush();
        pending = { a: sp[0], b: sp[1], row: row, n: 1, first: sp };
      });
      flush();
      y += L.h;
    });
    svg('line', { x1: 0, x2: W, y1: y, y2: y, stroke: '#f0f2f5' }, root);

    // Drag to zoom.
    var sel = null, startX = 0;
    function timeAt(px) { return lo + Math.min(Math.max(px - labelW, 0), plotW) / plotW * (hi - lo); }
    function localX(ev) { var r = root.getBoundingClientRect(); return (ev.clientX - r.left) * W / r.width; }
    root.addEventListener('mousedown', function (ev) {
      startX = localX(ev);
      if (startX < labelW) return;
      sel = svg('rect', { x: startX, y: 18, width: 0, height: H - 42, fill: 'rgba(47,111,222,0.12)', stroke: '#2f6fde' }, root);
      ev.preventDefault();
    });
    root.addEventListener('mousemove', function (ev) {
      if (!sel) return;
      var px = localX(ev);
      sel.setAttribute('x', Math.min(px, startX));
      sel.setAttribute('width', Math.abs(px - startX));
    });
    window.addEventListener('mouseup', function (ev) {
      if (!sel) return;
      var px = localX(ev);
      root.removeChild(sel);
      sel = null;
      if (Math.abs(px - startX) < 4) return;
      var a = timeAt(Math.min(px, startX)), b = timeAt(Math.max(px, startX));
      if (b - a > 1e-6) { zoom = [a, b]; renderTimeline(); }
    });
    var legend = html('div', 'legend', body);
    html('span', '', legend, 'Bars: one per batch (rows within a lane: batches in progress at once).');
    html('span', '', legend, 'Dashed: time a batch waited before its stage took it.');
    html('span', '', legend, 'Shaded: no stage working, ' + fmtMs(idleTotal) + ' in all (' +
         Math.round(idleTotal / wall * 1000) / 10 + '% of the run).');
  }

  // ------------------------------------------------------------------ DAG
  // Layered drawing, left to right: a stage's layer is its longest path from a source. An
  // edge that skips layers runs through a waypoint in each layer it crosses, so it bends
  // around the stages in between instead of passing under them; waypoints take part in the
  // ordering like stages do.
  function renderDag() {
    var body = section('dag');
    if (!body) return;
    var stages = D.stages, index = {};
    stages.forEach(function (s, i) { index[s.name] = i; });
    var depth = stages.map(function () { return 0; });
    // Stages come in pipeline order (inputs first), so one pass gives the longest-path layer.
    stages.forEach(function (s, i) {
      s.inputs.forEach(function (inp) { if (inp in index) depth[i] = Math.max(depth[i], depth[index[inp]] + 1); });
    });
    var nodes = stages.map(function (s, i) { return { stage: i, layer: depth[i], preds: [], succs: [] }; });
    var edges = [], waypoint = {};
    function link(a, b) { if (nodes[b].preds.indexOf(a) < 0) { nodes[b].preds.push(a); nodes[a].succs.push(b); } }
    stages.forEach(function (s, i) {
      s.inputs.forEach(function (inp, slot) {
        if (!(inp in index)) return;
        var from = index[inp], path = [from];
        // Edges from one stage share their waypoints, so fan-out to far layers is one bundle.
        for (var d = depth[from] + 1; d < depth[i]; d++) {
          var key = from + ':' + d;
          if (!(key in waypoint)) {
            nodes.push({ stage: -1, layer: d, preds: [], succs: [] });
            waypoint[key] = nodes.length - 1;
            link(path[path.length - 1], waypoint[key]);
          }
          path.push(waypoint[key]);
        }
        link(path[path.length - 1], i);
        path.push(i);
        edges.push({ path: path, slot: slot, from: inp, to: s.name });
      });
    });
    var layers = [];
    nodes.forEach(function (n, k) { (layers[n.layer] = layers[n.layer] || []).push(k); });
    var pos = {};
    layers.forEach(function (layer) { layer.forEach(function (k, r) { pos[k] = r; }); });
    // Barycentre sweeps, forward against inputs and backward against readers, reduce crossings.
    function reorder(layer, neighbours) {
      var key = {};
      layer.forEach(function (k) {
        var ns = neighbours(k);
        key[k] = ns.length ? ns.reduce(function (a, n) { return a + pos[n]; }, 0) / ns.length : pos[k];
      });
      layer.sort(function (a, b) { return key[a] - key[b] || pos[a] - pos[b]; });
      layer.forEach(function (k, r) { pos[k] = r; });
    }
    for (var sweep = 0; sweep < 4; sweep++) {
      for (var d = 1; d < layers.length; d++) reorder(layers[d], function (k) { return nodes[k].preds; });
      for (d = layers.length - 2; d >= 0; d--) reorder(layers[d], function (k) { return nodes[k].succs; });
    }
    var nodeW = 158, nodeH = 50, wayH = 10, gapX = 58, gapY = 14, pad = 12;
    var heightOf = function (k) { return nodes[k].stage >= 0 ? nodeH : wayH; };
    var layerH = layers.map(function (layer) {
      return layer.reduce(function (a, k) { return a + heightOf(k); }, 0) + (layer.length - 1) * gapY;
    });
    var W = pad * 2 + layers.length * nodeW + (layers.length - 1) * gapX;
    var H = pad * 2 + Math.max.apply(null, layerH.concat([nodeH]));
    var place = {};
    layers.forEach(function (layer, d) {
      var y = pad + (H - pad * 2 - layerH[d]) / 2;
      layer.forEach(function (k) { place[k] = { x: pad + d * (nodeW + gapX), y: y, mid: y + heightOf(k) / 2 }; y += heightOf(k) + gapY; });
    });
    var wrap = html('div', 'scroll', body);
    // Shrinks to the page's width when the pipeline is wider (viewBox keeps the proportions).
    var root = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img', style: 'max-width:100%;height:auto' }, wrap);
    svg('title', {}, root, 'Pipeline DAG');
    var marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
                     svg('defs', {}, root));
    svg('path', { d: 'M0 0L10 5L0 10z', fill: '#9aa6b8' }, marker);
    edges.forEach(function (e) {
      // Out of the right side of the input, across each waypoint's layer, into the left side.
      var first = place[e.path[0]], d = 'M' + (first.x + nodeW) + ' ' + first.mid, x = first.x + nodeW, y = first.mid;
      e.path.slice(1).forEach(function (k, n) {
        var p = place[k], last = n === e.path.length - 2, tx = last ? p.x - 2 : p.x, mx = (x + tx) / 2;
        d += 'C' + mx + ' ' + y + ' ' + mx + ' ' + p.mid + ' ' + tx + ' ' + p.mid;
        if (!last) d += 'L' + (p.x + nodeW) + ' ' + p.mid;
        x = p.x + nodeW;
        y = p.mid;
      });
      tip(svg('path', { d: d, fill: 'none', stroke: '#9aa6b8', 'stroke-width': 1.4, 'marker-end': 'url(#arrow)',
                        'stroke-dasharray': e.slot > 0 ? '4 3' : undefined }, root),
          e.from + ' \u2192 ' + e.to + (e.slot > 0 ? ' (side input ' + e.slot + ')' : ''));
    });
    stages.forEach(function (s, i) {
      var p = place[i], g = svg('g', { transform: 'translate(' + p.x + ',' + p.y + ')' }, root);
      var failed = s.status === 'failed' || s.status === 'cancelled';
      svg('rect', { width: nodeW, height: nodeH, rx: 7, fill: '#fff', stroke: failed ? '#d6453d' : s.bottleneck ? '#e8a33a' : '#cdd5e1',
                    'stroke-width': failed || s.bottleneck ? 2 : 1 }, g);
      svg('rect', { width: 6, height: nodeH, rx: 3, fill: ACTION_COLOR[s.action] || '#999' }, g);
      var name = s.name.length > 20 ? s.name.slice(0, 19) + '\u2026' : s.name;
      svg('text', { x: 14, y: 19, 'font-size': 12.5, 'font-weight': 600, fill: '#1d2430' }, g, name);
      svg('text', { x: 14, y: 33, 'font-size': 10.5, fill: '#667085' }, g, s.type.length > 24 ? s.type.slice(0, 23) + '\u2026' : s.type);
      svg('text', { x: 14, y: 45, 'font-size': 10.5, fill: ACTION_COLOR[s.action] || '#667085' }, g,
          s.action + (s.calls ? ' \u00b7 ' + fmtMs(s.active_ms) : '') + (s.bottleneck ? ' \u00b7 bottleneck' : '') + (failed ? ' \u00b7 ' + s.status : ''));
      tip(g, s.name + ' (' + s.type + '): ' + s.action + ', ' + s.status + (s.inputs.length ? '; reads ' + s.inputs.join(', ') : ''));
    });
    if (!D.has_edges) html('p', 'muted', body, 'This run was made by an lvmflow that did not record the plan\u2019s edges; stages are shown without them.');
  }

  // ------------------------------------------------------------------ histograms
  function histogram(parent, s, color) {
    var values = s.spans.map(function (sp) { return sp[1] - sp[0]; });
    var W = 330, H = 160, padL = 36, padR = 14, padT = 18, padB = 30, bins = Math.min(30, Math.max(6, Math.ceil(Math.sqrt(values.length)) + 2));
    var ext = extent(values), lo = ext[0], hi = ext[1];
    var log = lo > 0 && hi / lo > 30;
    var f = log ? Math.log : function (v) { return v; }, finv = log ? Math.exp : function (v) { return v; };
    var a = f(lo), b = f(hi);
    if (!(b > a)) { var d = Math.abs(a) * 0.05 || 0.001; a -= d; b += d; }
    var counts = new Array(bins).fill(0);
    values.forEach(function (v) { counts[Math.min(bins - 1, Math.floor((f(v) - a) / (b - a) * bins))]++; });
    var top = extent(counts)[1];
    var box = html('div', 'chart', parent);
    var t = html('div', 'title', box);
    html('span', 'swatch', t).style.background = color;
    t.appendChild(document.createTextNode(s.name));
    html('div', 'sub', box, values.length + ' batch' + (values.length === 1 ? '' : 'es') + ' \u00b7 p50 ' + fmtMs(s.batch.p50) +
         ' \u00b7 p95 ' + fmtMs(s.batch.p95) + ' \u00b7 p99 ' + fmtMs(s.batch.p99) + (log ? ' \u00b7 log scale' : ''));
    var root = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H }, box);
    var px = function (v) { return padL + (f(v) - a) / (b - a) * (W - padL - padR); };
    var bw = (W - padL - padR) / bins;
    counts.forEach(function (n, k) {
      if (!n) return;
      var h = n / top * (H - padT - padB);
      tip(svg('rect', { x: padL + k * bw + 0.5, y: H - padB - h, width: Math.max(1, bw - 1), height: h, fill: color, 'fill-opacity': 0.8 }, root),
          n + ' batch' + (n === 1 ? '' : 'es') + ' of ' + fmtMs(finv(a + k * (b - a) / bins)) + ' \u2013 ' + fmtMs(finv(a + (k + 1) * (b - a) / bins)));
    });
    svg('line', { x1: padL, x2: W - padR, y1: H - padB, y2: H - padB, stroke: '#9aa6b8' }, root);
    svg('text', { x: padL - 4, y: padT + 8, 'text-anchor': 'end', class: 'axis' }, root, String(top));
    svg('text', { x: padL - 4, y: H - padB, 'text-anchor': 'end', class: 'axis' }, root, '0');
    // Quantile lines, labelled in a row above the plot; labels of close lines are pushed apart.
    var labelX = -Infinity;
    [['p50', s.batch.p50], ['p95', s.batch.p95], ['p99', s.batch.p99]].forEach(function (q, k) {
      var xq = px(Math.min(Math.max(q[1], finv(a)), finv(b)));
      svg('line', { x1: xq, x2: xq, y1: padT - 2, y2: H - padB, stroke: '#1d2430', 'stroke-dasharray': k ? '3 2' : undefined, 'stroke-opacity': 0.7 }, root);
      labelX = Math.min(Math.max(xq, labelX + 24, padL + 10), W - 12 - (2 - k) * 24);
      svg('text', { x: labelX, y: padT - 6, 'text-anchor': 'middle', class: 'axis' }, root, q[0]);
    });
    var tk = log ? [lo, Math.sqrt(lo * hi), hi] : ticks(finv(a), finv(b), 4), shown = {};
    tk.forEach(function (v) {
      if (shown[fmtMs(v)]) return;   // coarse units can print two ticks alike
      shown[fmtMs(v)] = true;
      var xt = px(v), anchor = xt > W - padR - 20 ? 'end' : xt < padL + 20 ? 'start' : 'middle';
      svg('text', { x: xt, y: H - padB + 13, 'text-anchor': anchor, class: 'axis' }, root, fmtMs(v));
    });
    svg('text', { x: (W + padL) / 2, y: H - 3, 'text-anchor': 'middle', class: 'axis' }, root, 'time per batch');
  }
  function renderHistograms() {
    var body = section('latency');
    if (!body) return;
    var grid = html('div', 'chart-grid', body), few = [];
    D.stages.forEach(function (s, i) {
      if (!s.spans.length) return;
      // A distribution needs a few batches; one or two are listed with their times instead.
      if (s.spans.length < 3) { few.push(s); return; }
      histogram(grid, s, stageColor(i));
    });
    if (!grid.firstChild) body.removeChild(grid);
    if (few.length) {
      var line = html('p', 'muted small', body, 'Stages with one or two batches: ');
      few.forEach(function (s, k) {
        line.appendChild(document.createTextNode((k ? ', ' : '') + s.name + ' ' + s.spans.map(function (sp) { return fmtMs(sp[1] - sp[0]); }).join(' + ')));
      });
    }
    if (!grid.parentNode && !few.length) html('p', 'muted', body, 'No batches were processed in this run.');
  }

  // ------------------------------------------------------------------ metric charts
  function lineChart(parent, title, series) {
    var W = 380, H = 190, padL = 48, padR = 12, padT = 10, padB = 30;
    var xs = [], ys = [];
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var ex = extent(xs), ey = extent(ys), x0 = ex[0], x1 = ex[1], y0 = ey[0], y1 = ey[1];
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    var padY = (y1 - y0) * 0.08 || Math.abs(y1) * 0.05 || 1;
    y0 -= padY; y1 += padY;
    var box = html('div', 'chart', parent);
    html('div', 'title', box, title);
    var root = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H }, box);
    var px = function (v) { return padL + (v - x0) / (x1 - x0) * (W - padL - padR); };
    var py = function (v) { return H - padB - (v - y0) / (y1 - y0) * (H - padT - padB); };
    var yStep = niceStep(y1 - y0, 4), decimals = Math.min(6, Math.max(0, -Math.floor(Math.log10(yStep))));
    ticks(y0, y1, 4).forEach(function (v) {
      svg('line', { x1: padL, x2: W - padR, y1: py(v), y2: py(v), stroke: '#eef0f4' }, root);
      svg('text', { x: padL - 4, y: py(v) + 3, 'text-anchor': 'end', class: 'axis' }, root,
          Math.abs(v) >= 1e5 ? fmtNum(v) : v.toFixed(decimals));
    });
    ticks(x0, x1, 6).forEach(function (v) {
      if (Math.abs(v - Math.round(v)) > 1e-9) return;
      svg('text', { x: px(v), y: H - padB + 13, 'text-anchor': 'middle', class: 'axis' }, root, String(v));
    });
    svg('line', { x1: padL, x2: W - padR, y1: H - padB, y2: H - padB, stroke: '#9aa6b8' }, root);
    svg('text', { x: (W + padL) / 2, y: H - 3, 'text-anchor': 'middle', class: 'axis' }, root, 'step');
    var legend = html('div', 'legend', box);
    series.forEach(function (s, k) {
      var color = PALETTE[k % PALETTE.length];
      var pts = s.points.slice().sort(function (a, b) { return a[0] - b[0]; });
      svg('polyline', { points: pts.map(function (p) { return px(p[0]) + ',' + py(p[1]); }).join(' '), fill: 'none', stroke: color, 'stroke-width': 1.8 }, root);
      pts.forEach(function (p) {
        tip(svg('circle', { cx: px(p[0]), cy: py(p[1]), r: 2.6, fill: color }, root), (s.label || title) + ' step ' + p[0] + ': ' + fmtNum(p[1]));
      });
      var item = html('span', '', legend);
      html('span', 'swatch', item).style.background = color;
      item.appendChild(document.createTextNode(s.label || '(no label)'));
    });
  }
  // One chart per (stage type, metric name): the stages of a foreach group (train.lstm,
  // train.gru, ...) share a chart with a line each. Lines are named by label, or by stage and
  // label when two stages use the same label.
  function renderMetricCharts() {
    var body = section('metrics');
    if (!body) return;
    var target = body.querySelector('.charts');
    if (!target) return;
    var typeOf = {};
    D.stages.forEach(function (s) { typeOf[s.name] = s.type; });
    var groups = {}, order = [];
    D.metrics.forEach(function (m) {
      if (m.step < 0) return;
      var key = (typeOf[m.stage] || m.stage) + '\u0000' + m.name;
      if (!groups[key]) { groups[key] = { name: m.name, stages: [], series: {}, order: [] }; order.push(key); }
      var g = groups[key];
      if (g.stages.indexOf(m.stage) < 0) g.stages.push(m.stage);
      var sk = m.stage + '\u0000' + m.label;
      if (!g.series[sk]) { g.series[sk] = { stage: m.stage, label: m.label, points: [] }; g.order.push(sk); }
      g.series[sk].points.push([m.step, m.value]);
    });
    var grid = html('div', 'chart-grid', target), drawn = 0;
    order.forEach(function (key) {
      var g = groups[key];
      var series = g.order.map(function (k) { return g.series[k]; });
      if (!series.some(function (s) { return s.points.length > 1; })) return;
      var seen = {}, clash = false;
      series.forEach(function (s) { clash = clash || seen[s.label]; seen[s.label] = true; });
      series.forEach(function (s) {
        s.label = clash || !s.label ? (g.stages.length > 1 || !s.label ? s.stage + (s.label ? ' ' + s.label : '') : s.label) : s.label;
      });
      var where = g.stages.length <= 2 ? g.stages.join(', ') : g.stages[0] + ' and ' + (g.stages.length - 1) + ' more';
      lineChart(grid, g.name + ' \u00b7 ' + where, series);
      drawn++;
    });
    if (!drawn) target.parentNode.removeChild(target);
  }

  guarded('timeline', renderTimeline);
  guarded('DAG', renderDag);
  guarded('latency histograms', renderHistograms);
  guarded('metric charts', renderMetricCharts);
  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { guarded('timeline', renderTimeline); }, 150);
  });
  var ok = document.createElement('div');
  ok.id = 'report-ok';
  ok.hidden = true;
  document.body.appendChild(ok);
})();
)JS";

}  // namespace lvmflow::report_assets
