"""Residents and providers by name: a cell or an option that is not a code of its community.

Clerks write `张秀英`, not `R001`. A value given where a resident (provider) code is
expected is kept when it is a code of the community (enrolled or registered, active or
not: the ledger's rules then judge it). Otherwise it is matched against the names of the
community's ACTIVE residents (providers), normalised (NFKC, whitespace removed, case
folded): exactly one match gives that code; several are refused listing their codes; none
is refused with the nearest names (at most three, difflib) and their codes.

Resident names are stored encrypted. They are matched by decrypting the community's name
envelopes in memory, once per community per resolver (one command or one import), with the
master key (docs/decisions/0011-names-to-codes.md): nothing new is stored, and an erased
resident's name no longer opens, so it is simply no candidate. Without the key file a
resident name is refused with a message that says names need it. Provider names are kept
in clear and need no key.

Only values that are not codes cost anything: the community is loaded once to know its
codes; the read model (projections, `ledger_residents` / `ledger_providers`) is read, and
names decrypted, only when a value is not a code. When the read model lags the log
(PostgreSQL with no projection worker running), the community's own events are read
instead, so a resident enrolled moments ago is found by name all the same.

Every lookup that reveals resident codes (the match, the codes of an ambiguous name, the
nearest names shown) is reported to `log` as (community, code) pairs, for the access log.
"""

from __future__ import annotations

import dataclasses
import difflib
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from commands import tabular
from domain.errors import LedgerError, NotFound
from infra import crypto

RESIDENT = "resident"
PROVIDER = "provider"
NEAREST = 3
CUTOFF = 0.5

Log = Callable[[list[tuple[str, str]]], None]


class NameRefused(LedgerError):
    """A name matched no active person, or several, or needs the key file (exit 1)."""


def normalise(name: str) -> str:
    """A name as matched: NFKC (full-width letters, compatibility forms), no whitespace, case folded."""
    text = name
    for _ in range(4):  # until nothing changes: NFKC can make spaces, and removing them can make pairs compose
        again = "".join(ch for ch in unicodedata.normalize("NFKC", text) if not ch.isspace()).casefold()
        if again == text:
            break
        text = again
    return text


@dataclass
class _Directory:
    """One community's people of one kind: every code, and the active ones by normalised name."""

    codes: frozenset[str]
    by_name: dict[str, list[str]] | None = None  # filled on the first value that is not a code
    shown: dict[str, str] = field(default_factory=dict)  # normalised -> the name as stored


