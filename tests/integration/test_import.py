"""Importing the spreadsheets clerks keep, end to end on a real store (DESIGN §5 import rules).

Files are written here as a clerk's would be: CSV (with and without BOM) and XLSX with
real date cells, English or Chinese headers, title rows above the header, a 序号 column,
a 合计 row at the foot, lists separated by `;`, `；` or `、`, dates as `2026-03-05`,
`2026/3/5` or `2026年3月5日`.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from commands.app import LedgerService
from commands.importer import ImportRefused, ImportResult, import_file
from domain.ids import community_id, imported_record_id
from domain.vocab import CATEGORIES, GENDERS, KINDS, PLACES, ROLES
from tests import helpers
from tests.integration.test_service import commit_rows, correct, payloads, recorded_ids, sql, store_counts, void

SHANGHAI = ZoneInfo("Asia/Shanghai")
TITLE_ROWS = [["贺州市八步区新型农村社区服务信息台账"], ["填报单位：贺街镇", None, None, "填报日期：2026年3月"], []]
FIRST_DATA_ROW = len(TITLE_ROWS) + 2  # the header stands right below the title rows

HEADERS = {
    "communities": {
        "en": ["code", "name", "county", "township", "village", "natural_villages", "established_on"],
        "zh": ["编码", "名称", "县区", "乡镇", "行政村", "自然村", "成立日期"],
    },
    "residents": {
        "en": ["community", "code", "name", "birth_date", "gender", "categories", "grid", "household", "enrolled_on"],
        "zh": ["社区", "编号", "姓名", "出生日期", "性别", "类别", "网格", "户号", "入册日期"],
    },
    "providers": {
        "en": ["community", "code", "name", "role", "team", "registered_on"],
        "zh": ["社区", "编号", "姓名", "角色", "队伍", "登记日期"],
    },
    "services": {
        "en": ["community", "record_id", "kind", "residents", "providers", "occurred_at", "minutes", "place", "note",
               "entered_on"],  # fmt: skip
        "zh": ["社区", "记录编号", "服务类型", "服务对象", "服务人员", "服务时间", "时长(分钟)", "地点", "备注", "登记日期"],
    },
}
VOCAB = {"kind": KINDS, "role": ROLES, "gender": GENDERS, "place": PLACES, "categories": CATEGORIES}
SEPARATORS = [";", "；", "、"]

C1, C2 = "HZ-BB-01", "HZ-BB-02"
U1, U2 = "6f1c1d56-3f0a-4c8e-9f7e-0d6a1b2c3d41", "6f1c1d56-3f0a-4c8e-9f7e-0d6a1b2c3d42"

# The logical content of a clerk's four files; each test renders it in a format and language.
DATA: dict[str, list[dict[str, Any]]] = {
    "communities": [
        {"code": C1, "name": "石门新型农村社区", "county": "八步区", "township": "贺街镇", "village": "石门村",
         "natural_villages": ["大岭", "新塘", "老屋", "石桥"], "established_on": date(2026, 1, 5)},
        {"code": C2, "name": "河东新型农村社区", "county": "八步区", "township": "贺街镇", "village": "河东村",
         "natural_villages": ["河东"], "established_on": date(2026, 1, 5)},
    ],
    "residents": [
        {"community": C1, "code": "R1", "name": "黄桂兰", "birth_date": date(1940, 2, 3), "gender": "female",
         "categories": ["elderly_living_alone", "left_behind_elderly"], "grid": "第1网格", "household": "1001",
         "enrolled_on": date(2026, 1, 5)},
        {"community": C1, "code": "R2", "name": "李小宝", "birth_date": date(2015, 6, 1), "gender": "male",
         "categories": ["left_behind_child"], "grid": "第1网格", "household": "1002", "enrolled_on": date(2026, 1, 5)},
        {"community": C2, "code": "R1", "name": "陈月娥", "birth_date": date(1950, 12, 31), "gender": "female",
         "categories": ["dibao", "hardship", "monitored"], "grid": "第2网格", "household": "2001",
         "enrolled_on": date(2026, 1, 5)},
    ],
    "providers": [
        {"community": C1, "code": "P1", "name": "莫志明", "role": "party_member", "team": "党员先锋队",
         "registered_on": date(2026, 1, 5)},
        {"community": C2, "code": "P1", "name": "覃丽", "role": "volunteer", "team": None,
         "registered_on": date(2026, 1, 5)},
    ],
    "services": [
        {"community": C1, "record_id": U1, "kind": "life_care", "residents": ["R1", "R2"], "providers": ["P1"],
         "occurred_at": datetime(2026, 3, 5, 9, 30), "minutes": 30, "place": "home_visit", "note": "送米送油，检查燃气",
         "entered_on": date(2026, 3, 6)},
        {"community": C1, "record_id": None, "kind": "counseling", "residents": ["R2"], "providers": ["P1"],
         "occurred_at": datetime(2026, 3, 5, 10, 0), "minutes": 45, "place": "service_center", "note": None,
         "entered_on": None},
        {"community": C2, "record_id": None, "kind": "emergency_aid", "residents": ["R1"], "providers": ["P1"],
         "occurred_at": datetime(2026, 3, 5, 14, 15), "minutes": 60, "place": "happiness_home", "note": "雨天查看房屋",
         "entered_on": date(2026, 3, 5)},
        {"community": C2, "record_id": U2, "kind": "family_care", "residents": ["R1"], "providers": ["P1"],
         "occurred_at": datetime(2026, 3, 5, 16, 0), "minutes": 20, "place": "other", "note": None,
         "entered_on": None},
    ],
}


# ---- writing a clerk's file ----------------------------------------------------------------
def render_date(value: date | datetime, index: int, fmt: str) -> Any:
    """The same day in another form on every row; XLSX files also get real date cells."""
    if fmt == "xlsx" and index % 4 == 3:
        return value
    day = value.date() if isinstance(value, datetime) else value
    text = [
        f"{day.year:04d}-{day.month:02d}-{day.day:02d}",
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        f"{day.year:04d}-{day.month:02d}-{day.day:02d}",
    ][index % 4]
    if isinstance(value, datetime):
        text += f" {value.hour}:{value.minute:02d}" if index % 2 else f" {value.hour:02d}:{value.minute:02d}"
    return text


def render(kind: str, row: dict[str, Any], index: int, fmt: str, lang: str) -> list[Any]:
    cells: list[Any] = [index + 1]  # 序号
    for column in HEADERS[kind]["en"]:
        value = row.get(column)
        if value is None:
            cells.append(None)
        elif isinstance(value, (date, datetime)):
            cells.append(render_date(value, index, fmt))
        elif isinstance(value, list):
            items = [_word(column, item, lang, index) for item in value]
            cells.append(SEPARATORS[index % 3].join(items))
        elif column == "household" and fmt == "xlsx":
            cells.append(int(value))  # Excel keeps a household number as a number
        elif column == "minutes" and fmt == "xlsx":
            cells.append(value)
        else:
            cells.append(_word(column, value, lang, index))
    return cells


def _word(column: str, value: Any, lang: str, index: int) -> Any:
    vocabulary = VOCAB.get(column)
    if vocabulary is None or value not in vocabulary:  # an invalid value goes in as the clerk typed it
        return value
    if lang == "zh":
        return vocabulary.label(value, "zh")
    return value.replace("_", "-") if index % 2 else value


def write_file(path: Path, rows: list[list[Any]]) -> Path:
    if path.suffix == ".xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        for row in rows:
            sheet.append(row)
        book.save(path)
    else:
        with path.open("w", encoding="utf-8-sig" if "zh" in path.name else "utf-8", newline="") as f:
            csv.writer(f).writerows([["" if c is None else c for c in row] for row in rows])
    return path


def clerk_file(
    tmp_path: Path, kind: str, rows: list[dict[str, Any]], fmt: str = "csv", lang: str = "en"
) -> Path:
    """A clerk's spreadsheet: title rows, a 序号 column, the header, the rows, a 合计 row."""
    header = ["序号" if lang == "zh" else "No.", *HEADERS[kind][lang]]
    if fmt == "xlsx" and lang == "zh":
        header = [h.replace("(", "（").replace(")", "）") for h in header]  # Excel users type full-width
    body = [render(kind, row, i, fmt, lang) for i, row in enumerate(rows)]
    footer = ["合计", f"{len(rows)}条"]
    table = [*TITLE_ROWS, header, *body, footer]
    return write_file(tmp_path / f"{kind}-{lang}-{uuid.uuid4().hex[:6]}.{fmt}", table)


