from __future__ import annotations

import datetime as dt
import random
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.tabular import (
    COLUMNS,
    CellError,
    TabularError,
    complete_year,
    parse_date,
    parse_datetime,
    parse_duration,
    parse_gender,
    parse_int,
    parse_time_of_day,
    read_table,
    split_list,
    text,
)

CST = dt.timezone(dt.timedelta(hours=8))

SERVICES_EN = "community,record_id,kind,residents,providers,occurred_at,minutes,place,note"
SERVICES_ZH = "社区,记录编号,服务类型,服务对象,服务人员,服务时间,时长（分钟）,地点,备注"


def write_csv(
    tmp_path: Path, lines: list[str], name: str = "services.csv", encoding: str = "utf-8"
) -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_xlsx(tmp_path: Path, rows: list[list[object]], name: str = "services.xlsx") -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    book.save(path)
    return path


# --- column specs ----------------------------------------------------------


def test_column_specs_in_documented_order() -> None:
    assert [c.name for c in COLUMNS["services"]] == [
        "community", "record_id", "kind", "residents", "providers",
        "occurred_at", "date", "minutes", "place", "note", "entered_on",
    ]  # fmt: skip
    required = {k: [c.name for c in cols if c.required] for k, cols in COLUMNS.items()}
    assert required == {
        "communities": ["code", "name", "county", "township", "village"],
        "residents": ["community", "code", "name"],
        "providers": ["community", "code", "name", "role"],
        "services": ["community", "kind", "residents", "providers", "occurred_at", "minutes"],
        "allocations": ["department", "document", "purpose", "amount", "granted_on", "unit"],
        "spending": ["department", "document", "community", "spent_on", "voucher", "purpose", "amount"],
    }


# --- read_table: headers ---------------------------------------------------


def test_english_headers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [SERVICES_EN, " C01 ,R1,visit,R001;R002,P01,2026-03-05 09:30,30,, "],
    )
    table = read_table(path, "services")
    assert table.header_row == 1
    assert table.columns == SERVICES_EN.split(",")
    [row] = table.rows
    assert row.number == 2
    assert row.values == {
        "community": "C01",
        "record_id": "R1",
        "kind": "visit",
        "residents": "R001;R002",
        "providers": "P01",
        "occurred_at": "2026-03-05 09:30",
        "minutes": "30",
        "place": None,
        "note": None,
    }


def test_chinese_headers_below_title_row_keep_spreadsheet_row_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            "某某社区服务信息台账 2026年3月,,,,,,,,",
            SERVICES_ZH,
            "C01,R1,探访,R001,P01,2026/3/5 9:30,30,村委会,",
            "C01,R2,理发,R002,P02,2026/3/6 10:00,20,,",
        ],
    )
    table = read_table(path, "services")
    assert table.header_row == 2
    assert [row.number for row in table.rows] == [3, 4]
    assert table.rows[0].values["kind"] == "探访"
    assert table.rows[1].values["minutes"] == "20"
    assert "entered_on" not in table.rows[0].values


@pytest.mark.parametrize(
    "header",
    [
        "minutes",
        " MINUTES ",
        "Minutes",
        "时长(分钟)",
        "时长（分钟）",
        "时长 (分钟)",
        "时长",
        "分钟",
    ],
)
def test_minutes_header_variants(tmp_path: Path, header: str) -> None:
    cols = SERVICES_EN.replace("minutes", header)
    path = write_csv(tmp_path, [cols, "C01,R1,visit,R001,P01,2026-03-05,45,,"])
    assert read_table(path, "services").rows[0].values["minutes"] == "45"


def test_english_separators_and_case_are_interchangeable(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            "Community,Record-ID,KIND,residents,providers,Occurred At,minutes,entered on",
            "C01,R1,visit,R001,P01,2026-03-05,30,2026-03-06",
        ],
    )
    values = read_table(path, "services").rows[0].values
    assert values["record_id"] == "R1"
    assert values["occurred_at"] == "2026-03-05"
    assert values["entered_on"] == "2026-03-06"


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            "序号,社区,编号,姓名,状态,status,revision,recorded_at,性别",
            "1,C01,R001,张三,有效,active,3,2026-03-01T08:00:00Z,男",
        ],
        name="residents.csv",
    )
    table = read_table(path, "residents")
    assert table.columns == ["community", "code", "name", "gender"]
    assert table.rows[0].values == {
        "community": "C01",
        "code": "R001",
        "name": "张三",
        "gender": "男",
    }


