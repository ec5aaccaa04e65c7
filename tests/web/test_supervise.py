"""Supervisors' assessment ranking, its explain drill-down and overdue key visits — pages and /api/v1 —
equal the CLI's `--format json`, inside the CLI's access rules, on both stores."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import Site, log_in

HJ = "八步区/贺街镇"
UNIT = f"township:{HJ}"


@pytest.fixture(scope="module", autouse=True)
def plans(site: Site) -> Iterator[None]:
    """A key-visit plan (every 7 days from January): R1 of HZ-001 is overdue; R2 of QT-2 in another township."""
    site.cli.ok("visit-plan", "set", "HZ-001", "R1", "--every", "7", "--provider", "P1", "--from", "2026-01-01",
                actor="clerk-city")  # fmt: skip
    site.cli.ok("visit-plan", "set", "QT-2", "R2", "--every", "7", "--provider", "P1", "--from", "2026-01-01",
                actor="clerk-city")  # fmt: skip
    yield


def cli_json(site: Site, actor: str, *args: str) -> Any:
    site.cli.ok("projections", "run", actor="boss")
    return orjson.loads(site.cli.ok(*args, "--format", "json", actor=actor).stdout)


@pytest.mark.clock  # obligations are judged on today's date (the CLI's too)
def test_the_api_assessment_equals_assess_run_json(site: Site, client: TestClient) -> None:
    assert log_in(client, "sup-city").status_code == 303
    for level in ("township", "county"):
        r = client.get("/api/v1/assess", params={"period": "2026-03", "level": level})
        assert r.status_code == 200, r.text
        assert r.json() == cli_json(site, "sup-city", "assess", "run", "--period", "2026-03", "--level", level)


@pytest.mark.clock
def test_the_assessment_page_ranks_the_units_as_the_cli_table(site: Site, client: TestClient) -> None:
    from commands.assess import by_rank, ratio_text, score_text

    assert log_in(client, "sup-city").status_code == 303
    page = client.get("/assess", params={"period": "2026-03"})
    assert page.status_code == 200, page.text
    document = cli_json(site, "sup-city", "assess", "run", "--period", "2026-03", "--level", "township")
    rows = re.findall(r'<tr data-unit="([^"]*)"><td class="n">([^<]*)</td><th scope="row">([^<]*)</th>'
                      r'<td class="n score">([^<]*)</td>(.*?)</tr>', page.text, re.S)  # fmt: skip
    want = by_rank(document["units"])
    assert [r[0] for r in rows] == [u["unit"] for u in want]  # sorted by rank
    for (_unit, rank, name, score, cells), unit in zip(rows, want, strict=True):
        assert rank == ("—" if unit["rank"] is None else str(unit["rank"]))
        assert name == unit["name"] and "镇" in name  # Chinese unit names
        assert score == score_text(unit["score"])  # one decimal
        texts = re.findall(r'<a href="[^"]*">([^<]*)</a>', cells)
        assert texts == [ratio_text(m.get("value")) for m in unit["metrics"].values()]  # percentages
    assert "排名" in page.text or "名次" in page.text  # Chinese by default
    assert "/assess/explain?" in page.text


@pytest.mark.clock
def test_explain_drills_down_to_the_records_as_assess_explain(site: Site, client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    params = {"period": "2026-03", "unit": UNIT, "metric": "coverage"}
    r = client.get("/api/v1/assess/explain", params=params)
    assert r.status_code == 200, r.text
    want = cli_json(site, "sup-hj", "assess", "explain", "--period", "2026-03", "--unit", UNIT, "--metric", "coverage")
    assert r.json() == want
    page = client.get("/assess/explain", params=params)
    assert page.status_code == 200
    records = [rid for row in want["evidence"] for rid in row.get("records", [])]
    assert records and all(rid in page.text for rid in records)  # down to the record ids
    assert 'id="evidence"' in page.text


def test_scopes_and_roles_hold_as_on_the_cli(client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    assert client.get("/assess").status_code == 403  # assess run scores every unit: the city's scope only
    assert client.get("/api/v1/assess", params={"period": "2026-03"}).status_code == 403
    other = {"period": "2026-03", "unit": "township:八步区/桂岭镇", "metric": "coverage"}
    assert client.get("/assess/explain", params=other).status_code == 403
    assert client.get("/api/v1/visits/overdue", params={"community": "QT-2"}).status_code == 403
    client.cookies.clear()
    assert log_in(client, "clerk-hj").status_code == 303
    assert client.get("/assess/explain", params={**other, "unit": UNIT}).status_code == 403  # clerks do not assess


def test_malformed_and_unknown_are_422_and_404(client: TestClient) -> None:
    assert log_in(client, "sup-city").status_code == 303
    for params in ({"period": "2026-13"}, {"period": "2026-03", "level": "village"}):
        r = client.get("/api/v1/assess", params=params, headers={"Accept-Language": "en"})
        assert r.status_code == 422 and list(r.json()) == ["detail"], r.text
    r = client.get("/api/v1/assess/explain", params={"period": "2026-03", "unit": UNIT, "metric": "speed"})
    assert r.status_code == 422 and "speed" in r.json()["detail"]
    r = client.get("/api/v1/assess/explain", params={"period": "2026-03", "metric": "coverage"})
    assert r.status_code == 422
    r = client.get(
        "/api/v1/assess/explain", params={"period": "2026-03", "unit": "township:八步区/无此镇", "metric": "coverage"}
    )
    assert r.status_code == 404, r.text
    r = client.get("/api/v1/visits/overdue", params={"community": "NOPE-9"})
    assert r.status_code in (403, 404), r.text
    assert client.get("/assess", params={"period": "someday"}).status_code == 422


@pytest.mark.clock  # overdue is judged on today's date (the CLI's too)
def test_overdue_visits_equal_visits_overdue_json(site: Site, client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    r = client.get("/api/v1/visits/overdue")  # no unit: the actor's scope
    assert r.status_code == 200, r.text
    want = cli_json(site, "sup-hj", "visits", "overdue", "--township", HJ)
    assert r.json() == want
    assert [row["community"] for row in want] == ["HZ-001"]  # not QT-2's plan
    page = client.get("/visits/overdue")
    assert page.status_code == 200 and 'id="overdue"' in page.text
    assert "R1" in page.text and "QT-2" not in page.text
    assert "逾期" in page.text  # Chinese by default


def test_every_new_route_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/assess", "/api/v1/assess/explain", "/api/v1/visits/overdue", "/api/v1/history"} <= set(paths)
