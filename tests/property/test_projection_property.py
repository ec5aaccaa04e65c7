"""The ledger views against the log they are projected from (DESIGN §4, §5), on random histories.

Random histories go through `LedgerService` (four communities in two townships of two counties —
the township name 城关镇 exists in both counties —, residents of random categories, providers,
services over three months, corrections of minutes/kind/residents/occurred_at, voids, departures,
category updates, a community established late). Projection runs of a few events each are
interleaved with the writes, so the views are kept incrementally, and then caught up. Then:

(a) incremental == rebuild: every row of every ledger table equals a rebuild from scratch, in the
    default batches and in batches of one event;
(b) as of a recorded time T (or at a log position N) equals the current state of views projected
    from only the events recorded at or before T (up to N), in a separate store;
(c) `summary` equals the totals of `entries`, per unit, for every unit known to the store, with
    and without a category, kinds and date ranges that cut months, now and as of a past T;
(d) every recorded service appears exactly once in `entries(include_voided=True)`, with the
    revision, status, fields and times that its events in the log give it.

The expectations never come from the code under test: they come from the log (decoded here),
from the generated history, or from the other side of the equality.
"""

from __future__ import annotations

import os
import random
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from commands import models
from commands.app import LedgerService
from commands.views import Views
from domain.errors import LedgerError
from domain.vocab import KINDS
from infra import crypto
from infra.runner import BATCH_SIZE, Runner, engines
from infra.store import parse_url
from projections import queries
from projections import tables as t
from projections.filters import Filters, Moment, Unit
from projections.ledger import LedgerProjection
from tests.conftest import drop_pg_database, make_pg_database

TZ = ZoneInfo("Asia/Shanghai")  # the default store zone
ACTOR = "clerk"
FIRST_DAY = date(2026, 7, 1)  # services from 2026-07-01 to 2026-09-30: three whole months
DAYS = 92
ALL_KINDS = list(KINDS.labels)
KIND_CHOICES = ["life_care", "counseling", "family_care", "emergency_aid"]
CATEGORIES = ["left_behind_child", "left_behind_elderly", "hardship"]
RESIDENTS_AT_START = 4
MAX_RESIDENTS = 6  # R0..R3 enrolled with the community, R4 and R5 by later commands

# code -> (name, county, township); D is established only when a command says so.
GEOGRAPHY = {
    "A": ("石门社区", "八步区", "城关镇"),
    "B": ("新塘社区", "八步区", "贺街镇"),
    "C": ("大岭社区", "钟山县", "城关镇"),
    "D": ("龙井社区", "八步区", "城关镇"),
}
AT_START = ["A", "B", "C"]

AGGREGATES = {
    t.month_kind.name,
    t.month_resident.name,
    t.month_category_kind.name,
    t.month_category_resident.name,
}



# ==== helpers shared with tests/integration/test_runner.py =====================================

# Throwaway stores live in memory when the machine has /dev/shm (no fsync per commit).
FAST_TMP = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(dir=FAST_TMP, prefix="taizhang-test-")


def _row_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((value is None, value) for value in row)


