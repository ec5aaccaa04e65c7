"""Who reads and who writes what on PostgreSQL: the projection worker's group and row-level security.

Only members of `taizhang_projector` (and the store's owner) write the views; readers
and writers select them. Row-level security then limits each login's reads to the
units its actors may see (DESIGN §3 scopes): views, directories, the wrapped data keys
and the access log.

A login's actors are those the owner bound to it in `taizhang_logins`, a table nobody
else may write, rewritten from the Actors aggregate (the record) by every `actor add`
and `actor revoke` on the owner's login: a grant binds once its event is stored, a
revocation unbinds before its event is stored. Nothing a writer can append (not even a
forged grant in the log) changes what a login reads.

A login whose actors include an admin, an auditor or a city-wide clerk or supervisor
reads every row; any other login reads the communities its actors' scopes cover
(`community_units` places communities in townships and counties); a login with no
bound actor reads none. Members of `taizhang_projector` read every row of the views
(their own policy, which costs the worker nothing per row). The owner is not subject
to these policies.

This module is SQL text only: infra.pgstore runs it at `init --admin` and at each
`actor add|revoke`, infra.runner when it creates the views.
"""

from __future__ import annotations

from collections.abc import Sequence

READER_GROUP = "taizhang_reader"  # the same names as infra.pgstore's
WRITER_GROUP = "taizhang_writer"
PROJECTOR_GROUP = "taizhang_projector"
GROUPS = (READER_GROUP, WRITER_GROUP, PROJECTOR_GROUP)
LOGINS = "taizhang_logins"  # actor -> login, role, scope: written by the owner only
POLICY = "taizhang_scope"
PROJECTOR_POLICY = "taizhang_projector_all"

# Roles whose logins read every row. A city-wide actor does too, except the projection worker:
# it reads the views through its group's policy, and nothing else (no keys, no access log).
READS_ALL_ROLES = ("admin", "auditor")

# A view's rows, by the column naming the community they belong to.
COMMUNITY_VIEWS: dict[str, str] = {
    "ledger_communities": "code",
    "ledger_residents": "community",
    "ledger_providers": "community",
    "ledger_revisions": "community",
    "ledger_month_kind": "community",
    "ledger_month_resident": "community",
    "ledger_month_category_kind": "community",
    "ledger_month_category_resident": "community",
    "ledger_month_quality": "community",
    "acct_visit_plans": "community",
    "acct_pairings": "community",
    "acct_resident_states": "community",
}
# Rows that hang off a ledger revision: visible when their revision is.
CHILD_VIEWS = ("ledger_revision_residents", "ledger_revision_categories")
ALL = "(SELECT taizhang_reads_all())"
REACH = "(SELECT taizhang_reach())::text[]"  # the cast keeps ANY from reading it as a subquery

# The funds views name a unit of any level, located in county/township/community columns (a
# township's row has no community, a county's no township): a login sees a unit's rows when the
# unit lies inside (or is) one of its scopes. `funds_totals` names the unit as text only. (No `%`
# in these: some callers run the statements with parameters, where psycopg reads `%` as one.)
FUNDS_UNIT_VIEWS = ("funds_movements", "funds_spends")
SCOPES = "(SELECT coalesce(array_agg(scope), '{}') FROM taizhang_login_scopes())::text[]"
FUNDS_UNIT_RULE = (
    f"community = ANY({REACH}) OR (community IS NULL AND ('county:' || county = ANY({SCOPES})"
    f" OR (township IS NOT NULL AND 'township:' || county || '/' || township = ANY({SCOPES}))))"
)
FUNDS_TOTALS_RULE = (
    f"(left(unit, 10) = 'community:' AND substr(unit, 11) = ANY({REACH})) OR unit = ANY({SCOPES})"
    f" OR (left(unit, 9) = 'township:' AND 'county:' || split_part(substr(unit, 10), '/', 1) = ANY({SCOPES}))"
)


def groups() -> list[str]:
    return [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{group}') "
        f"THEN CREATE ROLE {group} NOLOGIN; END IF; END $$"
        for group in GROUPS
    ]


