"""Record the fixtures of tests/js/: a whole session on a real ``ask2live serve``, as the
host's page and a guest's page each saw it.

    .venv/bin/python tests/js/record.py          # rewrites tests/js/fixtures/*.json

Each fixture is one page's life, in order: the REST calls the web client makes (with the
answers), the room socket's connects (with their ``since``), every frame the page sent and
every frame it received, exactly as the server sent them. Ids, times and connection ids
differ from run to run; the tests in tests/js/ read texts, names and shapes, never those.

The server runs on the embedded set-up with made-up Agora credentials (voice tokens are
signed locally; nothing is fetched). A third person, sora, acts on a socket and over REST
without a page of her own.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, when run as a script
from conftest import EMBEDDED  # noqa: E402
from serve import ServeProcess, http_json  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PASSWORD = "correct horse battery"
# Made up: Agora tokens are signed locally, so any 32 hex digits make well-formed ones.
AGORA = ["--agora-app-id", "0123456789abcdef0123456789abcdef",
         "--agora-app-certificate", "fedcba9876543210fedcba9876543210"]
# An id later than any the room has handed out: a resume from it cannot be recovered.
FAR_FUTURE_ID = "99999999999999-0"
WAIT_SECONDS = 10


class Person:
    """A signed-up user. With ``page`` set, what the web client would do and see is written
    down in ``steps``: its REST calls, its connects, each frame sent and received."""

    def __init__(self, base: str, username: str, display_name: str, page: bool) -> None:
        self.base = base
        status, body = http_json("POST", base + "/api/users", {"username": username, "password": PASSWORD,
                                                         "display_name": display_name})
        assert status == 201, body
        status, body = http_json("POST", base + "/api/login", {"username": username, "password": PASSWORD})
        assert status == 200, body
        self.token = body["token"]
        self.user = body["user"]
        self.page = page
        self.steps: list[dict] = [{"me": self.user}] if page else []
        self.received: list[dict] = []  # every frame, for wait()
        self.scanned = 0  # how far wait() has read ``received``
        self.lock = threading.Lock()
        self.socket: websocket.WebSocket | None = None
        self.reader: threading.Thread | None = None
        self.last_id: str | None = None  # the position to resume from, as the web client keeps it
        self.sent = 0

    def note(self, step: dict) -> None:
        if self.page:
            with self.lock:
                self.steps.append(step)

    def rest(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = http_json(method, self.base + path, body, self.token)
        assert status == expect, (method, path, status, answer)
        step: dict = {"rest": f"{method} {path}"}
        if body is not None:
            step["body"] = body
        self.note({**step, "status": status, "answer": answer})
        return answer

    def connect(self, session_id: int, since: str | None, forced: str | None = None) -> None:
        """Open the room socket from ``since``: the web client's position, or (``forced``,
        saying why) one it would not have had."""
        query = f"?since={since}" if since else ""
        self.note({"connect": {"since": since, **({"forced": forced} if forced else {})}})
        ws = websocket.create_connection(f"{self.base.replace('http', 'ws', 1)}/ws/sessions/{session_id}{query}",
                                         timeout=WAIT_SECONDS, suppress_origin=True,
                                         header=[f"Authorization: Bearer {self.token}"])
        self.socket = ws

        def read() -> None:
            while True:
                try:
                    data = ws.recv()
                except (websocket.WebSocketException, OSError):
                    return
                if not data:
                    return
                frame = json.loads(data)
                with self.lock:
                    self.received.append(frame)
                    if self.page:
                        self.steps.append({"receive": frame})
                    if frame.get("type") == "welcome":
                        self.last_id = frame["position"]
                    elif "id" in frame:
                        self.last_id = frame["id"]

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        self.wait(lambda f: f.get("type") == "welcome", "the welcome")

    def disconnect(self) -> None:
        assert self.socket is not None
        self.socket.close()
        self.reader.join(WAIT_SECONDS)
        self.socket = None
        self.note({"disconnect": {}})

    def send(self, frame: dict, wait: Callable[[dict], bool] | None = None) -> dict:
        """Send a command and wait for the frame ``wait`` takes: by default the one that
        carries the command's client_msg_id back (its event, or its error)."""
        self.sent += 1
        frame = {**frame, "client_msg_id": f"{self.user['username']}-{self.sent}"}
        self.note({"send": frame})
        self.socket.send(json.dumps(frame))
        return self.wait(wait or echo(frame["client_msg_id"]), json.dumps(frame)[:80])

    def wait(self, accept: Callable[[dict], bool], what: str) -> dict:
        """The first frame received since the last wait() that ``accept`` takes."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            with self.lock:
                fresh = self.received[self.scanned:]
            for frame in fresh:
                self.scanned += 1
                if accept(frame):
                    return frame
            time.sleep(0.01)
        raise AssertionError(f"{self.user['username']} did not receive {what}")


def echo(client_msg_id: str) -> Callable[[dict], bool]:
    return lambda frame: frame.get("client_msg_id") == client_msg_id


def of_type(kind: str) -> Callable[[dict], bool]:
    return lambda frame: frame.get("type") == kind


def audience(joined: "Person | None" = None, left: "Person | None" = None) -> Callable[[dict], bool]:
    """The `audience` event that names ``joined`` coming in or ``left`` going (the room tells
    a listener's join or leave at most once a second, in one such event)."""
    def accept(frame: dict) -> bool:
        if frame.get("type") != "audience":
            return False
        if joined is not None and joined.user["id"] not in [p["user"]["id"] for p in frame["joined"]]:
            return False
        return left is None or left.user["id"] in [p["user"]["id"] for p in frame["left"]]
    return accept


def event(event_id: str) -> Callable[[dict], bool]:
    return lambda frame: frame.get("id") == event_id


def record(base: str) -> dict[str, dict]:
    minji = Person(base, "minji", "김민지", page=True)
    joon = Person(base, "joon", "Joon", page=True)
    sora = Person(base, "sora", "Sora", page=False)
    status, answer = http_json("POST", base + "/api/sessions", {
        "title": "Ask me anything", "description": "Seed to Series A, honestly.",
        "starts_at": "2030-03-14T20:00:00+09:00"}, minji.token)
    assert status == 201, answer
    sid = answer["session"]["id"]
    # Before the start, before the pages open: joon's pre-question.
    status, answer = http_json("POST", base + f"/api/sessions/{sid}/questions", {"text": "What was your hardest decision?"},
                               joon.token)
    assert status == 201, answer
    first = answer["question"]["id"]

    # The two pages open, as the web client does: the session, its cue sheet, the room.
    # A listener's join is told in the next `audience` event: each is waited for, so that
    # the recording is the same every time.
    for person in (minji, joon):
        person.rest("GET", f"/api/sessions/{sid}")
        person.rest("GET", f"/api/sessions/{sid}/questions?sort=top&limit=100")
        person.connect(sid, None)
    minji.wait(audience(joined=joon), "joon's arrival")
    sora.connect(sid, None)
    for person in (minji, joon):
        person.wait(audience(joined=sora), "sora's arrival")
    # The host pages through the room.
    minji.rest("GET", f"/api/sessions/{sid}/audience?limit=2")
    minji.rest("GET", f"/api/sessions/{sid}/audience?cursor={minji.steps[-1]['answer']['next_cursor']}&limit=2")

    # Scheduled: an anonymous question over the socket, votes over the socket.
    anon = joon.send({"type": "question", "text": "Will you share the deck?", "anonymous": True})
    minji.wait(event(anon["id"]), "joon's anonymous question")
    vote = sora.send({"type": "vote", "question_id": first})
    for person in (minji, joon):
        person.wait(event(vote["id"]), "sora's vote")
    vote = joon.send({"type": "vote", "question_id": first})
    minji.wait(event(vote["id"]), "joon's vote")

    # The host goes live over REST; everyone hears session_started.
    minji.rest("POST", f"/api/sessions/{sid}/start")
    for person in (minji, joon, sora):
        person.wait(of_type("session_started"), "session_started")

    # Live: chat both ways, a pin.
    line = joon.send({"type": "chat", "text": "안녕하세요 👋"})
    minji.wait(event(line["id"]), "joon's chat")
    line = minji.send({"type": "chat", "text": "Welcome, everyone!"})
    joon.wait(event(line["id"]), "minji's chat")
    pin = minji.send({"type": "pin", "question_id": first})
    joon.wait(event(pin["id"]), "the pin")

    # sora asks over REST while live (an event with client_msg_id null); joon votes for it;
    # the host hides it and shows it again.
    remote = sora.rest("POST", f"/api/sessions/{sid}/questions", {"text": "Is remote work OK?"}, expect=201)
    remote = remote["question"]["id"]
    for person in (minji, joon):
        person.wait(of_type("question"), "sora's question")
    vote = joon.send({"type": "vote", "question_id": remote})
    minji.wait(event(vote["id"]), "joon's vote")
    for value in (True, False):
        hide = minji.send({"type": "hide", "question_id": remote, "value": value})
        joon.wait(event(hide["id"]), "hide / show")

    # A raised hand, a grant (then a pushed publisher token), a token asked for, a revoke
    # (then a pushed subscriber token).
    hand = joon.send({"type": "raise_hand"})
    minji.wait(event(hand["id"]), "the raised hand")
    grant = minji.send({"type": "grant_voice", "user_id": joon.user["id"]})
    joon.wait(event(grant["id"]), "the grant")
    joon.wait(of_type("voice_token"), "the pushed publisher token")
    joon.send({"type": "voice_token"})
    revoke = minji.send({"type": "revoke_voice", "user_id": joon.user["id"]})
    joon.wait(event(revoke["id"]), "the revoke")
    joon.wait(of_type("voice_token"), "the pushed subscriber token")

    # Refusals: a guest's host command, a second vote, a chat line too long to take.
    joon.send({"type": "pin", "question_id": first})
    joon.send({"type": "vote", "question_id": remote})
    joon.send({"type": "chat", "text": "x" * 1001})

    # REST changes while live: the host answers (its page's way when the socket is down);
    # sora asks, edits and deletes.
    minji.rest("POST", f"/api/questions/{remote}/answer", {"value": True})
    typo = sora.rest("POST", f"/api/sessions/{sid}/questions", {"text": "typo questoin"}, expect=201)["question"]["id"]
    sora.rest("PATCH", f"/api/questions/{typo}", {"text": "typo question"})
    sora.rest("DELETE", f"/api/questions/{typo}", expect=204)
    for person in (minji, joon):
        person.wait(lambda f: f.get("action") == "delete", "the delete")

    # A chat line the host deletes.
    spam = sora.send({"type": "chat", "text": "buy cheap followers"})
    minji.wait(event(spam["id"]), "sora's line")
    deleted = minji.send({"type": "delete_message", "message_id": spam["id"]})
    joon.wait(event(deleted["id"]), "the deletion")

    # joon drops, misses a line, and resumes from the last event seen: recovered.
    joon.disconnect()
    minji.wait(audience(left=joon), "joon's departure")
    minji.send({"type": "chat", "text": "while you were away"})
    joon.connect(sid, joon.last_id)
    minji.wait(audience(joined=joon), "joon's return")

    # joon drops again and comes back with a position the room never handed out: not
    # recovered, the history replaces the chat.
    joon.disconnect()
    minji.wait(audience(left=joon), "joon's second departure")
    joon.connect(sid, FAR_FUTURE_ID, forced="a position the room never handed out, as after a Redis rollback")
    minji.wait(audience(joined=joon), "joon's second return")
    line = joon.send({"type": "chat", "text": "back again"})
    minji.wait(event(line["id"]), "joon's line")

    # sora leaves; the host ends the session over the socket; both pages then load the
    # final cue sheet over REST, as the ended page does.
    sora.disconnect()
    for person in (minji, joon):
        person.wait(audience(left=sora), "sora's departure")
    minji.send({"type": "end"}, wait=of_type("session_ended"))
    joon.wait(of_type("session_ended"), "the end")
    for person in (minji, joon):
        person.disconnect()
        person.rest("GET", f"/api/sessions/{sid}/questions?sort=top&limit=100")

    about = ("A whole session on a real server, as {} saw it (recorded by tests/js/record.py): a "
             "pre-question, arrivals told in audience events, the host listing the room, an anonymous question and votes before the start, going live, chat, a pin, "
             "a question hidden and shown again, a raised hand, voice granted and revoked, refusals, "
             "REST changes, a deleted line, a recovered resume and one that is not, the end.")
    return {
        "whole-session-host.json": {"about": about.format("the host's page (minji)"), "steps": minji.steps},
        "whole-session-guest.json": {"about": about.format("a guest's page (joon)"), "steps": joon.steps},
    }


def recorded() -> dict[str, dict]:
    """The fixtures, recorded afresh from a server of this checkout's code."""
    with tempfile.TemporaryDirectory() as tmp:
        server = ServeProcess(EMBEDDED, *AGORA, tmp=Path(tmp))
        try:
            return record(server.url)
        finally:
            server.stop()


def as_text(fixture: dict) -> str:
    """One step a line, each as compact as the server's own frames."""
    steps = ",\n".join("  " + json.dumps(step, ensure_ascii=False, separators=(",", ":")) for step in fixture["steps"])
    return f'{{\n "about": {json.dumps(fixture["about"], ensure_ascii=False)},\n "steps": [\n{steps}\n ]\n}}\n'


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    for name, fixture in recorded().items():
        (FIXTURES / name).write_text(as_text(fixture), encoding="utf-8")
        print(f"wrote {FIXTURES / name}: {len(fixture['steps'])} steps")


if __name__ == "__main__":
    main()
