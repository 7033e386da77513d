// Small fetch helpers: every answer as {status, body}, never a throw for an HTTP error status.

/** `path` (`/api/v1/build`) below the path this server is mounted at (`data-root` of the page's body). */
export function appUrl(path) {
  return `${document.body.dataset.root || ""}${path}`;
}

/** GET `url` and parse JSON; `body` is null when the answer is not JSON. */
export async function getJson(url, options = {}) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", ...options });
  return { status: response.status, body: await parse(response), headers: response.headers };
}

/** POST `body` as JSON to `url`. */
export async function postJson(url, body, options = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    cache: "no-store",
    ...options,
  });
  return { status: response.status, body: await parse(response), headers: response.headers };
}

async function parse(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text ? { detail: text } : null;
  }
}

/** The server's `detail` as text, whatever shape it came in. */
export function detailOf(body, fallback = "The server did not say why.") {
  if (!body) return fallback;
  if (typeof body.detail === "string" && body.detail) return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((item) => item.msg || JSON.stringify(item)).join("; ");
  return fallback;
}

/** Call `fn` once input has paused for `ms` milliseconds. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Copy `text` to the clipboard; falls back to a selection when the Clipboard API is unavailable. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the selection method
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  area.remove();
  return copied;
}

/** Bytes as "1.4 MiB". */
export function formatSize(bytes) {
  if (bytes == null || Number.isNaN(bytes)) return "";
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Create an element with attributes and children (strings become text, never HTML). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}
