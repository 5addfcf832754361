// The web client's reading of GET /api/limits (ask2live/static/js/limits.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { htmlPattern, maxLength, minLength, pageMax } from "../../ask2live/static/js/limits.js";

test("the server's username pattern becomes a pattern attribute the browser can compile", () => {
  const attribute = htmlPattern("^[A-Za-z0-9_.-]{3,32}$");
  assert.equal(attribute, "[A-Za-z0-9_.\\-]{3,32}");
  // What the browser does with it: anchored, compiled with the v flag (u where it lacks v).
  let flags = "u";
  try {
    new RegExp("", "v");
    flags = "v";
  } catch (error) {
    // an older engine
  }
  const re = new RegExp(`^(?:${attribute})$`, flags);
  for (const name of ["abc", "joon", "a.b-c_d", "x".repeat(32)]) assert.ok(re.test(name), name);
  for (const name of ["ab", "x".repeat(33), "has space", "민지", "a/b"]) assert.ok(!re.test(name), name);
});

test("a pattern without anchors or a class is kept as it is; a broken one gives none", () => {
  assert.equal(htmlPattern("[a-z]+"), "[a-z]+");
  assert.equal(htmlPattern("^\\d{4}$"), "\\d{4}");
  assert.equal(htmlPattern("^(unclosed$"), null);
  assert.equal(htmlPattern(undefined), null);
});

test("before the limits have loaded the forms go without them", () => {
  assert.equal(maxLength("chat"), null);
  assert.equal(minLength("password"), null);
  assert.equal(pageMax(), null);
});
