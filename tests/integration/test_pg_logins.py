"""Who the actor really is, on PostgreSQL: logins, the reader and writer groups, append-only events.

The test creates real login roles in the test server (members of the groups
`init --admin` made), logs in as each, and shows what the database itself
refuses — whatever program the login uses — and what the CLI refuses when a
login does not match its actor. The roles are dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from commands.cli import cli as taizhang
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import COMMUNITY, Cli, error_line, establish_args, store_counts

APPEND_ONLY = (
    "taizhang_events", "taizhang_commits", "data_keys", "community_units", "record_state", "record_people"
)  # fmt: skip


@dataclass
class Logins:
    owner: str  # the owner's URL (the test server's superuser)
    clerk: str  # a member of taizhang_writer
    auditor: str  # a member of taizhang_reader
    stranger: str  # a login in no group
    key: Path

    def cli(self, url: str) -> Cli:
        return Cli(url, self.key)


def _url(base: str, user: str, password: str) -> str:
    rest = base.split("@", 1)[1]
    return f"postgresql://{user}:{password}@{rest}"


@pytest.fixture(scope="module")
def logins(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logins]:
    url = make_pg_database(pg_admin_url)
    suffix = uuid.uuid4().hex[:8]
    names = {role: f"tz_{role}_{suffix}" for role in ("clerk", "auditor", "stranger")}
    password = uuid.uuid4().hex
    tmp = tmp_path_factory.mktemp("logins")
    owner = Cli(url, tmp / "taizhang.key")
    owner.ok("init", "--admin", "boss")
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {names['clerk']} LOGIN PASSWORD '{password}' IN ROLE taizhang_writer")
        conn.execute(f"CREATE ROLE {names['auditor']} LOGIN PASSWORD '{password}' IN ROLE taizhang_reader")
        conn.execute(f"CREATE ROLE {names['stranger']} LOGIN PASSWORD '{password}'")
    try:
        owner.ok(*establish_args(COMMUNITY), actor="boss")
        owner.ok("actor", "add", "clerk01", "--role", "clerk", "--scope", "community:HZ-001", "--login", names["clerk"], actor="boss")
        owner.ok("actor", "add", "aud01", "--role", "auditor", "--scope", "city", "--login", names["auditor"], actor="boss")
        yield Logins(
            owner=url,
            clerk=_url(url, names["clerk"], password),
            auditor=_url(url, names["auditor"], password),
            stranger=_url(url, names["stranger"], password),
            key=tmp / "taizhang.key",
        )
    finally:
        drop_pg_database(pg_admin_url, url)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f"DROP ROLE IF EXISTS {name}")


def _refused(url: str, sql: str) -> str:
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(sql)  # type: ignore[arg-type]
    return str(caught.value)


def test_a_writer_appends_through_the_app_but_cannot_change_what_is_stored(logins: Logins) -> None:
    clerk = logins.cli(logins.clerk)
    clerk.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", actor="clerk01")
    clerk.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员", actor="clerk01")
    clerk.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
             "--at", "2026-03-05 09:30", "--minutes", "45", "--note", "送米", actor="clerk01")  # fmt: skip
    # only the projection worker's login keeps the views (tests/integration/test_pg_reads.py)
    error_line(clerk("projections", "run", actor="clerk01"), 1, "permission denied", "it needs admin or projector")
    for table in APPEND_ONLY:
        assert "permission denied" in _refused(logins.clerk, f"DELETE FROM {table}")
        assert "permission denied" in _refused(logins.clerk, f"TRUNCATE {table}")
    assert "permission denied" in _refused(logins.clerk, "UPDATE taizhang_events SET topic = 'x'")
    assert "permission denied" in _refused(logins.clerk, "UPDATE data_keys SET wrapped = ''")
    # The record state the rules consult is derived by taizhang_append, never written by a writer.
    assert "permission denied" in _refused(logins.clerk, "UPDATE record_state SET status = 'active'")
    assert "permission denied" in _refused(logins.clerk, "UPDATE record_people SET current = 0")
    assert "permission denied" in _refused(
        logins.clerk,
        "INSERT INTO record_people (community_id, role, code, record_id, current)"
        " VALUES (gen_random_uuid(), 'r', 'R1', 'x', 1)",
    )
    assert "permission denied" in _refused(logins.clerk, "SELECT taizhang_record_state(1, 1000000)")
    assert "permission denied" in _refused(logins.clerk, "LOCK TABLE taizhang_events IN EXCLUSIVE MODE")
    assert "must be owner" in _refused(logins.clerk, "DROP TABLE taizhang_events")


def test_a_reader_reads_and_cannot_write(logins: Logins) -> None:
    auditor = logins.cli(logins.auditor)
    logins.cli(logins.owner).ok("projections", "run", actor="boss")
    rows = auditor.json("ledger", "entries", "--community", "HZ-001", actor="aud01")
    assert isinstance(rows, list)
    before = store_counts(logins.owner)
    for sql in (
        "INSERT INTO community_units VALUES ('X', 'x', 'x')",
        "DELETE FROM ledger_tracking",
        "SELECT taizhang_lock_events()",
    ):
        assert "permission denied" in _refused(logins.auditor, sql)
    # Even an auditor actor bound to a writer's login is refused before anything runs.
    error_line(logins.cli(logins.clerk)("ledger", "entries", "--community", "HZ-001", actor="aud01"), 1,
               "permission denied", "bound to database login tz_auditor_")  # fmt: skip
    assert store_counts(logins.owner) == before


def test_a_login_that_does_not_match_its_actor_is_refused(logins: Logins) -> None:
    before = store_counts(logins.owner)
    # the clerk's actor through the auditor's login, and through the owner's
    for url in (logins.auditor, logins.owner):
        line = error_line(logins.cli(url)("resident", "enroll", "HZ-001", "R9", "--name", "x", actor="clerk01"), 1,
                          "permission denied", "actor clerk01 (clerk, community:HZ-001)")  # fmt: skip
        assert "is bound to database login tz_clerk_" in line
    assert store_counts(logins.owner) == before


def test_a_login_in_no_group_reads_nothing(logins: Logins) -> None:
    assert "permission denied" in _refused(logins.stranger, "SELECT count(*) FROM taizhang_events")
    assert "permission denied" in _refused(logins.stranger, "SELECT count(*) FROM data_keys")


def test_init_on_postgresql_requires_an_admin(pg_admin_url: str, tmp_path: Path) -> None:
    url = make_pg_database(pg_admin_url)
    try:
        cli = Cli(url, tmp_path / "k.key")
        result = cli.runner.invoke(taizhang, ["--db", url, "--key-file", str(tmp_path / "k.key"), "init"])
        assert result.exit_code == 2 and "--admin: required on PostgreSQL" in result.stderr
        assert not (tmp_path / "k.key").exists()
        # Malformed before missing: on PostgreSQL an actor needs its login.
        error_line(cli("actor", "add", "x", "--role", "clerk", "--scope", "city", actor="a"), 2, "--login: required")
    finally:
        drop_pg_database(pg_admin_url, url)


def test_a_writer_snapshots_and_prunes_old_snapshots(logins: Logins, tmp_path: Path) -> None:
    """Snapshots are a cache: a writer adds them (every 100 events) and drops the older ones."""
    from tests.e2e.conftest import write_csv

    clerk = logins.cli(logins.clerk)
    clerk.ok("resident", "enroll", "HZ-001", "RS", "--name", "快照", actor="clerk01")
    clerk.ok("provider", "register", "HZ-001", "PS", "--name", "快照", "--role", "cadre", actor="clerk01")
    header = ["community", "kind", "residents", "providers", "occurred_at", "minutes"]
    for batch in range(2):
        rows = [["HZ-001", "life_care", "RS", "PS", f"2026-02-{1 + i % 28:02d} {8 + batch}:{i % 60:02d}", str(10 + i // 60)]
                for i in range(110)]  # fmt: skip
        clerk.ok("import", "services", str(write_csv(tmp_path / f"s{batch}.csv", [header, *rows])), actor="clerk01")
    with psycopg.connect(logins.owner) as conn:
        versions = [r[0] for r in conn.execute("SELECT originator_version FROM taizhang_snapshots")]
    assert len(versions) == 1 and versions[0] >= 200


def test_views_an_earlier_version_made_are_reshaped_by_the_owner_not_a_clerk(logins: Logins) -> None:
    """Views made by an earlier version need DDL a clerk's login may not run (only the owner creates
    and drops indexes): the clerk is told so in one line, and the owner's next read reshapes them."""
    from projections.tables import MONTH_TABLES

    owner, clerk = logins.cli(logins.owner), logins.cli(logins.clerk)
    owner.ok("projections", "run", actor="boss")
    table = MONTH_TABLES[0]
    covering = next(i for i in table.indexes if i.info.get("only_on") == "sqlite")
    with psycopg.connect(logins.owner, autocommit=True) as conn:  # the shape the previous version made
        conn.execute(f"DROP INDEX {covering.name}_keys")
        conn.execute(f"CREATE INDEX {covering.name} ON {table.name} ({', '.join(c.name for c in covering.columns)})")
    before = store_counts(logins.owner)
    error_line(clerk("ledger", "entries", "--community", "HZ-001", actor="clerk01"), 1,
               "only the store owner's login can make them", "run taizhang projections run as the owner")  # fmt: skip
    error_line(clerk("--lang", "zh", "ledger", "entries", "--community", "HZ-001", actor="clerk01"), 1,
               "只有台账库所有者的登录可以建立它们", prefix="错误：")  # fmt: skip
    assert store_counts(logins.owner) == before
    owner.ok("projections", "run", actor="boss")  # the owner's login reshapes them
    with psycopg.connect(logins.owner) as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (table.name,))}
    assert f"{covering.name}_keys" in names and covering.name not in names
    rows = clerk.json("ledger", "entries", "--community", "HZ-001", actor="clerk01")
    assert isinstance(rows, list)
