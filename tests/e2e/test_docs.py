"""The CLI documents itself: summaries, examples, option help, and the commands DESIGN §5 promises."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

import click
import pytest
from click.testing import CliRunner

from commands.cli import cli

Path_ = tuple[str, ...]


def walk(command: click.Command, path: Path_ = ()) -> Iterator[tuple[Path_, click.Command]]:
    """Every command of the tree with its path; the root has the empty path."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(cli))
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not isinstance(cmd, click.Group)]


def _id(path: Path_) -> str:
    return " ".join(path) or "taizhang"


def _help(path: Path_) -> str:
    result = CliRunner().invoke(cli, [*path, "-h"], env={"TAIZHANG_LANG": None})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(("path", "command"), [pytest.param(p, c, id=_id(p)) for p, c in COMMANDS])
def test_every_command_has_a_one_line_summary(path: Path_, command: click.Command) -> None:
    if command.short_help:
        summary = command.short_help
    else:
        assert command.help, f"{_id(path)} has no docstring"
        first_paragraph = command.help.strip().split("\n\n")[0]
        assert "\n" not in first_paragraph.strip(), f"{_id(path)}: the summary runs over several lines"
        summary = first_paragraph.strip()
    assert summary and summary[-1] in ".。", f"{_id(path)}: summary is not a sentence: {summary!r}"
    # The parent's listing shows it.
    if path:
        assert path[-1] in _help(path[:-1])


@pytest.mark.parametrize(("path", "command"), [pytest.param(p, c, id=_id(p)) for p, c in LEAVES])
def test_every_command_help_has_an_example_of_itself(path: Path_, command: click.Command) -> None:
    lines = _help(path).splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Example:"]
    assert starts, f"{_id(path)}: no 'Example:' block in its help"
    # Kept verbatim (\b): the example starts on its own line, continuations joined.
    block: list[str] = []
    for line in lines[starts[0] + 1 :]:
        if not line.strip():
            break
        block.append(line.strip())
    example = " ".join(part.removesuffix("\\").strip() for part in block)
    assert example.startswith("taizhang "), f"{_id(path)}: example does not start on its own line: {block!r}"
    words = shlex.split(example)
    # It runs this very command, with options that exist.
    positions = [words.index(name) for name in path]
    assert positions == sorted(positions), f"{_id(path)}: example runs another command: {example}"
    known = {o for p in (*cli.params, *command.params) if isinstance(p, click.Option) for o in p.opts}
    for word in words:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in known, f"{_id(path)}: example uses unknown option {word}"


@pytest.mark.parametrize(("path", "command"), [pytest.param(p, c, id=_id(p)) for p, c in COMMANDS])
def test_every_option_has_help(path: Path_, command: click.Command) -> None:
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help and param.help.strip(), f"{_id(path)}: option {param.opts} has no help"


# ------------------------------------------------------------------------------------------------
# The write side of DESIGN §5 (copied from the contract; keep in step with it)
# ------------------------------------------------------------------------------------------------
GLOBAL = "taizhang [--db URL] [--actor ID] [--lang en|zh] [--key-file PATH]"
WRITE_SIDE = [
    "taizhang init [--tz ZONE]",
    "taizhang demo [--seed N]",
    "taizhang community establish CODE --name N --county C --township T --village V [--natural-village NV]... "
    "[--established-on DATE]",
    "taizhang community list [--format F]",
    "taizhang resident enroll COMMUNITY CODE --name N [--birth-date DATE] [--gender male|female] [--category CAT]... "
    "[--grid G] [--household H] [--enrolled-on DATE]",
    "taizhang resident update COMMUNITY CODE [--category CAT]... [--grid G] [--household H]",
    "taizhang resident depart COMMUNITY CODE --reason moved|deceased|other [--on DATE]",
    "taizhang provider register COMMUNITY CODE --name N --role ROLE [--team TEAM] [--registered-on DATE]",
    "taizhang provider retire COMMUNITY CODE [--on DATE]",
    "taizhang service record COMMUNITY --kind KIND --resident CODE [--resident CODE]... --provider CODE "
    "[--provider CODE]... --at DATETIME --minutes N [--place PLACE] [--note TEXT] [--record-id UUID] "
    "[--entered-on DATE]",
    "taizhang service correct COMMUNITY RECORD_ID --reason TEXT [--kind K] [--at DT] [--minutes N] [--resident CODE]... "
    "[--provider CODE]... [--place P] [--note T]",
    "taizhang service void COMMUNITY RECORD_ID --reason TEXT",
    "taizhang import communities|residents|providers|services FILE [--skip-invalid] [--format F]",
]


