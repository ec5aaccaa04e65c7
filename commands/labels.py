"""Column labels for table and xlsx output, in the language of --lang."""

from __future__ import annotations

from typing import Any

from domain.vocab import CATEGORIES, GENDERS, KINDS, PLACES, ROLES, Vocabulary

FIELDS: dict[str, tuple[str, str]] = {
    # field: (en, zh)
    "record_id": ("record id", "记录编号"),
    "community": ("community", "社区"),
    "community_name": ("community name", "社区名称"),
    "county": ("county", "县区"),
    "township": ("township", "乡镇"),
    "kind": ("kind", "服务类型"),
    "residents": ("residents", "服务对象"),
    "providers": ("providers", "服务人员"),
    "occurred_at": ("occurred at", "服务时间"),
    "minutes": ("minutes", "时长(分钟)"),
    "place": ("place", "地点"),
    "note": ("note", "备注"),
    "entered_on": ("entered on", "登记日期"),
    "status": ("status", "状态"),
    "revision": ("revision", "修订次数"),
    "late": ("late", "逾期登记"),
    "recorded_at": ("recorded at", "录入时间"),
    "recorded_by": ("recorded by", "录入人"),
    "revised_at": ("revised at", "修订时间"),
    "revised_by": ("revised by", "修订人"),
    "month": ("month", "月份"),
    "records": ("records", "服务记录"),
    "residents_served": ("residents served", "服务对象人数"),
    "kinds": ("by kind", "分类记录"),
    "code": ("code", "编号"),
    "name": ("name", "姓名"),
    "village": ("village", "行政村"),
    "natural_villages": ("natural villages", "自然村"),
    "established_on": ("established", "成立日期"),
    "birth_date": ("birth date", "出生日期"),
    "gender": ("gender", "性别"),
    "categories": ("categories", "类别"),
    "grid": ("grid", "网格"),
    "household": ("household", "户号"),
    "enrolled_on": ("enrolled", "入册日期"),
    "departed_on": ("departed", "离开日期"),
    "departure_reason": ("departure reason", "离开原因"),
    "role": ("role", "角色"),
    "team": ("team", "队伍"),
    "registered_on": ("registered", "登记日期"),
    "retired_on": ("retired", "退出日期"),
    "projection": ("projection", "视图"),
    "position": ("position", "位置"),
    "head": ("head", "日志末端"),
    "lag": ("lag", "滞后"),
    # the printed ledger (commands/export.py)
    "seq": ("No.", "序号"),
    "resident_names": ("resident names", "服务对象姓名"),
    "provider_names": ("provider names", "服务人员姓名"),
    # assessments (commands/assess.py)
    "rank": ("rank", "排名"),
    "unit": ("unit", "单位"),
    "score": ("score", "得分"),
    "coverage": ("coverage", "覆盖率"),
    "visit_timeliness": ("visit timeliness", "巡访及时率"),
    "breadth": ("breadth", "服务类型覆盖"),
    "target_attainment": ("target attainment", "目标完成率"),
    "supervision_closure": ("supervision closure", "督办办结率"),
    "data_quality": ("data quality", "数据质量"),
    "fund_execution": ("fund execution", "资金执行率"),
    # the evidence of an assessment, overdue visits, obligations (commands/cli/assess.py); the English
    # label is the field's name, as these tables printed it before they had a Chinese one
    "resident": ("resident", "服务对象"),
    "provider": ("provider", "服务人员"),
    "every": ("every", "巡访间隔(天)"),
    "starts_on": ("starts_on", "开始日期"),
    "ends_on": ("ends_on", "结束日期"),
    "last_visit": ("last_visit", "上次巡访"),
    "due": ("due", "截止日期"),
    "days_overdue": ("days_overdue", "逾期天数"),
    "window": ("window", "考核区间"),
    "counted": ("counted", "计入"),
    "voided": ("voided", "已作废"),
    "obligation": ("obligation", "责任事项"),
    "subject": ("subject", "责任人"),
    "detail": ("detail", "内容"),
    "evidence": ("evidence", "依据"),
    "metric": ("metric", "指标"),
    "at_least": ("at_least", "目标值"),
    "actual": ("actual", "实际值"),
    "attainment": ("attainment", "完成率"),
    "item_id": ("item_id", "事项编号"),
    "item": ("item", "督办事项"),
    "resolved_on": ("resolved_on", "办结日期"),
    # the funding ledger (commands/funds_reads.py)
    "department": ("department", "资金来源"),
    "document": ("document no.", "文号"),
    "purpose": ("purpose", "用途"),
    "amount": ("amount (yuan)", "金额（元）"),
    "allocated": ("allocated", "下达"),
    "received": ("received", "拨入"),
    "passed_down": ("passed down", "拨付下级"),
    "spent": ("spent", "支出"),
    "reversed": ("reversed", "红字冲销"),
    "returned": ("returned", "退回"),
    "balance": ("balance", "结余"),
    "execution_rate": ("execution rate", "执行率"),
    "lines": ("lines", "资金笔数"),
    "line_id": ("line id", "资金编号"),
    "granted_unit": ("granted to", "下达单位"),
    "granted_on": ("granted on", "下达日期"),
    "unit_name": ("unit", "单位名称"),
    "level": ("level", "层级"),
    "day": ("date", "日期"),
    "movement": ("movement", "摘要"),
    "counterpart_name": ("from / to", "拨付单位"),
    "voucher": ("voucher no.", "凭证号"),
    "reversed_on": ("reversed on", "冲销日期"),
    "entry_id": ("entry id", "分录编号"),
    "linked_records": ("linked records", "关联服务记录"),
    "depth": ("depth", "层次"),
    "parent_unit": ("passed down by", "上级拨付单位"),
    "counterpart": ("from / to", "拨付单位"),
    "project": ("project", "项目"),
    "home": ("happiness home", "幸福院"),
    # fields of events (audit history)
    "reason": ("reason", "原因"),
    "on": ("on", "日期"),
    # fields of a funding line's events (audit history --line); the others are the funds reads'
    "transfer_id": ("transfer id", "拨付编号"),
    "from_unit": ("from", "拨付单位"),
    "to_unit": ("to", "接收单位"),
    "spend_id": ("spend id", "支出编号"),
    "payee": ("payee", "收款人"),
    "return_id": ("return id", "退回编号"),
}

