// The server's limits (GET /api/limits): text lengths, the username pattern, the page size.
// Read once at start; every form takes its maxlength, minlength and pattern from here, so
// that the server is the one place they are written. Until they have loaded (or if the
// server could not be reached) the forms go without: the server still checks.

import { get } from "./api.js";

export let limits = null;

export async function loadLimits() {
  limits = await get("/api/limits");
  return limits;
}

export function maxLength(field) {
  return limits?.[field]?.max_length ?? null;
}

export function minLength(field) {
  return limits?.[field]?.min_length ?? null;
}

// The most items a list answers at once (its largest "limit").
export function pageMax() {
  return limits?.page?.max_limit ?? null;
}

// Browsers compile a pattern attribute with the "v" flag, or "u" where they lack it.
const PATTERN_FLAGS = (() => {
  try {
    new RegExp("", "v");
    return "v";
  } catch (error) {
    return "u";
  }
})();

// An HTML pattern attribute for a server pattern such as "^[A-Za-z0-9_.-]{3,32}$", or null
// if it cannot be one. The browser anchors a pattern attribute itself, and under the "v"
// flag a "-" that is not a range must be escaped, even at the end of a class.
export function htmlPattern(source) {
  if (typeof source !== "string") return null;
  const body = source.replace(/^\^/, "").replace(/(?<!\\)\$$/, "").replace(/(?<!\\)-\]/g, "\\-]");
  try {
    new RegExp(`^(?:${body})$`, PATTERN_FLAGS);
  } catch (error) {
    return null;
  }
  return body;
}
