"""Command help (`-h`) in the language of the run, translated as click formats it.

The help texts stay English in the click modules (commands/cli/*.py): that English is the msgid,
looked up under `msgctxt "help"` in the catalogue (commands/locale/zh/LC_MESSAGES/taizhang.po),
at format time, piece by piece as click hands them to its formatter:

- a paragraph of a command's help, its whitespace joined to single spaces (so rewrapping the
  docstring keeps its entry); in a `\\b` block (an example) each line alone — a command line
  to copy has no entry and stays as it is;
- a command's one-line help as its group lists it: its first sentence (click cuts it to fit the
  line; the Chinese is shown whole and wrapped);
- an option's help, and click's words around it (`[default: …]`, `[required]`, the headings,
  `Usage:`, `[OPTIONS]`): those are entries too, so a translator sees every word.

A text with no entry prints in English: a new option is never lost, only not yet translated.
English runs never read the catalogue, and print exactly what click prints (the formatter of an
English run is click's own). Imported at start-up: the standard library and click only.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache

import click

HELP = "help"  # the msgctxt of help texts

_lang = "en"  # the language of the running command's help (commands.cli picks it before click parses)


def use(lang: str) -> None:
    """Help printed from now on speaks `lang` (set by the root before it parses the command line)."""
    global _lang
    _lang = lang


def language() -> str:
    """The running command's language, as `use` set it."""
    return _lang


@cache
def entries() -> dict[str, str]:
    """The help texts of the catalogue: English → Chinese (read on the first Chinese help only)."""
    from commands.i18n_po import load_context

    return load_context(HELP)


def normal(text: str) -> str:
    """A text as its msgid: whitespace runs joined to one space."""
    return " ".join(text.split())


def tr(text: str) -> str:
    """`text` in Chinese, or as it is when the catalogue has no entry for it."""
    return entries().get(normal(text), text)


# ---- installing ---------------------------------------------------------------------------------


class HelpContext(click.Context):
    """A context whose help formatter speaks the language of the run."""

    def make_formatter(self) -> click.HelpFormatter:
        if _lang != "zh":
            return super().make_formatter()
        return ChineseHelpFormatter(width=self.terminal_width, max_width=self.max_content_width)


def install(commands: Iterable[click.Command]) -> None:
    """Give these commands, and every subcommand of a group among them, the translating context."""
    for command in commands:
        if command.context_class is click.Context:
            command.context_class = HelpContext
        if isinstance(command, click.Group):
            install(command.commands.values())


# ---- the formatter ------------------------------------------------------------------------------

# click's own words, as the formatter is handed them.
FIXED = (
    "Usage:",
    "Options",
    "Commands",
    "Positional arguments",
    "[OPTIONS]",
    "COMMAND [ARGS]...",
    "Show this message and exit.",
    "Show the version and exit.",
    "env var:",
    "default:",
    "required",
)
_RANGE = re.compile(r"\S*[<>]=?\S*")


def width_of(text: str) -> int:
    """Columns a text takes on a terminal: a Chinese character (or full-width sign) takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


# A token the wrapper never splits: a run of ASCII without spaces (an option, a code, a date),
# a space, or one other character. No line starts with closing punctuation (the character before
# it goes down with it; after a word of ASCII it hangs), nor ends with opening punctuation.
_TOKEN = re.compile(r"[!-~]+|\s+|.", re.DOTALL)
_CLOSING = set("，。、；：！？）］」』》”’…,.;:!?)")
_OPENING = set("（［「『《“‘")


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """`text` in lines of at most `width` columns (after `indent`), breaking between Chinese characters."""
    lines: list[str] = []
    line, used = "", 0
    room = max(width - width_of(indent), 10)
    for token in _TOKEN.findall(text):
        size = width_of(token)
        if token.isspace():
            if line:
                line, used = line + " ", used + 1
            continue
        if line and used + size > room:
            last = line[-1]
            if token[0] in _CLOSING:  # the character before it (and its closing signs) go down, or it hangs
                start = len(line.rstrip("".join(_CLOSING))) - 1
                carried = line[start:] if start > 0 and not line[start].isascii() else None
            else:  # opening punctuation goes down to what it opens
                carried = last if last in _OPENING and len(line) > 1 else ""
            if carried is not None:
                lines.append(indent + line[: len(line) - len(carried)].rstrip())
                line, used = carried, width_of(carried)
        line, used = line + token, used + size
    if line.strip():
        lines.append(indent + line.rstrip())
    return lines


def _extras(text: str) -> str:
    """click's `default: x; 1<=x<=1440; required` in Chinese."""
    said: list[str] = []
    required = text == "required" or text.endswith("; required")
    if required:
        text = text.removesuffix("required").removesuffix("; ")
    found_range = _RANGE.fullmatch(text.rpartition("; ")[2]) if text else None
    bounds = ""
    if found_range is not None and "x" in found_range.group(0):
        bounds = found_range.group(0)
        text = text[: -len(bounds)].removesuffix("; ")
    if text.startswith("env var: "):
        variables, _, text = text.removeprefix("env var: ").partition("; ")
        said.append(tr("env var:") + variables)
    if text.startswith("default: "):
        value = text.removeprefix("default: ")
        if value.startswith("(") and value.endswith(")"):
            value = tr(value[1:-1])
        said.append(tr("default:") + value)
    elif text:
        said.append(tr(text))
    if bounds:
        said.append(bounds)
    if required:
        said.append(tr("required"))
    return "；".join(said)


