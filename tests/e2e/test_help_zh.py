"""`-h` in Chinese: every command's help with `--lang zh` (commands/help_i18n.py), English unchanged.

The walk judges words as tests/e2e/test_lang_zh_walk.py does (its `leaks`), and allows besides
what a help page must show as it is: the command's metavars and choices, example command lines
(the `示例：` block), slugs (`life_care`, an import's column `birth_date`), environment variables,
date patterns (`YYYY-Qn`), file names, a command named in a sentence (`audit verify`), and the
few words of `HELP_ALLOWED`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from commands import access, help_i18n
from commands.cli import cli
from commands.i18n_po import PO_PATH, load_context, parse
from tests.e2e.test_lang_zh_walk import WORD, leaks
from tests.e2e.test_startup import HEAVY, PROBE, TAIZHANG_VARS, heavy_among

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")

# Tokens of a help page that stay as they are, removed before looking for words.
KEPT = [
    re.compile(r"\b[a-z_]+(?:\|[a-z_]+)+\b"),  # the values an option takes: male|female
    re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b"),  # a slug: life_care, birth_date, taizhang_writer
    re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\bLANG\b"),  # an environment variable
    re.compile(r"\bYYYY(?:-(?:MM|Qn))?\b|\bHH:MM\b"),  # a date or time pattern
    re.compile(r"[\w/.-]+\.(?:toml|key|pub|new|xlsx|html|db)\b"),  # a file name: commands/headers.toml
    re.compile(r"`[^`]+`"),  # something to type, in backquotes: `taizhang init`, `actor add --role projector`
    re.compile(r"\{[^}]*\}"),  # JSON keys: {"added", "existing", "skipped"}
]
# Words that stay on a help page, and why.
HELP_ALLOWED = {
    "city",  # the scope of the whole store, as --scope takes it
    "Merkle",  # Merkle roots: a name
    "TOML",  # a file format
    "URL",  # the store's URL (--db)
    "API", "TLS", "nginx",  # the web door's JSON API, the protocol and the proxy in front of `serve`
    "Ctrl", "SIGTERM",  # how to stop a worker
    "PATH", "USER", "PASS", "HOST", "PORT", "DB",  # the parts of a URL, as --db spells them
}  # fmt: skip


def help_paths() -> list[str]:
    """Every command and group by its path ("" is the root), as tests/e2e/test_startup.py walks them."""
    groups = [n for n, c in cli.commands.items() if isinstance(c, click.Group)]
    return ["", *sorted([*access.command_paths(cli), *groups])]


def command_at(path: str) -> tuple[click.Command, click.Context]:
    command: click.Command = cli
    ctx = click.Context(cli, info_name="taizhang")
    for name in path.split():
        assert isinstance(command, click.Group)
        command = command.commands[name]
        ctx = click.Context(command, info_name=name, parent=ctx)
    return command, ctx


def shown_as_is(command: click.Command, ctx: click.Context) -> set[str]:
    """The words a command's help shows as they are: its metavars, choices, defaults, subcommands."""
    words: set[str] = set()
    if isinstance(command, click.Group):
        words.update(w for name in command.list_commands(ctx) for w in WORD.findall(name))
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            words.update(WORD.findall(record[0]))
        words.update(WORD.findall(param.make_metavar(ctx)))
        if isinstance(param.type, click.Choice):
            words.update(str(choice) for choice in param.type.choices)
        default = getattr(param, "default", None)
        if isinstance(default, str):
            words.update(WORD.findall(default))
    return words


