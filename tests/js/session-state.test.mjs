// The session page's state (ask2live/static/js/session-state.js) on frames recorded from a
// real server (fixtures/, made by record.py): the host's page and a guest's page through a
// whole session. Run with `node --test tests/js/` (tests/test_webclient_state.py does).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CHAT_KEEP, applyEvent, applyWelcome, audienceCount, audienceListClosed, audienceNames, chatLines, initialState, isHost,
  myRole, people, pinnedQuestion, questionSaved, roleOf, sortedQuestions,
} from "../../ask2live/static/js/session-state.js";
import { fixture, plain, received, replay, sent, stepIndex } from "./replay.mjs";

const guest = fixture("whole-session-guest.json").steps;
const host = fixture("whole-session-host.json").steps;

const names = (users) => users.map((u) => u.username);
const upTo = (steps, accept, from = 0) => replay(steps.slice(0, stepIndex(steps, accept, from) + 1));
const texts = (state) => state.chat.map((line) => line.text);
const questionText = (state, text) => [...state.questions.values()].find((q) => q.text === text);
const visible = (state) => sortedQuestions(state, "top").map((q) => q.text);
const FIRST = "What was your hardest decision?";
const ANONYMOUS = "Will you share the deck?";
const REMOTE = "Is remote work OK?";

test("no step changes the state it was given", () => {
  replay(guest, { pure: true });
  replay(host, { pure: true });
});

test("a part that an event leaves alone is the same object after it", () => {
  const { state } = upTo(guest, received((f) => f.type === "session_started"));
  const chat = guest.find(received((f) => f.type === "chat")).receive;
  const next = applyEvent(state, chat, { replay: false });
  assert.notEqual(next.chat, state.chat);
  for (const part of ["session", "questions", "stage", "audience", "speakers", "hands", "myAsks"]) {
    assert.equal(next[part], state[part], part);
  }
});

test("the page opens on the REST cue sheet, then the welcome's room", () => {
  const { state } = upTo(guest, received((f) => f.type === "welcome"));
  assert.equal(state.session.status, "scheduled");
  assert.equal(isHost(state), false);
  assert.equal(state.voiceConfigured, true);
  assert.deepEqual(visible(state), [FIRST]);
  assert.equal(questionText(state, FIRST).mine, true);
  assert.deepEqual(names(people(state)), ["minji"], "the stage: the host");
  assert.deepEqual(names(audienceNames(state)), ["joon"], "a small room's audience, by name");
  assert.equal(audienceCount(state), 2);
  assert.deepEqual(state.chat, [], "joins make no chat lines");
});

test("someone joining the audience comes in an audience event: the count, and the name in a small room", () => {
  const { state } = upTo(guest, received((f) => f.type === "audience" && f.count === 3));
  assert.deepEqual(people(state).map((u) => u.display_name), ["김민지"]);
  assert.deepEqual(audienceNames(state).map((u) => u.display_name), ["Joon", "Sora"]);
  assert.equal(audienceCount(state), 3);
});

test("an audience event that names nobody keeps the count and stops naming the audience", () => {
  const { state } = upTo(guest, received((f) => f.type === "audience" && f.count === 3));
  const event = { ...guest.find(received((f) => f.type === "audience" && f.count === 3)).receive };
  const next = applyEvent(state, { ...event, id: "99999999999998-0", count: 120, named: false, joined: [], left: [] });
  assert.equal(audienceCount(next), 120);
  assert.equal(audienceNames(next), null, "unknown: only the count shows");
  assert.equal(next.stage, state.stage);
  assert.deepEqual(names(people(next)), ["minji"]);
});

