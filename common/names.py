"""The file name a sender offers in its SYN (docs/PROTOCOL.md §9), checked.

Pure: the rules a name must follow to be used as a plain file name inside
the server's directory, decided on the bytes alone.  The server still
resolves the path and checks where it lands (receiver/names.py), because a
string test cannot see a symbolic link already in the directory.
"""

from __future__ import annotations

import unicodedata

#: The longest name accepted, in bytes of UTF-8 (a file name's limit on
#: Linux file systems, NAME_MAX).
MAX_NAME_BYTES = 255

#: Invisible characters that reorder what a person reads (the "Trojan
#: source" characters, Unicode bidirectional embeddings, overrides and
#: isolates): a name shown in a log must read as what it is.
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


class BadName(ValueError):
    """A name that is not a plain base name; ``str()`` says which rule it breaks."""


def check_name(raw: bytes | bytearray | memoryview) -> str:
    """The name ``raw`` spells, if it is a plain base name; else BadName.

    Rules: 1 to 255 bytes of valid UTF-8; no ``/``, ``\\``, NUL or other
    control character (Unicode category Cc), no line or paragraph
    separator, no bidirectional control; not ``.`` or ``..``; no leading
    dot (hidden files, and the server's own temporary files, start with
    one); no leading or trailing white space."""
    data = bytes(raw)
    if not data:
        raise BadName("the name is empty")
    if len(data) > MAX_NAME_BYTES:
        raise BadName(f"the name is {len(data)} bytes long, at most {MAX_NAME_BYTES} allowed")
    try:
        name = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadName("the name is not valid UTF-8") from None
    if name in (".", ".."):
        raise BadName(f"the name is {name!r}")
    if "/" in name or "\\" in name:
        raise BadName("the name holds a path separator (/ or \\)")
    for ch in name:
        cat = unicodedata.category(ch)
        if cat == "Cc" or cat in ("Zl", "Zp") or ch in _BIDI_CONTROLS or ch == "\ufeff":
            raise BadName(f"the name holds a control character (U+{ord(ch):04X})")
        if cat == "Cs":  # (strict UTF-8 never yields one; a str argument might)
            raise BadName("the name holds a surrogate")
    if name.startswith("."):
        raise BadName("the name starts with a dot")
    if name != name.strip():
        raise BadName("the name starts or ends with white space")
    return name


def shown(raw: bytes | bytearray | memoryview, limit: int = 60) -> str:
    """A refused name as a log line may show it: printable ASCII as is,
    everything else escaped, cut at ``limit`` characters."""
    text = bytes(raw).decode("ascii", "backslashreplace")
    text = "".join(ch if " " <= ch <= "~" else f"\\x{ord(ch):02x}" for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."
