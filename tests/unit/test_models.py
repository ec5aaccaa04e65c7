"""The command models: what can be judged without the store is judged here (exit 2, DESIGN §5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from commands import models
from commands.models import (
    CorrectService,
    DepartResident,
    EnrollResident,
    EstablishCommunity,
    Malformed,
    RecordService,
    RegisterProvider,
    RetireProvider,
    UpdateResident,
    VoidService,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=TZ)
RID = "5d2e8a31-7c4b-4f1e-8b6a-3e9f0a1c2d44"

BASE: dict[type[models.Command], dict[str, Any]] = {
    EstablishCommunity: {
        "code": "HZ-P01",
        "name": "石门社区",
        "county": "八步区",
        "township": "贺街镇",
        "village": "石门村",
    },
    EnrollResident: {"community": "HZ-P01", "code": "R1", "name": "张秀英"},
    UpdateResident: {"community": "HZ-P01", "code": "R1", "grid": "G2"},
    DepartResident: {"community": "HZ-P01", "code": "R1", "reason": "moved", "on": "2026-03-01"},
    RegisterProvider: {"community": "HZ-P01", "code": "P1", "name": "李建国", "role": "volunteer"},
    RetireProvider: {"community": "HZ-P01", "code": "P1", "on": "2026-03-01"},
    RecordService: {
        "community": "HZ-P01",
        "kind": "life_care",
        "residents": ["R1"],
        "providers": ["P1"],
        "occurred_at": "2026-03-05 09:30",
        "minutes": 30,
    },
    CorrectService: {"community": "HZ-P01", "record_id": RID, "reason": "typo", "minutes": 45},
    VoidService: {"community": "HZ-P01", "record_id": RID, "reason": "entered twice"},
}


def validate(model: type[models.Command], **fields: Any) -> Any:
    """The model's base command with these fields, in a store at Asia/Shanghai, at NOW."""
    return validate_in(TZ, NOW, model, **fields)


def validate_in(tz: ZoneInfo, now: datetime, model: type[models.Command], **fields: Any) -> Any:
    return models.validate(model, {**BASE[model], **fields}, tz=tz, now=now)


def malformed(model: type[models.Command], **fields: Any) -> Malformed:
    with pytest.raises(Malformed) as info:
        validate(model, **fields)
    return info.value


def test_every_base_command_is_valid() -> None:
    for model in BASE:
        assert isinstance(validate(model), model)


# ---- vocabularies (DESIGN §1: the slug, with `_` or `-`, or its Chinese name) ------------------------

GLOSSARY: list[tuple[type[models.Command], str, str, str]] = [
    # (model, field, slug, Chinese name) — from the glossary in DESIGN §1
    (RecordService, "kind", "production_development", "生产发展"),
    (RecordService, "kind", "life_care", "生活照料"),
    (RecordService, "kind", "emergency_aid", "应急救助"),
    (RecordService, "kind", "counseling", "心理抚慰"),
    (RecordService, "kind", "family_care", "亲情关怀"),
    (RecordService, "kind", "rights_protection", "权益维护"),
    (EnrollResident, "categories", "left_behind_elderly", "留守老人"),
    (EnrollResident, "categories", "left_behind_child", "留守儿童"),
    (EnrollResident, "categories", "left_behind_woman", "留守妇女"),
    (EnrollResident, "categories", "five_guarantee", "五保户"),
    (EnrollResident, "categories", "hardship", "困难对象"),
    (EnrollResident, "categories", "disabled", "残疾人"),
    (EnrollResident, "categories", "elderly_living_alone", "独居老人"),
    (EnrollResident, "categories", "dibao", "低保户"),
    (EnrollResident, "categories", "extreme_poverty", "特困人员"),
    (EnrollResident, "categories", "monitored", "防返贫监测对象"),
    (RegisterProvider, "role", "party_member", "党员"),
    (RegisterProvider, "role", "cadre", "干部"),
    (RegisterProvider, "role", "volunteer", "志愿者"),
    (RegisterProvider, "role", "grid_worker", "网格员"),
    (RegisterProvider, "role", "social_worker", "社工"),
    (RegisterProvider, "role", "community_staff", "社区专干"),
    (RecordService, "place", "happiness_home", "幸福院"),
    (RecordService, "place", "service_center", "公共服务中心"),
    (RecordService, "place", "home_visit", "入户"),
]


