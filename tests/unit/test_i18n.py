"""The message catalogue of --lang zh (commands/i18n.py).

The coverage test reads the source tree: every message template written in `domain/`,
`commands/`, `infra/` and `projections/` (the text of an exception raised to the user, of
`Malformed(field, …)`, `MalformedInput`, `Refused`, a note given to `warn`) must have a
catalogue entry. A message added without one fails here, naming the template, and so does
a catalogue entry that no message uses any more. To land a branch before its messages are
translated, list its templates in `commands.i18n.NOT_YET_TRANSLATED` (they then print in
English with the Chinese prefix).
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands import i18n
from commands.i18n import CATALOGUE, NOT_YET_TRANSLATED, PLACEHOLDER, TERMS, compile_entry, translate

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("domain", "commands", "infra", "projections")

# Exceptions that report a bug, never a user's mistake: their messages are not translated
# (the CLI prints them as `internal error: …`).
INTERNAL = frozenset(
    {
        "AssertionError",
        "AttributeError",
        "Exit",
        "IndexError",
        "KeyError",
        "LookupError",
        "MapperDeserialisationError",
        "NotImplementedError",
        "PoError",  # commands/i18n_po.py: the translators' tool, never run by a user command
        "RuntimeError",
        "TypeError",
    }
)
# Calls whose string arguments are messages for the user, besides `raise X(…)` and `…Error(…)`.
MESSAGE_CALLS = frozenset(
    {"Malformed", "MalformedInput", "Refused", "NotFound", "AlreadyExists", "NotActive", "RuleViolation", "Busy",
     "UnknownUnit", "BadURL", "warn", "Progress", "stage"}
)  # fmt: skip

# Messages built where the scan cannot see them (click's own, the CLI's frames, the import's
# row lines and header problems), each with the Chinese it must become: every catalogue entry
# that matches no source template needs one here.
EXAMPLES = {
    "2 row(s) malformed; nothing imported": "2 行有误，未导入任何内容",
    "password set for sup-hj": "已为 sup-hj 设置密码",  # commands/cli/actor.py (actor password)
    "revoked token 3f9a1c2b7d4e of clerk-hj": "已撤销 clerk-hj 的令牌 3f9a1c2b7d4e",  # actor token --revoke
    "token 3f9a1c2b7d4e for clerk-hj, valid 30 days; it is shown only now": (
        "已为 clerk-hj 生成令牌 3f9a1c2b7d4e，有效期 30 天；令牌只显示这一次"
    ),
    "the record state does not agree with the log: record_state of record r-1 disagrees with the log in status": (
        "记录状态表与日志不一致：记录 r-1 的记录状态在 status 上与日志不一致"
    ),
    "the record state does not agree with the log: record_people of record r-1 disagrees with the log for resident R1": (
        "记录状态表与日志不一致：记录 r-1 的人员索引在服务对象 R1 上与日志不一致"
    ),
    "the record state does not agree with the log: record r-1 has no record_state row": (
        "记录状态表与日志不一致：记录 r-1 在记录状态表中没有行"
    ),
    "the record state does not agree with the log: record_state holds record r-1, which no service event records": (
        "记录状态表与日志不一致：记录状态表中有记录 r-1，但没有服务事件登记它"
    ),
    "the record state does not agree with the log: the log's service events do not replay "
    "(ValueError: record r-1 is changed by another community's event)": (
        "记录状态表与日志不一致：日志中的服务事件无法重放（ValueError：记录 r-1 被另一社区的事件更改）"
    ),
    "permission denied: actor c1 (clerk, township:八步区/贺街镇) may not run 'ledger summary' on the whole store: "
    "outside its scope; add --township 八步区/贺街镇": (
        "权限不足：操作人 c1（clerk，township:八步区/贺街镇）不能对 整个台账库 执行 'ledger summary'：超出其范围；"
        "请加上 --township 八步区/贺街镇"
    ),
    "permission denied: actor aud (auditor, city) may not run 'service record' (it needs clerk)": (
        "权限不足：操作人 aud（auditor，city）无权执行 'service record'（需要角色 clerk（录入员））"
    ),
    "permission denied: actor boss (admin, city) may not run 'assess run' (it needs auditor or supervisor)": (
        "权限不足：操作人 boss（admin，city）无权执行 'assess run'（需要角色 auditor（审计员）或supervisor（督导员））"
    ),
    "Invalid value for '--wait': 'nan' is not a number of seconds": "'--wait' 的值无效：'nan' 不是有效的秒数",
    "Invalid value for '--output': 'a\\x00' contains a NUL character": "'--output' 的值无效：'a\\x00' 含有 NUL 字符",
    "Invalid value for '--output': '\\ud800.csv' is not a file name this system can use": (
        "'--output' 的值无效：'\\ud800.csv' 不是本系统可用的文件名"
    ),
    "Invalid value for 'COMMUNITY': 'R\\udcff' is not valid UTF-8 text": (
        "'COMMUNITY' 的值无效：'R\\udcff' 不是有效的 UTF-8 文本"
    ),
    "row 7: minutes: 0 is outside 1-1440": "第 7 行：时长(分钟)：0 超出 1-1440 的范围",
    "skipped row 3: community: community HZ-404 is not established": "已跳过：第 3 行：社区：社区 HZ-404 尚未建立",
    "minutes: is required": "时长(分钟)：必须给出",
    "aborted": "已中止",
    "interrupted": "已中断",
    "database: connection refused": "数据库：connection refused",
    "internal error: KeyError: 'x' (please report it; set TAIZHANG_DEBUG=1 to see the traceback)": (
        "内部错误：KeyError：'x'（请报告此问题；设置 TAIZHANG_DEBUG=1 可查看回溯信息）"
    ),
    "Missing option '--kind'.": "缺少选项 '--kind'。",
    "Missing option '--by'. Choose from: community, township, county": "缺少选项 '--by'（可选：community, township, county）。",
    "Missing argument 'FILE'.": "缺少参数 'FILE'。",
    "Missing argument '{a|b}'. Choose from: a, b": "缺少参数 '{a|b}'（可选：a, b）。",
    "Missing command.": "缺少子命令。",
    "No such option '--foo'.": "没有选项 '--foo'。",
    "No such option '--minuts'. Did you mean '--minutes'?": "没有选项 '--minuts'。是否要用 '--minutes'？",
    "No such option '--re'. (Did you mean one of: '--reason', '--record-id'?)": (
        "没有选项 '--re'。是否要用其中之一：'--reason', '--record-id'？"
    ),
    "No such command 'bogus'.": "没有命令 'bogus'。",
    "No such command 'recrd'. Did you mean 'record'?": "没有命令 'recrd'。是否要用 'record'？",
    "No such command 're'. (Did you mean one of: 'rebuild', 'run'?)": "没有命令 're'。是否要用其中之一：'rebuild', 'run'？",
    "Invalid value for '--format': 'xml' is not one of 'table', 'json', 'csv'.": (
        "'--format' 的值无效：'xml' 不是可选的值（可选：'table', 'json', 'csv'）。"
    ),
    "Invalid value for '--per': 'week' is not 'month'.": "'--per' 的值无效：'week' 不是可选的值（只能是 'month'）。",
    "Invalid value: 'x' is not a valid integer.": "值无效：'x' 不是有效的整数。",
    "Invalid value for '--at-position': 'x' is not a valid integer range.": "'--at-position' 的值无效：'x' 不是有效的整数。",
    "Invalid value for '--wait': 'soon' is not a valid float.": "'--wait' 的值无效：'soon' 不是有效的数字。",
    "Invalid value for '--at-position': -1 is not in the range 0<=x<=9.": "'--at-position' 的值无效：-1 不在范围 0<=x<=9 之内。",
    "Invalid value for 'FILE': File 'a.csv' does not exist.": "'FILE' 的值无效：文件 'a.csv' 不存在。",
    "Invalid value for 'FILE': File 'data' is a directory.": "'FILE' 的值无效：文件 'data' 是文件夹。",
    "Invalid value for 'DIR': Directory 'x' is a file.": "'DIR' 的值无效：文件夹 'x' 是文件。",
    "Option '--format' requires an argument.": "选项 '--format' 需要一个值。",
    "Option '--span' requires 2 arguments.": "选项 '--span' 需要 2 个值。",
    "Option '--skip-invalid' does not take a value.": "选项 '--skip-invalid' 不接受值。",
    "Got unexpected extra argument (x)": "多余的参数（x）",
    "Got unexpected extra arguments (x y)": "多余的参数（x y）",
    # The actions a closed period refuses (domain/community.py passes them to the closure's message).
    "cannot record a service on 2026-03-20": "不能登记 2026-03-20 的服务",
    "cannot correct record R-1, a service of 2026-03-05": "不能更正记录 R-1（2026-03-05 的服务）",
    "cannot move record R-1 to 2026-03-30": "不能把记录 R-1 改到 2026-03-30",
    "cannot void record R-1, a service of 2026-03-05": "不能作废记录 R-1（2026-03-05 的服务）",
    "cannot record the departure of resident R3 on 2026-03-15": "不能登记服务对象 R3 于 2026-03-15 离开",
    "cannot record the retirement of provider P2 on 2026-03-15": "不能登记服务人员 P2 于 2026-03-15 退出",
    "cannot start a visit plan for resident R1 on 2026-03-02": "不能为服务对象 R1 设定从 2026-03-02 开始的巡访计划",
    "cannot end the visit plan of resident R2 on 2026-03-20": "不能在 2026-03-20 结束服务对象 R2 的巡访计划",
    "cannot pair provider P1 with resident R1 on 2026-03-02": "不能在 2026-03-02 让服务人员 P1 与服务对象 R1 结对",
    "cannot end the pairing of provider P2 with resident R2 on 2026-03-20": (
        "不能在 2026-03-20 结束服务人员 P2 与服务对象 R2 的结对"
    ),
    "closed: township:八步区/贺街镇 2026-03 (closed by sup01 on 2026-04-01T09:00:00+08:00) + county:八步区 2026-Q1: "
    "cannot record a service on 2026-03-20; reopen it with taizhang ledger reopen --unit township:八步区/贺街镇 "
    "--period 2026-03": (
        "已结账：township:八步区/贺街镇 2026-03（sup01 于 2026-04-01T09:00:00+08:00 结账）+ county:八步区 2026-Q1："
        "不能登记 2026-03-20 的服务；如需更改，请先反结账：taizhang ledger reopen --unit township:八步区/贺街镇 "
        "--period 2026-03"
    ),
    # What audit verify/seal/check say about a tampered log or bundle (infra/chain.py Problem, checkpoint.py).
    "the chain is broken at position 5: event changed: its payload or recorded time differs from what was chained": (
        "哈希链断裂于位置 5：事件被改动：其内容或记录时间与链入时不同"
    ),
    "the chain is broken at position 9: event missing: its chain entry remains, the event was deleted": (
        "哈希链断裂于位置 9：事件缺失：其哈希链条目还在，事件已被删除"
    ),
    "the chain is broken at position 4: event inserted: it is not in the chain": "哈希链断裂于位置 4：事件被插入：它不在哈希链中",
    "the chain is broken at position 6: events reordered: the event stored here was chained at position 7": (
        "哈希链断裂于位置 6：事件顺序被调换：存放在此处的事件链入时位于位置 7"
    ),
    "the chain is broken at position 3: chain entry missing (deleted); the event itself is intact": (
        "哈希链断裂于位置 3：哈希链条目缺失（已被删除）；事件本身完好"
    ),
    "the chain is broken at position 3: chain entry altered; the event matches the chain around it": (
        "哈希链断裂于位置 3：哈希链条目被改动；事件与其前后的哈希链相符"
    ),
    "the chain is broken at position 8: event not in the chain (inserted, or its chain entry deleted)": (
        "哈希链断裂于位置 8：事件不在哈希链中（被插入，或其哈希链条目被删除）"
    ),
    "refusing to seal a broken log: the chain is broken at position 12: "
    "the last event does not match its chain entry (the event or the entry was changed)": (
        "日志的哈希链已断裂，拒绝封存：断裂于位置 12：最后一个事件与其哈希链条目不符（事件或条目被改动）"
    ),
    "view ledger_month_kind at position 12: row (community=HZ-001, month=2026-03, kind=life_care): records is 102 "
    "in the view, 2 from the log": (
        "视图 ledger_month_kind 在位置 12：行（community=HZ-001, month=2026-03, kind=life_care）：records 在视图中为 102，"
        "由日志重算为 2"
    ),
    "view ledger_month_resident at position 12: row (community=HZ-001, month=2026-03, resident=R1) recomputed from "
    "the log is missing from the view": (
        "视图 ledger_month_resident 在位置 12：由日志重算出的行（community=HZ-001, month=2026-03, resident=R1）在视图中缺失"
    ),
    "view ledger_month_kind at position 12: row (community=HZ-001, month=2026-04, kind=counseling) is in the view "
    "but not in the views recomputed from the log": (
        "视图 ledger_month_kind 在位置 12：行（community=HZ-001, month=2026-04, kind=counseling）在视图中，但不在由日志重算的视图中"
    ),
    "the access log does not verify at entry 12: deleted: its chain entry remains": "访问日志未通过验证：第 12 条：已被删除：其哈希链条目还在",
    "the access log does not verify at entry 12: deleted: the residents it listed remain": (
        "访问日志未通过验证：第 12 条：已被删除：其列出的服务对象记录还在"
    ),
    "the access log does not verify at entry 12: a column is not stored in its canonical form": (
        "访问日志未通过验证：第 12 条：有一列的存储形式不规范"
    ),
    "the access log does not verify at entry 12: not in the access chain (inserted outside taizhang, or its chain "
    "entry deleted)": "访问日志未通过验证：第 12 条：不在访问日志的哈希链中（在 taizhang 之外插入，或其哈希链条目被删除）",
    "the access log does not verify at entry 12: does not match its chain entry (it or its residents were changed, "
    "or an entry before it was deleted)": (
        "访问日志未通过验证：第 12 条：与其哈希链条目不符（它或其服务对象记录被改动，或它之前的某条被删除）"
    ),
    "the log does not verify at position 7: aggregate 0f3c: version 6 repeats the one at position 6": (
        "日志未通过验证：位置 7：聚合 0f3c：版本 6 与位置 6 的版本重复"
    ),
    "the log does not verify at position 9: aggregate 0f3c: version 8 follows version 6 (a version is missing)": (
        "日志未通过验证：位置 9：聚合 0f3c：版本 8 紧接在版本 6 之后（缺少一个版本）"
    ),
    "the log does not verify at position 9: aggregate 0f3c: version 3 comes after version 6 (position 8)": (
        "日志未通过验证：位置 9：聚合 0f3c：版本 3 出现在版本 6（位置 8）之后"
    ),
    "the log does not verify at position 1: aggregate 0f3c starts at version 2, not 1": (
        "日志未通过验证：位置 1：聚合 0f3c 从版本 2 开始，而不是 1"
    ),
    "refusing to seal a broken log: the log does not verify at position 9: recorded time 2026-01-01T00:00:00.000Z "
    "is earlier than 2026-03-05T01:30:00.123Z, recorded before it": (
        "日志未通过验证，拒绝封存：日志未通过验证：位置 9：记录时间 2026-01-01T00:00:00.000Z 早于在它之前记录的 "
        "2026-03-05T01:30:00.123Z"
    ),
    "the log does not verify at position 0: position 0 is not a log position (1 or more)": (
        "日志未通过验证：位置 0：位置 0 不是有效的日志位置（应为 1 或更大）"
    ),
    "the log does not verify at position 6: originator id 'ABC' is not stored in its canonical form "
    "(32 lowercase hex digits): the application does not see this event": (
        "日志未通过验证：位置 6：聚合编号 'ABC' 的存储形式不规范（应为 32 位小写十六进制数字）：应用程序看不到这个事件"
    ),
    "the log does not verify at position 6: originator version '6 ' is not a whole number of 1 or more": (
        "日志未通过验证：位置 6：聚合版本 '6 ' 不是大于等于 1 的整数"
    ),
    "the log does not verify at position 6: the event's topic is stored as blob, not as text": (
        "日志未通过验证：位置 6：事件的 topic 存储为 blob，而不是 text"
    ),
    "the log does not verify at position 6: the event's state is stored as text, not as blob": (
        "日志未通过验证：位置 6：事件的 state 存储为 text，而不是 blob"
    ),
    "the log does not verify at position 6: recorded time '2026-01-01' is not stored in its canonical form "
    "(YYYY-MM-DDTHH:MM:SS.mmmZ)": "日志未通过验证：位置 6：记录时间 '2026-01-01' 的存储形式不规范（应为 YYYY-MM-DDTHH:MM:SS.mmmZ）",
    "the log does not verify at position 6: recorded time '2026-01-01 00:00:00.0003+00' is not stored in its "
    "canonical form (whole milliseconds)": (
        "日志未通过验证：位置 6：记录时间 '2026-01-01 00:00:00.0003+00' 的存储形式不规范（应精确到整毫秒）"
    ),
    "the log does not verify at position 6: the commit's last position 2 is not a position at or after its first": (
        "日志未通过验证：位置 6：该次提交的最后位置 2 不在其起始位置之后"
    ),
    "the log is not an extension of the one sealed at 2026-03-31T16:00:00.000Z: history up to position 40 was "
    "rewritten (the sealed event 38 was at position 40, now 41)": (
        "日志不是 2026-03-31T16:00:00.000Z 封存的日志的延续：位置 40 及之前的历史被改写（封存的第 38 个事件原在位置 40，现在位置 41）"
    ),
    "the log is not an extension of the one sealed at 2026-03-31T16:00:00.000Z: history up to position 40 was "
    "rewritten (the chain was recomputed after the change)": (
        "日志不是 2026-03-31T16:00:00.000Z 封存的日志的延续：位置 40 及之前的历史被改写（改动后哈希链被重新计算过）"
    ),
    "bundle record.bundle does not verify: event 2 (position 14) is not in the sealed log: its bytes or its proof "
    "were changed": "证明包 record.bundle 未通过验证：第 2 个事件（位置 14）不在封存的日志中：其内容或证明被改动",
    "bundle record.bundle does not verify: bundle is not in canonical form (it was changed after it was written)": (
        "证明包 record.bundle 未通过验证：证明包不是规范格式（写出后被改动过）"
    ),
    "bundle b.json does not verify: bundle is not JSON": "证明包 b.json 未通过验证：证明包不是 JSON",
    "--checkpoint 2026-03.checkpoint: checkpoint 2026-03.checkpoint is not JSON": (
        "--checkpoint 2026-03.checkpoint：检查点 2026-03.checkpoint 不是 JSON"
    ),
    "--checkpoint cp: checkpoint cp is not in canonical form (it was changed after it was written)": (
        "--checkpoint cp：检查点 cp 不是规范格式（写出后被改动过）"
    ),
    "--checkpoint cp: checkpoint signature: not base64": "--checkpoint cp：checkpoint signature：不是 base64",
    "--key-file: office-seal.key already exists; it is never overwritten": "--key-file：office-seal.key 已存在；不会覆盖它",
    "a.csv: no header row found in the first 20 rows (expected columns: code (编码))": (
        "a.csv：前 20 行中没有找到表头行（应有的列：编码）"
    ),
    "a.csv: missing required column: kind (服务类型)": "a.csv：缺少必需的列：服务类型",
    # What an import left out, printed under its summary (commands/cli/imports.py).
    "ignored columns: 联系电话, 签名": "未导入的列：联系电话, 签名",
    "column K (no header)": "K 列（无表头）",
    "footer rows skipped: 3": "跳过的表尾行：3",
    "blank rows skipped: 2": "跳过的空行：2",
    "row 5: minutes: '45' is a bare number and the column's header names no unit; give --duration-unit "
    "minutes|hours, or write 45分钟 or 1.5小时 in the cell": (
        "第 5 行：时长(分钟)：'45' 是不带单位的数字，而该列表头也没有写明单位；请加 --duration-unit minutes|hours，"
        "或在单元格里写 45分钟 或 1.5小时"
    ),
    "row 6: occurred_at: '3月5日' has no year; give --year YYYY for the dates of this sheet": (
        "第 6 行：服务时间：'3月5日' 没有年份；请用 --year YYYY 给出本表日期的年份"
    ),
    "a.csv: missing required columns: kind (服务类型); minutes (时长(分钟) / 时长 / 分钟)": (
        "a.csv：缺少必需的列：服务类型、时长(分钟)（或 时长 / 分钟）"
    ),
    # What a write or an import reports, and the sentences of audit responsibility, assess explain and
    # audit verify (built by the code, translated where they are printed: commands/output.py emit_write).
    "recorded: 0f8c2d1e-6d3b-4c1a-9a52-3b1f5e2a7c90": "已登记：0f8c2d1e-6d3b-4c1a-9a52-3b1f5e2a7c90",
    "already recorded (unchanged): 0f8c2d1e-6d3b-4c1a-9a52-3b1f5e2a7c90": "此前已登记（未改动）：0f8c2d1e-6d3b-4c1a-9a52-3b1f5e2a7c90",
    "corrected 0f8c2d1e-6d3b-4c1a-9a52-3b1f5e2a7c90 (revision 2)": "已更正 0f8c2d1e-6d3b-4c1a-9a52-3b1f5e2a7c90（第 2 次修订）",
    "voided 0f8c2d1e-6d3b-4c1a-9a52-3b1f5e2a7c90": "已作废 0f8c2d1e-6d3b-4c1a-9a52-3b1f5e2a7c90",
    "enrolled resident R1 in community HZ-001": "服务对象 R1 已在社区 HZ-001 入册",
    "updated resident R1 in community HZ-001": "已更新社区 HZ-001 的服务对象 R1",
    "resident R1 departed community HZ-001 on 2026-03-15": "服务对象 R1 已于 2026-03-15 离开社区 HZ-001",
    "registered provider P1 in community HZ-001": "服务人员 P1 已在社区 HZ-001 登记",
    "provider P1 retired from community HZ-001 on 2026-03-15": "服务人员 P1 已于 2026-03-15 从社区 HZ-001 退出",
    "established community HZ-001 石门新型农村社区": "已成立社区 HZ-001 石门新型农村社区",
    "registered official O-BB-01 刘海波": "已登记责任人 O-BB-01 刘海波",
    "allocated 12,000.00 yuan of line 民政局 贺民发〔2026〕12号 to county:八步区 on 2026-01-15": "已于 2026-01-15 将资金 民政局 贺民发〔2026〕12号 12,000.00 元下达到 county:八步区",
    "transferred 6,000.00 yuan from county:八步区 to township:八步区/贺街镇 on 2026-02-01": "已于 2026-02-01 从 county:八步区 向 township:八步区/贺街镇 拨付 6,000.00 元",
    "spent 350.00 yuan in community HZ-001 on 2026-03-05, voucher 记-031": "社区 HZ-001 已于 2026-03-05 支出 350.00 元，凭证号 记-031",
    "reversed the spend of voucher 记-031 in community HZ-001 on 2026-03-20": "已于 2026-03-20 红字冲销社区 HZ-001 凭证号 记-031 的支出",
    "returned 500.00 yuan of line 5e1f0b7a-3c4d-4e2f-9a8b-7c6d5e4f3a21 from township:八步区/贺街镇 on 2026-12-20": "township:八步区/贺街镇 已于 2026-12-20 退回资金 5e1f0b7a-3c4d-4e2f-9a8b-7c6d5e4f3a21 500.00 元",
    "the payees of community HZ-001 in 2026": "社区 HZ-001 2026 年的收款人",
    "closed: township:八步区/贺街镇 2026-03 (closed by sup01 on 2026-04-01T09:00:00+08:00): cannot allocate line 民政局 D1 on 2026-03-05; reopen it with taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03": "已结账：township:八步区/贺街镇 2026-03（sup01 于 2026-04-01T09:00:00+08:00 结账）：不能在 2026-03-05 下达资金 民政局 D1；如需更改，请先反结账：taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03",
    "closed: township:八步区/贺街镇 2026-03 (closed by sup01 on 2026-04-01T09:00:00+08:00): cannot pass line 民政局 D1 down from township:八步区/贺街镇 on 2026-03-05; reopen it with taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03": "已结账：township:八步区/贺街镇 2026-03（sup01 于 2026-04-01T09:00:00+08:00 结账）：不能在 2026-03-05 从 township:八步区/贺街镇 拨付资金 民政局 D1；如需更改，请先反结账：taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03",
    "closed: township:八步区/贺街镇 2026-03 (closed by sup01 on 2026-04-01T09:00:00+08:00): cannot pass line 民政局 D1 down to community:HZ-001 on 2026-03-05; reopen it with taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03": "已结账：township:八步区/贺街镇 2026-03（sup01 于 2026-04-01T09:00:00+08:00 结账）：不能在 2026-03-05 向 community:HZ-001 拨付资金 民政局 D1；如需更改，请先反结账：taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03",
    "closed: township:八步区/贺街镇 2026-03 (closed by sup01 on 2026-04-01T09:00:00+08:00): cannot record a spend of voucher 记-031 on 2026-03-05; reopen it with taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03": "已结账：township:八步区/贺街镇 2026-03（sup01 于 2026-04-01T09:00:00+08:00 结账）：不能登记 2026-03-05 凭证号 记-031 的支出；如需更改，请先反结账：taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03",
    "closed: township:八步区/贺街镇 2026-03 (closed by sup01 on 2026-04-01T09:00:00+08:00): cannot reverse the spend of voucher 记-031 on 2026-03-05; reopen it with taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03": "已结账：township:八步区/贺街镇 2026-03（sup01 于 2026-04-01T09:00:00+08:00 结账）：不能在 2026-03-05 冲销凭证号 记-031 的支出；如需更改，请先反结账：taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03",
    "closed: township:八步区/贺街镇 2026-03 (closed by sup01 on 2026-04-01T09:00:00+08:00): cannot return money of line 民政局 D1 on 2026-03-05; reopen it with taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03": "已结账：township:八步区/贺街镇 2026-03（sup01 于 2026-04-01T09:00:00+08:00 结账）：不能在 2026-03-05 退回资金 民政局 D1；如需更改，请先反结账：taizhang ledger reopen --unit township:八步区/贺街镇 --period 2026-03",
    "voucher 记-031 of community:HZ-001 in 2026 is already used by spend 6a2b1c8d-4e5f-4a3b-8c9d-0e1f2a3b4c52 on line 民政局 D1": "community:HZ-001 在 2026 年的凭证号 记-031 已被资金 民政局 D1 的支出 6a2b1c8d-4e5f-4a3b-8c9d-0e1f2a3b4c52 使用",
    "services.csv: added 30, existing 2, skipped 1": "services.csv：新增 30 条，已有 2 条，跳过 1 条",
    "closed township:八步区/贺街镇 2026-03 in 1 community": "已结账：township:八步区/贺街镇 2026-03，共 1 个社区",
    "closed township:八步区/贺街镇 2026-03 in 12 communities": "已结账：township:八步区/贺街镇 2026-03，共 12 个社区",
    "reopened township:八步区/贺街镇 2026-03 in 1 community": "已反结账：township:八步区/贺街镇 2026-03，共 1 个社区",
    "reopened township:八步区/贺街镇 2026-03 in 12 communities": "已反结账：township:八步区/贺街镇 2026-03，共 12 个社区",
    "R002 in HZ-001: a visit at least every 30 days by P1 from 2026-03-01": "HZ-001 的 R002：自 2026-03-01 起至少每 30 天由 P1 巡访一次",
    "R002 in HZ-001: visit plan ended on 2026-03-31": "HZ-001 的 R002：巡访计划于 2026-03-31 结束",
    "P1 paired with R002 in HZ-001 from 2026-03-01": "P1 自 2026-03-01 起与 HZ-001 的 R002 结对",
    "P1 no longer paired with R002 in HZ-001 from 2026-03-31": "P1 自 2026-03-31 起不再与 HZ-001 的 R002 结对",
    "every 30 days by P09": "每 30 天巡访一次，由 P09 负责",
    "since 2026-03-01": "自 2026-03-01 起",
    "at least 120, actual 98": "目标至少 120，实际 98",
    "county:八步区 due 2026-03-31": "county:八步区，限期 2026-03-31",
    "item 5b1f0c7e-2f44-4a34-9a40-8f0e7e0c2a11": "督办事项 5b1f0c7e-2f44-4a34-9a40-8f0e7e0c2a11",
    "resolved 2026-03-20": "2026-03-20 办结",
    "2026-10-03..2026-11-01: none": "2026-10-03 至 2026-11-01：无服务记录",
    "2026-10-03..2026-11-01: 70b80d53-9779-41d7-9616-f5743a35a17a,ec6a6e0b-bcc4-4559-8781-14e75f3be45c": "2026-10-03 至 2026-11-01：70b80d53-9779-41d7-9616-f5743a35a17a,ec6a6e0b-bcc4-4559-8781-14e75f3be45c",
    "coverage of township:八步区/贺街镇 in 2026-11: 0.4048 (51 / 126)": "township:八步区/贺街镇 2026-11 覆盖率：0.4048（51 / 126）",
    "intact: community HZ-001, 192 events chained": "完好：社区 HZ-001，192 个事件均在哈希链中",
    "intact: 10431 events chained, up to position 10431; 5 access-log entries chained": "完好：10431 个事件均在哈希链中，直至位置 10431；访问日志 5 条均在哈希链中",
    "intact: 10431 events; the 10000 sealed at 2026-04-01T09:00:00.000+08:00 are unchanged and 431 were appended since": "完好：10431 个事件；2026-04-01T09:00:00.000+08:00 封存的 10000 个未被改动，此后新增 431 个",
    "the views at the sealed position 10000: equal": "封存位置 10000 的视图：equal",
    "views: all 14 tables equal the views recomputed from the log up to position 10431 (digest 4f2a)": "视图：全部 14 张表与由日志重算至位置 10431 的视图一致（摘要 4f2a）",
    "O-001 is secretary of township:八步区/贺街镇 from 2026-01-01": "O-001 自 2026-01-01 起任 township:八步区/贺街镇 的书记",
    "O-001 is no longer deputy of township:八步区/贺街镇 from 2026-07-01": "O-001 自 2026-07-01 起不再任 township:八步区/贺街镇 的分管负责人",
    "target for county:八步区 2026-Q1: records at least 1200": "county:八步区 2026-Q1 的目标：服务记录数至少 1200",
    "decomposed county:八步区 2026-Q1 records into 12 unit(s)": "已把 county:八步区 2026-Q1 的服务记录数目标分解到 12 个单位",
    "filed the debriefing of O-001 for township:八步区/贺街镇 2026-Q1": "已提交 O-001 对 township:八步区/贺街镇 2026-Q1 的专项述职",
    "key id 7544c47c41ef6ee0": "密钥编号 7544c47c41ef6ee0",
    "wrote office-seal.key (private) and office-seal.key.pub:": "已写出 office-seal.key（私钥）和 office-seal.key.pub（公钥）：",
    "sealed 10453 events (up to position 10453) into 2026-03.checkpoint": "已封存 10453 个事件（直至位置 10453），写入 2026-03.checkpoint",
    "wrote record.bundle: 3 events of record 7014a3c1-2f2e-4ae2-a693-c2912350158f": "已写出 record.bundle：记录 7014a3c1-2f2e-4ae2-a693-c2912350158f 的 3 个事件",
    "wrote line.bundle: 7 events of funding line 民政局/贺民发〔2026〕12号": "已写出 line.bundle：资金 民政局/贺民发〔2026〕12号 的 7 个事件",
    "wrote 82 row(s) to 资金台账.xlsx": "已将 82 行写入 资金台账.xlsx",
    "verified: record 7014a3c1-2f2e-4ae2-a693-c2912350158f has exactly these 3 event(s) in the log sealed at 2026-12-03T19:42:14.376+08:00 (10453 events, key 7544c47c41ef6ee0)": "验证通过：在 2026-12-03T19:42:14.376+08:00 封存的日志中（共 10453 个事件，密钥 7544c47c41ef6ee0），记录 7014a3c1-2f2e-4ae2-a693-c2912350158f 恰好有以下 3 个事件",
    "  position 2282: ServiceRecorded recorded 2026-12-03T19:42:09.681+08:00 by clerk01": "  位置 2282：服务登记，clerk01 于 2026-12-03T19:42:09.681+08:00 录入",
    "erased resident R007 of community HZ-001: 3 key(s) destroyed (the resident's and the notes of 2 record(s))": "已删除社区 HZ-001 的服务对象 R007：销毁了 3 个密钥（该服务对象的，以及 2 条记录的备注的）",
    "backed up 10454 event(s) of sqlite:///taizhang.db to backups/t.db (17,870,848 bytes). The key file is not in it: back up taizhang.key separately.": "已把 sqlite:///taizhang.db 的 10454 个事件备份到 backups/t.db（17,870,848 字节）。备份中不含密钥文件：请另行备份 taizhang.key。",
    "clerk-hj01 is clerk of township:八步区/贺街镇": "clerk-hj01 是 township:八步区/贺街镇 的录入员",
    "worker is projector of city (login tz_worker)": "worker 是全市的视图进程（数据库账号 tz_worker）",
    "admin01 is admin of city": "admin01 是全市的管理员",
    "sup-bb is supervisor of county:八步区 (login sup_bb)": "sup-bb 是 county:八步区 的督导员（数据库账号 sup_bb）",
    "re-wrapped 5664 data key(s) under master key mk-1b34effc4dc0a5d1 (was mk-614fcfcd238a2f5f) in one transaction.": "已在一个事务中用主密钥 mk-1b34effc4dc0a5d1（原为 mk-614fcfcd238a2f5f）重新封装 5664 个数据密钥。",
    "The store now opens only with the new key file taizhang.key.new. Next:": "台账库现在只能用新的密钥文件 taizhang.key.new 打开。接下来：",
    "  1. back up taizhang.key.new now, apart from the database: without it no name can be read;": "  1. 立即备份 taizhang.key.new，与数据库分开存放：没有它，任何姓名都无法读取；",
    "  2. swap the files:  mv taizhang.key taizhang.key.old-mk-1 && mv taizhang.key.new taizhang.key": "  2. 调换文件：  mv taizhang.key taizhang.key.old-mk-1 && mv taizhang.key.new taizhang.key",
    "     (or point --key-file / TAIZHANG_KEY_FILE at the new file on every machine that uses the store);": "     （或在每台使用本台账库的机器上，把 --key-file / TAIZHANG_KEY_FILE 指向新文件）；",
    "  3. destroy taizhang.key.old-mk-1 once no backup made before now is needed: it opens only those.": "  3. 当不再需要此前做的备份时，销毁 taizhang.key.old-mk-1：它只能打开那些备份。",
    "filed 2026-04-01T09:00:00.000+08:00": "2026-04-01T09:00:00.000+08:00 提交",
    "--duty: unknown duty 'boss' (one of: secretary, deputy, contact_point)": "--duty：未知的职责 'boss'（可选：secretary（书记）、deputy（分管负责人）、contact_point（联系点））",
    "initialised sqlite:///taizhang.db (time zone Asia/Shanghai); key file taizhang.key (created) — back it up": "已初始化 sqlite:///taizhang.db（时区 Asia/Shanghai）；密钥文件 taizhang.key（新建）——请备份",
    "initialised postgresql://tz@db/taizhang (time zone Asia/Shanghai); access control on, admin root; key file /etc/taizhang/taizhang.key (existing, kept) — back it up": "已初始化 postgresql://tz@db/taizhang（时区 Asia/Shanghai）；已启用权限控制，管理员 root；密钥文件 /etc/taizhang/taizhang.key（原有，保留）——请备份",
    "loaded the demo (seed 1) into sqlite:///demo.db:": "已把演示数据（种子 1）载入 sqlite:///demo.db：",
    "  5 counties, 17 townships, 60 communities (10 pilot, 50 demonstration)": "  5 个县区，17 个乡镇，60 个社区（试点 10 个，示范 50 个）",
    "  3734 residents, 433 providers": "  服务对象 3734 人，服务人员 433 人",
    "  4307 services from 2026-09-03 to 2026-12-03 (129 corrected, 44 voided, 186 entered late)": "  2026-09-03 至 2026-12-03 共 4307 条服务记录（更正 129 条，作废 44 条，逾期登记 186 条）",
    "  50 officials with 50 duties, 8 debriefings; 1117 visit plans, 196 pairings; 144 targets, 13 supervision items": "  责任人 50 名，职责 50 项，专项述职 8 份；巡访计划 1117 个，结对 196 对；目标 144 项，督办事项 13 项",
}


# ---- reading the message templates of the source tree -------------------------------------------
def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _shapes(node: ast.expr) -> list[str] | None:
    """The texts an expression can take, each interpolation written `{}`; None if not text."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        choices = [_shapes(part) or ["{}"] for part in node.values]
        return ["".join(combo) for combo in itertools.product(*choices)]
    if isinstance(node, ast.FormattedValue):
        return _shapes(node.value) if isinstance(node.value, (ast.IfExp, ast.Constant)) else ["{}"]
    if isinstance(node, ast.IfExp):
        body, orelse = _shapes(node.body), _shapes(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _shapes(node.left), _shapes(node.right)
        if left is None and right is None:
            return None
        return [a + b for a in (left or ["{}"]) for b in (right or ["{}"])]
    return None


def source_templates() -> dict[str, list[str]]:
    """Every message template of the source tree -> where it is written."""
    found: dict[str, list[str]] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "i18n.py":
                continue  # the catalogue itself
            tree = ast.parse(path.read_text(encoding="utf-8"))
            raised = {id(node.exc) for node in ast.walk(tree) if isinstance(node, ast.Raise) and node.exc is not None}
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = _callee(node)
                is_super_init = (
                    name == "__init__" and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Call)
                    and _callee(node.func.value) == "super"
                )  # fmt: skip
                if name in INTERNAL or not (
                    id(node) in raised or name in MESSAGE_CALLS or name.endswith("Error") or is_super_init
                ):
                    continue
                args = node.args[1:] if name == "Malformed" else node.args  # Malformed(field, message)
                for arg in args:
                    for shape in _shapes(arg) or []:
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.setdefault(shape, []).append(where)
    return found


