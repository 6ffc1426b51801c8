// The view's state: read from and written to the address (shareable), the form, and the API.

export const SEVERITIES = ["debug", "info", "warning", "error", "critical"];
export const RANGES = { "15m": 15 * 60e3, "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };

/** An empty view: every event, nothing opened. */
export function emptyState() {
  return {
    q: "",
    types: [],
    source: "",
    severities: [],
    min: "",
    range: "",
    since: "",
    until: "",
    details: [],
    event: "",
  };
}

/** The state a query string describes (the console's address). */
export function fromQuery(search) {
  const params = new URLSearchParams(search);
  const state = emptyState();
  state.q = params.get("q") || "";
  state.types = params.getAll("event_type").filter(Boolean);
  state.source = params.get("source") || "";
  state.severities = params.getAll("severity").filter((s) => SEVERITIES.includes(s));
  state.min = SEVERITIES.includes(params.get("min_severity")) ? params.get("min_severity") : "";
  const range = params.get("range") || "";
  state.range = range in RANGES ? range : "";
  if (!state.range) {
    state.since = params.get("since") || "";
    state.until = params.get("until") || "";
    if (state.since || state.until) state.range = "custom";
  }
  for (const [name, value] of params) {
    if (name.startsWith("details.") && name.length > 8) state.details.push([name.slice(8), value]);
  }
  state.event = /^\d{1,19}$/.test(params.get("event") || "") ? params.get("event") : "";
  return state;
}

/** The filters as API parameters; a relative range is resolved against ``now`` (ms). */
export function filterParams(state, now = Date.now()) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const type of state.types) params.append("event_type", type);
  if (state.source) params.set("source", state.source);
  for (const severity of state.severities) params.append("severity", severity);
  if (state.min) params.set("min_severity", state.min);
  if (state.range in RANGES) {
    params.set("since", new Date(now - RANGES[state.range]).toISOString());
  } else {
    if (state.since) params.set("since", state.since);
    if (state.until) params.set("until", state.until);
  }
  for (const [path, value] of state.details) params.append(`details.${path}`, value);
  return params;
}

/** The console's query string for ``state`` (relative ranges stay relative when shared). */
export function toQuery(state) {
  const params = filterParams({ ...state, range: "" });
  if (state.range in RANGES) {
    params.delete("since");
    params.delete("until");
    params.set("range", state.range);
  }
  if (state.event) params.set("event", state.event);
  const text = params.toString();
  return text ? `?${text}` : "";
}

// datetime-local inputs speak local wall time; the API and the address speak UTC.
function toLocalInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60e3);
  return local.toISOString().slice(0, 19);
}

function fromLocalInput(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** Put ``state`` into the filter form. */
export function writeForm(form, state) {
  form.elements.q.value = state.q;
  form.elements.event_type.value = state.types.join(", ");
  form.elements.source.value = state.source;
  for (const box of form.querySelectorAll('input[name="severity"]')) {
    box.checked = state.severities.includes(box.value);
  }
  form.elements.min_severity.value = state.min;
  form.elements.range.value = state.range;
  form.elements.since.value = state.since ? toLocalInput(state.since) : "";
  form.elements.until.value = state.until ? toLocalInput(state.until) : "";
  form.querySelector("#custom-range").hidden = state.range !== "custom";
  const rows = form.querySelector("#details-rows");
  rows.replaceChildren(...state.details.map(([path, value]) => detailRow(path, value)));
}

/** The state the filter form describes (the opened event is not part of it). */
export function readForm(form) {
  const state = emptyState();
  state.q = form.elements.q.value.trim();
  state.types = form.elements.event_type.value
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  state.source = form.elements.source.value.trim();
  state.severities = [...form.querySelectorAll('input[name="severity"]:checked')].map(
    (b) => b.value,
  );
  state.min = form.elements.min_severity.value;
  state.range = form.elements.range.value;
  if (state.range === "custom") {
    state.since = fromLocalInput(form.elements.since.value);
    state.until = fromLocalInput(form.elements.until.value);
  }
  for (const row of form.querySelectorAll(".detail-row")) {
    const path = row.querySelector(".detail-path").value.trim();
    if (path) state.details.push([path, row.querySelector(".detail-value").value]);
  }
  return state;
}

let rowCount = 0;

/** One ``details.PATH = VALUE`` filter row of the form. */
export function detailRow(path = "", value = "") {
  const n = ++rowCount;
  const row = document.createElement("div");
  row.className = "detail-row";
  const pathInput = Object.assign(document.createElement("input"), {
    className: "detail-path",
    value: path,
    id: `detail-path-${n}`,
    placeholder: "path, e.g. region or user.id",
    autocomplete: "off",
  });
  const valueInput = Object.assign(document.createElement("input"), {
    className: "detail-value",
    value,
    id: `detail-value-${n}`,
    placeholder: "value (JSON or text)",
    autocomplete: "off",
  });
  pathInput.setAttribute("aria-label", "Details path");
  valueInput.setAttribute("aria-label", "Details value");
  const label = (text, target) =>
    Object.assign(document.createElement("label"), { htmlFor: target.id, textContent: text });
  const remove = Object.assign(document.createElement("button"), {
    type: "button",
    className: "detail-remove",
    textContent: "Remove",
  });
  remove.setAttribute("aria-label", `Remove the details filter ${path || n}`);
  remove.addEventListener("click", () => {
    row.remove();
    document.getElementById("add-detail").focus();
  });
  row.append(label("details.", pathInput), pathInput, label("=", valueInput), valueInput, remove);
  return row;
}
