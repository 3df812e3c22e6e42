"""Control characters in text: find them, describe them, and (when the config asks for it) clean them out.

A control character here is any Unicode "Cc" code point except tab, newline and carriage return: NUL, ESC, DEL,
the C1 codes U+0080-U+009F. They are almost never meant: a NUL usually means binary data or UTF-16 read as
UTF-8, C1 codes mean text decoded with the wrong code page. A model trained on them learns noise, and they break
tools downstream (a NUL ends a C string), so the default is to quarantine such rows (`Reason.CONTROL_CHARS`).
"""

from __future__ import annotations

import re

#: `data.control_chars` choices: set the row aside, or keep it with the characters cleaned out.
CONTROL_CHAR_MODES = ("quarantine", "clean")
# Unicode's "Cc" category is exactly U+0000-U+001F and U+007F-U+009F; tab, newline and CR (U+0009, U+000A,
# U+000D) are ordinary whitespace in text and stay.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SHOWN = 5


def control_chars_in(text: str) -> list[str]:
    """The distinct control characters in `text` (tab, newline and carriage return excluded), in first-seen order."""
    return list(dict.fromkeys(_CONTROL.findall(text)))


def describe(chars: list[str]) -> str:
    """``U+0000 (NUL), U+001B (ESC)``: code points and, where Unicode has one, their short name."""
    shown = ", ".join(_name(c) for c in chars[:_SHOWN])
    return shown + (f" and {len(chars) - _SHOWN} more" if len(chars) > _SHOWN else "")


def clean_control_chars(text: str) -> str:
    """`text` with whitespace-like controls (form feed, vertical tab, U+001C-U+001F, U+0085) turned into spaces
    and every other control character removed.

    Removing rather than spacing keeps words whole where a NUL sits inside one ("ca\\x00rd" -> "card"); the
    whitespace-like ones separate words, so they become the space that `normalise_text` then collapses.
    """
    return _CONTROL.sub(lambda m: " " if m.group().isspace() else "", text)


def _name(char: str) -> str:
    # Control characters have no Unicode name; these are the ones people recognise.
    known = {0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x0B: "VT", 0x0C: "FF", 0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL"}
    code = ord(char)
    return f"U+{code:04X}" + (f" ({known[code]})" if code in known else "")
