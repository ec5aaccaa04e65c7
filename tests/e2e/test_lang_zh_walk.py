"""`--lang zh` says every word in Chinese: a walk through every command's output on the demo store.

Each command's read paths run in table format (and the text reports of writes and imports, and
the errors of a few bad inputs) with `--lang zh`; the output may hold no ASCII word except a code
(community, resident, provider, official, record ids, hashes: code-shaped or taken from the store),
an option name (`--kind`), a unit id or slug the user typed on that command line, a file name,
and the few words listed in `ALLOWED` with the reason they stay.

`TAIZHANG_WALK_SHOW=1` prints every leak of every command instead of stopping at the first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import Cli, write_csv

WORD = re.compile(r"[A-Za-z]{2,}")
ADMIN = "admin01"  # the actor of the walk's writes; the last of them adds it, which turns access control on
# Tokens removed before looking for words: what is a code by its shape, or a machine value.
CODES = [
    re.compile(r"--[a-z][a-z-]*(?:=\S+| [a-z]+(?:\|[a-z]+)+)?"),  # an option (with its value or its choices a|b)
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),  # a record id
    re.compile(r"\b[A-Za-z]+(?:-[A-Za-z0-9]+)*[0-9][A-Za-z0-9-]*\b"),  # a code with a digit: HZ-D01, O-BB-03, clerk01
    re.compile(r"\b[A-Za-z]+-[A-Z0-9]+\b"),  # HZ-ABC, HZ-P
    re.compile(r"\b[0-9a-f]{8,}\b"),  # a hash
    re.compile(r"\b[a-z_]+（"),  # a slug an option takes, glossed in Chinese: secretary（书记）
    re.compile(r"\b(?:township|county|community|city):[^\s,;，；）)]*"),  # a unit id, as --unit takes it
    re.compile(r"\b[A-Z][a-z]+/[A-Z][A-Za-z_]+\b"),  # the store's time zone (Asia/Shanghai)
    re.compile(r"\bsha256\b"),  # the name of the hash that fixes a rubric
    re.compile(r"(?<=细则 )[\w.-]+"),  # a rubric's name (its id, as in its file: hezhou-default)
    re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}[:\d.]*(?:[+-]\d{2}:\d{2}|Z)?"),  # an ISO moment
    re.compile(r"\bv\d+\b"),  # a rubric version
    re.compile(r"\b(?:sqlite|postgresql)://[^\s；，。）]+"),  # a store's URL
    re.compile(r"\bpg_(?:dump|restore)\b"),  # PostgreSQL's own programs
    re.compile(r"\btaizhang(?: [a-z-]+){1,2}"),  # a command to run, in a hint
    re.compile(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.DOTALL),  # a PEM public key
    re.compile(r"\bmv\b"),  # a shell command to copy
    re.compile(r"(?<![\w:])/[^\s（）：，。；]+"),  # a file name (the test's folder is cut off before)
]
# Words that stay, and why.
ALLOWED = {
    "demo",  # the demo's actor
    "postgres",  # the database login the walk gives its actor on PostgreSQL
    "taizhang",  # the program's name, in hints (`请运行 taizhang projections run`)
    "JSON", "CSV", "XLSX", "UTF", "UTC", "PDF", "HTML",  # names of formats and standards
    "Ed", "base",  # Ed25519, base64
    "min",  # a unit
    "PostgreSQL", "SQLite", "README",  # names
    "hours",  # a header a clerk's sheet may carry for durations (commands/headers.toml), listed in errors
    "TAIZHANG", "KEY", "FILE",  # TAIZHANG_KEY_FILE, an environment variable
}  # fmt: skip


def leaks(text: str, typed: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    for pattern in CODES:
        text = pattern.sub(" ", text)
    return [w for w in WORD.findall(text) if w not in ALLOWED and w not in typed]


def typed_words(args: tuple[str, ...]) -> set[str]:
    """The ASCII words the user typed as values (slugs, codes, file names): not the command's own name."""
    import click

    from commands.cli import cli

    command: click.Command = cli
    start = 0
    while start < len(args) and isinstance(command, click.Group) and args[start] in command.commands:
        command = command.commands[args[start]]
        start += 1
    return {w for arg in args[start:] if not arg.startswith("--") for w in WORD.findall(arg)}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cli, dict[str, Any]]]:
    """The demo store (each backend) and what the walk needs to know of it."""
    directory = tmp_path_factory.mktemp("walk")
    if request.param == "sqlite":
        url, admin = f"sqlite:///{directory / 'demo.db'}", None
    else:
        admin = request.getfixturevalue("pg_admin_url")
        url = make_pg_database(admin)
    cli = Cli(url, directory / "demo.key")
    if request.param == "postgres":
        cli.ok("init", "--no-access-control", actor=None)
    loaded = cli.ok("demo", actor=None, lang="zh")
    cli.ok("projections", "run", actor=None)  # PostgreSQL views are kept by the projector; SQLite's at once
    communities = cli.json("community", "list")
    community = communities[0]
    code = community["code"]
    entries = cli.json("ledger", "entries", "--community", code, "--include-voided")
    months = sorted({e["occurred_at"][:7] for e in entries})
    data = {
        "dir": directory,
        "community": code,
        "township": f"{community['county']}/{community['township']}",
        "county": community["county"],
        "resident": cli.json("resident", "list", code)[0]["code"],
        "provider": cli.json("provider", "list", code)[0]["code"],
        "record": next(e["record_id"] for e in entries if e["status"] == "active"),
        "month": months[-1],
        "full_month": months[-2],
        "backend": request.param,
        "demo_output": loaded.stdout + loaded.stderr,
    }
    try:
        yield cli, data
    finally:
        if admin is not None:
            drop_pg_database(admin, url)