class NameResolver:
    """Codes for names in one command or one import; each community's names are read once.

    `log` receives the (community, resident code) pairs a lookup revealed; `views` is the
    command's open read model (commands.views.Views), or None to open one when first needed
    (then `close()` it).
    """

    def __init__(self, service: Any, *, log: Log | None = None, views: Any = None, catch_up: bool = True) -> None:
        self.service = service
        self.log = log
        self._views = views
        self._own_views = False
        self._prepared = False
        # False inside an import's open transaction on SQLite: the views are read as they are, and a
        # community's own events instead when they lag (catching them up would wait on that very lock).
        self._catch_up = catch_up
        self._lag = 0
        self._keys: Any = None
        self._dirs: dict[tuple[str, str], _Directory | None] = {}
        self.revealed: set[tuple[str, str]] = set()

    # ---- the public calls -------------------------------------------------------------
    def residents(self, community: str, values: Sequence[str]) -> list[str]:
        return self.resolve(RESIDENT, community, values)

    def providers(self, community: str, values: Sequence[str]) -> list[str]:
        return self.resolve(PROVIDER, community, values)

    def resolve(self, who: str, community: str, values: Sequence[str]) -> list[str]:
        """The values with each name replaced by its code; NameRefused for the first that fails.

        An unknown community leaves the values as they are (the write reports the community).
        """
        directory = self._directory(who, community)
        if directory is None:
            return list(values)
        return [self._one(who, community, directory, value) for value in values]

    def search(self, who: str, community: str, typed: str, limit: int = 10) -> list[dict[str, str]]:
        """The active residents (providers) of the community whose name or code starts with, then
        contains, `typed` (normalised as names are matched), at most `limit`, by code; what it
        shows is revealed (logged at `flush`). No key file: resident names cannot be matched, none."""
        text = normalise(typed)
        directory = self._directory(who, community)
        if not text or directory is None or (who == RESIDENT and self.service.master is None):
            return []
        by_name = self._names(who, community, directory)
        ranked = []
        for norm, codes in by_name.items():
            for code in codes:
                key = normalise(code)
                if norm.startswith(text) or key.startswith(text):
                    ranked.append((0, code, directory.shown[norm]))
                elif text in norm or text in key:
                    ranked.append((1, code, directory.shown[norm]))
        found = sorted(ranked)[:limit]
        self._reveal(who, community, [code for _rank, code, _name in found])
        return [{"code": code, "name": name} for _rank, code, name in found]

    def codes(self, community: str) -> tuple[frozenset[str], frozenset[str]] | None:
        """The community's resident and provider codes (every one, active or not); None when it is
        not established. What a value must be to be kept as it is."""
        residents, providers = self._directory(RESIDENT, community), self._directory(PROVIDER, community)
        return None if residents is None or providers is None else (residents.codes, providers.codes)

    def flush(self) -> None:
        """Hand what was revealed since the last flush to `log` (one access-log entry)."""
        if self.revealed and self.log is not None:
            self.log(sorted(self.revealed))
        self.revealed.clear()

    def close(self) -> None:
        if self._own_views and self._views is not None:
            self._views.close()
        self._views = None

    # ---- matching ------------------------------------------------------------------------
    def _one(self, who: str, community: str, directory: _Directory, value: str) -> str:
        text = value.strip()
        if text in directory.codes:
            return text
        if who == RESIDENT and self.service.master is None:
            raise NameRefused(
                f"resident {text} is not a code in community {community}; resident names can be matched "
                "only with the store's key file (set TAIZHANG_KEY_FILE)"
            )
        by_name = self._names(who, community, directory)
        found = by_name.get(normalise(text), [])
        if len(found) == 1:
            self._reveal(who, community, found)
            return found[0]
        if found:
            self._reveal(who, community, found)
            _several(who, text, community, found)
        nearest = difflib.get_close_matches(normalise(text), list(by_name), n=NEAREST, cutoff=CUTOFF)
        self._reveal(who, community, [code for name in nearest for code in by_name[name]])
        shown = ", ".join(f"{directory.shown[name]} ({'/'.join(by_name[name])})" for name in nearest)
        _unknown(who, text, community, shown)

    def _reveal(self, who: str, community: str, codes: Iterable[str]) -> None:
        if who == RESIDENT:  # provider names are not personal data the access log tracks
            self.revealed.update((community, code) for code in codes)

    # ---- reading -----------------------------------------------------------------------------
    def _directory(self, who: str, community: str) -> _Directory | None:
        key = (who, community)
        if key not in self._dirs:
            other = (PROVIDER if who == RESIDENT else RESIDENT, community)
            try:
                aggregate = self.service.get_community(community)
            except NotFound:
                self._dirs[key] = self._dirs[other] = None
            else:  # both kinds from one load
                self._dirs[(RESIDENT, community)] = _Directory(frozenset(aggregate.residents))
                self._dirs[(PROVIDER, community)] = _Directory(frozenset(aggregate.providers))
        return self._dirs[key]

    def _names(self, who: str, community: str, directory: _Directory) -> dict[str, list[str]]:
        if directory.by_name is None:
            rows = self._rows(who, community)
            if who == RESIDENT:
                names = self._open_names(community, rows)
            else:
                names = {row["code"]: row["name"] for row in rows if row.get("retired_on") is None}
            by_name: dict[str, list[str]] = {}
            for code in sorted(names):
                norm = normalise(names[code])
                if norm:
                    by_name.setdefault(norm, []).append(code)
                    directory.shown.setdefault(norm, names[code])
            directory.by_name = by_name
        return directory.by_name

    def _open_names(self, community: str, rows: list[dict[str, Any]]) -> dict[str, str]:
        """code -> clear name of each active resident whose name opens (erased ones do not)."""
        from commands.views import _envelope

        active = [row for row in rows if row.get("departed_on") is None]
        if self._keys is None:
            self._keys = self.service.key_session()
        keys = self._keys
        places = {row["code"]: crypto.resident_field(community, row["code"], "name") for row in active}
        erased = keys.erased_among({place.key_id for place in places.values()})
        keys.prefetch({place.key_id for place in places.values()} - erased)
        names: dict[str, str] = {}
        for row in active:
            place = places[row["code"]]
            if place.key_id in erased:
                continue
            try:
                envelope = row["name"] if isinstance(row["name"], dict) else _envelope(row["name"])
                name = self.service.open_envelope(envelope, keys, where=place)
            except crypto.Unopenable:
                continue  # an envelope from elsewhere is never taken for this resident's name
            if name:
                names[row["code"]] = name
        return names

    def _rows(self, who: str, community: str) -> list[dict[str, Any]]:
        from projections.queries import UnknownUnit, provider_rows, resident_rows

        views = self._ready_views()
        if self._lag:
            return self._rows_from_log(who, community)
        try:
            with views.read() as conn:
                if who == RESIDENT:
                    return resident_rows(conn, community, None)
                return provider_rows(conn, community)
        except UnknownUnit:
            return []  # established moments ago, not yet in the read model

    def _ready_views(self) -> Any:
        if self._views is None:
            from commands.views import Views

            self._views = Views(self.service)
            self._own_views = True
        if not self._prepared:
            if self._catch_up or not self._views.embedded:
                self._lag = self._views.prepare()  # PostgreSQL: the views may lag the log (no worker running)
            else:
                self._lag = 0 if self._views.current(self._views.state()) else 1
            self._prepared = True
        return self._views

    def _rows_from_log(self, who: str, community: str) -> list[dict[str, Any]]:
        """The rows `_rows` reads from the views, read from the community's own events instead:
        when the views lag the log, a person enrolled since must still be found by name."""
        from domain.community import Community
        from domain.ids import community_id
        from infra.codec import decode_payload

        people: dict[str, dict[str, Any]] = {}
        if who == RESIDENT:
            start, end, gone = Community.ResidentEnrolled.TOPIC, Community.ResidentDeparted.TOPIC, "departed_on"
        else:
            start, end, gone = Community.ProviderRegistered.TOPIC, Community.ProviderRetired.TOPIC, "retired_on"
        for stored in self.service.recorder.select_events(community_id(community)):
            if stored.topic == start:
                payload = decode_payload(stored.state)
                people[payload["code"]] = {"code": payload["code"], "name": payload["name"], gone: None}
            elif stored.topic == end:
                payload = decode_payload(stored.state)
                if payload["code"] in people:
                    people[payload["code"]][gone] = payload["on"]
        return [people[code] for code in sorted(people)]


