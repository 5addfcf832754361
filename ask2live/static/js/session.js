// One session: the page before it starts (pre-questions, the host's cue sheet, "Go live"),
// the live room (chat, questions, people, voice), and the record once it has ended.
//
// What the page knows is one state value (session-state.js, pure functions); this view
// feeds it the room's frames and the REST answers, renders the parts that changed, and does
// what a state cannot: navigation, toasts, the room socket, voice.

import { ApiError, api, get, post } from "./api.js";
import { h, replaceChildren, formatClock, formatRelative, timeElement, initials, hue, toast } from "./dom.js";
import { maxLength, pageMax } from "./limits.js";
import { Room } from "./room.js";
import {
  applyEvent, applyWelcome, askedOverSocket, audienceCount, audienceListClosed, audienceListed, audienceNames,
  chatLines, initialState, isHost, isOpen, layoutOf, mergeSession, myRole, people, pinnedQuestion, questionRemoved, questionSaved, questionsLoaded, roleOf, sortedQuestions,
  voiceUnavailable,
} from "./session-state.js";
import { Voice } from "./voice.js";

const PRE_LIVE_POLL_MS = 10000;
const ROLE_LABEL = { host: "Host", speaker: "Speaker", listener: "Listener" };

const ERROR_TEXT = {
  rate_limited: "You are sending too fast; wait a moment.",
  not_live: "The session is not live yet.",
  already_voted: "You have voted for that question already.",
};

export class SessionView {
  constructor(root, sessionId, me, { navigate, setTitle }) {
    this.root = root;
    this.id = sessionId;
    this.me = me;
    this.navigate = navigate;
    this.setTitle = setTitle;
    this.state = null; // session-state.js; null until the session has loaded
    this.layout = null; // what is rendered: "scheduled" | "live" | "ended"
    this.sort = "top";
    this.editing = null; // question id being edited
    this.room = null;
    this.voice = null;
    this.pollTimer = 0;
    this.destroyed = false;
    this.unseen = 0;
    this.el = {};
  }

  get session() {
    return this.state && this.state.session;
  }

  get isHost() {
    return Boolean(this.state) && isHost(this.state);
  }

  // The next state: render what it changed. A new status is a new layout (and maybe a new
  // route); otherwise each part is rendered again only if its object is new.
  commit(next) {
    const before = this.state;
    this.state = next;
    if (next.session.status !== before.session.status) return this.statusChanged();
    if (next.session !== before.session) this.renderHeader();
    if (next.questions !== before.questions || next.pinned !== before.pinned) this.renderQuestions();
    if (next.stage !== before.stage || next.audience !== before.audience || next.audienceList !== before.audienceList ||
      next.hands !== before.hands || next.speakers !== before.speakers) {
      this.renderPeople();
    }
    if (next.speakers !== before.speakers || next.voiceConfigured !== before.voiceConfigured) this.renderVoice();
    if (next.chat !== before.chat) this.renderChat();
    return undefined;
  }

  // ---------------------------------------------------------------- lifecycle

  async start(liveRoute) {
    this.root.className = "session-page";
    this.root.append(h("h1", { class: "loading" }, "Loading…"));
    try {
      this.state = initialState(this.me, (await get(`/api/sessions/${this.id}`)).session);
    } catch (error) {
      return this.fail(error);
    }
    if (this.destroyed) return;
    this.render();
    if (this.session.status === "scheduled" || this.session.status === "live") {
      this.room = new Room(this.id, {
        welcome: (frame, info) => this.onWelcome(frame, info),
        event: (frame, info) => this.onEvent(frame, info),
        frame: (frame) => this.onFrame(frame),
        state: (state, detail) => this.onState(state, detail),
        chat: () => this.renderChat(),
      });
      window.ask2live.room = this.room;
      window.ask2live.view = this;
      this.room.connect();
    }
    // Live too: the welcome's questions are everyone's, without "mine" and "voted".
    this.loadQuestions();
    if (this.session.status === "scheduled") {
      this.pollTimer = setInterval(() => this.loadQuestions(), PRE_LIVE_POLL_MS);
    }
    this.route(liveRoute);
  }

  route(liveRoute) {
    if (!this.session) return;
    const live = this.session.status === "live";
    if (liveRoute !== live) this.navigate(`/sessions/${this.id}${live ? "/live" : ""}`, { replace: true });
  }

