"""The web client, end to end, in headless Chromium (Debian's chromium, driven by Playwright).

Each set-up gets a real `ask2live serve` in a child process (tests/serve.py; the browser
needs a server it can reach while the test drives it: Playwright's sync API would block
pytest-tornado's in-test loop): the embedded default, and MariaDB + Redis in a database
and key prefix of this module's own. A host and a guest, each in a browser context of their own, go through
the issue's story: sign up, schedule, a pre-question on the cue sheet, go live, chat both
ways, a raised hand and a grant of voice, a forced disconnect that resumes with nothing
lost or doubled, the end of the session.

Every screen is saved under artifacts/screenshots/ (docs/screenshots/ has a committed set).
Voice runs against a stand-in for the Agora SDK (the real one is fetched from its CDN,
which tests cannot reach): the page's part of the bargain (roles, publish, subscribe, the
switch on a grant, the speaking indicator) is what is checked.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import EMBEDDED, SETUPS
from serve import ServeProcess

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
expect = sync_api.expect

CHROMIUM = os.environ.get("ASK2LIVE_TEST_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=10_000)


# ------------------------------------------------------------------ servers


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module", params=SETUPS)
def server(request: Any, tmp_path_factory: Any) -> Any:
    srv = ServeProcess(request.param, tmp=tmp_path_factory.mktemp(f"browser-{request.param}"))
    yield srv
    srv.stop()
    assert "Traceback" not in srv.output(), srv.output()


@pytest.fixture(scope="module")
def browser() -> Any:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Person:
    """One person: a browser context of their own (own cookies), one page."""

    def __init__(self, browser: Any, server: ServeProcess, name: str, display: str, timezone: str,
                 viewport: dict = DESKTOP, init_script: str | None = None) -> None:
        self.server = server
        self.username = f"{name}{secrets.token_hex(2)}"
        self.display = display
        self.context = browser.new_context(viewport=viewport, timezone_id=timezone, locale="en-US",
                                           reduced_motion="reduce")
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.id: int | None = None

    def shot(self, name: str, full_page: bool = False) -> None:
        """A screenshot of what this person sees, from the top of the page, without the
        passing notices (toasts)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("window.scrollTo(0, 0); document.getElementById('toasts').replaceChildren()")
        self.page.screenshot(path=str(SHOTS / f"{self.server.setup}-{name}.png"), full_page=full_page)

    def sign_up(self, shots: bool = False) -> None:
        page = self.page
        page.goto(self.server.url + "/")
        expect(page.get_by_role("heading", name="Log in to ASK2LIVE")).to_be_visible()
        if shots:
            page.get_by_label("Username").fill(self.username)
            self.shot("01-log-in")
        page.get_by_role("link", name="Create an account").click()
        expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
        page.get_by_label("Username").fill(self.username)
        page.get_by_label("Display name (optional)").fill(self.display)
        page.get_by_label("Password").fill(PASSWORD)
        if shots:
            self.shot("02-sign-up")
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("heading", name="Sessions", exact=True)).to_be_visible()
        expect(page.locator("#nav")).to_contain_text(self.display)
        status, body = http("POST", self.server.url + "/api/login", {"username": self.username, "password": PASSWORD})
        self.id = body["user"]["id"]

    def person(self, other: "Person") -> Any:
        """The other person's entry in this page's people lists (the stage, or a small room's
        audience by name)."""
        return self.page.locator(f'.people-list [data-user-id="{other.id}"]')

    def chat(self, text: str) -> None:
        self.page.get_by_role("textbox", name="Message").fill(text)
        self.page.get_by_role("textbox", name="Message").press("Enter")

    def chat_texts(self) -> list[str]:
        return self.page.locator(".chat-log .msg .msg-text").all_inner_texts()

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


def hold_reconnect(page: Any) -> None:
    """Keep the page's room from reconnecting until release_reconnect(): its connect() is
    put off (and reports "reconnecting") while window.__hold is set."""
    page.evaluate("""() => {
      const room = window.ask2live.room;
      const connect = room.connect.bind(room);
      window.__hold = true;
      room.connect = () => {
        if (!window.__hold) return connect();
        room.setState("reconnecting");
        room.timer = setTimeout(() => room.connect(), 50);
      };
    }""")


