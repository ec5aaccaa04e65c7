"""Commands as pydantic models: everything that can be judged without the store.

A command that fails here is malformed input (exit 2). The same models validate a
CLI call and an imported spreadsheet row, so both accept the same forms. Validation
needs the store's time zone and the current time, passed as context:
`Model.model_validate(data, context={"tz": ZoneInfo, "now": aware datetime})`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, tzinfo
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from commands import tabular
from domain.community import MAX_MINUTES, MIN_MINUTES
from domain.vocab import CATEGORIES, DEPARTURE_REASONS, GENDERS, KINDS, PLACES, ROLES

MAX_CODE = 64
MAX_TEXT = 200
MAX_NOTE = 2000
_CODE = re.compile(r"^[^\s/;；、,，]+$")


class Malformed(ValueError):
    """Input that is wrong on its face; `field` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def first_problem(error: ValidationError) -> Malformed:
    """A pydantic error as one `field: problem` line."""
    detail = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in detail["loc"]) or "input"
    ctx = detail.get("ctx") or {}
    if "error" in ctx:
        message = str(ctx["error"])
    elif detail["type"] == "missing":
        message = "is required"
    else:
        message = f"{detail['msg']} (got {detail.get('input')!r})"
    return Malformed(field, message)


# Control characters, bidirectional overrides, zero-width and other invisible format characters.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]")


def _has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def clean_text(value: Any, *, limit: int = MAX_TEXT, what: str = "text", multiline: bool = False) -> str:
    text = tabular.text(value)
    if text is None:
        raise ValueError(f"{what} must not be empty")
    if len(text) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    if multiline:
        text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    if _has_control(text.replace("\n", "").replace("\t", " ") if multiline else text):
        raise ValueError(f"{what} contains control characters: {text[:40]!r}")
    return text


def optional_text(value: Any, *, limit: int = MAX_TEXT, what: str = "text", multiline: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return clean_text(value, limit=limit, what=what, multiline=multiline)


def clean_code(value: Any) -> str:
    text = clean_text(value, limit=MAX_CODE, what="code")
    if not _CODE.match(text):
        raise ValueError(f"code {text!r} may not contain spaces, '/' or list separators")
    return text


def codes(value: Any, *, what: str) -> list[str]:
    items = value if isinstance(value, list) else tabular.split_list(value)
    result: list[str] = []
    for item in items:
        if isinstance(item, str) and any(sep in item for sep in ";；、,，"):
            result.extend(clean_code(part) for part in tabular.split_list(item))
        else:
            result.append(clean_code(item))
    if len(set(result)) != len(result):
        raise ValueError(f"a {what} is listed twice: {';'.join(result)}")
    return result


def day(value: Any) -> date:
    try:
        return tabular.parse_date(value)
    except tabular.CellError as e:
        raise ValueError(str(e)) from None


def optional_day(value: Any) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return day(value)


def vocab(vocabulary: Any, value: Any) -> str:
    text = tabular.text(value)
    if text is None:
        raise ValueError(f"{vocabulary.field} must not be empty")
    return vocabulary.parse(text)


def _context(info: ValidationInfo) -> tuple[tzinfo, datetime]:
    context = info.context or {}
    return context["tz"], context["now"]


def moment(value: Any, info: ValidationInfo) -> datetime:
    """A service time in the store's zone, to the second, never in the future."""
    tz, now = _context(info)
    if isinstance(value, datetime) and value.tzinfo is not None:
        parsed = value
    else:
        try:
            parsed, _has_time = tabular.parse_datetime(value)
        except tabular.CellError as e:
            raise ValueError(str(e)) from None
    local = parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)
    local = local.replace(microsecond=0)
    if local > now:
        raise ValueError(f"{local.isoformat()} is in the future")
    return local