test("a stage join and leave move the count until the next audience event", () => {
  const { state } = upTo(guest, received((f) => f.type === "audience" && f.count === 3));
  const speaker = { id: 50, username: "mina", display_name: "Mina" };
  const joined = applyEvent(state, { type: "join", id: "99999999999998-0", ts: 0, user: speaker, role: "speaker", conn: "c50" });
  assert.equal(audienceCount(joined), 4);
  const left = applyEvent(joined, { type: "leave", id: "99999999999998-1", ts: 0, user: speaker, conn: "c50" });
  assert.equal(audienceCount(left), 3);
  assert.equal(applyEvent(left, { type: "leave", id: "99999999999998-2", ts: 0, user: speaker, conn: "c50" }).audience.count, 3,
    "a leave of a connection not known is not counted twice");
});

test("the host pages through the room: a first page, then more from next_cursor", () => {
  const first = upTo(host, (step) => Boolean(step.rest) && step.rest.includes("/audience?limit")).state;
  assert.deepEqual(first.audienceList.items.map((p) => p.user.username), ["minji", "joon"]);
  assert.equal(typeof first.audienceList.next, "string");
  assert.equal(first.audienceList.count, 3);
  const all = upTo(host, (step) => Boolean(step.rest) && step.rest.includes("/audience?cursor")).state;
  assert.deepEqual(all.audienceList.items.map((p) => p.user.username), ["minji", "joon", "sora"]);
  assert.equal(all.audienceList.next, null);
  assert.equal(audienceListClosed(all).audienceList, null);
});

test("a live welcome's public questions keep what the page knew of mine and voted", () => {
  const { state } = upTo(guest, received((f) => f.type === "welcome" && f.recovered));
  const welcome = guest.find(received((f) => f.type === "welcome" && f.recovered)).receive;
  assert.equal("mine" in welcome.questions[0], false, "the welcome's questions are the public form");
  assert.equal(questionText(state, FIRST).mine, true);
  assert.equal(questionText(state, FIRST).voted, true);
  assert.equal(questionText(state, ANONYMOUS).mine, true);
  assert.equal(questionText(state, REMOTE).mine, false);
});

test("an anonymous question asked over the socket is mine by its client_msg_id, for me only", () => {
  const mine = upTo(guest, received((f) => f.type === "question")).state;
  const q = questionText(mine, ANONYMOUS);
  assert.equal(q.author, null);
  assert.equal(q.anonymous, true);
  assert.equal(q.mine, true);
  assert.equal(mine.myAsks.size, 0, "the echo ends the wait");
  const theirs = upTo(host, received((f) => f.type === "question")).state;
  assert.equal(questionText(theirs, ANONYMOUS).mine, false);
});

test("votes count for everyone and are 'voted' for the voter only", () => {
  const afterVotes = (steps) => upTo(steps, received((f) => f.type === "session_started")).state;
  const g = afterVotes(guest);
  const h = afterVotes(host);
  assert.equal(questionText(g, FIRST).votes, 2);
  assert.equal(questionText(g, FIRST).voted, true);
  assert.equal(questionText(h, FIRST).votes, 2);
  assert.equal(questionText(h, FIRST).voted, false);
});

test("going live: over REST on the host's page, by session_started on the guest's", () => {
  const rest = upTo(host, (step) => step.rest === "POST /api/sessions/1/start").state;
  assert.equal(rest.session.status, "live");
  const g = upTo(guest, received((f) => f.type === "session_started")).state;
  assert.equal(g.session.status, "live");
  assert.ok(g.session.started_at);
});

test("session_started does not take the host's 'reserved' for ours", () => {
  const { state } = upTo(guest, received((f) => f.type === "question_updated"));
  const event = guest.find(received((f) => f.type === "session_started")).receive;
  assert.equal(event.session.reserved, false);
  const reserved = { ...state, session: { ...state.session, reserved: true } };
  assert.equal(applyEvent(reserved, event, { replay: false }).session.reserved, true);
});