def release_reconnect(page: Any) -> None:
    page.evaluate("window.__hold = false")


def test_a_host_and_a_guest_through_a_whole_session(server: ServeProcess, browser: Any) -> None:
    host = Person(browser, server, "minji", "김민지", "Asia/Seoul")
    guest = Person(browser, server, "joon", "Joon Park", "America/New_York")
    try:
        host.sign_up(shots=True)
        guest.sign_up()
        hp, gp = host.page, guest.page

        # -- the host schedules a session (the form works in the host's own time zone)
        hp.get_by_role("link", name="Schedule a session").click()
        expect(hp.get_by_role("heading", name="Schedule a session")).to_be_visible()
        hp.get_by_label("Title").fill("창업 3년차에게 무엇이든 물어보세요")
        hp.get_by_label("Description").fill("Seed to Series A, honestly. Bring your hardest questions.")
        hp.get_by_label("Starts at").fill("2030-03-14T20:00")
        host.shot("03-schedule")
        hp.get_by_role("button", name="Schedule").click()
        expect(hp.get_by_role("heading", name="창업 3년차에게 무엇이든 물어보세요")).to_be_visible()
        session_id = int(re.search(r"#/sessions/(\d+)$", hp.url).group(1))
        # 20:00 in Seoul is 11:00 UTC, and 07:00 in New York (EDT on 14 March 2030).
        expect(hp.locator(".session-head time")).to_contain_text("8:00")
        expect(hp.get_by_role("heading", name="Cue sheet")).to_be_visible()

        # -- the guest finds it under Upcoming, in New York time, and asks two pre-questions
        gp.reload()
        upcoming = gp.locator(".sessions-section", has=gp.get_by_role("heading", name="Upcoming"))
        expect(upcoming).to_contain_text("창업 3년차에게 무엇이든 물어보세요")
        expect(upcoming.locator("time")).to_contain_text("7:00")
        guest.shot("04-sessions")
        upcoming.get_by_role("link").first.click()
        expect(gp.get_by_role("heading", name="Questions")).to_be_visible()
        expect(gp.locator(".connection")).to_have_text("Connected")
        gp.get_by_label("Your question").fill("투자 유치할 때 가장 후회되는 결정은?")
        gp.get_by_role("button", name="Ask", exact=True).click()
        mine = gp.locator(".question", has_text="투자 유치할 때")
        expect(mine).to_contain_text("you")
        gp.get_by_label("Your question").fill("How did you hire your first engineer?")
        gp.get_by_label("Ask anonymously").check()
        gp.get_by_role("button", name="Ask", exact=True).click()
        anon = gp.locator(".question", has_text="first engineer")
        expect(anon).to_contain_text("Anonymous")
        # edit the first one, upvote the second
        mine.get_by_role("button", name="Edit").click()
        gp.get_by_label("Edit your question").fill("투자 유치할 때 가장 후회되는 결정은 무엇인가요?")
        gp.get_by_role("button", name="Save").click()
        expect(gp.locator(".question", has_text="무엇인가요?")).to_be_visible()
        anon.get_by_role("button", name=re.compile("^Upvote")).click()
        expect(anon.locator(".vote")).to_have_attribute("aria-pressed", "true")
        expect(anon.locator(".votes")).to_have_text("1")
        gp.get_by_role("button", name="Reserve a seat").click()
        expect(gp.get_by_role("button", name="Seat reserved ✓")).to_have_attribute("aria-pressed", "true")
        expect(gp.locator(".session-head")).to_contain_text("1 seat reserved")
        gp.get_by_role("button", name="Recent").click()
        expect(gp.locator(".question").first).to_contain_text("first engineer")
        guest.shot("05-session-before-start")

        # -- the host sees both on the cue sheet, live, without reloading; pins one
        cue = hp.locator(".question-list")
        expect(cue.locator(".question")).to_have_count(2)
        expect(cue.locator(".question").first).to_contain_text("first engineer")  # 1 vote: on top
        expect(host.person(guest)).to_be_visible()
        expect(hp.locator(".audience-count")).to_have_text("2 waiting")
        # (an edit is not broadcast; the pin's event carries the question as it is now)
        cue.locator(".question", has_text="투자 유치할 때").get_by_role("button", name="Pin").click()
        expect(cue.locator(".question").first).to_contain_text("무엇인가요?")
        expect(gp.locator(".question.pinned")).to_contain_text("무엇인가요?")
        host.shot("06-cue-sheet")
        # hidden from everyone but the host, then shown again
        cue.locator(".question", has_text="first engineer").get_by_role("button", name="Hide").click()
        expect(cue.locator(".question.is-hidden")).to_contain_text("first engineer")
        expect(gp.locator(".question", has_text="first engineer")).to_have_count(0)
        cue.locator(".question", has_text="first engineer").get_by_role("button", name="Show").click()
        expect(gp.locator(".question", has_text="first engineer")).to_contain_text("you")

        # -- go live: both pages turn into the live room
        hp.get_by_role("button", name="Go live").click()
        expect(hp.get_by_role("heading", name="Chat")).to_be_visible()
        expect(gp.get_by_role("heading", name="Chat")).to_be_visible()
        assert gp.url.endswith(f"#/sessions/{session_id}/live")
        expect(gp.locator(".now-answering")).to_contain_text("무엇인가요?")
        expect(gp.locator(".voice-box")).to_contain_text("Voice not configured")

        # -- chat both ways
        guest.chat("안녕하세요! Hello from New York")
        host.chat("Welcome, everyone 👋")
        for person in (host, guest):
            expect(person.page.locator(".chat-log")).to_contain_text("Hello from New York")
            expect(person.page.locator(".chat-log")).to_contain_text("Welcome, everyone")
            expect(person.page.locator(".msg.confirmed")).to_have_count(2)

        # -- the room counted: the stage by name, the audience as a count (and, in a room this
        #    small, by name); the host lists everyone, the guest may not
        for person in (host, guest):
            expect(person.page.locator(".audience-count")).to_have_text("2 in the room")
            expect(person.page.locator(".stage-list")).to_contain_text(host.display)
            expect(person.page.locator(".audience-names")).to_contain_text(guest.display)
        expect(gp.get_by_role("button", name="Show everyone")).to_have_count(0)
        hp.get_by_role("button", name="Show everyone").click()
        audience = hp.get_by_role("list", name="Everyone in the room")
        expect(audience.locator(".audience-item")).to_have_count(2)
        expect(audience).to_contain_text(guest.display)
        expect(audience).to_contain_text(host.display)
        expect(hp.locator(".audience-list-head")).to_contain_text("2 of 2")
        host.shot("17-live-host-audience")
        hp.get_by_role("button", name="Hide list").click()
        expect(audience).to_have_count(0)

        # -- the guest raises a hand; the host gives voice; the badge changes on both screens
        expect(guest.person(guest).locator(".role-badge")).to_have_text("Listener")
        gp.get_by_role("button", name="Raise hand").click()
        expect(host.person(guest).locator(".hand")).to_be_visible()
        expect(guest.person(guest).locator(".hand")).to_be_visible()
        host.shot("07-live-host-hand-raised")
        hp.get_by_role("button", name=f"Give voice to {guest.display}").click()
        for person in (host, guest):
            expect(person.person(guest).locator(".role-badge")).to_have_text("Speaker")
            expect(person.person(guest).locator(".hand")).to_have_count(0)
        expect(gp.locator(".you-speak")).to_be_visible()
        expect(host.person(host).locator(".role-badge")).to_have_text("Host")

        # -- a forced disconnect: the guest's socket drops and stays down while the host
        #    talks and the guest types; on reconnect everything is there exactly once
        hold_reconnect(gp)
        gp.evaluate("window.ask2live.room.socket.close()")
        expect(gp.locator(".connection")).to_have_text("Reconnecting…")
        host.chat("While you were away: one")
        host.chat("While you were away: two")
        expect(hp.locator(".msg.confirmed")).to_have_count(4)
        guest.chat("Typed while offline")
        expect(gp.locator(".msg.pending")).to_contain_text("Typed while offline")
        expect(gp.locator(".msg.pending")).to_contain_text("Sending…")
        guest.shot("08-reconnecting")
        release_reconnect(gp)
        expect(gp.locator(".connection")).to_have_text("Connected", timeout=15_000)
        expected = ["안녕하세요! Hello from New York", "Welcome, everyone 👋", "While you were away: one",
                    "While you were away: two", "Typed while offline"]
        for person in (host, guest):
            expect(person.page.locator(".msg.confirmed")).to_have_count(5)
            assert person.chat_texts() == expected, person.chat_texts()
        expect(gp.locator(".msg.pending")).to_have_count(0)

        # -- the live cue sheet: a vote counted live, the pinned question answered
        live_q = hp.locator(".questions-pane .question", has_text="first engineer")
        gp.locator(".questions-pane .question", has_text="무엇인가요?").get_by_role("button", name=re.compile("^Upvote")).click()
        expect(hp.locator(".questions-pane .question", has_text="무엇인가요?").locator(".votes")).to_have_text("1")
        expect(live_q.locator(".votes")).to_have_text("1")
        guest.chat("Thanks for taking my question!")
        expect(hp.locator(".chat-log")).to_contain_text("Thanks for taking my question!")
        host.shot("09-live-room-host")
        hp.emulate_media(color_scheme="dark")
        host.shot("16-live-room-dark")
        hp.emulate_media(color_scheme="light")
        guest.shot("10-live-room-guest")
        # the host deletes a message; the room sees it go
        hp.locator(".msg", has_text="Thanks for taking").hover()
        hp.get_by_role("button", name=f"Delete the message from {guest.display}").last.click()
        expect(gp.locator(".chat-log")).not_to_contain_text("Thanks for taking")
        hp.locator(".now-answering").get_by_role("button", name="Mark answered").click()
        expect(gp.locator(".now-answering")).to_be_hidden()
        expect(gp.locator(".question.answered")).to_contain_text("무엇인가요?")

        # -- on a phone
        gp.set_viewport_size(PHONE)
        expect(gp.get_by_role("textbox", name="Message")).to_be_visible()
        guest.shot("11-live-room-phone")
        width = gp.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the live room is {width}px wide on a {PHONE['width']}px phone"
        gp.set_viewport_size(DESKTOP)

        # -- a resume the server cannot vouch for (here: a position past the room's last event,
        #    as after a Redis rollback): the page starts over from the welcome, and later
        #    events, whose ids are below the bogus position, still show
        before = guest.chat_texts()
        gp.evaluate("window.ask2live.room.lastId = '99999999999999-0'; window.ask2live.room.socket.close()")
        expect(gp.locator(".chat-log .note", has_text="showing the latest messages")).to_be_visible()
        expect(gp.locator(".connection")).to_have_text("Connected")
        host.chat("After the gap")
        expect(gp.locator(".chat-log")).to_contain_text("After the gap")
        assert guest.chat_texts() == before + ["After the gap"], guest.chat_texts()

        # -- the host revokes the guest's voice, then ends the session for everyone
        hp.get_by_role("button", name=f"Revoke voice from {guest.display}").click()
        for person in (host, guest):
            expect(person.person(guest).locator(".role-badge")).to_have_text("Listener")
        hp.once("dialog", lambda dialog: dialog.accept())
        hp.get_by_role("button", name="End session").click()
        for person in (host, guest):
            expect(person.page.get_by_role("heading", name="Chat transcript")).to_be_visible()
            expect(person.page.locator(".session-head .badge")).to_have_text("Ended")
        assert gp.url.endswith(f"#/sessions/{session_id}")
        guest.shot("12-ended")
        gp.get_by_role("link", name="← Sessions").click()
        ended = gp.locator(".sessions-section", has=gp.get_by_role("heading", name="Ended"))
        expect(ended).to_contain_text("창업 3년차에게 무엇이든 물어보세요")

    finally:
        host.close()
        guest.close()