def not_future(value: date | None, info: ValidationInfo) -> date | None:
    if value is None:
        return None
    tz, now = _context(info)
    if value > now.astimezone(tz).date():
        raise ValueError(f"{value.isoformat()} is in the future")
    return value


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EstablishCommunity(Command):
    code: str
    name: str
    county: str
    township: str
    village: str
    natural_villages: list[str] = []
    established_on: date | None = None

    _code = field_validator("code", mode="before")(lambda v: clean_code(v))
    _texts = field_validator("name", "county", "township", "village", mode="before")(lambda v: clean_text(v))

    @field_validator("natural_villages", mode="before")
    @classmethod
    def _villages(cls, v: Any) -> list[str]:
        items = v if isinstance(v, list) else tabular.split_list(v)
        return [clean_text(item) for item in items]

    @field_validator("established_on", mode="before")
    @classmethod
    def _established(cls, v: Any) -> date | None:
        return optional_day(v)

    @field_validator("established_on")
    @classmethod
    def _established_past(cls, v: date | None, info: ValidationInfo) -> date | None:
        return not_future(v, info)


class EnrollResident(Command):
    community: str
    code: str
    name: str
    birth_date: date | None = None
    gender: str | None = None
    categories: list[str] = []
    grid: str | None = None
    household: str | None = None
    enrolled_on: date | None = None

    _codes = field_validator("community", "code", mode="before")(lambda v: clean_code(v))
    _name = field_validator("name", mode="before")(lambda v: clean_text(v, what="name"))
    _optional = field_validator("grid", "household", mode="before")(lambda v: optional_text(v))

    @field_validator("birth_date", "enrolled_on", mode="before")
    @classmethod
    def _dates(cls, v: Any) -> date | None:
        return optional_day(v)

    @field_validator("birth_date", "enrolled_on")
    @classmethod
    def _past(cls, v: date | None, info: ValidationInfo) -> date | None:
        return not_future(v, info)

    @field_validator("gender", mode="before")
    @classmethod
    def _gender(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        try:
            return tabular.parse_gender(v)
        except tabular.CellError:
            return GENDERS.parse(str(v))

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, v: Any) -> list[str]:
        items = v if isinstance(v, list) else tabular.split_list(v)
        return sorted({CATEGORIES.parse(str(item)) for item in items})


class UpdateResident(Command):
    community: str
    code: str
    categories: list[str] | None = None
    grid: str | None = None
    household: str | None = None

    _codes = field_validator("community", "code", mode="before")(lambda v: clean_code(v))
    _optional = field_validator("grid", "household", mode="before")(lambda v: optional_text(v))

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, v: Any) -> list[str] | None:
        if v is None:
            return None
        items = v if isinstance(v, list) else tabular.split_list(v)
        return sorted({CATEGORIES.parse(str(item)) for item in items})


class DepartResident(Command):
    community: str
    code: str
    reason: str
    on: date

    _codes = field_validator("community", "code", mode="before")(lambda v: clean_code(v))
    _reason = field_validator("reason", mode="before")(lambda v: vocab(DEPARTURE_REASONS, v))
    _on = field_validator("on", mode="before")(lambda v: day(v))

    @field_validator("on")
    @classmethod
    def _past(cls, v: date, info: ValidationInfo) -> date | None:
        return not_future(v, info)


class RegisterProvider(Command):
    community: str
    code: str
    name: str
    role: str
    team: str | None = None
    registered_on: date | None = None

    _codes = field_validator("community", "code", mode="before")(lambda v: clean_code(v))
    _name = field_validator("name", mode="before")(lambda v: clean_text(v, what="name"))
    _role = field_validator("role", mode="before")(lambda v: vocab(ROLES, v))
    _team = field_validator("team", mode="before")(lambda v: optional_text(v))
    _registered = field_validator("registered_on", mode="before")(lambda v: optional_day(v))

    @field_validator("registered_on")
    @classmethod
    def _past(cls, v: date | None, info: ValidationInfo) -> date | None:
        return not_future(v, info)


class RetireProvider(Command):
    community: str
    code: str
    on: date

    _codes = field_validator("community", "code", mode="before")(lambda v: clean_code(v))
    _on = field_validator("on", mode="before")(lambda v: day(v))

    @field_validator("on")
    @classmethod
    def _past(cls, v: date, info: ValidationInfo) -> date | None:
        return not_future(v, info)


def _record_id(v: Any) -> str | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        return str(UUID(str(v).strip()))
    except ValueError:
        raise ValueError(f"not a UUID: {str(v)[:60]!r}") from None


