// The console: the filters in the address drive the stats, the histogram, the stream and the tail.

import { getJSON } from "./api.js";
import { hideEvent, showEvent } from "./detail.js";
import { Histogram } from "./chart.js";
import { showStats, statsFailed } from "./glance.js";
import { count } from "./format.js";
import { detailRow, filterParams, fromQuery, readForm, toQuery, writeForm } from "./state.js";
import { Stream } from "./stream.js";
import { Tail } from "./tail.js";

const form = document.getElementById("filters");
const status = document.getElementById("status");
const tailSwitch = document.getElementById("tail");
const tailState = document.getElementById("tail-state");
const counter = document.getElementById("count");

let state = fromQuery(location.search);
let loads = new AbortController();
let opener = null; // the line whose event is open, to give the focus back to

const pageUrl = (s) => `${location.pathname}${toQuery(s)}`;
const stream = new Stream({
  linkFor: (id) => pageUrl({ ...state, event: id }),
  onOpen: (event, line) => openEvent(event, line),
  onError: reportError,
});
const histogram = new Histogram((since, until) =>
  apply({ ...state, range: "custom", since: new Date(since).toISOString(), until: new Date(until).toISOString() }),
);
const tail = new Tail(
  (event) => stream.live(event),
  (text) => (tailState.textContent = text),
);

function reportError(error) {
  status.textContent = error.status === 403 ? "This key may not read events (it lacks the read scope)." : `Error: ${error.message}`;
}

/** Show a new view: remember it in the address (``push``: a new history entry) and load it. */
function apply(next, push = true) {
  state = { ...next, event: next.event ?? "" };
  if (push) history.pushState(null, "", pageUrl(state));
  writeForm(form, state);
  load();
}

/** Load everything the current view shows. */
async function load() {
  loads.abort();
  loads = new AbortController();
  const { signal } = loads;
  const now = Date.now();
  const params = filterParams(state, now);
  performance.clearMarks();
  performance.mark("sysevents:load");
  status.textContent = "Loading…";
  counter.textContent = "";
  if (tail.running) tail.start(params);
  const first = stream.start(params, signal).then(() => performance.mark("sysevents:rows"));
  const stats = getJSON("/api/events/stats", params, signal);
  const chart = stats.then((s) => {
    const span = new URLSearchParams(params);
    if (!span.has("since")) {
      if (!s.first_timestamp) return histogram.clear("No events to chart.");
      span.set("since", s.first_timestamp);
    }
    if (!span.has("until")) {
      const last = s.last_timestamp ? Date.parse(s.last_timestamp) + 1 : now;
      span.set("until", new Date(Math.max(last, now)).toISOString());
    }
    if (Date.parse(span.get("until")) <= Date.parse(span.get("since"))) return histogram.clear("The time range is empty.");
    return histogram.load(span, signal);
  });
  stats.then(
    (s) => {
      if (signal.aborted) return;
      counter.textContent = `(${count(s.total)} matching)`;
      showStats(s, pick);
    },
    (error) => !signal.aborted && statsFailed(error.message),
  );
  chart.catch((error) => !signal.aborted && histogram.clear(`The histogram is unavailable: ${error.message}`));
  if (state.event) openById(state.event, signal);
  const results = await Promise.allSettled([first, stats, chart]);
  if (signal.aborted) return;
  const failed = results.find((r) => r.status === "rejected");
  if (failed) reportError(failed.reason);
  else status.textContent = "";
  performance.mark("sysevents:ready");
  document.body.dataset.ready = String(Number(document.body.dataset.ready || 0) + 1);
}

function pick(kind, value) {
  const next = { ...state, event: "" };
  if (kind === "severity") next.severities = [value];
  else if (kind === "type") next.types = [value];
  else next.source = value;
  apply(next);
}

function openEvent(event, line) {
  opener = line;
  state = { ...state, event: String(event.id) };
  history.pushState(null, "", pageUrl(state));
  stream.select(state.event);
  showEvent(event, new URL(pageUrl({ ...state }), location.href).href, closeEvent);
}

async function openById(id, signal) {
  const link = new URL(pageUrl(state), location.href).href;
  try {
    const event = await getJSON(`/api/events/${id}`, null, signal);
    if (!signal.aborted) showEvent(event, link, closeEvent);
  } catch (error) {
    if (!signal.aborted) showEvent(error.status === 404 ? `No event has the id ${id}.` : error.message, link, closeEvent);
  }
  stream.select(id);
}

function closeEvent() {
  state = { ...state, event: "" };
  history.pushState(null, "", pageUrl(state));
  hideEvent();
  stream.select("");
  (opener?.isConnected ? opener : document.getElementById("events-title")).focus();
  opener = null;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  apply(readForm(form));
});
// Choices apply at once; typed text applies on Enter (or Apply).
form.addEventListener("change", (e) => {
  if (e.target.name === "range") {
    form.querySelector("#custom-range").hidden = e.target.value !== "custom";
    if (e.target.value === "custom") return;
  }
  if (e.target.type === "checkbox" || e.target.tagName === "SELECT") apply(readForm(form));
});
document.getElementById("clear").addEventListener("click", () => apply(fromQuery("")));
document.getElementById("add-detail").addEventListener("click", () => {
  const row = detailRow();
  document.getElementById("details-rows").append(row);
  row.querySelector("input").focus();
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.event && !document.getElementById("key-dialog").open) closeEvent();
});
tailSwitch.addEventListener("change", () => {
  if (tailSwitch.checked) tail.start(filterParams(state));
  else tail.stop();
});
window.addEventListener("popstate", () => {
  const next = fromQuery(location.search);
  const sameView = toQuery({ ...next, event: "" }) === toQuery({ ...state, event: "" });
  if (sameView) {
    state = next;
    if (next.event) openById(next.event, loads.signal);
    else {
      hideEvent();
      stream.select("");
    }
    return;
  }
  apply(next, false);
});
document.addEventListener("sysevents:key", () => load());

writeForm(form, state);
load();
