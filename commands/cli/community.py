"""`taizhang community establish|list`."""

from __future__ import annotations

import click

from commands.context import WAIT, Env, format_option, pass_env, write_format_option
from commands.output import emit, emit_write

LIST_COLUMNS = [
    "code",
    "name",
    "county",
    "township",
    "village",
    "natural_villages",
    "established_on",
    "residents",
    "providers",
    "records",
]
HEADERS = {
    "en": ["code", "name", "county", "township", "village", "natural villages", "established", "residents", "providers", "records"],
    "zh": ["编码", "名称", "县区", "乡镇", "行政村", "自然村", "成立日期", "在册对象", "服务人员", "服务记录"],
}


@click.group("community")
def community() -> None:
    """Communities (新型农村社区): establish one, list them."""


@community.command("establish")
@click.argument("code")
@click.option("--name", required=True, help="Community name, e.g. 石门新型农村社区.")
@click.option("--county", required=True, help="County or district (县区), e.g. 八步区.")
@click.option("--township", required=True, help="Township (乡镇), e.g. 贺街镇.")
@click.option("--village", required=True, help="Administrative village (行政村).")
@click.option("--natural-village", "natural_villages", multiple=True, help="A natural village (自然村); repeat for several.")
@click.option("--established-on", metavar="DATE", help="Date the community was established (default: today).")
@write_format_option
@pass_env
def establish(
    env: Env,
    code: str,
    name: str,
    county: str,
    township: str,
    village: str,
    natural_villages: tuple[str, ...],
    established_on: str | None,
    fmt: str,
) -> None:
    """Establish a community with its code (unique in the store).

    Services can be recorded from the establishment date on, so back-date it
    when you back-fill old paper ledgers.

    \b
    Example:
      taizhang --actor clerk01 community establish HZ-001 --name 石门社区 \\
        --county 八步区 --township 贺街镇 --village 石门村 --natural-village 大岭 \\
        --established-on 2026-01-01
    """
    from commands import models

    actor = env.writer()
    cmd = env.validate(
        models.EstablishCommunity,
        {
            "code": code,
            "name": name,
            "county": county,
            "township": township,
            "village": village,
            "natural_villages": list(natural_villages),
            "established_on": established_on,
        },
    )
    service = env.service()
    result = service.establish_community(cmd, actor)
    emit_write(result, fmt, f"established community {cmd.code} {cmd.name}")


@community.command("list")
@format_option()
@click.option("--wait", "wait", type=WAIT, default=None, metavar="SECONDS", help="PostgreSQL: first wait up to SECONDS for the projections to reach the log's head.")
@pass_env
def list_(env: Env, fmt: str, wait: float | None) -> None:
    """List every community with its counts of active residents, providers and records.

    \b
    Example:
      taizhang community list --format csv > communities.csv
    """
    from commands.views import prepared_views
    from projections.queries import community_rows

    views = prepared_views(env, wait)
    with views.read() as conn:
        rows = community_rows(conn)
    emit(rows, LIST_COLUMNS, fmt, HEADERS[env.lang])


def register(group: click.Group) -> None:
    group.add_command(community)