def import_new(service: LedgerService, kind: str, path: Path, **kwargs: Any) -> ImportResult:
    """Import, and check that all new events (if any) went in as ONE commit row."""
    before_rows = commit_rows(service.store.url)
    before = {n.id for n, _p in payloads(service)}
    result = import_file(service, kind, path, "clerk", **kwargs)
    new_rows = commit_rows(service.store.url)[len(before_rows) :]
    new = [n.id for n, _p in payloads(service) if n.id not in before]
    if new:
        assert [(first, last) for first, last, _at in new_rows] == [(new[0], new[-1])], "one import, one commit"
    else:
        assert new_rows == []
    return result


def events_of(service: LedgerService, topic: str) -> list[dict[str, Any]]:
    return [p for n, p in payloads(service) if n.topic == f"taizhang:Community.{topic}"]


def local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=SHANGHAI)


# ---- the four kinds --------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_clerks_four_files_import_and_import_again_as_nothing(
    service: LedgerService, tmp_path: Path, fmt: str, lang: str
) -> None:
    files = {kind: clerk_file(tmp_path, kind, rows, fmt, lang) for kind, rows in DATA.items()}
    for kind, path in files.items():
        result = import_new(service, kind, path)
        assert (result.counts(), result.problems) == ({"added": len(DATA[kind]), "existing": 0, "skipped": 0}, [])

    for row in DATA["communities"]:
        community = service.get_community(row["code"])
        assert {
            "code": community.code, "name": community.name, "county": community.county,
            "township": community.township, "village": community.village,
            "natural_villages": community.natural_villages, "established_on": community.established_on,
        } == {**row, "established_on": row["established_on"].isoformat()}  # fmt: skip

    home = {community_id(c): c for c in (row["code"] for row in DATA["communities"])}
    residents = {
        (p["code"], service.open_envelope(p["name"], where=helpers.where(home[n.originator_id], p, "name"))): p
        for n, p in payloads(service)
        if n.topic == "taizhang:Community.ResidentEnrolled"
    }
    assert len(residents) == 3
    for row in DATA["residents"]:
        stored = residents[(row["code"], row["name"])]
        place = helpers.where(row["community"], stored, "birth_date")
        assert service.open_envelope(stored["birth_date"], where=place) == row["birth_date"].isoformat()
        assert (stored["gender"], stored["categories"], stored["grid"], stored["household"], stored["enrolled_on"]) == (
            row["gender"], row["categories"], row["grid"], row["household"], row["enrolled_on"].isoformat(),
        )  # fmt: skip
        assert service.get_community(row["community"]).residents[row["code"]]["categories"] == row["categories"]

    providers = sorted(events_of(service, "ProviderRegistered"), key=lambda p: p["name"])
    assert [(p["name"], p["role"], p["team"], p["registered_on"]) for p in providers] == sorted(
        (r["name"], r["role"], r["team"], r["registered_on"].isoformat()) for r in DATA["providers"]
    )

    recorded = events_of(service, "ServiceRecorded")
    assert len(recorded) == 4
    by_content = {(p["kind"], p["minutes"]): p for p in recorded}
    for index, row in enumerate(DATA["services"]):
        stored = by_content[(row["kind"], row["minutes"])]
        expected_id = row["record_id"] or imported_record_id(
            community=row["community"], kind=row["kind"], residents=row["residents"], providers=row["providers"],
            occurred_at=local(row["occurred_at"]), minutes=row["minutes"], place=row["place"], index=0,
        )  # fmt: skip
        assert stored["record_id"] == expected_id, index
        same = ("residents", "providers", "place")
        assert [stored[c] for c in same] == [row[c] for c in same]
        assert datetime.fromisoformat(stored["occurred_at"]) == local(row["occurred_at"])
        assert stored["occurred_at"].endswith("+08:00")
        assert service.open_envelope(stored["note"], where=helpers.where(row["community"], stored, "note")) == row["note"]
        assert stored["entered_on"] == (row["entered_on"].isoformat() if row["entered_on"] else None)
        assert service.get_community(row["community"], [expected_id]).record_status(expected_id) == "active"

    before = store_counts(service)
    for kind, path in files.items():
        again = import_new(service, kind, path)
        assert again.counts() == {"added": 0, "existing": len(DATA[kind]), "skipped": 0}, kind
    assert store_counts(service) == before