def dump_views(engine: Engine, tables: Sequence[Any] = t.TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (by default: of the ledger), sorted: nothing dropped."""
    with engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=_row_key)
            for table in tables
        }


def check_totals_invariants(dump: dict[str, list[tuple[Any, ...]]]) -> None:
    """No negative count; a total without records has no minutes either."""
    for name in AGGREGATES:
        columns = [c.name for c in t.metadata.tables[name].columns]
        for row in dump[name]:
            values = dict(zip(columns, row, strict=True))
            assert values["records"] >= 0, (name, row)
            if "minutes" in values:
                assert values["minutes"] >= 0, (name, row)
                if values["records"] == 0:
                    assert values["minutes"] == 0, (name, row)


class LogPrefix:
    """The recorder as it stood when position `last` was the head: the runner sees no later event.

    The runner only calls `select_notifications(start, limit)`, `recorded_times(first, last)` and
    `max_notification_id()`.
    """

    def __init__(self, recorder: Any, last: int) -> None:
        self.recorder = recorder
        self.last = last

    def select_notifications(
        self, start: int, limit: int, stop: int | None = None, topics: Sequence[str] = (), **kw: Any
    ) -> list[Any]:
        stop = self.last if stop is None else min(stop, self.last)
        if start is not None and start > stop:
            return []
        found = self.recorder.select_notifications(start, limit, stop=stop, topics=topics, **kw)
        return [n for n in found if n.id <= self.last]

    def recorded_times(self, first: int, last: int) -> list[tuple[int, int, str]]:
        return list(self.recorder.recorded_times(first, min(last, self.last)))

    def max_notification_id(self) -> int:
        return min(int(self.recorder.max_notification_id() or 0), self.last)


@contextmanager
def prefix_views(
    recorder: Any, last: int, path: Path, batch: int = BATCH_SIZE, projections: Sequence[Any] | None = None
) -> Iterator[Engine]:
    """Views projected from the events at positions <= `last`, in batches of `batch` events, into a new
    SQLite file (by default the ledger projection only); yields its reader."""
    writer, reader = engines(parse_url(f"sqlite:///{path}"))
    try:
        runner = Runner(LogPrefix(recorder, last), writer, projections or [LedgerProjection()], "sqlite")
        runner.ensure_tables()
        while runner.run_batch(limit=batch):
            pass
        assert set(runner.positions().values()) == {last}
        yield reader
    finally:
        writer.dispose()
        reader.dispose()


def read_log(recorder: Any) -> list[tuple[Any, dict[str, Any]]]:
    """(notification, decoded payload) of every event, in log order."""
    found: list[tuple[Any, dict[str, Any]]] = []
    start = 1
    while True:
        batch = recorder.select_notifications(start, 500)
        if not batch:
            return found
        found.extend((n, orjson.loads(n.state)) for n in batch)
        start = batch[-1].id + 1


def commit_times(recorder: Any, head: int) -> dict[int, str]:
    """Log position -> the recorded time of the commit that holds it."""
    times: dict[int, str] = {}
    for first, last, at in recorder.recorded_times(1, head):
        for position in range(first, last + 1):
            times[position] = at
    return times


def _topic(name: str) -> str:
    return f"taizhang:Community.{name}"


# ==== the generated histories ====================================================================

# Days on and next to the ends of the date ranges the summaries are asked about, and month ends;
# times at local and UTC midnight: where an off-by-one would show.
EDGE_DAYS = sorted(
    {
        (edge - FIRST_DAY).days + shift
        for edge in (date(2026, 7, 10), date(2026, 7, 20), date(2026, 7, 15), date(2026, 8, 20), date(2026, 9, 10),
                     date(2026, 8, 1), date(2026, 8, 10), date(2026, 9, 1), date(2026, 9, 30), date(2026, 7, 31))
        for shift in (-1, 0, 1)
    }
    & set(range(DAYS))
)
EDGE_TIMES = [0, 1, 7 * 60 + 59, 8 * 60, 16 * 60 - 1, 16 * 60, 24 * 60 - 1]

operations = st.fixed_dictionaries(
    {
        "op": st.sampled_from(
            ["record"] * 8 + ["correct"] * 4 + ["update"] * 2 + ["void", "depart", "enroll", "establish"] + ["project"] * 3
        ),
        "community": st.integers(0, 3),
        "day": st.one_of(st.integers(0, DAYS - 1), st.sampled_from(EDGE_DAYS)),
        "time": st.one_of(st.integers(0, 24 * 60 - 1), st.sampled_from(EDGE_TIMES)),
        "utc": st.booleans(),
        "kind": st.sampled_from(KIND_CHOICES),
        "residents": st.sets(st.integers(0, MAX_RESIDENTS - 1), min_size=1, max_size=3),
        "providers": st.sets(st.integers(0, 1), min_size=1, max_size=2),
        "minutes": st.integers(1, 240),
        "target": st.integers(0, 10**6),
        "fields": st.sets(st.sampled_from(["minutes", "kind", "residents", "occurred_at"]), min_size=1, max_size=2),
        "categories": st.sets(st.sampled_from(CATEGORIES), max_size=2),
        "batch": st.integers(1, 6),
    }
)

histories = st.fixed_dictionaries(
    {
        "people": st.lists(
            st.sets(st.sampled_from(CATEGORIES), max_size=2),
            min_size=len(GEOGRAPHY) * RESIDENTS_AT_START,
            max_size=len(GEOGRAPHY) * RESIDENTS_AT_START,
        ),
        "ops": st.lists(operations, min_size=8, max_size=60),
    }
)


@dataclass
class World:
    """What the generated commands did, as far as choosing the next valid command needs it."""

    service: LedgerService
    views: Views
    people: list[set[str]]
    established: list[str] = field(default_factory=list)
    departed: dict[tuple[str, str], date | None] = field(default_factory=dict)  # enrolled residents
    records: list[tuple[str, str]] = field(default_factory=list)  # (community, record_id)
    voided: set[str] = field(default_factory=set)
    served: set[tuple[str, str]] = field(default_factory=set)  # (community, resident) named by a service
    issued: int = 0
    accepted: Counter[str] = field(default_factory=Counter)

    def attempt(self, op: str, action: Any) -> None:
        try:
            action()
        except (LedgerError, models.Malformed):
            return  # refused or malformed: the store is unchanged (tested elsewhere)
        self.accepted[op] += 1

    # ---- commands ---------------------------------------------------------------------------
    def establish(self, code: str) -> None:
        service = self.service
        name, county, township = GEOGRAPHY[code]
        data = {"code": code, "name": name, "county": county, "township": township, "village": name[:2] + "村",
                "established_on": FIRST_DAY}
        service.establish_community(service.validate(models.EstablishCommunity, data), ACTOR)
        index = list(GEOGRAPHY).index(code)
        for number in range(RESIDENTS_AT_START):
            categories = sorted(self.people[index * RESIDENTS_AT_START + number])
            self.enroll(code, f"R{number}", categories)
        for number in range(2):
            cmd = {"community": code, "code": f"P{number}", "name": f"服务员{number}", "role": "volunteer"}
            service.register_provider(service.validate(models.RegisterProvider, cmd), ACTOR)
        self.established.append(code)

    def enroll(self, code: str, resident: str, categories: list[str]) -> None:
        cmd = {"community": code, "code": resident, "name": "张秀英", "categories": categories}
        self.service.enroll_resident(self.service.validate(models.EnrollResident, cmd), ACTOR)
        self.departed[(code, resident)] = None

    def active_residents(self, code: str, indices: set[int], day: date) -> list[str]:
        chosen = []
        for number in sorted(indices):
            key = (code, f"R{number}")
            if key in self.departed:
                departed = self.departed[key]
                if departed is None or day < departed:
                    chosen.append(key[1])
        return chosen

    def apply(self, op: dict[str, Any]) -> None:
        service = self.service
        kind = op["op"]
        if kind == "project":
            self.views.runner.run_batch(limit=op["batch"])
            return
        if kind == "establish":
            if "D" not in self.established:
                self.attempt(kind, lambda: self.establish("D"))
            return
        code = self.established[op["community"] % len(self.established)]
        at, local_day = moment(op)
        if kind == "record":
            residents = self.active_residents(code, op["residents"], local_day)
            if not residents:
                return
            self.issued += 1
            record_id = str(uuid.UUID(int=self.issued, version=4))
            data = {"community": code, "kind": op["kind"], "residents": residents,
                    "providers": [f"P{i}" for i in sorted(op["providers"])], "occurred_at": at,
                    "minutes": op["minutes"]}

            def record() -> None:
                service.record_service(service.validate(models.RecordService, data), ACTOR, record_id)
                self.records.append((code, record_id))
                self.served.update((code, r) for r in residents)

            self.attempt(kind, record)
            return
        active = [r for r in self.records if r[1] not in self.voided]
        if kind in ("correct", "void"):
            if not active:
                return
            community, record_id = active[op["target"] % len(active)]
            if kind == "void":
                data = {"community": community, "record_id": record_id, "reason": "重复登记"}

                def void() -> None:
                    service.void_service(service.validate(models.VoidService, data), ACTOR)
                    self.voided.add(record_id)

                self.attempt(kind, void)
                return
            changes: dict[str, Any] = {}
            if "minutes" in op["fields"]:
                changes["minutes"] = op["minutes"]
            if "kind" in op["fields"]:
                changes["kind"] = op["kind"]
            if "occurred_at" in op["fields"]:
                changes["occurred_at"] = at
            if "residents" in op["fields"]:
                changes["residents"] = [f"R{i}" for i in sorted(op["residents"]) if (community, f"R{i}") in self.departed]
                if not changes["residents"]:
                    return
            data = {"community": community, "record_id": record_id, "reason": "更正", **changes}
            self.attempt(kind, lambda: service.correct_service(service.validate(models.CorrectService, data), ACTOR))
            return
        if kind == "enroll":
            number = next((n for n in range(MAX_RESIDENTS) if (code, f"R{n}") not in self.departed), None)
            if number is not None:
                self.attempt(kind, lambda: self.enroll(code, f"R{number}", sorted(op["categories"])))
            return
        present = sorted(key for key, departed in self.departed.items() if departed is None)
        if kind == "update" and op["target"] % 4 and set(present) & self.served:
            present = sorted(set(present) & self.served)  # mostly someone already served: revisions to come see it
        if not present:
            return
        community, resident = present[op["target"] % len(present)]
        if kind == "depart":
            on = FIRST_DAY + timedelta(days=op["day"])
            data = {"community": community, "code": resident, "reason": "moved", "on": on}

            def depart() -> None:
                service.depart_resident(service.validate(models.DepartResident, data), ACTOR)
                self.departed[(community, resident)] = on

            self.attempt(kind, depart)
        elif kind == "update":
            data = {"community": community, "code": resident, "categories": sorted(op["categories"])}
            self.attempt(kind, lambda: service.update_resident(service.validate(models.UpdateResident, data), ACTOR))

    # ---- what the store knows ------------------------------------------------------------------
    def units(self) -> list[tuple[str, str, str, str]]:
        """(county, township, code, name) of every community known to the store."""
        return sorted((GEOGRAPHY[c][1], GEOGRAPHY[c][2], c, GEOGRAPHY[c][0]) for c in self.established)


def moment(op: dict[str, Any]) -> tuple[str, date]:
    """The service time as typed, and its local day in the store's zone."""
    day = FIRST_DAY + timedelta(days=op["day"])
    hour, minute = divmod(op["time"], 60)
    if op["utc"]:
        typed = f"{day.isoformat()}T{hour:02d}:{minute:02d}:00Z"
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).astimezone(TZ)
        return typed, local.date()
    return f"{day.isoformat()} {hour:02d}:{minute:02d}", day


