"""The demo's funding ledger (资金台账): lines of several departments followed down to the vouchers.

Planned from a random stream of its own (`funds:<seed>`), after the communities, so the rest of
the sample of a seed is the same with or without it:

- each department of `DEPARTMENTS` grants one line to each county (下达, under a document
  number such as 贺民发〔2026〕3号), on the first day of the services' window;
- the county passes most of it to each of its townships (拨付), each township to its pilot
  communities and two demonstration communities;
- each of those communities spends from the line two or three times (支出), each spend with a
  voucher number unique in the community's year (凭证号), a payee (sealed like residents' names)
  and one to three of its service records it paid for, on or after their day;
- one spend is reversed (红字冲销: paid twice), and one county returns part of a line (退回).

Everything is saved through the domain aggregates (FundingLine, Voucher) as the write side
saves them, in one transaction. `taizhang demo` ends with the city's 资金台账 by department as
`funds ledger --by department` prints it; `city_summary` adds the same up from the aggregates.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from commands.app import LedgerService
from commands.funds_history import payee_binding
from domain.funds import ALLOCATED, PASSED_DOWN, RECEIVED, RETURNED, REVERSED, SPENT, FundingLine, Voucher
from domain.units import UnitRef

# department: (document prefix, purpose, what its communities spend on, yuan per county (low, high))
DEPARTMENTS: dict[str, tuple[str, str, tuple[str, ...], tuple[int, int]]] = {
    "民政局": (
        "贺民发",
        "新型农村社区养老服务补助",
        ("幸福院老人助餐", "独居老人上门照料", "困难对象走访慰问"),
        (60, 120),
    ),
    "乡村振兴局": (
        "贺振发",
        "防返贫监测帮扶资金",
        ("防返贫监测对象帮扶", "产业发展技术指导", "就业技能培训"),
        (80, 150),
    ),
    "妇联": ("贺妇发", "留守妇女儿童关爱服务", ("留守儿童课后托管", "留守妇女技能培训", "亲情关怀活动"), (30, 60)),
    "残联": ("贺残联发", "残疾人康复与托养服务", ("残疾人康复训练", "辅具适配", "残疾人家庭走访"), (20, 50)),
}
REVERSAL_REASON = "重复支付，红字冲销"
RETURN_REASON = "项目结余，按规定退回"
_PAYEE_ORGS = ("社区食堂", "康复服务中心", "便民超市", "家政服务社", "志愿服务队")
_PAYEE_SURNAMES = "陈黄李莫钟梁罗林邓何刘张盘赵冯廖"
_PAYEE_GIVEN = "秀英桂兰建华志强海燕德福玉珍春梅"


class _Community(Protocol):
    code: str
    county: str
    township: str
    records: list[Any]


@dataclass
class FundsSummary:
    lines: int = 0
    transfers: int = 0
    spends: int = 0
    reversals: int = 0
    returns: int = 0


@dataclass
class _Spend:
    spend_id: str
    community: str
    amount: int
    on: date
    purpose: str
    voucher: str
    payee: str
    records: list[str]


@dataclass
class _LinePlan:
    department: str
    document: str
    purpose: str
    amount: int
    county: str
    on: date
    # (entry id, from unit, to unit, amount, day)
    transfers: list[tuple[str, UnitRef, UnitRef, int, date]] = field(default_factory=list)
    spends: list[_Spend] = field(default_factory=list)
    reversal: tuple[str, date] | None = None
    give_back: tuple[str, int, date] | None = None


def _entry_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _yuan(rng: random.Random, low: int, high: int, step: int = 100) -> int:
    """A round amount in fen between `low` and `high` yuan, in steps of `step` yuan."""
    return rng.randrange(low // step, high // step + 1) * step * 100


def _payee(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(_PAYEE_SURNAMES)}{rng.choice(_PAYEE_GIVEN)}{rng.choice(_PAYEE_GIVEN)}"
    return rng.choice(_PAYEE_ORGS)


def plan_funds(rng: random.Random, communities: list[_Community], today: date, first_day: date) -> list[_LinePlan]:
    """Every line of the demo, its transfers, spends, the reversal and the return (amounts in fen)."""
    counties: dict[str, dict[str, list[_Community]]] = defaultdict(lambda: defaultdict(list))
    for c in communities:
        counties[c.county][c.township].append(c)
    vouchers: dict[tuple[str, int], int] = defaultdict(int)
    granted = first_day
    lines: list[_LinePlan] = []
    for n, (department, (prefix, purpose, uses, (low, high))) in enumerate(DEPARTMENTS.items(), 1):
        for k, (county, townships) in enumerate(sorted(counties.items()), 1):
            amount = _yuan(rng, low * 1000, high * 1000, 1000)
            line = _LinePlan(department, f"{prefix}〔{granted.year}〕{n * 10 + k}号", purpose, amount, county, granted)
            county_ref = UnitRef("county", county=county)
            share = amount * 7 // 10 // len(townships) // 100_000 * 100_000  # 70% passed down, whole thousands
            for township, members in sorted(townships.items()):
                town_ref = UnitRef("township", county=county, township=township)
                town_day = granted + timedelta(days=rng.randint(2, 6))
                line.transfers.append((_entry_id(rng), county_ref, town_ref, share, town_day))
                pilots = [c for c in members if c.code.startswith("HZ-P")]
                others = sorted((c for c in members if not c.code.startswith("HZ-P")), key=lambda c: c.code)
                chosen = sorted(pilots + rng.sample(others, min(2, len(others))), key=lambda c: c.code)
                part = share * 8 // 10 // max(1, len(chosen)) // 10_000 * 10_000  # 80% on, whole hundreds
                for community in chosen:
                    ref = UnitRef("community", county=county, township=township, community=community.code)
                    day = town_day + timedelta(days=rng.randint(3, 10))
                    line.transfers.append((_entry_id(rng), town_ref, ref, part, day))
                    line.spends += _spends(rng, community, part, day, today, uses, vouchers)
            lines.append(line)
    spent = [(line, s) for line in lines for s in line.spends if s.on < today]
    if spent:
        line, spend = spent[rng.randrange(len(spent))]
        line.reversal = (spend.spend_id, spend.on + timedelta(days=1))
    line = lines[rng.randrange(len(lines))]
    line.give_back = (_entry_id(rng), line.amount // 20 // 10_000 * 10_000, today)  # 5% of the grant, on today
    return lines


def _spends(
    rng: random.Random,
    community: _Community,
    budget: int,
    received: date,
    today: date,
    uses: tuple[str, ...],
    vouchers: dict[tuple[str, int], int],
) -> list[_Spend]:
    """Two or three spends of a community from what it received, each paying for some of its records."""
    records = sorted(
        (r for r in community.records if not r.duplicate and received <= r.occurred_at.date() <= today),
        key=lambda r: (r.occurred_at, r.record_id),
    )
    found: list[_Spend] = []
    left = budget * 3 // 4  # at most three quarters of what it received is spent in the window
    for _ in range(rng.randint(2, 3)):
        if not records or left < 50_000:
            break
        linked = rng.sample(records, min(len(records), rng.randint(1, 3)))
        on = max(r.occurred_at.date() for r in linked)
        amount = min(left, _yuan(rng, 1000, 6000))
        year = on.year
        vouchers[(community.code, year)] += 1
        number = f"记-{year}-{vouchers[(community.code, year)]:03d}"
        found.append(
            _Spend(
                spend_id=_entry_id(rng),
                community=community.code,
                amount=amount,
                on=on,
                purpose=rng.choice(uses),
                voucher=number,
                payee=_payee(rng),
                records=sorted(r.record_id for r in linked),
            )
        )
        left -= amount
    return found


def save_funds(service: LedgerService, lines: list[_LinePlan], actor: str) -> FundsSummary:
    """Build the lines' aggregates with every planned event and save them in one transaction."""
    keys = service.key_session()
    aggregates: list[Any] = []
    summary = FundsSummary()
    for plan in lines:
        line = FundingLine.allocate(
            department=plan.department,
            document=plan.document,
            purpose=plan.purpose,
            amount=plan.amount,
            unit=UnitRef("county", county=plan.county),
            on=plan.on,
            actor=actor,
        )
        # Every entry of the line in the order of its day (a transfer before a spend of the same day).
        entries: list[tuple[date, int, Any]] = [(t[4], 0, t) for t in plan.transfers]
        entries += [(s.on, 1, s) for s in plan.spends]
        if plan.reversal is not None:
            entries.append((plan.reversal[1], 2, plan.reversal))
        if plan.give_back is not None:
            entries.append((plan.give_back[2], 3, plan.give_back))
        vouchers = []
        for _day, kind, entry in sorted(entries, key=lambda e: (e[0], e[1])):
            if kind == 0:
                entry_id, source, target, amount, on = entry
                line.transfer(
                    transfer_id=entry_id, from_unit=source, to_unit=target, amount=amount, on=on, note=None, actor=actor
                )
                summary.transfers += 1
            elif kind == 1:
                where = payee_binding(f"community:{entry.community}", entry.spend_id, entry.on.isoformat())
                sealed = _seal(where, keys.get_or_create(where.key_id), entry.payee)
                line.spend(
                    spend_id=entry.spend_id,
                    community=entry.community,
                    amount=entry.amount,
                    on=entry.on,
                    purpose=entry.purpose,
                    voucher=entry.voucher,
                    payee=sealed,
                    records=entry.records,
                    actor=actor,
                )
                vouchers.append(
                    Voucher.claim(
                        community=entry.community,
                        on=entry.on,
                        voucher=entry.voucher,
                        line=line.id,
                        spend_id=entry.spend_id,
                        actor=actor,
                    )
                )
                summary.spends += 1
            elif kind == 2:
                spend_id, on = entry
                line.reverse(spend_id=spend_id, on=on, reason=REVERSAL_REASON, actor=actor)
                summary.reversals += 1
            else:
                entry_id, amount, on = entry
                line.return_unspent(
                    return_id=entry_id,
                    unit=UnitRef("county", county=plan.county),
                    amount=amount,
                    on=on,
                    reason=RETURN_REASON,
                    actor=actor,
                )
                summary.returns += 1
        aggregates += [line, *vouchers]
        summary.lines += 1
    service.app.save(*aggregates, data_keys=keys.pending)
    return summary


