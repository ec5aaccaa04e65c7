"""`taizhang resident enroll|update|depart` and `taizhang provider register|retire`."""

from __future__ import annotations

import click

from commands import models
from commands.context import WAIT, Env, format_option, pass_env, write_format_option
from commands.labels import headers, localise
from commands.output import emit, emit_write


@click.group("resident")
def resident() -> None:
    """Residents served by a community (names and birth dates are stored encrypted)."""


@resident.command("enroll")
@click.argument("community")
@click.argument("code")
@click.option("--name", required=True, help="Full name (stored encrypted).")
@click.option("--birth-date", metavar="DATE", help="Date of birth (stored encrypted).")
@click.option("--gender", help="male|female (or 男|女).")
@click.option("--category", "categories", multiple=True, metavar="CAT", help="e.g. left_behind_child or 留守儿童; repeat for several.")
@click.option("--grid", help="Grid cell (网格).")
@click.option("--household", help="Household number (户号).")
@click.option("--enrolled-on", metavar="DATE", help="First day services may be recorded (default: the community's establishment).")
@write_format_option
@pass_env
def enroll(
    env: Env,
    community: str,
    code: str,
    name: str,
    birth_date: str | None,
    gender: str | None,
    categories: tuple[str, ...],
    grid: str | None,
    household: str | None,
    enrolled_on: str | None,
    fmt: str,
) -> None:
    """Enroll a resident in a community under a code unique in that community.

    \b
    Example:
      taizhang --actor clerk01 resident enroll HZ-001 R001 --name 张秀英 \\
        --birth-date 1948-05-02 --gender 女 --category 留守老人 --household H001
    """
    actor = env.writer()
    cmd = env.validate(
        models.EnrollResident,
        {
            "community": community,
            "code": code,
            "name": name,
            "birth_date": birth_date,
            "gender": gender,
            "categories": list(categories),
            "grid": grid,
            "household": household,
            "enrolled_on": enrolled_on,
        },
    )
    service = env.service()
    result = service.enroll_resident(cmd, actor)
    emit_write(result, fmt, f"enrolled resident {cmd.code} in community {cmd.community}")


@resident.command("update")
@click.argument("community")
@click.argument("code")
@click.option("--category", "categories", multiple=True, metavar="CAT", help="The resident's categories (replace the old list).")
@click.option("--grid", help="New grid cell.")
@click.option("--household", help="New household number.")
@write_format_option
@pass_env
def update(
    env: Env,
    community: str,
    code: str,
    categories: tuple[str, ...],
    grid: str | None,
    household: str | None,
    fmt: str,
) -> None:
    """Change a resident's categories, grid or household; options not given stay as they are.

    \b
    Example:
      taizhang --actor clerk01 resident update HZ-001 R001 --category 留守老人 --category 独居老人
    """
    actor = env.writer()
    if not categories and grid is None and household is None:
        raise models.Malformed("resident update", "give at least one of --category, --grid, --household")
    cmd = env.validate(
        models.UpdateResident,
        {
            "community": community,
            "code": code,
            "categories": list(categories) if categories else None,
            "grid": grid,
            "household": household,
        },
    )
    service = env.service()
    result = service.update_resident(cmd, actor)
    emit_write(result, fmt, f"updated resident {cmd.code} in community {cmd.community}")


@resident.command("depart")
@click.argument("community")
@click.argument("code")
@click.option("--reason", required=True, help="moved|deceased|other.")
@click.option("--on", "on", metavar="DATE", help="Day of departure (default: today); no services from that day on.")
@write_format_option
@pass_env
def depart(env: Env, community: str, code: str, reason: str, on: str | None, fmt: str) -> None:
    """Record that a resident left the community (moved, deceased, other).

    Services before the departure day stay valid and can still be recorded.

    \b
    Example:
      taizhang --actor clerk01 resident depart HZ-001 R001 --reason moved --on 2026-04-01
    """
    actor = env.writer()
    cmd = env.validate(
        models.DepartResident,
        {"community": community, "code": code, "reason": reason, "on": on or env.today()},
    )
    service = env.service()
    result = service.depart_resident(cmd, actor)
    emit_write(result, fmt, f"resident {cmd.code} departed community {cmd.community} on {cmd.on}")


@click.group("provider")
def provider() -> None:
    """Service providers: party members, cadres, volunteers, grid workers, social workers, staff."""


