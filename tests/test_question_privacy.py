"""What a question leaves behind in the live room.

An anonymous question never names its author: not when it is asked, edited, deleted or
voted for by its author, not in any later welcome, not in the cold store's room events.
And the history a newcomer reads is the room as it is now: a hidden, deleted or edited
question's old text is gone for everyone who joins later, whether the history comes from
the room log or (after the log lost the room) from the cold store."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from conftest import PRODUCTION, db_rows, delete_redis_keys
from roomclient import live_session

pytestmark = pytest.mark.gen_test(timeout=30)


async def written_behind(services: Any) -> None:
    for _ in range(200):
        if await services.rooms.room_log.backlog() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the write-behind did not catch up")


async def test_an_anonymous_authors_own_changes_never_name_them(api, rooms, services):
    sid, (host, author, other), sockets = await live_session(api, rooms, guests=2)
    names = [author.user["username"].encode(), author.user["display_name"].encode()]
    await sockets[1].send({"type": "question", "text": "익명으로 묻습니다", "anonymous": True, "client_msg_id": "q"})
    qid = (await sockets[1].next("question", client_msg_id="q"))["question"]["id"]
    await sockets[1].send({"type": "vote", "question_id": qid, "client_msg_id": "v"})
    await sockets[2].next("question_updated", action="vote")
    r = await author.call("PATCH", f"/api/questions/{qid}", {"text": "익명으로 고쳐 묻습니다"})
    assert r.status == 200, r
    edited = await sockets[2].next("question_updated", action="edit")
    assert edited["user"] is None and edited["role"] is None
    assert (await author.call("DELETE", f"/api/questions/{qid}")).status == 204
    deleted = await sockets[2].next("question_updated", action="delete")
    assert deleted["user"] is None and deleted["role"] is None

    # The author is in the room (their join names them); no event about the question does.
    about = ("question", "question_updated")
    seen = b"".join(orjson.dumps(f) for f in sockets[2].frames if f.get("type") in about)
    newcomer = await rooms(other, sid)
    history = b"".join(orjson.dumps(e) for e in newcomer.welcome["history"] if e["type"] in about)
    await written_behind(services)
    stored = b"".join(r["body"].encode() for r in await db_rows(
        services, "SELECT body FROM room_events WHERE session_id = ? AND type IN (?, ?)", sid, *about))
    assert seen.count(b'"question_updated"') == 3 and stored.count(b'"question_updated"') == 3
    for where, data in (("events", seen), ("welcome history", history), ("cold store", stored)):
        for name in names:
            assert name not in data, (where, name)


async def test_a_newcomers_history_has_no_hidden_deleted_or_superseded_question_text(api, rooms, services, setup):
    sid, (host, guest), sockets = await live_session(api, rooms)
    texts = {}
    for key in ("edited", "hidden", "deleted", "kept"):
        await sockets[1].send({"type": "question", "text": f"{key} 질문 원문", "client_msg_id": key})
        texts[key] = (await sockets[1].next("question", client_msg_id=key))["question"]["id"]
    assert (await guest.call("PATCH", f"/api/questions/{texts['edited']}", {"text": "고친 질문"})).status == 200
    assert (await host.post(f"/api/questions/{texts['hidden']}/hide")).status == 200
    assert (await guest.call("DELETE", f"/api/questions/{texts['deleted']}")).status == 204
    await sockets[0].next("question_updated", action="delete")

    async def check(history: list[dict]) -> None:
        text = orjson.dumps(history).decode()
        for gone in ("edited 질문 원문", "hidden 질문 원문", "deleted 질문 원문"):
            assert gone not in text, gone
        assert "고친 질문" in text and "kept 질문 원문" in text
        # The hidden and deleted questions' last events remain, so a client drops them.
        stubs = [e["question"] for e in history if e["type"] == "question_updated" and e["action"] in ("hide", "delete")]
        assert {"id": texts["hidden"], "hidden": True} in stubs and {"id": texts["deleted"], "deleted": True} in stubs

    await check((await rooms(guest, sid)).welcome["history"])
    if setup == PRODUCTION:
        # Redis loses the room: the history comes back from the cold store, just as clean.
        await written_behind(services)
        delete_redis_keys(services.config.redis_prefix)
        await check((await rooms(guest, sid)).welcome["history"])