# ==== (d) entries against the log ===============================================================


def expected_from_log(log: list[tuple[Any, dict[str, Any]]], times: dict[int, str]) -> dict[str, dict[str, Any]]:
    """Each record's current state, replayed here from the decoded events."""
    codes: dict[Any, tuple[str, str, str, str]] = {}
    records: dict[str, dict[str, Any]] = {}
    for n, p in log:
        if n.topic == _topic("Established"):
            codes[n.originator_id] = (p["code"], p["name"], p["county"], p["township"])
        elif n.topic == _topic("ServiceRecorded"):
            assert p["record_id"] not in records, "a record id recorded twice in the log"
            code, name, county, township = codes[n.originator_id]
            records[p["record_id"]] = {
                "record_id": p["record_id"], "community": code, "community_name": name, "county": county,
                "township": township, "kind": p["kind"], "residents": list(p["residents"]),
                "providers": list(p["providers"]), "occurred_at": p["occurred_at"], "minutes": p["minutes"],
                "place": p["place"], "status": "active", "revision": 1,
                "recorded_at": times[n.id], "recorded_by": p["actor"],
                "revised_at": times[n.id], "revised_by": p["actor"],
            }
        elif n.topic == _topic("ServiceCorrected"):
            record = records[p["record_id"]]
            for name in ("kind", "minutes", "residents", "providers", "occurred_at", "place"):
                if name in p["changes"]:
                    record[name] = p["changes"][name]
            record["revision"] += 1
            record.update(revised_at=times[n.id], revised_by=p["actor"])
        elif n.topic == _topic("ServiceVoided"):
            records[p["record_id"]].update(status="voided", revised_at=times[n.id], revised_by=p["actor"])
    return records