  destroy() {
    this.destroyed = true;
    clearInterval(this.pollTimer);
    this.room?.stop();
    this.voice?.leave();
    if (window.ask2live.view === this) window.ask2live.view = null;
  }

  fail(error) {
    if (error instanceof ApiError && error.status === 401) return this.navigate(`/login?next=/sessions/${this.id}`);
    const missing = error instanceof ApiError && error.status === 404;
    this.setTitle(missing ? "Not found" : "Error");
    replaceChildren(this.root,
      h("h1", {}, missing ? "No such session" : "Something went wrong"),
      h("p", {}, missing ? "It may have been cancelled." : error.message),
      h("p", {}, h("a", { href: "#/" }, "Back to the sessions")));
  }

  async loadQuestions() {
    try {
      const page = await get(`/api/sessions/${this.id}/questions?sort=top${pageMax() ? `&limit=${pageMax()}` : ""}`);
      if (this.destroyed) return;
      this.commit(questionsLoaded(this.state, page.items));
    } catch (error) {
      if (error.status === 401) this.fail(error);
    }
  }

  setSession(session) {
    this.commit(mergeSession(this.state, session));
  }

  statusChanged() {
    this.render();
    if (this.session.status === "live") {
      clearInterval(this.pollTimer);
      this.navigate(`/sessions/${this.id}/live`, { replace: true });
    } else if (this.session.status === "ended") {
      clearInterval(this.pollTimer);
      this.room?.stop();
      this.voice?.leave();
      this.navigate(`/sessions/${this.id}`, { replace: true });
      this.loadQuestions();
    }
  }

  // ---------------------------------------------------------------- the room's frames

  onWelcome(frame, info) {
    const before = this.state;
    this.state = applyWelcome(before, frame, { ...info, now: Date.now() });
    // Frames that are not events (voice tokens) are not replayed: a grant or revoke
    // while away would be missed, so ask for a token that matches the role now.
    if (!info.fresh && this.voice && this.voice.state === "on") setTimeout(() => this.room?.command("voice_token"), 0);
    if (this.state.session.status !== before.session.status) this.statusChanged();
    else this.renderAll();
    // After a reconnect: the REST cue sheet has what the welcome does not (hidden questions
    // for the host, "mine" and "voted" of questions asked or voted on while away).
    if (!info.fresh && this.state.session.status === "live") this.loadQuestions();
  }

  onEvent(event, { replay }) {
    this.commit(applyEvent(this.state, event, { replay }));
    const granted = event.type === "voice_granted";
    if (!replay && (granted || event.type === "voice_revoked") && event.user.id === this.me.id) {
      toast(granted ? "The host gave you the floor: you can speak." : "The host turned your voice off.");
      if (granted && this.state.voiceConfigured && (!this.voice || this.voice.state !== "on")) {
        toast("Join voice to use your microphone.");
      }
    }
  }

  onFrame(frame) {
    if (frame.type === "voice_token") {
      this.voice?.token(frame);
    } else if (frame.type === "error") {
      if (frame.client_msg_id && this.room?.pending.has(frame.client_msg_id)) return; // shown on the line
      toast(ERROR_TEXT[frame.code] || frame.message, "error");
    }
  }

  onState(state, detail) {
    const pill = this.el.connection;
    if (pill) {
      pill.dataset.state = state;
      pill.textContent = { open: "Connected", connecting: "Connecting…", reconnecting: "Reconnecting…", closed: "Offline" }[state];
    }
    document.body.classList.toggle("is-reconnecting", state === "reconnecting");
    if (detail.attempt && detail.attempt % 3 === 0) {
      // Maybe the socket is refused: signed out (token expired) or the session is gone.
      get(`/api/sessions/${this.id}`).then((answer) => this.setSession(answer.session)).catch((error) => {
        if (error.status === 401 || error.status === 404) {
          this.room?.stop();
          this.fail(error);
        }
      });
    }
  }

  // ---------------------------------------------------------------- actions

  async act(label, work) {
    try {
      return await work();
    } catch (error) {
      if (error.status === 401) return this.fail(error);
      toast(`${label}: ${error.message}`, "error");
      return undefined;
    }
  }

  sendOrRest(type, fields, rest) {
    if (this.room && this.room.command(type, fields)) return;
    this.act("Could not do that", async () => {
      const answer = await rest();
      if (answer && answer.question) {
        this.commit(questionSaved(this.state, answer.question));
        if (type !== "vote" && type !== "unvote") await this.loadQuestions(); // the pin may have moved
      }
    });
  }

