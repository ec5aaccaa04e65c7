"""The CLI's grammar, read from the click command tree, and hostile values to feed it.

Nothing here lists commands by hand: `leaf_commands()` walks `commands.cli.cli`
(groups, commands, their arguments and options, option names, choices and
types), so a command added later is fuzzed as soon as it is registered.
`invocations()` draws an argv for one command from that grammar: each parameter
gets either a value that makes sense for the seeded store (so the store's own
checks are reached) or a hostile one (SQL fragments, control characters, NUL,
100k-character strings, lone surrogates, absurd dates and numbers), options are
left out, repeated or misspelt, and unknown options appear.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import click
from hypothesis import strategies as st

from commands.cli import cli

# An option whose valid use never returns (`projections run --follow`): never given.
BLOCKING_OPTIONS = frozenset({"--follow"})

HUGE = 100_000

SQL = [
    "'; DROP TABLE stored_events; --",
    "HZ-001'; DELETE FROM data_keys; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "1; UPDATE taizhang_settings SET value='x'",
    "%",
    "_",
    "\\",
    "$1",
    "?",
]
CONTROL = [
    "\x00",
    "HZ\x00-001",
    "\x1b[31mred\x1b[0m",
    "line\nbreak",
    "\r\n",
    "\t",
    "\x7f",
    "\u202eevil",
    "\ufeffBOM",
    "\u200b",
    "a\x85b",
]
UNICODE = [
    "\ud800",  # a lone surrogate
    "x\udcff",  # the byte 0xff after surrogateescape decoding of argv
    "\udcc3\udca9",  # a UTF-8 sequence decoded as surrogateescape bytes
    "\U0001f600",
    "台账",
    "ＨＺ－００１",
    "İ",
    "e\u0301",
]
NUMBERS = [
    "-1",
    "0",
    "-0",
    "1e9",
    "1E400",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "99999999999999999999999999",
    "-99999999999999999999999999",
    "0x10",
    "1_000",
    "１２",
    "٣",
    "1.5",
    "3601",
    "1441",
]
DATES = [
    "0000-00-00",
    "0001-01-01",
    "0001-01-01T00:00+14:00",
    "0001-01-01T00:00-14:00",
    "9999-12-31",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59+23:59",
    "2026-02-30",
    "2026-13-01",
    "2026-03-05T25:61",
    "2026-03-05 09:30+99:99",
    "2026年13月1日",
    "2026-03-05T09:30:00.9999999",
    "20260305",
    "1e9",
    "-1",
    "0000",
    "0000-Q1",
    "9999-Q4",
    "2026-Q0",
    "2026-Q5",
    "2026-00",
    "-2026",
    "99999",
]
NAMES = ["", " ", "-", "--", "---", "-h", "--help", "=", "+1+1", "-2+3", "@SUM(A1)", "=cmd|' /C calc'!A0"]
HUGE_VALUES = ["A" * HUGE, "台" * HUGE, "1" * HUGE, "\x00" * 1000]

HOSTILE = SQL + CONTROL + UNICODE + NUMBERS + DATES + NAMES

# Values that make sense for the seeded store (tests/e2e/conftest.build_ledger), by parameter name.
ACTIVE = "active-record"  # placeholders the test replaces with the seeded record ids
VOIDED = "voided-record"
MISSING = "missing-record"
PLAUSIBLE: dict[str, list[str]] = {
    "community": ["HZ-001", "QT-2", "NOPE"],
    "code": ["HZ-001", "R1", "R2", "R3", "R9", "P1", "P3", "NEW-1", "O1"],
    "official_code": ["O1", "O2"],
    "resident": ["R1", "R2", "R3", "R9", "R1;R2"],
    "residents": ["R1", "R2"],
    "provider": ["P1", "P2", "P3", "P9"],
    "record_id": [ACTIVE, VOIDED, MISSING, "not-a-uuid"],
    "item_id": [MISSING, "not-a-uuid"],
    "kind": ["life_care", "生活照料", "counseling", "bogus"],
    "kinds": ["life_care", "emergency-aid", "bogus"],
    "category": ["留守老人", "left_behind_child", "bogus"],
    "role": ["党员", "volunteer", "bogus"],
    "gender": ["male", "女", "other"],
    "reason": ["moved", "deceased", "迁出", "typo"],
    "place": ["入户", "home_visit", "nowhere"],
    "unit": ["county:八步区", "township:八步区/贺街镇", "community:HZ-001", "city", "county:", "planet:Mars"],
    "into": ["township:八步区/贺街镇", "community:HZ-001", "bogus"],
    "township": ["八步区/贺街镇", "贺街镇", "八步区", "/", "Babu District/Hejie"],
    "county": ["八步区", "Babu District", "nowhere"],
    "period": ["2026", "2026-03", "2026-Q1", "2026-W01"],
    "metric": ["records", "minutes", "coverage", "bogus"],
    "duty": ["contact_point", "bogus"],
    "title": ["书记", "cadre"],
    "tz": ["Asia/Shanghai", "UTC", "Mars/Olympus"],
    "seed": ["1", "42"],
    "every": ["7", "14", "0"],
    "at_least": ["1", "10", "0.5"],
    "minutes": ["45", "1", "1440"],
    "at_position": ["0", "1", "5", "100000"],
    "wait": ["0", "0.1"],
    "interval": ["0.1", "1"],
    "action": ["add", "end"],
    "by": ["community", "township", "county"],
    "level": ["township", "county"],
}
DATE_WORDS = ("date", "_on", "from", "to", "at", "as_of", "due", "on")
TEXT_PLAUSIBLE = ["石门", "Qiaotou", "note 1", "2026-03-05"]


def plausible_for(param: click.Parameter) -> list[str]:
    name = (param.name or "").lower()
    if name in PLAUSIBLE:
        return PLAUSIBLE[name]
    if name.rstrip("s") in PLAUSIBLE:
        return PLAUSIBLE[name.rstrip("s")]
    if any(name == w or name.endswith(w) or name.startswith(w) for w in DATE_WORDS):
        return ["2026-03-05", "2026-03-05 09:30", "2026/3/5", "2026年3月5日"]
    return TEXT_PLAUSIBLE


@dataclass(frozen=True)
class Leaf:
    """A command that runs (not a group): its words and its parameters."""

    path: tuple[str, ...]
    command: click.Command

    @property
    def arguments(self) -> list[click.Argument]:
        return [p for p in self.command.params if isinstance(p, click.Argument)]

    @property
    def options(self) -> list[click.Option]:
        return [
            p
            for p in self.command.params
            if isinstance(p, click.Option) and not p.hidden and not BLOCKING_OPTIONS & set(p.opts)
        ]

    def __str__(self) -> str:
        return " ".join(self.path)


def _walk(command: click.Command, path: tuple[str, ...]) -> Iterator[Leaf]:
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], (*path, name))
    else:
        yield Leaf(path, command)


def leaf_commands(root: click.Group = cli) -> list[Leaf]:
    return list(_walk(root, ()))


def group_paths(root: click.Group = cli) -> list[tuple[str, ...]]:
    """Every group's words (the root's is ())."""
    found: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            found.append(path)
            for name, sub in command.commands.items():
                walk(sub, (*path, name))

    walk(root, ())
    return found


# ---- values -------------------------------------------------------------------------------------
_printable = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_any_text = st.text(alphabet=st.characters(), max_size=30)  # surrogates and controls included
_binaryish = st.binary(max_size=30).map(lambda b: b.decode("utf-8", "surrogateescape"))


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.sampled_from(HUGE_VALUES),
        _printable,
        _any_text,
        _binaryish,
        st.tuples(st.sampled_from(["HZ-001", "R1", "2026-03-05", "life_care"]), st.sampled_from(SQL + CONTROL)).map(
            "".join
        ),
    )


# Paths: never an absolute path that exists (CI runs as root: `--output /etc/passwd` would write it).
SAFE_PATHS = [
    "out.csv",
    "out.xlsx",
    "out.json",
    "台账.xlsx",
    "'; DROP TABLE stored_events; --.xlsx",
    "/nonexistent-folder/out.xlsx",
    "missing/out.csv",
    ".",
    "",
    "a\x00b.csv",
    "x\udcff.csv",
    "A" * 300 + ".csv",
    "good.csv",
    "bad.csv",
    "empty.csv",
    "rubric.toml",
]


def _safe_path(value: str) -> str:
    return value.lstrip("/").replace("..", "_") or "x"


def path_values() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(SAFE_PATHS), hostile_text().filter(lambda v: len(v) < 500).map(_safe_path))


def value_for(param: click.Parameter) -> st.SearchStrategy[str]:
    """A value for an option or argument: plausible for the store, or hostile."""
    kind = param.type
    if isinstance(kind, click.Path):
        return path_values()
    plausible: list[str] = list(plausible_for(param))
    if isinstance(kind, click.Choice):
        choices = [str(c) for c in kind.choices]
        plausible = choices + [c.upper() for c in choices] + [c + " " for c in choices[:1]]
    elif isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        plausible = [v for v in plausible if v not in ("bogus",)] or ["1"]
        return st.one_of(st.sampled_from(plausible), st.sampled_from(NUMBERS), hostile_text())
    return st.one_of(st.sampled_from(plausible), hostile_text())


UNKNOWN_OPTIONS = ["--bogus", "--formatt", "-x", "--", "--db=", "--format=", "-", "--Format", "--help=1", "---format"]


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str | None]

    def __repr__(self) -> str:
        """Short even for 100k-character values (hypothesis prints it for a failing example)."""
        return f"Invocation(argv={[_short(a) for a in self.argv]!r}, env={ {k: _short(v) for k, v in self.env.items()}!r})"

    __str__ = __repr__


def _short(value: str | None) -> str | None:
    if value is None or len(value) < 80:
        return value
    return f"{value[:20]}…({len(value)} chars)"


def _option_words(draw: st.DrawFn, option: click.Option) -> list[str]:
    names = [*option.opts, *option.secondary_opts]
    name = draw(st.sampled_from(names)) if names else option.opts[0]
    if option.is_flag and not option.secondary_opts:
        if draw(st.integers(0, 9)) == 0:  # a flag given a value
            return [f"{name}={draw(st.sampled_from(['yes', '1', 'no', '']))}"]
        return [name]
    if option.is_flag:
        return [name]
    value = draw(value_for(option))
    if draw(st.integers(0, 5)) == 0 and name.startswith("--"):
        return [f"{name}={value}"]
    return [name, value]


@st.composite
def argv_for(draw: st.DrawFn, leaf: Leaf) -> list[str]:
    """The words after the command's own words: arguments and options in any order."""
    words: list[list[str]] = []
    for argument in leaf.arguments:
        if draw(st.integers(0, 14)) == 0:
            continue  # a missing argument
        count = argument.nargs if argument.nargs > 0 else draw(st.integers(0, 3))
        for _ in range(count):
            words.append([draw(value_for(argument))])
    if draw(st.integers(0, 9)) == 0:
        words.append([draw(hostile_text())])  # one argument too many
    for option in leaf.options:
        wanted = 0.9 if option.required else 0.4
        if draw(st.floats(0, 1)) >= wanted:
            continue
        repeat = draw(st.integers(1, 3)) if option.multiple or draw(st.integers(0, 7)) == 0 else 1
        for _ in range(repeat):  # a repeated single-valued option is itself a case
            words.append(_option_words(draw, option))
    if draw(st.integers(0, 7)) == 0:
        words.append([draw(st.sampled_from(UNKNOWN_OPTIONS))])
    arguments = len(leaf.arguments)
    # Options may come before, between or after the arguments; keep the arguments' own order.
    fixed, movable = words[:arguments], words[arguments:]
    order = draw(st.permutations(range(len(movable)))) if movable else []
    mixed = [movable[i] for i in order]
    cut = draw(st.integers(0, len(mixed)))
    flat = [w for group in [*mixed[:cut], *fixed, *mixed[cut:]] for w in group]
    return flat


