"""Agora voice: RTC and RTM tokens for a session's channel.

Agora tokens cannot be revoked, and a subscriber token only stops a user publishing when
the Agora project has co-host authentication on. So a publisher token lives for minutes
and is renewed over the socket only while the host's grant holds; everyone else gets a
subscriber token. Operators: enable co-host authentication in the Agora console.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from agora_token_builder import RtcTokenBuilder, RtmTokenBuilder
from agora_token_builder.RtcTokenBuilder import Role_Publisher, Role_Subscriber

from .errors import Unavailable
from .models import User

# Five minutes: a revoked speaker can keep publishing at most this long (clients renew
# a minute before expiry, over the socket, and only get a new publisher token while the
# grant holds).
PUBLISHER_TOKEN_TTL = 300
# Listening rights are harmless; an hour spares reconnects through a long session.
SUBSCRIBER_TOKEN_TTL = 3600
RTM_ROLE_USER = 1


@dataclass(frozen=True)
class Voice:
    app_id: str | None
    app_certificate: str | None

    @property
    def configured(self) -> bool:
        return bool(self.app_id and self.app_certificate)

    @staticmethod
    def channel(session_id: int) -> str:
        return f"ask2live-session-{session_id}"

    def tokens(self, session_id: int, user: User, publisher: bool) -> dict:
        if not self.configured:
            raise Unavailable("voice_not_configured", "Voice is not configured on this server.")
        ttl = PUBLISHER_TOKEN_TTL if publisher else SUBSCRIBER_TOKEN_TTL
        expires_at = int(time.time()) + ttl
        channel = self.channel(session_id)
        role = Role_Publisher if publisher else Role_Subscriber
        rtc = RtcTokenBuilder.buildTokenWithUid(self.app_id, self.app_certificate, channel, user.id, role, expires_at)
        rtm = RtmTokenBuilder.buildToken(self.app_id, self.app_certificate, str(user.id), RTM_ROLE_USER, expires_at)
        return {
            "app_id": self.app_id,
            "channel": channel,
            "uid": user.id,
            "rtc_token": rtc,
            "rtm_token": rtm,
            "role": "publisher" if publisher else "subscriber",
            "expires_at": expires_at,
        }