# ---- does the catalogue cover a template? -------------------------------------------------------
_OPTION = re.compile(r"-{1,2}[A-Za-z][\w-]*")
_LOOSE = sorted(
    (compile_entry(en, zh, loose=True) for en, zh in CATALOGUE.items()),
    key=lambda e: (-e.weight, list(CATALOGUE).index(e.english)),
)  # in the order translate() tries them


def _absorbs(kind: str, value: str) -> bool:
    """Whether a placeholder may stand for this piece of a template without hiding English."""
    if value == "{}":
        return True
    if kind in ("field", "term"):
        return value in TERMS or _OPTION.fullmatch(value) is not None
    if kind == "msg":
        return covering(value) is not None
    return re.search("[A-Za-z]", value.replace("{}", "")) is None


def covering(template: str) -> str | None:
    """The catalogue entry that translates every word of `template` (`{}` = interpolation)."""
    for entry in _LOOSE:
        match = entry.match(template)
        if match and all(_absorbs(kind, match.group(name)) for name, kind in entry.kinds.items()):
            return entry.english
    return None


@pytest.fixture(scope="module")
def templates() -> dict[str, list[str]]:
    found = source_templates()
    assert len(found) > 150, "the scan found too few messages: has the source tree moved?"
    return found


def test_every_message_of_the_source_tree_has_a_chinese_entry(templates: dict[str, list[str]]) -> None:
    missing = {t: where for t, where in templates.items() if covering(t) is None and t not in NOT_YET_TRANSLATED}
    assert not missing, "messages without an entry in commands/locale/zh/LC_MESSAGES/taizhang.po:\n" + "\n".join(
        f"  {t!r}  ({', '.join(where)})" for t, where in sorted(missing.items())
    )


