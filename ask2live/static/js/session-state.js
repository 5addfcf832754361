// The session page's state, and the pure functions that change it.
//
// Each change takes a state and what happened (a room frame, a REST answer) and returns the
// next state; the one it was given is left as it was, and a part that did not change is the
// same object in both, so the page re-renders only the parts whose object is new. No DOM, no
// timers, no network: session.js renders the state and does the rest, and tests/js/ runs
// these functions in Node on frames recorded from a real server.

// Chat lines kept in the page; older ones go (the server keeps them all).
export const CHAT_KEEP = 500;

// The state of one session's page for the signed-in user ``me``, from the session as
// GET /api/sessions/{id} showed it.
export function initialState(me, session) {
  return mergeSession({
    me,
    session: {},
    // The pinned question's id: moved by question events, so kept apart from the session.
    pinned: null,
    questions: new Map(), // id → question, with this user's "mine" and "voted"
    // The stage: conn → {user, role, conn} of the host, speakers and raised hands (from the
    // welcome's stage and join/leave events; a hand raised by someone whose connection we
    // have not been told of is kept under "hand:<user id>").
    stage: new Map(),
    // Everyone in the room (stage included), connections counted: ``people`` is conn →
    // {user, conn} of those we know by name (the welcome's first page and the `audience`
    // events that name who came and went); ``complete``: that is all of them.
    audience: { count: 0, people: new Map(), complete: true },
    audienceList: null, // the host's list of the room, page by page: {items, next, count}
    speakers: new Set(), // ids of users granted voice (never the host: the host always has it)
    hands: new Set(), // ids of users with a raised hand
    chat: [], // confirmed chat lines and room notes, in order
    myAsks: new Set(), // client_msg_ids of questions asked over the socket, until they echo
    voiceConfigured: null, // null until the welcome says
    notes: 0, // notes made without an event, to number their ids
  }, session);
}

// ------------------------------------------------------------------ reading the state

export function layoutOf(status) {
  return status === "live" ? "live" : status === "scheduled" ? "scheduled" : "ended";
}

// Questions can be asked and voted on (and the ask form shows) while scheduled or live.
export function isOpen(state) {
  return state.session.status === "scheduled" || state.session.status === "live";
}

export function isHost(state) {
  return state.session.host.id === state.me.id;
}

export function roleOf(state, user) {
  if (user.id === state.session.host.id) return "host";
  return state.speakers.has(user.id) ? "speaker" : "listener";
}

export function myRole(state) {
  return roleOf(state, state.me);
}

function rankOf(state, user) {
  return user.id === state.session.host.id ? 0 : state.speakers.has(user.id) ? 1 : state.hands.has(user.id) ? 2 : 3;
}

// Everyone we know by name to be in the room, once each (a user with two tabs has two
// connections).
function present(state) {
  const byUser = new Map();
  for (const entries of [state.stage.values(), state.audience.people.values()]) {
    for (const entry of entries) {
      if (entry.user && entry.user.display_name && !byUser.has(entry.user.id)) byUser.set(entry.user.id, entry.user);
    }
  }
  return byUser;
}

const byRankAndName = (state) => (a, b) => rankOf(state, a) - rankOf(state, b) || a.display_name.localeCompare(b.display_name);

// The stage, each person once: the host, then speakers, then raised hands, each by name.
export function people(state) {
  return [...present(state).values()].filter((u) => rankOf(state, u) < 3).sort(byRankAndName(state));
}

// The rest of the room by name, when we know all of them (a small room), else null.
export function audienceNames(state) {
  if (!state.audience.complete) return null;
  return [...present(state).values()].filter((u) => rankOf(state, u) === 3).sort(byRankAndName(state));
}

// How many connections are in the room (the stage's included).
export function audienceCount(state) {
  return state.audience.count;
}

