"""Agora voice tokens with voice configured, on both set-ups: POST /api/sessions/{id}/voice/token,
the socket's voice_token frame, and the tokens a grant or revoke sends to the grantee alone.
Tokens are decoded with agora_token_builder and checked against the app id, certificate,
channel and uid (tests/test_room_commands.py covers the server without Agora)."""

from __future__ import annotations

import base64
import time
from zlib import crc32

import pytest
from agora_token_builder.AccessToken import (AccessToken, kJoinChannel, kPublishAudioStream,
                                             kPublishDataStream, kPublishVideoStream, kRtmLogin, unPackContent)

from conftest import make_config
from roomclient import live_session

pytestmark = pytest.mark.gen_test

APP_ID = "0" * 31 + "1"
APP_CERTIFICATE = "a" * 32
PUBLISH = {kPublishAudioStream, kPublishVideoStream, kPublishDataStream}


@pytest.fixture
def config(setup, tmp_path, mysql_url):
    return make_config(setup, tmp_path, mysql_url, agora_app_id=APP_ID, agora_app_certificate=APP_CERTIFICATE)


def privileges(token: str, channel: str, uid: str) -> dict[int, int]:
    """The token's privileges (privilege → expiry), after checking that it is ours: this
    app id, signed with this certificate, for this channel and uid."""
    assert token.startswith("006" + APP_ID), token
    parsed = AccessToken()
    assert parsed.fromString(token)
    _, crc_channel, crc_uid, _ = unPackContent(base64.b64decode(token[3 + len(APP_ID):]))
    assert crc_channel == crc32(channel.encode()) & 0xFFFFFFFF
    assert crc_uid == crc32(uid.encode()) & 0xFFFFFFFF
    rebuilt = AccessToken(APP_ID, APP_CERTIFICATE, channel, uid)
    rebuilt.salt, rebuilt.ts, rebuilt.messages = parsed.salt, parsed.ts, dict(parsed.messages)
    assert rebuilt.build() == token, "not signed with the app certificate for this channel and uid"
    return dict(parsed.messages)


def check_tokens(body: dict, sid: int, uid: int, role: str) -> None:
    """A voice token answer (REST or frame): fields, and RTC/RTM tokens that say the same."""
    channel = f"ask2live-session-{sid}"
    assert body["app_id"] == APP_ID and body["channel"] == channel and body["uid"] == uid
    assert body["role"] == role
    ttl = 300 if role == "publisher" else 3600
    assert abs(body["expires_at"] - (time.time() + ttl)) < 30
    rtc = privileges(body["rtc_token"], channel, str(uid))
    expected = {kJoinChannel} | (PUBLISH if role == "publisher" else set())
    assert set(rtc) == expected, rtc
    assert set(rtc.values()) == {body["expires_at"]}
    # RTM tokens carry the user account where RTC tokens carry the channel, and no uid.
    rtm = privileges(body["rtm_token"], str(uid), "")
    assert rtm == {kRtmLogin: body["expires_at"]}


async def no_voice_token_so_far(*sockets) -> None:
    """None of these sockets has been sent a voice token: none among every frame read, up
    to a barrier (whose own answer, a token, is not among them)."""
    for s in sockets:
        await s.barrier()
        assert not [f for f in s.frames if f["type"] == "voice_token"], s.frames


async def rest_token(account, sid) -> dict:
    r = await account.post(f"/api/sessions/{sid}/voice/token")
    assert r.status == 200, r
    return r.json


# ---------------------------------------------------------------------------- REST


async def test_the_host_gets_a_publisher_token(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    assert sockets[0].welcome["voice"] == {"configured": True}
    check_tokens(await rest_token(host, sid), sid, host.id, "publisher")


async def test_a_guest_gets_a_subscriber_token(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    check_tokens(await rest_token(alice, sid), sid, alice.id, "subscriber")


async def test_a_granted_guest_gets_a_publisher_token_and_a_subscriber_one_after_revoke(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    await sockets[0].next("voice_granted")
    check_tokens(await rest_token(alice, sid), sid, alice.id, "publisher")
    await sockets[0].send({"type": "revoke_voice", "user_id": alice.id})
    await sockets[0].next("voice_revoked")
    check_tokens(await rest_token(alice, sid), sid, alice.id, "subscriber")


async def test_a_session_not_live_is_409_not_live(api, rooms):
    host = await api.user()
    alice = await api.user()
    sid = (await host.session())["id"]
    for account in (host, alice):
        r = await account.post(f"/api/sessions/{sid}/voice/token")
        assert r.status == 409 and r.error_code == "not_live", r
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    assert (await host.post(f"/api/sessions/{sid}/end")).status == 200
    r = await host.post(f"/api/sessions/{sid}/voice/token")
    assert r.status == 409 and r.error_code == "not_live", r


async def test_an_unknown_session_is_404(api):
    alice = await api.user()
    r = await alice.post("/api/sessions/987654321/voice/token")
    assert r.status == 404 and r.error_code == "session_not_found", r


async def test_no_sign_in_is_401(api):
    host = await api.user()
    sid = (await host.session())["id"]
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    r = await api.call("POST", f"/api/sessions/{sid}/voice/token")
    assert r.status == 401 and r.error_code == "not_signed_in", r
    r = await api.call("POST", f"/api/sessions/{sid}/voice/token", token="made-up")
    assert r.status == 401, r


# ---------------------------------------------------------------------------- over the socket


async def test_a_grant_sends_a_publisher_token_to_the_grantee_only(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    # The room hears of the grant first; then the grantee alone gets its token.
    for s in sockets:
        await s.next("voice_granted")
    frame = await sockets[1].next("voice_token")
    check_tokens(frame, sid, alice.id, "publisher")
    await no_voice_token_so_far(sockets[0], sockets[2])


async def test_a_revoke_sends_the_grantee_a_subscriber_token_only(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    await sockets[1].next("voice_token")
    await sockets[0].send({"type": "revoke_voice", "user_id": alice.id})
    for s in sockets:
        await s.next("voice_revoked")
    check_tokens(await sockets[1].next("voice_token"), sid, alice.id, "subscriber")
    await no_voice_token_so_far(sockets[0], sockets[2])


async def test_the_voice_token_frame_returns_the_callers_token(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "voice_token", "client_msg_id": "h"})
    await sockets[1].send({"type": "voice_token", "client_msg_id": "g"})
    check_tokens(await sockets[0].next("voice_token", client_msg_id="h"), sid, host.id, "publisher")
    check_tokens(await sockets[1].next("voice_token", client_msg_id="g"), sid, alice.id, "subscriber")
    # Each got its own token only.
    for s, client_msg_id in zip(sockets, ("h", "g")):
        await s.barrier()
        assert [f["client_msg_id"] for f in s.frames if f["type"] == "voice_token"] == [client_msg_id]


async def test_a_reconnecting_grantee_renews_a_publisher_token_over_the_socket(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    await sockets[1].next("voice_granted")
    sockets[1].close()
    again = await rooms(alice, sid)
    assert again.welcome["you"]["role"] == "speaker"
    await again.send({"type": "voice_token", "client_msg_id": "renew"})
    check_tokens(await again.next("voice_token", client_msg_id="renew"), sid, alice.id, "publisher")


async def test_the_voice_token_frame_before_the_start_is_not_live(api, rooms):
    host = await api.user()
    alice = await api.user()
    sid = (await host.session())["id"]
    room = await rooms(alice, sid)
    await room.send({"type": "voice_token", "client_msg_id": "early"})
    await room.error("not_live", "early")
    await no_voice_token_so_far(room)
