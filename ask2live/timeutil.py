"""UTC times: parsed from ISO 8601 with a zone at the edge, stored as naive UTC."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_iso(text: str) -> datetime | None:
    """An ISO 8601 time that names its zone, as aware UTC; None if it is not one."""
    try:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            return None
        return value.astimezone(timezone.utc)
    except (TypeError, ValueError, OverflowError):  # OverflowError: outside years 1-9999 in UTC
        return None


def from_db(value: object) -> datetime | None:
    """A DATETIME column (a datetime from MySQL, text from SQLite) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