  vote(q) {
    const type = q.voted ? "unvote" : "vote";
    this.sendOrRest(type, { question_id: q.id }, () => api(q.voted ? "DELETE" : "POST", `/api/questions/${q.id}/vote`));
  }

  moderate(q, action, value) {
    this.sendOrRest(action, { question_id: q.id, value }, () => post(`/api/questions/${q.id}/${action}`, { value }));
  }

  ask(text, anonymous) {
    const id = this.room && this.room.command("question", { text, anonymous });
    if (id) {
      this.commit(askedOverSocket(this.state, id));
      return true;
    }
    return this.act("Your question was not sent", async () => {
      const answer = await post(`/api/sessions/${this.id}/questions`, { text, anonymous });
      this.commit(questionSaved(this.state, answer.question));
      return true;
    });
  }

  async saveEdit(q, text) {
    const answer = await this.act("Not saved", () => api("PATCH", `/api/questions/${q.id}`, { text }));
    if (answer) {
      this.editing = null;
      this.commit(questionSaved(this.state, answer.question));
    }
  }

  async remove(q) {
    if (!confirm("Delete your question?")) return;
    const done = await this.act("Not deleted", async () => {
      await api("DELETE", `/api/questions/${q.id}`);
      return true;
    });
    if (done) this.commit(questionRemoved(this.state, q.id));
  }

  goLive() {
    return this.act("Could not go live", async () => {
      const answer = await post(`/api/sessions/${this.id}/start`);
      this.setSession(answer.session);
    });
  }

  end() {
    if (!confirm("End the session for everyone?")) return;
    this.act("Could not end the session", async () => {
      const answer = await post(`/api/sessions/${this.id}/end`);
      this.setSession(answer.session);
    });
  }

  reserve() {
    const reserved = this.session.reserved;
    this.act(reserved ? "Could not give the seat back" : "Could not reserve", async () => {
      const answer = await api(reserved ? "DELETE" : "POST", `/api/sessions/${this.id}/reservation`);
      this.setSession(answer.session);
    });
  }

  hand(raise) {
    if (!this.room.command(raise ? "raise_hand" : "lower_hand")) toast("Not connected; try again in a moment.", "error");
  }

  setVoice(userId, grant) {
    if (!this.room.command(grant ? "grant_voice" : "revoke_voice", { user_id: userId })) {
      toast("Not connected; try again in a moment.", "error");
    }
  }

  async joinVoice() {
    if (!this.voice) {
      this.voice = new Voice({
        requestToken: () => this.room?.command("voice_token"),
        onChange: () => this.renderVoice(),
      });
      window.ask2live.voice = this.voice;
    }
    try {
      const token = await post(`/api/sessions/${this.id}/voice/token`);
      await this.voice.join(token);
      if (this.voice.state === "error") toast(`Voice: ${this.voice.error}`, "error");
    } catch (error) {
      if (error.code === "voice_not_configured") this.commit(voiceUnavailable(this.state));
      else toast(`Voice: ${error.message}`, "error");
    }
    this.renderVoice();
  }

  // ---------------------------------------------------------------- rendering

  render() {
    const status = this.session.status;
    this.layout = layoutOf(status);
    this.setTitle(this.session.title);
    this.el = {};
    const el = this.el;
    el.header = h("header", { class: "session-head" });
    el.questions = h("section", { class: "pane questions-pane", "aria-labelledby": "questions-heading" });
    el.people = h("section", { class: "pane people-pane", "aria-labelledby": "people-heading" });
    el.chat = h("section", { class: "pane chat-pane", "aria-labelledby": "chat-heading" });
    el.nowAnswering = h("section", { class: "now-answering", "aria-label": "Now answering", hidden: true });
    const keepFocus = document.activeElement;
    this.root.className = `session-page layout-${this.layout}`;
    if (this.layout === "live") {
      this.root.replaceChildren(el.header, el.nowAnswering, h("div", { class: "live-grid" }, el.people, el.chat, el.questions));
    } else if (this.layout === "scheduled") {
      this.root.replaceChildren(el.header, h("div", { class: "pre-grid" }, el.questions, el.people));
    } else {
      this.root.replaceChildren(el.header, h("div", { class: "pre-grid" }, el.questions, this.state.chat.length ? el.chat : null));
    }
    this.buildChat();
    this.renderAll();
    if (!this.root.contains(keepFocus)) this.root.querySelector("h1")?.focus({ preventScroll: true });
  }

