// One event beside the list: every field, its details as foldable JSON, a link to copy.

import { h, timeElement, utcTime } from "./format.js";

const aside = document.getElementById("detail");
const SHOWN = ["id", "event_type", "severity", "message", "source", "timestamp", "created_at", "written_by"];
const LABELS = {
  id: "Id",
  event_type: "Type",
  severity: "Severity",
  message: "Message",
  source: "Source",
  timestamp: "Time",
  created_at: "Recorded",
  written_by: "Written by",
  idempotency_key: "Idempotency key",
};

/** Show ``event`` (or a message when it is a string); ``link`` is its shareable address. */
export function showEvent(event, link, onClose) {
  const close = h("button", { type: "button", class: "close", "aria-label": "Close the event", text: "×" });
  close.addEventListener("click", onClose);
  if (typeof event === "string") {
    aside.replaceChildren(
      h("header", {}, h("h2", { id: "detail-title", tabindex: "-1", text: "Event" }), close),
      h("p", { role: "alert", text: event }),
    );
  } else {
    aside.replaceChildren(
      h("header", {}, h("h2", { id: "detail-title", tabindex: "-1", text: `Event ${event.id}` }), close),
      fields(event),
      h("h3", { text: "Details" }),
      event.details == null ? h("p", { class: "muted", text: "No details." }) : jsonTree(event.details),
      copyLink(link),
    );
  }
  aside.hidden = false;
  aside.querySelector("#detail-title").focus();
}

export function hideEvent() {
  aside.hidden = true;
  aside.replaceChildren();
}

function fields(event) {
  const names = [...SHOWN, ...Object.keys(event).filter((k) => !SHOWN.includes(k) && k !== "details")];
  const list = h("dl", { class: "fields" });
  for (const name of names) {
    const value = event[name];
    let shown;
    if (name === "timestamp" || name === "created_at") {
      shown = h("span", {}, timeElement(value), h("br"), h("span", { class: "muted", text: utcTime(value) }));
    } else if (name === "severity") {
      shown = h("span", { class: `sev sev-${value}` }, h("span", { class: "dot", "aria-hidden": "true" }), value);
    } else if (value === null || value === undefined) {
      shown = h("span", { class: "muted", text: "none" });
    } else {
      shown = h("span", { class: name === "message" ? "message-full" : "", text: String(value) });
    }
    list.append(h("dt", { text: LABELS[name] ?? name }), h("dd", {}, shown));
  }
  return list;
}

/** Formatted JSON whose objects and arrays fold (native ``<details>``: keyboard and reader friendly). */
export function jsonTree(value) {
  const box = h("div", { class: "json" }, node(null, value, 0));
  const copy = h("button", { type: "button", class: "small", text: "Copy the details as JSON" });
  copy.addEventListener("click", () => copyText(JSON.stringify(value, null, 2), copy));
  return h("div", {}, box, copy);
}

function node(key, value, depth) {
  const label = key === null ? [] : [h("span", { class: "j-key", text: JSON.stringify(key) }), ": "];
  if (value !== null && typeof value === "object") {
    const array = Array.isArray(value);
    const entries = array ? value.map((v, i) => [i, v]) : Object.entries(value);
    const [open, end] = array ? ["[", "]"] : ["{", "}"];
    if (!entries.length) return h("div", { class: "j-line" }, ...label, `${open}${end}`);
    const summary = h("summary", {}, ...label, open, h("span", { class: "j-count muted", text: ` ${entries.length} ${array ? "items" : "keys"} ` }));
    const children = entries.map(([k, v]) => node(array ? null : k, v, depth + 1));
    return h("details", { open: depth < 3 }, summary, h("div", { class: "j-children" }, ...children), h("div", { class: "j-end", text: end }));
  }
  const kind = value === null ? "null" : typeof value;
  return h("div", { class: "j-line" }, ...label, h("span", { class: `j-${kind}`, text: JSON.stringify(value) }));
}

function copyLink(link) {
  const input = h("input", { id: "detail-link", readonly: true, value: link });
  const button = h("button", { type: "button", text: "Copy link" });
  button.addEventListener("click", () => copyText(link, button, input));
  return h("p", { class: "link" }, h("label", { for: "detail-link", text: "Link to this event" }), input, button);
}

async function copyText(text, button, input) {
  const before = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    input?.select(); // no clipboard (an insecure origin): leave it selected to copy by hand
    button.textContent = "Press Ctrl+C to copy";
  }
  setTimeout(() => (button.textContent = before), 2000);
}
