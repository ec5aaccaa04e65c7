"""Auditors' pages and API: a community's history `as of` (old → new), the chain's status, proof bundles,
the access log — each equal to its CLI command and behind that command's access rule, on both stores."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from commands.web.app import create_app
from commands.web.door import Door
from infra import checkpoint as cpt
from infra.checkpoint import sign_checkpoint
from tests.web.conftest import ADMIN, Site, csrf_of, log_in, login_args, set_password


def cli_json(site: Site, actor: str, *args: str) -> Any:
    return orjson.loads(site.cli.ok(*args, "--format", "json", actor=actor).stdout)


def test_the_api_history_equals_audit_history_json_and_stops_as_of(site: Site, client: TestClient) -> None:
    assert log_in(client, "auditor").status_code == 303
    r = client.get("/api/v1/history", params={"community": "HZ-001"})
    assert r.status_code == 200, r.text
    full = cli_json(site, "auditor", "audit", "history", "HZ-001")
    assert r.json() == full
    moment = full[len(full) // 2]["recorded_at"]  # a printed time selects the state that includes that event
    r = client.get("/api/v1/history", params={"community": "HZ-001", "as_of": moment})
    assert r.json() == cli_json(site, "auditor", "audit", "history", "HZ-001", "--as-of", moment)
    assert 0 < len(r.json()) <= len(full) and r.json() == full[: len(r.json())]


def test_the_history_page_shows_old_and_new_values_and_is_access_logged(site: Site, client: TestClient) -> None:
    entries = cli_json(site, "auditor", "ledger", "entries", "--community", "HZ-001")
    record = entries[0]["record_id"]
    site.cli.ok("service", "correct", "HZ-001", record, "--minutes", "50", "--reason", "录错了", actor="clerk-city")
    assert log_in(client, "auditor").status_code == 303
    page = client.get("/audit/history", params={"community": "HZ-001"})
    assert page.status_code == 200, page.text
    assert 'id="history"' in page.text
    assert "→ 50" in page.text  # a correction shows old → new
    assert "更正" in page.text or "改正" in page.text  # events named in Chinese by default
    log = cli_json(site, "auditor", "audit", "access", "--actor", "auditor")
    assert any(e["command"] == "web audit history" for e in log)


def test_the_chain_page_shows_the_verify_result(site: Site, client: TestClient) -> None:
    assert log_in(client, "auditor").status_code == 303
    page = client.get("/audit/chain")
    assert page.status_code == 200 and 'data-intact="1"' in page.text
    page = client.get("/audit/chain", params={"community": "HZ-002"})
    assert page.status_code == 200 and 'data-intact="1"' in page.text


def test_a_proof_bundle_downloads_and_checks_offline(site: Site, client: TestClient, tmp_path: Path) -> None:
    key = tmp_path / "office.key"
    site.cli.ok("audit", "keygen", "--key-file", str(key), actor="auditor")
    checkpoint = tmp_path / "sealed.checkpoint"
    site.cli.ok("audit", "seal", "--key-file", str(key), "--output", str(checkpoint), actor="auditor")
    record = cli_json(site, "auditor", "ledger", "entries", "--community", "QT-2")[0]["record_id"]
    assert log_in(client, "auditor").status_code == 303
    csrf = csrf_of(client.get("/audit/chain").text)
    files = {"checkpoint": ("sealed.checkpoint", checkpoint.read_bytes(), "application/json")}
    r = client.post("/audit/prove", data={"csrf": csrf, "record_id": record}, files=files)
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    bundle = tmp_path / "record.bundle"
    bundle.write_bytes(r.content)
    checked = cli_json(site, "auditor", "audit", "check", str(bundle), "--public-key", f"{key}.pub")
    assert checked["verified"] is True and checked["record_id"] == record
    forged = client.post("/audit/prove", data={"csrf": "forged", "record_id": record}, files=files)
    assert forged.status_code == 403
    bad = client.post("/audit/prove", data={"csrf": csrf, "record_id": "nope"}, files=files)
    assert bad.status_code == 422


def test_a_township_auditor_proves_the_records_of_its_communities(
    site: Site, client: TestClient, tmp_path: Path
) -> None:
    """`audit prove --community C` (and the form's community): the policy judges C, the record must be C's."""
    name = f"aud-hj-{uuid.uuid4().hex[:6]}"
    site.cli.ok("actor", "add", name, "--role", "auditor", "--scope", "township:八步区/贺街镇", *login_args(site.url),
                actor=ADMIN)  # fmt: skip
    set_password(site.cli, name)
    key = tmp_path / "office.key"
    site.cli.ok("audit", "keygen", "--key-file", str(key), actor="auditor")
    checkpoint = tmp_path / "sealed.checkpoint"
    site.cli.ok("audit", "seal", "--key-file", str(key), "--output", str(checkpoint), actor="auditor")
    mine = cli_json(site, "auditor", "ledger", "entries", "--community", "HZ-001")[0]["record_id"]
    theirs = cli_json(site, "auditor", "ledger", "entries", "--community", "QT-2")[0]["record_id"]
    # the CLI: inside its scope with --community; the whole store (no --community) or another township refused
    out = tmp_path / "cli.bundle"
    site.cli.ok("audit", "prove", mine, "--community", "HZ-001", "--checkpoint", str(checkpoint), "--output", str(out),
                actor=name)  # fmt: skip
    assert cli_json(site, "auditor", "audit", "check", str(out), "--public-key", f"{key}.pub")["verified"] is True
    for args in ((), ("--community", "QT-2")):
        refused = site.cli("audit", "prove", theirs, *args, "--checkpoint", str(checkpoint), "--output",
                           str(tmp_path / f"x{len(args)}.bundle"), actor=name)  # fmt: skip
        assert refused.exit_code == 1 and "permission denied" in refused.stderr, refused.stderr
    wrong = site.cli("audit", "prove", theirs, "--community", "HZ-001", "--checkpoint", str(checkpoint), "--output",
                     str(tmp_path / "y.bundle"), actor=name)  # fmt: skip
    assert wrong.exit_code == 1 and "is not a record of community HZ-001" in wrong.stderr
    # the web: the same answers
    assert log_in(client, name).status_code == 303
    csrf = csrf_of(client.get("/audit/chain", params={"community": "HZ-001"}).text)
    files = {"checkpoint": ("sealed.checkpoint", checkpoint.read_bytes(), "application/json")}

    def prove(record: str, community: str | None) -> Any:
        data = {"csrf": csrf, "record_id": record, **({"community": community} if community else {})}
        return client.post("/audit/prove", data=data, files=files)

    r = prove(mine, "HZ-001")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"], r.text[:300]
    assert prove(theirs, None).status_code == 403
    assert prove(theirs, "QT-2").status_code == 403
    r = prove(theirs, "HZ-001")
    assert r.status_code == 404 and "不属于社区 HZ-001" in r.text
    log = cli_json(site, "auditor", "audit", "access", "--actor", name)
    assert any(e["command"] == "web audit prove" and e["detail"] == f"record_id={mine} community=HZ-001" for e in log)


def test_the_access_log_page_lists_the_entries(client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    assert client.get("/ledger").status_code == 200  # an access-logged read
    client.cookies.clear()
    assert log_in(client, "auditor").status_code == 303
    page = client.get("/audit/access", params={"actor": "sup-hj"})
    assert page.status_code == 200 and 'id="access"' in page.text
    assert "web ledger entries" in page.text and "操作人" in page.text
    assert client.get("/audit/access", params={"from": "someday"}).status_code == 422


def test_only_auditors_reach_the_audit_pages(client: TestClient) -> None:
    assert log_in(client, "sup-city").status_code == 303
    for url in ("/audit/history?community=HZ-001", "/audit/chain", "/audit/access", "/api/v1/history?community=HZ-001"):
        assert client.get(url).status_code == 403, url
    client.cookies.clear()
    assert log_in(client, "auditor").status_code == 303
    assert client.get("/api/v1/history").status_code == 422  # community: required
    assert client.get("/api/v1/history", params={"community": "NOPE-1"}).status_code == 404


@contextmanager
def checkpoint_client(site: Site, folder: Path | None) -> Iterator[TestClient]:
    """A client of an app `taizhang serve` started with TAIZHANG_CHECKPOINTS=folder (None: without it)."""
    site.cli.ok("projections", "run", actor=ADMIN)
    door = Door(site.url, site.key, catch_up=False)
    with TestClient(create_app(door, checkpoints=folder), base_url="http://testserver", follow_redirects=False) as c:
        c.app.state.door.throttle.clear("address:testclient")  # type: ignore[attr-defined]
        assert log_in(c, "auditor").status_code == 303
        yield c
        door.close()


def facts_of(html: str) -> dict[str, str]:
    section = html.split('id="checkpoint"', 1)[1].split("</dl>", 1)[0]
    return dict(re.findall(r"<dt>([^<]*)</dt><dd>(?:<code>)?([^<]*)", section))


def seal(site: Site, key: Path, out: Path) -> dict[str, Any]:
    site.cli.ok("audit", "seal", "--key-file", str(key), "--output", str(out), actor="auditor")
    document: dict[str, Any] = orjson.loads(out.read_bytes())
    return document


def test_the_chain_page_shows_the_latest_sealed_checkpoint(site: Site, tmp_path: Path) -> None:
    key = tmp_path / "office.key"
    site.cli.ok("audit", "keygen", "--key-file", str(key), actor="auditor")
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    first = seal(site, key, folder / "b-earlier.checkpoint")  # the name sorts last: the sealed time decides
    site.cli.ok("service", "record", "HZ-002", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
                "--at", "2026-03-09 08:00", "--minutes", "25", "--record-id", str(uuid.uuid4()), actor="clerk-city")  # fmt: skip
    second = seal(site, key, folder / "a-later.checkpoint")
    for name in ("a-later", "b-earlier"):
        shutil.copy(f"{key}.pub", folder / f"{name}.pub")
    assert second["sealed_at"] > first["sealed_at"] and second["log_size"] == first["log_size"] + 1
    verified = cli_json(site, "auditor", "audit", "verify", "--checkpoint", str(folder / "a-later.checkpoint"),
                        "--public-key", f"{key}.pub")  # fmt: skip
    with checkpoint_client(site, folder) as client:
        page = client.get("/audit/chain")
        assert page.status_code == 200, page.text
        assert 'data-extends="1"' in page.text and 'id="checkpoint-problem"' not in page.text
        facts = facts_of(page.text)
        assert facts["检查点文件"] == "a-later.checkpoint"
        assert facts["封存时间"] == verified["sealed_at"]  # the store's zone, as the CLI prints it
        assert facts["日志事件数"] == str(second["log_size"]) and facts["密钥标识"] == second["key_id"]
        assert facts["日志是检查点的追加延续"] == "是"
        assert 'id="checkpoint"' not in client.get("/audit/chain", params={"community": "HZ-001"}).text


def test_a_checkpoint_that_does_not_verify_is_shown_as_a_failure(site: Site, tmp_path: Path) -> None:
    key, other = tmp_path / "office.key", tmp_path / "other.key"
    for k in (key, other):
        site.cli.ok("audit", "keygen", "--key-file", str(k), actor="auditor")
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    sealed = seal(site, key, tmp_path / "sealed.checkpoint")
    body = {k: v for k, v in sealed.items() if k not in ("signature", "format", "key_id")}
    cases = {  # what the folder's latest checkpoint is -> the words of `audit verify --checkpoint --public-key`
        "signed with another key": (sealed, f"{other}.pub", "不是用这个公钥"),
        "changed after sealing": ({**sealed, "log_size": sealed["log_size"] - 1}, f"{key}.pub", "封存后被改动过"),
        "a log that is not its extension": (
            sign_checkpoint({**body, "log_size": sealed["log_size"] + 5}, cpt.load_signing_key(key)),
            f"{key}.pub",
            "事件被删除",
        ),
    }
    for case, (document, public, words_zh) in cases.items():
        (folder / "m.checkpoint").write_bytes(cpt.document(document))
        shutil.copy(public, folder / "m.pub")
        cli = site.cli("audit", "verify", "--checkpoint", str(folder / "m.checkpoint"), "--public-key",
                       str(folder / "m.pub"), actor="auditor")  # fmt: skip
        assert cli.exit_code != 0, case
        with checkpoint_client(site, folder) as client:
            page = client.get("/audit/chain")
            assert page.status_code == 200, (case, page.text)
            assert 'data-extends="0"' in page.text and facts_of(page.text)["日志是检查点的追加延续"] == "否", case
            problem = page.text.split('id="checkpoint-problem"', 1)[1].split("</p>", 1)[0]
            assert words_zh in problem, (case, problem, cli.stderr)


def test_without_checkpoints_the_chain_page_says_so_in_one_line(site: Site, tmp_path: Path) -> None:
    with checkpoint_client(site, None) as client:
        page = client.get("/audit/chain")
        assert page.status_code == 200 and "未设置 TAIZHANG_CHECKPOINTS" in page.text
    (tmp_path / "empty").mkdir()
    with checkpoint_client(site, tmp_path / "empty") as client:
        page = client.get("/audit/chain")
        assert page.status_code == 200 and "检查点文件夹中没有已封存的检查点" in page.text
