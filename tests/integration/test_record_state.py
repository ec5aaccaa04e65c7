"""The store's record_state against races, tampering and reruns (docs/decisions: record state).

Per-record state lives in side tables the store derives from the service events in their
transaction; a command reads only the rows its rule needs. A change to a record bumps the
community's version, so a command that read a record before another writer changed it
loses its save (or sees the newer row) and decides again: no concurrent correction is lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from commands import models
from commands.app import Busy, LedgerService
from commands.audit_chain import VerificationFailed, verify_log
from commands.closing import close_period
from domain.ids import community_id
from domain.units import parse_period, parse_unit
from infra.store import parse_url
from tests import helpers
from tests.integration.test_service import reopen  # noqa: F401  (reopen is a fixture)


def tamper(url: str, statement: str, params: tuple[Any, ...]) -> None:
    """Change the store behind the application's back, as its owner (committed)."""
    store = parse_url(url)
    if store.backend == "sqlite":
        conn = sqlite3.connect(str(store.path), isolation_level=None)
        try:
            conn.execute(statement, params)
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg:
        pg.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]


def correct(service: LedgerService, code: str, record_id: str, **changes: Any) -> dict[str, Any]:
    cmd = service.validate(
        models.CorrectService, {"community": code, "record_id": record_id, "reason": "更正", **changes}
    )
    return service.correct_service(cmd, "clerk")


def state(service: LedgerService, code: str, record_id: str) -> dict[str, Any]:
    return service.recorder.records_of(community_id(code))[record_id]


