// The event stream: one line per event, newest first, the next page loaded by cursor on scroll,
// and live events put on top (held back while the reader is scrolled away from the top).

import { getJSON } from "./api.js";
import { count, h, timeElement } from "./format.js";

const PAGE_SIZE = 100;
const MAX_HELD = 5000;

export class Stream {
  /** ``linkFor(id)`` gives an event's address; ``onOpen(event, link)`` opens one. */
  constructor({ linkFor, onOpen, onError }) {
    this.scroller = document.getElementById("scroller");
    this.list = document.getElementById("stream");
    this.more = document.getElementById("more");
    this.paused = document.getElementById("paused");
    this.linkFor = linkFor;
    this.onError = onError;
    this.events = new Map();
    this.held = [];
    this.overflowed = false;
    this.cursor = null;
    this.loading = null;
    this.list.addEventListener("click", (e) => {
      const link = e.target.closest("a[data-id]");
      if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      onOpen(this.events.get(link.dataset.id), link);
    });
    new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.next();
    }, { root: this.scroller, rootMargin: "0px 0px 300px 0px" }).observe(this.more);
    this.scroller.addEventListener("scroll", () => {
      if (this.atTop() && this.held.length) this.release();
    }, { passive: true });
    document.getElementById("show-new").addEventListener("click", () => {
      this.scroller.scrollTop = 0;
      this.release();
    });
  }

  atTop() {
    return this.scroller.scrollTop <= 4;
  }

  /** Start over with ``params`` (the API filters): the first page. */
  async start(params, signal) {
    this.params = params;
    this.signal = signal;
    this.events.clear();
    this.held = [];
    this.overflowed = false;
    this.cursor = null;
    this.loading = null;
    this.list.replaceChildren();
    this.scroller.scrollTop = 0;
    this.showHeld();
    await this.load(null);
  }

  /** The next page, if there is one and none is loading. */
  next() {
    if (this.cursor && !this.loading && !this.signal?.aborted) this.load(this.cursor);
  }

  async load(cursor) {
    const params = new URLSearchParams(this.params);
    params.set("limit", PAGE_SIZE);
    params.set("count", "none");
    if (cursor) params.set("cursor", cursor);
    this.more.textContent = "Loading events…";
    const signal = this.signal;
    const loading = getJSON("/api/events", params, signal);
    this.loading = loading;
    try {
      const page = await loading;
      if (signal.aborted) return;
      this.list.append(...page.items.filter((e) => !this.events.has(String(e.id))).map((e) => this.row(e)));
      this.cursor = page.next_cursor;
      this.more.textContent = this.cursor
        ? `${count(this.events.size)} events shown; scroll for more.`
        : this.events.size
          ? `All ${count(this.events.size)} matching events are shown.`
          : "No event matches these filters.";
    } catch (error) {
      if (signal.aborted) return;
      this.more.textContent = `The events could not be loaded: ${error.message}`;
      this.onError(error);
      return;
    } finally {
      if (this.loading === loading) this.loading = null;
    }
    // A short page may leave the end in view: the observer would not fire again.
    const end = this.more.getBoundingClientRect().top;
    if (this.cursor && end < this.scroller.getBoundingClientRect().bottom + 300) this.next();
  }

  /** The line of one event. */
  row(event) {
    const id = String(event.id);
    this.events.set(id, event);
    const link = h(
      "a",
      { href: this.linkFor(id), "data-id": id, class: "line" },
      timeElement(event.timestamp),
      h("span", { class: `sev sev-${event.severity}` }, h("span", { class: "dot", "aria-hidden": "true" }), event.severity),
      h("span", { class: "type", text: event.event_type }),
      h("span", { class: "source", text: event.source ?? "" }),
      h("span", { class: "message", text: firstLine(event.message) }),
    );
    return h("li", { "data-id": id }, link);
  }

  /** Mark the line of the opened event (or none). */
  select(id) {
    for (const line of this.list.querySelectorAll('a[aria-current="true"]')) line.removeAttribute("aria-current");
    if (id) this.list.querySelector(`a[data-id="${CSS.escape(id)}"]`)?.setAttribute("aria-current", "true");
  }

  /** A live event: on top at once when the reader is at the top, else held back. */
  live(event) {
    if (this.events.has(String(event.id))) return;
    if (this.atTop() && !this.held.length) {
      this.prepend([event]);
      return;
    }
    if (this.held.length >= MAX_HELD) {
      this.held.shift();
      this.overflowed = true;
    }
    this.held.push(event);
    this.showHeld();
  }

  release() {
    const held = this.held;
    this.held = [];
    this.prepend(held);
    if (this.overflowed) {
      this.overflowed = false;
      this.more.textContent = "Some live events were dropped while paused; apply the filters again to see all.";
    }
    this.showHeld();
  }

  prepend(events) {
    const rows = events.filter((e) => !this.events.has(String(e.id))).reverse().map((e) => this.row(e));
    for (const row of rows) row.classList.add("fresh");
    this.list.prepend(...rows);
  }

  showHeld() {
    this.paused.hidden = !this.held.length;
    document.getElementById("paused-text").textContent =
      `${count(this.held.length)} new ${this.held.length === 1 ? "event" : "events"} held while you are scrolled away from the top.`;
  }
}

function firstLine(text) {
  const end = text.indexOf("\n");
  return end < 0 ? text : `${text.slice(0, end)} …`;
}