# Words of a printed sheet (commands/export.py, commands/cli/ledger.py): (en, zh).
PRINT: dict[str, tuple[str, str]] = {
    "entries": ("Service ledger", "服务信息台账"),
    "summary": ("Service summary", "服务信息汇总"),
    "sheet_entries": ("ledger", "台账"),
    "sheet_summary": ("summary", "汇总"),
    "all": ("all communities", "全部社区"),
    "total": ("Total", "合计"),
    "records": ("{n} records", "{n} 条"),
    "printed": ("Printed {day}", "打印日期：{day}"),
    "as_of": ("as of {moment} ({zone})", "数据截至：{moment}（{zone}）"),
    "at_position": ("at log position {n}", "数据截至日志位置 {n}"),
    "filled_by": ("Prepared by:", "填表人："),
    "checked_by": ("Checked by:", "审核人："),
    "date": ("Date:", "日期："),
    "footer": ("Page &P of &N", "第 &P 页 共 &N 页"),
    "no_names": (
        "Resident names are not shown: no master key file was given; codes only.",
        "未提供主密钥文件，服务对象姓名未显示，仅列编号。",
    ),
    "quarter": ("Q{q} {year}", "{year}年第{q_zh}季度"),
    "month": ("{month_en} {year}", "{year}年{month}月"),
    "year": ("{year}", "{year}年"),
    "day": ("{day}", "{year}年{month}月{d}日"),
    "range": ("{first} – {last}", "{first}至{last}"),
    "from": ("from {first}", "{first}起"),
    "to": ("to {last}", "截至{last}"),
    # under an assessment (commands/assess.py)
    "rubric": ("rubric {name} v{version} (sha256 {sha256})", "评分细则 {name} v{version}（sha256 {sha256}）"),
    "judged": ("as of {moment}, log position {position}", "截至 {moment}，日志位置 {position}"),
    "now": ("now", "当前"),
    # the funding ledger (commands/funds_reads.py)
    "funds": ("Funding ledger", "资金台账"),
    "sheet_funds": ("funds", "资金台账"),
    "all_units": ("all units", "全市"),
    "in_capitals": ("{what} in words: {words}", "{what}合计（大写）：{words}"),
    # the cost of care (commands/funds_cost.py) and a line's trace (commands/funds_reads.py)
    "cost": ("Cost of care", "服务成本台账"),
    "sheet_cost": ("cost", "服务成本"),
    "trace": ("funding trace", "资金流向台账"),
    "sheet_trace": ("trace", "资金流向"),
    "trace_title": (
        "{department} {document} — {purpose}, {amount} yuan: {what}",
        "{department} {document} {purpose}（{amount}元）{what}",
    ),
    "line_in_capitals": ("Line amount in words: {words}", "资金金额（大写）：{words}"),
    "entries_n": ("{n} entries", "{n} 笔"),
}

# A movement of money on a funding line (funds_movements.kind), and a unit's balance under them.
MOVEMENTS: dict[str, tuple[str, str]] = {
    "allocated": ("allocated", "下达"),
    "received": ("received", "拨入"),
    "passed_down": ("passed down", "拨付下级"),
    "spent": ("spent", "支出"),
    "reversed": ("reversed (red-letter)", "红字冲销"),
    "returned": ("returned", "退回"),
    "balance": ("balance", "结余"),
}


def movement(kind: str, lang: str) -> str:
    en, zh = MOVEMENTS.get(kind, (kind, kind))
    return zh if lang == "zh" else en


def words(key: str, lang: str, **values: object) -> str:
    """A word or phrase of a printed sheet in `lang`, its placeholders filled."""
    en, zh = PRINT[key]
    return (zh if lang == "zh" else en).format(**values)


