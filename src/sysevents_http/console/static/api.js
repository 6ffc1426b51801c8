// Talking to the API: the key (this tab only), JSON reads, and the prompt a 401 brings back.

const STORE = "sysevents.api-key";
export const PREFIX = document.querySelector('meta[name="sysevents-prefix"]').content;

const dialog = document.getElementById("key-dialog");
const input = document.getElementById("key-input");
const why = document.getElementById("key-why");
const keyButton = document.getElementById("key-button");

let waiting = null; // the promise of a key while the prompt is open
let resolveKey = null;

export function storedKey() {
  return sessionStorage.getItem(STORE);
}

/** The headers that carry the key, if the tab has one. */
export function authHeaders() {
  const key = storedKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** Ask for a key; resolves once one is entered (the prompt can be dismissed and reopened). */
export function askForKey(reason) {
  why.textContent = reason;
  if (!waiting) waiting = new Promise((resolve) => (resolveKey = resolve));
  keyButton.hidden = false;
  if (!dialog.open) {
    input.value = "";
    dialog.showModal();
  }
  return waiting;
}

dialog.addEventListener("close", () => {
  const key = input.value.trim();
  if (dialog.returnValue !== "use" || !key) return; // dismissed: the key button reopens it
  sessionStorage.setItem(STORE, key);
  input.value = "";
  const resolve = resolveKey;
  waiting = resolveKey = null;
  if (resolve) resolve(key);
  else document.dispatchEvent(new CustomEvent("sysevents:key"));
});

document.getElementById("key-forget").addEventListener("click", () => {
  sessionStorage.removeItem(STORE);
  input.value = "";
  why.textContent = "The key is forgotten. Enter another to go on.";
});

keyButton.addEventListener("click", () => {
  why.textContent = storedKey()
    ? "A key is in use for this tab. Enter another to replace it."
    : "This server needs an API key with the read scope.";
  input.value = "";
  dialog.showModal();
});
keyButton.hidden = !storedKey();

/** An answer of the API that is not a success: its status and problem detail. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `the server answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function apiUrl(path, params) {
  const query = params ? `?${params}` : "";
  return `${PREFIX}${path}${query}`;
}

/** fetch() with the key; a 401 forgets the key, asks for another and tries again. */
export async function authorizedFetch(path, params, init = {}) {
  for (;;) {
    const hadKey = Boolean(storedKey());
    const response = await fetch(apiUrl(path, params), {
      ...init,
      headers: { Accept: "application/json", ...init.headers, ...authHeaders() },
    });
    if (response.status !== 401) return response;
    sessionStorage.removeItem(STORE);
    await askForKey(
      hadKey
        ? "The key was refused (unknown, expired or revoked). Enter another."
        : "This server needs an API key with the read scope.",
    );
  }
}

/** The JSON answer of a GET, or an ApiError. */
export async function getJSON(path, params, signal) {
  const response = await authorizedFetch(path, params, { signal });
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      // not problem details: the status says enough
    }
    throw new ApiError(response.status, problem);
  }
  return response.json();
}
