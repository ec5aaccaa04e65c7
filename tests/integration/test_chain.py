"""The hash chain on the real stores: tampering done with raw SQL is found and named.

Random histories are written through the application service, then one random
tampering is done directly on the database — a byte flipped in a payload, an event
row deleted or inserted, two rows swapped, a chain row edited — and `audit verify`
must name the tampered position and what happened there; without tampering it passes.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import models
from commands.app import LedgerService
from commands.audit_chain import VerificationFailed, prove, seal, verify_against, verify_community, verify_log
from infra import chain
from infra.checkpoint import ProofError, check_bundle, document, read_checkpoint
from infra.store import SCHEMA_VERSION, parse_url
from tests import helpers
from tests.conftest import drop_pg_database, make_pg_database
from tests.integration.test_service import sql

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "store_v1"
EVENTS = {"sqlite": ("stored_events", "rowid"), "postgres": ("taizhang_events", "notification_id")}


@contextmanager
def fresh_service(backend: str, admin_url: str | None, key_file: Path) -> Iterator[tuple[LedgerService, str]]:
    """A new empty store for one hypothesis example."""
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="tz-chain-"))
        url = f"sqlite:///{folder / 'taizhang.db'}"
    else:
        assert admin_url is not None
        url = make_pg_database(admin_url)
    service, _ = LedgerService.create(parse_url(url), key_file, None)
    try:
        yield service, url
    finally:
        service.close()
        if backend == "sqlite":
            shutil.rmtree(folder, ignore_errors=True)
        else:
            assert admin_url is not None
            drop_pg_database(admin_url, url)


@pytest.fixture
def admin_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("pg_admin_url") if backend == "postgres" else None


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.integers(0, 10)),
        st.tuples(st.just("correct"), st.integers(0, 10)),
        st.tuples(st.just("void"), st.integers(0, 10)),
        st.tuples(st.just("enroll"), st.integers(0, 10)),
    ),
    min_size=1,
    max_size=8,
)


def write_history(service: LedgerService, ops: list[tuple[str, int]]) -> tuple[list[str], list[str]]:
    """Two communities and a random sequence of records, corrections, voids and enrolments."""
    codes = [helpers.small_community(service), helpers.establish(service)]
    records: list[str] = []
    for n, (op, pick) in enumerate(ops):
        if op == "record" or not records:
            records.append(helpers.record(service, codes[0], minutes=10 + pick, note="走访" if pick % 3 == 0 else None)["record_id"])
        elif op == "correct":
            cmd = models.CorrectService(community=codes[0], record_id=records[pick % len(records)], minutes=200 + n, reason="更正")
            try:
                service.correct_service(cmd, "clerk")
            except Exception:  # a voided record cannot be corrected: the history just goes on
                pass
        elif op == "void":
            try:
                service.void_service(models.VoidService(community=codes[0], record_id=records[pick % len(records)], reason="重复"), "clerk")
            except Exception:
                pass
        else:
            helpers.enroll(service, codes[1], f"R{n}")
    return codes, records


def positions_of(url: str, backend: str) -> list[int]:
    table, pos = EVENTS[backend]
    return [int(r[0]) for r in sql(url, f"SELECT {pos} FROM {table} ORDER BY {pos}")]


def execute(url: str, statements: list[tuple[str, tuple[Any, ...]]]) -> Any:
    """Run statements in one transaction outside the application; returns the last one's first row."""
    store = parse_url(url)
    last = None
    if store.backend == "sqlite":
        conn = sqlite3.connect(str(store.path))
        try:
            for statement, params in statements:
                last = conn.execute(statement, params).fetchone()
            conn.commit()
        finally:
            conn.close()
        return last
    import psycopg

    with psycopg.connect(url) as conn:
        for statement, params in statements:
            cur = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
            last = cur.fetchone() if cur.description else None
    return last