def option_help(text: str) -> str:
    """An option's help as click composed it (`help  [extras]`), in Chinese."""
    extras = ""
    if text.endswith("]"):
        if text.startswith("[") and "  [" not in text:
            text, extras = "", text[1:-1]
        else:
            head, found, tail = text.rpartition("  [")
            if found:
                text, extras = head, tail[:-1]
    said = tr(text) if text else ""
    if extras:
        said = f"{said}［{_extras(extras)}］" if said else f"［{_extras(extras)}］"
    return said


def short_help(text: str) -> str:
    """A command's one-line help as its group lists it; click may have cut it (`…cut...`)."""
    if normal(text) in entries() or not text.endswith("..."):
        return tr(text)
    stem = normal(text[:-3])
    found = sorted((m for m in entries() if m.startswith(stem + " ")), key=len)
    return entries()[found[0]] if found else text


def usage_args(args: str) -> str:
    """The usage line's words: `[OPTIONS]`, `COMMAND [ARGS]...` (metavars of arguments stay)."""
    for english in ("[OPTIONS]", "COMMAND [ARGS]..."):
        if english in args:
            args = args.replace(english, tr(english))
    return args


class ChineseHelpFormatter(click.HelpFormatter):
    """click's formatter, translating what it is handed and wrapping Chinese by display width."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._section = ""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, usage_args(args), tr((prefix or "Usage:").strip()))

    def write_heading(self, heading: str) -> None:
        self.write(f"{'':>{self.current_indent}}{tr(heading)}：\n")

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        outer, self._section = self._section, name
        try:
            with super().section(name):
                yield
        finally:
            self._section = outer

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        out: list[str] = []
        for block in paragraphs(text):
            if block[0].strip() == "\b":  # an example: its lines as they are, a line with an entry translated
                out.append("\n".join(indent + _line(line) for line in block[1:]))
            else:
                lead = " " * (len(block[0]) - len(block[0].lstrip()))
                out.append("\n".join(wrap(tr(" ".join(block)), self.width, indent + lead)))
        self.write("\n\n".join(out) + "\n")

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:  # type: ignore[override]
        rows = list(rows)
        translate = short_help if self._section == "Commands" else option_help
        first_col = min(max((width_of(first) for first, _ in rows), default=0), col_max) + col_spacing
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if width_of(first) <= first_col - col_spacing:
                self.write(" " * (first_col - width_of(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = wrap(translate(second), self.width - first_col - self.current_indent) or [""]
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")


def _line(line: str) -> str:
    stripped = line.strip()
    if normal(stripped) not in entries():
        return line
    return line[: len(line) - len(line.lstrip())] + tr(stripped)


def _prose(line: str) -> bool:
    """A line of an example block that says something: not a command line (or its continuation)."""
    line = line.strip()
    return not line.startswith(("taizhang", "--")) and re.search("[A-Za-z]{2}", line) is not None


def paragraphs(text: str) -> list[list[str]]:
    """The paragraphs of a help text (blank lines part them), each a list of its lines."""
    found: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            found[-1].append(line)
        elif found[-1]:
            found.append([])
    return [block for block in found if block]


# ---- what the catalogue must say ----------------------------------------------------------------


def texts(command: click.Command, ctx: click.Context | None = None) -> Iterator[str]:
    """Every msgid of a command's help (and its subcommands'), as the formatter looks them up."""
    ctx = ctx or click.Context(command, info_name=command.name)
    if command.help:
        import inspect

        text = inspect.cleandoc(command.help).partition("\f")[0]
        for block in paragraphs(text):
            if block[0].strip() == "\b":
                yield from (normal(line) for line in block[1:] if _prose(line))
            else:
                yield normal(" ".join(block))
        yield normal(command.get_short_help_str(sys.maxsize))
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or isinstance(param, click.Argument):
            continue
        if param.help:
            yield normal(param.help)
        show = getattr(param, "show_default", None)
        if isinstance(show, str):
            yield normal(show)
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from texts(sub, click.Context(sub, info_name=name, parent=ctx))


def missing(root: click.Command) -> list[str]:
    """The help texts of `root`'s tree that the catalogue does not translate (for translators)."""
    return sorted({t for t in (*FIXED, *texts(root)) if t and t not in entries()})


def unused(root: click.Command) -> list[str]:
    """The help entries of the catalogue that no help text of `root`'s tree looks up any more."""
    wanted = {*FIXED, *texts(root)}
    return sorted(m for m in entries() if m not in wanted)


def main(argv: list[str]) -> int:
    """`python -m commands.help_i18n`: the help texts without an entry; `unused`: entries no text needs."""
    from commands.cli import cli

    found = unused(cli) if argv[:1] == ["unused"] else missing(cli)
    for text in found:
        print(text)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
