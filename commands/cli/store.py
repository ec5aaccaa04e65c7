"""`taizhang init` and `taizhang demo`: the only commands that create a store."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path

import click

from commands import files
from commands.access import load_actors
from commands.app import LedgerService, Unfinished, check_zone
from commands.context import Env, MalformedInput, Refused, pass_env, write_format_option
from commands.output import emit_write, say
from commands.progress import Progress
from domain.units import Period
from infra import crypto
from infra.store import StoreURL, store_exists


def _ensure_key_file(path: Path) -> bool:
    """Create the master key file if missing; an existing one is kept, never overwritten."""
    if path.exists():
        files.check_input(path, "--key-file", files.MAX_KEY_BYTES)
        try:
            crypto.load_key_file(path)
        except crypto.KeyFileError as e:
            raise Refused(f"{e}; refusing to overwrite it") from None
        return False
    crypto.create_key_file(path)
    return True


def _resumable(store: StoreURL, key_path: Path, admin: str | None) -> None:
    """Refuse an existing store, unless it is one whose `init --admin` did not finish (then init resumes it)."""
    pending = LedgerService.peek_unfinished(store, key_path)
    if pending is None:
        raise Refused(f"a store already exists at {store.display}")
    if pending and admin != pending:
        raise Unfinished(store, pending)


@click.command("init")
@click.option(
    "--tz", metavar="ZONE", help="Time zone of the store's local dates (default Asia/Shanghai). Fixed forever."
)
@click.option(
    "--admin",
    "admin",
    metavar="ACTOR",
    help="The first admin: turns access control on (required on PostgreSQL, bound to this login).",
)
@click.option(
    "--no-access-control",
    "no_access",
    is_flag=True,
    help="PostgreSQL: create the store without actors (a single-user or test store).",
)
@write_format_option
@pass_env
def init(env: Env, tz: str | None, admin: str | None, no_access: bool, fmt: str) -> None:
    """Create an empty store and its master key file (and, with --admin, its first admin).

    The key file (default: taizhang.key beside a SQLite store) encrypts names,
    birth dates and notes. It is never overwritten; back it up apart from the
    database: without it personal data cannot be read.

    With --admin every later command must name an actor (--actor). On PostgreSQL
    run it with the owner's URL: it also creates the groups taizhang_reader,
    taizhang_writer and taizhang_projector for the other actors' logins, limits
    each login's reads to its actors' scopes, and binds the admin to this login.

    \b
    Example:
      taizhang --db sqlite:///ledger.db init --tz Asia/Shanghai --admin admin01
      taizhang --db postgresql://taizhang:…@db/taizhang init --admin admin01
    """
    from commands.cli.actor import actor_name, setup_reads

    if tz:
        check_zone(tz)
    if admin is not None:
        admin = actor_name(admin, "--admin")
        if no_access:
            raise MalformedInput("--admin and --no-access-control: give at most one")
    elif env.store.backend == "postgres" and not no_access:
        raise MalformedInput(
            "--admin: required on PostgreSQL (the first admin, bound to this login); "
            "or --no-access-control for a store without actors"
        )
    store = env.store
    key_path = env.key_path
    if store_exists(store):
        _resumable(store, key_path, admin)
    created_key = _ensure_key_file(key_path)
    try:
        service, _created = LedgerService.create(store, key_path, tz, pending_admin=admin)
    except BaseException:
        if created_key:
            key_path.unlink(missing_ok=True)  # a failed init writes nothing
        raise
    try:
        from commands.views import Views

        views = Views(service)
        views.runner.ensure_tables()
        view_tables = views.runner.view_tables()
        views.close()
        result = {
            "store": store.display,
            "key_file": str(key_path),
            "key_created": created_key,
            "time_zone": str(service.tz),
        }
        if admin is not None:
            result["admin"] = admin
            login = None
            if store.backend == "postgres":
                service.recorder.setup_access(view_tables)
                login = service.recorder.session_user()
            actors = load_actors(service)
            if actors is None or actors.get(admin) is None:  # a resumed init may have granted it already
                service.grant_actor(admin, "admin", "city", login, admin)
            if store.backend == "postgres":
                setup_reads(service, view_tables)
            service.finish_init()
    finally:
        service.close()
    key_note = "created" if created_key else "existing, kept"
    admin_note = f"; access control on, admin {admin}" if admin else ""
    emit_write(
        result,
        fmt,
        f"initialised {store.display} (time zone {result['time_zone']}){admin_note}; "
        f"key file {key_path} ({key_note}) — back it up",
    )


@click.command("demo")
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed of the sample; the same seed gives the same sample."
)
@write_format_option
@pass_env
def demo(env: Env, seed: int, fmt: str) -> None:
    """Fill an empty store with a Hezhou-like sample: 5 counties, 60 communities, 3 months of services.

    With officials and their duties, visit plans, pairings, targets, supervision
    items and debriefings, and a funding ledger (资金台账) of several departments' lines
    passed down to the communities and spent with vouchers linked to their services; ends
    with the township ranking of its last full month and the city's 资金台账 by department.
    Creates the store and key file if they do not exist; refuses a store that
    already holds events.

    \b
    Example:
      taizhang --db sqlite:///demo.db demo --seed 7
    """
    from commands.demo import last_full_month, run_demo

    store = env.store
    key_path = env.key_path
    if store_exists(store):
        service = LedgerService.open(store, key_path)
    else:
        _ensure_key_file(key_path)
        service, _created = LedgerService.create(store, key_path, None)
    env.adopt(service)
    if service.recorder.max_notification_id():
        raise Refused(f"the store at {store.display} already holds events; demo fills only an empty store")
    actor = env.actor or "demo"
    today = service.now().date()
    with Progress("loading demo", 1) as bar:
        summary = run_demo(
            service, seed=seed, actor=actor, today=today, progress=lambda done, total: bar.set(done, total)
        )
    result = {
        "store": store.display,
        "seed": seed,
        **{k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(summary).items()},
    }
    lines = [
        f"loaded the demo (seed {seed}) into {store.display}:",
        f"  {summary.counties} counties, {summary.townships} townships, {summary.communities} communities "
        f"({summary.pilot} pilot, {summary.demonstration} demonstration)",
        f"  {summary.residents} residents, {summary.providers} providers",
        f"  {summary.services} services from {summary.first_day} to {summary.last_day} "
        f"({summary.corrections} corrected, {summary.voids} voided, {summary.late} entered late)",
        f"  {summary.officials} officials with {summary.duties} duties, {summary.debriefings} debriefings; "
        f"{summary.visit_plans} visit plans, {summary.pairings} pairings; "
        f"{summary.targets} targets, {summary.supervision_items} supervision items",
    ]
    if fmt == "json":
        emit_write(result, fmt, "")
        return
    click.echo(say("\n".join(lines)))
    _print_township_summary(env, summary.first_day, summary.last_day)
    _print_township_ranking(env, last_full_month(today))
    _print_funds_summary(env)


def _print_funds_summary(env: Env) -> None:
    """The city's 资金台账 by department, as `funds ledger --by department` prints it."""
    from commands import funds_reads as r
    from commands.labels import headers
    from commands.output import render_table

    rows, _unit_words = r.ledger_rows(env, r.parse_ask(env, unit=None, period=None, as_of=None), by="department")
    rows = [row for row in rows if row["lines"]]  # the departments the demo granted from
    fields = r.SHOWN_FIELDS["department"]
    heading = (
        "全市资金台账（按资金来源）：" if env.lang == "zh" else "the city's funding ledger (资金台账) by department:"
    )
    click.echo(f"\n{heading}")
    click.echo(render_table(r.shown_rows(rows, env.lang), fields, headers(fields, env.lang)))


