"""One clock for people, through the CLI on both stores: local times everywhere, a printed
time read back by --as-of, and `late` as the ledger defines it.

Nothing here reads the wall clock: recorded times come from the database as the commands
run, and each test reads them back from what the CLI printed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.e2e.conftest import COMMUNITY, Cli, establish_args, record_args
from tests.e2e.printed import read_printed

pytestmark = pytest.mark.clock  # recorded times from the database clock, read back

LA = "America/Los_Angeles"  # a zone with daylight saving, far from the machine's and from UTC


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, f"{text!r} has no offset"
    return moment


def in_zone(text: str, zone: str) -> bool:
    """Whether an ISO time carries the offset `zone` has at that instant."""
    moment = instant(text)
    return moment.utcoffset() == moment.astimezone(ZoneInfo(zone)).utcoffset()


def filled(cli: Cli, *init: str) -> str:
    cli.ok("init", *init)
    cli.ok(*establish_args(COMMUNITY))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    rid = str(uuid.uuid4())
    cli.ok(*record_args("HZ-001", "--record-id", rid))
    cli.ok("service", "correct", "HZ-001", rid, "--minutes", "60", "--reason", "时长有误")
    cli.ok("projections", "run")
    return rid


def test_every_command_shows_the_stores_zone(run: Cli) -> None:
    rid = filled(run, "--tz", LA)
    history = run.json("audit", "history", "HZ-001")
    assert all(in_zone(r["recorded_at"], LA) for r in history)
    (entry,) = run.json("ledger", "entries")
    assert entry["record_id"] == rid
    assert in_zone(entry["recorded_at"], LA) and in_zone(entry["revised_at"], LA)
    assert entry["occurred_at"] == "2026-03-05T09:30:00-08:00"  # typed in the store's zone, shown in it
    assert run.ok("ledger", "entries").stdout.splitlines()[2].startswith("2026-03-05 09:30:00  HZ-001")
    access = run.json("audit", "access")
    assert access and all(in_zone(r["at"], LA) for r in access)
    # The same moment in every form: JSON to the millisecond, a table to the second.
    table = run.ok("audit", "history", "HZ-001").stdout.splitlines()[2]
    assert instant(history[0]["recorded_at"]).strftime("%Y-%m-%d %H:%M:%S") in table


def test_the_issue_as_a_new_user_tried_it(run: Cli) -> None:
    """audit history showed UTC while --as-of read Beijing time: every printed time now reads back."""
    filled(run)
    rows = run.json("audit", "history", "HZ-001")
    last = rows[-1]["recorded_at"]
    assert last.endswith("+08:00")
    assert run.json("audit", "history", "HZ-001", "--as-of", last) == rows
    assert run.json("audit", "history", "HZ-001", "--as-of", last[:10]) == rows  # the local date: its end
    shown = instant(last).strftime("%Y-%m-%d %H:%M:%S")  # as a table prints it
    assert run.json("audit", "history", "HZ-001", "--as-of", shown) == rows
    utc = instant(last).astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert run.json("audit", "history", "HZ-001", "--as-of", utc) == rows  # UTC with its Z still reads right


def test_the_xlsx_has_date_cells_and_a_legend(run: Cli, tmp_path: Path) -> None:
    filled(run)
    (entry,) = run.json("ledger", "entries")
    for lang, words in (("zh", ("说明", "Asia/Shanghai", "逾期登记", "登记日期")), ("en", ("Notes", "Asia/Shanghai", "Late", "7 days"))):
        out = tmp_path / f"ledger-{lang}.xlsx"
        run.ok("ledger", "entries", "--format", "xlsx", "--output", str(out), lang=lang)
        printed = read_printed(out)
        data = printed.data[0]
        recorded = data[printed.column("录入时间" if lang == "zh" else "recorded at")]
        assert isinstance(recorded, datetime) and recorded.tzinfo is None
        assert recorded == instant(entry["recorded_at"]).replace(tzinfo=None)  # local wall time, to the millisecond
        assert isinstance(data[printed.column("服务时间" if lang == "zh" else "occurred at")], datetime)
        (legend,) = [line for line in printed.below if words[0] in line]
        assert all(word in legend for word in words), legend
    # The legend sits below the totals, so the sheet still imports back adding nothing.
    result = run.json("import", "services", str(tmp_path / "ledger-zh.xlsx"))
    assert {key: result[key] for key in ("added", "existing", "skipped")} == {"added": 0, "existing": 1, "skipped": 0}
    assert result["footer_rows_skipped"] == 3  # the totals, the legend and the signature lines, counted
    assert "录入时间" in result["ignored_columns"]  # what the ledger derives is named, not imported


def test_a_back_filled_import_with_its_entry_dates_is_not_late(run: Cli, tmp_path: Path) -> None:
    filled(run)
    sheet = tmp_path / "三月台账.csv"
    sheet.write_text(
        "社区,服务类型,服务对象,服务人员,服务时间,时长(分钟),登记日期\n"
        "HZ-001,生活照料,R1,P1,2026-03-10 09:00,30,2026-03-12\n"  # entered two days after: on time
        "HZ-001,生活照料,R1,P1,2026-03-11 09:00,30,2026-03-25\n"  # entered two weeks after: late
        "HZ-001,生活照料,R1,P1,2026-03-12 09:00,30,\n",  # no entry date: recorded now, months after: late
        encoding="utf-8",
    )
    assert run.json("import", "services", str(sheet))["added"] == 3
    run.ok("projections", "run")
    late = {e["occurred_at"][:10]: e["late"] for e in run.json("ledger", "entries")}
    assert late == {"2026-03-05": True, "2026-03-10": False, "2026-03-11": True, "2026-03-12": True}


def test_late_is_explained_where_people_look() -> None:
    from click.testing import CliRunner

    from commands.cli import cli

    help_text = CliRunner().invoke(cli, ["ledger", "entries", "-h"]).output
    assert "late" in help_text and "7 days" in help_text and "登记日期" in help_text
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Times: one clock for people") :]
    assert "end of the last unit it" in section and "--as-of '2026-12-03 01:08:09'" in section
    assert "`late` (逾期登记)" in readme


def test_checkpoints_and_bundles_show_sealed_and_recorded_times_in_local_time(run: Cli, tmp_path: Path) -> None:
    rid = filled(run, "--tz", LA)
    office, checkpoint, bundle = tmp_path / "office.key", tmp_path / "m.checkpoint", tmp_path / "r.bundle"
    run.ok("audit", "keygen", "--key-file", str(office))
    run.ok("audit", "seal", "--key-file", str(office), "--output", str(checkpoint))
    sealed = run.json("audit", "verify", "--checkpoint", str(checkpoint), "--public-key", f"{office}.pub")
    assert in_zone(sealed["sealed_at"], LA)  # the store's zone; the signed checkpoint keeps UTC
    assert orjson.loads(checkpoint.read_bytes())["sealed_at"].endswith("Z")
    run.ok("audit", "prove", rid, "--checkpoint", str(checkpoint), "--output", str(bundle))
    # No store offline: TAIZHANG_TZ decides (Asia/Shanghai unless set).
    for zone in ("Asia/Shanghai", "Europe/London"):
        env = {"TAIZHANG_TZ": zone} if zone != "Asia/Shanghai" else {}
        checked = run.json("audit", "check", str(bundle), "--public-key", f"{office}.pub", env=env)
        assert in_zone(checked["sealed_at"], zone) and all(in_zone(e["recorded_at"], zone) for e in checked["events"])
        history = {r["position"]: instant(r["recorded_at"]) for r in run.json("audit", "history", "HZ-001")}
        assert all(instant(e["recorded_at"]) == history[e["position"]] for e in checked["events"])  # the same instants