def test_missing_required_column_names_it(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, ["社区,服务类型,服务对象,服务人员,服务时间", "C01,探访,R1,P1,2026-03-05"]
    )
    with pytest.raises(TabularError) as info:
        read_table(path, "services")
    message = str(info.value)
    assert message.startswith("services.csv: missing required column: minutes")
    assert "时长(分钟)" in message
    assert "\n" not in message


def test_several_missing_columns_are_all_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["社区,服务类型,服务对象", "C01,探访,R1"])
    with pytest.raises(TabularError, match="missing required columns") as info:
        read_table(path, "services")
    for name in ("providers", "occurred_at", "minutes"):
        assert name in str(info.value)
    assert "community" not in str(info.value)


def test_no_header_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["a,b,c", "1,2,3"])
    with pytest.raises(TabularError, match=r"^services\.csv: no header row found") as info:
        read_table(path, "services")
    assert "community" in str(info.value) and "minutes" in str(info.value)


def test_header_must_be_within_first_20_rows(tmp_path: Path) -> None:
    data = "C01,R1,visit,R001,P01,2026-03-05,30,,"
    at_20 = write_csv(tmp_path, ["title"] * 19 + [SERVICES_EN, data], name="a.csv")
    assert read_table(at_20, "services").header_row == 20
    at_21 = write_csv(tmp_path, ["title"] * 20 + [SERVICES_EN, data], name="b.csv")
    with pytest.raises(TabularError, match="no header row found"):
        read_table(at_21, "services")


def test_duplicate_column_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [SERVICES_EN + ",分钟", "C01,R1,visit,R001,P01,2026-03-05,30,,,30"])
    with pytest.raises(TabularError, match="duplicate column: minutes"):
        read_table(path, "services")


def test_unknown_kind_is_a_programming_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [SERVICES_EN])
    with pytest.raises(ValueError, match="unknown import kind"):
        read_table(path, "payments")


# --- read_table: rows ------------------------------------------------------


def test_footer_and_everything_after_it_are_skipped(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            SERVICES_ZH,
            "C01,R1,探访,R001,P01,2026-03-05,30,,",
            ",,,,,,,,",
            " 合计：,,,,,,30,,",
            "C01,R9,探访,R001,P01,2026-03-05,99,,",
        ],
    )
    assert [row.values["record_id"] for row in read_table(path, "services").rows] == ["R1"]


@pytest.mark.parametrize("footer", ["总计", "小计（本页）", "Total", "TOTALS", "total: 30"])
def test_other_footer_words(tmp_path: Path, footer: str) -> None:
    path = write_csv(
        tmp_path, [SERVICES_EN, f",{footer},,,,,30,,", "C01,R9,visit,R1,P1,2026-03-05,1,,"]
    )
    assert read_table(path, "services").rows == []


def test_data_that_merely_starts_with_total_is_kept(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [SERVICES_EN, "Totally Green,R1,visit,R1,P1,2026-03-05,1,,"])
    assert read_table(path, "services").rows[0].values["community"] == "Totally Green"


def test_empty_rows_skipped_but_counted(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            "序号," + SERVICES_EN,
            "1,C01,R1,visit,R001,P01,2026-03-05,30,,",
            "",
            " , ,,,,,,,,",
            "2,,,,,,,,,",  # template row: only 序号 filled in
            "3,C01,R3,visit,R001,P01,2026-03-05,30,,",
        ],
    )
    assert [row.number for row in read_table(path, "services").rows] == [2, 6]


def test_short_rows_are_padded_with_none(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [SERVICES_EN, "C01,R1,visit"])
    values = read_table(path, "services").rows[0].values
    assert values["kind"] == "visit"
    assert values["minutes"] is None and values["note"] is None