def _print_township_summary(env: Env, first: date, last: date) -> None:
    from commands.cli.ledger import summary_fields, summary_rows
    from commands.labels import headers, localise
    from commands.output import render_table
    from projections.queries import Filters

    rows = summary_rows(env, Filters(date_from=first, date_to=last), by="township")
    fields = summary_fields("township", False)
    heading = "乡镇服务汇总" if env.lang == "zh" else "services by township"
    click.echo(f"\n{heading} {first} – {last}:")
    click.echo(render_table([localise(r, env.lang) for r in rows], fields, headers(fields, env.lang)))


def _print_township_ranking(env: Env, period: Period) -> None:
    """The townships' assessment for the period (as `assess run --level township`), best first."""
    from commands.assess import default_rubric, now_utc, ranking_rows
    from commands.cli.assess import assessment_document
    from commands.output import render_table
    from projections.filters import Moment

    rubric = default_rubric(None, now_utc())
    document = assessment_document(env, period, "township", Moment(), rubric, None)
    rows = ranking_rows(document)  # by rank, units by name, one decimal: as `assess run` prints it
    if env.lang == "zh":
        heading = f"乡镇考核排名 {period.text}（考核细则 {rubric.name} v{rubric.version}）："
        names = ["排名", "单位", "得分"]
    else:
        heading = f"township ranking {period.text} (rubric {rubric.name} v{rubric.version}):"
        names = ["rank", "unit", "score"]
    click.echo(f"\n{heading}")
    click.echo(render_table(rows, ["rank", "unit", "score"], names))


def register(group: click.Group) -> None:
    group.add_command(init)
    group.add_command(demo)