// The questions to show, in the order ``sort`` ("top" or "recent") asks for: hidden ones
// only to the host. "top" is the cue sheet's order: pinned first, then unanswered by votes,
// then answered, oldest first within a tie.
export function sortedQuestions(state, sort) {
  const host = isHost(state);
  const items = [...state.questions.values()].filter((q) => host || !q.hidden);
  if (sort === "recent") {
    return items.sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id - a.id);
  }
  const pinned = state.pinned;
  return items.sort((a, b) =>
    (b.id === pinned) - (a.id === pinned) || a.answered - b.answered || b.votes - a.votes ||
    a.created_at.localeCompare(b.created_at) || a.id - b.id);
}

export function pinnedQuestion(state) {
  return state.questions.get(state.pinned);
}

// A chat line's key in the page: an own line is keyed by its client_msg_id, so that the
// "Sending…" line and its echo are one line that changes state.
export function chatLineKey(state, line) {
  if (line.type === "chat" && line.client_msg_id && line.user && line.user.id === state.me.id) return "c:" + line.client_msg_id;
  return "e:" + line.id;
}

// What the chat shows: {key, line, status} for the confirmed lines and notes, then own
// lines not yet echoed (``pending``: the room's client_msg_id → {text, status, at}).
export function chatLines(state, pending) {
  const lines = state.chat.map((line) => ({ key: chatLineKey(state, line), line, status: "confirmed" }));
  for (const [id, line] of pending || []) {
    lines.push({ key: "c:" + id, line: { type: "chat", client_msg_id: id, text: line.text, ts: line.at, user: null }, status: line.status });
  }
  return lines;
}

// ------------------------------------------------------------------ REST answers

// A newer copy of the session (a REST answer or a session event), merged over ours.
export function mergeSession(state, session) {
  const { pinned_question_id: pinned, ...rest } = session;
  return { ...state, session: { ...state.session, ...rest }, pinned: pinned === undefined ? state.pinned : pinned ?? null };
}

// A page of GET /api/sessions/{id}/audience (the host's "Show everyone"): the first page
// starts the list, a ``more`` page (from a next_cursor) goes after what was loaded.
export function audienceListed(state, answer, { more = false } = {}) {
  const items = more && state.audienceList ? [...state.audienceList.items, ...answer.items] : answer.items;
  return { ...state, audienceList: { items, next: answer.next_cursor ?? null, count: answer.count } };
}

// The host closed the list.
export function audienceListClosed(state) {
  return { ...state, audienceList: null };
}

// The cue sheet as GET /api/sessions/{id}/questions listed it: it replaces ours.
export function questionsLoaded(state, items) {
  return { ...state, questions: new Map(items.map((q) => [q.id, q])), pinned: items.find((q) => q.pinned)?.id ?? null };
}

// One question as a REST answer showed it to this user (asked, edited, voted, moderated).
export function questionSaved(state, question) {
  return { ...state, questions: new Map(state.questions).set(question.id, question) };
}

export function questionRemoved(state, questionId) {
  const questions = new Map(state.questions);
  questions.delete(questionId);
  return { ...state, questions };
}

// A question sent over the socket under ``clientMsgId``: its echo will be "mine".
export function askedOverSocket(state, clientMsgId) {
  return { ...state, myAsks: new Set(state.myAsks).add(clientMsgId) };
}

export function voiceUnavailable(state) {
  return { ...state, voiceConfigured: false };
}

// ------------------------------------------------------------------ the room's frames

// A line of the page's own in the chat ("… can speak now"). One made for an event has the
// event's id and time, and is made once; ``now`` is the time of one made for no event.
export function addNote(state, text, event = null, now = 0) {
  if (event && state.chat.some((line) => line.id === event.id)) return state;
  const notes = event ? state.notes : state.notes + 1;
  const note = { type: "note", id: event ? event.id : `note-${notes}`, text, ts: event ? event.ts : now };
  return { ...state, notes, chat: [...state.chat, note] };
}