def test_keyboard_only_sign_in_and_a_phone_width_home(server: ServeProcess, browser: Any) -> None:
    """Tab order and Enter get a person from the log-in form to the sessions list; the
    sessions list fits a phone."""
    person = Person(browser, server, "sora", "Sora", "Europe/Berlin", viewport=PHONE)
    try:
        status, _ = http("POST", server.url + "/api/users", {"username": person.username, "password": PASSWORD,
                                                              "display_name": "Sora"})
        assert status == 201
        page = person.page
        page.goto(server.url + "/#/sessions/999999")  # a deep link: log in first, then go there
        expect(page.get_by_role("heading", name="Log in to ASK2LIVE")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_label("Username")).to_be_focused()
        page.keyboard.type(person.username)
        page.keyboard.press("Tab")
        expect(page.get_by_label("Password")).to_be_focused()
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="No such session")).to_be_visible()
        page.get_by_role("link", name="Back to the sessions").click()
        expect(page.get_by_role("heading", name="Sessions", exact=True)).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
        person.shot("13-sessions-phone")
        # wrong password: said so, in an alert
        page.get_by_role("button", name="Log out").click()
        page.get_by_label("Username").fill(person.username)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_be_visible()
    finally:
        person.close()


# ------------------------------------------------------------------ voice, against a stand-in SDK

