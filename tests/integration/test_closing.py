"""Closed periods against real stores: no write slips past a close, made one community at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from commands import models
from commands.app import LedgerService
from commands.closing import close_period, reopen_period
from domain.errors import NotFound, PeriodClosed
from domain.units import parse_period, parse_unit
from tests import helpers
from tests.integration.test_service import reopen, store_counts  # noqa: F401  (reopen is a fixture)

TOWNSHIP = parse_unit("township:八步区/贺街镇")
MARCH = parse_period("2026-03")


def _after_load(service: LedgerService, monkeypatch: pytest.MonkeyPatch, act: Callable[[], Any]) -> list[Any]:
    """Make `act` (another writer) run right after this service's first load of a community."""
    load = service.get_community
    done: list[Any] = []

    def load_then_race(code: str, records: Any = ()) -> Any:
        community = load(code, records)
        if not done:
            done.append(act())
        return community

    monkeypatch.setattr(service, "get_community", load_then_race)
    return done


def test_a_write_that_loaded_before_the_close_cannot_slip_past_it(
    service: LedgerService, reopen: Callable[..., LedgerService], monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    code = helpers.small_community(service)
    supervisor = reopen()
    raced = _after_load(service, monkeypatch, lambda: close_period(supervisor, TOWNSHIP, MARCH, "结账", "sup01"))
    before = store_counts(service)
    with pytest.raises(PeriodClosed, match="closed: township:八步区/贺街镇 2026-03"):
        helpers.record(service, code, occurred_at="2026-03-20 09:00")
    assert raced and raced[0]["closed"] is True
    # The close's own event is all that was written.
    after = store_counts(service)
    assert after["events"] == before["events"] + 1


def test_a_close_that_loaded_before_a_write_sees_it_and_still_closes_everything(
    service: LedgerService, reopen: Callable[..., LedgerService], monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    first = helpers.small_community(service)
    second = helpers.small_community(service)
    clerk = reopen()
    raced = _after_load(service, monkeypatch, lambda: helpers.record(clerk, second, occurred_at="2026-03-20 09:00"))
    result = close_period(service, TOWNSHIP, MARCH, "结账", "sup01")
    assert raced[0]["created"] is True  # the record landed first, then the close was redone over it
    assert sorted(result["communities"]) == sorted([first, second])
    fresh = reopen()
    for code in (first, second):
        assert fresh.get_community(code).closure(str(TOWNSHIP), "2026-03") is not None


def test_the_close_reaches_every_community_of_a_county_at_once(service: LedgerService) -> None:
    codes = [helpers.small_community(service) for _ in range(3)]
    elsewhere = helpers.establish(service, county="平桂区", township="沙田镇")
    before = store_counts(service)
    result = close_period(service, parse_unit("county:八步区"), parse_period("2026-Q1"), "一季度结账", "sup01")
    assert sorted(result["communities"]) == sorted(codes)
    after = store_counts(service)
    assert after["events"] == before["events"] + 3
    assert after["commits"] == before["commits"] + 3  # one short transaction per community
    assert service.get_community(elsewhere).closures == {}
    reopened = reopen_period(service, parse_unit("county:八步区"), parse_period("2026-Q1"), "补录", "sup01")
    assert sorted(reopened["communities"]) == sorted(codes)
    assert all(service.get_community(code).closures == {} for code in codes)


def test_an_empty_unit_is_refused(service: LedgerService) -> None:
    helpers.establish(service)
    with pytest.raises(NotFound, match="no township 八步区/信都镇"):
        close_period(service, parse_unit("township:八步区/信都镇"), MARCH, "结账", "sup01")


def test_a_closed_period_survives_snapshots_and_reopening_the_store(
    service: LedgerService, reopen: Callable[..., LedgerService], monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from commands import app as app_module

    monkeypatch.setattr(app_module, "SNAPSHOT_INTERVAL", 5)
    code = helpers.small_community(service)
    close_period(service, parse_unit(f"community:{code}"), MARCH, "结账", "sup01")
    for day in range(1, 8):
        helpers.record(service, code, occurred_at=f"2026-04-{day:02d} 09:00")
    assert store_counts(service)["snapshots"] > 0
    later = reopen()
    loaded = later.get_community(code)
    assert loaded.closure(f"community:{code}", "2026-03") is not None
    v = later.validate
    with pytest.raises(PeriodClosed):
        later.depart_resident(v(models.DepartResident, {"community": code, "code": "R1", "reason": "moved", "on": "2026-03-31"}), "c")