// The welcome (the room's first frame on every connection). ``fresh``: the page's first;
// ``recovered``: its history is every event since the page's last one (always true when
// fresh). The welcome's history follows as events, with replay set.
export function applyWelcome(state, frame, { fresh, recovered, now = 0 }) {
  // The welcome's questions are the public form (everyone's, without "mine" and "voted",
  // hidden ones left out): what we know of "mine" and "voted" (the REST cue sheet, our own
  // events) is kept.
  const known = (q) => {
    const old = state.questions.get(q.id);
    return { mine: false, voted: false, ...(old ? { mine: old.mine, voted: old.voted } : {}), ...q };
  };
  let questions = state.questions;
  if (state.session.status === "live") {
    // The snapshot at join time is the truth for the live cue sheet; the host keeps the
    // hidden ones it knows of (the page loads the REST cue sheet again after a reconnect).
    questions = new Map(frame.questions.map((q) => [q.id, known(q)]));
    if (isHost(state)) {
      for (const q of state.questions.values()) if (q.hidden && !questions.has(q.id)) questions.set(q.id, q);
    }
  } else if (fresh) {
    // Before the start the REST list (all of it, not just the welcome's top 50) is the
    // truth; the welcome's questions go on top of what it has loaded so far.
    questions = new Map(questions);
    for (const q of frame.questions) questions.set(q.id, known(q));
  }
  const audience = frame.audience || { count: 0, people: [], next: null };
  let next = {
    ...state,
    voiceConfigured: Boolean(frame.voice && frame.voice.configured),
    stage: new Map(frame.stage.map((p) => [p.conn, p])),
    audience: {
      count: audience.count,
      people: new Map(audience.people.map((p) => [p.conn, { user: p.user, conn: p.conn }])),
      complete: audience.next === null || audience.next === undefined,
    },
    speakers: new Set(frame.speakers),
    hands: new Set(frame.hands),
    questions,
    // Not recovered: the server cannot vouch for the gap; the history replaces the chat.
    chat: fresh || !recovered ? [] : state.chat,
  };
  if (!recovered) next = addNote(next, "Reconnected after a long gap: showing the latest messages.", null, now);
  return mergeSession(next, frame.session);
}