def _given(field: str, value: str) -> Any:
    return [value] if field == "categories" else value


def _parsed(field: str, result: Any) -> Any:
    value = getattr(result, field)
    return value[0] if field == "categories" else value


@pytest.mark.parametrize(("model", "field", "slug", "zh"), GLOSSARY, ids=lambda x: x if isinstance(x, str) else None)
@pytest.mark.parametrize("spelling", ["slug", "dashed", "upper", "chinese", "padded-chinese"])
def test_a_vocabulary_term_is_accepted_in_every_spelling(
    model: type[models.Command], field: str, slug: str, zh: str, spelling: str
) -> None:
    value = {
        "slug": slug,
        "dashed": slug.replace("_", "-"),
        "upper": slug.upper(),
        "chinese": zh,
        "padded-chinese": f" {zh} ",
    }[spelling]
    assert _parsed(field, validate(model, **{field: _given(field, value)})) == slug


@pytest.mark.parametrize(
    ("model", "field", "value", "slug"),
    [
        (RecordService, "place", "other", "other"),
        (DepartResident, "reason", "moved", "moved"),
        (DepartResident, "reason", "deceased", "deceased"),
        (DepartResident, "reason", "other", "other"),
        (EnrollResident, "gender", "男", "male"),
        (EnrollResident, "gender", "female", "female"),
        (CorrectService, "kind", "emergency-aid", "emergency_aid"),
        (CorrectService, "place", "公共服务中心", "service_center"),
        (UpdateResident, "categories", "独居老人", "elderly_living_alone"),
    ],
)
def test_other_vocabulary_fields(model: type[models.Command], field: str, value: str, slug: str) -> None:
    assert _parsed(field, validate(model, **{field: _given(field, value)})) == slug


def test_categories_are_a_sorted_set_from_a_list_or_a_cell() -> None:
    expected = ["hardship", "left_behind_child"]
    assert validate(EnrollResident, categories=["留守儿童", "hardship", "left-behind-child"]).categories == expected
    assert validate(EnrollResident, categories="hardship；留守儿童、hardship").categories == expected


@pytest.mark.parametrize(
    ("model", "field", "value", "bad"),
    [
        (RecordService, "kind", "cooking", "cooking"),
        (RecordService, "kind", "生活", "生活"),
        (CorrectService, "kind", "life care!", "life care!"),
        (EnrollResident, "categories", ["hardship", "rich"], "rich"),
        (EnrollResident, "categories", "留守老人;孤儿", "孤儿"),
        (UpdateResident, "categories", ["vip"], "vip"),
        (RegisterProvider, "role", "mayor", "mayor"),
        (RecordService, "place", "卫生院", "卫生院"),
        (CorrectService, "place", "market", "market"),
        (DepartResident, "reason", "lost", "lost"),
        (EnrollResident, "gender", "unknown", "unknown"),
    ],
)
def test_an_unknown_term_names_the_field_and_the_value(
    model: type[models.Command], field: str, value: Any, bad: str
) -> None:
    error = malformed(model, **{field: value})
    assert error.field == field
    assert bad in error.message
    assert str(error).startswith(f"{field}: ")


# ---- minutes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [RecordService, CorrectService])
@pytest.mark.parametrize(
    ("given", "expected"), [(1, 1), (1440, 1440), ("30", 30), (" 45 ", 45), (30.0, 30), ("30.0", 30)]
)
def test_minutes_in_range_are_accepted(model: type[models.Command], given: Any, expected: int) -> None:
    assert validate(model, minutes=given).minutes == expected


@pytest.mark.parametrize("model", [RecordService, CorrectService])
@pytest.mark.parametrize("given", [0, 1441, -1, "0", "2000", 30.5, "abc", "", True])
def test_minutes_out_of_range_or_not_whole_are_malformed(model: type[models.Command], given: Any) -> None:
    error = malformed(model, minutes=given)
    assert error.field == "minutes"
    assert isinstance(error, ValueError)


