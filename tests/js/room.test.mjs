// The room connection's pure parts (ask2live/static/js/room.js): event id order and the
// reconnect back-off.

import assert from "node:assert/strict";
import { test } from "node:test";

import { BACKOFF_MAX_MS, after, reconnectDelay } from "../../ask2live/static/js/room.js";

test("event ids compare as integer pairs, not as strings", () => {
  assert.ok(after("1000-0", "999-0"));
  assert.ok(after("5-10", "5-9"));
  assert.ok(!after("5-9", "5-9"));
  assert.ok(after("1-0", null), "anything is after nothing");
});

test("the back-off: 0.2-0.25 s first, then half to all of a doubling wait, up to 10 s", () => {
  const range = (attempt) => [reconnectDelay(attempt, () => 0), reconnectDelay(attempt, () => 1)];
  assert.deepEqual(range(1), [200, 250]);
  assert.deepEqual(range(2), [400, 800]);
  assert.deepEqual(range(3), [800, 1600]);
  assert.deepEqual(range(6), [BACKOFF_MAX_MS / 2, BACKOFF_MAX_MS]);
  assert.deepEqual(range(60), [5000, 10000]);
  const delay = reconnectDelay(4);
  assert.ok(delay >= 1600 && delay <= 3200, String(delay));
});