STATUS = {"active": ("active", "有效"), "voided": ("voided", "作废"), "reversed": ("reversed", "已冲销")}
# The legend under a printed ledger: what its times and its `late` column mean.
LEGEND = (
    "Notes: times are in the store's time zone, {zone}. Late: recorded more than 7 days after the service, "
    "or, where the paper ledger's entry date (entered on) is given, entered more than 7 days after it.",
    "说明：时间均为本台账库所在时区（{zone}）的时间。逾期登记：录入时间晚于服务时间 7 天以上；"
    "填有登记日期的，以登记日期是否晚于服务时间 7 天以上为准。",
)


def legend(zone: str, lang: str) -> str:
    return LEGEND[1 if lang == "zh" else 0].format(zone=zone)


ERASED = ("(erased)", "（已删除）")  # a name, birth date or note whose key an erasure destroyed
UNOPENED = ("(cannot be opened)", "（无法打开）")  # one sealed for another place, or altered
PERSONAL_FIELDS = ("name", "birth_date", "note", "payee")


def header(field: str, lang: str) -> str:
    en, zh = FIELDS.get(field, (field, field))
    return zh if lang == "zh" else en


def headers(fields: list[str], lang: str) -> list[str]:
    return [header(f, lang) for f in fields]


def _vocab_label(vocabulary: Vocabulary, value: Any, lang: str) -> Any:
    if isinstance(value, str) and value in vocabulary:
        return vocabulary.label(value, lang)
    return value


def localise(row: dict[str, Any], lang: str) -> dict[str, Any]:
    """A row with slugs turned into labels of `lang` (for table and xlsx output only)."""
    out = dict(row)
    if "kind" in out:
        out["kind"] = _vocab_label(KINDS, out["kind"], lang)
    if "place" in out:
        out["place"] = _vocab_label(PLACES, out["place"], lang)
    if "role" in out:
        out["role"] = _vocab_label(ROLES, out["role"], lang)
    if isinstance(out.get("categories"), list):
        out["categories"] = [_vocab_label(CATEGORIES, c, lang) for c in out["categories"]]
    if "status" in out and out["status"] in STATUS:
        en, zh = STATUS[out["status"]]
        out["status"] = zh if lang == "zh" else en
    if isinstance(out.get("kinds"), dict):
        out["kinds"] = {_vocab_label(KINDS, k, lang): v for k, v in out["kinds"].items()}
    for personal in PERSONAL_FIELDS:
        for marker in (ERASED, UNOPENED):
            if out.get(personal) == marker[0]:
                out[personal] = marker[1] if lang == "zh" else marker[0]
    if isinstance(out.get("late"), bool) and lang == "zh":
        out["late"] = "是" if out["late"] else "否"
    if "gender" in out:
        out["gender"] = _vocab_label(GENDERS, out["gender"], lang)
    if lang == "zh":
        _words_zh(out)
    return out


# Fields whose value is one word of a small set (`msgctxt "word"` in the .po file), and fields
# whose value is a sentence built by the code (a message template of the .po file).
WORD_FIELDS = ("status", "obligation", "projection", "duty", "role", "scope", "subject", "metric")
TEXT_FIELDS = ("detail", "evidence")
YES_NO = {True: "是", False: "否"}


def _words_zh(out: dict[str, Any]) -> None:
    from commands import i18n

    for name, value in out.items():
        if isinstance(value, bool):
            out[name] = YES_NO[value]
        elif name in WORD_FIELDS and isinstance(value, str):
            out[name] = i18n.word(value, "zh")
        elif name in TEXT_FIELDS and isinstance(value, str):
            out[name] = i18n.word(value, "zh") if value in i18n.words() else i18n.translate(value, "zh")
        elif name in TEXT_FIELDS and isinstance(value, list):
            out[name] = [i18n.translate(v, "zh") if isinstance(v, str) else v for v in value]


# What happened, for `audit history` (event slug: (en, zh)).
EVENTS: dict[str, tuple[str, str]] = {
    "established": ("community established", "社区成立"),
    "resident_enrolled": ("resident enrolled", "居民入册"),
    "resident_updated": ("resident updated", "居民信息变更"),
    "resident_departed": ("resident departed", "居民离开"),
    "provider_registered": ("provider registered", "服务人员登记"),
    "provider_retired": ("provider retired", "服务人员退出"),
    "service_recorded": ("service recorded", "服务登记"),
    "service_corrected": ("service corrected", "服务更正"),
    "service_voided": ("service voided", "服务作废"),
    "visit_plan_set": ("visit plan set", "巡访计划"),
    "visit_plan_ended": ("visit plan ended", "巡访计划结束"),
    "pairing_added": ("pairing added", "结对帮扶"),
    "pairing_ended": ("pairing ended", "结对结束"),
    "period_closed": ("period closed", "结账"),
    "period_reopened": ("period reopened", "反结账"),
    "funds_allocated": ("funds allocated", "资金下达"),
    "funds_transferred": ("funds transferred", "资金拨付"),
    "funds_spent": ("funds spent", "资金支出"),
    "funds_reversed": ("spend reversed", "红字冲销"),
    "funds_returned": ("funds returned", "资金退回"),
}


def event_label(name: str, lang: str) -> str:
    en, zh = EVENTS.get(name, (name, name))
    return zh if lang == "zh" else en