def check_entries_match_log(conn: Any, log: list[tuple[Any, dict[str, Any]]], times: dict[int, str]) -> None:
    expected = expected_from_log(log, times)
    found = queries.entries(conn, Filters(), include_voided=True)
    ids = Counter(entry["record_id"] for entry in found)
    assert ids == Counter(dict.fromkeys(expected, 1)), "a recorded service is missing or counted twice"
    corrections = Counter(p["record_id"] for n, p in log if n.topic == _topic("ServiceCorrected"))
    for entry in found:
        want = expected[entry["record_id"]]
        assert entry["revision"] == 1 + corrections[entry["record_id"]]
        assert {k: entry[k] for k in want} == want
    # ordered by (occurred_at, record_id), occurred_at compared as instants
    order = [(datetime.fromisoformat(e["occurred_at"]), e["record_id"]) for e in found]
    assert order == sorted(order)
    active = queries.entries(conn, Filters())
    assert [e["record_id"] for e in active] == [e["record_id"] for e in found if e["status"] == "active"]


def check_revision_categories_match_log(conn: Any, log: list[tuple[Any, dict[str, Any]]]) -> None:
    """A revision that set its residents (recording, or a correction of the residents) keeps each
    resident's categories as the log had them at that moment. (A correction that leaves the residents
    alone keeps the earlier revision's categories: see test_categories_do_not_depend_on_what_a_correction_changed.)"""
    codes: dict[Any, str] = {}
    categories: dict[tuple[str, str], list[str]] = {}
    seq: Counter[str] = Counter()
    expected: dict[tuple[str, int], dict[str, str]] = {}
    for n, p in log:
        if n.topic == _topic("Established"):
            codes[n.originator_id] = p["code"]
        elif n.topic in (_topic("ResidentEnrolled"), _topic("ResidentUpdated")) and p["categories"] is not None:
            categories[(codes[n.originator_id], p["code"])] = sorted(p["categories"])
        elif n.topic in (_topic("ServiceRecorded"), _topic("ServiceCorrected"), _topic("ServiceVoided")):
            seq[p["record_id"]] += 1
            residents = p["residents"] if n.topic == _topic("ServiceRecorded") else p.get("changes", {}).get("residents")
            if residents is not None:
                code = codes[n.originator_id]
                expected[(p["record_id"], seq[p["record_id"]])] = {
                    r: ";".join(categories[(code, r)]) for r in residents
                }
    # Child rows hang off their revision's log position: read them with the revision they belong to.
    # (A row whose position names no revision fails the lookup.)
    revisions = select(t.revisions.c.position_from, t.revisions.c.record_id, t.revisions.c.seq)
    revision_of = {position: (record_id, number) for position, record_id, number in conn.execute(revisions)}
    children = conn.execute(select(t.revision_residents))
    rows = [(*revision_of[position], resident, cats) for position, resident, cats in children]
    stored: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    for record_id, number, resident, cats in rows:
        stored[(record_id, number)][resident] = ";".join(sorted(x for x in cats.split(";") if x))
    assert set(stored) == {(r, s) for r in seq for s in range(1, seq[r] + 1)}
    for key, people in expected.items():
        assert stored[key] == people, key
    children = conn.execute(select(t.revision_categories))
    category_rows = [(*revision_of[position], category) for position, category in children]
    by_revision: dict[tuple[str, int], set[str]] = defaultdict(set)
    for record_id, number, category in category_rows:
        by_revision[(record_id, number)].add(category)
    for key, people in stored.items():
        union = {c for cats in people.values() for c in cats.split(";") if c}
        assert by_revision.get(key, set()) == union, key


