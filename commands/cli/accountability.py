"""`taizhang official|duty|visit-plan|pairing|target|supervise|debrief`: who answers for what."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import click

from commands import models
from commands.accountability import (
    Accountability,
    amount_arg,
    check_inside,
    code_arg,
    day_arg,
    duty_arg,
    kind_arg,
    metric_arg,
    period_arg,
    text_arg,
    unit_arg,
)
from commands.context import Env, pass_env, write_format_option
from commands.output import emit_write

UNIT_HELP = "county:NAME, township:COUNTY/NAME or community:CODE."


def _today(env: Env) -> date:
    return date.fromisoformat(env.today())


def _acct(env: Env) -> Accountability:
    return Accountability(env.service())


def _not_future(env: Env, day: date, option: str) -> date:
    if day > _today(env):
        raise models.Malformed(option, f"{day.isoformat()} is in the future")
    return day


# ---- officials ------------------------------------------------------------------------------------
@click.group("official")
def official() -> None:
    """Officials who answer for units: county and township secretaries, contact-point cadres."""


@official.command("register")
@click.argument("code")
@click.option("--name", required=True, help="Full name.")
@click.option("--title", required=True, help="Title, e.g. 贺街镇党委书记.")
@write_format_option
@pass_env
def official_register(env: Env, code: str, name: str, title: str, fmt: str) -> None:
    """Register an official under a code unique in the store.

    \b
    Example:
      taizhang --actor admin official register O-001 --name 黄志明 --title 贺街镇党委书记
    """
    actor = env.writer()
    code = code_arg(code, "CODE")
    name, title = text_arg(name, "--name"), text_arg(title, "--title")
    result = _acct(env).register_official(code, name, title, actor)
    emit_write(result, fmt, f"registered official {code} {name}")


# ---- duties --------------------------------------------------------------------------------------------
@click.group("duty")
def duty() -> None:
    """Responsibilities (书记负总责, 党员干部联系点): who answers for which unit, from when."""


@duty.command("assign")
@click.argument("official_code", metavar="OFFICIAL")
@click.option("--unit", required=True, help=UNIT_HELP)
@click.option("--duty", "duty_name", required=True, help="secretary|deputy|contact_point.")
@click.option("--from", "starts_on", metavar="DATE", help="First day of the duty (default: today).")
@write_format_option
@pass_env
def duty_assign(env: Env, official_code: str, unit: str, duty_name: str, starts_on: str | None, fmt: str) -> None:
    """Make an official answerable for a unit.

    \b
    Example:
      taizhang --actor admin duty assign O-001 --unit township:八步区/贺街镇 --duty secretary --from 2026-01-01
    """
    actor = env.writer()
    ref, name = unit_arg(unit), duty_arg(duty_name)
    day = _not_future(env, day_arg(starts_on, "--from", _today(env)), "--from")
    result = _acct(env).assign_duty(code_arg(official_code, "OFFICIAL"), ref, name, day, actor)
    emit_write(result, fmt, f"{official_code} is {name} of {ref} from {day}")


@duty.command("end")
@click.argument("official_code", metavar="OFFICIAL")
@click.option("--unit", required=True, help=UNIT_HELP)
@click.option("--duty", "duty_name", required=True, help="secretary|deputy|contact_point.")
@click.option("--on", "on", metavar="DATE", help="First day the official no longer answers (default: today).")
@write_format_option
@pass_env
def duty_end(env: Env, official_code: str, unit: str, duty_name: str, on: str | None, fmt: str) -> None:
    """End an official's duty for a unit.

    \b
    Example:
      taizhang --actor admin duty end O-001 --unit township:八步区/贺街镇 --duty secretary --on 2026-07-01
    """
    actor = env.writer()
    ref, name = unit_arg(unit), duty_arg(duty_name)
    day = _not_future(env, day_arg(on, "--on", _today(env)), "--on")
    result = _acct(env).end_duty(code_arg(official_code, "OFFICIAL"), ref, name, day, actor)
    emit_write(result, fmt, f"{official_code} is no longer {name} of {ref} from {day}")


# ---- key visits ---------------------------------------------------------------------------------------
@click.group("visit-plan")
def visit_plan() -> None:
    """Key visits to hardship cases (困难对象重点巡访): how often each must be visited, and by whom."""


@visit_plan.command("set")
@click.argument("community")
@click.argument("resident")
@click.option("--every", required=True, type=click.IntRange(1, 366), metavar="DAYS", help="Visit at least once in every this many days (1-366).")
@click.option("--provider", required=True, metavar="CODE", help="The provider who visits.")
@click.option("--from", "starts_on", metavar="DATE", help="First day of the plan (default: today). A new plan replaces the old one from this day.")
@write_format_option
@pass_env
def visit_plan_set(
    env: Env, community: str, resident: str, every: int, provider: str, starts_on: str | None, fmt: str
) -> None:
    """Set (or replace) a resident's visit plan.

    \b
    Example:
      taizhang --actor clerk01 visit-plan set HZ-001 R001 --every 14 --provider P01 --from 2026-01-01
    """
    actor = env.writer()
    community, resident = code_arg(community, "COMMUNITY"), code_arg(resident, "RESIDENT")
    provider = code_arg(provider, "--provider")
    day = day_arg(starts_on, "--from", _today(env))
    result = _acct(env).set_visit_plan(community, resident, every, provider, day, actor)
    emit_write(result, fmt, f"{resident} in {community}: a visit at least every {every} days by {provider} from {day}")


@visit_plan.command("end")
@click.argument("community")
@click.argument("resident")
@click.option("--on", "on", metavar="DATE", help="First day without the plan (default: today).")
@write_format_option
@pass_env
def visit_plan_end(env: Env, community: str, resident: str, on: str | None, fmt: str) -> None:
    """End a resident's visit plan.

    \b
    Example:
      taizhang --actor clerk01 visit-plan end HZ-001 R001 --on 2026-06-30
    """
    actor = env.writer()
    community, resident = code_arg(community, "COMMUNITY"), code_arg(resident, "RESIDENT")
    day = day_arg(on, "--on", _today(env))
    result = _acct(env).end_visit_plan(community, resident, day, actor)
    emit_write(result, fmt, f"{resident} in {community}: visit plan ended on {day}")


# ---- pairings ---------------------------------------------------------------------------------------
@click.command("pairing")
@click.argument("action", type=click.Choice(["add", "end"]))
@click.argument("community")
@click.option("--provider", required=True, metavar="CODE", help="The provider (a cadre or party member) paired.")
@click.option("--resident", required=True, metavar="CODE", help="The resident (household) assisted.")
@click.option("--on", "on", metavar="DATE", help="Day the pairing starts or ends (default: today).")
@write_format_option
@pass_env
def pairing(env: Env, action: str, community: str, provider: str, resident: str, on: str | None, fmt: str) -> None:
    """Pair a provider with a resident (结对帮扶), or end the pairing.

    \b
    Example:
      taizhang --actor clerk01 pairing add HZ-001 --provider P01 --resident R001 --on 2026-01-01
    """
    actor = env.writer()
    community = code_arg(community, "COMMUNITY")
    provider, resident = code_arg(provider, "--provider"), code_arg(resident, "--resident")
    day = day_arg(on, "--on", _today(env))
    result = _acct(env).pairing(action, community, provider, resident, day, actor)
    verb = "paired with" if action == "add" else "no longer paired with"
    emit_write(result, fmt, f"{provider} {verb} {resident} in {community} from {day}")


# ---- targets ------------------------------------------------------------------------------------------
@click.group("target")
def target() -> None:
    """Targets per unit and period (目标分解督办): set them, and decompose them to the units below."""


@target.command("set")
@click.option("--unit", required=True, help=UNIT_HELP)
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn or YYYY.")
@click.option("--metric", required=True, help="records|minutes|residents_served|coverage.")
@click.option("--kind", help="Only services of this kind (not for coverage).")
@click.option("--at-least", "at_least", required=True, metavar="N", help="The target (coverage: a share between 0 and 1).")
@write_format_option
@pass_env
def target_set(
    env: Env, unit: str, period: str, metric: str, kind: str | None, at_least: str, fmt: str
) -> None:
    """Set a unit's target for a period; setting it again replaces it.

    \b
    Example:
      taizhang --actor sup01 target set --unit county:八步区 --period 2026-Q1 --metric records --at-least 1200
    """
    actor = env.writer()
    ref, span, name = unit_arg(unit), period_arg(period), metric_arg(metric)
    kind_slug = kind_arg(kind)
    if kind_slug and name == "coverage":
        raise models.Malformed("--kind", "coverage targets are for every kind of service")
    amount = amount_arg(name, at_least)
    result = _acct(env).set_target(ref, span, name, kind_slug, amount, actor)
    emit_write(result, fmt, f"target for {ref} {span}: {name} at least {amount:g}")


@target.command("decompose")
@click.option("--unit", required=True, help=UNIT_HELP)
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn or YYYY.")
@click.option("--metric", required=True, help="records|minutes|residents_served (coverage is not additive).")
@click.option("--kind", help="The kind, if the parent target has one.")
@click.option("--into", "into", multiple=True, required=True, metavar="UNIT=N", help="A unit inside --unit and its share; repeat.")
@write_format_option
@pass_env
def target_decompose(
    env: Env, unit: str, period: str, metric: str, kind: str | None, into: tuple[str, ...], fmt: str
) -> None:
    """Split a unit's target among the units inside it; the parts must add up to at least the whole.

    \b
    Example:
      taizhang --actor sup01 target decompose --unit county:八步区 --period 2026-Q1 --metric records \\
        --into township:八步区/贺街镇=700 --into township:八步区/莲塘镇=500
    """
    actor = env.writer()
    ref, span, name = unit_arg(unit), period_arg(period), metric_arg(metric)
    if name == "coverage":
        raise models.Malformed("--metric", "coverage is a share, not a sum: set each unit's coverage target instead")
    kind_slug = kind_arg(kind)
    parts: dict = {}
    for item in into:
        child_text, sep, amount_text = item.rpartition("=")
        if not sep:
            raise models.Malformed("--into", f"expected UNIT=N, got {item!r}")
        child = unit_arg(child_text, "--into")
        if child in parts:
            raise models.Malformed("--into", f"{child} is given twice")
        parts[child] = amount_arg(name, amount_text, "--into")
    check_inside(ref, parts)
    result = _acct(env).decompose(ref, span, name, kind_slug, parts, actor)
    emit_write(result, fmt, f"decomposed {ref} {span} {name} into {len(parts)} unit(s)")


# ---- supervision ----------------------------------------------------------------------------------------
@click.group("supervise")
def supervise() -> None:
    """Supervised items (督办事项): open one for a unit with a due date; resolve it."""


@supervise.command("open")
@click.option("--unit", required=True, help=UNIT_HELP)
@click.option("--item", required=True, help="What must be done.")
@click.option("--due", required=True, metavar="DATE", help="Due date.")
@write_format_option
@pass_env
def supervise_open(env: Env, unit: str, item: str, due: str, fmt: str) -> None:
    """Open a supervised item; prints its id.

    \b
    Example:
      taizhang --actor sup01 supervise open --unit township:八步区/贺街镇 --item '补齐3月巡访记录' --due 2026-04-15
    """
    actor = env.writer()
    ref, text = unit_arg(unit), text_arg(item, "--item", 500)
    day = day_arg(due, "--due", _today(env))
    result = _acct(env).open_item(ref, text, day, actor)
    emit_write(result, fmt, result["item_id"])


@supervise.command("resolve")
@click.argument("item_id")
@click.option("--note", required=True, help="How it was resolved.")
@write_format_option
@pass_env
def supervise_resolve(env: Env, item_id: str, note: str, fmt: str) -> None:
    """Resolve a supervised item (today).

    \b
    Example:
      taizhang --actor sup01 supervise resolve 6f1c… --note '已补录并核实'
    """
    actor = env.writer()
    try:
        uid = UUID(item_id.strip())
    except ValueError:
        raise models.Malformed("ITEM_ID", f"not a UUID: {item_id[:60]!r}") from None
    result = _acct(env).resolve_item(uid, text_arg(note, "--note", 2000), _today(env), actor)
    emit_write(result, fmt, f"resolved {uid}")


# ---- debriefings -----------------------------------------------------------------------------------------
@click.group("debrief")
def debrief() -> None:
    """Special debriefings (专项述职) by the officials who answer for a unit."""


@debrief.command("file")
@click.argument("official_code", metavar="OFFICIAL")
@click.option("--unit", required=True, help=UNIT_HELP)
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn or YYYY.")
@click.option("--summary", required=True, help="The debriefing's summary.")
@write_format_option
@pass_env
def debrief_file(env: Env, official_code: str, unit: str, period: str, summary: str, fmt: str) -> None:
    """File an official's debriefing for a unit and period.

    \b
    Example:
      taizhang --actor sup01 debrief file O-001 --unit township:八步区/贺街镇 --period 2026-Q1 --summary '…'
    """
    actor = env.writer()
    ref, span = unit_arg(unit), period_arg(period)
    result = _acct(env).file_debrief(
        code_arg(official_code, "OFFICIAL"), ref, span, text_arg(summary, "--summary", 5000), actor
    )
    emit_write(result, fmt, f"filed the debriefing of {official_code} for {ref} {span}")


def register(group: click.Group) -> None:
    for command in (official, duty, visit_plan, pairing, target, supervise, debrief):
        group.add_command(command)