GLOBAL_ENV = ("TAIZHANG_LANG", "TAIZHANG_ACTOR", "TAIZHANG_TZ")


def _as_environ(value: str) -> str:
    """What a real environment can hold: no NUL; lone surrogates only as undecodable bytes."""
    return "".join(char for char in value if char != "\x00" and _environ_char(char))


def _environ_char(char: str) -> bool:
    try:
        char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def environment(draw: st.DrawFn) -> dict[str, str | None]:
    env: dict[str, str | None] = {}
    for name in GLOBAL_ENV:
        if draw(st.integers(0, 7)) == 0:
            value = draw(st.one_of(st.sampled_from(["en", "zh", "fr", "clerk01", "UTC"]), hostile_text()))
            env[name] = _as_environ(value)
    return env


@st.composite
def global_options(draw: st.DrawFn) -> list[str]:
    words: list[str] = []
    if draw(st.integers(0, 3)) > 0:
        words += ["--actor", draw(st.one_of(st.just("clerk01"), hostile_text()))]
    if draw(st.integers(0, 4)) == 0:
        words += ["--lang", draw(st.one_of(st.sampled_from(["en", "zh", "ZH", "fr"]), hostile_text()))]
    return words


@st.composite
def invocations(draw: st.DrawFn, leaf: Leaf) -> Invocation:
    argv = [*draw(global_options()), *leaf.path, *draw(argv_for(leaf))]
    return Invocation(argv, draw(environment()))


@st.composite
def stray_invocations(draw: st.DrawFn, groups: Sequence[tuple[str, ...]]) -> Invocation:
    """A group followed by an unknown, misspelt or hostile command word."""
    path = draw(st.sampled_from(list(groups)))
    word = draw(
        st.one_of(
            hostile_text(),
            st.sampled_from(["", "-", "--", "help", "list ", "LIST", "entries\x00"]),
            st.text(alphabet=string.ascii_lowercase + "-", min_size=1, max_size=12),
        )
    )
    rest = draw(st.lists(hostile_text(), max_size=3))
    return Invocation([*draw(global_options()), *path, word, *rest], draw(environment()))