# ==== (c) summaries against entries =============================================================

RANGES: list[tuple[date | None, date | None]] = [
    (None, None),
    (date(2026, 7, 10), date(2026, 7, 20)),  # inside one month
    (date(2026, 7, 15), date(2026, 8, 20)),  # across two months, both cut
    (date(2026, 7, 20), date(2026, 9, 10)),  # a whole month between two cut ones
    (date(2026, 8, 1), date(2026, 9, 30)),  # whole months
    (None, date(2026, 8, 20)),
    (date(2026, 8, 10), None),
    (date(2026, 7, 31), date(2026, 8, 1)),  # two days across a month boundary
]
KIND_FILTERS: list[tuple[str, ...]] = [(), ("life_care", "counseling")]
CATEGORY_FILTERS: list[str | None] = [None, "left_behind_child", "hardship"]


def people_at(conn: Any, as_of: str | None) -> dict[str, dict[str, set[str]]]:
    """record_id -> resident -> categories, for the revision valid now or as of `as_of` (SQL written here)."""
    valid = "r.recorded_to IS NULL" if as_of is None else "r.recorded_from <= :t AND (r.recorded_to IS NULL OR r.recorded_to > :t)"
    rows = conn.execute(
        text(
            "SELECT r.record_id, p.resident, p.categories FROM ledger_revisions r JOIN ledger_revision_residents p "
            f"ON p.position_from = r.position_from WHERE {valid}"
        ),
        {"t": as_of},
    ).all()
    out: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for record_id, resident, cats in rows:
        out[record_id][resident] = {c for c in cats.split(";") if c}
    return out


def in_unit(entry_or_unit: dict[str, Any], unit: Unit | None) -> bool:
    if unit is None:
        return True
    if unit.level == "community":
        return entry_or_unit["community"] == unit.community
    if unit.level == "township":
        return (entry_or_unit["county"], entry_or_unit["township"]) == (unit.county, unit.township)
    return entry_or_unit["county"] == unit.county


def selected(
    entries: list[dict[str, Any]],
    people: dict[str, dict[str, set[str]]],
    unit: Unit | None,
    span: tuple[date | None, date | None],
    kinds: tuple[str, ...],
    category: str | None,
) -> list[dict[str, Any]]:
    """Active entries matching the filters, computed here from the unfiltered entries."""
    lo, hi = span
    out = []
    for e in entries:
        day = date.fromisoformat(e["occurred_at"][:10])
        assert set(people[e["record_id"]]) == set(e["residents"]), e["record_id"]
        if e["status"] != "active" or not in_unit(e, unit):
            continue
        if (lo is not None and day < lo) or (hi is not None and day > hi):
            continue
        if kinds and e["kind"] not in kinds:
            continue
        if category is not None and not any(category in cats for cats in people[e["record_id"]].values()):
            continue
        out.append(e)
    return out


