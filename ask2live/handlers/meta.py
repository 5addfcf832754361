"""The API description and a health check."""

from __future__ import annotations

from pathlib import Path

from .base import ApiHandler

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.json"


class OpenApiHandler(ApiHandler):
    requires_login = False

    def get(self) -> None:
        self.finish(OPENAPI_FILE.read_bytes())


class HealthHandler(ApiHandler):
    requires_login = False

    async def get(self) -> None:
        self.send({"ok": True, "store": self.services.store.engine.name})