def test_multiline_cell_counts_as_one_spreadsheet_row(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            SERVICES_EN,
            'C01,R1,visit,R1,P1,2026-03-05,30,,"line one',
            'line two"',
            "C01,R2,visit,R1,P1,2026-03-05,30,,",
        ],
    )
    rows = read_table(path, "services").rows
    assert [row.number for row in rows] == [2, 3]
    assert rows[0].values["note"] == "line one\nline two"


# --- read_table: encodings and files --------------------------------------


def test_utf8_bom(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, [SERVICES_ZH, "C01,R1,探访,R001,P01,2026-03-05,30,,"], encoding="utf-8-sig"
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_table(path, "services").rows[0].values["community"] == "C01"


def test_gb18030_csv(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [SERVICES_ZH, "C01,R1,上门探访,张三、李四,P01,2026年3月5日,30,村委会,"],
        encoding="gb18030",
    )
    values = read_table(path, "services").rows[0].values
    assert values["kind"] == "上门探访"
    assert values["residents"] == "张三、李四"
    assert values["place"] == "村委会"


def test_undecodable_csv(tmp_path: Path) -> None:
    path = tmp_path / "services.csv"
    path.write_bytes(b"\xff\xfe\x00\x80\xff")
    with pytest.raises(TabularError, match=r"^services\.csv: not UTF-8 or GB18030 text$"):
        read_table(path, "services")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TabularError, match=r"^nope\.csv: cannot read file: No such file") as info:
        read_table(tmp_path / "nope.csv", "services")
    assert "\n" not in str(info.value)
    with pytest.raises(TabularError, match=r"^nope\.xlsx: cannot read file"):
        read_table(tmp_path / "nope.xlsx", "services")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "services.xls"
    path.write_bytes(b"whatever")
    with pytest.raises(TabularError, match=r"services\.xls: unsupported file type \.xls"):
        read_table(path, "services")


def test_damaged_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "services.xlsx"
    path.write_text(SERVICES_EN + "\n", encoding="utf-8")
    with pytest.raises(TabularError, match=r"^services\.xlsx: not a readable XLSX file"):
        read_table(path, "services")


# --- read_table: XLSX --------------------------------------------------------


def test_xlsx_typed_cells(tmp_path: Path) -> None:
    occurred = dt.datetime(2026, 3, 5, 9, 30)
    path = write_xlsx(
        tmp_path,
        [
            ["某某社区服务信息台账 2026年3月"],
            [*SERVICES_ZH.split(","), "登记日期"],
            [
                "C01",
                1001,
                " 探访 ",
                "R001；R002",
                "P01",
                occurred,
                30,
                None,
                1.5,
                dt.date(2026, 3, 6),
            ],
            [],
            ["C01", "R2", "理发", "R003", "P02", "2026/3/6 10:00", 20.0, "   ", None, None],
        ],
    )
    table = read_table(path, "services")
    assert table.header_row == 2
    first, second = table.rows
    assert (first.number, second.number) == (3, 5)
    assert first.values["occurred_at"] == occurred
    assert first.values["record_id"] == 1001
    assert first.values["minutes"] == 30 and isinstance(first.values["minutes"], int)
    assert first.values["kind"] == "探访"
    assert first.values["note"] == 1.5
    assert parse_date(first.values["entered_on"]) == dt.date(2026, 3, 6)
    assert second.values["place"] is None
    assert parse_int(second.values["minutes"]) == 20


