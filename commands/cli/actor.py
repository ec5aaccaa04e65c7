"""`taizhang actor add|revoke|list`: who may do what, where."""

from __future__ import annotations

from typing import Any

import click

from commands import clock, models
from commands.access import load_actors
from commands.actor_logins import setup_reads
from commands.context import Env, MalformedInput, format_option, pass_env, write_format_option
from commands.output import emit, emit_write
from domain.actors import CITY, CITY_ONLY_ROLES, ROLES, Actors, parse_scope

LIST_FIELDS = [
    "actor", "role", "scope", "login", "status", "granted_by", "granted_at", "revoked_by", "revoked_at", "reason",
]  # fmt: skip
LIST_HEADERS_ZH = {
    "actor": "操作人", "role": "角色", "scope": "范围", "login": "数据库账号", "status": "状态",
    "granted_by": "授权人", "granted_at": "授权时间", "revoked_by": "撤销人", "revoked_at": "撤销时间", "reason": "原因",
}  # fmt: skip
TOKEN_HEADERS_ZH = {
    "token": "令牌", "status": "状态", "created_at": "创建时间", "expires_at": "到期时间", "revoked_at": "撤销时间",
    "made_by": "创建人",
}  # fmt: skip
# The database group a login needs for each role (see README "Actors, roles and scopes").
GROUP_OF_ROLE = {
    "clerk": "taizhang_writer", "supervisor": "taizhang_writer", "auditor": "taizhang_reader",
    "projector": "taizhang_projector",
}  # fmt: skip


def actor_name(value: str, option: str = "ACTOR") -> str:
    try:
        return models.clean_code(value)
    except ValueError as e:
        raise MalformedInput(f"{option}: {e}".replace("code ", "name ", 1)) from None


def scope_arg(value: str) -> str:
    try:
        return str(parse_scope(value))
    except ValueError as e:
        raise MalformedInput(f"--scope: {e}") from None


def login_arg(env: Env, login: str | None, required: bool) -> str | None:
    """--login: a PostgreSQL login name; required there, meaningless on SQLite."""
    if env.store.backend != "postgres":
        if login is not None:
            raise MalformedInput(
                "--login: only PostgreSQL stores have database logins (on SQLite the file's permissions decide)"
            )
        return None
    if login is None:
        if required:
            raise MalformedInput("--login: required on PostgreSQL: the database login this actor connects as")
        return None
    name = login.strip()
    if not name or len(name) > 63 or any(not (c.isalnum() or c == "_") for c in name):
        raise MalformedInput(f"--login: expected a PostgreSQL role name (letters, digits, _), got {login[:70]!r}")
    return name


@click.group("actor")
def actor() -> None:
    """Actors (who may do what, where): admins, clerks, supervisors and auditors, each with a scope."""


@actor.command("add")
@click.argument("name", metavar="ACTOR")
@click.option(
    "--role",
    required=True,
    type=click.Choice(ROLES),
    help="admin: actors, communities, keys; clerk: records; supervisor: duties, targets, assessments; auditor: reads and audits; projector: the projection worker that keeps the views (scope city).",
)
@click.option(
    "--scope", required=True, metavar="SCOPE", help="city, county:NAME, township:COUNTY/NAME or community:CODE."
)
@click.option(
    "--login", metavar="DBROLE", help="PostgreSQL (required there): the database login this actor connects as."
)
@write_format_option
@pass_env
def actor_add(env: Env, name: str, role: str, scope: str, login: str | None, fmt: str) -> None:
    """Grant a role inside a scope to a new actor (recorded as an event: who granted it, when).

    The store's first actor must be an admin: from then on every command names an
    existing, unrevoked actor. On PostgreSQL the database administrator creates the
    login and makes it a member of taizhang_writer (clerks, supervisors),
    taizhang_reader (auditors) or taizhang_projector (the projection worker, the
    only login besides the owner that writes the views); admins connect as the
    store's owner. There each login reads only the rows of its actors' scopes.

    \b
    Example:
      taizhang --actor admin actor add clerk-hj01 --role clerk --scope township:八步区/贺街镇
      taizhang --actor admin actor add sup-bb --role supervisor --scope county:八步区 --login sup_bb
      taizhang --actor admin actor add worker --role projector --scope city --login tz_worker
    """
    writer = env.writer()
    name = actor_name(name)
    scope = scope_arg(scope)
    if role in CITY_ONLY_ROLES and scope != CITY:
        raise MalformedInput(f"--scope: a {role} keeps the views of the whole store: use --scope city, not {scope}")
    login = login_arg(env, login, required=True)
    service = env.service()
    result = service.grant_actor(name, role, scope, login, writer)
    _bind_logins(env)
    if login is not None:
        _note_login(env, login, role)
    emit_write(result, fmt, f"{name} is {role} of {scope}" + (f" (login {login})" if login else ""))


