"""Error messages and notes in the language of --lang: a catalogue of English templates.

The domain and the lower layers speak English (their messages are the source text, as
in gettext); the CLI translates at the edge, just before a line is printed. Each catalogue
entry is an English template with named placeholders and its Chinese template, kept in the
gettext file commands/locale/zh/LC_MESSAGES/taizhang.po (msgid → msgstr):

    "resident {code} is not enrolled in community {community}": "服务对象 {code} 未在社区 {community} 入册"

A message is matched as a whole against every English template; the most specific
match (the most literal text) wins. A placeholder's value is kept verbatim (codes, dates,
file names, what the user typed), except when the placeholder says otherwise:

- `{name:term}` a word of the ledger (one of `TERMS`, or any single word), translated by
  `TERMS`: the column labels of commands/labels.py and a few more; an option such as
  `--kind` or an unknown word stays as it is;
- `{name:field}` the field that frames a message (`field: problem`): any text without ": ",
  translated like a term;
- `{name:msg}`  a message of its own, translated recursively (`field: problem`);
- `{name:int}`  digits only (narrows the match);
- `{name:columns}` the columns of an import as `Column.describe` lists them
  (`minutes (时长(分钟) / 时长 / 分钟), kind (服务类型)`), said by their Chinese headers;
- `{name:slugs}` a list of slugs (`life_care, counseling`), said by their Chinese labels
  (a slug outside the vocabularies, which only its slug selects, as `slug（word）`);
- `{name:word}` one word of the `msgctxt "word"` entries (`ServiceRecorded`, `admin`).

A message with no entry prints as it is, in English: a new message is never lost, only not
yet translated. `tests/unit/test_i18n.py` finds every message template in the source tree
and fails on one without an entry in the .po file, unless it is listed in `NOT_YET_TRANSLATED`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property

from commands.labels import FIELDS, STATUS

PREFIX = {"en": "Error: ", "zh": "错误："}


NOTE = {"en": "Note: ", "zh": "注意："}

# Message templates of the source tree, written as the coverage test prints them (each
# interpolation is `{}`), that have no catalogue entry yet. Whoever merges a branch that
# adds messages may list them here to keep the build green; translating one means adding
# its entry to CATALOGUE and removing it from this list (the test fails on a stale line).
NOT_YET_TRANSLATED: frozenset[str] = frozenset()

# Words that fill a `{name:term}` placeholder: field names (as the models and the import
# columns name them), their English labels, and the few other words messages insert.
_EXTRA_TERMS = {
    "text": "文本",
    "reason": "原因",
    "summary": "述职摘要",
    "item": "督办事项",
    "on": "日期",
    "input": "输入",
    "date": "日期",
    "today": "今天",
    "record id": "记录编号",
    "resident": "服务对象",
    "provider": "服务人员",
    "category": "类别",
    "unit": "单位",
    "the whole store": "整个台账库",
    "period": "考核期",
    # verdicts of an import
    "malformed": "有误",
    "refused": "被拒绝",
    # what a spreadsheet cell should hold (commands/tabular.py)
    "a date": "日期",
    "a date and time": "日期时间",
    "a whole number": "整数",
    "a duration": "时长",
    "a time of day": "时刻",
    "hours": "小时",
    "communities": "社区",
    # click's names of types and paths
    "integer": "整数",
    "integer range": "整数",
    "float": "数字",
    "float range": "数字",
    "File": "文件",
    "Directory": "文件夹",
    "Path": "路径",
}


def _terms() -> dict[str, str]:
    terms: dict[str, str] = {}
    for field, (en, zh) in FIELDS.items():
        terms[field] = zh
        terms.setdefault(en, zh)
    for slug, (_en, zh) in STATUS.items():
        terms[slug] = zh
    terms.update(_EXTRA_TERMS)
    return terms


TERMS: dict[str, str] = _terms()


# ---- the catalogue ------------------------------------------------------------------------------
# The catalogue is commands/locale/zh/LC_MESSAGES/taizhang.po (commands/i18n_po.py), read on the
# first Chinese message only: `taizhang --help` and English runs never parse it.


@cache
def _po() -> tuple[dict[str, str], dict[str, str]]:
    from commands.i18n_po import load

    return load()


def catalogue() -> dict[str, str]:
    """Message templates: English template with named placeholders → Chinese template."""
    return _po()[0]


def words() -> dict[str, str]:
    """Single words and phrases printed as values (`msgctxt "word"`): English → Chinese."""
    return _po()[1]


def word(english: str, lang: str) -> str:
    """A word or phrase printed as a value (a gender, yes/no, a field name) in `lang`."""
    if lang != "zh":
        return english
    return words().get(english, english)


def __getattr__(name: str) -> object:  # `CATALOGUE` stays importable, loaded when first used
    if name == "CATALOGUE":
        return catalogue()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- the matcher --------------------------------------------------------------------------------
PLACEHOLDER = re.compile(r"\{(\w+)(?::(field|term|msg|int|columns|slugs|word))?\}")
# A field, or a value that opens a message, never spans ": ": that is how a message is framed
# by its field (`occurred_at: … is in the future`), and the frame must be translated too.
_NO_COLON = r"(?:(?!: ).)+?"
# A term inside a sentence is one of TERMS or a single word, so that it cannot swallow the
# words in front of it (`skipped reason must not be empty`).
_TERM = "(?:" + "|".join(re.escape(t) for t in sorted(TERMS, key=len, reverse=True)) + r"|[^\s:]+)"
_GROUP = {
    "": ".+?",
    "field": _NO_COLON,
    "term": _TERM,
    "msg": ".+?",
    "int": r"[-+]?\d+",
    "columns": ".+?",
    "slugs": ".+?",
    "word": r"\S+",
}  # word: see compile_entry
_COLUMN = re.compile(r"(\w+) \((.+?)\)")
_MAX_DEPTH = 4


@dataclass(frozen=True)
class Entry:
    """One catalogue entry, ready to match."""

    english: str
    chinese: str
    regex: str
    kinds: dict[str, str]  # placeholder -> "" | "field" | "term" | "msg" | "int"
    weight: int  # characters of literal text: the more, the more specific
    anchor: str  # its longest piece of literal text: a message without it cannot match

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.regex, re.DOTALL)

    def match(self, message: str) -> re.Match[str] | None:
        return self.pattern.fullmatch(message) if self.anchor in message else None


def compile_entry(english: str, chinese: str, *, loose: bool = False) -> Entry:
    """An entry ready to match; `loose` lets `{name:int}` match any text (to match templates)."""
    parts: list[str] = []
    literals: list[str] = []
    kinds: dict[str, str] = {}
    end = 0
    for m in PLACEHOLDER.finditer(english):
        name, kind = m.group(1), m.group(2) or ""
        if name in kinds:
            raise ValueError(f"placeholder {name} appears twice in {english!r}")
        kinds[name] = kind
        literals.append(english[end : m.start()])
        parts.append(re.escape(literals[-1]))
        group = _NO_COLON if m.start() == 0 and kind == "" else _GROUP["" if loose and kind == "int" else kind]
        if kind == "word" and not loose:  # one of the words only: never a piece of another sentence
            group = "(?:" + "|".join(re.escape(w) for w in sorted(words(), key=len, reverse=True)) + ")"
        parts.append(f"(?P<{name}>{group})")
        end = m.end()
    literals.append(english[end:])
    parts.append(re.escape(literals[-1]))
    weight = sum(map(len, literals))
    return Entry(english, chinese, "".join(parts), kinds, weight, max(literals, key=len))


@cache
def entries() -> tuple[Entry, ...]:
    """The catalogue compiled, most specific first (compiled on the first Chinese message only)."""
    compiled = [compile_entry(en, zh) for en, zh in catalogue().items()]
    order = {entry.english: i for i, entry in enumerate(compiled)}
    return tuple(sorted(compiled, key=lambda e: (-e.weight, order[e.english])))


def term(word: str, terms: Mapping[str, str] | None = None) -> str:
    """A field or word in Chinese; an option (`--kind`) or an unknown word as it is."""
    if terms and word in terms:
        return terms[word]
    return TERMS.get(word, word)


def _zh(message: str, terms: Mapping[str, str] | None, depth: int) -> str:
    if depth > _MAX_DEPTH:
        return message
    for entry in entries():
        match = entry.match(message)
        if match is None:
            continue
        values: dict[str, str] = {}
        for name, kind in entry.kinds.items():
            value = match.group(name)
            if kind in ("field", "term"):
                value = term(value, terms)
            elif kind == "msg":
                value = _zh(value, terms, depth + 1)
            elif kind == "columns":
                value = _columns_zh(value)
            elif kind == "slugs":
                value = _slugs_zh(value)
            elif kind == "word":
                value = words().get(value, value)
            values[name] = value
        return fill(entry.chinese, values)
    return message


def _columns_zh(value: str) -> str:
    """`minutes (时长(分钟) / 时长 / 分钟), kind (服务类型)` → `时长(分钟)（或 时长 / 分钟）、服务类型`."""
    said = []
    for item in re.split(r"[;,] ", value):
        m = _COLUMN.fullmatch(item)
        if m is None:
            said.append(term(item))
            continue
        header, *aliases = m.group(2).split(" / ")
        said.append(f"{header}（或 {' / '.join(aliases)}）" if aliases else header)
    return "、".join(said)


def _slugs_zh(value: str) -> str:
    """`life_care, counseling` (the slugs an error offers) → `生活照料、心理抚慰` (a label is accepted too)."""
    from domain.vocab import CATEGORIES, GENDERS, KINDS, PLACES, ROLES

    said = []
    either = " or " in value  # `admin or projector`: the roles a permission needs
    for slug in re.split(r", | or ", value):
        vocabulary = next((v for v in (KINDS, CATEGORIES, PLACES, ROLES, GENDERS) if slug in v), None)
        if vocabulary is not None:
            said.append(vocabulary.label(slug, "zh"))
        else:
            said.append(f"{slug}（{words()[slug]}）" if slug in words() else slug)
    return ("或" if either else "、").join(said)


def fill(template: str, values: Mapping[str, str]) -> str:
    """A template with its placeholders replaced by `values`."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def translate(message: str, lang: str, *, terms: Mapping[str, str] | None = None) -> str:
    """`message` in `lang`; unchanged in English, or when the catalogue has no entry for it.

    `terms` adds field names of the context (an import's Chinese column headers)."""
    if lang != "zh":
        return message
    try:
        return _zh(message, terms, 0)
    except Exception:  # a translation must never cost the user the message itself
        return message


def error_line(message: str, lang: str) -> str:
    """The one line of an error: `Error: …` or `错误：…`."""
    return PREFIX.get(lang, PREFIX["en"]) + translate(message, lang)


def note_line(message: str, lang: str) -> str:
    """A note printed after a command succeeded: `Note: …` or `注意：…`."""
    return NOTE.get(lang, NOTE["en"]) + translate(message, lang)


def import_terms(kind: str) -> dict[str, str]:
    """An import's columns by their Chinese headers, as the clerk's spreadsheet names them."""
    from commands.tabular import COLUMNS

    return {column.name: column.zh for column in COLUMNS.get(kind, [])}
