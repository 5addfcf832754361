"""The API description and a health check."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST

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


class MetricsHandler(ApiHandler):
    """Prometheus text exposition. Unauthenticated, like every exporter: keep it off the
    public address (the nginx example only proxies /api and /ws)."""

    requires_login = False
    route_name = "metrics"

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)

    def get(self) -> None:
        self.finish(self.services.metrics.exposition())
