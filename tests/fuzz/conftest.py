"""Fixtures for the fuzz suites: a seeded store per backend, a working folder of files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import Cli, Ledger, build_ledger, write_csv
from tests.fuzz.state import StateReader


@dataclass
class Seeded:
    """A store with a small known history (see `build_ledger`), and a folder to run in."""

    ledger: Ledger
    folder: Path
    state: StateReader
    backend: str

    @property
    def cli(self) -> Cli:
        return self.ledger.cli


def _files(folder: Path) -> None:
    write_csv(folder / "good.csv", [["community", "code", "name"], ["HZ-001", "F1", "符号"]])
    write_csv(folder / "bad.csv", [["community", "code", "name"], ["HZ-001", "F 2", "=1+1"], ["NOPE", "F3", "x"]])
    (folder / "empty.csv").write_bytes(b"")
    (folder / "rubric.toml").write_text('name = "x"\nversion = 1\n[weights]\ncoverage = 1\n', encoding="utf-8")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    folder = tmp / "work"
    folder.mkdir()
    _files(folder)
    if request.param == "sqlite":
        url, cleanup = f"sqlite:///{tmp / 'taizhang.db'}", None
    else:
        admin = request.getfixturevalue("pg_admin_url")
        url = make_pg_database(admin)
        cleanup = admin
    key = tmp / "taizhang.key"
    try:
        ledger = build_ledger(Cli(url, key))
        state = StateReader(url, key)
        try:
            yield Seeded(ledger, folder, state, request.param)
        finally:
            state.close()
    finally:
        if cleanup is not None:
            drop_pg_database(cleanup, url)


def examples(sqlite: int, postgres: int, backend: str) -> int:
    """How many examples a fuzz test draws: bounded for CI; TAIZHANG_FUZZ_SCALE multiplies them
    (e.g. TAIZHANG_FUZZ_SCALE=50 for a long local run)."""
    scale = float(os.environ.get("TAIZHANG_FUZZ_SCALE", "1") or 1)
    return max(1, int((sqlite if backend == "sqlite" else postgres) * scale))