def test_not_yet_translated_lists_only_untranslated_messages_of_the_source_tree(
    templates: dict[str, list[str]],
) -> None:
    stale = sorted(t for t in NOT_YET_TRANSLATED if t not in templates or covering(t) is not None)
    assert not stale, f"remove from NOT_YET_TRANSLATED (translated, or no longer in the source): {stale}"


def test_every_entry_is_used_by_the_source_tree_or_an_example(templates: dict[str, list[str]]) -> None:
    used = {covering(t) for t in templates}
    for example in EXAMPLES:
        used |= _entries_used(example)
    unused = sorted(set(CATALOGUE) - used)
    assert not unused, f"catalogue entries no message uses (stale, or add an EXAMPLE): {unused}"


def _entries_used(message: str) -> set[str]:
    """The entries that translate `message`, nested ones included."""
    for entry in i18n.entries():
        match = entry.match(message)
        if match:
            used = {entry.english}
            for name, kind in entry.kinds.items():
                if kind == "msg":
                    used |= _entries_used(match.group(name))
            return used
    return set()


@pytest.mark.parametrize(("english", "chinese"), EXAMPLES.items(), ids=list(EXAMPLES))
def test_examples(english: str, chinese: str) -> None:
    assert translate(english, "zh") == chinese
    assert translate(english, "en") == english