def tamper(url: str, backend: str, how: str, a: int, b: int, byte: int) -> tuple[int, set[str]]:
    """Tamper with the store; returns the position verify must name and the kinds it may say."""
    table, pos = EVENTS[backend]
    positions = positions_of(url, backend)
    last = positions[-1]
    p = positions[a % len(positions)]
    if how == "flip":
        state = bytearray(sql(url, f"SELECT state FROM {table} WHERE {pos} = ?", (p,))[0][0])
        state[byte % len(state)] ^= 1 << (byte % 8)
        execute(url, [(f"UPDATE {table} SET state = ? WHERE {pos} = ?", (bytes(state), p))])
        return p, {"mismatch"} if p == last else {"changed"}
    if how == "delete":
        execute(url, [(f"DELETE FROM {table} WHERE {pos} = ?", (p,))])
        return p, {"missing"}
    if how == "insert":
        row = execute(
            url,
            [
                (
                    f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                    f"SELECT originator_id, originator_version + 1000, topic, state FROM {table} WHERE {pos} = ?"
                    + (" RETURNING notification_id" if backend == "postgres" else ""),
                    (p,),
                ),
                *([(f"SELECT max({pos}) FROM {table}", ())] if backend == "sqlite" else []),
            ],
        )
        return int(row[0]), {"unchained"}
    if how == "swap":
        q = positions[b % len(positions)]
        if q == p:
            q = positions[(b + 1) % len(positions)]
        first, second = sorted((p, q))
        execute(
            url,
            [
                (f"UPDATE {table} SET {pos} = -1 WHERE {pos} = ?", (first,)),
                (f"UPDATE {table} SET {pos} = ? WHERE {pos} = ?", (first, second)),
                (f"UPDATE {table} SET {pos} = ? WHERE {pos} = -1", (second,)),
            ],
        )
        return first, {"reordered"}
    assert how == "chain"
    execute(url, [("UPDATE taizhang_chain SET hash = ? WHERE position = ?", (uuid.uuid4().bytes * 2, p))])
    return p, {"mismatch"} if p == last else {"chain-altered"}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=OPS,
    how=st.sampled_from(["none", "flip", "delete", "insert", "swap", "chain"]),
    a=st.integers(0, 1000),
    b=st.integers(0, 1000),
    byte=st.integers(0, 10_000),
)
def test_verify_names_the_tampered_position(
    backend: str, admin_url: str | None, key_file: Path, ops: list[tuple[str, int]], how: str, a: int, b: int, byte: int
) -> None:
    with fresh_service(backend, admin_url, key_file) as (service, url):
        codes, _records = write_history(service, ops)
        events = len(positions_of(url, backend))
        assert verify_log(service)["events"] == events
        if how == "none":
            for code in codes:
                verify_community(service, code)
            return
        position, kinds = tamper(url, backend, how, a, b, byte)
        from commands.audit_chain import walk_log

        problem = walk_log(service).problem
        assert problem is not None, f"{how} at {position} went unnoticed"
        assert (problem.position, problem.kind) in {(position, kind) for kind in kinds}, (how, position, problem)
        with pytest.raises(VerificationFailed, match=f"position {position}: "):
            verify_log(service)


def test_a_payload_changed_in_a_community_fails_its_stream_check(service: LedgerService, db_url: str, backend: str) -> None:
    code = helpers.small_community(service)
    other = helpers.small_community(service)
    helpers.record(service, code)
    verify_community(service, code)
    table, pos = EVENTS[backend]
    target = positions_of(db_url, backend)[1]  # R1's enrolment in `code`
    state = sql(db_url, f"SELECT state FROM {table} WHERE {pos} = ?", (target,))[0][0]
    execute(db_url, [(f"UPDATE {table} SET state = ? WHERE {pos} = ?", (bytes(state).replace(b"R1", b"R9"), target))])
    with pytest.raises(VerificationFailed, match=f"community {code}: position {target}: the event does not match"):
        verify_community(service, code)
    verify_community(service, other)  # the other community's stream is intact


