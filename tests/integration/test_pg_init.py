"""`init --admin` on PostgreSQL that fails halfway must not leave an open store.

The failure is a real one of the test's database: an event trigger (per database, made
by the test server's superuser before init) refuses the first GRANT, i.e. after the
tables, the settings and the views exist and before access control is set up and the
admin granted. The store must then refuse every command but the same `init --admin`,
which resumes it.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import COMMUNITY, Cli, error_line, establish_args, event_count

FAIL_ON_GRANT = [
    "CREATE FUNCTION tz_test_refuse() RETURNS event_trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'injected failure: GRANT refused'; END $$",
    "CREATE EVENT TRIGGER tz_test_refuse_grant ON ddl_command_start WHEN TAG IN ('GRANT') EXECUTE FUNCTION tz_test_refuse()",
]


def test_an_init_that_fails_halfway_is_refused_until_it_is_resumed(pg_admin_url: str, tmp_path: Path) -> None:
    url = make_pg_database(pg_admin_url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in FAIL_ON_GRANT:
                conn.execute(statement)  # type: ignore[arg-type]
        cli = Cli(url, tmp_path / "taizhang.key")
        error_line(cli("init", "--admin", "boss", actor=None), 1, "injected failure: GRANT refused")
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT value FROM taizhang_settings WHERE key = 'pending_admin'").fetchone()
        assert row == ("boss",)  # half done: tables and settings exist, no admin

        # Not an open store: nothing runs on it, with or without an actor, and nothing is written.
        for actor in ("boss", "anyone"):
            error_line(cli(*establish_args(COMMUNITY), actor=actor), 1, "did not finish",
                       "run taizhang init --admin boss again as its owner")  # fmt: skip
        for actor in (None, "anyone"):
            error_line(cli("community", "list", actor=actor), 1, "did not finish")
        error_line(cli("init", actor=None), 1, "did not finish", "init --admin boss")  # --no-access-control
        error_line(cli("init", "--admin", "eve", actor=None), 1, "did not finish", "init --admin boss")
        assert event_count(url) == 0

        # The cause fixed, the same init resumes and finishes: access control is on.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP EVENT TRIGGER tz_test_refuse_grant")
        result = cli.ok("init", "--admin", "boss", actor=None)
        assert "access control on, admin boss" in result.stdout
        error_line(cli("community", "list", actor=None), 1, "permission denied", "--actor")
        cli.ok(*establish_args(COMMUNITY), actor="boss")
        error_line(cli("init", "--admin", "boss", actor=None), 1, "a store already exists")
    finally:
        drop_pg_database(pg_admin_url, url)