def _commands(d: dict[str, Any]) -> list[tuple[str, ...]]:
    c, t, m = d["community"], d["township"], d["month"]
    unit = f"township:{t}"
    return [
        ("community", "list"),
        ("resident", "list", c),
        ("provider", "list", c),
        ("ledger", "entries", "--community", c, "--include-voided"),
        ("ledger", "summary", "--by", "township", "--period", m),
        ("ledger", "summary", "--by", "community", "--township", t, "--per", "month"),
        ("projections", "status"),
        ("actor", "list"),
        ("visits", "overdue", "--township", t),
        ("assess", "run", "--period", m, "--level", "township"),
        ("assess", "run", "--period", m, "--level", "county"),
        *[
            ("assess", "explain", "--period", m, "--unit", unit, "--metric", metric)
            for metric in (
                "coverage",
                "visit_timeliness",
                "breadth",
                "target_attainment",
                "supervision_closure",
                "data_quality",
            )
        ],  # fmt: skip
        *[
            ("audit", "responsibility", "--unit", u, "--period", p)
            for u in (unit, f"county:{d['county']}")
            for p in (m, d["full_month"])  # the demo's last full month has every kind of obligation
        ],
        *[
            ("assess", "explain", "--period", d["full_month"], "--unit", f"county:{d['county']}", "--metric", metric)
            for metric in ("target_attainment", "supervision_closure")
        ],
        ("audit", "history", c),
        ("audit", "access"),
        ("audit", "verify"),
        ("audit", "verify", "--community", c),
    ]


def _command_words() -> set[str]:
    """The words of the CLI's command and option names: `audit access` lists the command lines run."""
    import click

    from commands.cli import cli

    names: set[str] = set()

    def walk(command: click.Command) -> None:
        names.update(WORD.findall(command.name or ""))
        for param in command.params:
            names.update(WORD.findall(param.name or ""))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(cli)
    return names | {"table", "json", "csv", "xlsx", "html", "text"}


def _check(out: str, args: tuple[str, ...], found: list[str]) -> None:
    typed = typed_words(args) | (_command_words() if args[:2] == ("audit", "access") else set())
    bad = leaks(out, typed)
    if bad:
        lines = [line for line in out.splitlines() if leaks(line, typed)]
        found.append(f"{' '.join(args)}: {sorted(set(bad))}\n    " + "\n    ".join(lines[:6]))


def _report(found: list[str]) -> None:
    if os.environ.get("TAIZHANG_WALK_SHOW"):
        print("\n\n".join(found))
    assert not found, "English words in --lang zh output:\n" + "\n".join(found)


def test_every_read_command_speaks_chinese(demo: tuple[Cli, dict[str, Any]]) -> None:
    cli, d = demo
    found: list[str] = []
    for args in _commands(d):
        result = cli(*args, lang="zh")
        assert result.exit_code == 0, f"{args}: {result.output}"
        _check(result.stdout + result.stderr, args, found)
    _report(found)