def _seal(where: Any, data_key: bytes, text: str) -> dict[str, Any]:
    from infra import crypto

    return crypto.seal(where, data_key, text)


# ---- the city's 资金台账, by department (from the aggregates; `taizhang demo` prints `funds ledger`'s) --
def city_summary(lines: list[FundingLine]) -> list[dict[str, Any]]:
    """Per department: allocated, spent, reversed, returned, the balance left anywhere in the city,
    and 执行率 = net spent ÷ allocated (None when nothing was allocated); amounts in fen."""
    by: dict[str, dict[str, Any]] = {}
    for line in lines:
        row = by.setdefault(
            line.department,
            {"department": line.department, "lines": 0, **dict.fromkeys((ALLOCATED, SPENT, REVERSED, RETURNED), 0)},
        )
        row["lines"] += 1
        for unit in line.units():
            totals = line.totals(unit)
            for kind in (ALLOCATED, SPENT, REVERSED, RETURNED):
                row[kind] += totals[kind]
            assert totals[RECEIVED] >= 0 and totals[PASSED_DOWN] >= 0
    rows = []
    for department in sorted(by, key=lambda d: list(DEPARTMENTS).index(d) if d in DEPARTMENTS else len(DEPARTMENTS)):
        row = by[department]
        row["balance"] = row[ALLOCATED] - row[RETURNED] - row[SPENT] + row[REVERSED]
        net = row[SPENT] - row[REVERSED]
        row["execution_rate"] = round(net / row[ALLOCATED], 4) if row[ALLOCATED] else None
        rows.append(row)
    return rows


def stored_lines(service: LedgerService) -> list[FundingLine]:
    """Every funding line of the store (the demo's: a store the demo filled holds only those)."""
    ids = []
    start = 1
    while True:
        batch = service.app.recorder.select_notifications(start, 1000, topics=[ALLOCATED_TOPIC])
        if not batch:
            break
        ids += [n.originator_id for n in batch]
        start = batch[-1].id + 1
    return [service.app.repository.get(i) for i in ids]


ALLOCATED_TOPIC = FundingLine.Allocated.TOPIC