def functions() -> list[str]:
    """The functions the policies call; SECURITY DEFINER, so a login needs no right on the bindings."""
    definer = "LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT"
    roles = ", ".join(f"'{role}'" for role in READS_ALL_ROLES)
    statements = [
        # The login's actors, as the owner bound them (see `rebind`).
        "CREATE OR REPLACE FUNCTION taizhang_login_scopes() RETURNS TABLE (name text, role text, scope text) "
        f"{definer} AS $$ SELECT actor, role, scope FROM {LOGINS} WHERE login = session_user $$",
        f"CREATE OR REPLACE FUNCTION taizhang_reads_all() RETURNS boolean {definer} AS $$ "
        " SELECT EXISTS (SELECT 1 FROM taizhang_login_scopes()"
        f" WHERE role IN ({roles}) OR (scope = 'city' AND role <> 'projector')) $$",
        f"CREATE OR REPLACE FUNCTION taizhang_reach() RETURNS text[] {definer} AS $$ "
        " SELECT coalesce(array_agg(DISTINCT u.code), '{}') FROM community_units u"
        " JOIN taizhang_login_scopes() a ON a.scope IN"
        " ('community:' || u.code, 'township:' || u.county || '/' || u.township, 'county:' || u.county) $$",
        f"CREATE OR REPLACE FUNCTION taizhang_actor_names() RETURNS text[] {definer} AS $$ "
        " SELECT coalesce(array_agg(name), '{}') FROM taizhang_login_scopes() $$",
        # The community a data key belongs to: a resident's key names it; a note's key is its record's,
        # whose community its record_state row and that community's first event give.
        f"CREATE OR REPLACE FUNCTION taizhang_key_community(key_id text) RETURNS text {definer} AS $$ "
        " SELECT CASE"
        "  WHEN key_id LIKE 'res:%' THEN split_part(substr(key_id, 5), '/', 1)"
        "  WHEN key_id LIKE 'note:%' THEN (SELECT convert_from(e.state, 'UTF8')::json->>'code'"
        "   FROM record_state c JOIN taizhang_events e ON e.originator_id = c.community_id AND e.originator_version = 1"
        "   WHERE c.record_id = substr(key_id, 6))"
        " END $$",
    ]
    signatures = (
        "taizhang_login_scopes()", "taizhang_reads_all()", "taizhang_reach()", "taizhang_actor_names()",
        "taizhang_key_community(text)",
    )  # fmt: skip
    for signature in signatures:
        statements.append(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        statements.append(f"GRANT EXECUTE ON FUNCTION {signature} TO {', '.join(GROUPS)}")
    return statements


def _policy(table: str, using: str, *, projector: bool = False) -> list[str]:
    statements = [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY} ON {table}",
        f"DROP POLICY IF EXISTS {PROJECTOR_POLICY} ON {table}",
        f"CREATE POLICY {POLICY} ON {table} TO {READER_GROUP}, {WRITER_GROUP} USING ({using})",
    ]
    if projector:
        statements.append(f"CREATE POLICY {PROJECTOR_POLICY} ON {table} TO {PROJECTOR_GROUP} USING (true)")
    return statements


def views(tables: Sequence[str]) -> list[str]:
    """Readers and writers select the views; only the projector changes them; rows by scope."""
    listed = ", ".join(tables)
    statements = [
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {listed} FROM {READER_GROUP}, {WRITER_GROUP}",
        f"GRANT SELECT ON {listed} TO {', '.join(GROUPS)}",
        f"GRANT INSERT, UPDATE, DELETE ON {listed} TO {PROJECTOR_GROUP}",
    ]
    for table in tables:
        if table in COMMUNITY_VIEWS:
            statements += _policy(table, f"{ALL} OR {COMMUNITY_VIEWS[table]} = ANY({REACH})", projector=True)
        elif table in CHILD_VIEWS:
            statements += _policy(
                table,
                f"{ALL} OR EXISTS (SELECT 1 FROM ledger_revisions r WHERE r.position_from = {table}.position_from)",
                projector=True,
            )
        elif table in FUNDS_UNIT_VIEWS:
            statements += _policy(table, f"{ALL} OR {FUNDS_UNIT_RULE}", projector=True)
        elif table == "funds_totals":
            statements += _policy(table, f"{ALL} OR {FUNDS_TOTALS_RULE}", projector=True)
        elif table == "funds_lines":  # a line is seen where any of its money is
            statements += _policy(
                table,
                f"{ALL} OR EXISTS (SELECT 1 FROM funds_movements m WHERE m.line_id = funds_lines.line_id)",
                projector=True,
            )
        elif table == "funds_spend_records":
            statements += _policy(
                table,
                f"{ALL} OR EXISTS (SELECT 1 FROM funds_spends s WHERE s.spend_id = funds_spend_records.spend_id)",
                projector=True,
            )
    return statements


def bindings() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {LOGINS} (actor text PRIMARY KEY, login text NOT NULL, role text NOT NULL,"
        " scope text NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {LOGINS}_login ON {LOGINS} (login)",
        f"REVOKE ALL ON {LOGINS} FROM PUBLIC, {', '.join(GROUPS)}",
    ]


def rebind() -> tuple[str, str]:
    """Replace every binding (DELETE, then INSERT … VALUES (%s, %s, %s, %s) per active actor with a login)."""
    return f"DELETE FROM {LOGINS}", f"INSERT INTO {LOGINS} (actor, login, role, scope) VALUES (%s, %s, %s, %s)"


def store() -> list[str]:
    """The projector's rights on the store's own tables, and row-level security on keys and the access log."""
    statements = [
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {PROJECTOR_GROUP}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {PROJECTOR_GROUP}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {PROJECTOR_GROUP}",
    ]
    statements += _policy("data_keys", f"{ALL} OR taizhang_key_community(key_id) = ANY({REACH})")
    # An access-log entry is seen by whoever may see everything, and by the login whose actor made it;
    # a login appends entries only in the name of its own actors.
    statements += _policy("access_log", f"{ALL} OR actor = ANY((SELECT taizhang_actor_names())::text[])")
    statements += _policy("access_log_residents", f"{ALL} OR community = ANY({REACH})")
    return statements


def installed_sql() -> str:
    """True when this database has the scope functions (a store set up by `init --admin`)."""
    return "SELECT to_regprocedure('taizhang_reach()') IS NOT NULL"


def setup(view_tables: Sequence[str]) -> list[str]:
    """Everything above, in order (run by the owner)."""
    from infra.webauth import PG_PRIVATE_SQL

    return [*groups(), *bindings(), *functions(), *store(), *views(view_tables), PG_PRIVATE_SQL]
