"""`taizhang service record|correct|void`."""

from __future__ import annotations

from uuid import uuid4

import click

from commands import models, names
from commands.context import Env, MalformedInput, pass_env, write_format_option
from commands.output import emit_write

KIND_HELP = "production_development|life_care|emergency_aid|counseling|family_care|rights_protection (or 生活照料 …)."
PLACE_HELP = "happiness_home|service_center|home_visit|other (or 幸福院, 公共服务中心, 入户, 其他)."


@click.group("service")
def service() -> None:
    """Service records: record, correct, void. Nothing is ever edited or deleted."""


@service.command("record")
@click.argument("community")
@click.option("--kind", required=True, help=KIND_HELP)
@click.option("--resident", "residents", multiple=True, required=True, metavar="CODE|NAME", help="A resident served (code, or name of an active resident); repeat for several.")
@click.option("--provider", "providers", multiple=True, required=True, metavar="CODE|NAME", help="A provider who served (code, or name of an active provider); repeat for several.")
@click.option("--at", "at", required=True, metavar="DATETIME", help="When it happened, e.g. '2026-03-05 09:30' (store's time zone unless an offset is given).")
@click.option("--minutes", required=True, metavar="N", help="Duration in minutes, 1-1440.")
@click.option("--place", help=PLACE_HELP)
@click.option("--note", help="Free text (stored encrypted).")
@click.option("--record-id", metavar="UUID", help="The record's id; the same id with the same content again changes nothing.")
@click.option("--entered-on", metavar="DATE", help="Date the paper-ledger entry was written, when back-filling.")
@write_format_option
@pass_env
def record(
    env: Env,
    community: str,
    kind: str,
    residents: tuple[str, ...],
    providers: tuple[str, ...],
    at: str,
    minutes: str,
    place: str | None,
    note: str | None,
    record_id: str | None,
    entered_on: str | None,
    fmt: str,
) -> None:
    """Record a service delivered to residents by providers.

    \b
    Example:
      taizhang --actor clerk01 service record HZ-001 --kind 生活照料 \\
        --resident R001 --resident R002 --provider P01 --at '2026-03-05 09:30' \\
        --minutes 45 --place 入户 --note '送米送油'
    """
    actor = env.writer()
    data = {
        "community": community,
        "kind": kind,
        "residents": list(residents),
        "providers": list(providers),
        "occurred_at": at,
        "minutes": minutes,
        "place": place,
        "note": note,
        "record_id": record_id,
        "entered_on": entered_on,
    }
    # NAMES: --resident/--provider given by name become codes (commands/names.py)
    data = names.options_by_name(env, models.RecordService, data)
    cmd = env.validate(models.RecordService, data)
    result = env.service().record_service(cmd, actor, cmd.record_id or str(uuid4()))
    verb = "recorded" if result["created"] else "already recorded (unchanged)"
    emit_write(result, fmt, f"{verb}: {result['record_id']}")


@service.command("correct")
@click.argument("community")
@click.argument("record_id")
@click.option("--reason", required=True, help="Why the record is corrected (kept in the history).")
@click.option("--kind", help=KIND_HELP)
@click.option("--at", "at", metavar="DATETIME", help="Corrected time.")
@click.option("--minutes", metavar="N", help="Corrected duration, 1-1440.")
@click.option("--resident", "residents", multiple=True, metavar="CODE|NAME", help="The corrected list of residents, by code or name (replaces the old list).")
@click.option("--provider", "providers", multiple=True, metavar="CODE|NAME", help="The corrected list of providers, by code or name (replaces the old list).")
@click.option("--place", help=PLACE_HELP)
@click.option("--note", help="Corrected note (stored encrypted).")
@write_format_option
@pass_env
def correct(
    env: Env,
    community: str,
    record_id: str,
    reason: str,
    kind: str | None,
    at: str | None,
    minutes: str | None,
    residents: tuple[str, ...],
    providers: tuple[str, ...],
    place: str | None,
    note: str | None,
    fmt: str,
) -> None:
    """Correct an active record: a new revision; the ledger keeps every earlier one.

    \b
    Example:
      taizhang --actor clerk01 service correct HZ-001 6f1c…-… --minutes 60 --reason '时长登记有误'
    """
    actor = env.writer()
    data = {
        "community": community,
        "record_id": record_id,
        "reason": reason,
        "kind": kind,
        "occurred_at": at,
        "minutes": minutes,
        "residents": list(residents) or None,
        "providers": list(providers) or None,
        "place": place,
        "note": note,
    }
    # NAMES: --resident/--provider given by name become codes (commands/names.py)
    data = names.options_by_name(env, models.CorrectService, data)
    cmd = env.validate(models.CorrectService, data)
    if not cmd.changes_something():
        raise MalformedInput(
            "service correct: give at least one of --kind, --at, --minutes, --resident, --provider, --place, --note"
        )
    result = env.service().correct_service(cmd, actor)
    emit_write(result, fmt, f"corrected {result['record_id']} (revision {result['revision']})")


@service.command("void")
@click.argument("community")
@click.argument("record_id")
@click.option("--reason", required=True, help="Why the record is voided (kept in the history).")
@write_format_option
@pass_env
def void(env: Env, community: str, record_id: str, reason: str, fmt: str) -> None:
    """Void an active record: it stays in the history but no longer counts.

    \b
    Example:
      taizhang --actor clerk01 service void HZ-001 6f1c…-… --reason 重复登记
    """
    actor = env.writer()
    cmd = env.validate(models.VoidService, {"community": community, "record_id": record_id, "reason": reason})
    result = env.service().void_service(cmd, actor)
    emit_write(result, fmt, f"voided {result['record_id']}")


def register(group: click.Group) -> None:
    group.add_command(service)
