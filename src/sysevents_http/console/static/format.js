// Small helpers: elements, times in the viewer's zone and in UTC, numbers.

/** An element with attributes (``class``, ``text`` and the rest) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** ``2024-05-01 14:03:07.123`` in the viewer's time zone. */
export function localTime(iso) {
  const d = new Date(iso);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

/** ``2024-05-01 12:03:07.123 UTC``. */
export function utcTime(iso) {
  return `${new Date(iso).toISOString().replace("T", " ").replace("Z", "")} UTC`;
}

/** A ``<time>`` showing local time, with UTC on hover. */
export function timeElement(iso) {
  return h("time", { datetime: iso, title: utcTime(iso), text: localTime(iso) });
}

const numbers = new Intl.NumberFormat();
export const count = (n) => numbers.format(n);
