// ASK2LIVE's web client: hash routes, one view at a time.
//   #/login  #/signup  #/  #/schedule  #/sessions/12  #/sessions/12/live

import { api, get, post } from "./api.js";
import { h, replaceChildren, timeElement, localInputValue, timeZone, formatRelative } from "./dom.js";
import { htmlPattern, limits, loadLimits, maxLength, minLength } from "./limits.js";
import { SessionView } from "./session.js";

const app = {
  me: null,
  view: null, // {key, destroy(), route?(path)}
};
// For people poking at the page, and for the browser tests (forcing a disconnect).
window.ask2live = { room: null, voice: null };

const main = document.getElementById("main");
const nav = document.getElementById("nav");

export function navigate(path, { replace = false } = {}) {
  const hash = "#" + path;
  if (location.hash === hash) return route();
  if (replace) {
    history.replaceState(null, "", hash);
    return route();
  }
  location.hash = hash;
}

function renderNav() {
  if (app.me) {
    replaceChildren(nav,
      h("a", { href: "#/" }, "Sessions"),
      h("a", { href: "#/schedule" }, "Schedule"),
      h("span", { class: "nav-user", title: "@" + app.me.username }, app.me.display_name),
      h("button", { type: "button", class: "link", onclick: logOut }, "Log out"));
  } else {
    replaceChildren(nav, h("a", { href: "#/login" }, "Log in"), h("a", { href: "#/signup" }, "Sign up"));
  }
}

async function logOut() {
  try {
    await post("/api/logout");
  } catch (error) {
    // signed out either way
  }
  app.me = null;
  renderNav();
  navigate("/login");
}

// Show a view: ``build`` gets the <main> element and returns {destroy?, route?, title}.
function show(key, build) {
  if (app.view) app.view.destroy?.();
  window.ask2live.room = null;
  main.replaceChildren();
  main.className = "";
  app.view = { key, ...(build(main) || {}) };
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

export function setTitle(text) {
  document.title = text ? `${text} · ASK2LIVE` : "ASK2LIVE";
}

async function route() {
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/")) return;
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  if (!app.me && path !== "/login" && path !== "/signup") {
    return navigate(`/login?next=${encodeURIComponent(path)}`, { replace: true });
  }
  const session = path.match(/^\/sessions\/(\d+)(\/live)?$/);
  if (session) {
    const key = "session:" + session[1];
    if (app.view && app.view.key === key) return app.view.route?.(Boolean(session[2]));
    return show(key, (root) => {
      const view = new SessionView(root, Number(session[1]), app.me, { navigate, setTitle });
      view.start(Boolean(session[2]));
      return { destroy: () => view.destroy(), route: (live) => view.route(live) };
    });
  }
  if (path === "/login") return show("login", (root) => authView(root, "login", params.get("next")));
  if (path === "/signup") return show("signup", (root) => authView(root, "signup", params.get("next")));
  if (path === "/schedule") return show("schedule", scheduleView);
  if (path === "/" || path === "") return show("home", homeView);
  show("missing", (root) => {
    setTitle("Not found");
    root.append(h("h1", {}, "Nothing here"), h("p", {}, h("a", { href: "#/" }, "Back to the sessions")));
  });
}

// ------------------------------------------------------------------ sign up / log in

function field(label, input, hint) {
  const id = input.id;
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { class: "hint", id: id + "-hint" }, hint) : null);
}

function errorBox() {
  return h("div", { class: "form-error", role: "alert", hidden: true });
}

function showError(box, error) {
  box.textContent = error.message || String(error);
  box.hidden = false;
}

// The hints say what the server's limits are (without them, what they are about).
function usernameHint() {
  const which = "letters, digits, “_”, “.” or “-”.";
  return limits ? `${minLength("username")} to ${maxLength("username")} ${which}` : `Only ${which}`;
}

function passwordHint() {
  return limits ? `At least ${minLength("password")} characters.` : "The longer the better.";
}

function authView(root, mode, next) {
  const signup = mode === "signup";
  setTitle(signup ? "Sign up" : "Log in");
  const error = errorBox();
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true,
    minlength: signup ? minLength("username") : null, maxlength: maxLength("username"),
    pattern: signup ? htmlPattern(limits?.username.pattern) : null,
    autocapitalize: "none", spellcheck: "false", "aria-describedby": signup ? "username-hint" : null });
  const displayName = signup ? h("input", { id: "display-name", name: "display_name", autocomplete: "nickname",
    maxlength: maxLength("display_name") }) : null;
  const password = h("input", { id: "password", name: "password", type: "password", required: true,
    autocomplete: signup ? "new-password" : "current-password", minlength: signup ? minLength("password") : null,
    maxlength: maxLength("password"), "aria-describedby": signup ? "password-hint" : null });
  const submit = h("button", { type: "submit", class: "primary" }, signup ? "Create account" : "Log in");
  const form = h("form", { class: "card auth", novalidate: false },
    h("h1", {}, signup ? "Create your account" : "Log in to ASK2LIVE"),
    h("p", { class: "lede" }, signup ? "Ask the questions you care about, live." : "Welcome back."),
    error,
    field("Username", username, signup ? usernameHint() : null),
    signup ? field("Display name (optional)", displayName, "Shown next to your questions and messages.") : null,
    field("Password", password, signup ? passwordHint() : null),
    submit,
    h("p", { class: "switch" }, signup
      ? ["Have an account? ", h("a", { href: "#/login" + (next ? "?next=" + encodeURIComponent(next) : "") }, "Log in")]
      : ["New here? ", h("a", { href: "#/signup" + (next ? "?next=" + encodeURIComponent(next) : "") }, "Create an account")]));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      const credentials = { username: username.value.trim(), password: password.value };
      if (signup) {
        const body = { ...credentials };
        if (displayName.value.trim()) body.display_name = displayName.value.trim();
        await post("/api/users", body);
      }
      const answer = await post("/api/login", credentials);
      app.me = answer.user; // the token itself stays in the HttpOnly cookie
      renderNav();
      navigate(next && next.startsWith("/") && !next.startsWith("/log") ? next : "/", { replace: true });
    } catch (err) {
      showError(error, err);
      submit.disabled = false;
    }
  });
  root.className = "narrow";
  root.append(form);
}