def month_span(first: date, last: date) -> list[str]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def expected_summary(
    world: World,
    chosen: list[dict[str, Any]],
    people: dict[str, dict[str, set[str]]],
    *,
    by: str,
    unit: Unit | None,
    kinds: tuple[str, ...],
    category: str | None,
    months: list[str] | None,
) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    served: dict[tuple[Any, ...], set[tuple[str, str]]] = defaultdict(set)
    key_names = {"county": 1, "township": 2, "community": 3}[by]
    for county, township, code, name in world.units():
        unit_row = {"county": county, "township": township, "community": code}
        if not in_unit(unit_row, unit):
            continue
        for month in months if months is not None else [None]:
            key = (county, township, code)[:key_names] + ((month,) if month else ())
            if key not in groups:
                group: dict[str, Any] = {"county": county}
                if by in ("township", "community"):
                    group["township"] = township
                if by == "community":
                    group.update(community=code, community_name=name)
                if month:
                    group["month"] = month
                group.update(records=0, minutes=0, residents_served=0, kinds=dict.fromkeys(kinds or ALL_KINDS, 0))
                groups[key] = group
    for e in chosen:
        month = e["occurred_at"][:7] if months is not None else None
        key = (e["county"], e["township"], e["community"])[:key_names] + ((month,) if month else ())
        group = groups[key]  # a KeyError here: an entry in no unit (or month) of the summary
        group["records"] += 1
        group["minutes"] += e["minutes"]
        group["kinds"][e["kind"]] += 1
        for resident, cats in people[e["record_id"]].items():
            if category is None or category in cats:
                served[key].add((e["community"], resident))
    for key, residents in served.items():
        groups[key]["residents_served"] = len(residents)
    return [groups[key] for key in sorted(groups)]


def without_late_units(world: World, rows: list[dict[str, Any]], late: set[str]) -> list[dict[str, Any]]:
    """Rows of units whose every community was established after the moment asked about, which the
    summary may list with zeros ("one per unit known to the store") or leave out, removed."""
    out = []
    for row in rows:
        members = {
            code for county, township, code, _name in world.units()
            if all(row[k] == v for k, v in (("county", county), ("township", township), ("community", code)) if k in row)
        }
        if members and members <= late:
            assert (row["records"], row["minutes"], row["residents_served"]) == (0, 0, 0), row
            assert not any(row["kinds"].values()), row
            continue
        out.append(row)
    return out


def check_summaries(
    world: World, conn: Any, as_of: str | None, rnd: random.Random, count: int, late: set[str] = frozenset()  # type: ignore[assignment]
) -> None:
    moment_ = Moment(as_of=as_of)
    entries = queries.entries(conn, Filters(moment=moment_), include_voided=True)
    people = people_at(conn, as_of)
    combos = [(s, k, c) for s in RANGES for k in KIND_FILTERS for c in CATEGORY_FILTERS]
    picks = [combos[0], *rnd.sample(combos[1:], count)]
    units: list[Unit | None] = [None]
    for county, township, code, _name in world.units():
        units += [Unit("community", community=code), Unit("township", county=county, township=township),
                  Unit("county", county=county)]
    for span, kinds, category in picks:
        unit = rnd.choice(units)
        filters = Filters(unit, span[0], span[1], kinds, category, moment_)
        chosen = selected(entries, people, unit, span, kinds, category)
        # entries' own filters agree with filtering the unfiltered entries here
        assert queries.entries(conn, filters) == chosen
        for by in ("county", "township", "community"):
            got = queries.summary(conn, filters, by=by)
            want = expected_summary(world, chosen, people, by=by, unit=unit, kinds=kinds, category=category, months=None)
            assert without_late_units(world, got, late) == without_late_units(world, want, late), (by, filters)
        # per month: the months of a closed range; without a range, the months that now hold
        # records (an as-of summary without a range: see test_summary_per_month_as_of_keeps_every_record)
        if span[0] is not None and span[1] is not None:
            months = month_span(span[0], span[1])
        elif span == (None, None) and as_of is None:
            now_active = [date.fromisoformat(e["occurred_at"][:10]) for e in entries if e["status"] == "active"]
            months = month_span(min(now_active), max(now_active)) if now_active else []
        else:
            continue
        by = rnd.choice(["county", "township", "community"])
        got = queries.summary(conn, filters, by=by, per_month=True)
        want = expected_summary(world, chosen, people, by=by, unit=unit, kinds=kinds, category=category, months=months)
        assert without_late_units(world, got, late) == without_late_units(world, want if months else [], late), (
            by, filters, "per month")


# ==== (b) as of T against a prefix of the log ===================================================


def _before(at: str) -> str:
    moment_ = datetime.fromisoformat(at.replace("Z", "+00:00")) - timedelta(milliseconds=1)
    return moment_.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment_.microsecond // 1000:03d}Z"


