"""Error messages and notes in the language of --lang: a catalogue of English templates.

The domain and the lower layers speak English (their messages are the source text, as
in gettext); the CLI translates at the edge, just before a line is printed. Each catalogue
entry is an English template with named placeholders and its Chinese template:

    "resident {code} is not enrolled in community {community}": "服务对象 {code} 未在社区 {community} 入册"

A message is matched as a whole against every English template; the most specific
match (the most literal text) wins. A placeholder's value is kept verbatim (codes, dates,
file names, what the user typed), except when the placeholder says otherwise:

- `{name:term}` a word of the ledger (one of `TERMS`, or any single word), translated by
  `TERMS`: the column labels of commands/labels.py and a few more; an option such as
  `--kind` or an unknown word stays as it is;
- `{name:field}` the field that frames a message (`field: problem`): any text without ": ",
  translated like a term;
- `{name:msg}`  a message of its own, translated recursively (`field: problem`);
- `{name:int}`  digits only (narrows the match).

A message with no entry prints as it is, in English: a new message is never lost, only not
yet translated. `tests/unit/test_i18n.py` finds every message template in the source tree
and fails on one without an entry here, unless it is listed in `NOT_YET_TRANSLATED`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property

from commands.labels import FIELDS, STATUS

PREFIX = {"en": "Error: ", "zh": "错误："}
NOTE = {"en": "Note: ", "zh": "注意："}

# Message templates of the source tree, written as the coverage test prints them (each
# interpolation is `{}`), that have no catalogue entry yet. Whoever merges a branch that
# adds messages may list them here to keep the build green; translating one means adding
# its entry to CATALOGUE and removing it from this list (the test fails on a stale line).
NOT_YET_TRANSLATED: frozenset[str] = frozenset()

# Words that fill a `{name:term}` placeholder: field names (as the models and the import
# columns name them), their English labels, and the few other words messages insert.
_EXTRA_TERMS = {
    "text": "文本",
    "reason": "原因",
    "summary": "述职摘要",
    "item": "督办事项",
    "on": "日期",
    "input": "输入",
    "date": "日期",
    "today": "今天",
    "record id": "记录编号",
    "resident": "服务对象",
    "provider": "服务人员",
    "category": "类别",
    "unit": "单位",
    "the whole store": "整个台账库",
    "period": "考核期",
    # verdicts of an import
    "malformed": "有误",
    "refused": "被拒绝",
    # what a spreadsheet cell should hold (commands/tabular.py)
    "a date": "日期",
    "a date and time": "日期时间",
    "a whole number": "整数",
    "a duration": "时长",
    "a time of day": "时刻",
    "hours": "小时",
    "communities": "社区",
    # click's names of types and paths
    "integer": "整数",
    "integer range": "整数",
    "float": "数字",
    "float range": "数字",
    "File": "文件",
    "Directory": "文件夹",
    "Path": "路径",
}


def _terms() -> dict[str, str]:
    terms: dict[str, str] = {}
    for field, (en, zh) in FIELDS.items():
        terms[field] = zh
        terms.setdefault(en, zh)
    for slug, (_en, zh) in STATUS.items():
        terms[slug] = zh
    terms.update(_EXTRA_TERMS)
    return terms


TERMS: dict[str, str] = _terms()


# ---- the catalogue ------------------------------------------------------------------------------
CATALOGUE: dict[str, str] = {
    # -- how the CLI frames a message (commands/cli.py, commands/models.py, the import) --
    "{field:field}: {problem:msg}": "{field}：{problem}",
    "row {row:int}: {field:field}: {problem:msg}": "第 {row} 行：{field}：{problem}",
    "skipped {problem:msg}": "已跳过：{problem}",
    "{rows:int} row(s) {verdict:term}; nothing imported (use --skip-invalid to import the good rows)": (
        "{rows} 行{verdict}，未导入任何内容（加 --skip-invalid 可只导入无误的行）"
    ),
    "is required": "必须给出",
    "aborted": "已中止",
    "interrupted": "已中断",
    "database: {error}": "数据库：{error}",
    "internal error: {type}: {error} (please report it; set TAIZHANG_DEBUG=1 to see the traceback)": (
        "内部错误：{type}：{error}（请报告此问题；设置 TAIZHANG_DEBUG=1 可查看回溯信息）"
    ),
    # -- click's own usage errors (click 8.x) --
    "Missing option {option}.": "缺少选项 {option}。",
    "Missing option {option}. Choose from: {choices}": "缺少选项 {option}（可选：{choices}）。",
    "Missing argument {argument}.": "缺少参数 {argument}。",
    "Missing argument {argument}. Choose from: {choices}": "缺少参数 {argument}（可选：{choices}）。",
    "Missing command.": "缺少子命令。",
    "No such option {option}.": "没有选项 {option}。",
    "No such option {option}. Did you mean {guess}?": "没有选项 {option}。是否要用 {guess}？",
    "No such option {option}. (Did you mean one of: {guesses}?)": "没有选项 {option}。是否要用其中之一：{guesses}？",
    "No such command {command}.": "没有命令 {command}。",
    "No such command {command}. Did you mean {guess}?": "没有命令 {command}。是否要用 {guess}？",
    "No such command {command}. (Did you mean one of: {guesses}?)": "没有命令 {command}。是否要用其中之一：{guesses}？",
    "Invalid value for {param}: {problem:msg}": "{param} 的值无效：{problem}",
    "Invalid value: {problem:msg}": "值无效：{problem}",
    "{value} is not one of {choices}.": "{value} 不是可选的值（可选：{choices}）。",
    "{value} is not {choice}.": "{value} 不是可选的值（只能是 {choice}）。",
    "{value} is not a valid {type:term}.": "{value} 不是有效的{type}。",
    "{value} is not in the range {range}.": "{value} 不在范围 {range} 之内。",
    "{kind:term} {path} does not exist.": "{kind} {path} 不存在。",
    "{kind:term} {path} is a directory.": "{kind} {path} 是文件夹。",
    "{kind:term} {path} is a file.": "{kind} {path} 是文件。",
    "Option {option} requires an argument.": "选项 {option} 需要一个值。",
    "Option {option} requires {count:int} arguments.": "选项 {option} 需要 {count} 个值。",
    "Option {option} does not take a value.": "选项 {option} 不接受值。",
    "Got unexpected extra argument ({args})": "多余的参数（{args}）",
    "Got unexpected extra arguments ({args})": "多余的参数（{args}）",
    # -- the ledger's rules (domain/community.py) --
    "{what:term} must not be empty": "{what}不能为空",
    "reason must not be empty": "原因不能为空",
    "resident {code} is already enrolled in community {community}": "服务对象 {code} 已在社区 {community} 入册",
    "resident {code} departed on {on} and cannot be updated": "服务对象 {code} 已于 {on} 离开，不能再更新",
    "the update changes nothing for resident {code}": "本次更新没有改变服务对象 {code} 的任何信息",
    "resident {code} already departed on {on}": "服务对象 {code} 已于 {on} 离开",
    "resident {code} was enrolled on {enrolled}, after {day}": "服务对象 {code} 的入册日期是 {enrolled}，晚于 {day}",
    "provider {code} is already registered in community {community}": "服务人员 {code} 已在社区 {community} 登记",
    "provider {code} already retired on {on}": "服务人员 {code} 已于 {on} 退出",
    "provider {code} was registered on {registered}, after {day}": "服务人员 {code} 的登记日期是 {registered}，晚于 {day}",
    "record {record} is already recorded with other content; use service correct": (
        "记录 {record} 已按其他内容登记；如需修改请用 service correct"
    ),
    "the correction changes nothing in record {record}": "本次更正没有改变记录 {record} 的任何内容",
    "resident {code} is not enrolled in community {community} on {day}": (
        "服务对象 {code} 在 {day} 不在社区 {community} 的名册中"
    ),
    "provider {code} is not active in community {community} on {day}": (
        "服务人员 {code} 在 {day} 不是社区 {community} 的在册服务人员"
    ),
    "every {every} is outside 1-366 days": "巡访间隔 {every} 天超出 1-366 天的范围",
    "resident {code}'s last visit plan ran until {until}, after {day}": (
        "服务对象 {code} 的上一个巡访计划持续到 {until}，晚于 {day}"
    ),
    "resident {code}'s current visit plan starts on {since}, after {day}": (
        "服务对象 {code} 现行的巡访计划从 {since} 开始，晚于 {day}"
    ),
    "resident {code} has no visit plan in force in community {community}": (
        "服务对象 {code} 在社区 {community} 没有生效的巡访计划"
    ),
    "resident {code}'s visit plan starts on {since}, after {day}": "服务对象 {code} 的巡访计划从 {since} 开始，晚于 {day}",
    "provider {provider} is already paired with resident {resident}": "服务人员 {provider} 已与服务对象 {resident} 结对",
    "provider {provider} is not paired with resident {resident}": "服务人员 {provider} 未与服务对象 {resident} 结对",
    "the pairing started on {since}, after {day}": "该结对从 {since} 开始，晚于 {day}",
    "record {record} is not in community {community}": "社区 {community} 中没有记录 {record}",
    "record {record} is {status:term} and cannot be changed": "记录 {record} 已{status}，不能再更改",
    "a service needs at least one resident": "一条服务记录至少要有一名服务对象",
    "a service needs at least one provider": "一条服务记录至少要有一名服务人员",
    "a resident is listed twice": "服务对象重复列出",
    "a provider is listed twice": "服务人员重复列出",
    "minutes {minutes} is outside {low}-{high}": "时长 {minutes} 分钟超出 {low}-{high} 的范围",
    "the service on {day} is before community {community} was established on {established}": (
        "服务日期 {day} 早于社区 {community} 的成立日期 {established}"
    ),
    "{who:term} {code} has an active service on {on} (record {record}); "
    "correct or void it before recording a departure on {day}": (
        "{who} {code} 在 {on} 有有效的服务记录（记录 {record}）；请先更正或作废该记录，再登记 {day} 离开"
    ),
    "{who:term} {code} has an active service on {on} (record {record}); "
    "correct or void it before recording a retirement on {day}": (
        "{who} {code} 在 {on} 有有效的服务记录（记录 {record}）；请先更正或作废该记录，再登记 {day} 退出"
    ),
    "resident {code} is not enrolled in community {community}": "服务对象 {code} 未在社区 {community} 入册",
    "provider {code} is not registered in community {community}": "服务人员 {code} 未在社区 {community} 登记",
    # -- residents and providers by name (commands/names.py) --
    "resident {name} is not a code in community {community}; resident names can be matched only with the "
    "store's key file (set TAIZHANG_KEY_FILE)": (
        "服务对象 {name} 不是社区 {community} 的编号；只有用台账库的密钥文件才能按姓名查找服务对象"
        "（请设置 TAIZHANG_KEY_FILE）"
    ),
    "resident {name} names {count:int} active residents of community {community}: {codes}; give one of these codes": (
        "社区 {community} 有 {count} 名在册服务对象叫 {name}：{codes}；请给出其中一个编号"
    ),
    "resident {name} is neither a code nor an active resident's name in community {community}": (
        "服务对象 {name} 既不是社区 {community} 的编号，也不是该社区在册服务对象的姓名"
    ),
    "resident {name} is neither a code nor an active resident's name in community {community}; "
    "nearest names: {nearest}": (
        "服务对象 {name} 既不是社区 {community} 的编号，也不是该社区在册服务对象的姓名；最接近的姓名：{nearest}"
    ),
    "provider {name} names {count:int} active providers of community {community}: {codes}; give one of these codes": (
        "社区 {community} 有 {count} 名在册服务人员叫 {name}：{codes}；请给出其中一个编号"
    ),
    "provider {name} is neither a code nor an active provider's name in community {community}": (
        "服务人员 {name} 既不是社区 {community} 的编号，也不是该社区在册服务人员的姓名"
    ),
    "provider {name} is neither a code nor an active provider's name in community {community}; "
    "nearest names: {nearest}": (
        "服务人员 {name} 既不是社区 {community} 的编号，也不是该社区在册服务人员的姓名；最接近的姓名：{nearest}"
    ),
    "resident {code} was not yet enrolled on {day} (enrolled on {enrolled})": (
        "服务对象 {code} 在 {day} 尚未入册（入册日期 {enrolled}）"
    ),
    "resident {code} had departed on {on}, before the service on {day}": (
        "服务对象 {code} 已于 {on} 离开，早于 {day} 的服务"
    ),
    "provider {code} was not yet registered on {day} (registered on {registered})": (
        "服务人员 {code} 在 {day} 尚未登记（登记日期 {registered}）"
    ),
    "provider {code} had retired on {on}, before the service on {day}": "服务人员 {code} 已于 {on} 退出，早于 {day} 的服务",
    "occurred_at must carry its UTC offset": "服务时间必须带有 UTC 时差",
    "a naive datetime has no place in the ledger": "台账中的时间必须带有时区",
    # -- accountability (domain/accountability.py, commands/accountability.py, cli_accountability.py) --
    "unknown duty {duty}": "未知的职责 {duty}",
    "official {code} already holds {duty} of {unit}": "干部 {code} 已担任 {unit} 的 {duty}",
    "official {code} held {duty} of {unit} until {until}, after {day}": (
        "干部 {code} 担任 {unit} 的 {duty} 至 {until}，晚于 {day}"
    ),
    "official {code} does not hold {duty} of {unit}": "干部 {code} 未担任 {unit} 的 {duty}",
    "official {code} took {duty} of {unit} on {since}, after {day}": "干部 {code} 于 {since} 起担任 {unit} 的 {duty}，晚于 {day}",
    "summary must not be empty": "述职摘要不能为空",
    "official {code} held no duty for {unit} during {period}": "干部 {code} 在 {period} 期间未担任 {unit} 的任何职责",
    "official {code} already filed a debriefing for {unit} {period}": "干部 {code} 已提交 {unit} {period} 的专项述职",
    "unknown metric {metric}": "未知的指标 {metric}",
    "at_least {value} is out of range for {metric}": "目标值 {value} 超出指标 {metric} 的范围",
    "{unit} has no {metric} target for {period}": "{unit} 在 {period} 没有 {metric} 目标",
    "{unit} has no {metric} target for {period} ({kind})": "{unit} 在 {period} 没有 {metric}（{kind}）目标",
    "coverage is a share, not a sum: set each unit's coverage target instead": (
        "覆盖率是比例，不能分解相加：请分别为每个单位设定覆盖率目标"
    ),
    "the parts add up to {total}, less than {unit}'s target of {target}": "分解后合计 {total}，少于 {unit} 的目标 {target}",
    "{child} is not inside {unit}": "{child} 不在 {unit} 之内",
    "item must not be empty": "督办事项不能为空",
    "item {item} was already resolved on {on}": "督办事项 {item} 已于 {on} 办结",
    "note must not be empty": "备注不能为空",
    "unknown duty {value} (one of: {choices})": "未知的职责 {value}（可选：{choices}）",
    "unknown metric {value} (one of: {choices})": "未知的指标 {value}（可选：{choices}）",
    "not a number: {value}": "不是数字：{value}",
    "must be a finite number of 0 or more, got {value}": "必须是不小于 0 的有限数，而不是 {value}",
    "coverage is a share between 0 and 1, got {value}": "覆盖率是 0 到 1 之间的比例，而不是 {value}",
    "{metric} targets are whole numbers, got {value}": "{metric} 目标必须是整数，而不是 {value}",
    "no {level:term} {name} in the store": "库中没有{level} {name}",
    "official {code} is not registered": "干部 {code} 未登记",
    "official {code} is already registered": "干部 {code} 已登记",
    "{unit} has no targets for {period}": "{unit} 在 {period} 没有目标",
    "no supervision item {item}": "没有督办事项 {item}",
    "coverage targets are for every kind of service": "覆盖率目标针对全部服务类型，不能按服务类型设定",
    "expected UNIT=N, got {item}": "应为 UNIT=N，而不是 {item}",
    "{unit} is given twice": "{unit} 重复给出",
    # -- units and periods (domain/units.py), vocabularies (domain/vocab.py) --
    "expected county:NAME, township:COUNTY/NAME or community:CODE, got {text}": (
        "应为 county:NAME、township:COUNTY/NAME 或 community:CODE，而不是 {text}"
    ),
    "a county name has no '/': {text}": "县区名称中不能有 '/'：{text}",
    "expected township:COUNTY/NAME, got {text}": "应为 township:COUNTY/NAME，而不是 {text}",
    "expected YYYY-MM, YYYY-Qn or YYYY, got {text}": "应为 YYYY-MM、YYYY-Qn 或 YYYY，而不是 {text}",
    "no month {month} in {text}": "{text} 中没有第 {month} 月",
    "unknown {what:term} {value} (one of: {choices})": "未知的{what} {value}（可选：{choices}）",
    # -- command models and spreadsheet cells (commands/models.py, commands/tabular.py) --
    "{what:term} is required": "必须给出{what}",
    "{what:term} is longer than {limit:int} characters": "{what}超过 {limit} 个字符",
    "{what:term} contains control characters: {text}": "{what}含有控制字符：{text}",
    "code {code} may not contain spaces, '/' or list separators": "编号 {code} 不能含有空格、'/' 或列表分隔符",
    "a {what:term} is listed twice: {items}": "{what}重复列出：{items}",
    "{moment} is in the future": "{moment} 晚于当前时间",
    "{value} is outside {low}-{high}": "{value} 超出 {low}-{high} 的范围",
    "at least one {what:term} is required": "至少要有一个{what}",
    "not a UUID: {value}": "不是 UUID：{value}",
    "{entered} is before the service on {day}": "{entered} 早于 {day} 的服务",
    "unknown time zone {zone}": "未知的时区 {zone}",
    "unknown import kind: {kind}": "未知的导入类型：{kind}",
    "offset minutes out of range": "时差的分钟数超出范围",
    "not {what:term}: {value}": "不是有效的{what}：{value}",
    "empty cell, expected {what:term}": "单元格为空，应为{what}",
    "not a date (has a time of day): {value}": "不是日期（带有时刻）：{value}",
    "not a whole number: {value}": "不是整数：{value}",
    "not a gender (expected 男/女 or male/female): {value}": "不是性别（应为 男/女 或 male/female）：{value}",
    # -- durations, dates without a year, times of day (commands/tabular.py, commands/importer.py) --
    "not a duration: {value}": "不是时长：{value}",
    "not a duration: {value} (write 45, 45分钟, 1.5小时 or 1小时30分)": "不是时长：{value}（请写 45、45分钟、1.5小时 或 1小时30分）",
    "{value} is a bare number and the column's header names no unit; give --duration-unit minutes|hours, "
    "or write 45分钟 or 1.5小时 in the cell": (
        "{value} 是不带单位的数字，而该列表头也没有写明单位；请加 --duration-unit minutes|hours，或在单元格里写 45分钟 或 1.5小时"
    ),
    "{value} is {minutes} minutes, not a whole number of minutes": "{value} 是 {minutes} 分钟，不是整数分钟",
    "{value} has no year; give --year YYYY for the dates of this sheet": "{value} 没有年份；请用 --year YYYY 给出本表日期的年份",
    "{value} is not a time of day on {day}": "{value} 不是 {day} 当天的时刻",
    "not a time of day: {value}": "不是时刻：{value}",
    "{value} is a date without a time of day; give the time, or --default-time HH:MM": (
        "{value} 只有日期，没有时刻；请填写时间，或加 --default-time HH:MM"
    ),
    "{value} differs from --community {code}": "{value} 与 --community {code} 不一致",
    "applies to residents, providers and services, not to communities": "只适用于服务对象、服务人员和服务记录，不适用于社区",
    "applies to import services only, not to {kind:term}": "只适用于导入服务记录，不适用于{kind}",
    "expected HH:MM, got {value}": "应为 HH:MM，而不是 {value}",
    "{file}: --duration-unit {unit} contradicts the column {header}, which counts {named:term}": (
        "{file}：--duration-unit {unit} 与表头 {header} 写明的单位 {named} 矛盾"
    ),
    # -- what an import left out (commands/cli_import.py) --
    "ignored columns: {columns}": "未导入的列：{columns}",
    "column {letter} (no header)": "{letter} 列（无表头）",
    "footer rows skipped: {rows:int}": "跳过的表尾行：{rows}",
    "blank rows skipped: {rows:int}": "跳过的空行：{rows}",
    # -- import files as a whole (commands/tabular.py, commands/importer.py) --
    "{file}: unsupported file type {suffix} (expected .csv or .xlsx)": "{file}：不支持的文件类型 {suffix}（应为 .csv 或 .xlsx）",
    "{file}: cannot read file: {error}": "{file}：无法读取文件：{error}",
    "{file}: not UTF-8 or GB18030 text": "{file}：不是 UTF-8 或 GB18030 编码的文本",
    "{file}: line {line:int}: {error}": "{file}：第 {line} 行：{error}",
    "{file}: not a readable XLSX file ({error})": "{file}：不是可读取的 XLSX 文件（{error}）",
    "{file}: the workbook has no worksheet": "{file}：工作簿中没有工作表",
    "{file}: duplicate column: {column} (headers {headers} in row {row:int})": (
        "{file}：重复的列：{column}（第 {row} 行的表头 {headers}）"
    ),
    "{file}: no header row found in the first {rows:int} rows (expected columns: {columns})": (
        "{file}：前 {rows} 行中没有找到表头行（应有的列：{columns}）"
    ),
    "{file}: missing required column: {columns}": "{file}：缺少必需的列：{columns}",
    "{file}: missing required columns: {columns}": "{file}：缺少必需的列：{columns}",
    "community {code} is not established": "社区 {code} 尚未建立",
    "record {record} is already recorded in another community; use service correct": (
        "记录 {record} 已登记在另一个社区；如需修改请用 service correct"
    ),
    "other writers kept changing the same communities during the import; try again": (
        "导入期间其他用户一直在修改同样的社区；请重试"
    ),
    # -- the store and its keys (commands/app.py, commands/cli_store.py, infra/) --
    "community {code} is already established": "社区 {code} 已建立",
    "the store is busy with other writers to the same community; try again": "其他用户正在写入同一社区；请重试",
    "{unit} {period} is closed in {done:int} of {total:int} communities: community {code} stayed busy; run the same close again to finish it": "{unit} {period} 已在 {total} 个社区中的 {done} 个结账：社区 {code} 一直忙于写入；请再次运行同一结账命令以完成",
    "no store at {store}; run taizhang init": "{store} 处没有台账库；请先运行 taizhang init",
    "a store already exists at {store}": "{store} 处已有台账库",
    "cannot create a store at {store}: it is a directory": "无法在 {store} 创建台账库：这是一个文件夹",
    "cannot create a store at {store}: {error}": "无法在 {store} 创建台账库：{error}",
    "the store at {store} already uses time zone {zone}; it cannot change": "{store} 的台账库已使用时区 {zone}，不能更改",
    "the store at {store} already holds events; demo fills only an empty store": (
        "{store} 的台账库中已有事件；demo 只填充空库"
    ),
    "the store already holds events; demo fills only an empty store": "台账库中已有事件；demo 只填充空库",
    "{problem:msg}; refusing to overwrite it": "{problem}；不会覆盖它",
    "no key file: names and notes cannot be encrypted": "没有密钥文件：无法加密姓名和备注",
    "{problem:msg}; names and notes cannot be encrypted (set TAIZHANG_KEY_FILE to the store's key file)": (
        "{problem}；无法加密姓名和备注（请把 TAIZHANG_KEY_FILE 设为该库的密钥文件）"
    ),
    "data key {key} is wrapped by master key {master}, not {other}": "数据密钥 {key} 由主密钥 {master} 封装，而不是 {other}",
    "data key {key} is wrapped by master key {master}, not {other} "
    "(a wrong key file, or the master key was rotated: use the new key file)": (
        "数据密钥 {key} 由主密钥 {master} 封装，而不是 {other}（密钥文件不对，或主密钥已轮换：请使用新的密钥文件）"
    ),
    # -- erasure, key rotation, backups, the access log (commands/cli_privacy.py) --
    "the store's data keys are wrapped by master key {master}, not {other} "
    "(a wrong key file, or the master key was rotated: use the new key file)": (
        "台账库的数据密钥由主密钥 {master} 封装，而不是 {other}（密钥文件不对，或主密钥已轮换：请使用新的密钥文件）"
    ),
    "the store's master key is {master}, not {other} from {path}; give the current key file with --key-file": (
        "台账库的主密钥是 {master}，而不是 {path} 中的 {other}；请用 --key-file 指定当前的密钥文件"
    ),
    "resident {code} of community {community} was already erased": "社区 {community} 的服务对象 {code} 已被删除",
    "resident {code} of community {community} was erased; nothing more can be recorded about them": (
        "社区 {community} 的服务对象 {code} 已被删除，不能再登记与其有关的任何内容"
    ),
    "{what} was erased; nothing personal can be recorded under it again": "{what} 已被删除，不能再在其下登记个人信息",
    "{path} already exists; a key file is never overwritten": "{path} 已存在；密钥文件从不被覆盖",
    "--new-key-file: {path} already exists; a key file is never overwritten": (
        "--new-key-file：{path} 已存在；密钥文件从不被覆盖"
    ),
    "--new-key-file: folder {folder} does not exist": "--new-key-file：文件夹 {folder} 不存在",
    "cannot write {path}: {error}": "无法写入 {path}：{error}",
    "FILE: folder {folder} does not exist": "FILE：文件夹 {folder} 不存在",
    "FILE: {path} already exists; a backup never overwrites a file": "FILE：{path} 已存在；备份从不覆盖文件",
    "FILE: {path} is the store itself": "FILE：{path} 就是台账库本身",
    "backup: the copy failed its integrity check: {problem}": "backup：副本未通过完整性检查：{problem}",
    "backup: {store} is PostgreSQL; use pg_dump --format=custom (restore with pg_restore), see the README": (
        "backup：{store} 是 PostgreSQL 库；请用 pg_dump --format=custom 备份（用 pg_restore 恢复），见 README"
    ),
    "--resident: expected COMMUNITY/CODE, got {value}": "--resident：应为 社区/编号，而不是 {value}",
    "--actor: must not be empty": "--actor：不能为空",
    "--reason: must not be empty": "--reason：不能为空",
    "the freed bytes could not be scrubbed now (a reader held the database, or this login does not own "
    "data_keys); the next checkpoint or VACUUM FULL data_keys does it": (
        "释放的字节暂时无法清除（有读取者占用数据库，或当前登录不是 data_keys 的所有者）；"
        "下一次检查点或 VACUUM FULL data_keys 会完成清除"
    ),
    "the old wrapped keys could not be scrubbed now; run VACUUM FULL data_keys as the table's owner": (
        "旧的封装密钥暂时无法清除；请以表的所有者身份运行 VACUUM FULL data_keys"
    ),
    "data key {key} was not wrapped by master key {master}": "数据密钥 {key} 不是由主密钥 {master} 封装的",
    "no key file at {path}": "{path} 处没有密钥文件",
    "key file {path} is unreadable: {problem:msg}": "密钥文件 {path} 无法读取：{problem}",
    "not a taizhang master key file": "不是 taizhang 主密钥文件",
    "key is not 256 bits": "密钥不是 256 位",
    "unknown envelope algorithm {alg}": "未知的加密算法 {alg}",
    "unknown envelope version {version}": "未知的加密格式版本 {version}",
    "the {field:term} of {subject} in community {community} does not open with its key": (
        "社区 {community} 中 {subject} 的{field}无法用其密钥解开"
    ),
    "the {field:term} of {subject} in community {community} is sealed for another place": (
        "社区 {community} 中 {subject} 的{field}是为别处加密的，不能在此打开"
    ),
    "key file {path} does not hold the store's master key {key}: its key fails the store's check "
    "(a damaged or altered copy; restore it from its backup)": (
        "密钥文件 {path} 中不是本台账库的主密钥 {key}：其密钥未通过台账库的校验（文件已损坏或被改动；请从备份恢复）"
    ),
    "--db: expected sqlite:///PATH, got {url}": "--db：应为 sqlite:///PATH，而不是 {url}",
    "--db: expected postgresql://USER:PASS@HOST:PORT/DB, got {url}": (
        "--db：应为 postgresql://USER:PASS@HOST:PORT/DB，而不是 {url}"
    ),
    "--db: unsupported URL {url} (use sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB)": (
        "--db：不支持的 URL {url}（请用 sqlite:///PATH 或 postgresql://USER:PASS@HOST:PORT/DB）"
    ),
    "{path} is not a readable SQLite database: {error}": "{path} 不是可读取的 SQLite 数据库：{error}",
    "cannot connect to {store}: {error}": "无法连接到 {store}：{error}",
    "--actor: required for commands that write (or set TAIZHANG_ACTOR)": "--actor：写入的命令必须给出（或设置 TAIZHANG_ACTOR）",
    # -- queries and their options (commands/cli_ledger.py, cli_assess.py, assess.py, projections/) --
    "{options}: give at most one unit filter": "{options}：最多只能给一个单位筛选条件",
    "{option}: must not be empty": "{option}：不能为空",
    "--township: expected COUNTY/NAME or NAME, got {value}": "--township：应为 COUNTY/NAME 或 NAME，而不是 {value}",
    "--township: {name} is a township in {n:int} counties ({counties}); give COUNTY/NAME, e.g. {county}/{township}": (
        "--township：{n} 个县区都有名为 {name} 的乡镇（{counties}）；请写成 县区/乡镇，例如 {county}/{township}"
    ),
    "--period: give either --period or --from/--to, not both": "--period：--period 与 --from/--to 只能给其一",
    "--from {first} is after --to {last}": "--from {first} 晚于 --to {last}",
    "the log holds an event of aggregate {id} stored under its id in another form (position {n:int}); nothing was done: run taizhang audit verify": (
        "日志中有聚合 {id} 的事件以另一种形式的编号存储（位置 {n}）；未执行任何操作：请运行 taizhang audit verify"
    ),
    "--as-of and --at-position: give at most one": "--as-of 和 --at-position：最多只能给一个",
    "--at-position: must be 0 or more, got {value}": "--at-position：必须不小于 0，而不是 {value}",
    "--output: required with --format xlsx": "--output：使用 --format xlsx 时必须给出",
    "--output: required with --format {format}": "--output：使用 --format {format} 时必须给出",
    "no {level:term} {name} in the ledger": "台账中没有{level} {name}",
    "no {unit} in the ledger": "台账中没有 {unit}",
    "--rubric: {file} is not valid TOML: {error}": "--rubric：{file} 不是有效的 TOML：{error}",
    "--rubric: {file} needs a name": "--rubric：{file} 缺少 name",
    "--rubric: {file} needs a version": "--rubric：{file} 缺少 version",
    "--rubric: {file} needs a [weights] table": "--rubric：{file} 缺少 [weights] 表",
    "--rubric: unknown metric {metric} (one of: {choices})": "--rubric：未知的指标 {metric}（可选：{choices}）",
    "--rubric: weight of {metric} must be a number of 0 or more, got {weight}": (
        "--rubric：{metric} 的权重必须是不小于 0 的数，而不是 {weight}"
    ),
    "--rubric: every weight is 0": "--rubric：所有权重都是 0",
    "give at least one of --category, --grid, --household": "请至少给出 --category、--grid、--household 之一",
    "service correct: give at least one of --kind, --at, --minutes, --resident, --provider, --place, --note": (
        "service correct：请至少给出 --kind、--at、--minutes、--resident、--provider、--place、--note 之一"
    ),
    # -- hostile input (commands/boundary.py, context.py, tabular.py, assess.py, infra/store.py) --
    "--db: cannot read {url} ({error})": "--db：无法读取 {url}（{error}）",
    "--db: contains a NUL character: {url}": "--db：含有 NUL 字符：{url}",
    "--rubric: {file} is nested too deeply": "--rubric：{file} 嵌套过深",
    "not {what:term}: {value} is outside the years {low:int}–{high:int}": "不是有效的{what}：{value} 不在 {low}–{high} 年之间",
    "{option}: cannot write {path}: {error}": "{option}：无法写入 {path}：{error}",
    "{file}: not a regular file": "{file}：不是普通文件",
    # files named on the command line (commands.files): limits, --force, links
    "{file}: larger than the limit of {limit} for one import": "{file}：超过单次导入 {limit} 的上限",
    "{file}: more than {rows} rows (the limit of one import); split the file": "{file}：超过 {rows} 行（单次导入的上限）；请拆分文件",
    "{file}: unpacks to more than {limit} (the limit of one import); split the file": "{file}：解压后超过 {limit}（单次导入的上限）；请拆分文件",
    "{file}: its shared strings unpack to more than {limit}; split the file": "{file}：其共享字符串解压后超过 {limit}；请拆分文件",
    "{option:field}: {path} is not a regular file": "{option}：{path} 不是普通文件",
    "{option:field}: {path} is larger than the limit of {limit}": "{option}：{path} 超过 {limit} 的上限",
    "{option:field}: folder {folder} does not exist": "{option}：文件夹 {folder} 不存在",
    "{option:field}: {path} is a folder": "{option}：{path} 是文件夹",
    "{option:field}: {path} already exists; give --force to replace it": "{option}：{path} 已存在；加上 --force 才会替换它",
    "{option:field}: {path} is a symbolic link; an output is never written through one": (
        "{option}：{path} 是符号链接；输出文件绝不经由链接写入"
    ),
    "{option:field}: {path} is not a regular file; it is never replaced": "{option}：{path} 不是普通文件；不会替换它",
    "the store at {store} is damaged (SQLite quick_check: {finding}); nothing was written: "
    "restore it from a backup (taizhang backup makes them)": (
        "{store} 处的台账库已损坏（SQLite quick_check：{finding}）；未写入任何内容：请从备份恢复（备份用 taizhang backup 生成）"
    ),
    "{value} contains a NUL character": "{value} 含有 NUL 字符",
    "{value} is not valid UTF-8 text": "{value} 不是有效的 UTF-8 文本",
    "{value} is not a file name this system can use": "{value} 不是本系统可用的文件名",
    "{value} is not a number of seconds": "{value} 不是有效的秒数",
    # -- closed periods (结账): domain/community.py, commands/closing.py, commands/cli_closing.py --
    "closed: {unit} {period} (closed by {by} on {at}): {action:msg}; "
    "reopen it with taizhang ledger reopen --unit {unit2} --period {period2}": (
        "已结账：{unit} {period}（{by} 于 {at} 结账）：{action}；如需更改，请先反结账："
        "taizhang ledger reopen --unit {unit2} --period {period2}"
    ),
    "closed: {unit} {period} (closed by {by} on {at}) + {others}: {action:msg}; "
    "reopen it with taizhang ledger reopen --unit {unit2} --period {period2}": (
        "已结账：{unit} {period}（{by} 于 {at} 结账）+ {others}：{action}；如需更改，请先反结账："
        "taizhang ledger reopen --unit {unit2} --period {period2}"
    ),
    "cannot record a service on {day}": "不能登记 {day} 的服务",
    "cannot correct record {record}, a service of {day}": "不能更正记录 {record}（{day} 的服务）",
    "cannot move record {record} to {day}": "不能把记录 {record} 改到 {day}",
    "cannot void record {record}, a service of {day}": "不能作废记录 {record}（{day} 的服务）",
    "cannot record the departure of resident {code} on {day}": "不能登记服务对象 {code} 于 {day} 离开",
    "cannot record the retirement of provider {code} on {day}": "不能登记服务人员 {code} 于 {day} 退出",
    "cannot start a visit plan for resident {code} on {day}": "不能为服务对象 {code} 设定从 {day} 开始的巡访计划",
    "cannot end the visit plan of resident {code} on {day}": "不能在 {day} 结束服务对象 {code} 的巡访计划",
    "cannot pair provider {provider} with resident {resident} on {day}": (
        "不能在 {day} 让服务人员 {provider} 与服务对象 {resident} 结对"
    ),
    "cannot end the pairing of provider {provider} with resident {resident} on {day}": (
        "不能在 {day} 结束服务人员 {provider} 与服务对象 {resident} 的结对"
    ),
    "community {code} is not in {unit}": "社区 {code} 不属于 {unit}",
    "{unit} {period} is already closed (closed by {by} on {at})": "{unit} {period} 已结账（{by} 于 {at} 结账）",
    "{unit} {period} is not closed in community {code}": "{unit} {period} 在社区 {code} 未结账",
    "{unit} {period} is not closed; nothing to reopen": "{unit} {period} 未结账，无需反结账",
    "{period} has not begun; only a period that has begun can be closed": "{period} 尚未开始；只能对已经开始的期间结账",
    "days of {period} stay closed by: {closures}": "{period} 中仍有日期处于以下结账之中：{closures}",
    "no key file at {path}: names, birth dates and notes are shown as (encrypted)": (
        "{path} 处没有密钥文件：姓名、出生日期和备注显示为 (encrypted)"
    ),
    # -- notes printed after a command succeeded (Env.warn) --
    "no key file at {path}: names and birth dates are not shown": "{path} 处没有密钥文件：不显示姓名和出生日期",
    "no key file at {path}: notes are not shown": "{path} 处没有密钥文件：不显示备注",
    "no key file at {path}: notes and resident names are not shown": "{path} 处没有密钥文件：不显示备注和服务对象姓名",
    "projections did not catch up within {seconds}s": "视图在 {seconds} 秒内未能赶上日志",
    "lost the database connection ({error}); retrying…": "与数据库的连接已断开（{error}）；正在重试…",
    "reconnected": "已重新连接数据库",
    "community {code} was saved, but its snapshot (a cache) could not be written: {error}": (
        "社区 {code} 已保存，但其快照（缓存）未能写入：{error}"
    ),
    "the ledger views are {lag:int} event(s) behind the log; run 'taizhang projections run' or use --wait": (
        "台账视图落后日志 {lag} 个事件；请运行 'taizhang projections run' 或加 --wait"
    ),
    "the ledger views are {lag:int} event(s) behind the log and another writer has held the store for {seconds}s; "
    "try again when it has finished": "台账视图落后日志 {lag} 个事件，另一写入进程已占用台账库 {seconds} 秒；请待其完成后重试",
    "the import is saved; the ledger views were not brought up to date ({error:msg}): the next query will": (
        "导入已保存；台账视图未能更新（{error}）：下一次查询时会更新"
    ),
    "the init of the store at {store} did not finish; run taizhang {command} again as its owner": (
        "{store} 处台账库的初始化没有完成；请以其所有者身份再次运行 taizhang {command}"
    ),
    "ignored the snapshot of aggregate {aggregate} at version {version:int}: it does not decode ({problem}); "
    "its events were replayed instead": "已忽略聚合 {aggregate} 在版本 {version} 的快照：无法解码（{problem}）；已改为重放其事件",
    # -- actors, roles and scopes (commands/access.py, commands/cli_actor.py, domain/actors.py) --
    "permission denied: {reason:msg}": "权限不足：{reason}",
    "actor {name} ({role}, {scope})": "操作人 {name}（{role}，{scope}）",
    "{who:msg} may not run '{command}' (it needs {roles})": "{who}无权执行 '{command}'（需要角色 {roles}）",
    "{who:msg} may not run '{command}' on {where:term}: outside its scope; add {option} {value}": (
        "{who}不能对 {where} 执行 '{command}'：超出其范围；请加上 {option} {value}"
    ),
    "{who:msg} may not run '{command}' on {where:term}: outside its scope": "{who}不能对 {where} 执行 '{command}'：超出其范围",
    "{who:msg} may not run '{command}': no access policy covers it (please report it)": (
        "{who}不能执行 '{command}'：没有适用的权限规则（请报告此问题）"
    ),
    "{who:msg} was revoked": "{who}已被撤销",
    "actor {name} is not known to this store": "本台账库没有操作人 {name}",
    "{who:msg} has no database login, but this connection is logged in as {login}": (
        "{who}未绑定数据库账号，但本连接的账号是 {login}"
    ),
    "{who:msg} is bound to database login {bound}, but this connection is logged in as {login}": (
        "{who}绑定的数据库账号是 {bound}，但本连接的账号是 {login}"
    ),
    "{who:msg} may not change the ledger: auditors write nothing": "{who}不能修改台账：审计人员不写入任何内容",
    "{who:msg} may not change the ledger: the projection worker writes only the views": (
        "{who}不能修改台账：视图维护进程只写视图"
    ),
    "--scope: a {role} keeps the views of the whole store: use --scope city, not {scope}": (
        "--scope：{role} 维护整个台账库的视图：请用 --scope city，而不是 {scope}"
    ),
    "a {role} works for the whole store: its scope must be city, not {scope}": (
        "{role} 面向整个台账库：其范围必须是 city，而不是 {scope}"
    ),
    "database login {login} does not own the store: logins were not bound (a login reads no rows until the owner's login runs actor add or actor revoke)": (
        "数据库账号 {login} 不是台账库所有者：未绑定数据库账号（在所有者的账号运行 actor add 或 actor revoke 之前，这些账号读不到任何行）"
    ),
    "database login {login} may not write the views: only the projection worker's login (a member of taizhang_projector) or the store's owner runs projections": (
        "数据库账号 {login} 无权写入视图：只有视图维护进程的账号（taizhang_projector 的成员）或台账库所有者可以运行 projections"
    ),
    "{who:msg} may not write to {where:term}: outside its scope": "{who}不能写入 {where}：超出其范围",
    "this store has access control; name yourself with --actor or TAIZHANG_ACTOR": (
        "本台账库启用了权限控制；请用 --actor 或 TAIZHANG_ACTOR 指明操作人"
    ),
    "--admin and --no-access-control: give at most one": "--admin 和 --no-access-control：最多给出一个",
    "--admin: required on PostgreSQL (the first admin, bound to this login); or --no-access-control for a store without actors": (
        "--admin：PostgreSQL 上必须给出（第一个管理员，绑定到当前数据库账号）；或用 --no-access-control 创建不设操作人的台账库"
    ),
    "--login: expected a PostgreSQL role name (letters, digits, _), got {value}": (
        "--login：应为 PostgreSQL 角色名（字母、数字、_），实际为 {value}"
    ),
    "--login: only PostgreSQL stores have database logins (on SQLite the file's permissions decide)": (
        "--login：只有 PostgreSQL 台账库有数据库账号（SQLite 由文件权限决定）"
    ),
    "--login: required on PostgreSQL: the database login this actor connects as": (
        "--login：PostgreSQL 上必须给出：该操作人连接所用的数据库账号"
    ),
    "actor name must not be empty": "操作人名称不能为空",
    "actor {name} is already revoked": "操作人 {name} 已被撤销",
    "actor {name} is the last admin; add another admin first": "操作人 {name} 是最后一个管理员；请先添加另一个管理员",
    "actor {name} was revoked; an actor's name is never reused": "操作人 {name} 已被撤销；操作人名称不能重复使用",
    "actor {name} is already granted; an actor's name is never reused": "操作人 {name} 已存在；操作人名称不能重复使用",
    "database login {login} does not exist yet: the database administrator must create it": (
        "数据库账号 {login} 尚不存在：需由数据库管理员创建"
    ),
    "database login {login} is not a member of {group}: GRANT {grant} TO {member}": (
        "数据库账号 {login} 不属于 {group}：GRANT {grant} TO {member}"
    ),
    "expected city, county:NAME, township:COUNTY/NAME or community:CODE, got {value}": (
        "应为 city、county:名称、township:县区/名称 或 community:编码，实际为 {value}"
    ),
    "no actor {name}": "没有操作人 {name}",
    "the first actor of a store must be an admin (or nobody could add the others)": (
        "台账库的第一个操作人必须是管理员（否则无人能添加其他人）"
    ),
    "unknown role {role}": "未知角色 {role}",
    # -- the hash chain, checkpoints and proof bundles (audit verify/keygen/seal/prove/check:
    # infra/chain.py, infra/checkpoint.py, infra/merkle.py, commands/audit_chain.py, cli_audit_chain.py) --
    "the chain is broken at {problem:msg}": "哈希链断裂于{problem}",
    "refusing to seal a broken log: the chain is broken at {problem:msg}": "日志的哈希链已断裂，拒绝封存：断裂于{problem}",
    "position {position:int}: {detail:msg}": "位置 {position}：{detail}",
    "event missing: its chain entry remains, the event was deleted": "事件缺失：其哈希链条目还在，事件已被删除",
    "chain entry missing (deleted); the event itself is intact": "哈希链条目缺失（已被删除）；事件本身完好",
    "event inserted: it is not in the chain": "事件被插入：它不在哈希链中",
    "chain entry altered; the event matches the chain around it": "哈希链条目被改动；事件与其前后的哈希链相符",
    "events reordered: the event stored here was chained at position {moved:int}": (
        "事件顺序被调换：存放在此处的事件链入时位于位置 {moved}"
    ),
    "event changed: its payload or recorded time differs from what was chained": "事件被改动：其内容或记录时间与链入时不同",
    "event not in the chain (inserted, or its chain entry deleted)": "事件不在哈希链中（被插入，或其哈希链条目被删除）",
    "the last event does not match its chain entry (the event or the entry was changed)": (
        "最后一个事件与其哈希链条目不符（事件或条目被改动）"
    ),
    # what the chain alone does not see (infra/chain.py walk, the log readers' noncanonical())
    "the log does not verify at {problem:msg}": "日志未通过验证：{problem}",
    "refusing to seal a broken log: {problem:msg}": "日志未通过验证，拒绝封存：{problem}",
    "aggregate {aggregate} starts at version {version:int}, not 1": "聚合 {aggregate} 从版本 {version} 开始，而不是 1",
    "aggregate {aggregate}: version {version:int} repeats the one at position {position:int}": (
        "聚合 {aggregate}：版本 {version} 与位置 {position} 的版本重复"
    ),
    "aggregate {aggregate}: version {version:int} follows version {last:int} (a version is missing)": (
        "聚合 {aggregate}：版本 {version} 紧接在版本 {last} 之后（缺少一个版本）"
    ),
    "aggregate {aggregate}: version {version:int} comes after version {last:int} (position {position:int})": (
        "聚合 {aggregate}：版本 {version} 出现在版本 {last}（位置 {position}）之后"
    ),
    "recorded time {recorded} is earlier than {last}, recorded before it": "记录时间 {recorded} 早于在它之前记录的 {last}",
    "position {position:int} is not a log position (1 or more)": "位置 {position} 不是有效的日志位置（应为 1 或更大）",
    "originator id {value} is not stored in its canonical form (32 lowercase hex digits): "
    "the application does not see this event": "聚合编号 {value} 的存储形式不规范（应为 32 位小写十六进制数字）：应用程序看不到这个事件",
    "originator version {value} is not a whole number of 1 or more": "聚合版本 {value} 不是大于等于 1 的整数",
    "the event's topic is stored as {type}, not as text": "事件的 topic 存储为 {type}，而不是 text",
    "the event's state is stored as {type}, not as blob": "事件的 state 存储为 {type}，而不是 blob",
    "recorded time {value} is not stored in its canonical form (YYYY-MM-DDTHH:MM:SS.mmmZ)": (
        "记录时间 {value} 的存储形式不规范（应为 YYYY-MM-DDTHH:MM:SS.mmmZ）"
    ),
    "recorded time {value} is not stored in its canonical form (whole milliseconds)": (
        "记录时间 {value} 的存储形式不规范（应精确到整毫秒）"
    ),
    "the commit's last position {value} is not a position at or after its first": "该次提交的最后位置 {value} 不在其起始位置之后",
    # the views recomputed from the log (commands/views_audit.py, infra/scratch.py)
    "--community: cannot be combined with --views (the views cover the whole log)": (
        "--community：不能与 --views 同时使用（视图涵盖整个日志）"
    ),
    "checkpoint views: versions are not projection names and numbers": "检查点 views：versions 不是投影名称与版本号",
    "the views have no tracking row for {names}: run taizhang projections rebuild": (
        "视图中没有 {names} 的进度记录：请运行 taizhang projections rebuild"
    ),
    "the views kept moving while they were checked ({attempts:int} attempts); try again": (
        "核对期间视图一直在更新（已尝试 {attempts} 次）；请重试"
    ),
    "the views recomputed at the sealed position {position:int} do not match the digest sealed at {at}": (
        "在封存位置 {position} 从日志重算的视图与 {at} 封存的摘要不符"
    ),
    "the views stand at different positions ({where}): run taizhang projections run first": (
        "各视图停在不同的位置（{where}）：请先运行 taizhang projections run"
    ),
    "the store has no views to check yet: run taizhang projections run": "台账库中还没有可核对的视图：请先运行 taizhang projections run",
    "view {table} is missing from the store (recomputed from the log, it exists)": "台账库中缺少视图 {table}（由日志重算时它存在）",
    "view {table} at position {position:int}: {detail:msg}": "视图 {table} 在位置 {position}：{detail}",
    "row ({key}): {column} is {mine} in the view, {fresh} from the log": "行（{key}）：{column} 在视图中为 {mine}，由日志重算为 {fresh}",
    "row ({key}) is in the view but not in the views recomputed from the log": "行（{key}）在视图中，但不在由日志重算的视图中",
    "row ({key}) recomputed from the log is missing from the view": "由日志重算出的行（{key}）在视图中缺失",
    # the access log's own chain (infra/access_chain.py)
    "the access log does not verify at {problem:msg}": "访问日志未通过验证：{problem}",
    "the record state does not agree with the log: {problem:msg}": "记录状态表与日志不一致：{problem}",
    "record {record} has no record_state row": "记录 {record} 在记录状态表中没有行",
    "record_state holds record {record}, which no service event records": "记录状态表中有记录 {record}，但没有服务事件登记它",
    "record_state of record {record} disagrees with the log in {column}": "记录 {record} 的记录状态在 {column} 上与日志不一致",
    "record_people of record {record} disagrees with the log for {who:term} {code}": "记录 {record} 的人员索引在{who} {code} 上与日志不一致",
    "the log's service events do not replay ({kind}: {error:msg})": "日志中的服务事件无法重放（{kind}：{error}）",
    "record {record} is changed by another community's event": "记录 {record} 被另一社区的事件更改",
    "entry {id:int}: {detail:msg}": "第 {id} 条：{detail}",
    "deleted: its chain entry remains": "已被删除：其哈希链条目还在",
    "deleted: the residents it listed remain": "已被删除：其列出的服务对象记录还在",
    "a column is not stored in its canonical form": "有一列的存储形式不规范",
    "not in the access chain (inserted outside taizhang, or its chain entry deleted)": (
        "不在访问日志的哈希链中（在 taizhang 之外插入，或其哈希链条目被删除）"
    ),
    "does not match its chain entry (it or its residents were changed, or an entry before it was deleted)": (
        "与其哈希链条目不符（它或其服务对象记录被改动，或它之前的某条被删除）"
    ),
    "the access log holds {count:int} entries, fewer than the {sealed:int} sealed at {at}: entries were removed": (
        "访问日志中有 {count} 条，少于 {at} 封存的 {sealed} 条：有条目被删除"
    ),
    "the access log is not an extension of the one sealed at {at}: its first {size:int} entries were changed "
    "(and the access chain recomputed)": "访问日志不是 {at} 封存的访问日志的延续：其前 {size} 条被改动（并且重新计算了哈希链）",
    "checkpoint: unexpected fields": "检查点：字段与格式不符",
    "checkpoint: access_size and access_head go together": "检查点：access_size 与 access_head 必须同时给出",
    "community {code}: position {position:int}: version {version:int} repeats the one at position {previous:int}": (
        "社区 {code}：位置 {position}：版本 {version} 与位置 {previous} 的版本重复"
    ),
    "community {code}: position {position:int}: recorded time {recorded} is earlier than {last}, recorded before it": (
        "社区 {code}：位置 {position}：记录时间 {recorded} 早于在它之前记录的 {last}"
    ),
    "position {position:int}: a chain entry without its event (an event was deleted; run audit verify)": (
        "位置 {position}：哈希链条目没有对应的事件（有事件被删除；请运行 audit verify）"
    ),
    "community {code} has no events in the log": "日志中没有社区 {code} 的事件",
    "community {code}: position {position:int}: version {version:int} where {expected:int} was expected "
    "(event version {missing:int} is missing)": (
        "社区 {code}：位置 {position}：应为版本 {expected}，实际为版本 {version}（缺少事件版本 {missing}）"
    ),
    "community {code}: position {position:int}: version {version:int} is stored before version {previous:int} "
    "(events reordered)": "社区 {code}：位置 {position}：版本 {version} 存放在版本 {previous} 之前（事件顺序被调换）",
    "community {code}: position {position:int}: the event is not in the chain": "社区 {code}：位置 {position}：事件不在哈希链中",
    "community {code}: position {position:int}: the event does not match its chain entry "
    "(its payload or recorded time was changed, or the chain before it; run audit verify)": (
        "社区 {code}：位置 {position}：事件与其哈希链条目不符（其内容或记录时间被改动，或其前面的哈希链被改动；"
        "请运行 audit verify）"
    ),
    "the log is empty: nothing to seal": "日志为空：没有可封存的内容",
    "the log holds {count:int} events, fewer than the {sealed:int} sealed at {at}: events were removed": (
        "日志中有 {count} 个事件，少于 {at} 封存的 {sealed} 个：有事件被删除"
    ),
    "the log is not an extension of the one sealed at {at}: history up to position {position} was rewritten{detail}": (
        "日志不是 {at} 封存的日志的延续：位置 {position} 及之前的历史被改写{detail}"
    ),
    "the log is not an extension of the one sealed at {at}: history up to position {position:int} was rewritten "
    "(the sealed event {n:int} was at position {was:int}, now {now:int})": (
        "日志不是 {at} 封存的日志的延续：位置 {position} 及之前的历史被改写（封存的第 {n} 个事件原在位置 {was}，现在位置 {now}）"
    ),
    "the log is not an extension of the one sealed at {at}: history up to position {position:int} was rewritten "
    "(the chain was recomputed after the change)": (
        "日志不是 {at} 封存的日志的延续：位置 {position} 及之前的历史被改写（改动后哈希链被重新计算过）"
    ),
    "this store holds {count:int} events, fewer than the checkpoint's {size:int}": "本台账库有 {count} 个事件，少于检查点的 {size} 个",
    "this store's first {size:int} events are not the ones in the checkpoint": "本台账库的前 {size} 个事件与检查点中的不同",
    "record {record} is not in the log sealed at {at}": "{at} 封存的日志中没有记录 {record}",
    "record {record} is not claimed by any community": "记录 {record} 不属于任何社区",
    "leaf hashes must be 32 bytes each": "每个叶子哈希必须是 32 字节",
    "leaf {index} is not in a tree of size {size}": "叶子 {index} 不在大小为 {size} 的树中",
    "no consistency proof from size {old} to {new}": "无法给出从大小 {old} 到 {new} 的一致性证明",
    # signing keys and files
    "--key-file: {path} already exists; it is never overwritten": "--key-file：{path} 已存在；不会覆盖它",
    "--key-file: cannot create {path}: {error}": "--key-file：无法创建 {path}：{error}",
    "{option:field}: cannot read {path}: {error}": "{option}：无法读取 {path}：{error}",
    "{option}: {path} is not an Ed25519 signing key (make one with audit keygen)": (
        "{option}：{path} 不是 Ed25519 签名密钥（请用 audit keygen 生成）"
    ),
    "{option}: {path} is not an Ed25519 public key (the .pub file audit keygen wrote)": (
        "{option}：{path} 不是 Ed25519 公钥（应为 audit keygen 写出的 .pub 文件）"
    ),
    "--checkpoint and --public-key: give both (a checkpoint never vouches for itself)": (
        "--checkpoint 和 --public-key：必须同时给出（检查点不能为自己作证）"
    ),
    "--community: cannot be combined with --checkpoint (a checkpoint covers the whole log)": (
        "--community：不能与 --checkpoint 同时使用（检查点覆盖整个日志）"
    ),
    # checkpoint and bundle files (what a tampered or damaged file is told)
    "--checkpoint {path}: {problem:msg}": "--checkpoint {path}：{problem}",
    "bundle {path} does not verify: {problem:msg}": "证明包 {path} 未通过验证：{problem}",
    "{what} is not JSON": "{what} 不是 JSON",
    "checkpoint {path} is not JSON": "检查点 {path} 不是 JSON",
    "bundle is not JSON": "证明包不是 JSON",
    "{what} is not in canonical form (it was changed after it was written)": "{what} 不是规范格式（写出后被改动过）",
    "checkpoint {path} is not in canonical form (it was changed after it was written)": (
        "检查点 {path} 不是规范格式（写出后被改动过）"
    ),
    "bundle is not in canonical form (it was changed after it was written)": "证明包不是规范格式（写出后被改动过）",
    "{what}: unexpected fields": "{what}：字段与格式不符",
    "{name}: not base64 text": "{name}：不是 base64 文本",
    "{name}: not base64": "{name}：不是 base64",
    "{name}: not canonical base64": "{name}：不是规范的 base64",
    "{name}: not a lowercase hex hash": "{name}：不是小写十六进制哈希值",
    "{name}: not a whole number ≥ {minimum}": "{name}：不是 ≥ {minimum} 的整数",
    "checkpoint: format {format} is not {expected}": "检查点：格式 {format} 不是 {expected}",
    "checkpoint: sealed_at is not a UTC time": "检查点：sealed_at 不是 UTC 时间",
    "checkpoint was sealed with key {key}…, not with this public key": "检查点是用密钥 {key}… 封存的，不是用这个公钥",
    "checkpoint signature does not verify: it was changed after sealing": "检查点的签名未通过验证：封存后被改动过",
    "bundle: format {format} is not {expected}": "证明包：格式 {format} 不是 {expected}",
    "bundle: record_id missing": "证明包：缺少 record_id",
    "bundle: no events": "证明包：没有事件",
    "event {n:int}: events are not in log order": "第 {n} 个事件：事件未按日志顺序排列",
    "event {n:int}: index {index:int} is beyond the checkpoint's {size:int} events": "第 {n} 个事件：序号 {index} 超出检查点的 {size} 个事件",
    "event {n:int}: topic or recorded_at is not text": "第 {n} 个事件：topic 或 recorded_at 不是文本",
    "event {n:int}: the payload is not JSON": "第 {n} 个事件：内容不是 JSON",
    "event {n:int} (position {position:int}) is not an event of record {record}": (
        "第 {n} 个事件（位置 {position}）不是记录 {record} 的事件"
    ),
    "event {n:int}: proof is not a list": "第 {n} 个事件：证明不是列表",
    "event {n:int} (position {position:int}) is not in the sealed log: its bytes or its proof were changed": (
        "第 {n} 个事件（位置 {position}）不在封存的日志中：其内容或证明被改动"
    ),
    "the sealed log holds {count:int} events of record {record}; the bundle has {has:int}": (
        "封存的日志中有记录 {record} 的 {count} 个事件；证明包中有 {has} 个"
    ),
    "the record's latest sealed event is at position {position:int}, not the bundle's last": (
        "该记录封存的最新事件在位置 {position}，不是证明包中的最后一个"
    ),
    "record: proof is not a list": "记录：证明不是列表",
    "record {record}: its completeness proof does not verify against the checkpoint": "记录 {record}：其完整性证明与检查点不符",
}


# ---- the matcher --------------------------------------------------------------------------------
PLACEHOLDER = re.compile(r"\{(\w+)(?::(field|term|msg|int))?\}")
# A field, or a value that opens a message, never spans ": ": that is how a message is framed
# by its field (`occurred_at: … is in the future`), and the frame must be translated too.
_NO_COLON = r"(?:(?!: ).)+?"
# A term inside a sentence is one of TERMS or a single word, so that it cannot swallow the
# words in front of it (`skipped reason must not be empty`).
_TERM = "(?:" + "|".join(re.escape(t) for t in sorted(TERMS, key=len, reverse=True)) + r"|[^\s:]+)"
_GROUP = {"": ".+?", "field": _NO_COLON, "term": _TERM, "msg": ".+?", "int": r"[-+]?\d+"}
_MAX_DEPTH = 4


@dataclass(frozen=True)
class Entry:
    """One catalogue entry, ready to match."""

    english: str
    chinese: str
    regex: str
    kinds: dict[str, str]  # placeholder -> "" | "field" | "term" | "msg" | "int"
    weight: int  # characters of literal text: the more, the more specific
    anchor: str  # its longest piece of literal text: a message without it cannot match

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.regex, re.DOTALL)

    def match(self, message: str) -> re.Match[str] | None:
        return self.pattern.fullmatch(message) if self.anchor in message else None


def compile_entry(english: str, chinese: str, *, loose: bool = False) -> Entry:
    """An entry ready to match; `loose` lets `{name:int}` match any text (to match templates)."""
    parts: list[str] = []
    literals: list[str] = []
    kinds: dict[str, str] = {}
    end = 0
    for m in PLACEHOLDER.finditer(english):
        name, kind = m.group(1), m.group(2) or ""
        if name in kinds:
            raise ValueError(f"placeholder {name} appears twice in {english!r}")
        kinds[name] = kind
        literals.append(english[end : m.start()])
        parts.append(re.escape(literals[-1]))
        group = _NO_COLON if m.start() == 0 and kind == "" else _GROUP["" if loose and kind == "int" else kind]
        parts.append(f"(?P<{name}>{group})")
        end = m.end()
    literals.append(english[end:])
    parts.append(re.escape(literals[-1]))
    weight = sum(map(len, literals))
    return Entry(english, chinese, "".join(parts), kinds, weight, max(literals, key=len))


@cache
def entries() -> tuple[Entry, ...]:
    """The catalogue compiled, most specific first (compiled on the first Chinese message only)."""
    compiled = [compile_entry(en, zh) for en, zh in CATALOGUE.items()]
    order = {entry.english: i for i, entry in enumerate(compiled)}
    return tuple(sorted(compiled, key=lambda e: (-e.weight, order[e.english])))


def term(word: str, terms: Mapping[str, str] | None = None) -> str:
    """A field or word in Chinese; an option (`--kind`) or an unknown word as it is."""
    if terms and word in terms:
        return terms[word]
    return TERMS.get(word, word)


def _zh(message: str, terms: Mapping[str, str] | None, depth: int) -> str:
    if depth > _MAX_DEPTH:
        return message
    for entry in entries():
        match = entry.match(message)
        if match is None:
            continue
        values: dict[str, str] = {}
        for name, kind in entry.kinds.items():
            value = match.group(name)
            if kind in ("field", "term"):
                value = term(value, terms)
            elif kind == "msg":
                value = _zh(value, terms, depth + 1)
            values[name] = value
        return fill(entry.chinese, values)
    return message


def fill(template: str, values: Mapping[str, str]) -> str:
    """A template with its placeholders replaced by `values`."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def translate(message: str, lang: str, *, terms: Mapping[str, str] | None = None) -> str:
    """`message` in `lang`; unchanged in English, or when the catalogue has no entry for it.

    `terms` adds field names of the context (an import's Chinese column headers)."""
    if lang != "zh":
        return message
    try:
        return _zh(message, terms, 0)
    except Exception:  # a translation must never cost the user the message itself
        return message


def error_line(message: str, lang: str) -> str:
    """The one line of an error: `Error: …` or `错误：…`."""
    return PREFIX.get(lang, PREFIX["en"]) + translate(message, lang)


def note_line(message: str, lang: str) -> str:
    """A note printed after a command succeeded: `Note: …` or `注意：…`."""
    return NOTE.get(lang, NOTE["en"]) + translate(message, lang)


def import_terms(kind: str) -> dict[str, str]:
    """An import's columns by their Chinese headers, as the clerk's spreadsheet names them."""
    from commands.tabular import COLUMNS

    return {column.name: column.zh for column in COLUMNS.get(kind, [])}