def test_xlsx_reads_first_worksheet_not_the_active_one(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(SERVICES_EN.split(","))
    book.active.append(["C01", "R1", "visit", "R001", "P01", "2026-03-05", 30])
    other = book.create_sheet("说明")
    other.append(["填写说明"])
    book.active = 1
    path = tmp_path / "services.xlsx"
    book.save(path)
    assert read_table(path, "services").rows[0].values["record_id"] == "R1"


def test_xlsx_footer(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [
            SERVICES_EN.split(","),
            ["C01", "R1", "visit", "R001", "P01", "2026-03-05", 30],
            ["合计", None, None, None, None, None, 30],
            ["C01", "R2", "visit", "R001", "P01", "2026-03-05", 30],
        ],
    )
    assert [row.values["record_id"] for row in read_table(path, "services").rows] == ["R1"]


def test_xlsx_with_understated_dimensions_is_read_fully(tmp_path: Path) -> None:
    written = write_xlsx(
        tmp_path,
        [SERVICES_EN.split(","), ["C01", "R1", "visit", "R001", "P01", "2026-03-05", 30]],
        name="written.xlsx",
    )
    path = tmp_path / "services.xlsx"
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="A1"', data)
                assert count == 1
            target.writestr(item, data)
    assert read_table(path, "services").rows[0].values["minutes"] == 30


def test_large_csv_keeps_every_row(tmp_path: Path) -> None:
    line = "C01,R{},visit,R001;R002,P01,2026-03-05 09:30,30,村委会,note,extra"
    lines = [SERVICES_ZH + ",状态"] + [line.format(i) for i in range(20_000)]
    path = write_csv(tmp_path, lines)
    table = read_table(path, "services")
    assert len(table.rows) == 20_000
    assert table.rows[-1].number == 20_001


# --- parse_date ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-05",
        "2026/3/5",
        "2026.3.5",
        "2026年3月5日",
        "2026年03月05号",
        " 2026 年 3 月 5 日 ",
        "20260305",
        "２０２６-０３-０５",
        "2026/3/5 0:00",
        20260305,
        dt.date(2026, 3, 5),
        dt.datetime(2026, 3, 5, 17, 45),
    ],
)
def test_parse_date_forms(value: object) -> None:
    assert parse_date(value) == dt.date(2026, 3, 5)


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30",
        "2026-13-45",
        "2025-02-29",
        "20260230",
        "2026年2月30日",
        "2026-3/5",
        "26-03-05",
        "March 5",
        "2026/3/5 9:30",
        46086,
    ],
)
def test_parse_date_rejects(value: object) -> None:
    with pytest.raises(CellError, match="not a date"):
        parse_date(value)


def test_parse_date_message_quotes_value() -> None:
    with pytest.raises(CellError) as info:
        parse_date("2026-02-30")
    assert str(info.value) == "not a date: '2026-02-30'"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_parse_date_rejects_empty(value: object) -> None:
    with pytest.raises(CellError, match="empty"):
        parse_date(value)


def test_parse_date_leap_day() -> None:
    assert parse_date("2028-02-29") == dt.date(2028, 2, 29)


# --- parse_datetime ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-05T09:30", dt.datetime(2026, 3, 5, 9, 30)),
        ("2026-03-05 09:30", dt.datetime(2026, 3, 5, 9, 30)),
        ("2026-03-05 09:30:15", dt.datetime(2026, 3, 5, 9, 30, 15)),
        ("2026-03-05T09:30:15.250", dt.datetime(2026, 3, 5, 9, 30, 15, 250000)),
        ("2026/3/5 9:30", dt.datetime(2026, 3, 5, 9, 30)),
        ("2026年3月5日 9:30", dt.datetime(2026, 3, 5, 9, 30)),
        ("2026年3月5日9时30分", dt.datetime(2026, 3, 5, 9, 30)),
        ("2026年3月5日 14点", dt.datetime(2026, 3, 5, 14, 0)),
        ("2026-03-05 00:00", dt.datetime(2026, 3, 5)),
        ("2026-03-05T09:30:00+08:00", dt.datetime(2026, 3, 5, 9, 30, tzinfo=CST)),
        ("2026-03-05T01:30:00Z", dt.datetime(2026, 3, 5, 1, 30, tzinfo=dt.UTC)),
        ("2026-03-05 09:30+0800", dt.datetime(2026, 3, 5, 9, 30, tzinfo=CST)),
        (dt.datetime(2026, 3, 5, 9, 30), dt.datetime(2026, 3, 5, 9, 30)),
    ],
)
def test_parse_datetime_with_time(value: object, expected: dt.datetime) -> None:
    parsed, has_time = parse_datetime(value)
    assert has_time is True
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_parse_datetime_aware_and_naive() -> None:
    assert parse_datetime("2026-03-05T09:30:00+08:00")[0].tzinfo is not None
    assert parse_datetime("2026-03-05T09:30:00")[0].tzinfo is None


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-05",
        "2026/3/5",
        "2026年3月5日",
        "20260305",
        dt.date(2026, 3, 5),
        dt.datetime(2026, 3, 5),
    ],
)
def test_parse_datetime_date_only(value: object) -> None:
    assert parse_datetime(value) == (dt.datetime(2026, 3, 5), False)


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30 09:30",
        "2026-03-05 24:00",
        "2026-03-05 09:60",
        "2026-03-05 9",
        "09:30",
        "2026-03-05T09:30+24:00",
        "2026-03-05+08:00",
        "yesterday",
        dt.time(9, 30),
    ],
)
def test_parse_datetime_rejects(value: object) -> None:
    with pytest.raises(CellError, match="not a date and time"):
        parse_datetime(value)