# A stand-in for window.AgoraRTC: records what the page asks of it. The page uses an
# AgoraRTC that is already there instead of loading the real SDK from its CDN.
FAKE_AGORA = """
(() => {
  const calls = [];
  const record = (...args) => calls.push(args);
  const track = (level) => ({ level, muted: false, getVolumeLevel() { return this.muted ? 0 : this.level; },
                              setMuted(m) { this.muted = m; record("setMuted", m); }, play() { record("play"); },
                              close() { record("closeTrack"); } });
  class Client {
    constructor() { this.handlers = {}; this.remoteUsers = []; window.__agora.client = this; }
    on(name, fn) { this.handlers[name] = fn; }
    emit(name, ...args) { return this.handlers[name] && this.handlers[name](...args); }
    async setClientRole(role) { record("setClientRole", role); }
    async join(appId, channel, token, uid) { record("join", channel, uid, !!token); }
    async publish(tracks) { record("publish", tracks.length); }
    async unpublish(tracks) { record("unpublish", tracks.length); }
    async subscribe(user, kind) { record("subscribe", user.uid, kind); }
    async renewToken(token) { record("renewToken", !!token); }
    async leave() { record("leave"); }
    // for the test: someone starts publishing audio at this volume
    remote(uid, level) { const user = { uid, audioTrack: track(level) }; this.remoteUsers.push(user);
                         return this.emit("user-published", user, "audio"); }
  }
  window.__agora = { calls, client: null, track };
  window.AgoraRTC = {
    setLogLevel() {},
    createClient(config) { record("createClient", config.mode); return new Client(); },
    async createMicrophoneAudioTrack(config) { record("createMicrophoneAudioTrack", config); return track(0.4); },
  };
})();
"""


