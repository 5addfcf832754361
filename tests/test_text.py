"""The text rules (ask2live/text.py) through every door a person's text comes in: sign-up's
display name, a session's title, description and tags, a question over REST, and the
room's chat and question frames, on each set-up. Also: the OpenAPI document's patterns
are the rules' own.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path

import pytest

from ask2live import text
from ask2live.config import Config
from conftest import make_config
from roomclient import live_session

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "ask2live" / "openapi.json"

RLO = "\u202e"  # right-to-left override: "abc" RLO "gpj.exe" shows as "abcexe.jpg"
KOREAN = "안녕하세요, 김민지입니다"
KOREAN_DECOMPOSED = unicodedata.normalize("NFD", KOREAN)
CODER = "👩\u200d💻"  # woman technologist: two emoji held together by a zero-width joiner
FLAG = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"  # Scotland: tag characters

# (text, the error code) for text refused in every field.
REFUSED = [
    (f"admin{RLO}nimda", "invalid_characters"),
    ("left\u2066isolate", "invalid_characters"),
    ("nul\x00byte", "invalid_characters"),
    ("bell\x07", "invalid_characters"),
    ("\x85next line", "invalid_characters"),  # NEL: Python's strip() calls it white space
    ("del\x7f", "invalid_characters"),
    ("\u200b\u200b", "empty_field"),  # zero-width spaces only
    ("\u3164", "empty_field"),  # Hangul filler: the classic blank nickname
    ("\u2800 \ufe0f", "empty_field"),  # braille blank, a space, a variation selector
    ("\u200d", "empty_field"),  # a joiner with nothing to join
]
# (text as sent, text as kept) accepted in every field.
ACCEPTED = [
    (KOREAN, KOREAN),
    (KOREAN_DECOMPOSED, KOREAN),  # NFC: jamo become syllables
    (f"  {CODER} codes  ", f"{CODER} codes"),
    (FLAG, FLAG),
    ("שלום\u200f!", "שלום\u200f!"),  # an RLM (implicit mark) is not an override
    ("tab\tinside", "tab\tinside"),
]


@pytest.fixture
def config(setup, tmp_path, mysql_url):
    # The room test sends some forty frames from one account: past the default rate limits
    # (per connection and, where this version has them, per user).
    unlimited = {"rate_per_second": 1000.0, "rate_burst": 1000.0,
                 "user_rate_per_second": 1000.0, "user_rate_burst": 1000.0}
    return make_config(setup, tmp_path, mysql_url,
                       **{k: v for k, v in unlimited.items() if k in Config.__dataclass_fields__})


def assert_refused(r, code):
    assert (r.status, r.error_code) == (422, code), r
    assert r.json["error"]["message"]


# ------------------------------------------------------------------ REST


@pytest.mark.gen_test
@pytest.mark.parametrize("sent, code", REFUSED)
async def test_display_name_refuses(api, sent, code):
    r = await api.call("POST", "/api/users", {"username": "someone", "password": "password 123",
                                              "display_name": sent})
    assert_refused(r, code)
    assert (await api.call("POST", "/api/login", {"username": "someone", "password": "password 123"})).status == 401


@pytest.mark.gen_test
async def test_display_name_error_says_what_is_wrong(api):
    r = await api.call("POST", "/api/users", {"username": "someone", "password": "password 123",
                                              "display_name": f"x{RLO}y"})
    assert "U+202E" in r.json["error"]["message"] and "override" in r.json["error"]["message"]


@pytest.mark.gen_test
@pytest.mark.parametrize("sent, kept", ACCEPTED)
async def test_display_name_keeps(api, sent, kept):
    r = await api.call("POST", "/api/users", {"username": "someone", "password": "password 123",
                                              "display_name": sent})
    assert r.status == 201, r
    assert r.json["user"]["display_name"] == kept


@pytest.mark.gen_test
async def test_one_line_fields_refuse_line_breaks(api):
    host = await api.user()
    for field in ("title", "tags"):
        for brk in ("\n", "\r", "\u2028"):
            value = f"two{brk}lines"
            body = {"title": "t", "starts_at": "2099-01-01T10:00:00Z", field: [value] if field == "tags" else value}
            r = await host.post("/api/sessions", body)
            assert_refused(r, "invalid_characters")
    r = await api.call("POST", "/api/users", {"username": "someone", "password": "password 123",
                                              "display_name": "two\nlines"})
    assert_refused(r, "invalid_characters")


@pytest.mark.gen_test
@pytest.mark.parametrize("sent, code", REFUSED)
async def test_session_title_description_and_tags_refuse(api, sent, code):
    host = await api.user()
    base = {"title": "t", "starts_at": "2099-01-01T10:00:00Z"}
    assert_refused(await host.post("/api/sessions", {**base, "title": sent}), code)
    assert_refused(await host.post("/api/sessions", {**base, "tags": ["ok", sent]}),
                   "invalid_characters" if code == "invalid_characters" else "invalid_item")
    if code == "invalid_characters":  # a description may be empty: invisible-only is ""
        assert_refused(await host.post("/api/sessions", {**base, "description": sent}), code)
    sid = (await host.session())["id"]
    assert_refused(await host.call("PATCH", f"/api/sessions/{sid}", {"title": sent}), code)


@pytest.mark.gen_test
async def test_session_fields_are_normalised_and_a_description_keeps_its_lines(api):
    host = await api.user()
    session = await host.session(title=KOREAN_DECOMPOSED, description=f"첫 줄\r\n{CODER} 둘째 줄\r셋째",
                                 tags=[KOREAN_DECOMPOSED, CODER])
    assert session["title"] == KOREAN
    assert session["description"] == f"첫 줄\n{CODER} 둘째 줄\n셋째"
    assert session["tags"] == [KOREAN, CODER]
    blank = await host.session(description="\u200b \n")
    assert blank["description"] == ""


@pytest.mark.gen_test
@pytest.mark.parametrize("sent, code", REFUSED)
async def test_question_refuses(api, sent, code):
    host = await api.user()
    sid = (await host.session())["id"]
    assert_refused(await host.post(f"/api/sessions/{sid}/questions", {"text": sent}), code)
    qid = (await host.question(sid))["id"]
    assert_refused(await host.call("PATCH", f"/api/questions/{qid}", {"text": sent}), code)


@pytest.mark.gen_test
@pytest.mark.parametrize("sent, kept", ACCEPTED + [("line one\r\nline two", "line one\nline two")])
async def test_question_keeps(api, sent, kept):
    host = await api.user()
    sid = (await host.session())["id"]
    question = await host.question(sid, sent)
    assert question["text"] == kept
    assert (await host.get(f"/api/questions/{question['id']}")).json["question"]["text"] == kept


# ------------------------------------------------------------------ the room


@pytest.mark.gen_test
async def test_chat_and_room_questions_follow_the_same_rules(api, rooms):
    sid, people, (host_room, guest_room) = await live_session(api, rooms)
    for i, (sent, code) in enumerate(REFUSED):
        await guest_room.send({"type": "chat", "text": sent, "client_msg_id": f"c{i}"})
        await guest_room.error(code, f"c{i}")
        await guest_room.send({"type": "question", "text": sent, "client_msg_id": f"q{i}"})
        await guest_room.error(code, f"q{i}")
    await host_room.expect_none("chat", "question")
    for i, (sent, kept) in enumerate(ACCEPTED):
        echo = await guest_room.chat(sent, f"ok{i}")
        assert echo["text"] == kept
        assert (await host_room.next("chat", client_msg_id=f"ok{i}"))["text"] == kept
    await guest_room.send({"type": "question", "text": KOREAN_DECOMPOSED, "client_msg_id": "qk"})
    assert (await guest_room.next("question", client_msg_id="qk"))["question"]["text"] == KOREAN
    multi = await guest_room.chat("one\r\ntwo", "multi")
    assert multi["text"] == "one\ntwo"


# ------------------------------------------------------------------ the document


def text_fields(node, path=""):
    """Every string schema in the document that carries a text pattern, by path."""
    found = {}
    if isinstance(node, dict):
        if node.get("type") in ("string", ["string", "null"]) and "pattern" in node:
            found[path] = node["pattern"]
        for key, value in node.items():
            found.update(text_fields(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.update(text_fields(value, f"{path}/{i}"))
    return found


def test_the_document_s_text_patterns_are_the_rules_own():
    doc = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    patterns = text_fields(doc)
    rules = {text.pattern(multiline=False), text.pattern(multiline=True),
             text.pattern(multiline=True, allow_empty=True)}
    # A pattern about bidi controls is one of the rules, not a copy that drifted.
    assert {v for v in patterns.values() if "\\u202e" in v} == rules
    # Each field the server reads as text carries its rule.
    ops = doc["paths"]
    body = lambda path, method: ops[path][method]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    for name in ("NewSession", "SessionChanges"):
        props = doc["components"]["schemas"][name]["properties"]
        assert props["title"]["pattern"] == text.pattern(multiline=False)
        assert props["tags"]["items"]["pattern"] == text.pattern(multiline=False)
        assert props["description"]["pattern"] == text.pattern(multiline=True, allow_empty=True)
    assert body("/api/users", "post")["display_name"]["pattern"] == text.pattern(multiline=False)
    assert body("/api/sessions/{session_id}/questions", "post")["text"]["pattern"] == text.pattern(multiline=True)
    assert body("/api/questions/{question_id}", "patch")["text"]["pattern"] == text.pattern(multiline=True)


@pytest.mark.parametrize("multiline", [False, True])
def test_the_pattern_agrees_with_the_rules(multiline):
    from ask2live.errors import Invalid

    samples = [s for s, _ in REFUSED + ACCEPTED] + ["a\nb", "a\r\nb", " ", "", "x", "\u00a0y\u00a0", "\u2028"]
    for sample in samples:
        try:
            text.clean(sample, name="f", max_length=100, multiline=multiline)
            accepted = True
        except Invalid:
            accepted = False
        assert bool(re.fullmatch(text.pattern(multiline=multiline), sample)) == accepted, repr(sample)


# ------------------------------------------------------------------ the page

CHROMIUM = os.environ.get("ASK2LIVE_TEST_CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 390, "height": 800}
# Sixty-four of the widest letter, no space: the longest display name there is.
LONG_NAME = "W" * 64


@pytest.mark.gen_test(timeout=60)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
async def test_a_long_display_name_does_not_widen_the_page(api, setup):
    if setup != "embedded":
        pytest.skip("CSS: one set-up is enough")
    from playwright.async_api import async_playwright

    host = await api.user(display_name=LONG_NAME)
    sid = (await host.session(title="Long names"))["id"]
    await host.question(sid, "A question")
    base = api.base_url.replace("localhost", "127.0.0.1")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context(viewport=PHONE)
            await context.add_cookies([{"name": "ask2live_token", "value": host.token, "url": base}])
            page = await context.new_page()
            # The session list's "Hosted by", the session page's head and its cue sheet.
            for route, shown in (("#/", ".card-meta"), (f"#/sessions/{sid}", ".q-meta")):
                await page.goto(f"{base}/{route}")
                await page.locator(shown).filter(has_text=LONG_NAME[:20]).first.wait_for()
                widths = await page.evaluate("""() => ({
                    page: document.documentElement.scrollWidth,
                    names: [...document.querySelectorAll('body *')]
                        .filter(e => e.children.length === 0 && e.textContent.includes('WWWWWWWW'))
                        .map(e => e.getBoundingClientRect().right)})""")
                assert widths["page"] <= PHONE["width"], (route, widths)
                assert widths["names"] and max(widths["names"]) <= PHONE["width"], (route, widths)
        finally:
            await browser.close()