def test_parse_datetime_rejects_empty() -> None:
    with pytest.raises(CellError):
        parse_datetime(None)


# --- parse_int ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30", 30), (" 30 ", 30), (30, 30), (30.0, 30), ("30.0", 30), ("３０", 30), ("-5", -5)],
)
def test_parse_int(value: object, expected: int) -> None:
    assert parse_int(value) == expected
    assert type(parse_int(value)) is int


@pytest.mark.parametrize(
    "value", [30.5, "30.5", "abc", "", None, "1_000", "3 0", True, float("nan")]
)
def test_parse_int_rejects(value: object) -> None:
    with pytest.raises(CellError):
        parse_int(value)


# --- split_list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("R001;R002", ["R001", "R002"]),
        ("R001；R002", ["R001", "R002"]),
        ("张三、李四、王五", ["张三", "李四", "王五"]),
        ("a,b，c", ["a", "b", "c"]),
        (" a ; ;b;; ", ["a", "b"]),
        ("b;a", ["b", "a"]),
        ("王 小明", ["王 小明"]),
        (1001, ["1001"]),
        (None, []),
        ("", []),
        (" ;、 ", []),
    ],
)
def test_split_list(value: object, expected: list[str]) -> None:
    assert split_list(value) == expected


_item = st.text(min_size=1).filter(
    lambda s: s == s.strip() and not any(sep in s for sep in ";；、,，")
)


@given(st.lists(_item))
def test_split_list_round_trips(items: list[str]) -> None:
    assert split_list(";".join(items)) == items


# --- parse_gender / text ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("male", "male"),
        ("M", "male"),
        ("男", "male"),
        (" Female ", "female"),
        ("f", "female"),
        ("女", "female"),
        ("", None),
        (None, None),
    ],
)
def test_parse_gender(value: object, expected: str | None) -> None:
    assert parse_gender(value) == expected


@pytest.mark.parametrize("value", ["x", "unknown", "男女", 1])
def test_parse_gender_rejects(value: object) -> None:
    with pytest.raises(CellError):
        parse_gender(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("  ", None),
        (" 张三 ", "张三"),
        (12, "12"),
        (12.0, "12"),
        (12.5, "12.5"),
        (dt.date(2026, 3, 5), "2026-03-05"),
        (dt.datetime(2026, 3, 5), "2026-03-05"),
        (dt.datetime(2026, 3, 5, 9, 30), "2026-03-05T09:30:00"),
    ],
)
def test_text(value: object, expected: str | None) -> None:
    assert text(value) == expected


# --- what a sheet holds besides its data (commands/headers.toml, footers, blank rows) --------


def test_the_header_table_names_every_field_once_with_its_chinese_header_first() -> None:
    import tomllib
    from importlib import resources

    table = tomllib.loads(resources.files("commands").joinpath("headers.toml").read_text(encoding="utf-8"))
    for kind, columns in COLUMNS.items():
        assert list(table[kind]) == [c.name for c in columns], kind
        for column in columns:
            assert not column.zh.isascii(), (kind, column.name)  # messages and exports use it
            assert column.name in column.aliases or column.name == column.zh


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("服务地点", "place"), ("地点", "place"), ("服务内容", "note"), ("服务事项", "note"), ("内容", "note"),
        ("备注", "note"), ("服务日期", "date"), ("服务时间", "occurred_at"), ("服务人", "providers"),
        ("服务人员", "providers"), ("帮扶人", "providers"), ("服务对象", "residents"), ("姓名", "residents"),
        ("服务类别", "kind"), ("服务类型", "kind"), ("时长", "minutes"), ("服务时长", "minutes"),
        ("时长（分钟）", "minutes"), ("时长（小时）", "minutes"), ("小时", "minutes"), ("*服务对象", "residents"),
    ],
)  # fmt: skip
def test_headers_clerks_use(tmp_path: Path, header: str, field: str) -> None:
    cols = {"kind": "服务类型", "residents": "服务对象", "providers": "服务人员", "minutes": "时长(分钟)"}
    cols[field] = header
    names = ["社区", *cols.values(), "服务时间" if field not in ("occurred_at", "date") else header]
    names = list(dict.fromkeys(names))
    path = write_csv(tmp_path, [",".join(names), ",".join(["x"] * len(names))])
    table = read_table(path, "services")
    assert field in table.columns and table.headers[field] == header and table.ignored == []