@provider.command("register")
@click.argument("community")
@click.argument("code")
@click.option("--name", required=True, help="Full name.")
@click.option("--role", required=True, help="party_member|cadre|volunteer|grid_worker|social_worker|community_staff (or 党员, 志愿者 …).")
@click.option("--team", help="Team, e.g. 党员先锋队.")
@click.option("--registered-on", metavar="DATE", help="First day the provider may serve (default: the community's establishment).")
@write_format_option
@pass_env
def register_(
    env: Env, community: str, code: str, name: str, role: str, team: str | None, registered_on: str | None, fmt: str
) -> None:
    """Register a service provider in a community under a code unique in that community.

    \b
    Example:
      taizhang --actor clerk01 provider register HZ-001 P01 --name 李建国 --role 党员 --team 党员先锋队
    """
    actor = env.writer()
    cmd = env.validate(
        models.RegisterProvider,
        {
            "community": community,
            "code": code,
            "name": name,
            "role": role,
            "team": team,
            "registered_on": registered_on,
        },
    )
    service = env.service()
    result = service.register_provider(cmd, actor)
    emit_write(result, fmt, f"registered provider {cmd.code} in community {cmd.community}")


@provider.command("retire")
@click.argument("community")
@click.argument("code")
@click.option("--on", "on", metavar="DATE", help="Day of retirement (default: today); no services from that day on.")
@write_format_option
@pass_env
def retire(env: Env, community: str, code: str, on: str | None, fmt: str) -> None:
    """Retire a provider: they can serve no more from that day on.

    \b
    Example:
      taizhang --actor clerk01 provider retire HZ-001 P01 --on 2026-06-30
    """
    actor = env.writer()
    cmd = env.validate(
        models.RetireProvider, {"community": community, "code": code, "on": on or env.today()}
    )
    service = env.service()
    result = service.retire_provider(cmd, actor)
    emit_write(result, fmt, f"provider {cmd.code} retired from community {cmd.community} on {cmd.on}")




RESIDENT_FIELDS = [
    "code",
    "name",
    "birth_date",
    "gender",
    "categories",
    "grid",
    "household",
    "enrolled_on",
    "departed_on",
    "departure_reason",
]
PROVIDER_FIELDS = ["code", "name", "role", "team", "registered_on", "retired_on"]


@resident.command("list")
@click.argument("community")
@click.option("--category", metavar="CAT", help="Only residents of this category, e.g. 留守儿童.")
@format_option()
@click.option("--wait", "wait", type=WAIT, default=None, metavar="SECONDS", help="PostgreSQL: first wait up to SECONDS for the projections to reach the log's head.")
@pass_env
def list_residents(env: Env, community: str, category: str | None, fmt: str, wait: float | None) -> None:
    """List a community's residents; names and birth dates are decrypted only for this output.

    \b
    Example:
      taizhang resident list HZ-001 --category 留守儿童
    """
    from commands.cli.ledger import _refuse_unknown, prepared_views
    from commands.views import open_notes
    from domain.vocab import CATEGORIES
    from projections.queries import resident_rows

    try:
        slug = CATEGORIES.parse(category) if category else None
    except ValueError as e:
        raise models.Malformed("--category", str(e)) from None
    views = prepared_views(env, wait)
    with views.read() as conn:
        rows = _refuse_unknown(lambda: resident_rows(conn, community, slug))
    service = env.service()
    if not (open_notes(service, rows, "name") and open_notes(service, rows, "birth_date")):
        env.warn(f"no key file at {env.key_path}: names and birth dates are not shown")
    rows = [{f: r.get(f) for f in RESIDENT_FIELDS} for r in rows]
    env.log_access([(community, r["code"]) for r in rows])
    shown = rows if fmt != "table" else [localise(r, env.lang) for r in rows]
    emit(shown, RESIDENT_FIELDS, fmt, headers(RESIDENT_FIELDS, env.lang))


@provider.command("list")
@click.argument("community")
@format_option()
@click.option("--wait", "wait", type=WAIT, default=None, metavar="SECONDS", help="PostgreSQL: first wait up to SECONDS for the projections to reach the log's head.")
@pass_env
def list_providers(env: Env, community: str, fmt: str, wait: float | None) -> None:
    """List a community's service providers.

    \b
    Example:
      taizhang provider list HZ-001 --format csv
    """
    from commands.cli.ledger import _refuse_unknown, prepared_views
    from projections.queries import provider_rows

    views = prepared_views(env, wait)
    with views.read() as conn:
        rows = _refuse_unknown(lambda: provider_rows(conn, community))
    rows = [{f: r.get(f) for f in PROVIDER_FIELDS} for r in rows]
    shown = rows if fmt != "table" else [localise(r, env.lang) for r in rows]
    emit(shown, PROVIDER_FIELDS, fmt, headers(PROVIDER_FIELDS, env.lang))


def register(group: click.Group) -> None:
    group.add_command(resident)
    group.add_command(provider)
