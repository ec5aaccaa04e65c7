"""The Chinese catalogue as a gettext `.po` file: a tiny reader and writer (no dependency).

`commands/locale/zh/LC_MESSAGES/taizhang.po` holds every translation of `--lang zh`:

- entries without a context are message templates (`msgid` the English template with named
  placeholders such as `{code}`, `msgstr` its Chinese; see commands/i18n.py for `{x:term}`);
- entries with `msgctxt "word"` are single words and phrases printed as values (a gender, yes/no,
  an obligation, a field of an event in `audit history`);
- entries with `msgctxt "help"` are the texts of `-h` (commands/help_i18n.py): a paragraph of a
  command's help, its first sentence, an option's help, click's own words.

Any gettext tool (Poedit, Weblate, `msgfmt --check`) opens the file. An entry whose `msgstr` is
empty, or that is marked `#, fuzzy`, is not used: that message prints in English, as gettext does.

    python -m commands.i18n_po check    # parse the file, report its entries, exit 1 on a bad one
    python -m commands.i18n_po format   # rewrite it in the canonical form (after a hand edit)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

PO_PATH = Path(__file__).resolve().parent / "locale" / "zh" / "LC_MESSAGES" / "taizhang.po"
WORD = "word"  # the msgctxt of single words and phrases

HEADER = (
    'msgid ""\n'
    'msgstr ""\n'
    '"Project-Id-Version: taizhang\\n"\n'
    '"Language: zh_CN\\n"\n'
    '"MIME-Version: 1.0\\n"\n'
    '"Content-Type: text/plain; charset=UTF-8\\n"\n'
    '"Content-Transfer-Encoding: 8bit\\n"\n'
)


class PoError(ValueError):
    """A line of the .po file that is not gettext syntax."""


@dataclass
class PoEntry:
    msgid: str
    msgstr: str
    msgctxt: str | None = None
    comments: list[str] = field(default_factory=list)  # `#` lines, kept as they are
    fuzzy: bool = False


def _string(text: str, where: str) -> str:
    text = text.strip()
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise PoError(f"{where}: expected a quoted string, got {text!r}")
    try:
        value = json.loads(text)
    except ValueError as e:
        raise PoError(f"{where}: bad string {text!r}: {e}") from None
    if not isinstance(value, str):
        raise PoError(f"{where}: bad string {text!r}")
    return value


def parse(text: str, name: str = "taizhang.po") -> list[PoEntry]:
    """The entries of a .po file (its header entry, msgid "", left out)."""
    entries: list[PoEntry] = []
    current: dict[str, str] = {}
    comments: list[str] = []
    fuzzy = False
    key: str | None = None

    def close() -> None:
        nonlocal current, comments, fuzzy, key
        if "msgid" in current or "msgstr" in current:
            if "msgid" not in current or "msgstr" not in current:
                raise PoError(f"{name}: an entry without msgid or msgstr: {current!r}")
            if current["msgid"]:
                entries.append(PoEntry(current["msgid"], current["msgstr"], current.get("msgctxt"), comments, fuzzy))
        current, comments, fuzzy, key = {}, [], False, None

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{name}:{number}"
        if not line:
            close()
        elif line.startswith("#"):
            if "msgstr" in current:
                close()
            if line.startswith("#,"):
                fuzzy = fuzzy or "fuzzy" in [flag.strip() for flag in line[2:].split(",")]
            comments.append(raw)
        elif line.startswith('"'):
            if key is None:
                raise PoError(f"{where}: a string outside an entry")
            current[key] += _string(line, where)
        else:
            keyword, _, rest = line.partition(" ")
            if keyword not in ("msgctxt", "msgid", "msgstr"):
                raise PoError(f"{where}: unknown keyword {keyword!r} (plural forms are not used)")
            if keyword in ("msgctxt", "msgid") and "msgstr" in current:
                close()
            if keyword in current:
                raise PoError(f"{where}: {keyword} given twice in one entry")
            current[keyword] = _string(rest, where)
            key = keyword
    close()
    return entries


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def render(entries: list[PoEntry]) -> str:
    """The text of a .po file holding `entries`."""
    out = [HEADER]
    for entry in entries:
        lines = [c for c in entry.comments if not c.startswith("#,")]
        if entry.fuzzy:
            lines.append("#, fuzzy")
        if entry.msgctxt is not None:
            lines.append(f"msgctxt {_quote(entry.msgctxt)}")
        lines.append(f"msgid {_quote(entry.msgid)}")
        lines.append(f"msgstr {_quote(entry.msgstr)}")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def load(path: Path = PO_PATH) -> tuple[dict[str, str], dict[str, str]]:
    """(message templates, words): English → Chinese, without empty or fuzzy entries."""
    messages: dict[str, str] = {}
    words: dict[str, str] = {}
    for entry in parse(path.read_text(encoding="utf-8"), path.name):
        if entry.fuzzy or not entry.msgstr:
            continue
        if entry.msgctxt is None:
            messages[entry.msgid] = entry.msgstr
        elif entry.msgctxt == WORD:
            words[entry.msgid] = entry.msgstr
    return messages, words


def load_context(context: str, path: Path = PO_PATH) -> dict[str, str]:
    """The entries of one `msgctxt` (`help`: the texts of `-h`): English → Chinese, as `load`."""
    return {
        entry.msgid: entry.msgstr
        for entry in parse(path.read_text(encoding="utf-8"), path.name)
        if entry.msgctxt == context and entry.msgstr and not entry.fuzzy
    }


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    try:
        entries = parse(PO_PATH.read_text(encoding="utf-8"), PO_PATH.name)
    except PoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if command == "check":
        seen: set[tuple[str | None, str]] = set()
        twice = [e.msgid for e in entries if (e.msgctxt, e.msgid) in seen or seen.add((e.msgctxt, e.msgid))]
        words = sum(e.msgctxt == WORD for e in entries)
        helps = sum(e.msgctxt == "help" for e in entries)
        untranslated = sum(not e.msgstr or e.fuzzy for e in entries)
        print(
            f"{len(entries) - words - helps} messages, {words} words, {helps} help texts, "
            f"{untranslated} untranslated or fuzzy"
        )
        for msgid in twice:
            print(f"error: msgid given twice: {msgid!r}", file=sys.stderr)
        return 1 if twice else 0
    if command == "format":
        PO_PATH.write_text(render(entries), encoding="utf-8")
        return 0
    print("usage: python -m commands.i18n_po [check|format]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
