"""The application service end to end on a real store, on SQLite and on PostgreSQL.

Covers DESIGN §3 (record ids, recorded time, personal data, snapshots) through
`LedgerService` as the CLI and the importer use it, and checks what the store
itself holds with plain SQL. The helpers at the top are shared by the other
integration modules (`test_concurrency`, `test_privacy`, `test_import`).
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from commands import models
from commands.app import LedgerService
from domain.community import Community
from domain.errors import AlreadyExists, NotActive, NotFound, RuleViolation
from domain.ids import community_id
from infra import crypto
from infra.codec import decode_payload
from infra.store import StoreError, parse_url
from tests import helpers

RECORDED = "taizhang:Community.ServiceRecorded"
CLOCK_SLACK = timedelta(seconds=5)


# ---- shared helpers ---------------------------------------------------------------------
def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one statement on the store at `url`, outside the application (`?` placeholders)."""
    store = parse_url(url)
    if store.backend == "sqlite":
        conn = sqlite3.connect(str(store.path))
        try:
            return [tuple(row) for row in conn.execute(statement, params)]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return [tuple(row) for row in conn.execute(statement.replace("?", "%s"), params)]  # type: ignore[arg-type]


def as_utc(value: Any) -> datetime:
    """A recorded time as an aware UTC datetime (SQLite keeps text, PostgreSQL timestamptz)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def commit_rows(url: str) -> list[tuple[int, int, datetime]]:
    """Every `taizhang_commits` row in position order: (first, last, recorded_at)."""
    rows = sql(url, "SELECT first_position, last_position, recorded_at FROM taizhang_commits ORDER BY first_position")
    return [(int(first), int(last), as_utc(at)) for first, last, at in rows]


def db_clock(url: str) -> datetime:
    if parse_url(url).backend == "sqlite":
        return as_utc(sql(url, "SELECT strftime('%Y-%m-%dT%H:%M:%fZ','now')")[0][0])
    return as_utc(sql(url, "SELECT clock_timestamp()")[0][0])


def table_names(service: LedgerService) -> dict[str, str]:
    return {
        "events": service.recorder.events_table_name,
        "snapshots": service.app.snapshots.recorder.events_table_name,
        "commits": "taizhang_commits",
        "data_keys": "data_keys",
        "record_state": "record_state",
        "record_people": "record_people",
    }


def store_counts(service: LedgerService) -> dict[str, int]:
    """Row counts of every table a write touches: equal before and after means nothing was written."""
    return {
        label: int(sql(service.store.url, f"SELECT count(*) FROM {table}")[0][0])
        for label, table in table_names(service).items()
    }


def payloads(service: LedgerService) -> list[tuple[Any, dict[str, Any]]]:
    """(notification, decoded payload) of every stored event, in log order."""
    found: list[tuple[Any, dict[str, Any]]] = []
    start = 1
    while True:
        batch = service.recorder.select_notifications(start, 1000)
        if not batch:
            return found
        found.extend((n, decode_payload(n.state)) for n in batch)
        start = batch[-1].id + 1


def recorded_ids(service: LedgerService) -> Counter[str]:
    """How many ServiceRecorded events each record id has in the whole log."""
    return Counter(p["record_id"] for n, p in payloads(service) if n.topic == RECORDED)


def assert_commits_partition_the_log(url: str, positions: list[int]) -> list[tuple[int, int, datetime]]:
    """Commit rows partition the stored positions: each in exactly one row, rows in order without
    overlap, each row bounded by stored positions; recorded times never decrease along the log.

    PostgreSQL's sequence may skip numbers that a rolled-back insert drew, so rows are checked
    against the positions that exist, not against 1..max.
    """
    rows = commit_rows(url)
    assert rows, "no commit rows"
    stored = set(positions)
    covered: list[int] = []
    previous_last = 0
    for first, last, _at in rows:
        assert previous_last < first <= last, f"overlapping or inverted commit rows: {rows}"
        assert first in stored and last in stored, f"commit row {first}..{last} not bounded by events"
        covered.extend(p for p in positions if first <= p <= last)
        previous_last = last
    assert covered == sorted(positions), "a position is in no commit row, or in two"
    times = [at for _first, _last, at in rows]
    assert times == sorted(times), "recorded time decreased along the log"
    return rows


def positions(service: LedgerService) -> list[int]:
    return [n.id for n, _p in payloads(service)]


def max_position(service: LedgerService) -> int:
    return int(service.recorder.max_notification_id() or 0)


def state_of(aggregate: Community) -> dict[str, Any]:
    """The registry (the records working set is what a command handed in, not state)."""
    return {k: v for k, v in vars(aggregate).items() if k not in ("_pending_events", "records")}


def replay(service: LedgerService, code: str, upto: int | None = None) -> Community:
    """The aggregate from a full replay of its events (up to a version), ignoring snapshots."""
    aggregate: Community | None = None
    for event in service.app.events.get(community_id(code), lte=upto):
        aggregate = event.mutate(aggregate)  # type: ignore[assignment]
    assert aggregate is not None
    return aggregate


def unsaved_community(code: str | None = None) -> Community:
    """A new community aggregate, not yet saved (for the bulk path, `save_many`)."""
    return Community.establish(
        code=code or helpers.random_code("M"),
        name="社区",
        county="八步区",
        township="贺街镇",
        village="村",
        natural_villages=[],
        established_on="2026-01-01",
        actor="clerk",
    )


def service_cmd(service: LedgerService, community: str, **overrides: Any) -> models.RecordService:
    data = {"community": community, "kind": "life_care", "residents": ["R1"], "providers": ["P1"],
            "occurred_at": "2026-02-01 08:00", "minutes": 20, **overrides}  # fmt: skip
    return service.validate(models.RecordService, data)  # type: ignore[no-any-return]


def correct(service: LedgerService, community: str, record_id: str, **changes: Any) -> dict[str, Any]:
    data = {"community": community, "record_id": record_id, "reason": "录入错误", **changes}
    return service.correct_service(service.validate(models.CorrectService, data), "auditor")


def void(service: LedgerService, community: str, record_id: str) -> dict[str, Any]:
    data = {"community": community, "record_id": record_id, "reason": "重复登记"}
    return service.void_service(service.validate(models.VoidService, data), "auditor")


@pytest.fixture
def reopen(db_url: str, key_file: Path) -> Iterator[Callable[..., LedgerService]]:
    """Open the store again as a new service (as a later CLI call would); closed at teardown."""
    opened: list[LedgerService] = []

    def _open(key: Path | None = None) -> LedgerService:
        svc = LedgerService.open(parse_url(db_url), key if key is not None else key_file)
        opened.append(svc)
        return svc

    yield _open
    for svc in opened:
        svc.close()


# ---- round trip ---------------------------------------------------------------------------
def test_round_trip_survives_reopening_the_store(
    service: LedgerService, reopen: Callable[..., LedgerService]
) -> None:
    code = helpers.small_community(service)
    kept = helpers.record(service, code, residents=["R1", "R2"], providers=["P1"], place="home_visit", note="送药上门")
    voided = helpers.record(service, code, kind="counseling", occurred_at="2026-03-06 15:00", minutes=45)
    assert kept["created"] and voided["created"]
    assert correct(service, code, kept["record_id"], minutes=50, providers=["P1", "P2"], note="送药并量血压") == {
        "record_id": kept["record_id"],
        "revision": 2,
    }
    assert void(service, code, voided["record_id"])["status"] == "voided"
    before = state_of(service.get_community(code))

    again = reopen()
    community = again.get_community(code)
    assert state_of(community) == before
    assert (community.code, community.name, community.county, community.township, community.village) == (
        code,
        "石门新型农村社区",
        "八步区",
        "贺街镇",
        "石门村",
    )
    assert community.natural_villages == ["大岭", "新塘"]
    assert community.established_on == "2026-01-01"
    assert set(community.residents) == {"R1", "R2"}
    assert community.residents["R2"]["categories"] == ["left_behind_child"]
    assert community.residents["R1"]["enrolled_on"] == "2026-01-01"
    assert community.providers["P2"]["role"] == "volunteer"
    community = again.get_community(code, [kept["record_id"], voided["record_id"]])
    assert community.record_status(kept["record_id"]) == "active"
    assert community.record_revision(kept["record_id"]) == 2
    assert community.record_status(voided["record_id"]) == "voided"
    assert community.record_revision(voided["record_id"]) == 1
    assert community.version == again.recorder.event_count() == 9
    topics = [n.topic.rsplit(".", 1)[1] for n, _p in payloads(again)]
    assert topics == [
        "Established",
        "ResidentEnrolled",
        "ResidentEnrolled",
        "ProviderRegistered",
        "ProviderRegistered",
        "ServiceRecorded",
        "ServiceRecorded",
        "ServiceCorrected",
        "ServiceVoided",
    ]
    corrected = next(p for n, p in payloads(again) if n.topic.endswith("ServiceCorrected"))
    assert corrected["changes"]["minutes"] == 50
    assert corrected["changes"]["providers"] == ["P1", "P2"]
    assert corrected["previous"]["minutes"] == 30 and corrected["previous"]["providers"] == ["P1"]
    assert set(corrected["previous"]) == {"minutes", "providers", "note_mac"}
    assert corrected["previous"]["note_mac"] != corrected["changes"]["note_mac"]
    assert again.open_envelope(corrected["changes"]["note"], where=helpers.where(code, corrected, "note")) == "送药并量血压"
    assert all(p["actor"] in ("clerk", "auditor") for _n, p in payloads(again))
    # The reloaded aggregate still enforces its rules: the voided record stays voided.
    with pytest.raises(NotActive):
        correct(again, code, voided["record_id"], minutes=10)


REFUSALS: dict[str, Callable[[LedgerService, str, str], Any]] = {
    "establish an existing community": lambda s, c, r: helpers.establish(s, c),
    "enroll an enrolled resident": lambda s, c, r: helpers.enroll(s, c, "R1"),
    "register a registered provider": lambda s, c, r: helpers.register(s, c, "P1"),
    "enroll into an unknown community": lambda s, c, r: helpers.enroll(s, "NO-SUCH", "R9"),
    "record for an unknown resident": lambda s, c, r: helpers.record(s, c, residents=["R9"]),
    "record before the community existed": lambda s, c, r: helpers.record(s, c, occurred_at="2025-12-31 10:00"),
    "record the same id with other content": lambda s, c, r: helpers.record(s, c, r, minutes=31),
    "correct nothing": lambda s, c, r: correct(s, c, r, minutes=30),
    "correct an unknown record": lambda s, c, r: correct(s, c, str(uuid.uuid4()), minutes=5),
    "void an unknown record": lambda s, c, r: void(s, c, str(uuid.uuid4())),
    "depart before enrolment": lambda s, c, r: s.depart_resident(
        s.validate(models.DepartResident, {"community": c, "code": "R1", "reason": "moved", "on": "2025-06-01"}), "x"
    ),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_command_writes_nothing(service: LedgerService, refusal: str) -> None:
    code = helpers.small_community(service)
    record_id = helpers.record(service, code)["record_id"]
    before = store_counts(service)
    with pytest.raises((AlreadyExists, NotFound, NotActive, RuleViolation)):
        REFUSALS[refusal](service, code, record_id)
    assert store_counts(service) == before


# ---- recorded time ------------------------------------------------------------------------
@pytest.mark.clock  # recorded times from the database clock
def test_every_position_has_exactly_one_recorded_time_from_the_db_clock(
    service: LedgerService, db_url: str
) -> None:
    # Compared with the database's own clock, never the test's: a PostgreSQL server keeps the
    # real time while CI runs these tests again with the process clock moved (.ci/clock.sh).
    started = db_clock(db_url)
    code = helpers.small_community(service)
    for minute in range(5):
        helpers.record(service, code, occurred_at=f"2026-03-05 10:{minute:02d}")
    bulk = [helpers.random_code("B") for _ in range(3)]
    service.save_many([unsaved_community(c) for c in bulk], service.key_session())
    helpers.record(service, code, occurred_at="2026-03-07 08:00")
    clock = db_clock(db_url)

    last = max_position(service)
    assert positions(service) == list(range(1, last + 1))  # one writer, nothing refused: no gaps
    assert last == service.recorder.event_count() == 5 + 5 + 3 + 1
    rows = assert_commits_partition_the_log(db_url, positions(service))
    assert len(rows) == 5 + 5 + 1 + 1  # the bulk save of three aggregates is one commit
    for _first, _last, at in rows:  # a commit may be stamped a millisecond after the one before it
        assert started - CLOCK_SLACK <= at <= clock + timedelta(milliseconds=len(rows))
    # Each commit is later than the one before, even when they came within the same millisecond, so an
    # --as-of at a printed time tells every commit from the next (docs/decisions/0023).
    stamps = [at for _f, _l, at in rows]
    assert all(b - a >= timedelta(milliseconds=1) for a, b in itertools.pairwise(stamps))
    # The recorder's own read returns the same rows, as fixed-width UTC text to the millisecond.
    times = service.recorder.recorded_times(1, last)
    assert [(f, l) for f, l, _ in times] == [(f, l) for f, l, _ in rows]
    for (_f, _l, text), (_f2, _l2, at) in zip(times, rows, strict=True):
        assert len(text) == 24 and text.endswith("Z") and text[10] == "T"
        assert as_utc(text) == at.replace(microsecond=at.microsecond // 1000 * 1000)
    assert service.recorder.recorded_times(6, 6) == [times[5]]


@pytest.mark.clock  # recorded times from the database clock
def test_recorded_time_never_decreases_even_after_a_later_row(service: LedgerService, db_url: str) -> None:
    """A commit row already stamped in the future (a clock stepped back) is never undercut: the next is a
    millisecond after it."""
    code = helpers.establish(service)
    future = db_clock(db_url) + timedelta(hours=1)
    if parse_url(db_url).backend == "sqlite":
        sql_write = future.strftime("%Y-%m-%dT%H:%M:%S.") + f"{future.microsecond // 1000:03d}Z"
    else:
        sql_write = future.isoformat()
    _execute(db_url, "UPDATE taizhang_commits SET recorded_at = ?", (sql_write,))
    helpers.enroll(service, code, "R1")
    rows = assert_commits_partition_the_log(db_url, [1, 2])
    assert rows[1][2] - rows[0][2] == timedelta(milliseconds=1)


def _execute(url: str, statement: str, params: tuple[Any, ...]) -> None:
    store = parse_url(url)
    if store.backend == "sqlite":
        conn = sqlite3.connect(str(store.path))
        with conn:
            conn.execute(statement, params)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]


def test_save_many_is_one_commit_with_its_record_state_and_keys(service: LedgerService, db_url: str) -> None:
    keys = service.key_session()
    codes = [helpers.random_code("M") for _ in range(3)]
    aggregates = []
    claims: list[tuple[str, str]] = []
    for code in codes:
        community = unsaved_community(code)
        enroll = service.validate(models.EnrollResident, {"community": code, "code": "R1", "name": "黄桂兰"})
        service.apply_enroll(community, enroll, keys, "clerk")
        register = {"community": code, "code": "P1", "name": "n", "role": "cadre"}
        LedgerService.apply_register(community, service.validate(models.RegisterProvider, register), "clerk")
        for minute in range(2):
            cmd = service_cmd(service, code, occurred_at=f"2026-02-01 08:0{minute}", note="夜间巡访")
            record_id = str(uuid.uuid4())
            assert LedgerService.apply_record(community, cmd, record_id, keys, "clerk")
            claims.append((record_id, str(community.id)))
        aggregates.append(community)
    service.save_many(aggregates, keys)

    assert service.recorder.event_count() == 3 * 5
    assert commit_rows(db_url) == [(1, 15, commit_rows(db_url)[0][2])]
    assert int(sql(db_url, "SELECT count(*) FROM record_state")[0][0]) == len(claims)
    assert service.recorder.claims([r for r, _c in claims]) == dict(claims)
    assert int(sql(db_url, "SELECT count(*) FROM data_keys")[0][0]) == 3 + 6  # a key per resident and per note
    assert sorted(c.code for c in service.communities()) == sorted(codes)


def test_a_failed_save_many_rolls_back_events_commit_row_record_state_and_keys(service: LedgerService) -> None:
    code = helpers.small_community(service)
    taken = helpers.record(service, code)["record_id"]
    before = store_counts(service)
    keys = service.key_session()
    community = unsaved_community()
    enroll = service.validate(models.EnrollResident, {"community": community.code, "code": "R1", "name": "韦春花"})
    service.apply_enroll(community, enroll, keys, "clerk")
    register = {"community": community.code, "code": "P1", "name": "n", "role": "cadre"}
    LedgerService.apply_register(community, service.validate(models.RegisterProvider, register), "clerk")
    # The bulk path does not look for the id elsewhere: the store refuses a record id another community
    # recorded (record_state's primary key is the store-wide claim), and the whole save with it.
    assert LedgerService.apply_record(community, service_cmd(service, community.code), taken, keys, "clerk")
    assert keys.pending  # new data keys would be written with the events
    with pytest.raises(IntegrityError):
        service.save_many([community], keys)
    assert store_counts(service) == before
    with pytest.raises(NotFound):
        service.get_community(community.code)


# ---- record ids ---------------------------------------------------------------------------
@pytest.mark.parametrize("reopened", [False, True], ids=["same-service", "reopened"])
def test_a_record_id_belongs_to_one_community_store_wide(
    service: LedgerService, reopen: Callable[..., LedgerService], reopened: bool
) -> None:
    first = helpers.small_community(service)
    second = helpers.small_community(service)
    record_id = str(uuid.uuid4())
    assert helpers.record(service, first, record_id) == {"record_id": record_id, "created": True}
    writer = reopen() if reopened else service
    before = store_counts(writer)
    with pytest.raises(AlreadyExists, match="another community"):
        helpers.record(writer, second, record_id)  # identical content, other community
    with pytest.raises(AlreadyExists, match="another community"):
        helpers.record(writer, second, record_id, minutes=90, note="另一条")
    assert store_counts(writer) == before
    assert record_id not in writer.get_community(second, [record_id]).records
    assert writer.recorder.claims([record_id]) == {record_id: str(community_id(first))}
    # In its own community the same content again is accepted and changes nothing.
    assert helpers.record(writer, first, record_id) == {"record_id": record_id, "created": False}
    assert store_counts(writer) == before


def test_a_record_another_writer_saved_after_our_load_is_recognised_as_the_same_record(
    service: LedgerService, reopen: Callable[..., LedgerService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic form of the race two clerks (or a clerk and an import) run into."""
    code = helpers.small_community(service)
    other = reopen()
    record_id = str(uuid.uuid4())
    lookup = service.recorder.claims
    landed: list[dict[str, Any]] = []

    def claims_after_the_other_writer_saved(record_ids: Any) -> dict[str, str]:
        if not landed:  # between our load of the community and our claim check
            landed.append(helpers.record(other, code, record_id))
        return lookup(record_ids)

    monkeypatch.setattr(service.recorder, "claims", claims_after_the_other_writer_saved)
    result = helpers.record(service, code, record_id)
    assert landed == [{"record_id": record_id, "created": True}]
    assert result == {"record_id": record_id, "created": False}
    assert recorded_ids(service) == {record_id: 1}