  renderAll() {
    this.renderHeader();
    this.renderQuestions();
    this.renderPeople();
    this.renderChat();
  }

  renderHeader() {
    const s = this.session;
    const el = this.el;
    if (!el.header) return;
    const status = { scheduled: "Upcoming", live: "Live", ended: "Ended", cancelled: "Cancelled" }[s.status];
    el.connection = el.connection || h("span", { class: "connection", role: "status", "data-state": this.room?.state || "closed" },
      this.room?.state === "open" ? "Connected" : this.room ? "Connecting…" : "");
    const actions = [];
    if (s.status === "scheduled" && this.isHost) {
      actions.push(h("button", { type: "button", class: "primary go-live", onclick: () => this.goLive() }, "Go live"));
    }
    if (s.status === "scheduled" && !this.isHost) {
      actions.push(h("button", { type: "button", "aria-pressed": String(s.reserved), onclick: () => this.reserve() },
        s.reserved ? "Seat reserved ✓" : "Reserve a seat"));
    }
    if (s.status === "live" && this.isHost) {
      actions.push(h("button", { type: "button", class: "danger", onclick: () => this.end() }, "End session"));
    }
    if (s.status === "live") actions.push(el.voice = el.voice || h("div", { class: "voice-box" }));
    let when;
    if (s.status === "scheduled") when = ["Starts ", timeElement(s.starts_at), h("span", { class: "muted" }, ` (${formatRelative(s.starts_at)})`)];
    else if (s.status === "live") when = ["Started ", formatRelative(s.started_at)];
    else if (s.status === "ended") when = ["Ended ", timeElement(s.ended_at)];
    else when = ["Cancelled"];
    replaceChildren(el.header,
      h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← Sessions")),
      h("div", { class: "head-row" },
        h("div", { class: "head-text" },
          h("h1", { tabindex: "-1" }, s.title),
          h("p", { class: "meta" },
            h("span", { class: `badge badge-${s.status}` }, status),
            h("span", {}, "Hosted by ", h("strong", {}, s.host.display_name), this.isHost ? " (you)" : ""),
            h("span", {}, when),
            s.status === "scheduled" ? h("span", {}, `${s.reservations} seat${s.reservations === 1 ? "" : "s"} reserved`) : null,
            this.room && s.status !== "ended" ? el.connection : null)),
        h("div", { class: "head-actions" }, actions)),
      s.description && this.layout !== "live" ? h("p", { class: "description" }, s.description) : null);
    this.renderVoice();
  }

  renderVoice() {
    const box = this.el.voice;
    if (!box || this.session.status !== "live") return;
    const v = this.voice;
    const publisher = myRole(this.state) !== "listener";
    if (this.state.voiceConfigured === false) {
      replaceChildren(box, h("span", { class: "voice-status voice-off", role: "note" }, "🔇 Voice not configured on this server"));
      return;
    }
    if (this.state.voiceConfigured === null) {
      replaceChildren(box);
      return;
    }
    if (!v || v.state === "off" || v.state === "error") {
      replaceChildren(box, h("button", { type: "button", class: "voice-join", "data-key": "voice-join", onclick: () => this.joinVoice() },
        publisher ? "🎙 Join voice" : "🎧 Listen in"));
      return;
    }
    if (v.state === "joining") {
      replaceChildren(box, h("span", { class: "voice-status" }, "Joining voice…"));
      return;
    }
    replaceChildren(box,
      h("span", { class: "voice-status voice-on" }, v.role === "publisher" ? (v.muted ? "Mic muted" : "Mic on") : "Listening"),
      v.role === "publisher" ? h("button", { type: "button", "aria-pressed": String(v.muted), "data-key": "voice-mute",
        onclick: () => v.setMuted(!v.muted) }, v.muted ? "Unmute" : "Mute") : null,
      h("button", { type: "button", "data-key": "voice-leave", onclick: () => v.leave() }, "Leave voice"));
    this.renderPeople();
  }

  // -- questions

