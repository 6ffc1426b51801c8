// Live tail over Server-Sent Events, read with fetch() so the key travels in a header
// (EventSource cannot send one, and a key in the address would end up in logs).
// On a broken connection it reconnects with Last-Event-ID, so no event is missed or repeated.

import { authorizedFetch } from "./api.js";

/** A parser of the SSE wire format: feed it text, it calls ``onMessage({id, event, data})``. */
export function sseParser(onMessage) {
  let buffer = "";
  let data = [];
  let event = "";
  let id = null;
  return (chunk) => {
    buffer += chunk;
    // A chunk may end between the CR and LF of one line break: keep that line for later.
    const cr = buffer.endsWith("\r");
    const lines = (cr ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
    buffer = lines.pop() + (cr ? "\r" : "");
    for (const line of lines) {
      if (line === "") {
        if (data.length) onMessage({ id, event: event || "message", data: data.join("\n") });
        data = [];
        event = "";
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id" && !value.includes("\0")) id = value;
    }
  };
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

export class Tail {
  /** ``onEvent(event)`` for each new event; ``onState(text)`` says how the connection is. */
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.controller = null;
  }

  get running() {
    return this.controller !== null;
  }

  /** Follow the events matching ``params`` (API filters), until ``stop()``. */
  start(params) {
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    this.run(new URLSearchParams(params), controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
    this.onState("");
  }

  async run(params, signal) {
    let lastId = null;
    let delay = 500;
    while (!signal.aborted) {
      try {
        this.onState("connecting…");
        const headers = { Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await authorizedFetch("/api/events/stream", params, { signal, headers, cache: "no-store" });
        if (!response.ok) throw new Error(`the server answered ${response.status}`);
        this.onState("live");
        delay = 500;
        const feed = sseParser((message) => {
          if (message.id !== null) lastId = message.id;
          if (message.event !== "message" && message.event !== "event") return;
          try {
            const event = JSON.parse(message.data);
            if (event && typeof event === "object" && "id" in event) this.onEvent(event);
          } catch {
            // not an event: nothing to show
          }
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          feed(value);
        }
      } catch (error) {
        if (signal.aborted) return;
        this.onState(`reconnecting (${error.message})`);
      }
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 15000);
    }
  }
}
