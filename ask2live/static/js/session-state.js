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
    presence: new Map(), // conn → {user, role, conn}: one entry per open connection
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

// Everyone in the room once (a user with two tabs has two connections): the host, then
// speakers, then raised hands, then the rest, each by name.
export function people(state) {
  const byUser = new Map();
  for (const entry of state.presence.values()) {
    if (!entry.user || !entry.user.display_name) continue;
    byUser.set(entry.user.id, entry.user);
  }
  const rank = (u) => (u.id === state.session.host.id ? 0 : state.speakers.has(u.id) ? 1 : state.hands.has(u.id) ? 2 : 3);
  return [...byUser.values()].sort((a, b) => rank(a) - rank(b) || a.display_name.localeCompare(b.display_name));
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
  let questions = state.questions;
  if (state.session.status === "live") {
    // The snapshot at join time is the truth for the live cue sheet.
    questions = new Map(frame.questions.map((q) => [q.id, q]));
  } else if (fresh) {
    // Before the start the REST list (all of it, not just the welcome's top 50) is the
    // truth; the welcome's questions go on top of what it has loaded so far.
    questions = new Map(questions);
    for (const q of frame.questions) questions.set(q.id, q);
  }
  let next = {
    ...state,
    voiceConfigured: Boolean(frame.voice && frame.voice.configured),
    presence: new Map(frame.presence.map((p) => [p.conn, p])),
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
// the welcome, whose presence, hands, speakers, cue sheet and session are newer than any of
// them: replayed events add to the chat only.
export function applyEvent(state, event, { replay = false } = {}) {
  switch (event.type) {
    case "chat": {
      const chat = [...state.chat, event];
      return { ...state, chat: chat.length > CHAT_KEEP ? chat.slice(chat.length - CHAT_KEEP) : chat };
    }
    case "message_deleted":
      return { ...state, chat: state.chat.filter((line) => line.id !== event.message_id) };
    case "join":
      if (replay) return state;
      return { ...state, presence: new Map(state.presence).set(event.conn, { user: event.user, role: event.role, conn: event.conn }) };
    case "leave": {
      if (replay) return state;
      const presence = new Map(state.presence);
      presence.delete(event.conn);
      return { ...state, presence };
    }
    case "hand_raised":
    case "hand_lowered": {
      if (replay) return state;
      const hands = new Set(state.hands);
      if (event.type === "hand_raised") hands.add(event.user.id);
      else hands.delete(event.user.id);
      return { ...state, hands };
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