# ---- times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [RecordService, CorrectService])
@pytest.mark.parametrize(
    "given",
    ["2026-06-01 12:00:01", "2026-06-01T04:00:01Z", "2026-06-01T13:00:01+09:00", "2026-06-02", "2027-01-01 08:00"],
)
def test_a_future_service_time_is_malformed(model: type[models.Command], given: str) -> None:
    error = malformed(model, occurred_at=given)
    assert error.field == "occurred_at"
    assert "future" in error.message


@pytest.mark.parametrize("given", ["2026-06-01 12:00:00", "2026-06-01T04:00:00Z", "2026-06-01T11:59:59+08:00"])
def test_a_service_time_up_to_now_is_accepted(given: str) -> None:
    assert validate(RecordService, occurred_at=given).occurred_at <= NOW


@pytest.mark.parametrize(
    ("given", "local"),
    [
        ("2026-03-05 09:30", (2026, 3, 5, 9, 30, 0)),
        ("2026-03-05T09:30:15", (2026, 3, 5, 9, 30, 15)),
        ("2026/3/5 9:30", (2026, 3, 5, 9, 30, 0)),
        ("2026年3月5日 9时30分", (2026, 3, 5, 9, 30, 0)),
        (datetime(2026, 3, 5, 9, 30, 15), (2026, 3, 5, 9, 30, 15)),
        ("2026-03-05T01:30:00Z", (2026, 3, 5, 9, 30, 0)),
        ("2026-03-05T09:30:00+05:00", (2026, 3, 5, 12, 30, 0)),
        ("2026-03-04T17:30:00-08:00", (2026, 3, 5, 9, 30, 0)),
        (datetime(2026, 3, 5, 1, 30, tzinfo=UTC), (2026, 3, 5, 9, 30, 0)),
        ("2026-03-05T09:30:15.987654", (2026, 3, 5, 9, 30, 15)),
        (datetime(2026, 3, 5, 9, 30, 15, 999999), (2026, 3, 5, 9, 30, 15)),
    ],
)
def test_a_service_time_is_in_the_store_zone_to_the_second(
    given: Any, local: tuple[int, int, int, int, int, int]
) -> None:
    moment = validate(RecordService, occurred_at=given).occurred_at
    assert moment.utcoffset() == timedelta(hours=8)
    assert moment == datetime(*local, tzinfo=TZ)
    assert (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second) == local
    assert moment.microsecond == 0


@pytest.mark.parametrize(("zone", "offset"), [("UTC", 0), ("America/New_York", -4), ("Asia/Kolkata", 5.5)])
def test_a_naive_time_is_read_in_the_store_zone(zone: str, offset: float) -> None:
    tz = ZoneInfo(zone)
    moment = validate_in(tz, NOW.astimezone(tz), RecordService, occurred_at="2026-05-05 09:30").occurred_at
    assert moment.utcoffset() == timedelta(hours=offset)
    assert (moment.hour, moment.minute) == (9, 30)
    assert moment == datetime(2026, 5, 5, 9, 30, tzinfo=tz)


@pytest.mark.parametrize(
    "given", ["2026-03-05 25:00", "2026-02-30 09:00", "yesterday", "", "9:30", "2026-03-05T09:30+24:00"]
)
def test_an_unreadable_service_time_is_malformed(given: str) -> None:
    assert malformed(RecordService, occurred_at=given).field == "occurred_at"


# ---- dates -----------------------------------------------------------------------------------------

DATE_FORMS = [
    "2026-03-05",
    "2026-3-5",
    "2026/3/5",
    "2026/03/05",
    "2026.3.5",
    "20260305",
    "2026年3月5日",
    "2026年03月05日",
    " 2026-03-05 ",
    "2026-03-05 00:00",
    date(2026, 3, 5),
    datetime(2026, 3, 5),
]


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (EstablishCommunity, "established_on"),
        (EnrollResident, "enrolled_on"),
        (EnrollResident, "birth_date"),
        (DepartResident, "on"),
        (RegisterProvider, "registered_on"),
        (RetireProvider, "on"),
        (RecordService, "entered_on"),
    ],
)
@pytest.mark.parametrize("given", DATE_FORMS, ids=str)
def test_a_date_is_accepted_in_every_form(model: type[models.Command], field: str, given: Any) -> None:
    assert getattr(validate(model, **{field: given}), field) == date(2026, 3, 5)