def test_a_rewritten_recorded_time_breaks_the_chain(service: LedgerService, db_url: str, backend: str) -> None:
    code = helpers.small_community(service)
    helpers.record(service, code)
    first = sql(db_url, "SELECT first_position FROM taizhang_commits ORDER BY first_position")[2][0]
    execute(db_url, [("UPDATE taizhang_commits SET recorded_at = ? WHERE first_position = ?", ("2026-01-01T00:00:00.000Z", first))])
    with pytest.raises(VerificationFailed, match=f"position {first}: event changed: its payload or recorded time"):
        verify_log(service)


def test_chain_hashes_and_the_documented_encoding(service: LedgerService, db_url: str, backend: str) -> None:
    code = helpers.small_community(service)
    helpers.record(service, code)
    positions = positions_of(db_url, backend)
    hashes = service.recorder.chain_hashes(positions)
    assert sorted(hashes) == positions
    assert sorted(service.recorder.chain_hashes(positions[1::2])) == positions[1::2]  # those, not the ones between
    table, pos = EVENTS[backend]
    oid, version, topic, state = sql(db_url, f"SELECT originator_id, originator_version, topic, state FROM {table} WHERE {pos} = ?", (positions[0],))[0]
    recorded = service.recorder.recorded_times(positions[0], positions[0])[0][2]
    assert hashes[positions[0]] == chain.link(chain.GENESIS, positions[0], chain.id_bytes(oid), version, topic, bytes(state), recorded)
    assert service.recorder.chain_hashes(list(range(positions[-1] + 1, positions[-1] + 10))) == {}
    assert service.recorder.chain_hashes([]) == {}


def test_a_refused_write_leaves_no_chain_entry(service: LedgerService, db_url: str) -> None:
    code = helpers.small_community(service)
    record_id = helpers.record(service, code)["record_id"]
    before = sql(db_url, "SELECT count(*) FROM taizhang_chain")[0][0]
    with pytest.raises(Exception, match="already recorded"):
        helpers.record(service, code, record_id, minutes=99)
    assert sql(db_url, "SELECT count(*) FROM taizhang_chain")[0][0] == before
    verify_log(service)


