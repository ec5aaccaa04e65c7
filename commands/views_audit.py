"""`audit verify --views`: the views are not evidence — recompute them from the log and compare.

Every projection is replayed from the log into a scratch copy (infra.scratch) up to the
position the live views stand at; then each table is read from both in primary-key order
and compared row by row, naming the first row that differs. The digest of the views is
SHA-256 over, for each table in name order, u32 len ‖ name ‖ its rows' digest, where a
table's rows' digest is SHA-256 over u32 len ‖ the row as JSON (a list of its values in
column order), row after row. `audit seal` records that digest, recomputed from the log at
the checkpoint's position, with each projection's version (a new version changes the
tables, so the digest is then not comparable).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import orjson
from sqlalchemy import Connection, MetaData, Table, and_, inspect, select, text

from commands.app import LedgerService
from commands.audit_chain import VerificationFailed
from commands.views import make_projections
from infra.runner import Projection, Runner
from infra.scratch import Scratch, scratch

_U32 = struct.Struct(">I")
Progress = Callable[[int, int], None]


@dataclass
class Digest:
    position: int
    tables: dict[str, str] = field(default_factory=dict)  # name -> hex digest of its rows
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def hex(self) -> str:
        whole = hashlib.sha256()
        for name in sorted(self.tables):
            data = name.encode()
            whole.update(_U32.pack(len(data)) + data + bytes.fromhex(self.tables[name]))
        return whole.hexdigest()


def versions(projections: Sequence[Projection]) -> dict[str, int]:
    return {p.name: p.version for p in projections}


def _tables(projections: Sequence[Projection]) -> list[Table]:
    return sorted((t for p in projections for t in p.metadata.sorted_tables), key=lambda t: t.name)


def _in(table: Table, schema: str, copies: MetaData) -> Table:
    return table.to_metadata(copies, schema=schema)


def _rows(conn: Connection, table: Table) -> Iterator[Any]:
    statement = select(table).order_by(*table.primary_key.columns).execution_options(yield_per=2000)
    yield from conn.execute(statement)


def _encode(row: Any) -> bytes:
    data = orjson.dumps(list(row), default=str)
    return _U32.pack(len(data)) + data


def _build(runner: Runner, position: int, progress: Progress | None) -> None:
    runner.catch_up(progress, until=position)


def _positions(conn: Connection, schema: str) -> dict[str, int]:
    if not inspect(conn).has_table("ledger_tracking", schema=schema):
        raise VerificationFailed("the store has no views to check yet: run taizhang projections run")
    rows = conn.execute(text(f"SELECT projection, position FROM {schema}.ledger_tracking")).all()
    return {row[0]: int(row[1]) for row in rows}


def _digest_scratch(place: Scratch, projections: Sequence[Projection], position: int) -> Digest:
    result = Digest(position)
    copies = MetaData()
    with place.compare() as conn:
        for table in _tables(projections):
            digest, count = hashlib.sha256(), 0
            for row in _rows(conn, _in(table, place.scratch_schema, copies)):
                digest.update(_encode(row))
                count += 1
            result.tables[table.name] = digest.hexdigest()
            result.rows[table.name] = count
    return result


def views_digest(service: LedgerService, position: int, progress: Progress | None = None) -> tuple[Digest, dict[str, int]]:
    """The views recomputed from the log up to `position`: their digest and the projections' versions."""
    projections = make_projections()
    with scratch(service.store) as place:
        runner = Runner(service.recorder, place.builder, projections, service.store.backend)
        runner.ensure_tables()
        _build(runner, position, progress)
        return _digest_scratch(place, projections, position), versions(projections)


def verify_views(service: LedgerService, progress: Progress | None = None, attempts: int = 5) -> Digest:
    """Recompute every view from the log up to where the live views stand and compare them
    table by table; raise VerificationFailed naming the first row that differs."""
    projections = make_projections()
    with scratch(service.store) as place:
        runner = Runner(service.recorder, place.builder, projections, service.store.backend)
        runner.ensure_tables()
        for _ in range(attempts):
            with place.compare() as conn:
                live = _positions(conn, place.live_schema)
            target = _one_position(live, projections)
            _build(runner, target, progress)
            with place.compare() as conn:
                # Workers (PostgreSQL) may have moved the live views on meanwhile: compare only
                # when this snapshot shows them where the scratch copy is.
                if _positions(conn, place.live_schema) != live:
                    continue
                return _compare(conn, place, projections, target)
        raise VerificationFailed(f"the views kept moving while they were checked ({attempts} attempts); try again")


def _one_position(live: dict[str, int], projections: Sequence[Projection]) -> int:
    missing = [p.name for p in projections if p.name not in live]
    if missing:
        raise VerificationFailed(f"the views have no tracking row for {', '.join(missing)}: run taizhang projections rebuild")
    positions = {live[p.name] for p in projections}
    if len(positions) != 1:
        where = ", ".join(f"{p.name} at {live[p.name]}" for p in projections)
        raise VerificationFailed(f"the views stand at different positions ({where}): run taizhang projections run first")
    return positions.pop()


def _compare(conn: Connection, place: Scratch, projections: Sequence[Projection], position: int) -> Digest:
    result = Digest(position)
    copies = MetaData()
    for table in _tables(projections):
        live_table = _in(table, place.live_schema, copies)
        fresh_table = _in(table, place.scratch_schema, copies)
        digest, count = hashlib.sha256(), 0
        if not inspect(conn).has_table(table.name, schema=place.live_schema):
            raise VerificationFailed(f"view {table.name} is missing from the store (recomputed from the log, it exists)")
        for mine, fresh in zip_longest(_rows(conn, live_table), _rows(conn, fresh_table)):
            if mine is None or fresh is None or tuple(mine) != tuple(fresh):
                raise VerificationFailed(f"view {table.name} at position {position}: {_difference(conn, table, fresh_table, mine, fresh)}")
            digest.update(_encode(mine))
            count += 1
        result.tables[table.name] = digest.hexdigest()
        result.rows[table.name] = count
    return result


def _key(table: Table, row: Any) -> str:
    values = row._mapping
    return ", ".join(f"{c.name}={values[c.name]}" for c in table.primary_key.columns)


def _difference(conn: Connection, table: Table, fresh_table: Table, mine: Any, fresh: Any) -> str:
    """Say which row differs, and how."""
    if mine is not None and fresh is not None:
        if [mine._mapping[c.name] for c in table.primary_key.columns] == [
            fresh._mapping[c.name] for c in table.primary_key.columns
        ]:
            changed = [c for c in mine._mapping if mine._mapping[c] != fresh._mapping[c]]
            column = changed[0]
            return (
                f"row ({_key(table, mine)}): {column} is {mine._mapping[column]!r} in the view, "
                f"{fresh._mapping[column]!r} from the log"
            )
        exists = conn.execute(
            select(text("1")).select_from(fresh_table).where(
                and_(*(fresh_table.c[c.name] == mine._mapping[c.name] for c in table.primary_key.columns))
            )
        ).first()
        if exists is None:
            return f"row ({_key(table, mine)}) is in the view but not in the views recomputed from the log"
        return f"row ({_key(table, fresh)}) recomputed from the log is missing from the view"
    if fresh is None:
        return f"row ({_key(table, mine)}) is in the view but not in the views recomputed from the log"
    return f"row ({_key(table, fresh)}) recomputed from the log is missing from the view"