def test_english_stays_english_and_json_keeps_the_slugs(demo: tuple[Cli, dict[str, Any]]) -> None:
    """The Chinese pass applies to --lang zh tables and reports only: English and JSON are as they were.

    (Before the writes: their last one adds an actor, which turns access control on.)"""
    cli, d = demo
    english = cli.ok("resident", "list", d["community"], actor=ADMIN).stdout
    assert re.search(r"\b(?:female|male)\b", english) and "女" not in english
    unit = f"township:{d['township']}"
    duties = cli.ok("audit", "responsibility", "--unit", unit, "--period", d["full_month"], actor=ADMIN).stdout
    assert "obligation" in duties.splitlines()[0] and re.search(r"\b(?:met|missed|open)\b", duties)
    chinese = cli.json("resident", "list", d["community"], lang="zh", actor=ADMIN)
    assert {r["gender"] for r in chinese} <= {"female", "male", None}
    explained = cli.ok(
        "assess", "explain", "--period", d["full_month"], "--unit", unit, "--metric", "coverage", actor=ADMIN
    ).stdout
    assert explained.startswith(f"coverage of {unit} in {d['full_month']}: ")


def _writes(d: dict[str, Any], directory: Path) -> list[tuple[tuple[str, ...], int]]:
    c, r, p, rec = d["community"], d["resident"], d["provider"], d["record"]
    service = ("service", "record", c, "--resident", r, "--provider", p, "--minutes", "30")
    csv = write_csv(
        directory / "services.csv",
        [
            ["序号", "社区", "服务对象", "服务人员", "服务类型", "服务时间", "时长", "联系电话"],  # one column left out
            ["1", c, r, p, "生活照料", f"{d['month']}-03 09:00", "40分钟", "13800000000"],
            ["填表人：赵敏", "", "", "", "", "", "", ""],  # a signature footer
        ],
    )
    login = ("--login", "postgres") if d["backend"] == "postgres" else ()  # a database login, on PostgreSQL
    bad_csv = write_csv(directory / "bad.csv", [["社区", "服务对象"], [c, r]])
    return [
        ((*service, "--kind", "life_care", "--at", f"{d['month']}-02 10:00"), 0),
        (("service", "correct", c, rec, "--minutes", "55", "--reason", "登记时长有误"), 0),
        (("service", "void", c, rec, "--reason", "重复登记"), 0),
        (("resident", "enroll", c, "RW-1", "--name", "王小明", "--gender", "female"), 0),
        (("import", "services", str(csv)), 0),
        (("import", "services", str(bad_csv)), 2),
        ((*service, "--kind", "cooking", "--at", f"{d['month']}-02 10:00"), 2),
        ((*service, "--kind", "life_care", "--at", "2999-01-01 09:00"), 2),
        (
            (
                "service",
                "record",
                c,
                "--resident",
                "NOBODY-9",
                "--provider",
                p,
                "--kind",
                "life_care",
                "--at",
                f"{d['month']}-02 10:00",
                "--minutes",
                "30",
            ),
            1,
        ),  # fmt: skip
        (("resident", "enroll", c, "RW-2", "--name", "李四", "--category", "nobody"), 2),
        (("assess", "explain", "--period", d["month"], "--unit", "township:nowhere/x", "--metric", "coverage"), 1),
        (("ledger", "entries", "--community", "NOPE-1"), 1),
        (("resident", "update", c, "RW-1", "--grid", "第9网格"), 0),
        (("resident", "depart", c, "RW-1", "--reason", "迁出", "--on", f"{d['month']}-03"), 0),
        (("provider", "register", c, "PW-1", "--name", "李建国", "--role", "党员", "--team", "党员先锋队"), 0),
        (("provider", "retire", c, "PW-1", "--on", f"{d['month']}-03"), 0),
        (("visit-plan", "set", c, r, "--every", "14", "--provider", p, "--from", f"{d['month']}-01"), 0),
        (("visit-plan", "end", c, r, "--on", f"{d['month']}-02"), 0),
        (("pairing", "add", c, "--provider", p, "--resident", r, "--on", f"{d['month']}-01"), 0),
        (("official", "register", "OW-1", "--name", "黄志明", "--title", "贺街镇党委书记"), 0),
        (
            (
                "duty",
                "assign",
                "OW-1",
                "--unit",
                f"township:{d['township']}",
                "--duty",
                "deputy",
                "--from",
                f"{d['month']}-01",
            ),
            0,
        ),  # fmt: skip
        (
            (
                "duty",
                "end",
                "OW-1",
                "--unit",
                f"township:{d['township']}",
                "--duty",
                "deputy",
                "--on",
                f"{d['month']}-02",
            ),
            0,
        ),  # fmt: skip
        (
            (
                "duty",
                "assign",
                "OW-1",
                "--unit",
                f"township:{d['township']}",
                "--duty",
                "boss",
                "--from",
                f"{d['month']}-01",
            ),
            2,
        ),  # fmt: skip
        (
            (
                "target",
                "set",
                "--unit",
                f"county:{d['county']}",
                "--period",
                d["month"],
                "--metric",
                "records",
                "--at-least",
                "100",
            ),
            0,
        ),  # fmt: skip
        (
            (
                "supervise",
                "open",
                "--unit",
                f"township:{d['township']}",
                "--item",
                "补齐巡访记录",
                "--due",
                f"{d['month']}-20",
            ),
            0,
        ),  # fmt: skip
        (
            (
                "debrief",
                "file",
                "OW-1",
                "--unit",
                f"township:{d['township']}",
                "--period",
                d["month"],
                "--summary",
                "述职",
            ),
            0,
        ),  # fmt: skip
        (("ledger", "close", "--unit", f"township:{d['township']}", "--period", d["month"], "--reason", "结账"), 0),
        ((*service, "--kind", "life_care", "--at", f"{d['month']}-02 11:00"), 1),
        (("ledger", "reopen", "--unit", f"township:{d['township']}", "--period", d["month"], "--reason", "补录"), 0),
        (("audit", "keygen", "--key-file", str(directory / "seal.key")), 0),
        (("audit", "seal", "--key-file", str(directory / "seal.key"), "--output", str(directory / "cp")), 0),
        (
            ("audit", "verify", "--checkpoint", str(directory / "cp"), "--public-key", str(directory / "seal.key.pub")),
            0,
        ),
        (("audit", "prove", rec, "--checkpoint", str(directory / "cp"), "--output", str(directory / "rec.bundle")), 0),
        (("audit", "check", str(directory / "rec.bundle"), "--public-key", str(directory / "seal.key.pub")), 0),
        (("resident", "erase", c, "RW-1", "--reason", "本人申请删除"), 0),
        (("backup", str(directory / "copy.db")), 0 if d["backend"] == "sqlite" else 1),  # PostgreSQL: pg_dump
        (("actor", "add", "admin01", "--role", "admin", "--scope", "city", *login), 0),
        (("actor", "list"), 0),
        (("keys", "rotate"), 0),
    ]


