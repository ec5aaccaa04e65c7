"""`--lang zh` (or TAIZHANG_LANG=zh): error messages and notes in Chinese, on both stores.

Each error class the CLI reports is run in English and in Chinese: the Chinese line names
the same field and the same values, the exit code is the same, and nothing is written.
Which messages have a translation at all is tests/unit/test_i18n.py's business.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from commands import i18n
from tests.e2e.conftest import AT, Cli, Ledger, error_line, record_args, write_csv

KINDS = "production_development, life_care, emergency_aid, counseling, family_care, rights_protection"
KINDS_ZH = "生产发展、生活照料、应急救助、心理抚慰、亲情关怀、权益维护"  # --kind takes these too


def _record(*extra: str) -> list[str]:
    """`service record HZ-001 …` with R1 and P1, and `extra` options replacing the defaults."""
    args = ["service", "record", "HZ-001", "--resident", "R1", "--provider", "P1"]
    given = dict(zip(extra[::2], extra[1::2], strict=True))
    for option, default in (("--kind", "life_care"), ("--at", AT), ("--minutes", "45")):
        args += [option, given.pop(option, default)]
    for option, value in given.items():
        args += [option, value]
    return args


# (args, exit code, English line, Chinese line); {voided} is a voided record of the ledger.
CASES = [
    pytest.param(
        _record("--minutes", "0"), 2,
        "Error: minutes: 0 is outside 1-1440",
        "错误：时长(分钟)：0 超出 1-1440 的范围",
        id="malformed-field",
    ),
    pytest.param(
        _record("--kind", "cooking"), 2,
        f"Error: kind: unknown kind 'cooking' (one of: {KINDS})",
        f"错误：服务类型：未知的服务类型 'cooking'（可选：{KINDS_ZH}）",
        id="malformed-vocabulary",
    ),
    pytest.param(
        _record("--at", "2999-01-01 09:30"), 2,
        "Error: occurred_at: 2999-01-01T09:30:00+08:00 is in the future",
        "错误：服务时间：2999-01-01T09:30:00+08:00 晚于当前时间",
        id="malformed-future",
    ),
    pytest.param(
        ["community", "establish", "a/b", "--name", "x", "--county", "c", "--township", "t", "--village", "v"], 2,
        "Error: code: code 'a/b' may not contain spaces, '/' or list separators",
        "错误：编号：编号 'a/b' 不能含有空格、'/' 或列表分隔符",
        id="malformed-code",
    ),
    pytest.param(
        ["ledger", "entries", "--township", "八步区/"], 2,
        "Error: --township: expected COUNTY/NAME or NAME, got '八步区/'",
        "错误：--township：应为 COUNTY/NAME 或 NAME，而不是 '八步区/'",
        id="malformed-input",
    ),
    pytest.param(
        ["ledger", "entries", "--from", "2026-03-02", "--to", "2026-03-01"], 2,
        "Error: --from 2026-03-02 is after --to 2026-03-01",
        "错误：--from 2026-03-02 晚于 --to 2026-03-01",
        id="malformed-range",
    ),
    pytest.param(
        ["assess", "run", "--period", "2026-13", "--level", "township"], 2,
        "Error: --period: no month 13 in '2026-13'",
        "错误：--period：'2026-13' 中没有第 13 月",
        id="malformed-period",
    ),
    pytest.param(
        ["resident", "enroll", "HZ-404", "R1", "--name", "张秀英"], 1,
        "Error: community HZ-404 is not established",
        "错误：社区 HZ-404 尚未建立",
        id="refused-unknown",
    ),
    pytest.param(
        ["resident", "enroll", "HZ-001", "R1", "--name", "张秀英"], 1,
        "Error: resident R1 is already enrolled in community HZ-001",
        "错误：服务对象 R1 已在社区 HZ-001 入册",
        id="refused-duplicate",
    ),
    pytest.param(
        record_args("HZ-001", resident="R3"), 1,
        "Error: resident R3 had departed on 2026-02-01, before the service on 2026-03-05",
        "错误：服务对象 R3 已于 2026-02-01 离开，早于 2026-03-05 的服务",
        id="refused-rule",
    ),
    pytest.param(
        ["service", "void", "HZ-001", "{voided}", "--reason", "重复"], 1,
        "Error: record {voided} is voided and cannot be changed",
        "错误：记录 {voided} 已作废，不能再更改",
        id="refused-voided",
    ),
    pytest.param(
        ["ledger", "summary", "--by", "community", "--township", "八步区/莲塘镇"], 1,
        "Error: no township 八步区/莲塘镇 in the ledger",
        "错误：台账中没有乡镇 八步区/莲塘镇",
        id="refused-unit",
    ),
    pytest.param(
        ["service", "record", "HZ-001", "--resident", "R1", "--provider", "P1", "--at", AT, "--minutes", "45"], 2,
        "Error: Missing option '--kind'.",
        "错误：缺少选项 '--kind'。",
        id="usage-missing-option",
    ),
    pytest.param(
        ["ledger", "summary"], 2,
        "Error: Missing option '--by'. Choose from: community, township, county",
        "错误：缺少选项 '--by'（可选：community, township, county）。",
        id="usage-missing-choice",
    ),
    pytest.param(
        [*record_args(), "--minuts", "3"], 2,
        "Error: No such option '--minuts'. Did you mean '--minutes'?",
        "错误：没有选项 '--minuts'。是否要用 '--minutes'？",
        id="usage-no-such-option",
    ),
    pytest.param(
        ["community", "list", "--format", "xml"], 2,
        "Error: Invalid value for '--format': 'xml' is not one of 'table', 'json', 'csv'.",
        "错误：'--format' 的值无效：'xml' 不是可选的值（可选：'table', 'json', 'csv'）。",
        id="usage-bad-choice",
    ),
    pytest.param(
        ["ledger", "entries", "--at-position", "三"], 2,
        "Error: Invalid value for '--at-position': '三' is not a valid integer range.",
        "错误：'--at-position' 的值无效：'三' 不是有效的整数。",
        id="usage-bad-int",
    ),
    pytest.param(
        ["import", "residents"], 2,
        "Error: Missing argument 'FILE'.",
        "错误：缺少参数 'FILE'。",
        id="usage-missing-argument",
    ),
    pytest.param(
        ["service", "recrod"], 2,
        "Error: No such command 'recrod'. Did you mean 'record'?",
        "错误：没有命令 'recrod'。是否要用 'record'？",
        id="usage-no-such-command",
    ),
    pytest.param(
        ["community", "list", "extra"], 2,
        "Error: Got unexpected extra argument (extra)",
        "错误：多余的参数（extra）",
        id="usage-extra-argument",
    ),
]  # fmt: skip


def _one_error(result: Result, code: int, prefix: str) -> str:
    return error_line(result, code, prefix=prefix)


@pytest.mark.parametrize(("args", "code", "english", "chinese"), CASES)
def test_errors_in_chinese_name_the_field_and_the_value(
    ledger: Ledger, args: list[str], code: int, english: str, chinese: str
) -> None:
    ids = {"voided": ledger.voided}
    args = [a.format(**ids) for a in args]
    before = ledger.counts()
    assert _one_error(ledger.cli(*args), code, "Error: ") == english.format(**ids)
    assert _one_error(ledger.cli(*args, lang="zh"), code, "错误：") == chinese.format(**ids)
    assert _one_error(ledger.cli(*args, env={"TAIZHANG_LANG": "zh"}), code, "错误：") == chinese.format(**ids)
    assert ledger.counts() == before


def test_a_write_without_an_actor(ledger: Ledger) -> None:
    args = record_args()
    english = "Error: --actor: required for commands that write (or set TAIZHANG_ACTOR)"
    assert _one_error(ledger.cli(*args, actor=None), 2, "Error: ") == english
    chinese = "错误：--actor：写入的命令必须给出（或设置 TAIZHANG_ACTOR）"
    assert _one_error(ledger.cli(*args, actor=None, lang="zh"), 2, "错误：") == chinese


def test_a_missing_store(run: Cli) -> None:
    english = _one_error(run("community", "list"), 1, "Error: ")
    where = english.removeprefix("Error: no store at ").removesuffix("; run taizhang init")
    assert where != english and where
    assert _one_error(run("community", "list", lang="zh"), 1, "错误：") == f"错误：{where} 处没有台账库；请先运行 taizhang init"


def test_a_bad_store_url(ledger: Ledger) -> None:
    result = ledger.cli("community", "list", db="mysql://host/db", lang="zh")
    assert _one_error(result, 2, "错误：") == (
        "错误：--db：不支持的 URL 'mysql://host/db'（请用 sqlite:///PATH 或 postgresql://USER:PASS@HOST:PORT/DB）"
    )


def test_a_missing_key_file(ledger: Ledger, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.key"
    before = ledger.counts()
    result = ledger.cli("resident", "enroll", "HZ-001", "R9", "--name", "新人", key=missing, lang="zh")
    assert _one_error(result, 1, "错误：") == (
        f"错误：{missing} 处没有密钥文件；无法加密姓名和备注（请把 TAIZHANG_KEY_FILE 设为该库的密钥文件）"
    )
    assert ledger.counts() == before


def test_a_note_after_success(ledger: Ledger, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.key"
    result = ledger.cli("resident", "list", "HZ-001", key=missing, lang="zh")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"注意：{missing} 处没有密钥文件：不显示姓名和出生日期"]
    result = ledger.cli("resident", "list", "HZ-001", key=missing)
    assert result.stderr.splitlines() == [f"Note: no key file at {missing}: names and birth dates are not shown"]


def test_an_unreadable_import_file(ledger: Ledger, tmp_path: Path) -> None:
    (tmp_path / "名单.txt").write_text("code\n", encoding="utf-8")
    result = ledger.cli("import", "residents", str(tmp_path / "名单.txt"), lang="zh")
    assert _one_error(result, 2, "错误：") == "错误：名单.txt：不支持的文件类型 .txt（应为 .csv 或 .xlsx）"


# ---- import: one line per bad row, then the summary ---------------------------------------------
def _stderr(result: Result) -> list[str]:
    assert "Traceback" not in result.output
    return result.stderr.splitlines()


def test_import_rows_malformed(ledger: Ledger, tmp_path: Path) -> None:
    rows = [["社区", "编号", "姓名", "性别"], ["HZ-001", "R7", "王芳", "x"], ["HZ-404", "R8", "赵强", "男"]]
    file = str(write_csv(tmp_path / "名单.csv", rows))
    before = ledger.counts()
    result = ledger.cli("import", "residents", file)
    assert result.exit_code == 2
    assert _stderr(result) == [
        "row 2: gender: unknown gender 'x' (one of: male, female)",
        "row 3: community: community HZ-404 is not established",
        "Error: 2 row(s) malformed; nothing imported (use --skip-invalid to import the good rows)",
    ]
    result = ledger.cli("import", "residents", file, lang="zh")
    assert result.exit_code == 2
    assert _stderr(result) == [
        "第 2 行：性别：未知的性别 'x'（可选：男、女）",
        "第 3 行：社区：社区 HZ-404 尚未建立",
        "错误：2 行有误，未导入任何内容（加 --skip-invalid 可只导入无误的行）",
    ]
    assert ledger.counts() == before


def test_import_rows_refused_and_skipped(ledger: Ledger, tmp_path: Path) -> None:
    # A communities sheet names its code column 编码 (a residents sheet: 编号).
    rows = [["编码", "名称", "县区", "乡镇", "行政村"], ["HZ-001", "石门", "八步区", "贺街镇", "石门村"]]
    services = [
        ["社区", "服务类型", "服务对象", "服务人员", "服务时间", "时长(分钟)"],
        ["HZ-001", "生活照料", "R3", "P1", AT, "30"],
        ["HZ-001", "生活照料", "R1", "P1", AT, "两小时"],
    ]
    file = str(write_csv(tmp_path / "服务.csv", services))
    before = ledger.counts()
    result = ledger.cli("import", "services", file, lang="zh")
    assert result.exit_code == 2
    assert _stderr(result) == [
        "第 2 行：服务对象：服务对象 R3 已于 2026-02-01 离开，早于 2026-03-05 的服务",
        "第 3 行：时长(分钟)：不是时长：'两小时'（请写 45、45分钟、1.5小时 或 1小时30分）",
        "错误：2 行有误，未导入任何内容（加 --skip-invalid 可只导入无误的行）",
    ]
    result = ledger.cli("import", "services", file, "--skip-invalid", lang="zh")
    assert result.exit_code == 0, result.output
    assert _stderr(result) == [
        "已跳过：第 2 行：服务对象：服务对象 R3 已于 2026-02-01 离开，早于 2026-03-05 的服务",
        "已跳过：第 3 行：时长(分钟)：不是时长：'两小时'（请写 45、45分钟、1.5小时 或 1小时30分）",
    ]
    assert ledger.counts() == before
    communities = str(write_csv(tmp_path / "社区.csv", [*rows, ["HZ 9", "桥头", "八步区", "贺街镇", "桥头村"]]))
    result = ledger.cli("import", "communities", communities, lang="zh")
    assert result.exit_code == 2
    assert _stderr(result)[0] == "第 3 行：编码：编号 'HZ 9' 不能含有空格、'/' 或列表分隔符"
    refused = str(write_csv(tmp_path / "社区2.csv", [["社区", "编号", "姓名"], ["HZ-404", "R8", "赵强"]]))
    result = ledger.cli("import", "residents", refused, lang="zh")
    assert result.exit_code == 1
    assert _stderr(result) == [
        "第 2 行：社区：社区 HZ-404 尚未建立",
        "错误：1 行被拒绝，未导入任何内容（加 --skip-invalid 可只导入无误的行）",
    ]
    assert ledger.counts() == before


# ---- a message without a translation --------------------------------------------------------------
def test_a_message_without_a_translation_prints_in_english(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "entries", lambda: ())
    result = ledger.cli("resident", "enroll", "HZ-404", "R1", "--name", "张秀英", lang="zh")
    assert _one_error(result, 1, "错误：") == "错误：community HZ-404 is not established"
