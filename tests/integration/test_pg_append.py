"""Attacks by a colleague's own PostgreSQL login on the write path (infra.pgappend).

Each test logs in as a real login of the test server (a member of the groups
`init --admin` made, bound to an actor as `actor add --login` binds it) and does with
raw SQL what a hostile colleague would: forge another actor's event, make itself an
admin, insert rows behind the functions' back, pre-claim side rows, plant a garbage
snapshot. The database must refuse, or the application must shrug the garbage off;
the normal CLI path of every role must still work, and `audit verify` must still
verify the chain the database computed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from domain.actors import ACTORS_ID
from domain.ids import community_id
from infra import crypto
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import COMMUNITY, COMMUNITY_2, Cli, establish_args, store_counts

APPEND = "SELECT taizhang_append(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[])"


@dataclass
class Store:
    owner: str
    urls: dict[str, str]  # role -> URL of its login
    logins: dict[str, str]  # role -> login name
    key: Path

    def cli(self, role: str) -> Cli:
        return Cli(self.urls[role], self.key)


def _url(base: str, user: str, password: str) -> str:
    return f"postgresql://{user}:{password}@{base.split('@', 1)[1]}"


@pytest.fixture(scope="module")
def pg(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    url = make_pg_database(pg_admin_url)
    suffix = uuid.uuid4().hex[:8]
    groups = {"clerk": "taizhang_writer", "clerk2": "taizhang_writer", "supervisor": "taizhang_writer",
              "admin2": "taizhang_writer", "auditor": "taizhang_reader"}  # fmt: skip
    logins = {role: f"tz_{role}_{suffix}" for role in groups}
    password = uuid.uuid4().hex
    key = tmp_path_factory.mktemp("append") / "taizhang.key"
    owner = Cli(url, key)
    owner.ok("init", "--admin", "boss")
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for role, group in groups.items():
            conn.execute(f"CREATE ROLE {logins[role]} LOGIN PASSWORD '{password}' IN ROLE {group}")  # type: ignore[arg-type]
    try:
        owner.ok(*establish_args(COMMUNITY), actor="boss")
        grants = {"clerk": ("clerk01", "clerk", "community:HZ-001"), "clerk2": ("clerk02", "clerk", "city"),
                  "supervisor": ("sup01", "supervisor", "city"), "admin2": ("admin02", "admin", "city"),
                  "auditor": ("aud01", "auditor", "city")}  # fmt: skip
        for role, (name, kind, scope) in grants.items():
            owner.ok("actor", "add", name, "--role", kind, "--scope", scope, "--login", logins[role], actor="boss")
        yield Store(url, {r: _url(url, n, password) for r, n in logins.items()}, logins, key)
    finally:
        drop_pg_database(pg_admin_url, url)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for name in logins.values():
                conn.execute(f"DROP ROLE IF EXISTS {name}")  # type: ignore[arg-type]


def _last(url: str, originator: uuid.UUID) -> tuple[int, str, bytes]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT originator_version, topic, state FROM taizhang_events WHERE originator_id = %s "
            "ORDER BY originator_version DESC LIMIT 1",
            (originator,),
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), bytes(row[2])


def _append(url: str, originator: uuid.UUID, version: int, topic: str, state: dict[str, Any]) -> list[int]:
    """One event through taizhang_append as this login, committed."""
    with psycopg.connect(url) as conn:
        row = conn.execute(APPEND, ([originator], [version], [topic], [orjson.dumps(state)])).fetchone()
    assert row is not None
    return list(row[0])


def _refused(url: str, sql: str, params: Any = None) -> str:
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(sql, params)  # type: ignore[arg-type]
    return str(caught.value)


def _admin_grant(version: int, *, by: str, login: str) -> tuple[uuid.UUID, int, str, dict[str, Any]]:
    state = {"name": "mallory", "role": "admin", "scope": "city", "login": login, "actor": by,
             "timestamp": "2026-01-01T00:00:00+00:00"}  # back-dated  # fmt: skip
    return ACTORS_ID, version, "taizhang:Actors.Granted", state


def _verify_intact(store: Store) -> None:
    result = store.cli("auditor").ok("audit", "verify", actor="aud01")
    assert result.stdout.startswith("intact: "), result.stdout


def test_a_clerk_cannot_grant_itself_admin_by_raw_sql(pg: Store) -> None:
    version, _topic, _state = _last(pg.owner, ACTORS_ID)
    before = store_counts(pg.owner)
    # "granted by" the real admin, through the function: the clerk's login is not boss's.
    oid, v, topic, state = _admin_grant(version + 1, by="boss", login=pg.logins["clerk"])
    line = _refused(pg.urls["clerk"], APPEND, ([oid], [v], [topic], [orjson.dumps(state)]))
    assert "may not append an event of actor boss" in line and "bound to clerk01" in line
    # In its own name: an Actors event needs an admin's login.
    oid, v, topic, state = _admin_grant(version + 1, by="clerk01", login=pg.logins["clerk"])
    assert "actor clerk01 is not an admin" in _refused(
        pg.urls["clerk"], APPEND, ([oid], [v], [topic], [orjson.dumps(state)])
    )
    # Behind the function's back: no INSERT on the events, commits or chain.
    for sql, params in (
        ("INSERT INTO taizhang_events (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
         (oid, v, topic, orjson.dumps({**state, "actor": "boss"}))),
        ("INSERT INTO taizhang_commits VALUES (1000, 1000, now())", None),
        ("INSERT INTO taizhang_chain VALUES (1000, '\\x00')", None),
        ("SELECT taizhang_lock_events()", None),
        ("SELECT nextval(pg_get_serial_sequence('taizhang_events', 'notification_id'))", None),
    ):  # fmt: skip
        assert "permission denied" in _refused(pg.urls["clerk"], sql, params)
    assert store_counts(pg.owner) == before
    listed = pg.cli("admin2").json("actor", "list", actor="admin02")
    assert "mallory" not in {a["actor"] for a in listed}
    _verify_intact(pg)


def test_an_event_naming_another_actor_is_refused_and_its_own_is_chained(pg: Store) -> None:
    originator = community_id("HZ-001")
    version, _topic, _state = _last(pg.owner, originator)
    enrolled = {"code": "RX", "name": None, "birth_date": None, "categories": [], "enrolled_on": "2026-02-01",
                "timestamp": "2026-02-01T00:00:00+00:00"}  # fmt: skip
    before = store_counts(pg.owner)
    for victim in ("sup01", "boss", "clerk02"):
        line = _refused(pg.urls["clerk"], APPEND, ([originator], [version + 1], ["taizhang:Community.ResidentEnrolled"],
                                                   [orjson.dumps({**enrolled, "actor": victim})]))  # fmt: skip
        assert f"may not append an event of actor {victim}: the login is bound to clerk01" in line
    # No actor at all, or one hidden in a duplicate key (both JSON readers take the last one).
    assert "names no actor" in _refused(pg.urls["clerk"], APPEND, ([originator], [version + 1],
                                        ["taizhang:Community.ResidentEnrolled"], [orjson.dumps(enrolled)]))  # fmt: skip
    twice = orjson.dumps(enrolled)[:-1] + b',"actor":"clerk01","actor":"boss"}'
    assert "actor boss" in _refused(pg.urls["clerk"], APPEND, ([originator], [version + 1],
                                    ["taizhang:Community.ResidentEnrolled"], [twice]))  # fmt: skip
    # A community's first event is an admin's.
    assert "is not an admin" in _refused(pg.urls["clerk"], APPEND, ([community_id("XX-9")], [1],
        ["taizhang:Community.Established"], [orjson.dumps({**enrolled, "actor": "clerk01"})]))  # fmt: skip
    assert store_counts(pg.owner) == before
    # A well-formed enrollment in the clerk's own name, with its data key, in one transaction: taken,
    # stamped and chained by the database.
    master = crypto.load_key_file(pg.key)
    where = crypto.Binding("HZ-001", "RX", "name")
    key_id = where.key_id
    data_key = crypto.new_data_key()
    state = {**enrolled, "name": crypto.seal(where, data_key, "某某"), "gender": None, "grid": None,
             "household": None, "actor": "clerk01"}  # fmt: skip
    with psycopg.connect(pg.urls["clerk"]) as conn:
        row = conn.execute(APPEND, ([originator], [version + 1], ["taizhang:Community.ResidentEnrolled"],
                                    [orjson.dumps(state)])).fetchone()  # fmt: skip
        conn.execute("SELECT taizhang_append_keys(%s, %s, %s::bytea[])",
                     ([key_id], [master.key_id], [master.wrap(key_id, data_key)]))  # fmt: skip
    assert row is not None and len(row[0]) == 1
    after = store_counts(pg.owner)
    assert after["taizhang_events"] == before["taizhang_events"] + 1
    assert after["taizhang_commits"] == before["taizhang_commits"] + 1
    assert after["data_keys"] == before["data_keys"] + 1
    _verify_intact(pg)
    Cli(pg.owner, pg.key).ok("projections", "run", actor="boss")  # the views are the worker's (or the owner's)
    residents = pg.cli("clerk").json("resident", "list", "HZ-001", actor="clerk01")
    assert {"code": "RX", "name": "某某"}.items() <= next(r for r in residents if r["code"] == "RX").items()


def test_every_role_still_writes_through_the_cli(pg: Store, tmp_path: Path) -> None:
    from tests.e2e.conftest import write_csv

    clerk = pg.cli("clerk")
    clerk.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", actor="clerk01")
    clerk.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员", actor="clerk01")
    clerk.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
             "--at", "2026-03-05 09:30", "--minutes", "45", "--note", "送米", "--record-id", "5d4c7a52-96a3-4d55-9d61-0a4f3c1b2e01", actor="clerk01")  # fmt: skip
    header = ["community", "kind", "residents", "providers", "occurred_at", "minutes", "note"]
    rows = [["HZ-001", "life_care", "R1", "P1", f"2026-02-{1 + i % 28:02d} {8 + i // 1680:02d}:{i % 60:02d}", str(10 + i % 600), f"n{i}"]
            for i in range(2500)]  # more than one chunk of taizhang_append  # fmt: skip
    clerk.ok("import", "services", str(write_csv(tmp_path / "s.csv", [header, *rows])), actor="clerk01")
    sup = pg.cli("supervisor")
    sup.ok("official", "register", "O1", "--name", "王", "--title", "书记", actor="sup01")
    sup.ok(
        "duty",
        "assign",
        "O1",
        "--unit",
        "community:HZ-001",
        "--duty",
        "contact_point",
        "--from",
        "2026-01-01",
        actor="sup01",
    )
    admin2 = pg.cli("admin2")
    admin2.ok(*establish_args(COMMUNITY_2), actor="admin02")
    admin2.ok("actor", "revoke", "clerk02", "--reason", "left", actor="admin02")
    # A revoked actor's login appends nothing, even by raw SQL in its own name.
    originator = community_id("QT-2")
    version, _topic, _state = _last(pg.owner, originator)
    line = _refused(pg.urls["clerk2"], APPEND, ([originator], [version + 1], ["taizhang:Community.ResidentEnrolled"],
                    [orjson.dumps({"code": "R2", "actor": "clerk02"})]))  # fmt: skip
    assert "the login is bound to no actor" in line
    with psycopg.connect(pg.owner) as conn:
        commits = conn.execute(
            "SELECT count(*) FROM taizhang_commits WHERE last_position - first_position >= 2499"
        ).fetchone()
    assert commits is not None and commits[0] == 1  # the import: one transaction, one recorded time
    _verify_intact(pg)


def test_side_rows_cannot_be_planted(pg: Store) -> None:
    """Pre-inserting a community's unit row blocked its establishment ("store is busy")."""
    before = store_counts(pg.owner)
    state = (f"('rec-x', '{community_id('HZ-001')}', 'active', 1, 'd', '2026-01-05T09:00:00+08:00', '2026-01-05',"
             " 'life_care', 30, NULL, NULL, NULL, '[]', '[]', 1, 1)")  # a record state claims a record id
    for table, values in (("community_units", "('NEW-1', '八步区', '贺街镇')"), ("record_state", state),
                          ("record_people", f"('{community_id('HZ-001')}', 'r', 'R1', 'rec-x', 1)"),
                          ("data_keys", "('resident:NEW-1/R1', 'mk', '\\x00')")):  # fmt: skip
        assert "permission denied" in _refused(pg.urls["clerk"], f"INSERT INTO {table} VALUES {values}")
    # Through the sibling functions, rows need the events of the same transaction that account for them.
    for sql, params, needle in (
        ("SELECT taizhang_append_units(%s, %s, %s)", (["NEW-1"], ["八步区"], ["贺街镇"]), "go with the events"),
        ("SELECT taizhang_append_keys(%s, %s, %s::bytea[])", (["k"], ["mk"], [b"\0"]), "go with the events"),
    ):
        assert needle in _refused(pg.urls["clerk"], sql, params)
    # The record claims of schema 7 went with their function: record_state is the claim (schema 8).
    with psycopg.connect(pg.urls["clerk"]) as conn, pytest.raises(psycopg.errors.UndefinedFunction):
        conn.execute("SELECT taizhang_append_claims(%s::text[], %s::text[])", (["rec-x"], ["x"]))
    originator = community_id("HZ-001")
    version, _topic, _state = _last(pg.owner, originator)
    with psycopg.connect(pg.urls["clerk"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(APPEND, ([originator], [version + 1], ["taizhang:Community.ResidentEnrolled"],
                              [orjson.dumps({"code": "RZ", "actor": "clerk01"})]))  # fmt: skip
        conn.execute("SELECT taizhang_append_units(%s, %s, %s)", (["NEW-1"], ["八步区"], ["贺街镇"]))
    assert "no community of this transaction establishes it" in str(caught.value)
    with psycopg.connect(pg.urls["clerk"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(APPEND, ([originator], [version + 1], ["taizhang:Community.ResidentEnrolled"],
                              [orjson.dumps({"code": "RZ", "actor": "clerk01"})]))  # fmt: skip
        conn.execute("SELECT taizhang_append_keys(%s, %s, %s::bytea[])", (["resident:NEW-1/R1"], ["mk"], [b"\0"]))
    assert "no event of this transaction is sealed with it" in str(caught.value)
    assert store_counts(pg.owner) == before
    pg.cli("admin2").ok(*establish_args({**COMMUNITY, "code": "NEW-1"}), actor="admin02")


def _recorded(record_id: str) -> bytes:
    """A service whose note is sealed with the key note:<record id>."""
    note = {"alg": "AES-256-GCM", "key_id": f"note:{record_id}", "nonce": "", "ct": ""}
    return orjson.dumps({"actor": "clerk01", "record_id": record_id, "kind": "life_care", "residents": ["R1"],
                         "providers": ["P1"], "occurred_at": "2026-01-05T09:00:00+08:00", "minutes": 30,
                         "place": None, "note": note, "note_mac": "m", "entered_on": None, "digest": "d"})  # fmt: skip


def test_a_record_id_of_another_community_is_refused_by_the_store(pg: Store) -> None:
    """The application looks for a record id in the other communities before it records one; a login
    that calls taizhang_append itself skips that look, and the store still refuses the second
    community's record: record_state, which the function derives from the event, keys every record id
    once store-wide (docs/decisions/0027)."""
    for code in ("DUP-1", "DUP-2"):  # communities of their own: the forged events are not whole services
        pg.cli("admin2").ok(*establish_args({**COMMUNITY, "code": code}), actor="admin02")
    first, second = community_id("DUP-1"), community_id("DUP-2")
    record_id = str(uuid.uuid4())
    state = {**orjson.loads(_recorded(record_id)), "actor": "sup01", "note": None, "note_mac": None,
             "timestamp": "2026-01-05T01:00:00+00:00"}  # fmt: skip
    _append(pg.urls["supervisor"], first, _last(pg.owner, first)[0] + 1, "taizhang:Community.ServiceRecorded", state)
    before = store_counts(pg.owner)
    with psycopg.connect(pg.urls["supervisor"]) as conn, pytest.raises(psycopg.errors.UniqueViolation) as caught:
        conn.execute(APPEND, ([second], [_last(pg.owner, second)[0] + 1], ["taizhang:Community.ServiceRecorded"],
                              [orjson.dumps(state)]))  # fmt: skip
    assert "record_state" in str(caught.value)
    assert store_counts(pg.owner) == before
    with psycopg.connect(pg.owner) as conn:
        owners = conn.execute("SELECT community_id FROM record_state WHERE record_id = %s", (record_id,)).fetchall()
    assert owners == [(first,)]
    _verify_intact(pg)


def test_the_chunk_hint_only_narrows_the_side_rows_check(pg: Store) -> None:
    """An import says where its chunk's events begin (taizhang.chunk_first), so that the data keys of a
    chunk are checked against its own events: a key of an event before the hint is refused, and a
    hint before the transaction does not let a key through for an event of another transaction."""
    originator = community_id("HZ-001")

    def claim(record_ids: list[str], _community: list[str]) -> tuple[str, tuple[Any, ...]]:
        keys = [f"note:{r}" for r in record_ids]
        return "SELECT taizhang_append_keys(%s, %s, %s::bytea[])", (keys, ["mk"] * len(keys), [b"\0"] * len(keys))

    hint = "SELECT set_config('taizhang.chunk_first', %s, true)"
    before = store_counts(pg.owner)
    version, _topic, _state = _last(pg.owner, originator)
    with psycopg.connect(pg.urls["clerk"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        first = conn.execute(APPEND, ([originator], [version + 1], ["taizhang:Community.ServiceRecorded"],
                                      [_recorded("rec-a")])).fetchone()  # fmt: skip
        second = conn.execute(APPEND, ([originator], [version + 2], ["taizhang:Community.ServiceRecorded"],
                                       [_recorded("rec-b")])).fetchone()  # fmt: skip
        assert first is not None and second is not None
        conn.execute(*claim(["rec-a"], [str(originator)]))  # no hint: any event of the transaction
        conn.execute(hint, (str(second[0][0]),))
        conn.execute(*claim(["rec-b"], [str(originator)]))
        conn.execute(*claim(["rec-a2"], [str(originator)]))  # rec-a2: no event at all
    assert "no event of this transaction is sealed with it" in str(caught.value)
    with psycopg.connect(pg.urls["clerk"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        second = conn.execute(APPEND, ([originator], [version + 2], ["taizhang:Community.ServiceRecorded"],
                                       [_recorded("rec-b")])).fetchone()  # fmt: skip
        conn.execute(APPEND, ([originator], [version + 1], ["taizhang:Community.ServiceRecorded"],
                              [_recorded("rec-a")]))  # fmt: skip
        assert second is not None
        conn.execute(hint, (str(second[0][0] + 1),))  # after rec-b: rec-b is refused
        conn.execute(*claim(["rec-b"], [str(originator)]))
    assert "no event of this transaction is sealed with it" in str(caught.value)
    with psycopg.connect(pg.urls["clerk"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(APPEND, ([originator], [version + 1], ["taizhang:Community.ServiceRecorded"],
                              [_recorded("rec-c")]))  # fmt: skip
        conn.execute(hint, ("0",))  # before the transaction: no wider than the transaction
        conn.execute(*claim(["rec-earlier"], [str(originator)]))
    assert "no event of this transaction is sealed with it" in str(caught.value)
    assert store_counts(pg.owner) == before


def test_a_garbage_snapshot_is_ignored_and_reported_once(pg: Store) -> None:
    """A writer may add snapshots (a cache): one that does not decode must not block the community."""
    clerk = pg.cli("clerk")
    clerk.ok("resident", "enroll", "HZ-001", "RG", "--name", "快照", actor="clerk01")
    originator = community_id("HZ-001")
    version, _topic, _state = _last(pg.owner, originator)
    with psycopg.connect(pg.urls["clerk"]) as conn:
        conn.execute(
            "INSERT INTO taizhang_snapshots (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
            (originator, version, "taizhang:Community.Snapshot", b"\xff not json"),
        )
    first = clerk.ok("resident", "update", "HZ-001", "RG", "--grid", "G1", actor="clerk01")
    notes = [line for line in first.stderr.splitlines() if "snapshot" in line]
    assert len(notes) == 1 and f"ignored the snapshot of aggregate {originator} at version {version}" in notes[0]
    Cli(pg.owner, pg.key).ok("projections", "run", actor="boss")  # the views are the worker's (or the owner's)
    listed = clerk.json("resident", "list", "HZ-001", actor="clerk01")
    assert "RG" in {r["code"] for r in listed}
    _verify_intact(pg)


def test_an_older_store_loses_the_writers_insert_on_upgrade(pg: Store) -> None:
    """A store made before taizhang_append granted writers INSERT; opening it with this version takes that away."""
    with psycopg.connect(pg.owner) as conn:
        # Schema 7 and before also kept record claims in a table of their own, with a function to add them.
        conn.execute("CREATE TABLE record_claims (record_id text PRIMARY KEY, community_id text NOT NULL)")
        conn.execute("GRANT INSERT ON taizhang_events, taizhang_commits, taizhang_chain, record_claims, "
                     "community_units, data_keys TO taizhang_writer")  # fmt: skip
        conn.execute("UPDATE taizhang_settings SET value = '5' WHERE key = 'schema_version'")
    with psycopg.connect(pg.urls["clerk"]) as conn:  # the old hole, as it was
        conn.execute("INSERT INTO community_units VALUES ('OLD-1', 'x', 'x')")
        conn.rollback()
    Cli(pg.owner, pg.key).ok("community", "list", actor="boss")  # the owner's upgrade runs on open
    pg.cli("clerk").ok("projections", "status", actor="clerk01")
    with psycopg.connect(pg.owner) as conn:
        row = conn.execute("SELECT value FROM taizhang_settings WHERE key = 'schema_version'").fetchone()
    assert row is not None and row[0] != "5"
    with psycopg.connect(pg.owner) as conn:  # record_state holds the claims now (docs/decisions/0027)
        assert conn.execute("SELECT to_regclass('record_claims')").fetchone() == (None,)
    assert "permission denied" in _refused(pg.urls["clerk"], "INSERT INTO community_units VALUES ('OLD-1', 'x', 'x')")
    assert "permission denied" in _refused(pg.urls["clerk"], "INSERT INTO taizhang_chain VALUES (1000, '\\x00')")


def test_an_older_store_gets_the_current_function_bodies_on_upgrade(pg: Store) -> None:
    """Schema 8 and before had costlier bodies of the same functions: opening the store replaces them."""
    bodies = "SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'taizhang\\_%' ORDER BY proname"
    with psycopg.connect(pg.owner) as conn:
        current = conn.execute(bodies).fetchall()
        # An older body stands in for schema 8's (same signature, owner, SECURITY DEFINER).
        conn.execute("CREATE OR REPLACE FUNCTION taizhang_append(ids uuid[], versions bigint[], topics text[],"
                     " states bytea[]) RETURNS bigint[] LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN"
                     " RAISE EXCEPTION 'an old body'; END $$")  # fmt: skip
        conn.execute("UPDATE taizhang_settings SET value = '8' WHERE key = 'schema_version'")
    Cli(pg.owner, pg.key).ok("community", "list", actor="boss")  # the owner's upgrade runs on open
    with psycopg.connect(pg.owner) as conn:
        assert conn.execute(bodies).fetchall() == current
        row = conn.execute("SELECT value FROM taizhang_settings WHERE key = 'schema_version'").fetchone()
    assert row is not None and row[0] != "8"


def test_a_clerk_on_a_store_not_yet_upgraded_is_told_to_run_the_owner_first(pg: Store) -> None:
    """After a new version is installed, a clerk's login cannot upgrade the store (only the owner may
    replace tables and functions): one line that says what to do, in both languages, and nothing
    changes until the owner has run a command."""
    bodies = "SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'taizhang\\_%' ORDER BY proname"
    with psycopg.connect(pg.owner) as conn:
        conn.execute("UPDATE taizhang_settings SET value = '8' WHERE key = 'schema_version'")
        before = conn.execute(bodies).fetchall()
    counts = store_counts(pg.owner)
    refused = pg.cli("clerk")("projections", "status", actor="clerk01")
    assert refused.exit_code == 1 and refused.exception is not None  # SystemExit, not a traceback
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("Error: the store at ") and line.endswith(
        "was made by an earlier version of taizhang and only its owner's login can upgrade it:"
        " run one taizhang command as the owner, then try again"
    )
    zh = pg.cli("clerk")("projections", "status", actor="clerk01", lang="zh")
    assert zh.exit_code == 1 and "只有其所有者的登录可以升级它" in zh.stderr
    with psycopg.connect(pg.owner) as conn:
        assert conn.execute("SELECT value FROM taizhang_settings WHERE key = 'schema_version'").fetchone() == ("8",)
        assert conn.execute(bodies).fetchall() == before
    assert store_counts(pg.owner) == counts
    Cli(pg.owner, pg.key).ok("community", "list", actor="boss")  # the owner's command upgrades
    pg.cli("clerk").ok("projections", "status", actor="clerk01")


def test_a_data_key_is_accounted_for_however_its_field_is_spelled(pg: Store) -> None:
    """taizhang_append_keys looks for key_id fields in the events' JSON, not for the words in their bytes."""

    def refusal(state: bytes, key_id: str) -> str | None:
        with psycopg.connect(pg.urls["clerk"]) as conn:
            try:
                conn.execute(APPEND, ([uuid.uuid4()], [1], ["taizhang:Test.Sealed"], [state]))
                conn.execute("SELECT taizhang_append_keys(%s, %s, %s::bytea[])", ([key_id], ["mk"], [b"\0"]))
                return None
            except psycopg.errors.InsufficientPrivilege as e:
                return str(e)
            finally:
                conn.rollback()  # nothing of this test stays in the store

    assert refusal(b'{"actor":"clerk01","x":[{"key_id":"K1"}]}', "K1") is None
    assert refusal(b'{"actor":"clerk01","x":{"key\\u005fid":"K2"}}', "K2") is None  # an escaped field name
    assert "data key K3: no event" in (refusal(b'{"actor":"clerk01","note":"key_id K3"}', "K3") or "")
    assert "data key K4: no event" in (refusal(b'{"actor":"clerk01","note":"K4"}', "K4") or "")
    assert "data key K5: no event" in (refusal(b'{"actor":"clerk01","K5":{"key_ids":"K5"}}', "K5") or "")
