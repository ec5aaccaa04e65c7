"""Error lines that stay one short, printable line whatever the input held.

Hostile input reaches messages: a 100k-character option value, a terminal escape
sequence, a right-to-left override, a lone surrogate from undecodable argv bytes.
`one_line` flattens whitespace, shows invisible and control characters as
escapes (`\\x1b`, `\\u202e`), shortens every very long word and bounds the line,
so an error still names the field and the value without flooding a terminal or
forging a second log line. `shown` is the short repr of a value for a message.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LINE = 1000
MAX_WORD = 120
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_LONG_WORD = re.compile(rf"\S{{{MAX_WORD + 1},}}")


def _escape(char: str) -> str:
    if unicodedata.category(char) not in _UNSAFE_CATEGORIES:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _shorten_word(match: re.Match[str]) -> str:
    word = match.group()
    return f"{word[:60]}…({len(word)} characters)…{word[-12:]}"


def one_line(text: object, limit: int = MAX_LINE) -> str:
    """`text` as one printable line of at most about `limit` characters."""
    flat = " ".join(str(text).split())
    if not flat.isprintable():
        flat = "".join(_escape(char) for char in flat)
    flat = _LONG_WORD.sub(_shorten_word, flat)
    if len(flat) > limit:
        head, tail = flat[: limit * 3 // 4], flat[-(limit // 5) :]
        flat = f"{head} …({len(flat) - len(head) - len(tail)} characters)… {tail}"
    return flat


def shown(value: object, limit: int = 60) -> str:
    """The repr of a value for an error message, cut after `limit` characters."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"…({len(value)} characters)"
    return repr(value)