test("chat lines show in order; an own line is keyed by its client_msg_id", () => {
  const { state, room } = upTo(guest, received((f) => f.type === "chat" && f.user.username === "minji"));
  assert.deepEqual(texts(state), ["안녕하세요 👋", "Welcome, everyone!"]);
  const lines = chatLines(state, room.pending);
  assert.deepEqual(lines.map((l) => l.key), ["c:joon-3", "e:" + state.chat[1].id]);
  assert.ok(lines.every((l) => l.status === "confirmed"));
  assert.equal(roleOf(state, state.chat[1].user), "host");
});

test("an own line waits as 'pending' until its echo", () => {
  const sending = replay(guest.slice(0, stepIndex(guest, sent((f) => f.type === "chat")) + 1));
  assert.deepEqual(chatLines(sending.state, sending.room.pending).map((l) => [l.key, l.status, l.line.text]),
    [["c:joon-3", "pending", "안녕하세요 👋"]]);
  const echoed = upTo(guest, received((f) => f.type === "chat"));
  assert.equal(echoed.room.pending.size, 0);
});

test("a pin puts the question first and in 'now answering'", () => {
  const { state } = upTo(guest, received((f) => f.action === "pin"));
  assert.equal(pinnedQuestion(state).text, FIRST);
  assert.equal(visible(state)[0], FIRST);
  assert.deepEqual([...state.questions.values()].filter((q) => q.pinned).map((q) => q.text), [FIRST]);
});

test("a question asked over REST while live reaches the room, and is nobody's own but its author's", () => {
  const { state } = upTo(guest, received((f) => f.type === "question" && f.client_msg_id === null));
  const q = questionText(state, REMOTE);
  assert.equal(q.mine, false);
  assert.equal(q.author.username, "sora");
});

test("a hidden question: the host keeps it, marked; the others lose it, and get it back as it was", () => {
  const hidden = (f) => f.action === "hide" && f.value === true;
  const g = upTo(guest, received(hidden)).state;
  assert.equal(visible(g).includes(REMOTE), false);
  const h = upTo(host, received(hidden)).state;
  assert.equal(visible(h).includes(REMOTE), true);
  assert.equal(questionText(h, REMOTE).hidden, true);
  const shown = upTo(guest, received((f) => f.action === "hide" && f.value === false)).state;
  const q = questionText(shown, REMOTE);
  assert.equal(visible(shown).includes(REMOTE), true);
  assert.equal(q.hidden, false);
  assert.equal(q.voted, true, "joon's vote survives the hide");
  assert.equal(q.votes, 1);
});

test("a raised hand, then voice granted and revoked, for the guest and as the host sees it", () => {
  const raised = upTo(guest, received((f) => f.type === "hand_raised")).state;
  assert.deepEqual([...raised.hands], [2]);
  assert.deepEqual(names(people(raised)), ["minji", "joon"], "a raised hand is on the stage");
  assert.deepEqual(names(audienceNames(raised)), ["sora"]);

  const granted = upTo(guest, received((f) => f.type === "voice_granted")).state;
  assert.deepEqual([...granted.hands], []);
  assert.deepEqual([...granted.speakers], [2]);
  assert.equal(myRole(granted), "speaker");
  assert.equal(texts(granted).at(-1), "You can speak now.");
  assert.equal(texts(upTo(host, received((f) => f.type === "voice_granted")).state).at(-1), "Joon can speak now.");

  const revoked = upTo(guest, received((f) => f.type === "voice_revoked")).state;
  assert.deepEqual([...revoked.speakers], []);
  assert.equal(myRole(revoked), "listener");
  assert.equal(texts(revoked).at(-1), "Your voice was turned off.");
  assert.equal(texts(upTo(host, received((f) => f.type === "voice_revoked")).state).at(-1), "Joon’s voice was turned off.");
});