AGAIN = {
    "same note": ({"note": "老人血压偏高，已提醒复诊"}, False),
    "other note": ({"note": "老人血压正常"}, None),
    "no note": ({}, None),
    "other minutes": ({"note": "老人血压偏高，已提醒复诊", "minutes": 35}, None),
}


@pytest.mark.parametrize("reopened", [False, True], ids=["same-service", "reopened"])
@pytest.mark.parametrize("again", list(AGAIN))
def test_re_recording_with_a_note_is_idempotent_only_for_the_same_content(
    service: LedgerService, reopen: Callable[..., LedgerService], again: str, reopened: bool
) -> None:
    code = helpers.small_community(service)
    record_id = str(uuid.uuid4())
    assert helpers.record(service, code, record_id, note="老人血压偏高，已提醒复诊")["created"] is True
    writer = reopen() if reopened else service
    before = store_counts(writer)
    overrides, created = AGAIN[again]
    if created is None:
        with pytest.raises(AlreadyExists, match="other content"):
            helpers.record(writer, code, record_id, **overrides)
    else:
        assert helpers.record(writer, code, record_id, **overrides) == {"record_id": record_id, "created": created}
    assert store_counts(writer) == before
    assert recorded_ids(writer) == {record_id: 1}


# ---- snapshots ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bulk", "expected_versions"),
    [(False, [200]), (True, [250])],
    ids=["one-by-one", "one-save"],
)
def test_a_save_that_crosses_a_multiple_of_100_takes_a_snapshot_equal_to_a_replay(
    service: LedgerService, reopen: Callable[..., LedgerService], bulk: bool, expected_versions: list[int]
) -> None:
    """One-by-one saves snapshot at 100 and 200, and only the newest snapshot is kept (older ones
    would grow the store quadratically); one save from 5 to 250 snapshots its end state once."""
    code = helpers.small_community(service)  # 5 events
    total = 250
    keys = service.key_session()
    community = service.get_community(code)
    for i in range(total - 5):
        occurred = f"2026-02-{1 + i // 24 % 28:02d} {i % 24:02d}:{i % 60:02d}"
        content = {"kind": "family_care", "providers": ["P2"], "occurred_at": occurred, "minutes": 1 + i % 60}
        if bulk:
            LedgerService.apply_record(community, service_cmd(service, code, **content), str(uuid.uuid4()), keys, "x")
        else:
            helpers.record(service, code, **content)
    if bulk:
        service.save_many([community], keys)

    snapshots = list(service.app.snapshots.get(community_id(code)))
    assert [s.originator_version for s in snapshots] == expected_versions
    assert int(sql(service.store.url, f"SELECT count(*) FROM {table_names(service)['snapshots']}")[0][0]) == len(
        expected_versions
    )
    for snapshot in snapshots:
        from_snapshot = snapshot.mutate(None)
        assert state_of(from_snapshot) == state_of(replay(service, code, upto=snapshot.originator_version))
    again = reopen()
    loaded = again.get_community(code)
    assert loaded.version == total == again.recorder.event_count()
    assert state_of(loaded) == state_of(replay(again, code))
    assert len(again.recorder.record_states(loaded.id, [r for (r,) in sql(service.store.url, "SELECT record_id FROM record_state")])) == total - 5
    # A version below the kept snapshot still loads, by replaying its events.
    older = again.app.repository.get(community_id(code), version=150)
    assert older.version == 150 and state_of(older) == state_of(replay(again, code, upto=150))
    # The next command on the reloaded aggregate continues the same history.
    helpers.record(again, code, occurred_at="2026-03-20 08:00")
    assert again.get_community(code).version == total + 1