def _bind_logins(env: Env, without: str | None = None, *, quiet: bool = False) -> None:
    if env.store.backend != "postgres":
        return
    service = env.service()
    if not setup_reads(service, env.views().runner.view_tables(), without) and not quiet:
        env.warn(
            f"database login {service.recorder.session_user()} does not own the store: logins were not bound "
            "(a login reads no rows until the owner's login runs actor add or actor revoke)"
        )


def _note_login(env: Env, login: str, role: str) -> None:
    """Warn (after success) when the login is missing or not in the group its role needs."""
    rows = env.service().recorder.role_groups(login)
    if rows is None:
        env.warn(f"database login {login} does not exist yet: the database administrator must create it")
        return
    group = GROUP_OF_ROLE.get(role)
    if group is not None and group not in rows:
        env.warn(f"database login {login} is not a member of {group}: GRANT {group} TO {login}")


@actor.command("revoke")
@click.argument("name", metavar="ACTOR")
@click.option("--reason", required=True, help="Why (kept with the revocation).")
@write_format_option
@pass_env
def actor_revoke(env: Env, name: str, reason: str, fmt: str) -> None:
    """Revoke an actor: from now on every command naming them is refused. Their past events stay theirs.

    \b
    Example:
      taizhang --actor admin actor revoke clerk-hj01 --reason '调离岗位'
    """
    writer = env.writer()
    name = actor_name(name)
    try:
        reason = models.clean_text(reason, limit=500, what="reason")
    except ValueError as e:
        raise MalformedInput(f"--reason: {e}") from None
    service = env.service()
    _bind_logins(env, without=name, quiet=True)  # unbound before the revocation is stored: never reads a moment longer
    try:
        result = service.revoke_actor(name, reason, writer)
    finally:
        _bind_logins(env)  # as the log says (a refused revocation binds the actor again)
    emit_write(result, fmt, f"revoked {name}")


@actor.command("password")
@click.argument("name", metavar="ACTOR")
@pass_env
def actor_password(env: Env, name: str) -> None:
    """Set an actor's password for the web (`taizhang serve`): asked twice, never on the command line.

    Stored as an argon2id hash in the store (never the password); the actor's open web
    sessions end. A revoked actor gets none. Every change is in the access log.

    \b
    Example:
      taizhang --actor admin actor password sup-hj
    """
    from commands import credentials, i18n
    from infra.webauth import WebAuth

    by = env.require_actor()
    name = actor_name(name)
    service = env.service()
    password = click.prompt(
        i18n.word("New password", env.lang),
        hide_input=True,
        confirmation_prompt=i18n.word("Repeat the password", env.lang),
        prompt_suffix=": ",
    )
    credentials.check_password(password)
    credentials.set_password(service, WebAuth(service.store), name, password, by)
    click.echo(i18n.translate(f"password set for {name}", env.lang), err=True)