// One event, live or (``replay``) from a welcome's history. History and catch-up come with
// the welcome, whose stage, audience, hands, speakers, cue sheet and session are newer than
// any of them: replayed events add to the chat only.
export function applyEvent(state, event, { replay = false } = {}) {
  switch (event.type) {
    case "chat": {
      const chat = [...state.chat, event];
      return { ...state, chat: chat.length > CHAT_KEEP ? chat.slice(chat.length - CHAT_KEEP) : chat };
    }
    case "message_deleted":
      return { ...state, chat: state.chat.filter((line) => line.id !== event.message_id) };
    case "join": {
      // Someone on the stage (a listener comes in an `audience` event). The count moves
      // with it until the next `audience` event says it again.
      if (replay) return state;
      const known = state.stage.has(event.conn);
      const stage = new Map(state.stage).set(event.conn, { user: event.user, role: event.role, conn: event.conn });
      stage.delete("hand:" + event.user.id);
      const audience = known ? state.audience : { ...state.audience, count: state.audience.count + 1 };
      return { ...state, stage, audience };
    }
    case "leave": {
      if (replay) return state;
      const stage = new Map(state.stage);
      const known = stage.delete(event.conn);
      stage.delete("hand:" + event.user.id);
      let audience = state.audience;
      if (known || audience.people.has(event.conn)) {
        const people = new Map(audience.people);
        people.delete(event.conn);
        audience = { ...audience, people, count: Math.max(0, audience.count - 1) };
      }
      return { ...state, stage, audience };
    }
    case "audience": {
      if (replay) return state;
      let { people, complete } = state.audience;
      let stage = state.stage;
      if (event.named) {
        people = new Map(people);
        for (const p of event.joined) people.set(p.conn, { user: p.user, conn: p.conn });
        for (const p of event.left) {
          people.delete(p.conn);
          if (stage.has(p.conn) || stage.has("hand:" + p.user.id)) {
            if (stage === state.stage) stage = new Map(stage);
            stage.delete(p.conn);
            stage.delete("hand:" + p.user.id);
          }
        }
      } else {
        // Count only: who is here by name is no longer known (the host can list them).
        complete = false;
      }
      return { ...state, stage, audience: { count: event.count, people, complete } };
    }
    case "hand_raised":
    case "hand_lowered": {
      if (replay) return state;
      const hands = new Set(state.hands);
      let stage = state.stage;
      if (event.type === "hand_raised") {
        hands.add(event.user.id);
        const known = [...stage.values(), ...state.audience.people.values()].some((p) => p.user && p.user.id === event.user.id);
        if (!known) stage = new Map(stage).set("hand:" + event.user.id, { user: event.user, role: "listener", conn: null });
      } else {
        hands.delete(event.user.id);
      }
      return { ...state, hands, stage };
    }
    case "voice_granted":
    case "voice_revoked": {
      const granted = event.type === "voice_granted";
      let next = state;
      if (!replay) {
        const speakers = new Set(state.speakers);
        const hands = new Set(state.hands);
        if (granted) {
          speakers.add(event.user.id);
          hands.delete(event.user.id);
        } else {
          speakers.delete(event.user.id);
        }
        next = { ...state, speakers, hands };
      }
      const you = event.user.id === state.me.id;
      const text = granted
        ? `${you ? "You" : event.user.display_name} can speak now.`
        : `${you ? "Your" : event.user.display_name + "’s"} voice was turned off.`;
      return addNote(next, text, event);
    }
    case "question":
      return replay ? state : upsertQuestion(state, event.question, event);
    case "question_updated":
      return replay ? state : setPinned(upsertQuestion(state, event.question, event), event.pinned_question_id);
    case "session_started":
    case "session_ended": {
      const next = event.type === "session_ended" ? addNote(state, "The session has ended.", event) : state;
      if (replay) return next;
      // The event's session is built for the host: its "reserved" is not ours.
      const { reserved, ...session } = event.session;
      return mergeSession(next, session);
    }
    default:
      return state;
  }
}

// A question from an event: the same for everyone, without "mine" and "voted", which are
// worked out here and kept from what we had.
function upsertQuestion(state, q, event) {
  const old = state.questions.get(q.id);
  if (q.deleted) {
    // Its author deleted it (through the API): it leaves the list.
    return old ? questionRemoved(state, q.id) : state;
  }
  if (q.hidden && q.text === undefined) {
    // Hidden: the room is told only the id. The host keeps seeing it, marked hidden; the
    // others stop seeing it (it is kept, so that "mine" and "voted" survive a show).
    if (!old) return state;
    return { ...state, questions: new Map(state.questions).set(q.id, { ...old, hidden: true, pinned: false }) };
  }
  const actor = event.user;
  const byMe = Boolean(actor && actor.id === state.me.id);
  const merged = { mine: false, voted: false, ...old, ...q };
  let myAsks = state.myAsks;
  if (!old) {
    const askedHere = myAsks.has(event.client_msg_id);
    if (askedHere) {
      myAsks = new Set(myAsks);
      myAsks.delete(event.client_msg_id);
    }
    merged.mine = askedHere || byMe;
  }
  if (event.action === "vote" && byMe) merged.voted = true;
  if (event.action === "unvote" && byMe) merged.voted = false;
  return { ...state, myAsks, questions: new Map(state.questions).set(q.id, merged) };
}

function setPinned(state, pinnedId) {
  const pinned = pinnedId ?? null;
  let questions = state.questions;
  for (const q of state.questions.values()) {
    if (q.pinned === (q.id === pinned)) continue;
    if (questions === state.questions) questions = new Map(state.questions);
    questions.set(q.id, { ...q, pinned: q.id === pinned });
  }
  return { ...state, pinned, questions };
}