def test_an_older_store_is_chained_when_upgraded(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "v1")
    db = tmp_path / "v1" / "taizhang.db"
    assert "taizhang_chain" not in {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    service = LedgerService.open(parse_url(f"sqlite:///{db}"), tmp_path / "v1" / "taizhang.key")
    try:
        result = verify_log(service)
        assert result["events"] == 112
        assert service.recorder.settings()["schema_version"] == SCHEMA_VERSION
        code = service.communities()[0].code
        helpers.record(service, code, residents=[next(iter(service.get_community(code).residents))], providers=[next(iter(service.get_community(code).providers))])
        assert verify_log(service)["events"] == 113
        verify_community(service, code)
    finally:
        service.close()


# ---- checkpoints and bundles -----------------------------------------------------------------
@pytest.fixture
def signing_key(tmp_path: Path) -> Any:
    from infra.checkpoint import create_signing_key, load_signing_key

    create_signing_key(tmp_path / "seal.key")
    return load_signing_key(tmp_path / "seal.key")


def rewrite_history(url: str, backend: str, service: LedgerService, position: int) -> None:
    """An attacker with write access: change an event, then recompute the whole chain."""
    table, pos = EVENTS[backend]
    state = bytes(sql(url, f"SELECT state FROM {table} WHERE {pos} = ?", (position,))[0][0])
    execute(url, [(f"UPDATE {table} SET state = ? WHERE {pos} = ?", (state.replace(b"clerk", b"other"), position))])
    execute(url, [("DELETE FROM taizhang_chain", ())])
    service.recorder.chain_backlog()


@pytest.mark.parametrize("later", [0, 1, 7])
def test_a_checkpoint_verifies_against_any_later_log_and_fails_after_a_rewrite(
    service: LedgerService, db_url: str, backend: str, signing_key: Any, later: int
) -> None:
    code = helpers.small_community(service)
    for _ in range(3):
        helpers.record(service, code)
    cp = read_checkpoint(seal(service, signing_key), signing_key.public_key())
    for _ in range(later):
        helpers.record(service, code)
    result = verify_against(service, cp)
    assert result["appended_since"] == later
    rewrite_history(db_url, backend, service, positions_of(db_url, backend)[cp.log_size // 2])
    verify_log(service)  # the recomputed chain alone looks fine…
    with pytest.raises(VerificationFailed, match="not an extension of the one sealed"):
        verify_against(service, cp)  # …the sealed checkpoint does not


def test_rewriting_an_event_after_the_checkpoint_keeps_the_proof(service: LedgerService, db_url: str, backend: str, signing_key: Any) -> None:
    code = helpers.small_community(service)
    helpers.record(service, code)
    cp = read_checkpoint(seal(service, signing_key), signing_key.public_key())
    helpers.record(service, code)
    rewrite_history(db_url, backend, service, positions_of(db_url, backend)[-1])
    verify_against(service, cp)  # only events after the seal changed: the checkpoint cannot say otherwise


def bundle_for(service: LedgerService, signing_key: Any) -> tuple[str, bytes]:
    code = helpers.small_community(service)
    record_id = helpers.record(service, code, note="送米送油")["record_id"]
    helpers.record(service, code)
    service.correct_service(models.CorrectService(community=code, record_id=record_id, minutes=45, reason="时长有误"), "clerk")
    service.void_service(models.VoidService(community=code, record_id=record_id, reason="重复登记"), "clerk")
    cp = read_checkpoint(seal(service, signing_key), None)
    helpers.record(service, code)  # later events do not matter to the bundle
    return record_id, document(prove(service, record_id, cp))


def test_a_bundle_verifies_offline_and_any_changed_byte_fails(service: LedgerService, signing_key: Any) -> None:
    record_id, data = bundle_for(service, signing_key)
    service.close()  # no database from here on
    found, cp, events = check_bundle(data, signing_key.public_key())
    assert found == record_id
    assert [e.topic.rsplit(".", 1)[1] for e in events] == ["ServiceRecorded", "ServiceCorrected", "ServiceVoided"]
    for i in range(len(data)):
        for delta in (1, 2, 0x20):
            changed = bytearray(data)
            changed[i] ^= delta
            with pytest.raises(ProofError):
                check_bundle(bytes(changed), signing_key.public_key())


def test_a_bundle_fails_with_another_key_or_a_missing_event(service: LedgerService, signing_key: Any) -> None:
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _record_id, data = bundle_for(service, signing_key)
    with pytest.raises(ProofError, match="not with this public key"):
        check_bundle(data, Ed25519PrivateKey.generate().public_key())
    bundle = json.loads(data)
    del bundle["events"][1]
    with pytest.raises(ProofError, match="holds 3 events of record"):
        check_bundle(document(bundle), signing_key.public_key())


def test_a_bundle_for_an_unknown_record_or_another_store_is_refused(service: LedgerService, signing_key: Any) -> None:
    code = helpers.small_community(service)
    helpers.record(service, code)
    cp = read_checkpoint(seal(service, signing_key), None)
    with pytest.raises(VerificationFailed, match="is not in the log sealed"):
        prove(service, str(uuid.uuid4()), cp)
    forged = read_checkpoint({**cp.raw, "log_root": "00" * 32}, None)
    with pytest.raises(VerificationFailed, match="are not the ones in the checkpoint"):
        prove(service, str(uuid.uuid4()), forged)


def test_a_master_key_is_not_needed_to_verify(service: LedgerService, db_url: str, tmp_path: Path) -> None:
    helpers.record(service, helpers.small_community(service), note="x")
    other = LedgerService.open(parse_url(db_url), tmp_path / "absent.key")
    try:
        assert verify_log(other)["events"] > 0
    finally:
        other.close()
