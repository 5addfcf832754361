"""POST /api/sessions/{id}/voice/token: Agora tokens for the session's voice channel."""

from __future__ import annotations

from ..errors import Conflict, Unavailable
from .base import ApiHandler, int_id


class VoiceTokenHandler(ApiHandler):
    async def post(self, session_id: str) -> None:
        session = await self.services.schedule.get(int_id(session_id), self.user)
        if not self.services.voice.configured:
            raise Unavailable("voice_not_configured", "Voice is not configured on this server.")
        if session.status != "live":
            raise Conflict("not_live", "Voice opens when the session goes live.")
        self.send(await self.services.rooms.voice_tokens(session, self.user))