@pytest.mark.parametrize(
    ("header", "unit"),
    [("时长", None), ("服务时长", None), ("时长（分钟）", "minutes"), ("分钟", "minutes"), ("minutes", "minutes"),
     ("时长（小时）", "hours"), ("小时", "hours"), ("hours", "hours")],
)  # fmt: skip
def test_the_duration_header_names_the_unit_of_bare_numbers(tmp_path: Path, header: str, unit: str | None) -> None:
    path = write_csv(tmp_path, [SERVICES_ZH.replace("时长（分钟）", header), "C01,R1,探访,R001,P01,2026-03-05,1,,"])
    assert read_table(path, "services").duration_unit() == unit


def test_columns_no_field_takes_are_reported_but_seq_numbers_are_not(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            "序号," + SERVICES_ZH + ",联系电话,,签名",
            "1,C01,R1,探访,R001,P01,2026-03-05 9:00,30,,,138,,",
            "2,C01,R2,探访,R001,P01,2026-03-05 9:00,30,,,,,,stray",
            "3,C01,R3,探访,R001,P01,2026-03-05 9:00,30,,,,,",
        ],
    )
    table = read_table(path, "services")
    assert table.ignored == ["联系电话", "签名", "column N (no header)"]
    assert len(table.rows) == 3


def test_an_empty_column_without_header_is_not_reported(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [SERVICES_ZH + ",,", "C01,R1,探访,R001,P01,2026-03-05 9:00,30,,,,"])
    assert read_table(path, "services").ignored == []


def test_several_note_columns_are_joined_one_line_each(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            "社区,服务类型,服务对象,服务人员,服务时间,时长,服务内容,备注",
            "C01,探访,R1,P1,2026-03-05 9:00,30,送米,老人安好",
            "C01,探访,R1,P1,2026-03-05 9:00,30,,只有备注",
            "C01,探访,R1,P1,2026-03-05 9:00,30,,",
        ],
    )
    assert [r.values["note"] for r in read_table(path, "services").rows] == ["送米\n老人安好", "只有备注", None]


def test_signature_lines_and_blank_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            "贺街镇石门村 2026年3月 服务台账,,,,,,,,",
            SERVICES_ZH,
            "C01,R1,探访,R001,P01,2026-03-05,30,,",
            ",,,,,,,,",
            "C01,R2,探访,R001,P01,2026-03-05,30,,",
            ",,,,,,,,",
            "填表人：赵敏,,,,审核人：,,,,",
            ",,,,审核人：,,,,",  # the first non-empty cell decides
            "制表日期：2026年4月1日,,,,,,,,",
            "负责人（签字）,,,,,,,,",
            "C01,R3,探访,R001,P01,2026-03-05,30,,",  # a row after a signature line is still data
            ",,,,,,,,",  # trailing blank rows are not counted
            ",,,,,,,,",
        ],
    )
    table = read_table(path, "services")
    assert [row.values["record_id"] for row in table.rows] == ["R1", "R2", "R3"]
    assert (table.header_row, table.footer_rows, table.blank_rows) == (2, 4, 2)


def test_a_total_row_ends_the_table_and_what_follows_is_counted(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, [SERVICES_ZH, "C01,R1,探访,R001,P01,2026-03-05,30,,", "合计,,,,,,30,,", "", "填表人：,,,,,,,,", "x"]
    )
    table = read_table(path, "services")
    assert (len(table.rows), table.footer_rows, table.blank_rows) == (1, 3, 0)