@actor.command("token")
@click.argument("name", metavar="ACTOR")
@click.option(
    "--days", type=click.IntRange(1, 366), default=90, show_default=True, help="Days until the token expires."
)
@click.option("--revoke", "revoke", metavar="TOKEN_ID", help="Revoke this token of the actor instead of making one.")
@click.option(
    "--list", "listed", is_flag=True, help="List the actor's tokens (ids, expiry, state; never a secret) instead."
)
@format_option()
@pass_env
def actor_token(env: Env, name: str, days: int, revoke: str | None, listed: bool, fmt: str) -> None:
    """Make an API token for an actor (printed once, stored hashed, with an expiry), revoke one, or list them.

    The token goes in `Authorization: Bearer TOKEN` on /api/v1 requests. It stops
    working when it expires, when it is revoked, and when the actor is revoked.

    \b
    Example:
      taizhang --actor admin actor token clerk-hj --days 30
      taizhang --actor admin actor token clerk-hj --list
      taizhang --actor admin actor token clerk-hj --revoke 3f9a1c2b7d4e
    """
    from commands import credentials, i18n
    from infra.webauth import WebAuth

    if listed and revoke is not None:
        raise MalformedInput("--list and --revoke: give at most one")
    by = env.require_actor()
    name = actor_name(name)
    service = env.service()
    auth = WebAuth(service.store)
    if listed:
        rows = credentials.token_rows(service, auth, name)
        names = [TOKEN_HEADERS_ZH[f] for f in credentials.TOKEN_FIELDS] if env.lang == "zh" else None
        emit(rows, credentials.TOKEN_FIELDS, fmt, names or [f.replace("_", " ") for f in credentials.TOKEN_FIELDS])
        return
    if revoke is not None:
        credentials.revoke_token(service, auth, name, revoke.strip(), by)
        click.echo(i18n.translate(f"revoked token {revoke.strip()} of {name}", env.lang), err=True)
        return
    token_id, token, _expires = credentials.make_token(service, auth, name, days, by)
    click.echo(token)
    click.echo(
        i18n.translate(f"token {token_id} for {name}, valid {days} days; it is shown only now", env.lang), err=True
    )


@actor.command("list")
@format_option()
@pass_env
def actor_list(env: Env, fmt: str) -> None:
    """List every actor ever granted, with who granted (and revoked) them and when.

    \b
    Example:
      taizhang --actor auditor01 actor list --format csv
    """
    names = (
        [LIST_HEADERS_ZH[f] for f in LIST_FIELDS] if env.lang == "zh" else [f.replace("_", " ") for f in LIST_FIELDS]
    )
    emit(actor_rows(env), LIST_FIELDS, fmt, names)


def actor_rows(env: Env) -> list[dict[str, Any]]:
    from infra.codec import decode_payload

    service = env.service()
    actors = load_actors(service)
    if actors is None:
        return []
    rows = {
        a.name: {
            "actor": a.name,
            "role": a.role,
            "scope": str(a.scope),
            "login": a.login,
            "status": "revoked" if a.revoked else "active",
            "granted_by": a.granted_by,
            "granted_at": None,
            "revoked_by": None,
            "revoked_at": None,
            "reason": None,
        }  # fmt: skip
        for a in actors.all()
    }
    recorder = service.recorder
    topics = [Actors.Granted.TOPIC, Actors.Revoked.TOPIC]
    start = 1
    while True:
        batch = recorder.select_notifications(start, 1000, topics=topics)
        if not batch:
            break
        times = recorder.recorded_times(batch[0].id, batch[-1].id)
        for n in batch:
            payload = decode_payload(n.state)
            at = next((t for first, last, t in times if first <= n.id <= last), None)
            row = rows[payload["name"]]
            if n.topic == Actors.Granted.TOPIC:
                row["granted_at"] = at
            else:
                row.update(revoked_by=payload["actor"], revoked_at=at, reason=payload["reason"])
        start = batch[-1].id + 1
    listed = list(rows.values())
    clock.localise(listed, service.tz)
    return listed


def register(group: click.Group) -> None:
    group.add_command(actor)