// ------------------------------------------------------------------ the sessions

function sessionCard(session) {
  const live = session.status === "live";
  const ended = session.status === "ended";
  const when = live ? session.started_at : ended ? session.ended_at : session.starts_at;
  return h("li", { class: `session-card status-${session.status}` },
    h("a", { href: `#/sessions/${session.id}${live ? "/live" : ""}`, class: "card-link" },
      h("span", { class: "card-top" },
        live ? h("span", { class: "badge badge-live" }, "Live") : null,
        h("span", { class: "card-title" }, session.title)),
      h("span", { class: "card-meta" }, "Hosted by ", session.host.display_name),
      h("span", { class: "card-when" },
        live ? ["Started ", formatRelative(when)] : ended ? ["Ended ", formatRelative(when)] : timeElement(when)),
      h("span", { class: "card-counts" },
        `${session.counts.questions} question${session.counts.questions === 1 ? "" : "s"}`,
        session.status === "scheduled" ? ` · ${session.reservations} seat${session.reservations === 1 ? "" : "s"} reserved` : "")));
}

function sessionList(title, id, empty, note) {
  const list = h("ul", { class: "session-list", "aria-labelledby": id });
  const section = h("section", { class: "sessions-section" },
    h("div", { class: "section-head" }, h("h2", { id }, title), note || null),
    list);
  return {
    section,
    fill(items) {
      replaceChildren(list, items.length ? items.map(sessionCard) : h("li", { class: "empty" }, empty));
    },
  };
}

function homeView(root) {
  setTitle("Sessions");
  const live = sessionList("Live now", "live-heading", "Nobody is live right now.");
  const upcoming = sessionList("Upcoming", "upcoming-heading", "Nothing scheduled yet.",
    h("p", { class: "hint" }, `Times in your time zone (${timeZone}).`));
  const ended = sessionList("Ended", "ended-heading", "No ended sessions yet.");
  root.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Sessions"),
      h("a", { href: "#/schedule", class: "button primary" }, "Schedule a session")),
    live.section, upcoming.section, ended.section);
  const error = errorBox();
  root.append(error);
  let stopped = false;
  async function load() {
    try {
      const [a, b, c] = await Promise.all(["live", "scheduled", "ended"].map(
        (status) => get(`/api/sessions?status=${status}&limit=${status === "ended" ? 10 : 50}`)));
      if (stopped) return;
      live.fill(a.items);
      upcoming.fill(b.items);
      ended.fill(c.items);
      error.hidden = true;
    } catch (err) {
      if (!stopped) showError(error, err);
    }
  }
  load();
  const timer = setInterval(load, 15000);
  return { destroy() { stopped = true; clearInterval(timer); } };
}

function scheduleView(root) {
  setTitle("Schedule a session");
  const error = errorBox();
  const start = new Date(Date.now() + 60 * 60 * 1000);
  start.setMinutes(0, 0, 0);
  const title = h("input", { id: "title", name: "title", required: true, maxlength: maxLength("title") });
  const description = h("textarea", { id: "description", name: "description", rows: 5, maxlength: maxLength("description") });
  const startsAt = h("input", { id: "starts-at", name: "starts_at", type: "datetime-local", required: true,
    value: localInputValue(start), min: localInputValue(new Date()), "aria-describedby": "starts-at-hint" });
  const submit = h("button", { type: "submit", class: "primary" }, "Schedule");
  const form = h("form", { class: "card" },
    h("h1", {}, "Schedule a session"),
    error,
    field("Title", title),
    field("Description", description, "What will you talk about? Optional."),
    field("Starts at", startsAt, `In your time zone (${timeZone}).`),
    h("div", { class: "actions" }, submit, h("a", { href: "#/", class: "button" }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const when = new Date(startsAt.value); // a datetime-local value is read as local time
    if (Number.isNaN(when.getTime())) return showError(error, new Error("Pick a start time."));
    submit.disabled = true;
    try {
      const answer = await post("/api/sessions", {
        title: title.value.trim(), description: description.value.trim(), starts_at: when.toISOString() });
      navigate(`/sessions/${answer.session.id}`);
    } catch (err) {
      showError(error, err);
      submit.disabled = false;
    }
  });
  root.className = "narrow";
  root.append(form);
}

// ------------------------------------------------------------------ start

async function boot() {
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    (main.querySelector("h1") || main).focus();
  });
  // The limits are the forms' (read once); "who am I" says which screen to show.
  const [me] = await Promise.allSettled([get("/api/me"), loadLimits()]);
  app.me = me.status === "fulfilled" ? me.value.user : null;
  renderNav();
  window.addEventListener("hashchange", route);
  route();
}

boot();