def test_the_header_is_found_by_name_in_any_order_with_optional_columns_absent(
    service: LedgerService, tmp_path: Path
) -> None:
    code = helpers.small_community(service)
    path = write_file(
        tmp_path / "services.csv",
        [
            ["服务台账"],
            ["备注", "服务时长(分钟)", "服务时间", "服务人员", "服务对象", "服务类型", "社区"],
            ["", "15", "2026/3/5 8:05", "P2", "R1；R2", "心理抚慰", code],
            ["总计", "15"],
            ["", "99", "not even a date", "P9", "R9", "x", code],  # below the foot: never read, but counted
        ],
    )
    result = import_new(service, "services", path)
    assert result.counts() == {"added": 1, "existing": 0, "skipped": 0}
    assert (result.footer_rows, result.blank_rows, result.ignored_columns) == (2, 0, [])
    (stored,) = events_of(service, "ServiceRecorded")
    columns = ("kind", "residents", "providers", "minutes", "place", "note")
    assert [stored[c] for c in columns] == ["counseling", ["R1", "R2"], ["P2"], 15, None, None]


# ---- all or nothing ------------------------------------------------------------------------
GOOD = DATA["services"][1]  # a C1 row without record id
BAD_ROWS: dict[str, tuple[list[tuple[int, dict[str, Any], str]], int]] = {
    # case: ([(position among the rows, change, field named)], exit code)
    "minutes not a number": ([(1, {"minutes": "半小时"}, "minutes")], 2),
    "minutes out of range": ([(2, {"minutes": 1441}, "minutes")], 2),
    "date that does not exist": ([(0, {"occurred_at": "2026-02-30 09:00"}, "occurred_at")], 2),
    "time in the future": ([(3, {"occurred_at": "2099-01-01 09:00"}, "occurred_at")], 2),
    "unknown kind": ([(1, {"kind": "跳广场舞"}, "kind")], 2),
    "not a uuid": ([(1, {"record_id": "REC-0001"}, "record_id")], 2),
    "no resident": ([(2, {"residents": []}, "residents")], 2),
    "unknown resident": ([(1, {"residents": ["R1", "R9"]}, "residents")], 1),
    "unknown provider": ([(2, {"providers": ["P7"]}, "providers")], 1),
    "unknown community": ([(3, {"community": "HZ-NOPE"}, "community")], 1),
    "before the community existed": ([(0, {"occurred_at": datetime(2025, 12, 31, 9, 0)}, "occurred_at")], 1),
    "refused and malformed": ([(1, {"residents": ["R9"]}, "residents"), (3, {"minutes": 0}, "minutes")], 2),
    "two refused": ([(0, {"providers": ["P9"]}, "providers"), (2, {"community": "HZ-NOPE"}, "community")], 1),
}