def check_as_of(world: World, conn: Any, rnd: random.Random, tmp: Path) -> str | None:
    """Compare as-of and at-position answers with views of a prefix of the log; returns a past T."""
    recorder = world.service.recorder
    head = int(recorder.max_notification_id() or 0)
    commits = recorder.recorded_times(1, head)
    moments = sorted({at for _f, _l, at in commits})
    picked = sorted(set(rnd.sample(moments, min(4, len(moments)))) | {_before(moments[0])})
    positions = sorted({0, head, *rnd.sample(range(head + 1), min(3, head + 1))})
    checks: list[tuple[Moment, int]] = []
    for at in picked:
        checks.append((Moment(as_of=at), max((last for _f, last, when in commits if when <= at), default=0)))
    checks += [(Moment(position=n), n) for n in positions]
    for index, (moment_, last) in enumerate(checks):
        with prefix_views(recorder, last, tmp / f"prefix-{index}.db") as prefix_engine, prefix_engine.connect() as prefix:
            want = queries.entries(prefix, Filters(), include_voided=True)
            assert queries.entries(conn, Filters(moment=moment_), include_voided=True) == want, moment_
            span, kinds, category = rnd.choice([(s, k, c) for s in RANGES for k in KIND_FILTERS for c in CATEGORY_FILTERS])
            filters = Filters(None, span[0], span[1], kinds, category)
            assert queries.entries(conn, Filters(None, span[0], span[1], kinds, category, moment_)) == queries.entries(
                prefix, filters
            )
            # the summary as of T (from revisions) equals the current summary of the prefix (mostly from
            # the monthly totals); communities established after T are in it with zeros
            by = rnd.choice(["county", "township", "community"])
            past = queries.summary(conn, Filters(None, span[0], span[1], kinds, category, moment_), by=by)
            then = queries.summary(prefix, filters, by=by)
            key_fields = [k for k in ("county", "township", "community") if k in (then or past or [{}])[0]]
            then_by_key = {tuple(row[k] for k in key_fields): row for row in then}
            for row in past:
                key = tuple(row[k] for k in key_fields)
                if key in then_by_key:
                    assert row == then_by_key.pop(key), (moment_, by, filters)
                else:
                    assert (row["records"], row["minutes"], row["residents_served"]) == (0, 0, 0), (moment_, row)
                    assert not any(row["kinds"].values())
            assert not then_by_key, "a unit of the past is missing from the as-of summary"
    middle = [at for at in moments if at < moments[-1]]
    return rnd.choice(middle) if middle else None


# ==== the properties ============================================================================


def run_history(url: str, key_file: Path, history: dict[str, Any], rnd: random.Random) -> None:
    service, _ = LedgerService.create(parse_url(url), key_file, None)
    views = Views(service)
    try:
        views.runner.ensure_tables()
        world = World(service, views, [set(p) for p in history["people"]])
        for code in AT_START:
            world.establish(code)
        for op in history["ops"]:
            world.apply(op)
        runner = views.runner
        runner.catch_up()
        head = runner.head()
        assert set(runner.positions().values()) == {head}
        assert runner.lag() == 0

        incremental = dump_views(views.reader)
        check_totals_invariants(incremental)
        log = read_log(service.recorder)
        assert [n.id for n, _p in log] == list(range(1, head + 1))
        times = commit_times(service.recorder, head)
        with views.read() as conn:
            # (d) every input once, as its events say
            check_entries_match_log(conn, log, times)
            check_revision_categories_match_log(conn, log)
            # (b) as of T / at position N == the views of the log up to there
            with scratch_dir() as tmp:
                past = check_as_of(world, conn, rnd, Path(tmp))
            # (c) summaries == the entries' totals, now and as of a past moment
            check_summaries(world, conn, None, rnd, count=6)
            if past is not None:
                known = max((last for _f, last, at in service.recorder.recorded_times(1, head) if at <= past), default=0)
                late = {p["code"] for n, p in log if n.topic == _topic("Established") and n.id > known}
                check_summaries(world, conn, past, rnd, count=4, late=late)

        # (a) incremental == rebuilt (default batches) == rebuilt one event at a time
        runner.drop_tables()
        runner.ensure_tables()
        runner.catch_up()
        rebuilt = dump_views(views.reader)
        check_totals_invariants(rebuilt)
        assert incremental == rebuilt
        runner.drop_tables()
        runner.ensure_tables()
        while runner.run_batch(limit=1):
            pass
        one_by_one = dump_views(views.reader)
        check_totals_invariants(one_by_one)
        assert one_by_one == rebuilt
        assert set(runner.positions().values()) == {head}
        # ... == what `projections rebuild` makes (monthly totals deferred and counted at the end),
        # in batches small enough that corrections close revisions of earlier batches
        runner.rebuild(limit=7)
        assert dump_views(views.reader) == rebuilt
        assert set(runner.positions().values()) == {head}
    finally:
        views.close()
        service.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories, seed=st.integers(0, 2**32 - 1))
