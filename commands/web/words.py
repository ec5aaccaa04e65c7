"""Every word a person reads on a page, from the message catalogue (commands/locale/…/taizhang.po).

Page words are `msgctxt "word"` entries (English → Chinese), as the CLI's printed values are;
messages (errors, refusals) are the catalogue's templates, translated as the CLI translates them.
"""

from __future__ import annotations

from commands import i18n


def word(english: str, lang: str, **values: object) -> str:
    """A word or phrase of a page in `lang`, its `{placeholders}` filled."""
    text = i18n.word(english, lang)
    return text.format(**values) if values else text


def say(english: str, lang: str) -> str:
    """A sentence of a page (the catalogue's words)."""
    return i18n.word(english, lang)


def translate(message: str, lang: str) -> str:
    """A message of the services (a refusal, a malformed field) in `lang`, as the CLI prints it."""
    return i18n.translate(message, lang)
