"""The gettext catalogue file (commands/i18n_po.py): read as gettext tools write it, loaded lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from commands import i18n
from commands.help_i18n import HELP
from commands.i18n_po import PO_PATH, WORD, PoEntry, PoError, load, load_context, parse, render


def test_the_shipped_file_parses_and_round_trips() -> None:
    text = PO_PATH.read_text(encoding="utf-8")
    entries = parse(text)
    assert len(entries) > 400
    assert parse(render(entries)) == entries
    assert render(entries) == text, "the .po is not in canonical form: run python -m commands.i18n_po format"


def test_every_word_and_message_is_translated_and_given_once() -> None:
    entries = parse(PO_PATH.read_text(encoding="utf-8"))
    keys = [(e.msgctxt, e.msgid) for e in entries]
    assert len(keys) == len(set(keys))
    assert all(e.msgstr and not e.fuzzy for e in entries)
    assert {e.msgctxt for e in entries} <= {None, WORD, HELP}


def test_gettext_syntax_multiline_strings_comments_and_fuzzy(tmp_path: Path) -> None:
    po = tmp_path / "x.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: zh_CN\\n"\n\n'
        "# translator: checked by the county\n"
        'msgid "resident {code} "\n"is gone"\nmsgstr ""\n"服务对象 {code} "\n"已离开"\n\n'
        '#, fuzzy\nmsgid "guess"\nmsgstr "猜测"\n\n'
        'msgid "empty"\nmsgstr ""\n\n'
        'msgctxt "word"\nmsgid "female"\nmsgstr "女"\n\n'
        'msgctxt "help"\nmsgid "Output format."\nmsgstr "输出格式。"\n\n'
        'msgid "a \\"quoted\\" word"\nmsgstr "带\\"引号\\"的词"\n',
        encoding="utf-8",
    )
    messages, words = load(po)
    assert messages == {"resident {code} is gone": "服务对象 {code} 已离开", 'a "quoted" word': '带"引号"的词'}
    assert words == {"female": "女"}  # fuzzy and empty entries print in English, as with gettext
    assert load_context(HELP, po) == {"Output format.": "输出格式。"}  # -h texts: never message templates


@pytest.mark.parametrize(
    "text",
    ['msgid "a"\n', 'msgid "a"\nmsgstr b\n', 'msgid "a"\nmsgid_plural "b"\nmsgstr "c"\n', '"stray"\n'],
    ids=["no-msgstr", "unquoted", "plural", "stray-string"],
)
def test_a_broken_file_is_refused_with_its_line(text: str) -> None:
    with pytest.raises(PoError):
        parse(text + "\n")


def test_render_quotes_what_it_must() -> None:
    entry = PoEntry('say "hi"\\now', "说\n你好", WORD)
    assert parse(render([entry])) == [entry]


def test_the_catalogue_is_not_read_at_start_up() -> None:
    """`taizhang --help` and every English run skip the .po file: it is read on the first translation."""
    code = (
        "import sys, commands.cli\n"
        "from commands import i18n\n"
        "assert 'commands.i18n_po' not in sys.modules\n"
        "assert i18n._po.cache_info().currsize == 0\n"
        "i18n.translate('aborted', 'en'); assert 'commands.i18n_po' not in sys.modules\n"
        "assert i18n.translate('aborted', 'zh') == '已中止'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_catalogue_stays_importable_under_its_old_name() -> None:
    assert i18n.CATALOGUE is i18n.catalogue()
    assert i18n.word("female", "en") == "female"
