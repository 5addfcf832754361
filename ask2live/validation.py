"""Reading fields out of a decoded JSON body: wrong shape is 400, wrong value is 422."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import text
from .errors import BadRequest, Invalid
from .timeutil import parse_iso

_MISSING = object()


class Fields:
    def __init__(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BadRequest("invalid_body", "The request body must be a JSON object.")
        self._body = body

    def __contains__(self, name: str) -> bool:
        return name in self._body

    def _get(self, name: str, required: bool) -> Any:
        value = self._body.get(name, _MISSING)
        if value is _MISSING and required:
            raise BadRequest("missing_field", f"The field {name!r} is required.")
        return value

    def text(self, name: str, *, max_length: int, required: bool = True, allow_empty: bool = False,
             multiline: bool = False, default: str | None = None) -> str | None:
        """A string under the text rules of text.clean(): NFC, trimmed, no control or bidi
        characters, something visible in it; its length counts code points, as utf8mb4 does."""
        value = self._get(name, required)
        if value is _MISSING or (value is None and not required):
            return default
        if not isinstance(value, str):
            raise BadRequest("invalid_field", f"The field {name!r} must be a string.")
        return text.clean(value, name=name, max_length=max_length, multiline=multiline, allow_empty=allow_empty)

    def string(self, name: str, *, max_length: int) -> str:
        """A string taken as sent (a username to look up): only its length is checked."""
        value = self._get(name, True)
        if not isinstance(value, str):
            raise BadRequest("invalid_field", f"The field {name!r} must be a string.")
        if not value:
            raise Invalid("empty_field", f"The field {name!r} must not be empty.")
        if len(value) > max_length:
            raise Invalid("too_long", f"The field {name!r} is longer than {max_length} characters.")
        return value

    def secret(self, name: str, *, min_length: int, max_length: int) -> str:
        """A password: taken as typed, never trimmed."""
        value = self._get(name, True)
        if not isinstance(value, str):
            raise BadRequest("invalid_field", f"The field {name!r} must be a string.")
        if not min_length <= len(value) <= max_length:
            raise Invalid("invalid_password", f"A password is {min_length} to {max_length} characters.")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise BadRequest("invalid_field", f"The field {name!r} must be true or false.")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int, required: bool = True,
                nullable: bool = False) -> int | None:
        value = self._get(name, required)
        if value is _MISSING or (value is None and nullable):
            return None
        # 19303.0 is an integer to JSON Schema (and so to the OpenAPI document); 2.5 is not.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest("invalid_field", f"The field {name!r} must be an integer.")
        if not minimum <= value <= maximum:
            raise Invalid("out_of_range", f"The field {name!r} must be between {minimum} and {maximum}.")
        return value

    def time(self, name: str, *, required: bool = True) -> datetime | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            raise BadRequest("invalid_field", f"The field {name!r} must be an ISO 8601 string.")
        parsed = parse_iso(value)
        if parsed is None:
            raise Invalid("invalid_time", f"The field {name!r} must be an ISO 8601 time with a zone, "
                          "e.g. 2026-12-01T19:00:00+09:00.")
        return parsed

    def string_list(self, name: str, *, max_items: int, max_length: int) -> list[str] | None:
        value = self._get(name, False)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadRequest("invalid_field", f"The field {name!r} must be a list of strings.")
        if len(value) > max_items:
            raise Invalid("too_many", f"The field {name!r} holds at most {max_items} items.")
        try:
            items = [text.clean(v, name=f"{name}[{i}]", max_length=max_length) for i, v in enumerate(value)]
        except Invalid as e:
            if e.code == "invalid_characters":
                raise
            raise Invalid("invalid_item", f"Each item of {name!r} must be 1 to {max_length} characters, "
                                          "something visible among them.") from None
        return list(dict.fromkeys(items))


def query_int(value: str | None, name: str, *, default: int, minimum: int, maximum: int) -> int:
    if value is None:
        return default  # absent; present but empty ("limit=") is not an integer
    try:
        number = int(value)
    except ValueError:
        raise BadRequest("invalid_parameter", f"The parameter {name!r} must be an integer.") from None
    if not minimum <= number <= maximum:
        raise Invalid("out_of_range", f"The parameter {name!r} must be between {minimum} and {maximum}.")
    return number
