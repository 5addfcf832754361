"""The rules for text people type, in one place: REST fields (validation.Fields) and the
room's chat and question frames (protocol) both call clean(), and the OpenAPI document's
patterns are pattern() (tests/test_text.py checks that they are the same string).

What is refused, and why:
- C0 and C1 control characters and DEL, except the tab (white space, as in pasted text)
  and, in a multi-line field, the newline (a carriage return there, alone or before a
  newline, becomes a newline). They have no printed form, and JSON spells each as six
  characters, which would overflow a stored list on MySQL.
- The explicit bidirectional controls: embeddings and overrides (U+202A..U+202E) and
  isolates (U+2066..U+2069). One right-to-left override in a display name reverses the
  text of the page around it. The implicit marks (LRM, RLM, ALM) stay: they act like a
  letter of their direction, cannot reverse anything, and right-to-left writers use them.
- Text with nothing visible in it: only spaces, zero-width characters, variation
  selectors, Hangul fillers and the like (INVISIBLE) is an empty field. Inside visible text
  they are fine: a zero-width joiner holds 👩‍💻 together.

What is changed: the text is NFC-normalised (decomposed Hangul jamo become syllables, as a
Mac's file names and some keyboards send them) and trimmed of white space at both ends.

Lengths count code points, as utf8mb4 columns do, and apply to the text as sent (what the
OpenAPI document's maxLength promises) and again to the text as stored.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import Invalid

# Ranges of code points, inclusive.
Ranges = tuple[tuple[int, int], ...]

TAB, NEWLINE, CARRIAGE_RETURN = 0x09, 0x0A, 0x0D

# The C0 controls but the tab and the newline, DEL and the C1 controls (NEL, U+0085,
# among them, which Python's str.strip() would have taken for white space).
CONTROLS: Ranges = ((0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F))
# Embeddings and overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI, FSI, PDI).
BIDI_CONTROLS: Ranges = ((0x202A, 0x202E), (0x2066, 0x2069))
# Line and paragraph separators: refused where a field is one line, like the newline.
LINE_SEPARATORS: Ranges = ((0x2028, 0x2029),)
# White space (what the text is trimmed of), beside the newline and the separators.
SPACES: Ranges = ((TAB, TAB), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x202F, 0x202F),
                  (0x205F, 0x205F), (0x3000, 0x3000))
# Characters with no visible form of their own. Listed by hand, not read from
# unicodedata, so that the rule (and the OpenAPI pattern made from it) does not change
# with the Python that runs the server.
INVISIBLE: Ranges = (
    (0x00AD, 0x00AD),    # soft hyphen
    (0x034F, 0x034F),    # combining grapheme joiner
    (0x061C, 0x061C),    # Arabic letter mark
    (0x115F, 0x1160),    # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),    # Khmer inherent vowels
    (0x180B, 0x180F),    # Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),    # zero-width space, non-joiner, joiner; LRM, RLM
    (0x2060, 0x2064),    # word joiner, invisible operators
    (0x206A, 0x206F),    # deprecated format characters
    (0x2800, 0x2800),    # braille blank, a favourite for "empty" names
    (0x3164, 0x3164),    # Hangul filler, likewise
    (0xFE00, 0xFE0F),    # variation selectors
    (0xFEFF, 0xFEFF),    # zero-width no-break space (byte order mark)
    (0xFFA0, 0xFFA0),    # halfwidth Hangul filler
    (0x1D173, 0x1D17A),  # musical format characters
    (0xE0000, 0xE007F),  # tags
    (0xE0100, 0xE01EF),  # variation selectors supplement
)

_BIDI_NAMES = {0x202A: "a left-to-right embedding", 0x202B: "a right-to-left embedding",
               0x202C: "a pop directional formatting", 0x202D: "a left-to-right override",
               0x202E: "a right-to-left override", 0x2066: "a left-to-right isolate",
               0x2067: "a right-to-left isolate", 0x2068: "a first strong isolate",
               0x2069: "a pop directional isolate"}


def _merged(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return tuple(out)


def _class(ranges: Ranges) -> str:
    """The inside of a regex character class matching these ranges. BMP code points are
    written as \\uXXXX escapes; the few above it as the characters themselves (a JSON
    document escapes them again), which Python's re and a JavaScript RegExp with the u
    flag read alike."""
    def one(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)

    return "".join(one(lo) if lo == hi else f"{one(lo)}-{one(hi)}" for lo, hi in _merged(ranges))


def _refused(multiline: bool) -> Ranges:
    breaks: Ranges = () if multiline else ((NEWLINE, NEWLINE), *LINE_SEPARATORS)
    controls = CONTROLS if not multiline else ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F))
    return controls + breaks + BIDI_CONTROLS


def _blank(multiline: bool) -> Ranges:
    """Allowed but not visible: white space (and line breaks where allowed), INVISIBLE."""
    breaks: Ranges = ((NEWLINE, NEWLINE), (CARRIAGE_RETURN, CARRIAGE_RETURN), *LINE_SEPARATORS) if multiline else ()
    return SPACES + breaks + INVISIBLE


def pattern(*, multiline: bool, allow_empty: bool = False) -> str:
    """The JSON Schema pattern of a text field as sent: no refused character and, unless
    it may be empty, at least one visible one."""
    refused = _class(_refused(multiline))
    if allow_empty:
        return f"^[^{refused}]*$"
    return f"^[^{refused}]*[^{_class(_refused(multiline) + _blank(multiline))}][^{refused}]*$"


_REFUSED = {m: re.compile(f"[{_class(_refused(m))}]") for m in (False, True)}
_VISIBLE = {m: re.compile(f"[^{_class(_refused(m) + _blank(m))}]") for m in (False, True)}
_TRIM = "".join(chr(cp) for lo, hi in SPACES + ((NEWLINE, NEWLINE), *LINE_SEPARATORS) for cp in range(lo, hi + 1))


def _describe(char: str, name: str) -> str:
    cp = ord(char)
    if cp in _BIDI_NAMES:
        what = f"{_BIDI_NAMES[cp]} (U+{cp:04X}), which would reorder the text around it"
    elif cp == NEWLINE or cp in (0x2028, 0x2029):
        return f"The field {name!r} is one line: it must not contain a line break."
    else:
        what = f"the control character U+{cp:04X}"
    return f"The field {name!r} contains {what}."


def clean(value: str, *, name: str, max_length: int, multiline: bool = False, allow_empty: bool = False) -> str:
    """The text as it is kept: checked, NFC-normalised, trimmed. Raises Invalid (422):
    too_long, invalid_characters or empty_field."""
    if len(value) > max_length:
        raise Invalid("too_long", f"The field {name!r} is longer than {max_length} characters.")
    refused = _REFUSED[multiline].search(value)
    if refused:
        raise Invalid("invalid_characters", _describe(refused.group(), name))
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = unicodedata.normalize("NFC", value).strip(_TRIM)
    if not _VISIBLE[multiline].search(value):
        if allow_empty:
            return ""
        raise Invalid("empty_field", f"The field {name!r} must not be empty (or only invisible characters).")
    if len(value) > max_length:  # NFC very rarely lengthens (composition exclusions such as U+0958)
        raise Invalid("too_long", f"The field {name!r} is longer than {max_length} characters.")
    return value
