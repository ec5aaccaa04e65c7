"""Erasure on random histories: exactly the resident's key and their records' note keys go, nothing else.

Random services among four residents (one to three per record, some with notes), corrections that
change a record's residents and note, and voids, through `LedgerService` on SQLite. Then one
resident is erased. Invariants:

- every ledger entry (all but the notes), every monthly summary row and the residents directory
  are what they were;
- a note shows as erased exactly when its record listed the resident in some revision; every other
  note, and every other resident's name, still opens with the master key;
- the destroyed keys are exactly those: the resident's and the existing note keys of those records;
- the stored events before the erasure are unchanged.

Bounded: about 15 examples.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import models
from commands.app import LedgerService
from commands.views import ERASED, Views, open_notes
from domain.errors import LedgerError
from infra import crypto
from infra.store import parse_url
from projections import queries
from tests import helpers

RESIDENTS = ("R0", "R1", "R2", "R3")

people = st.lists(st.sampled_from(RESIDENTS), min_size=1, max_size=3, unique=True)
records = st.lists(
    st.tuples(people, st.one_of(st.none(), st.text(alphabet="备注甲乙丙abc ", min_size=1, max_size=12)), st.integers(1, 240)),
    min_size=1,
    max_size=12,
)
changes = st.lists(
    st.tuples(st.integers(0, 11), st.sampled_from(["residents", "note", "void"]), people),
    max_size=6,
)


def views_state(service: LedgerService) -> dict[str, Any]:
    views = Views(service)
    try:
        views.prepare()
        with views.read() as conn:
            entries = queries.entries(conn, queries.Filters(), include_voided=True)
            summary = queries.summary(conn, queries.Filters(), by="community", per_month=True)
            residents = queries.resident_rows(conn, "HZ-P", None)
    finally:
        views.close()
    open_notes(service, entries)
    open_notes(service, residents, "name")
    return {"entries": entries, "summary": summary, "residents": residents}


def without(rows: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != field} for row in rows]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=records, edits=changes, erased=st.sampled_from(RESIDENTS))
def test_erasure_destroys_exactly_the_residents_keys_and_changes_nothing_else(
    history: list[tuple[list[str], str | None, int]], edits: list[tuple[int, str, list[str]]], erased: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "taizhang.key"
        crypto.create_key_file(key_file)
        service, _ = LedgerService.create(parse_url(f"sqlite:///{Path(tmp) / 'taizhang.db'}"), key_file, None)
        try:
            code = helpers.establish(service, "HZ-P")
            for resident in RESIDENTS:
                helpers.enroll(service, code, resident, name=f"姓名{resident}")
            helpers.register(service, code, "P1")
            ids: list[str] = []
            ever: dict[str, set[str]] = {}
            for i, (residents, note, minutes) in enumerate(history):
                record_id = str(uuid.uuid4())
                extra = {"note": note} if note else {}
                at = f"2026-03-{1 + i:02d} 09:00"
                helpers.record(service, code, record_id, residents=residents, minutes=minutes, occurred_at=at, **extra)
                ids.append(record_id)
                ever[record_id] = set(residents)
            for index, what, residents in edits:
                record_id = ids[index % len(ids)]
                data: dict[str, Any] = {"community": code, "record_id": record_id, "reason": "更正"}
                try:
                    if what == "void":
                        service.void_service(service.validate(models.VoidService, data), "clerk")
                    elif what == "residents":
                        data["residents"] = residents
                        service.correct_service(service.validate(models.CorrectService, data), "clerk")
                        ever[record_id] |= set(residents)
                    else:
                        data["note"] = "更正后的备注 " + "".join(residents)
                        service.correct_service(service.validate(models.CorrectService, data), "clerk")
                except LedgerError:
                    pass  # not active, or a correction that changes nothing
            before = views_state(service)
            keys_before = set(service.recorder.data_keys([crypto.resident_key_id(code, r) for r in RESIDENTS]))
            note_keys_before = set(service.recorder.data_keys([crypto.note_key_id(r) for r in ids]))
            events_before = [(n.id, n.topic, n.state) for n in service.recorder.select_notifications(1, 10_000)]

            result = service.erase_resident(code, erased, "本人申请", "admin")

            listed = {record_id for record_id, who in ever.items() if erased in who}
            assert set(result["records"]) == listed
            gone = {crypto.resident_key_id(code, erased)} | {crypto.note_key_id(r) for r in listed}
            keys_after = set(service.recorder.data_keys([crypto.resident_key_id(code, r) for r in RESIDENTS]))
            note_keys_after = set(service.recorder.data_keys([crypto.note_key_id(r) for r in ids]))
            assert keys_after == keys_before - gone and note_keys_after == note_keys_before - gone
            assert result["keys_destroyed"] == len((keys_before | note_keys_before) & gone)

            after = views_state(service)
            assert without(after["entries"], "note") == without(before["entries"], "note")
            assert after["summary"] == before["summary"]
            assert without(after["residents"], "name") == without(before["residents"], "name")
            for old, new in zip(before["entries"], after["entries"], strict=True):
                if old["note"] is None:
                    assert new["note"] is None
                elif old["record_id"] in listed:
                    assert new["note"] == ERASED
                else:
                    assert new["note"] == old["note"]
            names = {row["code"]: row["name"] for row in after["residents"]}
            assert names == {r: ERASED if r == erased else f"姓名{r}" for r in RESIDENTS}
            events_after = [(n.id, n.topic, n.state) for n in service.recorder.select_notifications(1, 10_000)]
            assert events_after[: len(events_before)] == events_before
            assert [topic for _id, topic, _s in events_after[len(events_before) :]] == [
                "taizhang:Community.ResidentErased"
            ]
        finally:
            service.close()