def services_with_bad_rows(code: str, case: str) -> tuple[list[dict[str, Any]], dict[int, str], int]:
    changes, exit_code = BAD_ROWS[case]
    rows = [
        {**GOOD, "community": code, "minutes": 10 + i, "residents": ["R1"] if i % 2 else ["R2"]} for i in range(5)
    ]
    for position, change, _field in changes:
        rows[position] = {**rows[position], **change}
    return rows, {position: field for position, _change, field in changes}, exit_code


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_one_bad_row_refuses_the_whole_file_and_names_its_spreadsheet_row(
    service: LedgerService, tmp_path: Path, case: str
) -> None:
    fmt = ("csv", "xlsx")[list(BAD_ROWS).index(case) % 2]  # both formats, without doubling every case
    code = helpers.small_community(service)
    rows, bad, exit_code = services_with_bad_rows(code, case)
    path = clerk_file(tmp_path, "services", rows, fmt, "zh")
    before = store_counts(service)
    with pytest.raises(ImportRefused) as refused:
        import_file(service, "services", path, "clerk")
    assert refused.value.exit_code == exit_code
    problems = [str(p) for p in refused.value.result.problems]
    expected = [(FIRST_DATA_ROW + position, field) for position, field in sorted(bad.items())]
    assert [re.match(r"row (\d+): (\w+): \S", p).groups() for p in problems] == [  # type: ignore[union-attr]
        (str(row), field) for row, field in expected
    ], problems
    assert "nothing imported" in str(refused.value)
    assert store_counts(service) == before


