// Replays a recorded page (tests/js/fixtures/*.json, made by record.py) through the web
// client's own modules, wired as session.js wires them: the room's frames go through
// room.js (which drops repeats and keeps the resume position) into the pure functions of
// session-state.js; the REST answers go where SessionView sends them.

import { readFileSync } from "node:fs";

import { Room } from "../../ask2live/static/js/room.js";
import {
  applyEvent, applyWelcome, askedOverSocket, audienceListed, initialState, mergeSession, questionRemoved, questionSaved,
  questionsLoaded,
} from "../../ask2live/static/js/session-state.js";

export function fixture(name) {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"));
}

// The index of the first step ``accept`` takes (after ``from``); fails if none does.
export function stepIndex(steps, accept, from = 0) {
  const index = steps.findIndex((step, i) => i >= from && accept(step));
  if (index < 0) throw new Error("no such step");
  return index;
}

export const received = (accept) => (step) => Boolean(step.receive) && accept(step.receive);
export const sent = (accept) => (step) => Boolean(step.send) && accept(step.send);

// A state as plain data (Maps and Sets as arrays), to compare two states or check that one
// was left as it was.
export function plain(state) {
  return JSON.stringify(state, (key, value) => {
    if (value instanceof Map) return [...value.entries()];
    if (value instanceof Set) return [...value.values()];
    return value;
  });
}

// What a REST answer does to the page's state, as SessionView applies it.
function applyRest(state, me, step) {
  const [method, path] = step.rest.split(" ");
  const answer = step.answer;
  if (path.includes("/audience")) return audienceListed(state, answer, { more: path.includes("cursor=") });
  if (answer && answer.session) return state ? mergeSession(state, answer.session) : initialState(me, answer.session);
  if (answer && answer.items) return questionsLoaded(state, answer.items);
  if (answer && answer.question) return questionSaved(state, answer.question);
  const deleted = method === "DELETE" && path.match(/^\/api\/questions\/(\d+)$/);
  if (deleted) return questionRemoved(state, Number(deleted[1]));
  throw new Error(`teach applyRest() ${step.rest}`);
}

// Runs ``steps``; returns the page's state and room, the frames that were not events (as
// the page was handed them), the resume position the client had at each connect, and,
// with ``pure``, checks that no step changed the state it was given.
export function replay(steps, { pure = false } = {}) {
  let me = null;
  let state = null;
  const frames = [];
  const connects = [];
  const next = (change) => {
    const before = state;
    const was = pure && before ? plain(before) : null;
    state = change(before);
    if (was !== null && plain(before) !== was) throw new Error("a step changed the state it was given");
  };
  const room = new Room(0, {
    welcome: (frame, info) => next((s) => applyWelcome(s, frame, { ...info, now: 0 })),
    event: (frame, info) => next((s) => applyEvent(s, frame, info)),
    frame: (frame) => frames.push(frame),
    state: () => {},
    chat: () => {},
  });
  for (const step of steps) {
    if (step.me) {
      me = step.me;
    } else if (step.rest) {
      next((s) => applyRest(s, me, step));
    } else if (step.connect) {
      connects.push({ since: step.connect.since, clientSince: room.lastId, forced: Boolean(step.connect.forced) });
      // The browser tests force the same, by setting the position before a reconnect.
      if (step.connect.forced) room.lastId = step.connect.since;
    } else if (step.send) {
      const frame = step.send;
      // A question asked over the socket (SessionView.ask); a chat line shows at once as
      // "Sending…" (Room.chat), under the id the recording used.
      if (frame.type === "question") next((s) => askedOverSocket(s, frame.client_msg_id));
      if (frame.type === "chat") room.pending.set(frame.client_msg_id, { text: frame.text, status: "pending", at: 0 });
    } else if (step.receive) {
      room.receive(JSON.stringify(step.receive));
    } else if (!step.disconnect) {
      throw new Error(`teach replay() the step ${JSON.stringify(step).slice(0, 80)}`);
    }
  }
  return { state, room, frames, connects };
}