test("frames that are not events reach the page as they are, and leave the state alone", () => {
  const before = upTo(guest, received((f) => f.type === "voice_revoked"));
  const after = upTo(guest, received((f) => f.code === "too_long"));
  assert.deepEqual(after.frames.map((f) => f.type + ":" + (f.role || f.code)),
    ["voice_token:publisher", "voice_token:publisher", "voice_token:subscriber",
      "error:not_host", "error:already_voted", "error:too_long"]);
  assert.equal(plain({ ...after.state }), plain({ ...before.state }));
});

test("a refused chat line turns 'Not sent' and stays until retried or discarded", () => {
  const { state, room } = upTo(guest, received((f) => f.code === "too_long"));
  const last = chatLines(state, room.pending).at(-1);
  assert.equal(last.key, "c:joon-9");
  assert.equal(last.status, "failed");
});

test("changes made over REST while live: answered, asked, edited, deleted", () => {
  const edited = upTo(guest, received((f) => f.action === "edit")).state;
  assert.ok(questionText(edited, "typo question"));
  assert.equal(questionText(edited, "typo questoin"), undefined);
  const { state } = upTo(guest, received((f) => f.action === "delete"));
  assert.equal(questionText(state, "typo question"), undefined);
  assert.equal(questionText(state, REMOTE).answered, true);
  assert.deepEqual(visible(state), [FIRST, ANONYMOUS, REMOTE], "pinned first, answered last");
});

test("a host's REST answer replaces the question on the host's page", () => {
  const { state } = upTo(host, (step) => step.rest === "POST /api/questions/3/answer");
  assert.equal(questionText(state, REMOTE).answered, true);
});

test("a deleted chat line goes", () => {
  const before = upTo(guest, received((f) => f.type === "chat" && f.text === "buy cheap followers")).state;
  assert.equal(texts(before).at(-1), "buy cheap followers");
  const { state } = upTo(guest, received((f) => f.type === "message_deleted"));
  assert.equal(texts(state).includes("buy cheap followers"), false);
});

test("a resume asks from the last event seen, and the catch-up adds what was missed once", () => {
  const resumed = upTo(guest, received((f) => f.type === "welcome" && f.recovered));
  const [, resume] = resumed.connects;
  assert.equal(resume.clientSince, resume.since, "the client would have asked from the same position");
  const { state } = resumed;
  const lines = texts(state);
  assert.equal(lines.filter((t) => t === "while you were away").length, 1);
  assert.equal(lines.includes("buy cheap followers"), false);
  assert.equal(new Set(state.chat.map((line) => line.id)).size, state.chat.length, "nothing twice");
  assert.deepEqual(names(people(state)), ["minji"]);
  assert.deepEqual(names(audienceNames(state)), ["joon", "sora"]);
  assert.equal(audienceCount(state), 3, "the dropped connection is gone, the new one is in");
  assert.equal(state.audience.people.size, 3);
});

test("a resume that is not recovered starts the chat over from the welcome's history", () => {
  const before = upTo(guest, received((f) => f.type === "welcome" && f.recovered)).state;
  const { state, room } = upTo(guest, received((f) => f.type === "welcome" && f.resumed && !f.recovered));
  const lines = texts(state);
  assert.equal(lines[0], "Reconnected after a long gap: showing the latest messages.");
  assert.deepEqual(lines.slice(1).filter((t) => !t.includes("speak") && !t.includes("voice")),
    texts(before).filter((t) => !t.includes("speak") && !t.includes("voice")));
  assert.equal(new Set(state.chat.map((line) => line.id)).size, state.chat.length);
  const welcome = guest.filter(received((f) => f.type === "welcome")).at(-1).receive;
  assert.equal(room.lastId, welcome.position, "positions count from the welcome again");
});

