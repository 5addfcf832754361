// The live room's WebSocket: connect, reconnect with back-off, resume from the last event
// id seen, and hand every event to the page exactly once, in order.
//
// Events carry ids "<ms>-<seq>" that only grow; an event at or before the last id seen is
// a repeat (a resume overlapping what already arrived) and is dropped here.

import { randomId } from "./dom.js";

export function parseId(id) {
  const [ms, seq] = String(id).split("-");
  return [Number(ms), Number(seq)];
}

export function after(a, b) {
  if (!b) return true;
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  return am > bm || (am === bm && as > bs);
}

// Reconnecting: attempt n waits a random time between half and all of
// BACKOFF_FIRST_MS * 2^(n-1), capped at BACKOFF_MAX_MS, so that clients dropped together do
// not come back together; the first waits at most FIRST_RETRY_MAX_MS, as a drop is most
// often a blip. The README states this schedule (a test holds it to it).
export const BACKOFF_FIRST_MS = 400;
export const BACKOFF_MAX_MS = 10000;
export const FIRST_RETRY_MAX_MS = 250;

export function reconnectDelay(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (attempt - 1));
  const delay = base / 2 + random() * (base / 2);
  return attempt === 1 ? Math.min(delay, FIRST_RETRY_MAX_MS) : delay;
}

export class Room {
  // handlers: welcome(frame, {fresh, recovered}), event(frame, {replay}), frame(frame) for
  // frames without an id (error, voice_token), state(state), chat(pending list changed)
  constructor(sessionId, handlers) {
    this.sessionId = sessionId;
    this.handlers = handlers;
    this.lastId = null;
    this.socket = null;
    this.state = "connecting";
    this.attempt = 0;
    this.stopped = false;
    this.timer = 0;
    this.welcomed = false;
    // Own chat lines not yet echoed: client_msg_id → {text, status: "pending" | "failed"}.
    this.pending = new Map();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const since = this.lastId ? `?since=${encodeURIComponent(this.lastId)}` : "";
    return `${scheme}//${location.host}/ws/sessions/${this.sessionId}${since}`;
  }

  connect() {
    if (this.stopped) return;
    this.setState(this.welcomed ? "reconnecting" : "connecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      if (socket === this.socket) this.receive(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.dropped(event);
    });
  }

  dropped(event) {
    if (this.stopped) return;
    this.attempt += 1;
    this.setState(this.welcomed ? "reconnecting" : "connecting", { code: event.code, attempt: this.attempt });
    this.timer = setTimeout(() => this.connect(), reconnectDelay(this.attempt));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "left");
    }
    this.setState("closed");
  }

  setState(state, detail = {}) {
    this.state = state;
    this.handlers.state?.(state, detail);
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      return;
    }
    if (frame.type === "welcome") return this.welcome(frame);
    if (frame.id) return this.event(frame, false);
    if (frame.type === "error" && frame.client_msg_id && this.pending.has(frame.client_msg_id)) {
      this.pending.get(frame.client_msg_id).status = "failed";
      this.handlers.chat?.();
    }
    this.handlers.frame?.(frame);
  }

  welcome(frame) {
    const fresh = !this.welcomed;
    const recovered = fresh || frame.recovered;
    this.welcomed = true;
    this.attempt = 0;
    // Not recovered: the server cannot vouch for the gap, and history is just the room's
    // last events (whose ids may even be below ours, after a Redis rollback). Start over
    // from the welcome: the page clears its chat, and ids count from here.
    if (!recovered) this.lastId = null;
    this.handlers.welcome(frame, { fresh, recovered });
    for (const event of frame.history) this.event(event, true);
    if (frame.position && after(frame.position, this.lastId)) this.lastId = frame.position;
    this.setState("open");
    // Own lines the server never took (their echo is in neither the catch-up nor the
    // history): send them again, under the same client_msg_id.
    for (const [id, line] of this.pending) {
      if (line.status === "pending") this.sendFrame({ type: "chat", text: line.text, client_msg_id: id });
    }
  }

  event(frame, replay) {
    if (!after(frame.id, this.lastId)) return; // seen already
    this.lastId = frame.id;
    if (frame.type === "chat" && frame.client_msg_id && this.pending.has(frame.client_msg_id)) {
      this.pending.delete(frame.client_msg_id);
      this.handlers.chat?.();
    }
    this.handlers.event(frame, { replay });
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN && this.state === "open";
  }

  // A command frame; false if there is no open connection to take it.
  sendFrame(frame) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  command(type, fields = {}) {
    const clientMsgId = randomId();
    return this.sendFrame({ type, client_msg_id: clientMsgId, ...fields }) ? clientMsgId : null;
  }

  // A chat line shows at once as pending; the echo confirms it (and is the only copy kept).
  chat(text) {
    const id = randomId();
    this.pending.set(id, { text, status: "pending", at: Date.now() });
    this.sendFrame({ type: "chat", text, client_msg_id: id });
    this.handlers.chat?.();
    return id;
  }

  retry(id) {
    const line = this.pending.get(id);
    if (!line) return;
    line.status = "pending";
    this.sendFrame({ type: "chat", text: line.text, client_msg_id: id });
    this.handlers.chat?.();
  }

  discard(id) {
    this.pending.delete(id);
    this.handlers.chat?.();
  }
}