@pytest.mark.parametrize("case", ["minutes not a number", "unknown resident", "refused and malformed", "two refused"])
def test_skip_invalid_keeps_the_good_rows_and_counts_the_skipped(
    service: LedgerService, tmp_path: Path, case: str
) -> None:
    code = helpers.small_community(service)
    rows, bad, _exit = services_with_bad_rows(code, case)
    path = clerk_file(tmp_path, "services", rows, "csv", "zh")
    result = import_new(service, "services", path, skip_invalid=True)
    good = len(rows) - len(bad)
    assert result.counts() == {"added": good, "existing": 0, "skipped": len(bad)}
    assert [p.row for p in result.problems] == [FIRST_DATA_ROW + position for position in sorted(bad)]
    assert sorted(p["minutes"] for p in events_of(service, "ServiceRecorded")) == sorted(
        r["minutes"] for i, r in enumerate(rows) if i not in bad
    )
    again = import_new(service, "services", path, skip_invalid=True)
    assert again.counts() == {"added": 0, "existing": good, "skipped": len(bad)}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_row_numbers_are_the_spreadsheets_despite_blank_rows_and_multi_line_cells(
    service: LedgerService, tmp_path: Path, fmt: str
) -> None:
    code = helpers.small_community(service)
    header = ["社区", "服务类型", "服务对象", "服务人员", "服务时间", "时长(分钟)", "备注"]
    path = write_file(
        tmp_path / f"services.{fmt}",
        [
            ["三月台账"],  # row 1
            header,  # row 2
            [code, "生活照料", "R1", "P1", "2026-03-05 09:00", 10, "第一行\n第二行\n第三行"],  # row 3, three lines
            [],  # row 4
            [code, "生活照料", "R1", "P1", "2026-03-05 10:00", "十分钟", None],  # row 5
            [code, "生活照料", "R8", "P1", "2026-03-05 11:00", 10, None],  # row 6
        ],
    )
    with pytest.raises(ImportRefused) as refused:
        import_file(service, "services", path, "clerk")
    problems = [str(p).split(": ")[:2] for p in refused.value.result.problems]
    assert problems == [["row 5", "minutes"], ["row 6", "residents"]]
    result = import_new(service, "services", path, skip_invalid=True)
    assert result.counts() == {"added": 1, "existing": 0, "skipped": 2}
    (stored,) = events_of(service, "ServiceRecorded")
    assert service.open_envelope(stored["note"], where=helpers.where(code, stored, "note")) == "第一行\n第二行\n第三行"