@pytest.mark.parametrize("given", ["2026-02-30", "05/03/2026", "2026-03-05 09:30", "March 5", "2026-13-01"])
def test_an_unreadable_date_is_malformed(given: str) -> None:
    error = malformed(EnrollResident, enrolled_on=given)
    assert error.field == "enrolled_on"
    assert given in error.message


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (EnrollResident, "enrolled_on"),
        (DepartResident, "on"),
        (RegisterProvider, "registered_on"),
        (RecordService, "entered_on"),
    ],
)
def test_a_future_date_is_malformed_and_today_is_not(model: type[models.Command], field: str) -> None:
    assert getattr(validate(model, **{field: "2026-06-01"}), field) == date(2026, 6, 1)
    error = malformed(model, **{field: "2026-06-02"})
    assert error.field == field
    assert "future" in error.message


@pytest.mark.parametrize(("entered_on", "ok"), [("2026-03-04", False), ("2026-03-05", True), ("2026-04-30", True)])
def test_a_paper_entry_is_not_written_before_the_service(entered_on: str, ok: bool) -> None:
    if ok:
        assert validate(RecordService, entered_on=entered_on).entered_on == date.fromisoformat(entered_on)
    else:
        error = malformed(RecordService, entered_on=entered_on)
        assert error.field == "entered_on"
        assert entered_on in error.message


def test_the_service_day_of_a_paper_entry_is_the_local_day() -> None:
    """2026-03-04T17:30Z is 2026-03-05 01:30 in the store's zone: an entry on 2026-03-05 is not early."""
    command = validate(RecordService, occurred_at="2026-03-04T17:30:00Z", entered_on="2026-03-05")
    assert command.entered_on == date(2026, 3, 5)


@pytest.mark.parametrize("model", [EnrollResident, RegisterProvider, EstablishCommunity])
@pytest.mark.parametrize("blank", [None, "", "  "])
def test_an_optional_date_left_blank_is_none(model: type[models.Command], blank: Any) -> None:
    field = {EnrollResident: "enrolled_on", RegisterProvider: "registered_on", EstablishCommunity: "established_on"}[
        model
    ]
    assert getattr(validate(model, **{field: blank}), field) is None


# ---- record ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [RecordService, CorrectService, VoidService])
@pytest.mark.parametrize(
    "given",
    [RID, RID.upper(), f"{{{RID}}}", RID.replace("-", ""), f"urn:uuid:{RID}", f"  {RID.upper()}  "],
    ids=["canonical", "upper", "braces", "hex", "urn", "padded"],
)
def test_a_record_id_is_normalised_to_the_canonical_lowercase_uuid(model: type[models.Command], given: str) -> None:
    assert validate(model, record_id=given).record_id == RID


@pytest.mark.parametrize("model", [RecordService, CorrectService, VoidService])
@pytest.mark.parametrize(
    "given", ["R-2026-001", "5d2e8a31-7c4b-4f1e-8b6a-3e9f0a1c2d4", "5d2e8a31-7c4b-4f1e-8b6a-3e9f0a1c2d4z"]
)
def test_a_record_id_that_is_not_a_uuid_is_malformed(model: type[models.Command], given: str) -> None:
    error = malformed(model, record_id=given)
    assert error.field == "record_id"
    assert given in error.message


def test_a_record_id_is_optional_when_recording_only() -> None:
    assert validate(RecordService, record_id=None).record_id is None
    assert validate(RecordService, record_id=" ").record_id is None
    for model in (CorrectService, VoidService):
        for blank in (None, "", "  "):
            assert malformed(model, record_id=blank).field == "record_id"


# ---- text ------------------------------------------------------------------------------------------

