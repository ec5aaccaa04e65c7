"""Shared fixtures: a fresh store on SQLite and, when a server is given, on PostgreSQL.

PostgreSQL tests need `TAIZHANG_TEST_PG_URL` (`.ci/run` starts a throwaway server
and sets it; locally: `export TAIZHANG_TEST_PG_URL=$(bash .ci/postgres.sh start)`).
Without it they skip with that reason — except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from commands.app import LedgerService
from infra import crypto
from infra.store import parse_url

PG_ENV = "TAIZHANG_TEST_PG_URL"

# The locale chooses --lang when neither --lang nor TAIZHANG_LANG is given: no test may depend on
# the machine's (a clerk's laptop runs with LANG=zh_CN.UTF-8). Tests of that choice set them.
for _name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
    os.environ.pop(_name, None)


def _admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = _admin_url()
    if url is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{PG_ENV} is not set under CI: PostgreSQL tests must run")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. export {PG_ENV}=$(bash .ci/postgres.sh start))")
    return url


def make_pg_database(admin_url: str) -> str:
    """A new empty database on the test server; returns its URL."""
    import psycopg

    name = "tz_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def fresh_store_url(backend: str, file: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a store that does not exist yet: `file` on SQLite, a fresh empty database on
    PostgreSQL (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{file}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield url
    finally:
        drop_pg_database(admin, url)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a store that does not exist yet (a fresh file, or a fresh empty database)."""
    with fresh_store_url(backend, tmp_path / "taizhang.db", request) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'taizhang.db'}"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "taizhang.key"
    crypto.create_key_file(path)
    return path


@pytest.fixture
def service(db_url: str, key_file: Path) -> Iterator[LedgerService]:
    """An initialised, empty store on each backend."""
    svc, _ = LedgerService.create(parse_url(db_url), key_file, None)
    try:
        yield svc
    finally:
        svc.close()
