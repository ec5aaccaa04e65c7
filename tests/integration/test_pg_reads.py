"""Who writes the views and who reads which rows, on PostgreSQL, attacked from real logins.

One store for the module, with three communities in two counties and a login for each
kind of actor (members of the groups `init --admin` made). Each test connects as a
login and does what a hostile colleague would — UPDATE a view, SELECT another
township's rows, run the projection worker — and shows the database itself refusing
or hiding it, whatever program the login uses. The CLI must keep working inside
each login's scope. The roles are dropped afterwards.
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

from infra.pgaccess import CHILD_VIEWS, COMMUNITY_VIEWS
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import COMMUNITY, Cli, error_line, establish_args, store_counts

HZ1 = COMMUNITY  # HZ-001 in 八步区/贺街镇
HZ2 = {**COMMUNITY, "code": "HZ-002", "name": "莲塘社区", "township": "莲塘镇", "village": "莲塘村", "natural_villages": []}
QT = {**COMMUNITY, "code": "QT-2", "name": "望高社区", "county": "平桂区", "township": "望高镇", "village": "望高村", "natural_villages": []}
NAMES = {"HZ-001": "张秀英", "HZ-002": "王桂兰", "QT-2": "李翠花"}
NOTES = {"HZ-001": "送米到家", "HZ-002": "陪同就医", "QT-2": "代缴电费"}

# login -> (group, actor, role, scope); actor None: a member of a group with no actor bound to it
LOGINS: dict[str, tuple[str, str | None, str, str]] = {
    "clerk_hj": ("taizhang_writer", "clerk-hj", "clerk", "township:八步区/贺街镇"),
    "sup_bb": ("taizhang_writer", "sup-bb", "supervisor", "county:八步区"),
    "aud_pg": ("taizhang_reader", "aud-pg", "auditor", "county:平桂区"),
    "worker": ("taizhang_projector", "worker", "projector", "city"),
    "fake_worker": ("taizhang_writer", "fake-worker", "projector", "city"),  # a projector actor on a writer's login
    "nobody": ("taizhang_writer", None, "", ""),
    "gone": ("taizhang_writer", "gone", "clerk", "township:八步区/贺街镇"),  # revoked below
    "admin_2": ("taizhang_writer", "admin-2", "admin", "city"),  # an admin whose login is not the owner
    "late": ("taizhang_writer", None, "", ""),  # bound later, by admin-2
}


@dataclass
class Store:
    owner: str
    urls: dict[str, str]
    roles: dict[str, str]  # our login name -> its role name on the server
    key: Path
    records: dict[str, str]  # community -> a record id with a note

    def cli(self, login: str | None = None) -> Cli:
        return Cli(self.urls[login] if login else self.owner, self.key)

    def rows(self, login: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.urls[login]) as conn:
            return list(conn.execute(sql, params or None).fetchall())  # type: ignore[arg-type]

    def owner_rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.owner) as conn:
            return list(conn.execute(sql, params or None).fetchall())  # type: ignore[arg-type]


def _url(base: str, user: str, password: str) -> str:
    return f"postgresql://{user}:{password}@{base.split('@', 1)[1]}"


def _record(cli: Cli, community: str, actor: str) -> str:
    record = str(uuid.uuid4())
    cli.ok("service", "record", community, "--kind", "life_care", "--resident", "R1", "--provider", "P1",
           "--at", "2026-03-05 09:30", "--minutes", "45", "--note", NOTES[community], "--record-id", record,
           actor=actor)  # fmt: skip
    return record


@pytest.fixture(scope="module")
def store(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    url = make_pg_database(pg_admin_url)
    suffix = uuid.uuid4().hex[:8]
    roles = {login: f"tz_{login}_{suffix}" for login in LOGINS}
    password = uuid.uuid4().hex
    key = tmp_path_factory.mktemp("reads") / "taizhang.key"
    owner = Cli(url, key)
    owner.ok("init", "--admin", "boss")
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for login, (group, *_rest) in LOGINS.items():
            conn.execute(f"CREATE ROLE {roles[login]} LOGIN PASSWORD '{password}' IN ROLE {group}")  # type: ignore[arg-type]
    try:
        owner_login = url.split("://", 1)[1].split(":", 1)[0]
        for community in (HZ1, HZ2, QT):
            owner.ok(*establish_args(community), actor="boss")
        for name, role, scope in (("clerk-city", "clerk", "city"), ("aud-city", "auditor", "city")):
            owner.ok("actor", "add", name, "--role", role, "--scope", scope, "--login", owner_login, actor="boss")
        for login, (_group, actor, role, scope) in LOGINS.items():
            if actor is not None:
                owner.ok("actor", "add", actor, "--role", role, "--scope", scope, "--login", roles[login], actor="boss")
        owner.ok("actor", "revoke", "gone", "--reason", "调离岗位", actor="boss")
        records: dict[str, str] = {}
        for code in ("HZ-002", "QT-2"):
            owner.ok("resident", "enroll", code, "R1", "--name", NAMES[code], "--birth-date", "1950-01-01", "--category", "留守老人", actor="clerk-city")
            owner.ok("provider", "register", code, "P1", "--name", "李建国", "--role", "党员", actor="clerk-city")
            records[code] = _record(owner, code, "clerk-city")
        # The township clerk writes its own community through its own login (its keys pass the row checks).
        clerk = Cli(_url(url, roles["clerk_hj"], password), key)
        clerk.ok("resident", "enroll", "HZ-001", "R1", "--name", NAMES["HZ-001"], "--birth-date", "1951-02-02", "--category", "留守老人", actor="clerk-hj")
        clerk.ok("provider", "register", "HZ-001", "P1", "--name", "黄志明", "--role", "党员", actor="clerk-hj")
        records["HZ-001"] = _record(clerk, "HZ-001", "clerk-hj")
        Cli(_url(url, roles["worker"], password), key).ok("projections", "run", actor="worker")
        for code in NAMES:  # a city auditor reads names: the access log has an entry for every community
            owner.ok("resident", "list", code, actor="aud-city")
        yield Store(
            owner=url,
            urls={login: _url(url, roles[login], password) for login in LOGINS},
            roles=roles,
            key=key,
            records=records,
        )
    finally:
        drop_pg_database(pg_admin_url, url)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for role in roles.values():
                conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]


def _refused(url: str, sql: str) -> str:
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(sql)  # type: ignore[arg-type]
    return str(caught.value)


def _summary(cli: Cli, actor: str, *filters: str) -> Any:
    return orjson.loads(cli.ok("ledger", "summary", "--by", "community", *filters, "--format", "json", actor=actor).stdout)


# ---- item 3: only the projection worker writes the views -------------------------------------------------
def test_a_clerk_cannot_edit_a_view_and_the_summary_stays_true(store: Store) -> None:
    owner = store.cli()
    before = _summary(owner, "aud-city")
    for login in ("clerk_hj", "sup_bb", "aud_pg", "fake_worker"):
        url = store.urls[login]
        # the attack of the issue: inflate another community's totals, and one's own
        for community in ("QT-2", "HZ-001"):
            sql = f"UPDATE ledger_month_kind SET records = records + 100 WHERE community = '{community}'"
            assert "permission denied" in _refused(url, sql)
        for table in (*COMMUNITY_VIEWS, *CHILD_VIEWS, "ledger_tracking", "acct_duties", "acct_targets"):
            assert "permission denied" in _refused(url, f"DELETE FROM {table}")
            assert "permission denied" in _refused(url, f"TRUNCATE {table}")
        assert "permission denied" in _refused(url, "UPDATE ledger_tracking SET position = 0")
        assert "permission denied" in _refused(
            url, "INSERT INTO ledger_month_kind (community, month, kind, records, minutes) VALUES ('QT-2', '2026-04', 'life_care', 9, 9)"
        )
    assert _summary(owner, "aud-city") == before
    assert sum(row["records"] for row in before) == 3


def test_only_the_projectors_login_runs_projections(store: Store) -> None:
    before = store_counts(store.owner)
    position = store.owner_rows("SELECT position FROM ledger_tracking")
    # a clerk's actor on the clerk's login: the policy refuses it
    error_line(store.cli("clerk_hj")("projections", "run", actor="clerk-hj"), 1, "permission denied",
               "actor clerk-hj (clerk, township:八步区/贺街镇) may not run 'projections run'", "it needs admin or projector")  # fmt: skip
    # the worker's actor through the clerk's login: bound to another login
    error_line(store.cli("clerk_hj")("projections", "run", actor="worker"), 1, "permission denied",
               "bound to database login tz_worker_")  # fmt: skip
    # a projector actor whose login is not in taizhang_projector: the database's grants decide, said in one line
    error_line(store.cli("fake_worker")("projections", "run", actor="fake-worker"), 1,
               "may not write the views", "taizhang_projector")  # fmt: skip
    assert store_counts(store.owner) == before
    assert store.owner_rows("SELECT position FROM ledger_tracking") == position
    # the projector records nothing
    error_line(store.cli("worker")("resident", "enroll", "HZ-001", "R9", "--name", "x", actor="worker"), 1, "permission denied")
    assert store_counts(store.owner) == before


def test_the_projectors_worker_keeps_the_views_current(store: Store) -> None:
    clerk = store.cli("clerk_hj")
    record = str(uuid.uuid4())
    clerk.ok("service", "record", "HZ-001", "--kind", "counseling", "--resident", "R1", "--provider", "P1",
             "--at", "2026-03-07 10:00", "--minutes", "20", "--record-id", record, actor="clerk-hj")  # fmt: skip
    lagging = clerk("ledger", "entries", "--community", "HZ-001", "--format", "json", actor="clerk-hj")
    assert lagging.exit_code == 0 and "behind the log" in lagging.stderr
    out = store.cli("worker").ok("projections", "run", actor="worker").stdout
    assert out.startswith("projected 1 event(s)")
    rows = clerk.json("ledger", "entries", "--community", "HZ-001", actor="clerk-hj")
    assert record in {row["record_id"] for row in rows}
    assert store.cli("worker").json("projections", "status", actor="worker")[0]["lag"] == 0


def test_actor_add_keeps_the_projector_city_wide(store: Store) -> None:
    error_line(store.cli()("actor", "add", "w2", "--role", "projector", "--scope", "county:八步区", "--login", "x", actor="boss"),
               2, "--scope", "use --scope city")  # fmt: skip


# ---- item 4: each login reads its scope's rows -------------------------------------------------------------
def _visible(store: Store, login: str, table: str) -> set[str]:
    """The communities whose rows of `table` the login sees."""
    if table in CHILD_VIEWS:
        sql = f"SELECT DISTINCT r.community FROM {table} c JOIN ledger_revisions r USING (position_from)"
        # the join alone would hide them: count the child rows themselves too
        mine = store.rows(login, f"SELECT count(*) FROM {table}")[0][0]
        theirs = store.rows(login, sql)
        assert mine == store.rows(login, f"SELECT count(*) FROM {table} c WHERE EXISTS (SELECT 1 FROM ledger_revisions r WHERE r.position_from = c.position_from)")[0][0]
        return {row[0] for row in theirs}
    column = COMMUNITY_VIEWS[table]
    return {row[0] for row in store.rows(login, f"SELECT DISTINCT {column} FROM {table}")}


WITH_ROWS = ("ledger_communities", "ledger_residents", "ledger_providers", "ledger_revisions", "ledger_month_kind",
             "ledger_month_resident", "ledger_month_quality", "acct_resident_states", *CHILD_VIEWS)  # fmt: skip


@pytest.mark.parametrize(
    ("login", "sees"),
    [
        ("clerk_hj", {"HZ-001"}),
        ("sup_bb", {"HZ-001", "HZ-002"}),
        ("aud_pg", {"HZ-001", "HZ-002", "QT-2"}),  # auditors read everything, whatever their scope
        ("worker", {"HZ-001", "HZ-002", "QT-2"}),
        ("fake_worker", set()),  # a projector actor on a writer's login: the worker's rows come with its group
        ("nobody", set()),  # in a group, but no actor bound to the login
        ("gone", set()),  # its actor was revoked
    ],
)
def test_views_show_a_login_only_its_scopes_rows(store: Store, login: str, sees: set[str]) -> None:
    assert {row[0] for row in store.owner_rows("SELECT code FROM ledger_communities")} == {"HZ-001", "HZ-002", "QT-2"}
    for table in WITH_ROWS:
        assert _visible(store, login, table) == sees, table
    for table in COMMUNITY_VIEWS:  # another township's rows asked for by name: none
        if "QT-2" not in sees:
            column = COMMUNITY_VIEWS[table]
            assert store.rows(login, f"SELECT count(*) FROM {table} WHERE {column} = 'QT-2'") == [(0,)], table


def _key_communities(store: Store, login: str) -> set[str]:
    notes = {f"note:{record}": community for community, record in store.records.items()}
    found: set[str] = set()
    for (key_id,) in store.rows(login, "SELECT key_id FROM data_keys"):
        found.add(key_id[4:].split("/", 1)[0] if key_id.startswith("res:") else notes.get(key_id, "?"))
    return found


def test_data_keys_show_a_clerk_only_its_scopes_keys(store: Store) -> None:
    everything = _key_communities(store, "aud_pg")
    assert everything == {"HZ-001", "HZ-002", "QT-2"}
    assert _key_communities(store, "clerk_hj") == {"HZ-001"}
    assert _key_communities(store, "sup_bb") == {"HZ-001", "HZ-002"}
    assert _key_communities(store, "nobody") == set()
    assert _key_communities(store, "worker") == set()  # the projection worker needs no key
    # asked for by id: the QT-2 resident's key and its note's key are not there
    for key_id in ("res:QT-2/R1", f"note:{store.records['QT-2']}"):
        assert store.rows("clerk_hj", "SELECT count(*) FROM data_keys WHERE key_id = %s", (key_id,)) == [(0,)]
        assert store.owner_rows("SELECT count(*) FROM data_keys WHERE key_id = %s", (key_id,)) == [(1,)]


def test_a_clerk_cannot_plant_a_key_for_another_community(store: Store) -> None:
    with psycopg.connect(store.urls["clerk_hj"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute("INSERT INTO data_keys (key_id, master_key_id, wrapped) VALUES ('res:QT-2/R77', 'm', 'x')")
    # refused by the row policy (or, where writers append only through functions, by the grants)
    assert "row-level security" in str(caught.value) or "permission denied" in str(caught.value)
    assert store.owner_rows("SELECT count(*) FROM data_keys WHERE key_id = 'res:QT-2/R77'") == [(0,)]


def test_the_master_key_alone_opens_no_other_communitys_names(store: Store) -> None:
    """A clerk holds the master key and may read the whole log: another community's names stay sealed."""
    state = store.rows("clerk_hj", "SELECT convert_from(state, 'UTF8') FROM taizhang_events "
                       "WHERE topic = 'taizhang:Community.ResidentEnrolled' AND convert_from(state, 'UTF8') LIKE '%QT-2/R1%'")  # fmt: skip
    assert len(state) == 1 and NAMES["QT-2"] not in state[0][0]  # the log holds only the sealed envelope
    assert store.rows("clerk_hj", "SELECT count(*) FROM data_keys WHERE key_id = 'res:QT-2/R1'") == [(0,)]