@pytest.mark.parametrize("when", ["after-the-registry-before-the-record", "after-both-before-the-save"])
def test_a_concurrent_correction_is_not_lost(
    service: LedgerService,
    reopen: Callable[..., LedgerService],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    code = helpers.small_community(service)
    record_id = helpers.record(service, code, minutes=30, place="home_visit")["record_id"]
    other = reopen()
    raced: list[Any] = []

    def race() -> None:
        if not raced:
            raced.append(correct(other, code, record_id, minutes=40))

    if when == "after-the-registry-before-the-record":
        read = service.recorder.record_states
        monkeypatch.setattr(service.recorder, "record_states", lambda *a: (race(), read(*a))[1])
    else:
        load = service.get_community
        monkeypatch.setattr(service, "get_community", lambda *a: (load(*a), race())[0])
    result = correct(service, code, record_id, residents=["R1", "R2"])
    assert raced and raced[0]["revision"] == 2
    assert result["revision"] == 3  # decided again over the other correction
    row = state(service, code, record_id)
    assert (row["minutes"], row["residents"], row["revision"]) == (40, ["R1", "R2"], 3)
    assert service.recorder.record_state_problem() is None


def test_a_departure_finds_the_earliest_active_service_from_its_day_through_the_index(service: LedgerService) -> None:
    code = helpers.small_community(service)
    early = helpers.record(service, code, residents=["R2"], occurred_at="2026-03-02 09:00")["record_id"]
    helpers.record(service, code, residents=["R1", "R2"], occurred_at="2026-03-10 09:00")
    late = helpers.record(service, code, residents=["R2"], occurred_at="2026-03-20 09:00")["record_id"]
    moved = helpers.record(service, code, residents=["R1"], occurred_at="2026-03-25 09:00")["record_id"]
    correct(service, code, moved, residents=["R2"])  # now R2's, from its current revision
    depart = service.validate(
        models.DepartResident, {"community": code, "code": "R1", "reason": "moved", "on": "2026-03-11"}
    )
    service.depart_resident(depart, "clerk")  # R1's only later service was corrected away
    r2 = service.validate(
        models.DepartResident, {"community": code, "code": "R2", "reason": "moved", "on": "2026-03-15"}
    )
    with pytest.raises(Exception, match=f"active service on 2026-03-20 \\(record {late}\\)"):
        service.depart_resident(r2, "clerk")
    for record_id in (late, moved):
        service.void_service(
            service.validate(models.VoidService, {"community": code, "record_id": record_id, "reason": "x"}), "clerk"
        )
    service.depart_resident(r2, "clerk")
    assert state(service, code, early)["status"] == "active"  # before the day: not in the way


def test_a_rerun_finishes_a_close_that_stopped_half_way(
    service: LedgerService, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = sorted(helpers.small_community(service) for _ in range(3))
    write = service._write
    calls: list[int] = []

    def busy_on_the_second(decide: Any, attempts: int = 30) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise Busy("the store is busy with other writers to the same community; try again")
        return write(decide, attempts)

    monkeypatch.setattr(service, "_write", busy_on_the_second)
    county, march = parse_unit("county:八步区"), parse_period("2026-03")
    with pytest.raises(
        Busy, match=f"closed in 1 of 3 communities: community {codes[1]} stayed busy; run the same close again"
    ):
        close_period(service, county, march, "结账", "sup01")
    monkeypatch.setattr(service, "_write", write)
    late = helpers.small_community(service)  # established after the close began: not covered by finishing it
    result = close_period(service, county, march, "结账", "sup01")
    assert (result["closed_before"], sorted(result["closed_now"])) == ([codes[0]], codes[1:])
    closures = [service.get_community(code).closure("county:八步区", "2026-03") for code in codes]
    assert all(c is not None for c in closures) and len({c[5] for c in closures if c}) == 1  # one closed-at
    assert service.get_community(late).closure("county:八步区", "2026-03") is None
    with pytest.raises(Exception, match="already closed"):
        close_period(service, county, march, "结账", "sup01")


def test_audit_verify_finds_a_record_state_row_that_disagrees_with_the_log(service: LedgerService) -> None:
    code = helpers.small_community(service)
    record_id = helpers.record(service, code, residents=["R1"])["record_id"]
    assert verify_log(service)["intact"] is True
    # A colleague "fixes" a voidable record by hand: the rules would now read a status the log never had.
    tamper(service.store.url, "UPDATE record_state SET status = 'voided' WHERE record_id = ?", (record_id,))
    with pytest.raises(
        VerificationFailed,
        match=f"record state does not agree with the log: record_state of record {record_id} disagrees with the log in status",
    ):
        verify_log(service)
    tamper(service.store.url, "UPDATE record_state SET status = 'active' WHERE record_id = ?", (record_id,))
    tamper(service.store.url, "DELETE FROM record_people WHERE record_id = ? AND role = 'r'", (record_id,))
    with pytest.raises(
        VerificationFailed, match=f"record_people of record {record_id} disagrees with the log for resident R1"
    ):
        verify_log(service)


FORGED = "0b7c2f9e-6a51-4c1e-9a38-2d5f3c8e1a99"
ATTACKS = {  # what is done to the store, and what `audit verify` must then say
    "a row for a record no event records": (
        "INSERT INTO record_state ({cols}) SELECT ?, {rest} FROM record_state WHERE record_id = ?",
        "record_state holds record {forged}, which no service event records",
    ),
    "a row for a record of a community the log never had": (
        "INSERT INTO record_state ({cols}) SELECT ?, {nowhere}, {rest2} FROM record_state WHERE record_id = ?",
        "record_state holds record {forged}, which no service event records",
    ),
    "a record's row deleted": ("DELETE FROM record_state WHERE record_id = ?", "record {record} has no record_state row"),
    "a record's row moved to another community": (
        "UPDATE record_state SET community_id = {other} WHERE record_id = ?",
        "record_state of record {record} disagrees with the log in community_id",
    ),
    "people of a community the log never had": (
        "INSERT INTO record_people (community_id, role, code, record_id, current)"
        " SELECT {nowhere}, role, code, record_id, current FROM record_people WHERE record_id = ? AND role = 'r'",
        "record_people of record {record} disagrees with the log for resident R1",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_audit_verify_finds_record_state_rows_the_log_does_not_account_for(service: LedgerService, attack: str) -> None:
    """`audit verify` compares one community at a time (its memory is one community's records): rows
    outside every community the log has, and rows moved between communities, are found too."""
    from infra.recordstate import COLUMNS

    first, second = helpers.small_community(service), helpers.small_community(service)
    record_id = helpers.record(service, first, residents=["R1"])["record_id"]
    helpers.record(service, second, residents=["R1"])
    assert verify_log(service)["intact"] is True
    as_id = "?" if service.store.backend == "sqlite" else "CAST(? AS uuid)"
    statement, message = ATTACKS[attack]
    statement = statement.format(
        cols=", ".join(COLUMNS),
        rest=", ".join(COLUMNS[1:]),
        rest2=", ".join(COLUMNS[2:]),
        nowhere=as_id,
        other=as_id,
    )
    nowhere, other = "5d1e0c3a1f2b4c3d8e4f5a6b7c8d9e0f", community_id(second).hex
    params: tuple[Any, ...] = {
        "a row for a record no event records": (FORGED, record_id),
        "a row for a record of a community the log never had": (FORGED, nowhere, record_id),
        "a record's row deleted": (record_id,),
        "a record's row moved to another community": (other, record_id),
        "people of a community the log never had": (nowhere, record_id),
    }[attack]
    tamper(service.store.url, statement, params)
    with pytest.raises(VerificationFailed) as failed:
        verify_log(service)
    assert str(failed.value) == "the record state does not agree with the log: " + message.format(
        forged=FORGED, record=record_id
    )


def test_every_correctable_field_lands_in_record_state_as_the_log_says(service: LedgerService) -> None:
    """On PostgreSQL the rows come from taizhang_record_state (SQL); audit's Python derivation must agree."""
    code = helpers.small_community(service)
    first = helpers.record(service, code, residents=["R1"], providers=["P1"], note="送米")["record_id"]
    second = helpers.record(service, code, residents=["R2"], occurred_at="2026-03-06 10:00")["record_id"]
    correct(service, code, first, kind="counseling")
    correct(service, code, first, occurred_at="2026-03-09 08:15", minutes=50)
    correct(service, code, first, residents=["R2"], providers=["P1", "P2"])
    correct(service, code, first, place="service_center")
    correct(service, code, first, note="改为送面")
    service.void_service(
        service.validate(models.VoidService, {"community": code, "record_id": second, "reason": "重复"}), "clerk"
    )
    rows = service.recorder.records_of(community_id(code))
    row = rows[first]
    assert (row["kind"], row["minutes"], row["residents"], row["providers"], row["place"], row["revision"]) == (
        "counseling", 50, ["R2"], ["P1", "P2"], "service_center", 6
    )  # fmt: skip
    assert row["occurred_at"].startswith("2026-03-09T08:15") and row["day"] == "2026-03-09"
    assert row["note_mac"] is not None and rows[second]["status"] == "voided"
    assert service.recorder.records_listing(community_id(code), "R1") == [first]  # an earlier revision listed R1
    assert sorted(service.recorder.records_listing(community_id(code), "R2")) == sorted([first, second])
    assert service.recorder.first_active_record(community_id(code), "r", "R1", "2026-03-01") is None
    assert service.recorder.first_active_record(community_id(code), "p", "P2", "2026-03-09")["record_id"] == first
    assert service.recorder.record_state_problem() is None