OTHER_KINDS: dict[str, tuple[str, dict[str, Any], str, int]] = {
    "community without a name": ("communities", {"name": None}, "name", 2),
    "community founded in the future": ("communities", {"established_on": date(2099, 1, 1)}, "established_on", 2),
    "resident with a bad gender": ("residents", {"gender": "unknown"}, "gender", 2),
    "resident with a bad category": ("residents", {"categories": ["rich"]}, "categories", 2),
    "resident born on a bad date": ("residents", {"birth_date": "1950-13-01"}, "birth_date", 2),
    "resident of an unknown community": ("residents", {"community": "HZ-NOPE"}, "community", 1),
    "provider with a bad role": ("providers", {"role": "boss"}, "role", 2),
    "provider of an unknown community": ("providers", {"community": "HZ-NOPE"}, "community", 1),
}


@pytest.mark.parametrize("case", list(OTHER_KINDS))
def test_the_other_kinds_are_all_or_nothing_too(service: LedgerService, tmp_path: Path, case: str) -> None:
    kind, change, field, exit_code = OTHER_KINDS[case]
    for prerequisite in ("communities", "residents", "providers"):
        if prerequisite == kind:
            break
        import_new(service, prerequisite, clerk_file(tmp_path, prerequisite, DATA[prerequisite]))
    rows = [{**row, "code": f"{row['code']}X"} for row in DATA[kind]]
    rows[1] = {**rows[1], **change}
    before = store_counts(service)
    with pytest.raises(ImportRefused) as refused:
        import_file(service, kind, clerk_file(tmp_path, kind, rows, "xlsx", "zh"), "clerk")
    assert refused.value.exit_code == exit_code
    assert [(p.row, p.field) for p in refused.value.result.problems] == [(FIRST_DATA_ROW + 1, field)]
    assert str(refused.value.result.problems[0]).startswith(f"row {FIRST_DATA_ROW + 1}: {field}: ")
    assert store_counts(service) == before


# ---- record ids ----------------------------------------------------------------------------
def frozen_record_id(community: str, kind: str, residents: list[str], providers: list[str], utc: str,
                     minutes: int, place: str | None, index: int) -> str:
    """DESIGN §3's rule written out independently of domain.ids (it is frozen like the format)."""
    canonical = json.dumps([community, kind, sorted(residents), sorted(providers), utc, minutes, place or "", index],
                           ensure_ascii=False, separators=(",", ":"))
    return str(uuid.uuid5(uuid.UUID("8c3e1d7a-6a4b-4f7e-a8f5-3b6a9f0c1d02"), canonical))


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_rows_without_an_id_get_their_content_id_and_identical_rows_their_index(
    service: LedgerService, tmp_path: Path, fmt: str
) -> None:
    code = helpers.small_community(service)
    same = {"community": code, "record_id": None, "kind": "life_care", "residents": ["R2", "R1"], "providers": ["P1"],
            "occurred_at": datetime(2026, 3, 5, 9, 30), "minutes": 30, "place": "home_visit", "note": None,
            "entered_on": None}
    other = {**same, "minutes": 31}
    rows = [same, other, {**same, "note": "第二次，备注不同也算相同内容"}]
    path = clerk_file(tmp_path, "services", rows, fmt, "en")
    assert import_new(service, "services", path).counts() == {"added": 3, "existing": 0, "skipped": 0}

    def expected(row: dict[str, Any], index: int) -> str:
        found = imported_record_id(community=code, kind="life_care", residents=row["residents"], providers=["P1"],
                                   occurred_at=local(row["occurred_at"]), minutes=row["minutes"], place="home_visit",
                                   index=index)
        assert found == frozen_record_id(code, "life_care", ["R1", "R2"], ["P1"], "2026-03-05T01:30:00Z",
                                         row["minutes"], "home_visit", index)
        return found

    ids = [expected(same, 0), expected(other, 0), expected(same, 1)]
    assert len(set(ids)) == 3
    assert recorded_ids(service) == dict.fromkeys(ids, 1)
    assert [p["record_id"] for p in events_of(service, "ServiceRecorded")] == ids
    assert sorted(r for (r,) in sql(service.store.url, "SELECT record_id FROM record_state")) == sorted(ids)

    before = store_counts(service)
    assert import_new(service, "services", path).counts() == {"added": 0, "existing": 3, "skipped": 0}
    assert store_counts(service) == before