# ---- each entry on its own ---------------------------------------------------------------------
SAMPLE_MESSAGE = ("reason must not be empty", "原因不能为空")


def _instantiate(english: str) -> tuple[str, dict[str, str]]:
    """The entry's English filled with sample values, and what each placeholder must print."""
    values: dict[str, str] = {}
    shown: dict[str, str] = {}
    for i, m in enumerate(PLACEHOLDER.finditer(english)):
        name, kind = m.group(1), m.group(2) or ""
        if kind == "int":
            values[name] = shown[name] = str(40 + i)
        elif kind == "msg":
            values[name], shown[name] = SAMPLE_MESSAGE
        elif kind in ("field", "term"):
            values[name], shown[name] = "birth_date", "出生日期"
        elif kind == "word":
            values[name], shown[name] = "secretary", "书记"
        else:
            values[name] = shown[name] = f"V{i}値"
    return i18n.fill(english, values), shown


@pytest.mark.parametrize(("english", "chinese"), CATALOGUE.items(), ids=list(CATALOGUE))
def test_each_entry_translates_its_own_message_and_keeps_every_value(english: str, chinese: str) -> None:
    en_names = [m.group(1) for m in PLACEHOLDER.finditer(english)]
    zh = [m for m in PLACEHOLDER.finditer(chinese)]
    assert all(m.group(2) is None for m in zh), "converters are written on the English side only"
    assert sorted(m.group(1) for m in zh) == sorted(en_names), "the Chinese must show every value, once"
    assert re.search("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", chinese), "no Chinese in the Chinese template"
    message, shown = _instantiate(english)
    expected = i18n.fill(chinese, shown)
    # Another, more specific entry must not take this entry's messages.
    assert translate(message, "zh") == expected


