"""`funds ledger` at a city-year: the same lines and units with 100k and with 1M funding events.

    python -m tests.perf.bench_funds_ledger [--events 100000 1000000] [--lines 1000] [--dir DIR]

Each store: 5 counties × 8 townships × 10 communities (400 communities, established through the
application), `--lines` funding lines each granted to a county in January 2026, passed down to a
township and a community, then spent by that community all through the year (small amounts), so
the history grows while lines, units and months stay the same. Lines are saved whole (one save per
line: its events in one transaction); voucher claims are left out (the funds views ignore them).
The views are projected, then the ledger of the year is read (`projections.funds_queries.ledger`,
`--by unit`, `--by line` and `--by department`, and the command as a whole through the CLI) and
timed in CPU seconds, best of 5. Target: 1M / 100k ≤ 1.5 (the current ledger reads `funds_totals`,
rows per line, unit, month and kind, not the movements).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner

from commands.app import LedgerService
from commands.cli import cli
from commands.views import Views
from domain.funds import FundingLine
from domain.units import UnitRef
from infra.store import parse_url
from projections import funds_queries as q
from tests.helpers import establish

COUNTIES, TOWNSHIPS, COMMUNITIES = 5, 8, 10


def build(path: Path, events: int, lines: int, seed: int = 7) -> tuple[LedgerService, float]:
    rng = random.Random(seed)
    service, _ = LedgerService.create(parse_url(f"sqlite:///{path}"), path.with_suffix(".key"), None)
    places = []
    for c in range(COUNTIES):
        for t in range(TOWNSHIPS):
            for m in range(COMMUNITIES):
                code = f"C{c}T{t}M{m}"
                establish(service, code, county=f"县{c}", township=f"镇{t}", name=f"{code}社区")
                places.append((code, f"县{c}", f"镇{t}"))
    per_line = max(events // lines, 4)
    started = time.perf_counter()
    for n in range(lines):
        code, county, township = rng.choice(places)
        amount = 100_000_000
        line = FundingLine.allocate(
            department=f"部门{n % 12}", document=f"文{n}号", purpose="社区服务", amount=amount,
            unit=f"county:{county}", on="2026-01-02", actor="bench",
        )  # fmt: skip
        town = UnitRef("township", county=county, township=township)
        place = UnitRef("community", county=county, township=township, community=code)
        line.transfer(transfer_id=f"t{n}a", from_unit=UnitRef("county", county=county), to_unit=town,
                      amount=amount // 2, on="2026-01-03", note=None, actor="bench")  # fmt: skip
        line.transfer(transfer_id=f"t{n}b", from_unit=town, to_unit=place, amount=amount // 4, on="2026-01-04",
                      note=None, actor="bench")  # fmt: skip
        for s in range(per_line - 3):
            day = date(2026, 1, 5) + timedelta(days=s * 360 // (per_line - 3))
            # The event itself: the domain's balance check is linear in the unit's movements (decision 0018),
            # which a bench of a thousand spends per line need not pay; the amounts never exceed the balance.
            line.trigger_event(
                FundingLine.Spent, spend_id=str(uuid.UUID(int=rng.getrandbits(128))), community=f"community:{code}",
                amount=rng.randint(1, 2000), on=day.isoformat(), purpose="助餐", voucher=f"V{n}-{s}", payee=None,
                records=[], project=None, home=None, actor="bench",
            )  # fmt: skip
        service.app.save(line)
    written = time.perf_counter() - started
    runner = Views(service).runner
    runner.ensure_tables()
    runner.catch_up()
    return service, written


def cpu(fn: object, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()  # type: ignore[operator]
        best = min(best, time.process_time() - start)
    return best


def measure(service: LedgerService) -> dict[str, float]:
    views = Views(service)
    views.prepare()
    filters = q.FundsFilters(None, date(2026, 1, 1), date(2026, 12, 31), None)
    out = {}
    for by in ("unit", "line", "department"):
        with views.read() as conn:
            out[by] = cpu(lambda conn=conn, by=by: q.ledger(conn, filters, by=by))
    url = f"sqlite:///{service.store.path}"
    runner = CliRunner()
    args = ["--db", url, "--key-file", str(Path(str(service.store.path)).with_suffix(".key")), "funds", "ledger",
            "--by", "unit", "--period", "2026", "--format", "json"]  # fmt: skip

    def command() -> None:
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    out["cli by unit"] = cpu(command)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    where = args.dir or Path(tempfile.mkdtemp(prefix="bench-funds-"))
    results = {}
    for events in args.events:
        path = where / f"funds-{events}.db"
        if path.exists():
            service = LedgerService.open(parse_url(f"sqlite:///{path}"), path.with_suffix(".key"))
            written = float("nan")
        else:
            service, written = build(path, events, args.lines)
        head = service.recorder.max_notification_id()
        results[events] = measure(service)
        print(f"{events:>9,} funding events (log {head:,}; written in {written:.0f}s): "
              + ", ".join(f"{k} {v * 1000:.1f} ms CPU" for k, v in results[events].items()), flush=True)  # fmt: skip
        service.close()
    if len(results) > 1:
        small, large = results[min(results)], results[max(results)]
        print("ratio (largest / smallest): " + ", ".join(f"{k} {large[k] / small[k]:.2f}" for k in small))
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