def test_re_importing_after_corrections_and_voids_adds_nothing(service: LedgerService, tmp_path: Path) -> None:
    """The file still says what was first recorded: that is the same record, whatever happened since."""
    for kind in ("communities", "residents", "providers"):
        import_new(service, kind, clerk_file(tmp_path, kind, DATA[kind]))
    path = clerk_file(tmp_path, "services", DATA["services"], "xlsx", "zh")
    import_new(service, "services", path)
    row = DATA["services"][1]  # C1, no record id in the file
    voided = imported_record_id(
        community=C1, kind=row["kind"], residents=row["residents"], providers=row["providers"],
        occurred_at=local(row["occurred_at"]), minutes=row["minutes"], place=row["place"], index=0,
    )  # fmt: skip
    corrected = U1
    assert correct(service, C1, corrected, minutes=35, note="更正后的备注")["revision"] == 2
    void(service, C1, voided)
    before = store_counts(service)
    assert import_new(service, "services", path).counts() == {"added": 0, "existing": 4, "skipped": 0}
    assert store_counts(service) == before
    community = service.get_community(C1, [corrected, voided])
    assert (community.record_revision(corrected), community.record_status(voided)) == (2, "voided")


@pytest.mark.parametrize("where", ["earlier-in-the-file", "already-in-the-store"])
def test_a_record_id_used_in_two_communities_is_refused(service: LedgerService, tmp_path: Path, where: str) -> None:
    first = helpers.small_community(service)
    second = helpers.small_community(service)
    shared = str(uuid.uuid4())
    row = {**GOOD, "record_id": shared}
    rows = [{**row, "community": second, "minutes": 11}, {**GOOD, "community": second, "minutes": 12}]
    if where == "earlier-in-the-file":
        rows.insert(0, {**row, "community": first})
    else:
        helpers.record(service, first, shared)
    path = clerk_file(tmp_path, "services", rows, "csv", "zh")
    before = store_counts(service)
    with pytest.raises(ImportRefused) as refused:
        import_file(service, "services", path, "clerk")
    assert refused.value.exit_code == 1
    bad_row = FIRST_DATA_ROW + (1 if where == "earlier-in-the-file" else 0)
    assert [(p.row, p.field) for p in refused.value.result.problems] == [(bad_row, "record_id")]
    assert "another community" in refused.value.result.problems[0].problem
    assert store_counts(service) == before

    result = import_new(service, "services", path, skip_invalid=True)
    assert result.counts() == {"added": len(rows) - 1, "existing": 0, "skipped": 1}
    assert service.recorder.claims([shared]) == {shared: str(community_id(first))}
    assert shared not in service.get_community(second, [shared]).records


