// The histogram above the list: stacked bars by severity (uPlot); dragging across it zooms.

import { getJSON } from "./api.js";
import { count, localTime } from "./format.js";
import { SEVERITIES } from "./state.js";

const box = document.getElementById("histogram");
const summary = document.getElementById("chart-summary");
const HEIGHT = 150;

function colour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export class Histogram {
  /** ``onZoom(sinceMs, untilMs)`` is called when the user drags across a time span. */
  constructor(onZoom) {
    this.onZoom = onZoom;
    this.plot = null;
    this.data = null;
    new ResizeObserver(() => this.plot?.setSize({ width: box.clientWidth, height: HEIGHT })).observe(box);
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => this.data && this.draw(this.data));
  }

  /** Load and draw the buckets of ``params`` (filters with ``since`` and ``until``). */
  async load(params, signal) {
    const query = new URLSearchParams(params);
    query.set("interval", "auto");
    summary.textContent = "Loading the histogram…";
    const answer = await getJSON("/api/events/histogram", query, signal);
    if (signal.aborted) return;
    const buckets = Array.isArray(answer) ? answer : answer.buckets;
    this.draw({ buckets, since: Date.parse(query.get("since")), until: Date.parse(query.get("until")) });
  }

  clear(text) {
    this.plot?.destroy();
    this.plot = this.data = null;
    summary.textContent = text;
  }

  draw(data) {
    this.data = data;
    const { buckets } = data;
    const xs = buckets.map((b) => Date.parse(b.start) / 1000);
    const raw = Object.fromEntries(SEVERITIES.map((s) => [s, buckets.map((b) => b.by_severity?.[s] ?? 0)]));
    // Stacked bars: each series is the sum up to its level, drawn from the top level down,
    // so each level's own part shows in its colour.
    const stacked = [];
    let running = buckets.map(() => 0);
    for (const s of SEVERITIES) {
      running = running.map((v, i) => v + raw[s][i]);
      stacked.push(running);
    }
    const order = [...SEVERITIES].reverse();
    const step = xs.length > 1 ? xs[1] - xs[0] : Math.max(1, (data.until - data.since) / 1000);
    const text = colour("--fg");
    const grid = colour("--grid");
    const bars = uPlot.paths.bars({ size: [1, Infinity], gap: 1, align: 1 });
    const options = {
      width: box.clientWidth || 600,
      height: HEIGHT,
      scales: { x: { time: true, range: () => [data.since / 1000, data.until / 1000] } },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      legend: { show: true, live: true },
      axes: [
        { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 56 },
      ],
      series: [
        { label: "from", value: (u, v) => (v == null ? "–" : localTime(v * 1000)) },
        ...order.map((s) => ({
          label: s,
          fill: colour(`--sev-${s}-bar`),
          stroke: colour(`--sev-${s}-bar`),
          width: 0,
          paths: bars,
          points: { show: false },
          value: (u, v, si, i) => (i == null ? "–" : count(raw[s][i])),
        })),
      ],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3) return;
            const from = u.posToVal(u.select.left, "x") * 1000;
            const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
            u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
            this.onZoom(Math.floor(from), Math.ceil(to));
          },
        ],
      },
    };
    const series = [xs, ...order.map((s) => stacked[SEVERITIES.indexOf(s)])];
    this.plot?.destroy();
    this.plot = new uPlot(options, series, box);
    const total = buckets.reduce((n, b) => n + b.total, 0);
    const busiest = buckets.reduce((best, b) => (b.total > (best?.total ?? -1) ? b : best), null);
    summary.textContent = total
      ? `${count(total)} events in ${count(buckets.length)} bars of ${describe(step)}; the busiest began ${localTime(busiest.start)} (${count(busiest.total)}). Drag across the chart to zoom.`
      : "No events in this time range.";
  }
}

function describe(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