@pytest.fixture(scope="module")
def voice_server(tmp_path_factory: Any) -> Any:
    """The embedded set-up with Agora configured (tokens are built locally, no network)."""
    srv = ServeProcess(EMBEDDED, "--agora-app-id", secrets.token_hex(16), "--agora-app-certificate",
                       secrets.token_hex(16), tmp=tmp_path_factory.mktemp("browser-voice"))
    yield srv
    srv.stop()


def calls(page: Any) -> list:
    return page.evaluate("window.__agora.calls")


def test_voice_listeners_subscribe_speakers_publish_and_a_grant_switches_live(voice_server: ServeProcess, browser: Any) -> None:
    host = Person(browser, voice_server, "hana", "Hana", "Asia/Seoul", init_script=FAKE_AGORA)
    guest = Person(browser, voice_server, "ivan", "Ivan", "Europe/Berlin", init_script=FAKE_AGORA)
    try:
        host.sign_up()
        guest.sign_up()
        hp, gp = host.page, guest.page
        hp.get_by_role("link", name="Schedule a session").click()
        hp.get_by_label("Title").fill("Voice check")
        hp.get_by_role("button", name="Schedule").click()
        hp.get_by_role("button", name="Go live").click()
        expect(hp.get_by_role("heading", name="Chat")).to_be_visible()
        gp.reload()
        live = gp.locator(".sessions-section", has=gp.get_by_role("heading", name="Live now"))
        expect(live).to_contain_text("Voice check")
        guest.shot("15-sessions-live")
        live.get_by_role("link", name=re.compile("Voice check")).click()
        expect(gp.get_by_role("heading", name="Chat")).to_be_visible()
        assert gp.url == hp.url

        # the host publishes the microphone, echo cancellation on
        hp.get_by_role("button", name="Join voice").click()
        expect(hp.locator(".voice-box")).to_contain_text("Mic on")
        host_calls = calls(hp)
        assert ["setClientRole", "host"] in host_calls
        assert ["createMicrophoneAudioTrack", {"AEC": True, "ANS": True, "AGC": True}] in host_calls
        assert ["publish", 1] in host_calls
        session_id = int(re.search(r"#/sessions/(\d+)", hp.url).group(1))
        assert ["join", f"ask2live-session-{session_id}", host.id, True] in host_calls
        # the host's own ring shows while the microphone hears something
        expect(host.person(host).locator(".avatar")).to_have_class(re.compile("speaking"))

        # the guest listens: audience, no microphone; hears the host, and sees who speaks
        gp.get_by_role("button", name="Listen in").click()
        expect(gp.locator(".voice-box")).to_contain_text("Listening")
        guest_calls = calls(gp)
        assert ["setClientRole", "audience"] in guest_calls
        assert not any(c[0] in ("publish", "createMicrophoneAudioTrack") for c in guest_calls)
        gp.evaluate(f"window.__agora.client.remote({host.id}, 0.5)")
        assert ["subscribe", host.id, "audio"] in calls(gp)
        expect(guest.person(host).locator(".avatar")).to_have_class(re.compile("speaking"))
        guest.shot("14-voice-speaking")

        # a grant switches the guest to publishing without leaving the channel; a revoke back
        gp.get_by_role("button", name="Raise hand").click()
        hp.get_by_role("button", name=f"Give voice to {guest.display}").click()
        expect(gp.locator(".voice-box")).to_contain_text("Mic on")
        guest_calls = calls(gp)
        assert ["renewToken", True] in guest_calls
        assert ["setClientRole", "host"] in guest_calls and ["publish", 1] in guest_calls
        assert [c[0] for c in guest_calls].count("join") == 1
        gp.get_by_role("button", name="Mute").click()
        expect(gp.locator(".voice-box")).to_contain_text("Mic muted")
        hp.get_by_role("button", name=f"Revoke voice from {guest.display}").click()
        expect(gp.locator(".voice-box")).to_contain_text("Listening")
        assert ["unpublish", 1] in calls(gp)
        assert calls(gp)[-1] == ["setClientRole", "audience"]

        # a grant while the guest is disconnected (their hand is up, so the host may): the
        # pushed token is not replayed, so the page asks for one on its resume, and the
        # microphone comes on
        gp.get_by_role("button", name="Raise hand").click()
        expect(host.person(guest).locator(".hand")).to_be_visible()
        expect(hp.get_by_role("button", name=f"Give voice to {guest.display}")).to_be_visible()
        hold_reconnect(gp)
        gp.evaluate("window.ask2live.room.socket.close()")
        expect(gp.locator(".connection")).to_have_text("Reconnecting…")
        expect(host.person(guest)).to_have_count(0)
        hp.evaluate(f"window.ask2live.room.command('grant_voice', {{user_id: {guest.id}}})")
        release_reconnect(gp)
        expect(gp.locator(".voice-box")).to_contain_text("Mic muted")
        expect(guest.person(guest).locator(".role-badge")).to_have_text("Speaker")
        assert [c[0] for c in calls(gp)[-4:]] == ["setClientRole", "createMicrophoneAudioTrack", "setMuted", "publish"]
    finally:
        host.close()
        guest.close()