@dataclass
class Synopsis:
    command: click.Command
    path: Path_
    positional: list[str] = field(default_factory=list)
    # option -> (required, takes a value, repeatable), merged over its occurrences
    options: dict[str, tuple[bool, bool, bool]] = field(default_factory=dict)


def _clean(token: str) -> str:
    return token.replace("[", "").replace("]", "").replace("...", "")


def parse_synopsis(line: str) -> Synopsis:
    """`taizhang a b ARG --opt V [--flag] [--many X]...` against the click tree."""
    raw = line.split()[1:]
    command: click.Command = cli
    path: Path_ = ()
    while raw and isinstance(command, click.Group) and raw[0] in command.commands:
        command = command.commands[raw[0]]
        path = (*path, raw.pop(0))
    synopsis = Synopsis(command, path)
    depth = 0
    i = 0
    while i < len(raw):
        token = raw[i]
        depth += token.count("[")
        name = _clean(token)
        if not name.startswith("--"):
            synopsis.positional.append(name)
            depth -= token.count("]")
            i += 1
            continue
        optional, repeated, takes_value = depth > 0, token.endswith("..."), False
        depth -= token.count("]")
        if "]" not in token and i + 1 < len(raw) and not _clean(raw[i + 1]).startswith("--"):
            takes_value, repeated = True, repeated or raw[i + 1].endswith("...")
            depth -= raw[i + 1].count("]")
            i += 1
        if name in synopsis.options:
            required, _value, _repeated = synopsis.options[name]
            synopsis.options[name] = (required, takes_value, True)
        else:
            synopsis.options[name] = (not optional, takes_value, repeated)
        i += 1
    return synopsis


def _option(command: click.Command, name: str) -> click.Option:
    for param in command.params:
        if isinstance(param, click.Option) and name in param.opts:
            return param
    raise AssertionError(f"{command.name}: no option {name}")


@pytest.mark.parametrize("line", [GLOBAL, *WRITE_SIDE], ids=lambda line: " ".join(line.split()[1:3]))
def test_the_contract_commands_exist_with_their_arguments_and_options(line: str) -> None:
    synopsis = parse_synopsis(line)
    command = synopsis.command
    if line != GLOBAL:
        assert synopsis.path and not isinstance(command, click.Group), f"{line}: no such command"
    for name, (required, takes_value, repeated) in synopsis.options.items():
        option = _option(command, name)
        assert option.required == required, f"{line}: {name} required={option.required}"
        assert option.is_flag == (not takes_value), f"{line}: {name} is_flag={option.is_flag}"
        if repeated:
            assert option.multiple, f"{line}: {name} should be repeatable"
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    assert len(synopsis.positional) == len(arguments), f"{line}: arguments {[a.name for a in arguments]}"
    for text, argument in zip(synopsis.positional, arguments, strict=True):
        if "|" in text:
            assert isinstance(argument.type, click.Choice)
            # the contract's choices are kept; more may be added (`import allocations|spending`, issue 15)
            assert set(text.split("|")) <= set(argument.type.choices)
        else:
            assert argument.name == text.lower(), f"{line}: argument {argument.name} is not {text}"


def test_global_options_and_formats() -> None:
    lang = _option(cli, "--lang")
    assert isinstance(lang.type, click.Choice) and set(lang.type.choices) == {"en", "zh"}
    listing = _option(cli.commands["community"].commands["list"], "--format")  # type: ignore[attr-defined]
    assert isinstance(listing.type, click.Choice) and list(listing.type.choices) == ["table", "json", "csv"]
    assert listing.default == "table"
    # Every write command accepts --format json.
    for line in WRITE_SIDE:
        synopsis = parse_synopsis(line)
        if synopsis.path == ("community", "list"):
            continue
        fmt = _option(synopsis.command, "--format")
        assert isinstance(fmt.type, click.Choice) and "json" in fmt.type.choices, " ".join(synopsis.path)


def test_version_and_help() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"taizhang, version {version('taizhang')}"
    top = _help(())
    for name in cli.commands:
        assert name in top