def test_a_supplied_column_may_be_absent(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["服务类型,服务对象,服务人员,服务日期,时长", "探访,R1,P1,2026-03-05,30"])
    with pytest.raises(TabularError, match=r"missing required column: community \(社区"):
        read_table(path, "services")
    table = read_table(path, "services", frozenset({"community"}))
    assert "community" not in table.columns and table.rows[0].values["date"] == "2026-03-05"


# --- durations, dates without a year, times of day ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "minutes"),
    [
        ("45", "minutes", 45), (45, "minutes", 45), (45.0, "minutes", 45), ("1.5", "hours", 90), (1.5, "hours", 90),
        (2, "hours", 120), ("0.1", "hours", 6), ("45分钟", None, 45), ("45分", None, 45), ("1.5小时", None, 90),
        ("1小时30分", None, 90), ("1小时30分钟", None, 90), ("1小时30", None, 90), ("2个小时", None, 120),
        ("90min", None, 90), ("90 mins", None, 90), ("1.5h", None, 90), ("1.5H", None, 90), ("2h30m", None, 150),
        ("１．５小时", None, 90), (" 45 分钟 ", "hours", 45), ("1.5小时", "minutes", 90),
    ],
)  # fmt: skip
def test_parse_duration_reads_the_unit(value: object, unit: str | None, minutes: int) -> None:
    assert parse_duration(value, unit) == minutes


@pytest.mark.parametrize(
    ("value", "unit", "message"),
    [
        ("45", None, "'45' is a bare number and the column's header names no unit; give --duration-unit minutes|hours"),
        (1.5, None, "'1.5' is a bare number"),
        ("0.01小时", None, "'0.01小时' is 0.6 minutes, not a whole number of minutes"),
        ("1.5", "minutes", "'1.5' is 1.5 minutes, not a whole number"),
        ("0.01", "hours", "'0.01 hours' is 0.6 minutes"),
        ("半小时", None, "not a duration: '半小时'"),
        ("30分1小时", None, "not a duration"),
        ("h", None, "not a duration"),
        (True, "minutes", "not a duration"),
        (float("nan"), "minutes", "not a duration"),
        ("", "minutes", "empty cell, expected a duration"),
    ],
)
def test_parse_duration_never_guesses(value: object, unit: str | None, message: str) -> None:
    with pytest.raises(CellError, match=re.escape(message)):
        parse_duration(value, unit)


@given(st.integers(1, 1440))
def test_parse_duration_of_whole_hours_and_minutes_in_every_spelling(minutes: int) -> None:
    hours, rest = divmod(minutes, 60)
    spelled = f"{hours}小时{rest}分" if hours else f"{rest}分钟"
    assert parse_duration(spelled, None) == minutes
    assert parse_duration(str(minutes), "minutes") == minutes
    assert parse_duration(f"{minutes}min", "hours") == minutes  # the cell's unit beats the header's


@pytest.mark.parametrize(
    ("raw", "completed"),
    [("3月5日", "2026年3月5日"), ("3月5号 9:30", "2026年3月5日 9:30"), ("03-05", "2026-03-05"), ("3/5 09:30", "2026-3-5 09:30"),
     ("2026-03-05", "2026-03-05"), ("3.5", "3.5"), ("R1", "R1")],
)  # fmt: skip
def test_complete_year(raw: str, completed: str) -> None:
    assert complete_year(raw, 2026) == completed


def test_a_date_without_a_year_is_refused_without_one() -> None:
    with pytest.raises(CellError, match=re.escape("'3月5日' has no year; give --year YYYY")):
        complete_year("3月5日", None)
    assert complete_year("2026年3月5日", None) == "2026年3月5日"


@pytest.mark.parametrize(
    "value",
    ["9:30", "09:30", "09:30:00", "9时30分", "9点30", dt.time(9, 30), dt.datetime(1899, 12, 30, 9, 30),
     dt.datetime(2026, 3, 5, 9, 30), "2026-03-05 09:30"],
)  # fmt: skip
def test_parse_time_of_day(value: object) -> None:
    assert parse_time_of_day(value, dt.date(2026, 3, 5)) == dt.time(9, 30)