def _minutes(v: Any) -> int:
    try:
        minutes = tabular.parse_int(v)
    except tabular.CellError as e:
        raise ValueError(str(e)) from None
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ValueError(f"{minutes} is outside {MIN_MINUTES}-{MAX_MINUTES}")
    return minutes


class RecordService(Command):
    community: str
    kind: str
    residents: list[str]
    providers: list[str]
    occurred_at: datetime
    minutes: int
    place: str | None = None
    note: str | None = None
    record_id: str | None = None
    entered_on: date | None = None

    _community = field_validator("community", mode="before")(lambda v: clean_code(v))
    _kind = field_validator("kind", mode="before")(lambda v: vocab(KINDS, v))
    _residents = field_validator("residents", mode="before")(lambda v: _nonempty(codes(v, what="resident"), "resident"))
    _providers = field_validator("providers", mode="before")(lambda v: _nonempty(codes(v, what="provider"), "provider"))
    _minutes = field_validator("minutes", mode="before")(lambda v: _minutes(v))
    _note = field_validator("note", mode="before")(lambda v: optional_text(v, limit=MAX_NOTE, what="note", multiline=True))
    _record = field_validator("record_id", mode="before")(lambda v: _record_id(v))
    _entered = field_validator("entered_on", mode="before")(lambda v: optional_day(v))

    @field_validator("place", mode="before")
    @classmethod
    def _place(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        return vocab(PLACES, v)

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _at(cls, v: Any, info: ValidationInfo) -> datetime:
        return moment(v, info)

    @field_validator("entered_on")
    @classmethod
    def _past(cls, v: date | None, info: ValidationInfo) -> date | None:
        occurred = info.data.get("occurred_at")
        if v is not None and occurred is not None and v < occurred.date():
            raise ValueError(f"{v.isoformat()} is before the service on {occurred.date().isoformat()}")
        return not_future(v, info)


def _nonempty(items: list[str], what: str) -> list[str]:
    if not items:
        raise ValueError(f"at least one {what} is required")
    return items


class CorrectService(Command):
    community: str
    record_id: str
    reason: str
    kind: str | None = None
    occurred_at: datetime | None = None
    minutes: int | None = None
    residents: list[str] | None = None
    providers: list[str] | None = None
    place: str | None = None
    note: str | None = None

    _community = field_validator("community", mode="before")(lambda v: clean_code(v))
    _record = field_validator("record_id", mode="before")(lambda v: _record_id(v) or _missing("record id"))
    _reason = field_validator("reason", mode="before")(lambda v: clean_text(v, what="reason"))
    _kind = field_validator("kind", mode="before")(lambda v: None if v is None else vocab(KINDS, v))
    _minutes = field_validator("minutes", mode="before")(lambda v: None if v is None else _minutes(v))
    _residents = field_validator("residents", mode="before")(
        lambda v: None if not v else codes(v, what="resident")
    )
    _providers = field_validator("providers", mode="before")(
        lambda v: None if not v else codes(v, what="provider")
    )
    _place = field_validator("place", mode="before")(lambda v: None if v is None else vocab(PLACES, v))
    _note = field_validator("note", mode="before")(lambda v: optional_text(v, limit=MAX_NOTE, what="note", multiline=True))

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _at(cls, v: Any, info: ValidationInfo) -> datetime | None:
        return None if v is None else moment(v, info)

    def changes_something(self) -> bool:
        return any(
            value is not None
            for value in (self.kind, self.occurred_at, self.minutes, self.residents, self.providers, self.place, self.note)
        )


def _missing(what: str) -> str:
    raise ValueError(f"{what} is required")


class VoidService(Command):
    community: str
    record_id: str
    reason: str

    _community = field_validator("community", mode="before")(lambda v: clean_code(v))
    _record = field_validator("record_id", mode="before")(lambda v: _record_id(v) or _missing("record id"))
    _reason = field_validator("reason", mode="before")(lambda v: clean_text(v, what="reason"))


def validate(model: type[Command], data: dict[str, Any], *, tz: tzinfo, now: datetime) -> Any:
    """Validate `data` into `model`, raising Malformed with the first problem."""
    try:
        return model.model_validate(data, context={"tz": tz, "now": now})
    except ValidationError as e:
        raise first_problem(e) from None


def local_now(tz: tzinfo) -> datetime:
    return datetime.now(tz)


