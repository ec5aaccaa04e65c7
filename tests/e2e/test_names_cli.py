"""Residents and providers by name (issue 13, point 3), end to end on SQLite and PostgreSQL.

A `--resident`/`--provider` value or an import cell that is not a code of the community
is matched against the names of its ACTIVE residents (providers): one match gives the
code; several are refused listing their codes; none is refused with the nearest names.
Resident names are decrypted in memory (never stored in clear, not even in the access
log); a departed or erased resident is no candidate; without the key file a resident
name is refused with a message that says so. Each lookup that reveals codes is logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.e2e.conftest import COMMUNITY, Cli, error_line, establish_args, store_counts, write_csv
from tests.e2e.test_access import Acl, acl  # noqa: F401 (the module's store with actors)

AT = "2026-03-05 09:30"


def people(cli: Cli) -> None:
    """HZ-001: R1 and R4 both 张秀英, R2 王小明, R3 赵大爷 (departed), R5 `王 芳`; P1 李建国, P2 陈志强."""
    cli.ok(*establish_args(COMMUNITY))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    cli.ok("resident", "enroll", "HZ-001", "R2", "--name", "王小明")
    cli.ok("resident", "enroll", "HZ-001", "R3", "--name", "赵大爷")
    cli.ok("resident", "depart", "HZ-001", "R3", "--reason", "moved", "--on", "2026-02-01")
    cli.ok("resident", "enroll", "HZ-001", "R4", "--name", "张秀英")
    cli.ok("resident", "enroll", "HZ-001", "R5", "--name", "王 芳")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    cli.ok("provider", "register", "HZ-001", "P2", "--name", "陈志强", "--role", "volunteer")
    cli.ok("projections", "run")  # PostgreSQL: names are read from the views their workers keep


def record(cli: Cli, *extra: str, resident: str = "R2", provider: str = "P1", **kwargs: Any) -> Any:
    args = ["service", "record", "HZ-001", "--kind", "life_care", "--at", AT, "--minutes", "45"]
    return cli(*args, "--resident", resident, "--provider", provider, *extra, **kwargs)


def entries(cli: Cli) -> list[dict[str, Any]]:
    cli.ok("projections", "run")
    return orjson.loads(cli.ok("ledger", "entries", "--community", "HZ-001", "--format", "json").stdout)


def access(cli: Cli, resident: str) -> list[dict[str, Any]]:
    """The access-log entries of name lookups that revealed `resident` (not of the ledger reads)."""
    found = orjson.loads(cli.ok("audit", "access", "--resident", f"HZ-001/{resident}", "--format", "json").stdout)
    return [e for e in found if e["command"] in ("service record", "service correct", "import")]


def test_a_unique_name_records_its_code_and_the_lookup_is_logged_without_the_name(store: Cli) -> None:
    people(store)
    result = record(store, "--format", "json", resident="王小明", provider="李建国")
    assert result.exit_code == 0, result.output
    [entry] = entries(store)
    assert entry["residents"] == ["R2"] and entry["providers"] == ["P1"]
    [logged] = access(store, "R2")
    assert logged["command"] == "service record"
    assert "--resident=R2" in logged["detail"] and "王小明" not in logged["detail"]


def test_a_name_written_with_spaces_or_full_width_matches(store: Cli) -> None:
    people(store)
    assert record(store, resident="王芳", provider="李 建国").exit_code == 0
    assert record(store, "--minutes", "30", resident="王  芳").exit_code == 0
    assert {tuple(e["residents"]) for e in entries(store)} == {("R5",)}


def test_an_ambiguous_name_is_refused_listing_both_codes_and_writes_nothing(store: Cli) -> None:
    people(store)
    before = store_counts(store.url)
    line = error_line(record(store, resident="张秀英"), 1, "张秀英", "R1, R4")
    assert "give one of these codes" in line
    assert store_counts(store.url) == before
    assert [e["command"] for e in access(store, "R1")] == ["service record"]  # the codes it revealed
    zh = error_line(record(store, resident="张秀英", lang="zh"), 1, "R1, R4", prefix="错误：")
    assert "2 名在册服务对象" in zh


def test_an_unknown_name_is_refused_with_the_nearest_names(store: Cli) -> None:
    people(store)
    error_line(record(store, resident="王晓明"), 1, "王晓明", "nearest names: 王小明 (R2)")
    line = error_line(record(store, resident="R99"), 1, "R99", "neither a code nor")
    assert "nearest" not in line
    error_line(record(store, provider="李健国"), 1, "provider 李健国", "李建国 (P1)")


def test_a_departed_residents_name_is_no_candidate(store: Cli) -> None:
    people(store)
    line = error_line(record(store, resident="赵大爷"), 1, "赵大爷")
    assert "R3" not in line  # not matched, and not offered among the nearest names
    error_line(record(store, resident="R3"), 1, "R3", "departed")  # its code still meets the ledger's rule


def test_service_correct_takes_names(store: Cli) -> None:
    people(store)
    record_id = orjson.loads(record(store, "--format", "json").stdout)["record_id"]
    store.ok(
        "service", "correct", "HZ-001", record_id, "--resident", "王小明", "--resident", "王芳", "--reason", "补录"
    )
    [entry] = entries(store)
    assert sorted(entry["residents"]) == ["R2", "R5"]


def test_without_the_key_file_a_resident_name_is_refused_and_codes_still_work(store: Cli, tmp_path: Path) -> None:
    people(store)
    nokey = tmp_path / "nowhere" / "taizhang.key"
    line = error_line(record(store, resident="王小明", key=nokey), 1, "王小明", "key file")
    assert "TAIZHANG_KEY_FILE" in line
    # Provider names are kept in clear: they need no key.
    assert record(store, resident="R2", provider="李建国", key=nokey).exit_code == 0


def test_an_erased_residents_name_no_longer_resolves(store: Cli) -> None:
    people(store)
    store.ok("resident", "erase", "HZ-001", "R2", "--reason", "本人申请删除")
    store.ok("projections", "run")
    line = error_line(record(store, resident="王小明"), 1, "王小明", "neither a code nor")
    assert "R2" not in line


def test_a_sheet_with_names_imports_and_imports_again_as_codes_adding_nothing(store: Cli, tmp_path: Path) -> None:
    people(store)
    header = ["社区", "服务类型", "服务对象", "服务人员", "服务时间", "时长(分钟)"]
    named = write_csv(tmp_path / "named.csv", [
        header,
        ["HZ-001", "生活照料", "王小明", "李建国", "2026-03-06 09:30", "30"],
        ["HZ-001", "生活照料", "王  芳；R1", "陈志强", "2026-03-06 10:30", "30"],
        ["HZ-001", "生活照料", "R4", "P1", "2026-03-06 11:30", "30"],
    ], bom=True)  # fmt: skip
    assert store.ok("import", "services", str(named)).stdout.strip().endswith("added 3, existing 0, skipped 0")
    rows = {e["occurred_at"][11:16]: (sorted(e["residents"]), e["providers"]) for e in entries(store)}
    assert rows == {"09:30": (["R2"], ["P1"]), "10:30": (["R1", "R5"], ["P2"]), "11:30": (["R4"], ["P1"])}
    # The record ids come from the codes: the same sheet with codes is the same records.
    coded = write_csv(tmp_path / "coded.csv", [
        header,
        ["HZ-001", "生活照料", "R2", "P1", "2026-03-06 09:30", "30"],
        ["HZ-001", "生活照料", "R5;R1", "P2", "2026-03-06 10:30", "30"],
    ])  # fmt: skip
    assert store.ok("import", "services", str(coded)).stdout.strip().endswith("added 0, existing 2, skipped 0")
    logged = access(store, "R5")
    assert [e["command"] for e in logged] == ["import"]
    assert "王" not in logged[0]["detail"]


def test_a_sheets_unresolved_names_are_row_refusals(store: Cli, tmp_path: Path) -> None:
    people(store)
    sheet = write_csv(tmp_path / "bad.csv", [
        ["社区", "服务类型", "服务对象", "服务人员", "服务时间", "时长(分钟)"],
        ["HZ-001", "生活照料", "张秀英", "P1", "2026-03-06 09:30", "30"],
        ["HZ-001", "生活照料", "王晓明", "P1", "2026-03-06 10:30", "30"],
        ["HZ-001", "生活照料", "R2", "P1", "2026-03-06 11:30", "30"],
    ])  # fmt: skip
    before = store_counts(store.url)
    result = store("import", "services", str(sheet))
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("row 2: residents: resident 张秀英") and "R1, R4" in lines[0]
    assert lines[1].startswith("row 3: residents: resident 王晓明") and "王小明 (R2)" in lines[1]
    assert store_counts(store.url) == before
    skipped = store("import", "services", str(sheet), "--skip-invalid")
    assert skipped.exit_code == 0 and skipped.stdout.strip().endswith("added 1, existing 0, skipped 2")


# ---- an attack: probing the names of a community outside one's scope ---------------------------------
def test_a_clerk_cannot_probe_names_outside_its_scope(acl: Acl, tmp_path: Path) -> None:  # noqa: F811
    """Access control judges the community before any name is read: a clerk of HZ-001 who types
    a name for QT-2 learns nothing (no code, no nearest name) and no lookup is logged."""
    cli = acl.cli
    assert record(cli, resident="张秀英", provider="李建国", actor="clerk-c1").exit_code == 0  # its own community
    probe = ["service", "record", "QT-2", "--kind", "life_care", "--at", AT, "--minutes", "45"]
    line = error_line(cli(*probe, "--resident", "张秀英", "--provider", "P1", actor="clerk-c1"), 1, "permission denied")
    assert "R1" not in line
    sheet = write_csv(tmp_path / "probe.csv", [
        ["社区", "服务类型", "服务对象", "服务人员", "服务时间", "时长(分钟)"],
        ["QT-2", "生活照料", "张秀英", "李建国", "2026-03-06 09:30", "30"],
    ])  # fmt: skip
    line = error_line(cli("import", "services", str(sheet), actor="clerk-c1"), 1, "permission denied")
    assert "R1" not in line
    found = orjson.loads(
        cli.ok("audit", "access", "--resident", "QT-2/R1", "--format", "json", actor="aud-city").stdout
    )
    assert not [e for e in found if e["actor"] == "clerk-c1"]


def test_a_village_sheet_with_names_and_no_community_column_imports_with_community(store: Cli, tmp_path: Path) -> None:
    """The clerk's own sheet: 序号, 服务日期 + 服务时间, 服务对象 and 服务人 by name, no 社区 column."""
    people(store)
    sheet = write_csv(tmp_path / "village.csv", [
        ["序号", "服务日期", "服务时间", "服务类型", "服务对象", "服务人", "时长（分钟）"],
        ["1", "2026-03-06", "09:30", "生活照料", "王小明、王 芳", "李建国", "30"],
        ["2", "2026-03-06", "10:30", "生活照料", "R4", "陈志强", "30"],
    ])  # fmt: skip
    out = store.ok("import", "services", str(sheet), "--community", "HZ-001").stdout
    assert "added 2" in out
    rows = {e["occurred_at"][11:16]: (sorted(e["residents"]), e["providers"]) for e in entries(store)}
    assert rows == {"09:30": (["R2", "R5"], ["P1"]), "10:30": (["R4"], ["P2"])}


