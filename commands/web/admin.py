"""The admins' page: actors with roles and scopes; add, revoke, set a password, issue or revoke a token.

The same services as `actor add|revoke|password|token` (grant = add: an actor's name is never
reused), under the same access rules, access-logged as the CLI logs them (passwords and tokens
in the access log; grants and revocations are events of the log itself).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from commands.context import MalformedInput
from commands.web import words
from commands.web.door import Door
from commands.web.policy import Who, needs

FIELDS = ("name", "role", "scope", "login", "reason", "password", "repeat", "days", "token_id")


def actor_name(value: str) -> str:
    from commands.models import clean_code

    try:
        return clean_code(value)
    except ValueError as e:
        raise MalformedInput(f"ACTOR: {e}".replace("code ", "name ", 1)) from None


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k) or "") for k in (*FIELDS, "csrf")}


async def new_actor_units(request: Request, _actor: Any) -> dict[str, Any]:
    form = await _form(request)
    scope = form["scope"].strip()
    if not scope:
        raise MalformedInput("--scope: is required")
    return {"scope": scope}


async def named_actor_units(request: Request, _actor: Any) -> dict[str, Any]:
    form = await _form(request)
    return {"name": actor_name(form["name"])}


def register(app: FastAPI, door: Door, templates: Jinja2Templates, context: Any) -> None:
    from commands.web import app as core
    from domain.actors import ROLES

    def rows() -> list[dict[str, Any]]:
        from commands.access import load_actors

        with door._write:
            actors = load_actors(door.service)
        listed = actors.all() if actors is not None else []
        return [
            {"actor": a.name, "role": a.role, "scope": str(a.scope), "login": a.login or "",
             "status": "revoked" if a.revoked else "active", "granted_by": a.granted_by}
            for a in listed
        ]  # fmt: skip

    def page(request: Request, who: Who, status: int = 200, **extra: Any) -> Response:
        login = ""
        if door.store.backend == "postgres":
            login = str(door.service.recorder.session_user())
        ctx = context(request, who, actors=rows(), roles=ROLES, server_login=login, **extra)
        return templates.TemplateResponse(request, "admin.html", ctx, status_code=status)

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request, who: Who = needs("actor list")) -> Response:
        return page(request, who)

    def act(request: Request, who: Who, form: dict[str, str], work: Any) -> Response:
        try:
            core._require_csrf(who, form.get("csrf", ""))
            done, token = work(who, form)
        except Exception as e:
            status, message = core._failure(e)
            if status is None:
                raise
            return page(request, who, status, failed=words.translate(message, who.lang))
        return page(request, who, done=words.translate(done, who.lang), token=token)

    def add(who: Who, form: dict[str, str]) -> tuple[str, None]:
        from domain.actors import CITY, CITY_ONLY_ROLES, parse_scope

        name = actor_name(form["name"])
        role = form["role"].strip()
        if role not in ROLES:
            raise MalformedInput(f"--role: expected one of {', '.join(ROLES)}, got {role!r}")
        try:
            scope = str(parse_scope(form["scope"]))
        except ValueError as e:
            raise MalformedInput(f"--scope: {e}") from None
        if role in CITY_ONLY_ROLES and scope != CITY:
            raise MalformedInput(f"--scope: a {role} keeps the views of the whole store: use --scope city, not {scope}")
        login = None
        if door.store.backend == "postgres":
            login = form["login"].strip() or str(door.service.recorder.session_user())
        with door.writing(who.actor) as service:
            service.grant_actor(name, role, scope, login, who.name)
            _bind_logins(door)
        return f"{name} is {role} of {scope}" + (f" (login {login})" if login else ""), None

    def revoke(who: Who, form: dict[str, str]) -> tuple[str, None]:
        from commands.models import clean_text

        name = actor_name(form["name"])
        try:
            reason = clean_text(form["reason"], limit=500, what="reason")
        except ValueError as e:
            raise MalformedInput(f"--reason: {e}") from None
        with door.writing(who.actor) as service:
            try:
                service.revoke_actor(name, reason, who.name)
            finally:
                _bind_logins(door)
        return f"revoked {name}", None

    def password(who: Who, form: dict[str, str]) -> tuple[str, None]:
        from commands import credentials

        name = actor_name(form["name"])
        if form["password"] != form["repeat"]:
            raise MalformedInput("password: the two entries differ")
        credentials.check_password(form["password"])
        with door._write:
            credentials.set_password(door.service, door.auth, name, form["password"], who.name)
        return f"password set for {name}", None

    def token(who: Who, form: dict[str, str]) -> tuple[str, str | None]:
        from commands import credentials

        name = actor_name(form["name"])
        if form["token_id"].strip():
            with door._write:
                credentials.revoke_token(door.service, door.auth, name, form["token_id"].strip(), who.name)
            return f"revoked token {form['token_id'].strip()} of {name}", None
        days_text = form["days"].strip() or "90"
        if not days_text.isdigit() or not 1 <= int(days_text) <= credentials.MAX_TOKEN_DAYS:
            raise MalformedInput(f"--days: expected 1 to {credentials.MAX_TOKEN_DAYS}, got {days_text!r}")
        days = int(days_text)
        with door._write:
            token_id, secret, _ = credentials.make_token(door.service, door.auth, name, days, who.name)
        return f"token {token_id} for {name}, valid {days} days; it is shown only now", secret

    for path, rule, units, work in (
        ("/admin/add", "actor add", new_actor_units, add),
        ("/admin/revoke", "actor revoke", named_actor_units, revoke),
        ("/admin/password", "actor password", named_actor_units, password),
        ("/admin/token", "actor token", named_actor_units, token),
    ):
        _route(app, path, rule, units, work, act)


def _route(app: FastAPI, path: str, rule: str, units: Any, work: Any, act: Any) -> None:
    async def route(request: Request, who: Who = needs(rule, units)) -> Response:
        form = await _form(request)
        return await run_in_threadpool(act, request, who, form, work)

    route.__name__ = "admin_" + path.rsplit("/", 1)[1]
    app.post(path, response_class=HTMLResponse)(route)


def _bind_logins(door: Door) -> None:
    """PostgreSQL: the active actors' logins bound again (as `actor add|revoke` does), when the server owns the store."""
    if door.store.backend != "postgres":
        return
    from commands.actor_logins import setup_reads

    setup_reads(door.service, door.views.runner.view_tables())