def _several(who: str, text: str, community: str, found: list[str]) -> NoReturn:
    listed, count = ", ".join(found), len(found)
    if who == RESIDENT:
        raise NameRefused(
            f"resident {text} names {count} active residents of community {community}: {listed}; give one of these codes"
        )
    raise NameRefused(
        f"provider {text} names {count} active providers of community {community}: {listed}; give one of these codes"
    )


def _unknown(who: str, text: str, community: str, nearest: str) -> NoReturn:
    if who == RESIDENT and nearest:
        raise NameRefused(
            f"resident {text} is neither a code nor an active resident's name in community {community}; "
            f"nearest names: {nearest}"
        )
    if who == RESIDENT:
        raise NameRefused(f"resident {text} is neither a code nor an active resident's name in community {community}")
    if nearest:
        raise NameRefused(
            f"provider {text} is neither a code nor an active provider's name in community {community}; "
            f"nearest names: {nearest}"
        )
    raise NameRefused(f"provider {text} is neither a code nor an active provider's name in community {community}")


# ---- the hooks --------------------------------------------------------------------------------
def options_by_name(
    env: Any, model: type[Any], data: dict[str, Any], *, log: Callable[[dict[str, str]], Log] | None = None
) -> dict[str, Any]:
    """`service record|correct` data with the names among --resident/--provider replaced by codes.

    Every other field is judged first, without reading the store (a malformed command
    exits 2 whatever its names). The access-log entry is written before anything is
    printed, also when the lookup is refused; it shows the codes a name gave, never the
    name typed (the access log cannot be erased, a name must not stay there in clear).
    """
    listed = [key for key in ("residents", "providers") if data.get(key)]
    if not listed:
        return data
    probe = env.validate(model, {**data, **{key: ["X"] for key in listed}})
    shown: dict[str, str] = {}
    resolver = NameResolver(env.service(), log=(log or _access_logger_for(env))(shown))
    try:
        resolved = dict(data)
        for key in listed:
            who = RESIDENT if key == "residents" else PROVIDER
            resolved[key] = []
            for value in data[key]:
                resolved[key].append(_cell(resolver, who, probe.community, value))
                if who == RESIDENT:
                    shown[value] = resolved[key][-1]
        return resolved
    finally:
        try:
            resolver.flush()
        finally:
            resolver.close()


