"""--lang when not given: TAIZHANG_LANG, else the locale (LC_ALL, LC_MESSAGES, LANG, first set wins)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from commands.cli import cli
from commands.lang import chosen_lang, locale_lang

LOCALE = ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE", "TAIZHANG_LANG")


def test_the_test_run_does_not_inherit_the_machines_locale() -> None:
    assert not any(os.environ.get(name) for name in ("LC_ALL", "LC_MESSAGES", "LANG"))


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW.Big5"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C"}, "en"),
        ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_MESSAGES": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LC_ALL": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "en"),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "C"}, "zh"),
        ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh"),  # set but empty counts as unset
        ({"TAIZHANG_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"TAIZHANG_LANG": "zh", "LC_ALL": "C"}, "zh"),
    ],
)
def test_precedence(env: dict[str, str], lang: str) -> None:
    assert chosen_lang(env) == lang
    if "TAIZHANG_LANG" not in env:
        assert locale_lang(env) == lang


def _run(args: list[str], **env: str | None) -> tuple[int, str]:
    clean: dict[str, str | None] = dict.fromkeys(LOCALE)
    clean.update(env)
    result = CliRunner().invoke(cli, ["--db", "sqlite:///nowhere/none.db", *args], env=clean)
    return result.exit_code, result.stderr


def test_lang_zh_cn_makes_errors_chinese_and_the_option_still_wins() -> None:
    # an error found by click itself (before the command runs) and one the command reports
    for args in (["service", "record"], ["ledger", "entries", "--from", "2026-03-02", "--to", "2026-03-01"]):
        assert _run(args, LANG="zh_CN.UTF-8")[1].startswith("错误：")
        assert _run(args, LC_ALL="C", LANG="zh_CN.UTF-8")[1].startswith("Error: ")
        assert _run(["--lang", "en", *args], LANG="zh_CN.UTF-8")[1].startswith("Error: ")
        assert _run(args, TAIZHANG_LANG="en", LANG="zh_CN.UTF-8")[1].startswith("Error: ")
        assert _run(args)[1].startswith("Error: ")


def test_the_help_says_how_the_language_is_chosen() -> None:
    result = CliRunner().invoke(cli, ["-h"], env=dict.fromkeys(LOCALE))
    assert "LANG" in result.stdout and "TAIZHANG_LANG" in result.stdout