# ---- the matcher --------------------------------------------------------------------------------
def test_a_message_without_an_entry_is_printed_as_it_is() -> None:
    assert translate("the moon is made of cheese", "zh") == "the moon is made of cheese"
    assert i18n.error_line("the moon is made of cheese", "zh") == "错误：the moon is made of cheese"
    assert i18n.error_line("the moon is made of cheese", "en") == "Error: the moon is made of cheese"
    assert i18n.note_line("the moon", "zh") == "注意：the moon"
    # An untranslated message inside a translated frame keeps its English words.
    assert translate("minutes: the moon", "zh") == "时长(分钟)：the moon"


def test_a_field_framing_a_message_is_translated_with_it() -> None:
    # A value opening a template never swallows the `field: ` frame in front of it.
    assert translate("occurred_at: 2030-01-01T00:00:00+08:00 is in the future", "zh") == (
        "服务时间：2030-01-01T00:00:00+08:00 晚于当前时间"
    )
    assert translate("kind: kind must not be empty", "zh") == "服务类型：服务类型不能为空"
    assert translate("--into: township:A/B is not inside county:C", "zh") == "--into：township:A/B 不在 county:C 之内"


def test_an_import_names_a_field_as_its_sheet_does() -> None:
    message = "row 4: code: code 'a b' may not contain spaces, '/' or list separators"
    assert translate(message, "zh", terms=i18n.import_terms("communities")) == (
        "第 4 行：编码：编号 'a b' 不能含有空格、'/' 或列表分隔符"
    )
    assert translate(message, "zh", terms=i18n.import_terms("residents")).startswith("第 4 行：编号：")