  renderQuestions() {
    const pane = this.el.questions;
    if (!pane) return;
    const open = isOpen(this.state);
    const cue = this.isHost;
    if (!this.el.questionList) {
      this.el.questionList = h("ol", { class: "question-list", "aria-labelledby": "questions-heading" });
      const sortButtons = ["top", "recent"].map((sort) => h("button", {
        type: "button", class: "seg", "data-sort": sort, "aria-pressed": String(this.sort === sort),
        onclick: () => {
          this.sort = sort;
          for (const b of pane.querySelectorAll(".seg")) b.setAttribute("aria-pressed", String(b.dataset.sort === sort));
          this.renderQuestions();
        },
      }, sort === "top" ? "Top" : "Recent"));
      replaceChildren(pane,
        h("div", { class: "pane-head" },
          h("h2", { id: "questions-heading" }, cue ? "Cue sheet" : "Questions", " ", this.el.questionCount = h("span", { class: "count" })),
          h("div", { class: "segmented", role: "group", "aria-label": "Sort questions" }, sortButtons)),
        open && !cue ? this.askForm() : null,
        this.el.questionList);
    }
    const items = sortedQuestions(this.state, this.sort);
    this.el.questionCount.textContent = `(${items.length})`;
    replaceChildren(this.el.questionList, items.length
      ? items.map((q) => this.questionItem(q, open))
      : h("li", { class: "empty" }, open ? (cue ? "No questions yet. They will show up here as people ask." : "No questions yet. Be the first to ask!") : "No questions."));
    this.renderNowAnswering();
  }

  askForm() {
    const text = h("textarea", { id: "ask-text", name: "text", rows: 2, maxlength: maxLength("question"), required: true,
      placeholder: "What would you like to ask?" });
    const anonymous = h("input", { id: "ask-anonymous", type: "checkbox", name: "anonymous" });
    const form = h("form", { class: "ask-form" },
      h("label", { for: "ask-text", class: "visually-hidden" }, "Your question"),
      text,
      h("div", { class: "ask-row" },
        h("label", { class: "check" }, anonymous, " Ask anonymously"),
        h("button", { type: "submit", class: "primary" }, "Ask")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = text.value.trim();
      if (!value) return text.focus();
      if (await this.ask(value, anonymous.checked)) {
        text.value = "";
        anonymous.checked = false;
      }
    });
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
    return form;
  }

