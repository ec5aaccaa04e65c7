"""Fixtures for the web door: one store per backend per module, with actors and passwords, and a client.

The store is made through the CLI (as tests/e2e/test_access.py makes its stores); the app runs
in-process under FastAPI's TestClient (httpx). Tests that write make their own records (fresh
uuids), so they may share the module's store.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from commands.cli import cli as main_cli
from commands.web.app import create_app
from commands.web.door import Door
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import Cli, backend_of, establish_args

ADMIN = "boss"
PASSWORD = "correct horse battery"
HZ = {"code": "HZ-001", "name": "石门新型农村社区", "county": "八步区", "township": "贺街镇", "village": "石门村",
      "natural_villages": [], "established_on": "2026-01-01"}  # fmt: skip
HZ2 = {**HZ, "code": "HZ-002", "name": "龙井新型农村社区", "village": "龙井村"}
QT = {"code": "QT-2", "name": "桥头新型农村社区", "county": "八步区", "township": "桂岭镇", "village": "桥头村",
      "natural_villages": [], "established_on": "2026-01-01"}  # fmt: skip
ACTORS = {
    "sup-hj": ("supervisor", "township:八步区/贺街镇"),
    "sup-city": ("supervisor", "city"),
    "clerk-hj": ("clerk", "township:八步区/贺街镇"),
    "auditor": ("auditor", "city"),
    "gone": ("clerk", "township:八步区/贺街镇"),
}


@dataclass
class Site:
    cli: Cli
    url: str
    key: Path

    def client(self, **door_options: object) -> TestClient:
        door = Door(self.url, self.key, catch_up=False)
        return TestClient(create_app(door), base_url="http://testserver", follow_redirects=False)


def login_args(url: str) -> list[str]:
    return [] if backend_of(url) != "postgres" else ["--login", url.split("://", 1)[1].split(":", 1)[0]]


def set_password(cli: Cli, name: str, password: str = PASSWORD) -> None:
    result = cli.runner.invoke(
        main_cli,
        ["--db", cli.url, "--key-file", str(cli.key), "--actor", ADMIN, "actor", "password", name],
        input=f"{password}\n{password}\n",
        env={"TAIZHANG_DB": None, "TAIZHANG_ACTOR": None, "TAIZHANG_LANG": None, "TAIZHANG_KEY_FILE": None},
    )
    assert result.exit_code == 0, result.output


def build(cli: Cli) -> None:
    cli.ok("init", "--admin", ADMIN)
    for community in (HZ, HZ2, QT):
        cli.ok(*establish_args(community), actor=ADMIN)
    for name, (role, scope) in ACTORS.items():
        cli.ok("actor", "add", name, "--role", role, "--scope", scope, *login_args(cli.url), actor=ADMIN)
    cli.ok("actor", "add", "clerk-city", "--role", "clerk", "--scope", "city", *login_args(cli.url), actor=ADMIN)
    for code in ("HZ-001", "HZ-002", "QT-2"):
        cli.ok("resident", "enroll", code, "R1", "--name", "张秀英", "--category", "留守老人", actor="clerk-city")
        cli.ok("resident", "enroll", code, "R2", "--name", "王小明", actor="clerk-city")
        cli.ok("provider", "register", code, "P1", "--name", "李建国", "--role", "党员", actor="clerk-city")
    for code, at, minutes in (
        ("HZ-001", "2026-03-05 09:30", "45"), ("HZ-001", "2026-03-06 10:00", "30"), ("HZ-002", "2026-03-07 08:00", "20"),
        ("HZ-001", "2026-02-10 09:00", "60"), ("QT-2", "2026-03-05 09:30", "15"),
    ):  # fmt: skip
        cli.ok("service", "record", code, "--kind", "life_care", "--resident", "R1", "--provider", "P1",
               "--at", at, "--minutes", minutes, "--record-id", str(uuid.uuid4()), actor="clerk-city")  # fmt: skip
    for name in (ADMIN, *ACTORS):
        set_password(cli, name)
    cli.ok("projections", "run", actor=ADMIN)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp(f"web-{request.param}")
    key = tmp / "taizhang.key"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'taizhang.db'}"
        build(Cli(url, key))
        yield Site(Cli(url, key), url, key)
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        build(Cli(url, key))
        yield Site(Cli(url, key), url, key)
    finally:
        drop_pg_database(admin, url)


CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def log_in(client: TestClient, actor: str, password: str = PASSWORD) -> object:
    page = client.get("/login")
    return client.post("/login", data={"actor": actor, "password": password, "csrf": csrf_of(page.text)})


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    """A client of a fresh app (no catch-up thread: on PostgreSQL its pages read the views as they
    stand, like the CLI, so each test starts with them current)."""
    site.cli.ok("projections", "run", actor=ADMIN)
    with site.client() as c:
        c.app.state.door.throttle.clear("address:testclient")  # type: ignore[attr-defined]  # failures of earlier tests
        yield c
        c.app.state.door.close()  # type: ignore[attr-defined]
