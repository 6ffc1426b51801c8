// Stats at a glance: totals by severity, last hour and day, the top types and sources.
// Each figure is a button that narrows the filters to it.

import { count, h } from "./format.js";
import { SEVERITIES } from "./state.js";

const box = document.getElementById("glance");
const TOP = 5;

/** Show ``stats``; ``pick(kind, value)`` narrows the view (kind: severity, type, source). */
export function showStats(stats, pick) {
  const figure = (label, value) => h("div", { class: "figure" }, h("span", { class: "figure-value", text: count(value) }), h("span", { class: "figure-label", text: label }));
  const button = (kind, value, n, cls = "") => {
    const b = h("button", { type: "button", class: `chip ${cls}`, "aria-label": `Only ${kind} ${value}: ${count(n)} events` },
      h("span", { class: "chip-name", text: value }), h("span", { class: "chip-count", text: count(n) }));
    b.addEventListener("click", () => pick(kind, value));
    return b;
  };
  const top = (kind, counts, other) => {
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, TOP);
    const rest = Object.values(counts).reduce((n, v) => n + v, 0) + other - entries.reduce((n, [, v]) => n + v, 0);
    return h("div", { class: "group" },
      h("h3", { text: kind === "type" ? "Top types" : "Top sources" }),
      entries.length ? h("div", { class: "chips" }, ...entries.map(([name, n]) => button(kind, name, n)),
        rest > 0 ? h("span", { class: "muted", text: `others: ${count(rest)}` }) : null)
        : h("p", { class: "muted", text: "none" }));
  };
  box.replaceChildren(
    h("div", { class: "figures" },
      figure("events", stats.total),
      figure("last hour", stats.last_hour),
      figure("last 24 h", stats.last_24h)),
    h("div", { class: "group" },
      h("h3", { text: "By severity" }),
      h("div", { class: "chips" }, ...SEVERITIES.map((s) => button("severity", s, stats.by_severity[s] ?? 0, `sev-${s}`)))),
    top("type", stats.by_type, stats.by_type_other ?? 0),
    top("source", stats.by_source, stats.by_source_other ?? 0),
  );
  fill("known-types", stats.by_type);
  fill("known-sources", stats.by_source);
}

export function statsFailed(message) {
  box.replaceChildren(h("p", { class: "muted", text: `Statistics unavailable: ${message}` }));
}

function fill(id, counts) {
  const names = Object.keys(counts).slice(0, 200);
  document.getElementById(id).replaceChildren(...names.map((value) => h("option", { value })));
}