  questionItem(q, open) {
    const host = this.isHost;
    const author = q.anonymous ? "Anonymous" : q.author ? q.author.display_name : "Someone";
    const badges = [];
    if (q.pinned) badges.push(h("span", { class: "badge badge-pinned" }, "Now answering"));
    if (q.answered) badges.push(h("span", { class: "badge badge-answered" }, "Answered"));
    if (q.hidden) badges.push(h("span", { class: "badge badge-hidden" }, "Hidden"));
    const actions = [];
    const key = (name) => `q${q.id}-${name}`;
    if (open && q.mine && !q.answered && this.session.status === "scheduled") {
      actions.push(h("button", { type: "button", class: "small", "data-key": key("edit"),
        onclick: () => { this.editing = q.id; this.renderQuestions(); this.el.questionList.querySelector(".edit-form textarea")?.focus(); } }, "Edit"));
      actions.push(h("button", { type: "button", class: "small", "data-key": key("delete"), onclick: () => this.remove(q) }, "Delete"));
    }
    if (host && open) {
      actions.push(h("button", { type: "button", class: "small", "data-key": key("answer"), "aria-pressed": String(q.answered),
        onclick: () => this.moderate(q, "answer", !q.answered) }, q.answered ? "Reopen" : "Mark answered"));
      if (!q.answered && !q.hidden) {
        actions.push(h("button", { type: "button", class: "small", "data-key": key("pin"), "aria-pressed": String(q.pinned),
          onclick: () => this.moderate(q, "pin", !q.pinned) }, q.pinned ? "Unpin" : "Pin"));
      }
      actions.push(h("button", { type: "button", class: "small", "data-key": key("hide"), "aria-pressed": String(q.hidden),
        onclick: () => this.moderate(q, "hide", !q.hidden) }, q.hidden ? "Show" : "Hide"));
    }
    let body;
    if (this.editing === q.id) {
      const area = h("textarea", { id: `edit-${q.id}`, rows: 2, maxlength: maxLength("question") });
      area.value = q.text;
      const form = h("form", { class: "edit-form" },
        h("label", { for: `edit-${q.id}`, class: "visually-hidden" }, "Edit your question"),
        area,
        h("div", { class: "actions" },
          h("button", { type: "submit", class: "primary small" }, "Save"),
          h("button", { type: "button", class: "small", onclick: () => { this.editing = null; this.renderQuestions(); } }, "Cancel")));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (area.value.trim()) this.saveEdit(q, area.value.trim());
      });
      area.addEventListener("keydown", (event) => {
        if (event.key === "Escape") { this.editing = null; this.renderQuestions(); }
      });
      body = form;
    } else {
      body = h("p", { class: "q-text" }, q.text);
    }
    return h("li", { class: `question${q.answered ? " answered" : ""}${q.pinned ? " pinned" : ""}${q.hidden ? " is-hidden" : ""}`,
      "data-question-id": q.id },
      h("button", { type: "button", class: "vote", "data-key": key("vote"), "aria-pressed": String(Boolean(q.voted)),
        disabled: !open || q.answered, "aria-label": `${q.voted ? "Remove your vote" : "Upvote"}: ${q.votes} vote${q.votes === 1 ? "" : "s"}`,
        onclick: () => this.vote(q) },
        h("span", { class: "arrow", "aria-hidden": "true" }, "▲"), h("span", { class: "votes" }, q.votes)),
      h("div", { class: "q-body" },
        body,
        h("p", { class: "q-meta" },
          h("span", { class: q.anonymous ? "anon" : "" }, author), q.mine ? h("span", { class: "you" }, " · you") : null,
          h("span", { class: "muted" }, " · ", formatRelative(q.created_at)), badges),
        actions.length ? h("div", { class: "q-actions" }, actions) : null));
  }

  renderNowAnswering() {
    const box = this.el.nowAnswering;
    if (!box) return;
    const q = pinnedQuestion(this.state);
    if (!q || this.layout !== "live") {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    box.hidden = false;
    replaceChildren(box,
      h("p", { class: "label" }, "Now answering"),
      h("p", { class: "pinned-text" }, q.text),
      h("p", { class: "q-meta" }, q.anonymous ? "Anonymous" : q.author?.display_name, ` · ${q.votes} vote${q.votes === 1 ? "" : "s"}`),
      this.isHost ? h("div", { class: "q-actions" },
        h("button", { type: "button", class: "small primary", "data-key": "now-answered", onclick: () => this.moderate(q, "answer", true) }, "Mark answered"),
        h("button", { type: "button", class: "small", "data-key": "now-unpin", onclick: () => this.moderate(q, "pin", false) }, "Unpin")) : null);
  }

  // -- people

  avatar(user, size = "") {
    const speaking = this.voice && this.voice.speaking.has(user.id);
    return h("span", { class: `avatar ${size}${speaking ? " speaking" : ""}`, style: `--hue:${hue(user.id)}`, "aria-hidden": "true" },
      initials(user.display_name));
  }

  // The host's "Show everyone": GET /api/sessions/{id}/audience, a page at a time.
  async loadAudience(cursor = null) {
    if (this.audienceLoading) return;
    this.audienceLoading = true;
    this.renderPeople();
    try {
      const query = [cursor ? `cursor=${encodeURIComponent(cursor)}` : "", pageMax() ? `limit=${pageMax()}` : ""].filter(Boolean).join("&");
      const answer = await get(`/api/sessions/${this.id}/audience${query ? "?" + query : ""}`);
      if (this.destroyed) return;
      this.commit(audienceListed(this.state, answer, { more: Boolean(cursor) }));
    } catch (error) {
      if (error.status === 401) return this.fail(error);
      toast(error.message || "Could not load who is here.");
    } finally {
      this.audienceLoading = false;
      if (!this.destroyed && this.state) this.renderPeople();
    }
    return undefined;
  }

  renderAudience(live) {
    const count = audienceCount(this.state);
    const heading = h("h3", { class: "audience-count", "data-count": count }, live ? `${count} in the room` : `${count} waiting`);
    const parts = [heading];
    const named = audienceNames(this.state);
    const list = this.state.audienceList;
    if (named && named.length && !list) {
      parts.push(h("ul", { class: "people-list audience-names", "aria-label": "In the room" }, named.map((user) => {
        const you = user.id === this.me.id;
        return h("li", { class: "person role-listener", "data-user-id": user.id },
          this.avatar(user),
          h("div", { class: "person-info" },
            h("span", { class: "person-name" }, user.display_name, you ? h("span", { class: "muted" }, " (you)") : null),
            h("span", { class: "person-tags" }, h("span", { class: "badge role-badge badge-listener" }, ROLE_LABEL.listener))));
      })));
    }
    if (this.isHost) {
      if (!list) {
        parts.push(h("button", { type: "button", class: "small audience-show", "data-key": "audience-show", disabled: this.audienceLoading,
          onclick: () => this.loadAudience() }, "Show everyone"));
      } else {
        const seen = new Set();
        const items = list.items.filter((p) => p.user && !seen.has(p.conn) && seen.add(p.conn));
        parts.push(h("div", { class: "audience-list-head" },
          h("span", { class: "muted" }, `${items.length} of ${list.count} connections`),
          h("button", { type: "button", class: "small", "data-key": "audience-hide", onclick: () => this.commit(audienceListClosed(this.state)) }, "Hide list")));
        parts.push(h("ol", { class: "audience-list", "aria-label": "Everyone in the room" }, items.map((p) =>
          h("li", { class: "audience-item", "data-conn": p.conn, "data-audience-user-id": p.user.id },
            this.avatar(p.user, "small"), h("span", { class: "person-name" }, p.user.display_name),
            h("span", { class: `badge role-badge badge-${roleOf(this.state, p.user)}` }, ROLE_LABEL[roleOf(this.state, p.user)])))));
        if (list.next) {
          parts.push(h("button", { type: "button", class: "small audience-more", "data-key": "audience-more", disabled: this.audienceLoading,
            onclick: () => this.loadAudience(list.next) }, "More"));
        }
      }
    }
    return h("div", { class: "audience" }, parts);
  }

  renderPeople() {
    const pane = this.el.people;
    if (!pane) return;
    const everyone = people(this.state);
    const live = this.session.status === "live";
    const items = everyone.map((user) => {
      const role = roleOf(this.state, user);
      const you = user.id === this.me.id;
      const hand = this.state.hands.has(user.id);
      const speaking = this.voice && this.voice.speaking.has(user.id);
      const controls = [];
      if (this.isHost && live && role !== "host") {
        controls.push(role === "speaker"
          ? h("button", { type: "button", class: "small", "data-key": `revoke-${user.id}`, onclick: () => this.setVoice(user.id, false),
            "aria-label": `Revoke voice from ${user.display_name}` }, "Revoke voice")
          : h("button", { type: "button", class: `small${hand ? " primary" : ""}`, "data-key": `grant-${user.id}`,
            onclick: () => this.setVoice(user.id, true), "aria-label": `Give voice to ${user.display_name}` }, "Give voice"));
      }
      return h("li", { class: `person role-${role}${hand ? " hand-up" : ""}`, "data-user-id": user.id },
        this.avatar(user),
        h("div", { class: "person-info" },
          h("span", { class: "person-name" }, user.display_name, you ? h("span", { class: "muted" }, " (you)") : null,
            speaking ? h("span", { class: "visually-hidden" }, ", speaking") : null),
          h("span", { class: "person-tags" },
            h("span", { class: `badge role-badge badge-${role}` }, ROLE_LABEL[role]),
            hand ? h("span", { class: "hand", title: "Hand raised", role: "img", "aria-label": "Hand raised" }, "✋") : null,
            speaking ? h("span", { class: "speaking-label", "aria-hidden": "true" }, "speaking") : null)),
        controls);
    });
    const mine = [];
    if (live && !this.isHost && this.room) {
      if (myRole(this.state) === "speaker") {
        mine.push(h("p", { class: "you-speak" }, "You have the floor: you can speak."));
      } else {
        const up = this.state.hands.has(this.me.id);
        mine.push(h("button", { type: "button", class: `hand-button${up ? "" : " primary"}`, "data-key": "hand", "aria-pressed": String(up),
          onclick: () => this.hand(!up) }, up ? "Lower hand" : "✋ Raise hand"));
      }
    }
    replaceChildren(pane,
      h("div", { class: "pane-head" }, h("h2", { id: "people-heading" }, live ? "People" : "Waiting", " ",
        h("span", { class: "count" }, `(${audienceCount(this.state)})`))),
      mine.length ? h("div", { class: "my-controls" }, mine) : null,
      h("ul", { class: "people-list stage-list", "aria-label": "On stage" },
        items.length ? items : h("li", { class: "empty" }, "Nobody on stage yet.")),
      this.room && this.session.status !== "ended" ? this.renderAudience(live) : null);
  }

  // -- chat

  buildChat() {
    const pane = this.el.chat;
    const log = h("ol", { class: "chat-log", role: "log", "aria-labelledby": "chat-heading", tabindex: "0" });
    const more = h("button", { type: "button", class: "new-messages", hidden: true, onclick: () => this.scrollChat(true) }, "New messages ↓");
    log.addEventListener("scroll", () => {
      if (this.chatAtBottom()) {
        this.unseen = 0;
        more.hidden = true;
      }
    });
    this.el.chatLog = log;
    this.el.more = more;
    const parts = [h("div", { class: "pane-head" }, h("h2", { id: "chat-heading" }, this.layout === "ended" ? "Chat transcript" : "Chat")),
      h("div", { class: "chat-scroller" }, log, more)];
    if (this.layout === "live") {
      const input = h("input", { id: "chat-input", name: "text", autocomplete: "off", maxlength: maxLength("chat"), placeholder: "Say something…" });
      const form = h("form", { class: "chat-form" },
        h("label", { for: "chat-input", class: "visually-hidden" }, "Message"),
        input,
        h("button", { type: "submit", class: "primary" }, "Send"));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        this.room.chat(text);
        input.value = "";
        this.scrollChat(true);
      });
      parts.push(form);
    }
    pane.replaceChildren(...parts);
  }

  chatAtBottom() {
    const log = this.el.chatLog;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  scrollChat(force) {
    const log = this.el.chatLog;
    if (!log) return;
    log.scrollTop = log.scrollHeight;
    if (force) {
      this.unseen = 0;
      this.el.more.hidden = true;
    }
  }

  chatLine(line, status) {
    if (line.type === "note") {
      return h("li", { class: "note" }, h("span", {}, line.text));
    }
    const user = line.user || this.me;
    // The role the line was written with (a listener's words stay a listener's after a
    // grant); a line still being sent has none yet: the sender's role now.
    const role = line.role || roleOf(this.state, line.user || this.me);
    const mine = user.id === this.me.id;
    const extra = [];
    if (status === "pending") extra.push(h("span", { class: "state" }, "Sending…"));
    if (status === "failed") {
      extra.push(h("span", { class: "state failed" }, "Not sent"),
        h("button", { type: "button", class: "small", onclick: () => this.room.retry(line.client_msg_id) }, "Retry"),
        h("button", { type: "button", class: "small", onclick: () => this.room.discard(line.client_msg_id) }, "Discard"));
    }
    if (status === "confirmed" && this.isHost && this.layout === "live") {
      extra.push(h("button", { type: "button", class: "small ghost delete-msg", "data-key": `del-${line.id}`,
        "aria-label": `Delete the message from ${user.display_name}`, title: "Delete message",
        onclick: () => this.room.command("delete_message", { message_id: line.id }) }, "✕"));
    }
    return h("li", { class: `msg${mine ? " mine" : ""} ${status}`, "data-status": status },
      this.avatar(user, "small"),
      h("div", { class: "msg-body" },
        h("p", { class: "msg-head" },
          h("strong", {}, user.display_name),
          role !== "listener" ? h("span", { class: `badge role-badge badge-${role}` }, ROLE_LABEL[role]) : null,
          h("span", { class: "muted time" }, formatClock(line.ts || Date.now())),
          extra),
        h("p", { class: "msg-text" }, line.text)));
  }

  renderChat() {
    const log = this.el.chatLog;
    if (!log) return;
    const stick = this.chatAtBottom();
    const lines = chatLines(this.state, this.room && this.room.pending);
    const existing = new Map([...log.children].map((li) => [li.dataset.key, li]));
    let added = 0;
    lines.forEach(({ key, line, status }, index) => {
      let li = existing.get(key);
      if (!li || li.dataset.status !== status) {
        const fresh = this.chatLine(line, status);
        fresh.dataset.key = key;
        fresh.dataset.status = status;
        if (li) li.replaceWith(fresh);
        else added += 1;
        li = fresh;
      }
      existing.delete(key);
      if (log.children[index] !== li) log.insertBefore(li, log.children[index] || null);
    });
    for (const li of existing.values()) li.remove();
    if (!lines.length) log.replaceChildren(h("li", { class: "empty", "data-key": "empty" }, this.layout === "live" ? "No messages yet. Say hello!" : "No messages."));
    if (stick) this.scrollChat(false);
    else if (added) {
      this.unseen += added;
      this.el.more.hidden = false;
      this.el.more.textContent = `${this.unseen} new message${this.unseen === 1 ? "" : "s"} ↓`;
    }
  }
}