NAME_SHOWN = "(a name)"
"""What the access log's detail shows for a resident name that gave no code."""


def _access_logger_for(env: Any) -> Callable[[dict[str, str]], Log]:
    """The CLI's access logger (the running click command's options); the web passes its own."""
    return lambda shown: _access_logger(env, shown)


def _access_logger(env: Any, shown: dict[str, str]) -> Log:
    """Env.log_access, with each --resident name in the logged options replaced by its code."""

    def log(residents: list[tuple[str, str]]) -> None:
        import click

        from commands.access_log import command_of

        ctx = click.get_current_context()
        typed = ctx.params.get("residents") or ()
        saved = ctx.params
        ctx.params = {**saved, "residents": tuple(shown.get(value, NAME_SHOWN) for value in typed)}
        try:
            command, detail = command_of(ctx)
        finally:
            ctx.params = saved
        actor = env.actor.strip() if env.actor and env.actor.strip() else None
        env.service().log_access(actor, command, detail, residents)

    return log


def _cell(resolver: NameResolver, who: str, community: str, value: Any) -> Any:
    """A cell or option value (one or several separated items), its names replaced by codes."""
    items = [str(item) for item in value] if isinstance(value, list) else tabular.split_list(value)
    if not items:
        return value
    codes = resolver.resolve(who, community, items)
    return value if codes == items else ";".join(codes)


@dataclass(frozen=True)
class RowProblem:
    row: int
    field: str
    problem: str


class RowNames:
    """The names in a services sheet's residents/providers cells replaced by codes, row by row
    (import hook; `close()` when done: it hands what was revealed to `log`).

    Runs on the raw cells before the rows are validated, so that a name written with spaces
    (`王  芳`, aligned as clerks do) is still a name. A row whose cells are all codes is kept
    as it is; a row with a name that does not resolve is kept as it is and its problems are
    returned, for `settle` once the row is validated. `default_community` is the community of rows
    without one (a village's own sheet imported with `--community`). Each resident revealed
    is logged once, at `close()`.
    """

    def __init__(
        self, service: Any, *, log: Log | None = None, default_community: str | None = None, catch_up: bool = True
    ) -> None:
        self.resolver = NameResolver(service, log=log, catch_up=catch_up)
        self.default_community = default_community
        self.communities: dict[object, str | None] = {}
        # Sheets repeat their cells: each distinct (kind, community, cell) is resolved once, among
        # the last DONE_CELLS (a sheet of codes may hold as many distinct cells as rows).
        self.done: dict[tuple[str, str, object], object] = {}

    DONE_CELLS = 20_000

    def community(self, row: tabular.Row) -> str | None:
        """The community of a row: its own cell, else the default; None when it has neither."""
        cell = row.values.get("community")
        if cell not in self.communities:
            self.communities[cell] = _community_of(cell, self.default_community)
        return self.communities[cell]

    def resolve_cell(self, who: str, community: str, cell: object) -> object:
        """The cell with its names replaced by codes, or the NameRefused that says why it cannot be."""
        try:
            return _cell(self.resolver, who, community, cell)
        except NameRefused as e:
            return e

    def resolved(self, who: str, community: str, cell: object) -> object:
        """`resolve_cell`, once for each distinct cell among the last DONE_CELLS."""
        done = self.done
        key = cell_key(who, community, cell)
        out = done.get(key, done)
        if out is done:
            out = self.resolve_cell(who, community, cell)
            if len(done) >= self.DONE_CELLS:
                done.clear()  # resolving again gives the same answer (and reveals nothing new)
            done[key] = out
        return out

    def row(self, row: tabular.Row) -> tuple[tabular.Row, list[RowProblem]]:
        community = self.community(row)
        if community is None:
            return row, []
        values = row.values
        problems: list[RowProblem] = []
        changed: dict[str, object] | None = None
        for column, who in PEOPLE_COLUMNS:
            cell = values.get(column)
            if not cell:
                continue
            out = self.resolved(who, community, cell)
            if isinstance(out, NameRefused):  # the cell stays as it is, for `settle`
                problems.append(RowProblem(row.number, column, str(out)))
                continue
            if out is not cell and out != cell:
                changed = changed if changed is not None else dict(values)
                changed[column] = out
        return (row if changed is None else tabular.Row(row.number, changed)), problems

    def close(self) -> None:
        try:
            self.resolver.flush()
        finally:
            self.resolver.close()


