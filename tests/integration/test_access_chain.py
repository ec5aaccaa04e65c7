"""The access chain's encoding, and a store whose access log predates the chain."""

from __future__ import annotations

from pathlib import Path

from commands.app import LedgerService
from commands.audit_chain import verify_log
from infra import access_chain
from infra.store import parse_url
from tests.integration.test_chain import execute
from tests.integration.test_service import sql


def test_the_encoding_keeps_every_field_apart() -> None:
    base = (7, "2026-03-05T01:30:00.123Z", "clerk07", "resident list", "HZ-001", 1, 0, [("HZ-001", "R1")])
    variants = [
        (7, "2026-03-05T01:30:00.123Z", None, "resident list", "HZ-001", 1, 0, [("HZ-001", "R1")]),
        (7, "2026-03-05T01:30:00.123Z", "", "resident list", "HZ-001", 1, 0, [("HZ-001", "R1")]),
        (7, "2026-03-05T01:30:00.123Z", "clerk07", "resident lis", "tHZ-001", 1, 0, [("HZ-001", "R1")]),
        (7, "2026-03-05T01:30:00.123Z", "clerk07", "resident list", "HZ-001", 1, 0, [("HZ-001R", "1")]),
        (7, "2026-03-05T01:30:00.123Z", "clerk07", "resident list", "HZ-001", 0, 1, [("HZ-001", "R1")]),
        (8, "2026-03-05T01:30:00.123Z", "clerk07", "resident list", "HZ-001", 1, 0, [("HZ-001", "R1")]),
    ]
    encoded = {access_chain.entry(*v) for v in [base, *variants]}  # type: ignore[arg-type]
    assert len(encoded) == 1 + len(variants)
    assert access_chain.entry(*base[:-1], [("B", "2"), ("A", "1")]) == access_chain.entry(*base[:-1], [("A", "1"), ("B", "2")])  # type: ignore[arg-type]


def test_an_access_log_from_before_the_chain_is_chained_when_upgraded(service: LedgerService, db_url: str, key_file: Path) -> None:
    for n in range(3):
        service.log_access("clerk07", "resident list", f"HZ-001 #{n}", [("HZ-001", "R1"), ("HZ-001", f"R{n + 2}")], n)
    service.close()
    # The store as schema 5 left it: no access chain.
    execute(db_url, [("DROP TABLE access_chain", ()), ("UPDATE taizhang_settings SET value = '5' WHERE key = 'schema_version'", ())])
    upgraded = LedgerService.open(parse_url(db_url), key_file)
    try:
        assert int(sql(db_url, "SELECT count(*) FROM access_chain")[0][0]) == 3
        assert verify_log(upgraded)["access_entries"] == 3
        upgraded.log_access("auditor", "audit history", "HZ-001", [("HZ-001", "R1")], 1)
        assert verify_log(upgraded)["access_entries"] == 4
    finally:
        upgraded.close()