# ---- opening ------------------------------------------------------------------------------
@pytest.mark.parametrize("leftover", [False, True], ids=["nothing-there", "a-database-that-is-not-a-store"])
def test_open_refuses_a_missing_store_and_creates_nothing(db_url: str, key_file: Path, leftover: bool) -> None:
    """No file (SQLite) or an empty database (PostgreSQL); or a database holding something else."""
    store = parse_url(db_url)
    if leftover and store.backend == "sqlite":
        sqlite3.connect(str(store.path)).close()  # an empty database file
    elif leftover:
        _execute(db_url, "CREATE TABLE other (x integer)", ())
    with pytest.raises(StoreError, match="no store at .*run taizhang init"):
        LedgerService.open(store, key_file)
    if store.backend == "sqlite":
        assert store.path is not None
        assert store.path.exists() is leftover
        if leftover:
            assert sql(db_url, "SELECT name FROM sqlite_master") == []
        assert sorted(p.name for p in store.path.parent.iterdir()) == (
            ["taizhang.db", "taizhang.key"] if leftover else ["taizhang.key"]
        )
    else:
        tables = sql(db_url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        assert tables == ([("other",)] if leftover else [])


# ---- personal data ------------------------------------------------------------------------
def test_names_birth_dates_and_notes_open_with_the_key_and_not_without(
    service: LedgerService, reopen: Callable[..., LedgerService], tmp_path: Path
) -> None:
    code = helpers.small_community(service)  # R1 张秀英 1948-05-02, R2 王小明 2016-09-01
    record_id = helpers.record(service, code, note="帮助老人缴纳医保")["record_id"]
    stored = [p for _n, p in payloads(service)]
    enrolled = {p["code"]: p for p in stored if "enrolled_on" in p}
    note = next(p["note"] for p in stored if p.get("record_id") == record_id)
    for envelope, key_id in (
        (enrolled["R1"]["name"], f"res:{code}/R1"),
        (enrolled["R1"]["birth_date"], f"res:{code}/R1"),
        (note, f"note:{record_id}"),
    ):
        assert set(envelope) == {"v", "alg", "key_id", "nonce", "ct"}
        assert envelope["v"] == 2 and envelope["alg"] == "A256GCM" and envelope["key_id"] == key_id
    places = {
        "name R1": crypto.Binding(code, "R1", "name"),
        "birth R1": crypto.Binding(code, "R1", "birth_date"),
        "name R2": crypto.Binding(code, "R2", "name"),
        "birth R2": crypto.Binding(code, "R2", "birth_date"),
        "note": crypto.note_of(code, record_id),
    }
    clear = {
        "name R1": (enrolled["R1"]["name"], "张秀英"),
        "birth R1": (enrolled["R1"]["birth_date"], "1948-05-02"),
        "name R2": (enrolled["R2"]["name"], "王小明"),
        "birth R2": (enrolled["R2"]["birth_date"], "2016-09-01"),
        "note": (note, "帮助老人缴纳医保"),
    }
    for service_ in (service, reopen()):
        opened = {label: service_.open_envelope(envelope, where=places[label]) for label, (envelope, _text) in clear.items()}
        assert opened == {label: text for label, (_envelope, text) in clear.items()}
    keyless = reopen(tmp_path / "missing.key")
    assert {k: keyless.open_envelope(env, where=places[k]) for k, (env, _) in clear.items()} == dict.fromkeys(clear)
    assert keyless.open_envelope(None, where=places["note"]) is None


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda s, c, r: helpers.enroll(s, c, "R9", name="覃美玲"), id="enroll"),
        pytest.param(lambda s, c, r: helpers.record(s, c, note="需要保密的备注"), id="record-with-note"),
        pytest.param(lambda s, c, r: correct(s, c, r, note="新的备注"), id="correct-note"),
    ],
)
def test_without_a_key_file_personal_data_is_refused_and_nothing_is_written(
    service: LedgerService, reopen: Callable[..., LedgerService], tmp_path: Path, write: Callable[..., Any]
) -> None:
    code = helpers.small_community(service)
    record_id = helpers.record(service, code)["record_id"]
    keyless = reopen(tmp_path / "missing.key")
    before = store_counts(keyless)
    with pytest.raises(crypto.KeyFileError, match="no key file"):
        write(keyless, code, record_id)
    assert store_counts(keyless) == before
    # A service without personal data needs no key.
    assert helpers.record(keyless, code, occurred_at="2026-03-09 10:00")["created"] is True


