// What the pages' scripts share: building DOM nodes without HTML, and talking JSON to the API
// with the session's CSRF token. An ES module: `import { el, jsonHeaders, readJson } from
// "./common.js";`

// A DOM node from a tag, attributes ("text" sets textContent, "on…" adds a listener) and
// children. Nothing is ever parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

// The session's CSRF token, from the page's <meta name="csrf-token">.
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

// Headers of a JSON request from the page (unsafe methods need the CSRF token).
export function jsonHeaders() {
  return {
    "content-type": "application/json",
    accept: "application/json",
    "x-csrf-token": csrfToken(),
  };
}

// The response's JSON body, or {} when it has none (a proxy's error page, an empty 204).
export async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}