def test_malformed_cells_are_judged_as_without_names(store: Cli, tmp_path: Path) -> None:
    """A row with an unknown name AND a malformed cell is malformed (exit 2, nothing read by name
    decides it); an unknown name written with a space is a refused name, not a malformed code."""
    people(store)
    header = ["社区", "服务类型", "服务对象", "服务人员", "服务时间", "时长(分钟)"]
    both = write_csv(tmp_path / "both.csv", [
        header,
        ["HZ-001", "生活照料", "王晓明", "P1", "2026-03-06 09:30", "abc"],
        ["HZ-001", "生活照料", "王 晓明", "P1", "2026-03-06 10:30", "30"],
    ])  # fmt: skip
    result = store("import", "services", str(both))
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("row 2: minutes: ")
    assert lines[1].startswith("row 3: residents: resident 王 晓明 is neither a code nor") and "王小明 (R2)" in lines[1]
    assert len(lines) == 3


def test_a_resident_enrolled_since_the_views_were_last_updated_is_found_by_name(store: Cli) -> None:
    """PostgreSQL with no projection worker: the views lag the log, the names come from the log."""
    people(store)
    store.ok("resident", "enroll", "HZ-001", "R6", "--name", "黄桂兰")
    store.ok("provider", "register", "HZ-001", "P3", "--name", "覃海燕", "--role", "volunteer")
    store.ok("resident", "depart", "HZ-001", "R2", "--reason", "moved", "--on", "2026-03-01")
    assert record(store, resident="黄桂兰", provider="覃海燕").exit_code == 0
    error_line(record(store, resident="王小明"), 1, "王小明", "neither a code nor")  # departed since
    assert [(e["residents"], e["providers"]) for e in entries(store)] == [(["R6"], ["P3"])]
