"""Where the web door keeps its secrets: password hashes and sessions, in two small mutable tables.

They are not the record: nothing in them is an event, nothing is chained, and losing them
costs people a new password or a new login, never a service record. They live in the store
(the SQLite file, or the PostgreSQL database) so that every server process (`serve --workers N`)
sees the same sessions, and a revoked actor's sessions can be dropped in one statement.

- `web_credentials`: actor -> argon2id hash (the hash string holds its own salt and cost).
- `web_sessions`: sha256(session id) -> actor, CSRF token, times. The cookie holds the
  random id; the table holds only its hash, so a copy of the table opens no session.
- `web_login_failures`: (actor name or client address, time) of each failed login in the
  throttling window, so that every server process counts the same failures.
- `web_tokens`: API tokens (`tz_ID_SECRET`, shown once): id -> actor, sha256(secret), expiry,
  revocation. A token is 256 random bits, so a plain SHA-256 is enough to keep it unusable
  from a copy of the table (no password-grade hashing needed for that entropy).

On PostgreSQL they belong to the store's owner, and neither PUBLIC nor the store's groups
(taizhang_reader, taizhang_writer, taizhang_projector) hold any right on them — taken back after
every grant the store makes to those groups (`PG_PRIVATE_SQL`): a clerk's or supervisor's
database login cannot read a hash. Only the owner's login (`actor password` run by an admin, and the server) reaches
them — the same logins that hold the master key (docs/decisions: the web door).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from infra.store import StoreURL

TABLES = (
    "CREATE TABLE IF NOT EXISTS web_credentials ("
    " actor TEXT PRIMARY KEY, hash TEXT NOT NULL, set_at DOUBLE PRECISION NOT NULL, set_by TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS web_sessions ("
    " id TEXT PRIMARY KEY, actor TEXT NOT NULL, csrf TEXT NOT NULL,"
    " created DOUBLE PRECISION NOT NULL, seen DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS web_tokens ("
    " id TEXT PRIMARY KEY, actor TEXT NOT NULL, hash TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,"
    " expires DOUBLE PRECISION NOT NULL, revoked DOUBLE PRECISION, made_by TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS web_login_failures (key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS web_login_failures_key ON web_login_failures (key, at)",
)
PRIVATE_TABLES = ("web_credentials", "web_sessions", "web_tokens", "web_login_failures")
# The store's groups are granted SELECT on every table (infra.pgstore.setup_access, infra.pgaccess,
# and default privileges for tables made later): these three are taken back from them, each time
# those grants are made. Run by the owner; a table or group not there yet is skipped.
PG_PRIVATE_SQL = (
    "DO $$ DECLARE t text; g text; BEGIN "
    "FOREACH t IN ARRAY ARRAY['" + "','".join(PRIVATE_TABLES) + "'] LOOP "
    "IF to_regclass(t) IS NOT NULL THEN "
    "EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', t); "
    "FOR g IN SELECT rolname FROM pg_roles WHERE rolname IN "
    "('taizhang_reader', 'taizhang_writer', 'taizhang_projector') LOOP "
    "EXECUTE format('REVOKE ALL ON %I FROM %I', t, g); END LOOP; END IF; END LOOP; END $$"
)
PG_PRIVATE = (PG_PRIVATE_SQL,)
SEEN_EVERY = 60.0  # seconds: a session's last use is written at most this often (reads stay lock-free)
POOL_SIZE = 8  # connections the server keeps for sessions, tokens and logins (per process)


@dataclass(frozen=True)
class Session:
    actor: str
    csrf: str
    created: float
    seen: float


def session_key(session_id: str) -> str:
    """What the table keeps of a session id: its SHA-256, never the id itself."""
    return hashlib.sha256(session_id.encode()).hexdigest()


class WebAuth:
    """The two tables of one store, reached with a short connection per call."""

    def __init__(self, store: StoreURL, *, pooled: bool = False) -> None:
        """`pooled`: connections kept (the server: a session is read on every request, and a new
        connection costs more than the read — on SQLite its first statement reads the whole schema);
        PostgreSQL: a small psycopg pool; SQLite: up to POOL_SIZE idle connections, each used by one
        thread at a time. Otherwise one connection per call."""
        self.store = store
        self._ready = False
        self._pooled = pooled and store.backend == "postgres"
        self._lite_pooled = pooled and store.backend == "sqlite"
        self._lite_idle: list[sqlite3.Connection] = []
        self._pool: Any = None
        self._pool_lock = threading.Lock()

    # ---- connections ---------------------------------------------------------------------------
    @contextmanager
    def _conn(self, *, write: bool) -> Iterator[Any]:
        if self.store.backend == "sqlite":
            assert self.store.path is not None
            raw = self._lite_take()
            kept = False
            try:
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield _Lite(raw)
                raw.execute("COMMIT")
            finally:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                else:
                    kept = self._lite_give(raw)
                if not kept:
                    raw.close()
            return
        if self._pooled:
            with self._connections().connection() as conn:  # committed on leaving, as psycopg.connect's
                yield _Pg(conn)
            return
        import psycopg

        with psycopg.connect(self._conninfo()) as conn:
            yield _Pg(conn)

    def _lite_take(self) -> sqlite3.Connection:
        if self._lite_pooled:
            with self._pool_lock:
                if self._lite_idle:
                    return self._lite_idle.pop()
        assert self.store.path is not None
        return sqlite3.connect(
            f"file:{self.store.path}?mode=rw",
            uri=True,
            isolation_level=None,
            timeout=30.0,
            check_same_thread=not self._lite_pooled,  # kept ones move between threads, one at a time
        )

    def _lite_give(self, raw: sqlite3.Connection) -> bool:
        """Keep an idle connection (outside any transaction) for the next call; False: close it."""
        if not self._lite_pooled:
            return False
        with self._pool_lock:
            if len(self._lite_idle) < POOL_SIZE:
                self._lite_idle.append(raw)
                return True
        return False

    def _conninfo(self) -> str:
        return self.store.url.replace("postgresql+psycopg", "postgresql")

    def _connections(self) -> Any:
        with self._pool_lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(self._conninfo(), min_size=1, max_size=POOL_SIZE, open=True)
            return self._pool

    def close(self) -> None:
        """Close the pooled connections (the server, when it stops)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            while self._lite_idle:
                self._lite_idle.pop().close()

    def ensure(self) -> None:
        """Create the tables when missing (once per process)."""
        if self._ready:
            return
        with self._conn(write=True) as db:
            for statement in TABLES:
                db.execute(statement)
            if self.store.backend == "postgres":
                for statement in PG_PRIVATE:
                    db.execute(statement)
        self._ready = True

    # ---- passwords -----------------------------------------------------------------------------
    def set_password(self, actor: str, hashed: str, by: str) -> None:
        self.ensure()
        with self._conn(write=True) as db:
            db.execute("DELETE FROM web_credentials WHERE actor = ?", (actor,))
            db.execute(
                "INSERT INTO web_credentials (actor, hash, set_at, set_by) VALUES (?, ?, ?, ?)",
                (actor, hashed, time.time(), by),
            )
            db.execute("DELETE FROM web_sessions WHERE actor = ?", (actor,))  # a new password ends old sessions

    def password_hash(self, actor: str) -> str | None:
        self.ensure()
        with self._conn(write=False) as db:
            row = db.one("SELECT hash FROM web_credentials WHERE actor = ?", (actor,))
        return None if row is None else str(row[0])

    def replace_hash(self, actor: str, old: str, new: str) -> None:
        """argon2's rehash on login (when the cost parameters were raised)."""
        with self._conn(write=True) as db:
            db.execute("UPDATE web_credentials SET hash = ? WHERE actor = ? AND hash = ?", (new, actor, old))

    # ---- sessions ------------------------------------------------------------------------------
    def open_session(self, session_id: str, actor: str, csrf: str) -> None:
        self.ensure()
        now = time.time()
        with self._conn(write=True) as db:
            db.execute(
                "INSERT INTO web_sessions (id, actor, csrf, created, seen) VALUES (?, ?, ?, ?, ?)",
                (session_key(session_id), actor, csrf, now, now),
            )

    def session(self, session_id: str, idle: float) -> Session | None:
        """The live session of this id; None when unknown or idle longer than `idle` seconds (then dropped)."""
        self.ensure()
        key = session_key(session_id)
        with self._conn(write=False) as db:
            row = db.one("SELECT actor, csrf, created, seen FROM web_sessions WHERE id = ?", (key,))
        if row is None:
            return None
        found = Session(str(row[0]), str(row[1]), float(row[2]), float(row[3]))
        now = time.time()
        if now - found.seen > idle:
            self.close_session(session_id)
            return None
        if now - found.seen > SEEN_EVERY:
            with self._conn(write=True) as db:
                db.execute("UPDATE web_sessions SET seen = ? WHERE id = ?", (now, key))
        return found

    def close_session(self, session_id: str) -> None:
        with self._conn(write=True) as db:
            db.execute("DELETE FROM web_sessions WHERE id = ?", (session_key(session_id),))

    def end_sessions_of(self, actors: Sequence[str]) -> int:
        """Drop every session of these actors (revoked ones); returns how many."""
        if not actors:
            return 0
        self.ensure()
        ended = 0
        with self._conn(write=True) as db:
            for actor in actors:
                ended += db.execute("DELETE FROM web_sessions WHERE actor = ?", (actor,))
        return ended

    # ---- API tokens ----------------------------------------------------------------------------
    def add_token(self, token_id: str, actor: str, secret: str, days: int, by: str) -> float:
        """Store a new token's hash; returns when it expires (seconds since the epoch)."""
        self.ensure()
        now = time.time()
        expires = now + days * 86400
        with self._conn(write=True) as db:
            db.execute(
                "INSERT INTO web_tokens (id, actor, hash, created, expires, revoked, made_by) "
                "VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (token_id, actor, session_key(secret), now, expires, by),
            )
        return expires

    def revoke_token(self, token_id: str, actor: str) -> bool:
        self.ensure()
        with self._conn(write=True) as db:
            changed = db.execute(
                "UPDATE web_tokens SET revoked = ? WHERE id = ? AND actor = ? AND revoked IS NULL",
                (time.time(), token_id, actor),
            )
        return changed > 0

    def tokens(self, actor: str) -> list[tuple[str, float, float, float | None, str]]:
        """The actor's tokens, oldest first: (id, created, expires, revoked or None, made by) — never a hash."""
        self.ensure()
        with self._conn(write=False) as db:
            rows = db.all(
                "SELECT id, created, expires, revoked, made_by FROM web_tokens WHERE actor = ? ORDER BY created, id",
                (actor,),
            )
        return [(str(r[0]), float(r[1]), float(r[2]), None if r[3] is None else float(r[3]), str(r[4])) for r in rows]

    def token_actor(self, token_id: str, secret: str) -> str | None:
        """The actor of a live token (known, secret matching, not expired, not revoked); None otherwise."""
        import hmac

        self.ensure()
        with self._conn(write=False) as db:
            row = db.one("SELECT actor, hash, expires, revoked FROM web_tokens WHERE id = ?", (token_id,))
        if row is None or row[3] is not None or float(row[2]) < time.time():
            return None
        if not hmac.compare_digest(str(row[1]), session_key(secret)):
            return None
        return str(row[0])

    # ---- failed logins (throttling) ------------------------------------------------------------
    def failures(self, keys: Sequence[str], since: float) -> int:
        """The most failures any of `keys` had since `since`."""
        self.ensure()
        with self._conn(write=False) as db:
            counts = [
                int(db.one("SELECT count(*) FROM web_login_failures WHERE key = ? AND at >= ?", (key, since))[0])
                for key in keys
            ]
        return max(counts, default=0)

    def fail(self, keys: Sequence[str], at: float, forget_before: float) -> None:
        self.ensure()
        with self._conn(write=True) as db:
            db.execute("DELETE FROM web_login_failures WHERE at < ?", (forget_before,))
            for key in keys:
                db.execute("INSERT INTO web_login_failures (key, at) VALUES (?, ?)", (key, at))

    def forget_failures(self, key: str) -> None:
        self.ensure()
        with self._conn(write=True) as db:
            db.execute("DELETE FROM web_login_failures WHERE key = ?", (key,))


class _Lite:
    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        sql = sql.replace("DOUBLE PRECISION", "REAL")
        return self.raw.execute(sql, params).rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.raw.execute(sql, params).fetchall()


class _Pg:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        if not params:  # DDL (and its `%I` formats) goes as it is
            return int(self.conn.execute(sql).rowcount)
        return int(self.conn.execute(sql.replace("?", "%s"), params).rowcount)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.conn.execute(sql.replace("?", "%s"), params).fetchall())