def test_views_agree_with_the_log_on_sqlite(history: dict[str, Any], seed: int) -> None:
    with scratch_dir() as tmp:
        key_file = Path(tmp) / "taizhang.key"
        crypto.create_key_file(key_file)
        run_history(f"sqlite:///{Path(tmp) / 'taizhang.db'}", key_file, history, random.Random(seed))


@pytest.mark.postgres
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(history=histories, seed=st.integers(0, 2**32 - 1))
def test_views_agree_with_the_log_on_postgres(pg_admin_url: str, history: dict[str, Any], seed: int) -> None:
    url = make_pg_database(pg_admin_url)
    try:
        with scratch_dir() as tmp:
            key_file = Path(tmp) / "taizhang.key"
            crypto.create_key_file(key_file)
            run_history(url, key_file, history, random.Random(seed))
    finally:
        drop_pg_database(pg_admin_url, url)


# ==== the bugs, each shown by one small history =================================================


@pytest.fixture
def views(service: LedgerService) -> Iterator[Views]:
    views = Views(service)
    views.runner.ensure_tables()
    try:
        yield views
    finally:
        views.close()


def _small(service: LedgerService) -> None:
    world = World(service, None, [{"left_behind_elderly"}, {"left_behind_child"}, set(), set()] * 4)  # type: ignore[arg-type]
    world.establish("A")


def _record(service: LedgerService, at: str, residents: list[str], minutes: int = 30) -> str:
    record_id = str(uuid.uuid4())
    data = {"community": "A", "kind": "life_care", "residents": residents, "providers": ["P0"],
            "occurred_at": at, "minutes": minutes}
    service.record_service(service.validate(models.RecordService, data), ACTOR, record_id)
    return record_id


def _correct(service: LedgerService, record_id: str, **changes: Any) -> None:
    data = {"community": "A", "record_id": record_id, "reason": "更正", **changes}
    service.correct_service(service.validate(models.CorrectService, data), ACTOR)


def test_incremental_equals_rebuild_row_for_row(service: LedgerService, views: Views) -> None:
    """A service projected in one batch and moved to another month in the next one."""
    _small(service)
    record_id = _record(service, "2026-07-05 09:30", ["R0"])
    views.runner.catch_up()
    _correct(service, record_id, occurred_at="2026-08-05 09:30")
    views.runner.catch_up()
    incremental = dump_views(views.reader)
    views.runner.drop_tables()
    views.runner.ensure_tables()
    views.runner.catch_up()
    assert dump_views(views.reader) == incremental


def test_summary_per_month_as_of_keeps_every_record(service: LedgerService, views: Views) -> None:
    _small(service)
    record_id = _record(service, "2026-07-05 09:30", ["R0"], minutes=45)
    then = Moment(position=service.recorder.max_notification_id())
    _correct(service, record_id, occurred_at="2026-08-05 09:30")
    views.runner.ensure_tables()
    views.runner.catch_up()  # on PostgreSQL queries do not catch up by themselves
    with views.read() as conn:
        totals = queries.summary(conn, Filters(moment=then), by="community")
        per_month = queries.summary(conn, Filters(moment=then), by="community", per_month=True)
    # at that position the record (45 minutes) lay in July
    assert [(r["records"], r["minutes"]) for r in totals] == [(1, 45)]
    assert [(r["month"], r["records"], r["minutes"]) for r in per_month if r["records"]] == [("2026-07", 1, 45)]


def test_categories_do_not_depend_on_what_a_correction_changed(service: LedgerService, views: Views) -> None:
    _small(service)  # R0: left_behind_elderly; R2: no category
    minutes_only = _record(service, "2026-07-05 09:30", ["R0"])
    residents_too = _record(service, "2026-07-06 09:30", ["R0", "R2"])
    data = {"community": "A", "code": "R0", "categories": ["hardship"]}
    service.update_resident(service.validate(models.UpdateResident, data), ACTOR)
    _correct(service, minutes_only, minutes=45)  # both now serve exactly R0, corrected after the update
    _correct(service, residents_too, residents=["R0"])
    views.runner.ensure_tables()
    views.runner.catch_up()  # on PostgreSQL queries do not catch up by themselves
    with views.read() as conn:
        people = people_at(conn, None)
        hardship = {e["record_id"] for e in queries.entries(conn, Filters(category="hardship"))}
    assert people[minutes_only] == people[residents_too] == {"R0": {"hardship"}}
    assert hardship == {minutes_only, residents_too}