test("a live page takes the welcome's cue sheet, stage and hands as they are", () => {
  const { state } = upTo(guest, received((f) => f.type === "welcome" && f.recovered));
  const welcome = guest.find(received((f) => f.type === "welcome" && f.recovered)).receive;
  const stale = questionSaved(state, { ...questionText(state, FIRST), id: 999, text: "deleted while away" });
  const again = applyWelcome({ ...stale, hands: new Set([7]) }, welcome, { fresh: false, recovered: true });
  assert.equal(questionText(again, "deleted while away"), undefined);
  assert.deepEqual([...again.hands], welcome.hands);
  assert.deepEqual(texts(again), texts(state), "recovered: the chat stays");
});

test("replayed history adds to the chat only: the welcome's room is newer", () => {
  const { state } = upTo(guest, received((f) => f.type === "welcome" && f.recovered));
  const join = guest.find(received((f) => f.type === "audience")).receive;
  const hand = guest.find(received((f) => f.type === "hand_raised")).receive;
  const pin = guest.find(received((f) => f.action === "pin")).receive;
  for (const event of [join, hand, pin]) {
    assert.equal(applyEvent(state, event, { replay: true }), state, event.type);
  }
  const raised = upTo(guest, received((f) => f.type === "hand_raised")).state;
  const granted = applyEvent(raised, guest.find(received((f) => f.type === "voice_granted")).receive, { replay: true });
  assert.equal(granted.speakers, raised.speakers);
  assert.equal(granted.hands, raised.hands);
  assert.equal(texts(granted).at(-1), "You can speak now.");
});

test("a note for an event is made once", () => {
  const { state } = upTo(guest, received((f) => f.type === "voice_granted"));
  const event = guest.find(received((f) => f.type === "voice_granted")).receive;
  assert.equal(applyEvent(state, event, { replay: true }).chat.length, state.chat.length);
});

test("events after a not-recovered resume still show", () => {
  const { state } = upTo(guest, received((f) => f.type === "chat" && f.text === "back again"));
  assert.equal(texts(state).at(-1), "back again");
});

test("the end: a note once, the ended status, then the final cue sheet", () => {
  const ended = upTo(guest, received((f) => f.type === "session_ended")).state;
  assert.equal(ended.session.status, "ended");
  assert.equal(texts(ended).filter((t) => t === "The session has ended.").length, 1);
  const { state, room } = replay(guest);
  const final = guest.at(-1).answer.items;
  assert.deepEqual([...state.questions.values()], final);
  assert.equal(state.pinned, final.find((q) => q.pinned).id);
  assert.equal(room.pending.size, 1, "the refused line is still there to retry");
});

test("the host's page sees the whole room", () => {
  const { state } = replay(host);
  assert.equal(isHost(state), true);
  assert.equal(myRole(state), "host");
  assert.equal(state.session.status, "ended");
  assert.deepEqual(texts(state).filter((t) => t !== undefined),
    ["안녕하세요 👋", "Welcome, everyone!", "Joon can speak now.", "Joon’s voice was turned off.", "while you were away",
      "back again", "The session has ended."]);
  assert.deepEqual(names(people(state)), ["minji"]);
  assert.deepEqual(names(audienceNames(state)), ["joon"]);
  assert.equal(audienceCount(state), 2, "sora has gone");
});

test("an event seen already is dropped, however often it comes", () => {
  const twice = guest.flatMap((step) => (step.receive && step.receive.id ? [step, step] : [step]));
  assert.equal(plain(replay(twice).state), plain(replay(guest).state));
});

test(`the chat keeps the last ${CHAT_KEEP} lines`, () => {
  const chat = guest.find(received((f) => f.type === "chat")).receive;
  let state = initialState({ id: 99, username: "x", display_name: "X" }, guest[1].answer.session);
  for (let i = 1; i <= CHAT_KEEP + 20; i += 1) {
    state = applyEvent(state, { ...chat, id: `${i}-0`, text: `line ${i}` }, { replay: false });
  }
  assert.equal(state.chat.length, CHAT_KEEP);
  assert.equal(state.chat[0].text, "line 21");
  assert.equal(state.chat.at(-1).text, `line ${CHAT_KEEP + 20}`);
});