def test_the_access_log_shows_a_login_only_its_own_trace(store: Store) -> None:
    clerk = store.cli("clerk_hj")
    clerk.ok("resident", "list", "HZ-001", actor="clerk-hj")  # prints a name: logged, and the clerk may append that
    everything = store.owner_rows("SELECT actor FROM access_log")
    assert {"aud-city", "clerk-hj"} <= {row[0] for row in everything}
    assert {row[0] for row in store.rows("clerk_hj", "SELECT actor FROM access_log")} == {"clerk-hj"}
    assert {row[0] for row in store.rows("clerk_hj", "SELECT DISTINCT community FROM access_log_residents")} == {"HZ-001"}
    assert store.rows("nobody", "SELECT count(*) FROM access_log") == [(0,)]
    assert store.rows("worker", "SELECT count(*) FROM access_log_residents") == [(0,)]
    assert {row[0] for row in store.rows("aud_pg", "SELECT DISTINCT community FROM access_log_residents")} == {"HZ-001", "HZ-002", "QT-2"}
    # nor can a login write an entry in another actor's name
    with psycopg.connect(store.urls["clerk_hj"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO access_log (actor, command, detail, residents, records) VALUES ('aud-city', 'x', '', 0, 0)")


def test_a_forged_grant_in_the_log_widens_no_reach(store: Store) -> None:
    """A writer that appends a raw Actors.Granted event naming its own login as a city auditor sees no more."""
    from domain.actors import ACTORS_ID

    login = store.roles["clerk_hj"]
    forged = {"name": "clerk-hj", "role": "auditor", "scope": "city", "login": login, "actor": "boss",
              "timestamp": "2026-03-01T00:00:00+00:00"}  # fmt: skip
    with psycopg.connect(store.urls["clerk_hj"]) as conn:
        try:
            conn.execute(
                "INSERT INTO taizhang_events (originator_id, originator_version, topic, state) SELECT %s,"
                " max(originator_version) + 1, 'taizhang:Actors.Granted', %s FROM taizhang_events WHERE originator_id = %s",
                (ACTORS_ID, orjson.dumps({**forged, "name": "spy"}), ACTORS_ID),
            )
            conn.execute(
                "INSERT INTO taizhang_events (originator_id, originator_version, topic, state) SELECT %s,"
                " max(originator_version) + 1, 'taizhang:Actors.Granted', %s FROM taizhang_events WHERE originator_id = %s",
                (ACTORS_ID, orjson.dumps(forged), ACTORS_ID),
            )
        except psycopg.errors.InsufficientPrivilege:
            return  # the store refuses raw events altogether: nothing to forge with
        assert conn.execute("SELECT count(*) FROM taizhang_events WHERE topic = 'taizhang:Actors.Granted' AND "
                            "convert_from(state, 'UTF8') LIKE '%spy%'").fetchone() == (1,)  # fmt: skip
        seen = {r[0] for r in conn.execute("SELECT DISTINCT community FROM ledger_revisions")}
        keys = conn.execute("SELECT count(*) FROM data_keys WHERE key_id = 'res:QT-2/R1'").fetchone()
        conn.rollback()
    assert seen == {"HZ-001"} and keys == (0,)
    # nor can it bind itself
    assert "permission denied" in _refused(
        store.urls["clerk_hj"], f"INSERT INTO taizhang_logins VALUES ('spy', '{login}', 'auditor', 'city')"
    )
    assert "permission denied" in _refused(store.urls["clerk_hj"], "UPDATE taizhang_logins SET scope = 'city'")


def test_only_the_owners_login_binds_logins(store: Store) -> None:
    """An admin on another login grants an actor (the event is stored) but cannot bind its login: it reads nothing."""
    result = store.cli("admin_2")("actor", "add", "late-clerk", "--role", "clerk", "--scope", "community:HZ-001",
                                  "--login", store.roles["late"], actor="admin-2")  # fmt: skip
    assert result.exit_code == 0 and "does not own the store: logins were not bound" in result.stderr
    assert store.rows("late", "SELECT count(*) FROM ledger_revisions") == [(0,)]
    store.cli().ok("actor", "add", "late-sup", "--role", "supervisor", "--scope", "county:平桂区",
                   "--login", store.roles["late"], actor="boss")  # fmt: skip
    # the owner's next actor command binds both of the login's actors: a community and a county
    assert {r[0] for r in store.rows("late", "SELECT DISTINCT community FROM ledger_revisions")} == {"HZ-001", "QT-2"}


# ---- the CLI inside each scope ------------------------------------------------------------------------------
def test_the_cli_works_for_every_role_inside_its_scope(store: Store) -> None:
    owner, clerk, sup, aud = store.cli(), store.cli("clerk_hj"), store.cli("sup_bb"), store.cli("aud_pg")
    store.cli("worker").ok("projections", "run", actor="worker")
    township = ("--township", "八步区/贺街镇")
    assert clerk.json("ledger", "entries", *township, actor="clerk-hj") == owner.json("ledger", "entries", *township, actor="aud-city")
    names = clerk.json("resident", "list", "HZ-001", actor="clerk-hj")
    assert names == owner.json("resident", "list", "HZ-001", actor="aud-city") and names[0]["name"] == NAMES["HZ-001"]
    notes = {row["note"] for row in clerk.json("ledger", "entries", "--community", "HZ-001", actor="clerk-hj")}
    assert NOTES["HZ-001"] in notes
    county = ("--county", "八步区")
    assert _summary(sup, "sup-bb", *county) == _summary(owner, "aud-city", *county)
    assert sup.json("resident", "list", "HZ-002", actor="sup-bb")[0]["name"] == NAMES["HZ-002"]
    explain = ("assess", "explain", "--period", "2026-03", "--unit", "township:八步区/贺街镇", "--metric", "coverage")
    assert sup.json(*explain, actor="sup-bb") == owner.json(*explain, actor="aud-city")
    assert aud.json("resident", "list", "QT-2", actor="aud-pg")[0]["name"] == NAMES["QT-2"]
    pg = ("ledger", "summary", "--by", "township", "--county", "平桂区")
    assert aud.json(*pg, actor="aud-pg") == owner.json(*pg, actor="aud-city")
    assert any(row["actor"] == "aud-city" for row in aud.json("audit", "access", "--resident", "QT-2/R1", actor="aud-pg"))
    # a correction with a new note re-uses the record's key, which the clerk's login sees
    clerk.ok("service", "correct", "HZ-001", store.records["HZ-001"], "--note", "改为送面", "--reason", "记错", actor="clerk-hj")


def test_a_rebuild_keeps_the_grants_and_the_row_policies(store: Store) -> None:
    """`projections rebuild` drops and recreates the views: they come back with the same rules."""
    store.cli().ok("projections", "rebuild", actor="boss")
    assert _visible(store, "clerk_hj", "ledger_revisions") == {"HZ-001"}
    assert _visible(store, "worker", "ledger_revisions") == {"HZ-001", "HZ-002", "QT-2"}
    assert "permission denied" in _refused(store.urls["clerk_hj"], "UPDATE ledger_month_kind SET records = records + 100")
    store.cli("worker").ok("projections", "run", actor="worker")


def test_a_store_set_up_before_gets_the_rules_when_an_admin_adds_an_actor(pg_admin_url: str, tmp_path: Path) -> None:
    """A store made before the projector's group: writers could write the views and every row was readable."""
    url = make_pg_database(pg_admin_url)
    role = f"tz_old_clerk_{uuid.uuid4().hex[:8]}"
    try:
        owner = Cli(url, tmp_path / "taizhang.key")
        owner.ok("init", "--admin", "boss")
        for community in (HZ1, QT):
            owner.ok(*establish_args(community), actor="boss")
        owner.ok("projections", "run", actor="boss")
        with psycopg.connect(url, autocommit=True) as conn:  # undo what this version set up, as the old one left it
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE rowsecurity")]
            for table in tables:
                conn.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")  # type: ignore[arg-type]
                conn.execute(f"DROP POLICY taizhang_scope ON {table}")  # type: ignore[arg-type]
            conn.execute("DROP FUNCTION taizhang_reach(), taizhang_reads_all(), taizhang_actor_names(),"
                         " taizhang_key_community(text), taizhang_login_scopes()")  # fmt: skip
            conn.execute("GRANT INSERT, UPDATE, DELETE ON ledger_month_kind TO taizhang_writer")
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw' IN ROLE taizhang_writer")  # type: ignore[arg-type]
        assert "data_keys" in tables and "ledger_month_kind" in tables
        clerk_url = _url(url, role, "pw")
        with psycopg.connect(clerk_url) as conn:
            conn.execute("UPDATE ledger_month_kind SET records = records + 1")  # the hole this change closes
            assert len(conn.execute("SELECT code FROM ledger_communities").fetchall()) == 2
            conn.rollback()
        owner.ok("actor", "add", "c", "--role", "clerk", "--scope", "community:HZ-001", "--login", role, actor="boss")
        assert "permission denied" in _refused(clerk_url, "UPDATE ledger_month_kind SET records = records + 1")
        with psycopg.connect(clerk_url) as conn:
            assert {r[0] for r in conn.execute("SELECT code FROM ledger_communities")} == {"HZ-001"}
    finally:
        drop_pg_database(pg_admin_url, url)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]
