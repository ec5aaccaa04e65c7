"""Which language a run speaks when --lang is not given (stdlib only: imported at start-up)."""

from __future__ import annotations

import os
from collections.abc import Mapping

LANGS = ("en", "zh")
# The locale variables that choose the language of messages, first one set wins (POSIX).
LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")


def locale_lang(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale asks for when neither --lang nor TAIZHANG_LANG is given.

    The first of LC_ALL, LC_MESSAGES, LANG that is set and not empty decides (as for any
    program): `zh_CN.UTF-8`, `zh_TW`, `zh` → zh; anything else (`C`, `en_US.UTF-8`) → en."""
    env = os.environ if environ is None else environ
    for name in LOCALE_VARS:
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def chosen_lang(environ: Mapping[str, str] | None = None) -> str:
    """--lang's value when the option is not given: TAIZHANG_LANG, else the locale."""
    env = os.environ if environ is None else environ
    return env.get("TAIZHANG_LANG") or locale_lang(env)
