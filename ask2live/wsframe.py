"""WebSocket frames built once per broadcast (RFC 6455 §5.2), then written as bytes to
every socket of the room: the per-client cost is one buffered write, not an encode and a
frame build each. Server frames are unmasked; we never compress (per-message deflate
would make each client's frame different)."""

from __future__ import annotations

import struct

FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        return bytes((FIN_TEXT, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", FIN_TEXT, 126, length) + payload
    return struct.pack("!BBQ", FIN_TEXT, 127, length) + payload


def frame_payload(frame: bytes) -> bytes:
    """The payload of a frame built by ``text_frame`` (the benchmark baseline writes it
    again through Tornado's write_message)."""
    length = frame[1]
    return frame[2 + (2 if length == 126 else 8 if length == 127 else 0):]