def resolve_table(
    service: Any,
    kind: str,
    table: tabular.Table,
    *,
    log: Log | None = None,
    default_community: str | None = None,
) -> tuple[tabular.Table, list[RowProblem]]:
    """A services sheet with the names in its residents/providers cells replaced by codes (RowNames,
    for a table whose rows are held)."""
    if kind != "services":
        return table, []
    names = RowNames(service, log=log, default_community=default_community)
    rows: list[tabular.Row] = []
    problems: list[RowProblem] = []
    try:
        for row in table.rows:
            out, found = names.row(row)
            rows.append(out)
            problems += found
    finally:
        names.close()
    if all(a is b for a, b in zip(rows, table.rows, strict=True)):
        return table, problems
    return dataclasses.replace(table, rows=rows), problems


PEOPLE_COLUMNS = (("residents", RESIDENT), ("providers", PROVIDER))


def cell_key(who: str, community: str, cell: object) -> tuple[str, str, object]:
    """What a resolved cell is remembered by (a cell that is not a text by its repr)."""
    return (who, community, cell if isinstance(cell, str) else repr(cell))


def _community_of(cell: object, default: str | None) -> str | None:
    text = tabular.text(cell) if cell is not None else None
    text = text.strip() if text else None
    return text or default


def settle(
    named: list[RowProblem], valid: list[Any], malformed: list[Any], problem: Callable[..., Any]
) -> tuple[list[Any], list[Any]]:
    """The validated rows and problems of an import once the names that did not resolve are counted.

    Malformed input is judged as without names: a row with another malformed cell reports that
    (exit 2) and not its name. Otherwise the name's refusal (exit 1) replaces what validation
    said about the name's own cell (e.g. that a code has no spaces), and the row is not applied.
    """
    if not named:
        return valid, malformed
    failed: dict[int, set[str]] = {}
    for p in named:
        failed.setdefault(p.row, set()).add(p.field)
    kept = [p for p in malformed if p.field not in failed.get(p.row, ())]
    bad = {p.row for p in kept}
    refusals = [problem(p.row, p.field, p.problem, malformed=False) for p in named if p.row not in bad]
    return [v for v in valid if v.row not in failed], kept + refusals


def matches(
    env: Any, who: str, community: str, typed: str, *, log: Log | None = None, limit: int = 10
) -> list[dict[str, str]]:
    """The name picker's answer: `NameResolver.search` over the store `env` opens; the residents
    it shows are handed to `log` (one access-log entry), as a name lookup of `service record` is."""
    resolver = NameResolver(env.service(), log=log, views=env.views())
    try:
        return resolver.search(who, community, typed, limit)
    finally:
        try:
            resolver.flush()
        finally:
            resolver.close()