@pytest.mark.parametrize("value", ["25:00", "9:61", "x", "2026-03-06 09:30", dt.datetime(2026, 3, 6, 9, 30)])
def test_parse_time_of_day_rejects(value: object) -> None:
    with pytest.raises(CellError):
        parse_time_of_day(value, dt.date(2026, 3, 5))


_KNOWN_HEADERS = sorted({h for c in COLUMNS["services"] for h in (c.zh, *c.aliases)} | {"序号"})


@given(
    known=st.lists(st.sampled_from(_KNOWN_HEADERS), unique=True, max_size=12),
    unknown=st.lists(st.sampled_from(["联系电话", "签名", "身份证号", "家庭住址", "Remarks 2", "村民小组"]), unique=True),
    order=st.randoms(use_true_random=False),
)
def test_every_header_is_read_reported_or_a_row_number(
    tmp_path_factory: pytest.TempPathFactory, known: list[str], unknown: list[str], order: random.Random
) -> None:
    """Whatever a header row holds, each of its columns is a field, an ignored column or 序号."""
    headers = ["社区", "服务类型", "服务对象", "服务人员", "服务时间", "时长", *known, *unknown]
    order.shuffle(headers)
    path = write_csv(tmp_path_factory.mktemp("h"), [",".join(headers), ",".join("x" * len(headers))])
    try:
        table = read_table(path, "services")
    except TabularError as e:
        assert "duplicate column" in str(e)  # two headers of one field: refused, not dropped
        return
    read = set(table.headers.values())
    note_headers = {h for h in headers if h in {"备注", "note", "服务内容", "服务事项", "内容"}}
    assert read | set(table.ignored) | {"序号"} | note_headers >= set(headers)
    assert not read & set(table.ignored)
    assert set(table.ignored) == set(unknown)


# ---- streamed tables (open_table): imports in bounded memory -----------------------------------
def test_an_open_table_reads_its_rows_from_the_file_each_time(tmp_path: Path) -> None:
    import commands.tabular as tabular

    header = "community,kind,residents,providers,occurred_at,minutes,备注说明"
    path = write_csv(tmp_path, ["台账", header, "HZ-001,life_care,R1,P1,2026-03-05 09:30,45,x", "", "合计,1"])
    table = tabular.open_table(path, "services")
    assert table.header_row == 2
    first = [(row.number, row.values["minutes"]) for row in table.rows]
    assert first == [(3, "45")] and list(table.rows)[0].number == 3
    held = tabular.read_table(path, "services")
    assert (table.footer_rows, table.blank_rows, table.ignored) == (held.footer_rows, held.blank_rows, held.ignored)
    assert table.footer_rows == 1 and table.ignored == ["备注说明"]


def test_a_file_changed_between_two_readings_is_refused(tmp_path: Path) -> None:
    import commands.tabular as tabular

    header = "community,kind,residents,providers,occurred_at,minutes"
    path = write_csv(tmp_path, [header, "HZ-001,life_care,R1,P1,2026-03-05 09:30,45"])
    table = tabular.open_table(path, "services")
    assert len(list(table.rows)) == 1
    path.write_text(header + "\nHZ-001,life_care,R1,P1,2026-03-05 09:30,46\n", encoding="utf-8")
    with pytest.raises(tabular.FileChanged, match="changed while it was being imported"):
        list(table.rows)


def test_a_csv_longer_than_the_sheet_limit_streams_in_bounded_memory(tmp_path: Path) -> None:
    """A CSV has no row limit (its size on disk bounds it): its rows are read one at a time."""
    import tracemalloc

    import commands.tabular as tabular

    path = tmp_path / "services.csv"
    line = "HZ-001,life_care,R1,P1,2026-03-05 09:30,45\r\n"
    path.write_text("community,kind,residents,providers,occurred_at,minutes\r\n" + line * (tabular.MAX_ROWS + 1))
    tracemalloc.start()
    try:
        count = sum(1 for _ in tabular.open_table(path, "services").rows)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == tabular.MAX_ROWS + 1
    assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.1f} MiB"  # the rows whole would take hundreds