@pytest.mark.parametrize("where", ["earlier-in-the-file", "already-in-the-store"])
def test_a_record_id_reused_with_other_content_is_refused_and_with_the_same_content_is_existing(
    service: LedgerService, tmp_path: Path, where: str
) -> None:
    code = helpers.small_community(service)
    record_id = str(uuid.uuid4())
    row = {**GOOD, "community": code, "record_id": record_id, "note": "同一条记录"}
    rows = [row, {**row, "minutes": 99}, {**GOOD, "community": code, "minutes": 12}]
    if where == "earlier-in-the-file":
        rows.insert(1, row)  # the very same row twice: the second is the same record
    else:
        import_new(service, "services", clerk_file(tmp_path, "services", [row], "csv", "zh"))
    path = clerk_file(tmp_path, "services", rows, "csv", "zh")
    before = store_counts(service)
    with pytest.raises(ImportRefused) as refused:
        import_file(service, "services", path, "clerk")
    assert refused.value.exit_code == 1
    bad_row = FIRST_DATA_ROW + (2 if where == "earlier-in-the-file" else 1)
    assert [(p.row, p.field) for p in refused.value.result.problems] == [(bad_row, "record_id")]
    assert "other content" in refused.value.result.problems[0].problem
    assert store_counts(service) == before
    result = import_new(service, "services", path, skip_invalid=True)
    expected = {"added": 2, "existing": 1, "skipped": 1} if where == "earlier-in-the-file" else {
        "added": 1, "existing": 1, "skipped": 1}
    assert result.counts() == expected
    assert recorded_ids(service)[record_id] == 1


# ---- volume ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_5000_row_services_file_is_one_commit_and_every_row_is_stored_once(
    service: LedgerService, tmp_path: Path
) -> None:
    first = helpers.small_community(service)
    second = helpers.small_community(service)
    rows: list[list[Any]] = [HEADERS["services"]["zh"]]
    explicit: list[str] = []
    for i in range(5000):
        record_id = str(uuid.uuid4()) if i % 2 == 0 else ""
        if record_id:
            explicit.append(record_id)
        # Rows 1, 3, 5 … without an id repeat in pairs: identical rows get index 0 and 1.
        shape = i // 4
        rows.append([
            (first, second)[shape % 2], record_id, ("生活照料", "亲情关怀", "心理抚慰")[shape % 3],
            ("R1", "R2", "R1、R2")[shape % 3], ("P1", "P2", "P1；P2")[shape % 3],
            f"2026-{2 + shape % 2:02d}-{1 + shape % 28:02d} {shape % 24:02d}:{shape % 60:02d}",
            1 + shape % 240, ("入户", "幸福院", "")[shape % 3], "" if i % 7 else f"备注{i}", "",
        ])  # fmt: skip
    path = write_file(tmp_path / "services-5000.csv", rows)
    before = service.recorder.event_count()

    result = import_new(service, "services", path)
    assert result.counts() == {"added": 5000, "existing": 0, "skipped": 0}
    counted = recorded_ids(service)
    assert len(counted) == 5000 and set(counted.values()) == {1}
    assert set(explicit) <= set(counted)
    assert service.recorder.event_count() == before + 5000
    claims = {r: str(uuid.UUID(str(c))) for r, c in sql(service.store.url, "SELECT record_id, community_id FROM record_state")}
    assert claims.keys() == counted.keys()
    per_community = Counter(claims.values())
    assert per_community == {str(community_id(first)): 2500, str(community_id(second)): 2500}
    for code in (first, second):
        assert len(service.recorder.records_of(community_id(code))) == 2500
        assert service.get_community(code).version == 5 + 2500

    again = import_new(service, "services", path)
    assert again.counts() == {"added": 0, "existing": 5000, "skipped": 0}
    assert service.recorder.event_count() == before + 5000


def test_a_large_import_is_one_transaction_on_postgres_too(service: LedgerService, tmp_path: Path) -> None:
    """Tens of thousands of events in one save: eventsourcing's pipelined single INSERT stalled here."""
    from tests.perf.bench_import import write_base, write_services

    communities, residents, providers = write_base(tmp_path)
    for kind, path in (("communities", communities), ("residents", residents), ("providers", providers)):
        import_file(service, kind, path, "clerk")
    before = service.recorder.max_notification_id() or 0
    services = tmp_path / "services.csv"
    write_services(services, 25_000)
    result = import_file(service, "services", services, "clerk")
    assert result.counts() == {"added": 25_000, "existing": 0, "skipped": 0}
    after = service.recorder.max_notification_id()
    commits = service.recorder.recorded_times(before + 1, after)
    assert len(commits) == 1 and commits[0][1] - commits[0][0] + 1 == 25_000
