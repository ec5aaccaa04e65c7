"""Helpers that build small, valid histories through the application service."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from commands import models
from commands.app import LedgerService
from infra import crypto


def random_code(prefix: str = "C") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def establish(service: LedgerService, code: str | None = None, **overrides: Any) -> str:
    code = code or random_code("HZ")
    data = {
        "code": code,
        "name": "石门新型农村社区",
        "county": "八步区",
        "township": "贺街镇",
        "village": "石门村",
        "natural_villages": ["大岭", "新塘"],
        "established_on": date(2026, 1, 1),
        **overrides,
    }
    service.establish_community(service.validate(models.EstablishCommunity, data), "clerk")
    return code


def enroll(service: LedgerService, community: str, code: str, **overrides: Any) -> None:
    data = {"community": community, "code": code, "name": "张秀英", "categories": ["left_behind_elderly"], **overrides}
    service.enroll_resident(service.validate(models.EnrollResident, data), "clerk")


def register(service: LedgerService, community: str, code: str, **overrides: Any) -> None:
    data = {"community": community, "code": code, "name": "李建国", "role": "party_member", **overrides}
    service.register_provider(service.validate(models.RegisterProvider, data), "clerk")


def record(service: LedgerService, community: str, record_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    data = {
        "community": community,
        "kind": "life_care",
        "residents": ["R1"],
        "providers": ["P1"],
        "occurred_at": "2026-03-05 09:30",
        "minutes": 30,
        **overrides,
    }
    cmd = service.validate(models.RecordService, data)
    return service.record_service(cmd, "clerk", record_id or cmd.record_id or str(uuid.uuid4()))


def small_community(service: LedgerService, code: str | None = None) -> str:
    """A community with residents R1, R2 and providers P1, P2, all active since 2026-01-01."""
    code = establish(service, code)
    enroll(service, code, "R1", name="张秀英", birth_date="1948-05-02")
    enroll(service, code, "R2", name="王小明", categories=["left_behind_child"], birth_date="2016-09-01")
    register(service, code, "P1")
    register(service, code, "P2", name="陈志强", role="volunteer")
    return code


def where(community: str, payload: dict[str, Any], field: str) -> crypto.Binding:
    """Where an event's envelope belongs: the note of the payload's record, or a field of its resident."""
    return crypto.Binding(community, payload["record_id"] if field == crypto.NOTE else payload["code"], field)