def test_a_broken_entry_costs_the_translation_not_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> tuple[i18n.Entry, ...]:
        raise re.error("bad pattern")

    monkeypatch.setattr(i18n, "entries", broken)
    assert translate("reason must not be empty", "zh") == "reason must not be empty"


_TEXT = st.text(max_size=80)


@given(_TEXT)
def test_translate_never_fails_and_english_is_left_alone(message: str) -> None:
    assert translate(message, "en") == message
    assert isinstance(translate(message, "zh"), str)


# Values as users type them: codes, names, dates, paths (no ": ", which frames a message).
_VALUE = st.from_regex(r"[A-Za-z0-9\u4e00-\u9fff'./_-][A-Za-z0-9\u4e00-\u9fff'./_:-]{0,15}", fullmatch=True).filter(
    lambda v: ": " not in v and not v.endswith(":")
)
_PLAIN = [
    en for en in CATALOGUE if PLACEHOLDER.search(en) and all(m.group(2) is None for m in PLACEHOLDER.finditer(en))
]


@given(st.sampled_from(_PLAIN), st.data())
def test_every_value_survives_translation(english: str, data: st.DataObject) -> None:
    names = [m.group(1) for m in PLACEHOLDER.finditer(english)]
    values = {name: data.draw(_VALUE, label=name) for name in names}
    message = i18n.fill(english, values)
    out = translate(message, "zh")
    assert out != message, "not translated"
    for value in values.values():
        assert value in out, (message, out)
