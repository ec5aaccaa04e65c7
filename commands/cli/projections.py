"""`taizhang projections status|rebuild|run`: the read models and how far along the log they are."""

from __future__ import annotations

import signal
from types import FrameType

import click
from sqlalchemy.exc import DBAPIError

from commands import i18n, labels
from commands.context import INTERVAL, Env, Refused, format_option, pass_env
from commands.output import emit, render_json
from commands.progress import Progress
from infra import outage

STATUS_FIELDS = ["projection", "position", "head", "lag"]


@click.group("projections")
def projections() -> None:
    """The ledger views rebuilt from the events: status, rebuild, run."""


@projections.command("status")
@format_option()
@pass_env
def status(env: Env, fmt: str) -> None:
    """Show each projection's position in the log and how far it lags behind.

    \b
    Example:
      taizhang projections status --format json
    """
    views = env.views()
    views.runner.ensure_tables()
    emit(views.runner.status(), STATUS_FIELDS, fmt, labels.headers(STATUS_FIELDS, env.lang))


@projections.command("rebuild")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json prints the projections and their new positions.",
)
@pass_env
def rebuild(env: Env, fmt: str) -> None:
    """Drop the ledger views and replay the whole log into them.

    Safe to interrupt: the next run (or any query on SQLite) resumes where it stopped.

    \b
    Example:
      taizhang projections rebuild
    """
    views = env.views()
    with Progress("rebuilding", views.runner.head()) as bar:
        views.runner.rebuild(progress=lambda done, total: bar.set(done, total))
    result = views.runner.status()
    if fmt == "json":
        click.echo(render_json(result))
    else:
        for row in result:
            click.echo(f"rebuilt {row['projection']} up to position {row['position']}")


@projections.command("run")
@click.option(
    "--follow",
    is_flag=True,
    help="Keep running: project new events as they are recorded (stop with Ctrl-C or SIGTERM).",
)
@click.option(
    "--interval",
    type=INTERVAL,
    default=0.5,
    show_default=True,
    metavar="SECONDS",
    help="With --follow: how often to look for new events.",
)
@pass_env
def run(env: Env, follow: bool, interval: float) -> None:
    """Bring the views up to the head of the log; with --follow, keep them there.

    On PostgreSQL run one or more of these workers beside the clerks' writers, logged
    in as a member of taizhang_projector with a projector actor (`actor add --role
    projector`): no other login may write the views. Each event is projected exactly
    once however many run.

    \b
    Example:
      taizhang --db postgresql://tz_worker@db/taizhang --actor worker projections run --follow
    """
    _may_write_views(env)
    views = env.views()
    views.runner.ensure_tables()
    try:
        with Progress("projecting", 0) as bar:
            moved = views.runner.catch_up(progress=lambda done, total: bar.set(done, total))
    except Exception as error:
        if not (follow and outage.is_transient(error)):
            raise
        moved = 0  # a follower waits the outage out below
    if not follow:
        click.echo(f"projected {moved} event(s); views at position {views.runner.head()}")
        return
    stopping = {"now": False}

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping["now"] = True

    def say(message: str) -> None:  # at once: a follower never ends to print its notes
        click.echo(i18n.note_line(message, env.lang), err=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        views.runner.follow(lambda: stopping["now"], interval=interval, warn=say)
    except DBAPIError as error:  # not an outage: a permission, a missing table
        raise Refused(f"database: {outage.reason(error)}") from None
    click.echo("stopped", err=True)


def _may_write_views(env: Env) -> None:
    """On PostgreSQL only the projection worker's login (or the owner) writes the views: say so in one line."""
    from commands.context import Refused

    service = env.service()
    if service.store.backend == "postgres" and not service.recorder.may_write_views():
        raise Refused(
            f"database login {service.recorder.session_user()} may not write the views: only the projection "
            "worker's login (a member of taizhang_projector) or the store's owner runs projections"
        )


def register(group: click.Group) -> None:
    group.add_command(projections)