def test_write_reports_and_errors_speak_chinese(demo: tuple[Cli, dict[str, Any]], tmp_path: Path) -> None:
    cli, d = demo
    found: list[str] = []
    for args, code in _writes(d, tmp_path):
        result = cli(*args, lang="zh", actor=ADMIN)
        if result.exit_code != code:
            found.append(f"{' '.join(args)}: exit {result.exit_code}, wanted {code}: {result.output}")
        out = (result.stdout + result.stderr).replace(str(tmp_path), " ").replace(str(d["dir"]), " ")
        _check(out, args, found)
    rotated = cli.key.with_name(cli.key.name + ".new")
    if rotated.exists():  # keys rotate ran: swap the files as it says, for the tests after this one
        rotated.replace(cli.key)
    _report(found)


def test_the_demo_and_init_reports_speak_chinese(demo: tuple[Cli, dict[str, Any]], tmp_path: Path) -> None:
    cli, d = demo
    found: list[str] = []
    _check(d["demo_output"].replace(str(d["dir"]), " "), ("demo",), found)
    fresh = Cli(f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "new.key")
    result = fresh.ok("init", actor=None, lang="zh")
    _check((result.stdout + result.stderr).replace(str(tmp_path), " "), ("init",), found)
    _report(found)


def test_the_filter_finds_english() -> None:
    assert leaks("性别 female") == ["female"]
    assert leaks("HZ-D01 R001 O-BB-03 clerk01 af4d704d-6db3-43d2-bc5f-280e03fced80 --kind") == []
    assert leaks("rank unit score") == ["rank", "unit", "score"]