CONTROL = ["\x00", "\x07", "\x1b[31m", "\x7f", "\u200b", "\u202e", "\ufeff", "\r"]


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (EstablishCommunity, "name"),
        (EstablishCommunity, "village"),
        (EnrollResident, "name"),
        (EnrollResident, "grid"),
        (EnrollResident, "household"),
        (RegisterProvider, "name"),
        (RegisterProvider, "team"),
        (RecordService, "note"),
        (CorrectService, "reason"),
        (VoidService, "reason"),
        (EnrollResident, "code"),
        (RecordService, "community"),
    ],
)
@pytest.mark.parametrize("control", CONTROL, ids=repr)
def test_control_characters_in_text_are_malformed(model: type[models.Command], field: str, control: str) -> None:
    error = malformed(model, **{field: f"张{control}英"})
    assert error.field == field


@pytest.mark.parametrize(
    ("model", "field"), [(EnrollResident, "name"), (CorrectService, "reason"), (EnrollResident, "grid")]
)
def test_a_line_break_is_refused_in_a_single_line_field(model: type[models.Command], field: str) -> None:
    assert malformed(model, **{field: "第一行\n第二行"}).field == field


@pytest.mark.parametrize("model", [RecordService, CorrectService])
def test_a_note_may_span_lines(model: type[models.Command]) -> None:
    assert validate(model, note="老人腿脚不便\n下次带轮椅").note == "老人腿脚不便\n下次带轮椅"


@pytest.mark.parametrize("model", [EnrollResident, RegisterProvider])
def test_a_name_is_required_and_stripped(model: type[models.Command]) -> None:
    assert validate(model, name="  张秀英 ").name == "张秀英"
    for blank in ("", "   ", None):
        assert malformed(model, name=blank).field == "name"


@pytest.mark.parametrize("code", ["R 1", "R/1", "R1;R2", "R1，R2", ""])
def test_a_code_with_spaces_or_separators_is_malformed(code: str) -> None:
    assert malformed(EnrollResident, code=code).field == "code"


# ---- residents and providers ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["residents", "providers"])
@pytest.mark.parametrize(
    "given",
    [["A1", "A2"], "A1;A2", "A1；A2", "A1、A2", "A1,A2", "A1 ; A2", ["A1;A2"], ["A1", " A2 "]],
    ids=str,
)
def test_codes_come_as_a_list_or_a_separated_cell(field: str, given: Any) -> None:
    assert getattr(validate(RecordService, **{field: given}), field) == ["A1", "A2"]


@pytest.mark.parametrize("model", [RecordService, CorrectService])
@pytest.mark.parametrize("field", ["residents", "providers"])
@pytest.mark.parametrize("given", [["A1", "A1"], "A1;A2;A1", ["A1", "A2;A1"]], ids=str)
def test_a_code_listed_twice_is_malformed(model: type[models.Command], field: str, given: Any) -> None:
    error = malformed(model, **{field: given})
    assert error.field == field
    assert "A1" in error.message


@pytest.mark.parametrize("field", ["residents", "providers"])
@pytest.mark.parametrize("given", [[], "", " ; ", None])
def test_a_service_needs_residents_and_providers(field: str, given: Any) -> None:
    assert malformed(RecordService, **{field: given}).field == field


@pytest.mark.parametrize("field", ["residents", "providers"])
def test_a_correction_keeps_the_lists_it_is_not_given(field: str) -> None:
    assert getattr(validate(CorrectService), field) is None
    assert getattr(validate(CorrectService, **{field: "A2;A1"}), field) == ["A2", "A1"]


# ---- shape -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(BASE))
def test_an_unknown_field_is_malformed(model: type[models.Command]) -> None:
    assert malformed(model, colour="red").field == "colour"


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (RecordService, "kind"),
        (RecordService, "occurred_at"),
        (RecordService, "minutes"),
        (DepartResident, "on"),
        (RegisterProvider, "role"),
    ],
)
def test_a_missing_required_field_is_malformed(model: type[models.Command], field: str) -> None:
    data = {k: v for k, v in BASE[model].items() if k != field}
    with pytest.raises(Malformed) as info:
        models.validate(model, data, tz=TZ, now=NOW)
    assert info.value.field == field


def test_a_validated_command_is_frozen() -> None:
    command = validate(RecordService)
    with pytest.raises(ValidationError):
        command.minutes = 10  # type: ignore[misc]