def without_examples(text: str) -> str:
    """The help without its `示例：` blocks (command lines to copy)."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.strip() == "示例：":
            skipping = True
        elif skipping and not line.strip():
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def help_leaks(path: str, text: str) -> list[str]:
    command, ctx = command_at(path)
    text = without_examples(text)
    for pattern in KEPT:
        text = pattern.sub(" ", text)
    text = command_lines().sub(" ", text)
    columns = import_columns() if path.split()[:1] == ["import"] else set()  # a sheet's English headers
    return leaks(text, shown_as_is(command, ctx) | columns | HELP_ALLOWED)


def import_columns() -> set[str]:
    from commands.tabular import COLUMNS

    return {column.name for columns in COLUMNS.values() for column in columns}


@cache
def command_lines() -> re.Pattern[str]:
    """A command named in a sentence (`见 audit verify --views`): a path of two words or more."""
    paths = sorted((p for p in access.command_paths(cli) if " " in p), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(r"\s+".join(map(re.escape, p.split())) for p in paths) + r")\b")


def run_help(path: str, *before: str) -> str:
    result = CliRunner().invoke(cli, [*before, *path.split(), "-h"], prog_name="taizhang")
    assert result.exit_code == 0, (path, result.output)
    return result.output


def test_every_command_help_speaks_chinese() -> None:
    found = []
    for path in help_paths():
        out = run_help(path, "--lang", "zh")
        assert out.startswith(f"用法：taizhang {path} ".replace("  ", " ")), (path, out)
        assert "选项：" in out and "显示本帮助并退出。" in out, (path, out)
        bad = help_leaks(path, out)
        if bad:
            lines = [line for line in without_examples(out).splitlines() if set(help_leaks(path, line)) & set(bad)]
            found.append(f"{path or 'taizhang'}: {sorted(set(bad))}\n    " + "\n    ".join(lines[:6]))
    if os.environ.get("TAIZHANG_WALK_SHOW"):
        print("\n\n".join(found))
    assert not found, "English words in --lang zh help:\n" + "\n".join(found)


def test_every_help_text_has_its_entry() -> None:
    """`python -m commands.help_i18n` lists what is missing: translate it under msgctxt "help"."""
    assert help_i18n.missing(cli) == []


def test_the_root_lists_every_command_in_chinese_without_loading_it() -> None:
    out = run_help("", "--lang", "zh")
    assert "命令：" in out
    assert "  ledger       服务信息台账：明细和汇总。" in out
    assert "  pairing      为服务人员和服务对象结对帮扶，或结束结对。" in out


def test_english_help_is_clicks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no language set the help is what click prints without the translating formatter, byte for byte,
    and the catalogue is not read; `--lang en` wins over a Chinese TAIZHANG_LANG."""
    help_i18n.entries.cache_clear()
    english = {path: run_help(path) for path in help_paths()}
    assert help_i18n.entries.cache_info().currsize == 0
    assert {"List", "service", "records"} <= set(help_leaks("ledger entries", english["ledger entries"]))
    assert not any(CJK.search(line) for line in english[""].splitlines() if line.startswith(("Usage", "Options")))
    monkeypatch.setattr(help_i18n.HelpContext, "make_formatter", click.Context.make_formatter)
    assert {path: run_help(path) for path in help_paths()} == english
    monkeypatch.undo()
    monkeypatch.setenv("TAIZHANG_LANG", "zh")
    assert run_help("ledger entries") != english["ledger entries"]
    assert run_help("ledger entries", "--lang", "en") == english["ledger entries"]


@pytest.mark.parametrize("args", [["-h"], ["ledger", "entries", "-h"]])
def test_a_chinese_locale_gives_chinese_help_in_a_new_process(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in (*TAIZHANG_VARS, "LC_ALL", "LC_MESSAGES", "LANGUAGE")}
    env.update(LANG="zh_CN.UTF-8", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"用法：taizhang {' '.join(args[:-1])}".rstrip() + " ")
    assert "显示本帮助并退出。" in done.stdout
    modules = set(json.loads(out.read_text()))
    assert heavy_among(modules) == [], HEAVY
    if args == ["-h"]:
        assert "命令：" in done.stdout
        assert [m for m in modules if m.startswith("commands.cli.") and m != "commands.cli.__main__"] == []


def test_the_catalogue_check_passes_and_help_entries_stay_apart() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "commands.i18n_po", "check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert " help texts, 0 untranslated or fuzzy" in done.stdout
    helps = load_context(help_i18n.HELP)
    assert helps and all(
        e.msgid == help_i18n.normal(e.msgid) for e in parse(PO_PATH.read_text(encoding="utf-8")) if e.msgctxt == "help"
    )
    from commands import i18n

    assert not set(helps) & set(i18n.catalogue())  # a help text is never matched as a message template


# ---- the formatter's pieces ---------------------------------------------------------------------


def test_click_words_around_an_option_help() -> None:
    assert help_i18n.option_help("Output format.  [default: table]") == "输出格式。［默认：table］"
    assert help_i18n.option_help("Duration in minutes, 1-1440.  [required]") == "服务时长（分钟），1-1440。［必填］"
    assert help_i18n.option_help("Due date.  [default: x; 1<=x<=9; required]") == "办结期限。［默认：x；1<=x<=9；必填］"
    assert help_i18n.option_help("[required]") == "［必填］"
    assert help_i18n.option_help("Not in the catalogue.  [required]") == "Not in the catalogue.［必填］"


def test_a_short_help_click_cut_is_found_by_its_first_words() -> None:
    assert help_i18n.short_help("Key visits (重点巡访) as planned...") == "重点巡访：计划情况与落实情况。"
    assert help_i18n.short_help("Something else entirely...") == "Something else entirely..."


def test_wrapping_by_display_width_keeps_punctuation_in_place() -> None:
    lines = help_i18n.wrap("只列该乡镇，例如 八步区/贺街镇；没有其他县区有同名乡镇时，可只写 贺街镇。", 30)
    assert all(help_i18n.width_of(line) <= 30 for line in lines)
    assert "".join(lines).replace(" ", "") == "只列该乡镇，例如八步区/贺街镇；没有其他县区有同名乡镇时，可只写贺街镇。"
    assert not any(line.startswith(("，", "。", "；")) or line.endswith("（") for line in lines)
    assert help_i18n.wrap("起始日（2026-11）", 12) == ["起始日", "（2026-11）"]
    assert help_i18n.wrap("创建第一个管理员）。", 16) == ["创建第一个管理", "员）。"]
    assert help_i18n.wrap("创建第一个管理员）。", 18) == ["创建第一个管理", "员）。"]
    assert help_i18n.wrap("甲 --admin）", 10) == ["甲 --admin）"]  # after a word of ASCII it hangs