def test_open_envelope_returns_none_for_an_erased_data_key(service: LedgerService, db_url: str) -> None:
    code = helpers.establish(service)
    helpers.enroll(service, code, "R1", name="莫小燕")
    envelope = next(p["name"] for _n, p in payloads(service) if p.get("code") == "R1" and "enrolled_on" in p)
    place = crypto.Binding(code, "R1", "name")
    assert service.open_envelope(envelope, where=place) == "莫小燕"
    _execute(db_url, "DELETE FROM data_keys WHERE key_id = ?", (envelope["key_id"],))
    fresh = LedgerService.open(parse_url(db_url), service.key_file)
    try:
        assert fresh.open_envelope(envelope, where=place) is None
    finally:
        fresh.close()


def test_dates_are_stored_as_iso_text(service: LedgerService) -> None:
    code = helpers.establish(service, established_on=date(2025, 12, 1))
    helpers.enroll(service, code, "R1", enrolled_on="2026/1/5")
    helpers.register(service, code, "P1", registered_on="2026年1月6日")
    stored = [p for _n, p in payloads(service)]
    assert stored[0]["established_on"] == "2025-12-01"
    assert stored[1]["enrolled_on"] == "2026-01-05"
    assert stored[2]["registered_on"] == "2026-01-06"
    assert service.get_community(code).residents["R1"]["enrolled_on"] == "2026-01-05"
