"""The web door (`taizhang serve`): pages for supervisors and clerks, and a JSON API under /api/v1.

Server-rendered (Jinja2), forms that work without JavaScript, no inline script (the CSP
forbids it). Every route declares its access rule (commands.web.policy); every word a person
reads comes from the message catalogue (commands.web.words); the numbers come from the
services the CLI uses (commands.ledger_reads, commands.app.LedgerService).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from commands import clock, labels
from commands.context import MalformedInput, Refused
from commands.web import words
from commands.web.door import Door
from commands.web.policy import SESSION_COOKIE, Forbidden, NotLoggedIn, Who, needs, public
from domain.vocab import KINDS

HERE = Path(__file__).resolve().parent
log = logging.getLogger("taizhang.web")
LOGIN_CSRF_COOKIE = "tz_login_csrf"
LANG_COOKIE = "tz_lang"
PAGE_SIZE = 50
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


# ---- what a route's rule checks: the units a request names (as the CLI's options) ----------------
def scope_params(actor: Any) -> dict[str, Any]:
    """The actor's own scope as the CLI's filter options (none for the city)."""
    unit = actor.scope.unit
    if unit is None:
        return {}
    if unit.level == "county":
        return {"county": unit.county}
    if unit.level == "township":
        return {"township": f"{unit.county}/{unit.township}"}
    return {"community": unit.community}


def query_units(request: Request) -> dict[str, Any]:
    """`community`, `township`, `county` as given; none: the actor's scope (filled in by the route)."""
    q = request.query_params
    return {k: q[k] for k in ("community", "township", "county") if q.get(k)}


def _units_or_scope(request: Request, actor: Any) -> dict[str, Any]:
    return query_units(request) or scope_params(actor)


async def _record_units(request: Request, actor: Any) -> dict[str, Any]:
    """The community a record names (form field or JSON member); none given: malformed (422)."""
    community: Any = request.query_params.get("community")
    if request.method == "POST":
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                body = None
            community = body.get("community") if isinstance(body, dict) else None
        else:
            community = (await request.form()).get("community")
    if isinstance(community, str) and community.strip():
        return {"community": community.strip()}
    raise MalformedInput("community: required")


def create_app(door: Door, *, secure_cookies: bool = False, checkpoints: Path | None = None) -> FastAPI:
    """The web app over the door; `checkpoints`: the folder of sealed checkpoints the chain page shows
    the latest of (commands.web.audit.latest_checkpoint)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        door.close()  # the catch-up thread stops, the store's connections close

    app = FastAPI(
        lifespan=lifespan,
        title="taizhang",
        openapi_url=None,  # served by a route of its own below, with its access rule
        docs_url=None,
        redoc_url=None,
    )
    app.state.door = door
    app.state.checkpoints = checkpoints
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    ledger_rows = templates.get_template("ledger_rows.html")  # a 台账 page's rows, rendered once per kept read
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # ---- every response: language, security headers, errors as one message ----------------------
    @app.middleware("http")
    async def frame(request: Request, call_next: Any) -> Response:
        request.state.lang = _lang_of(request)
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _exc: NotLoggedIn) -> Response:
        if api(request):
            return _problem(401, words.say("log in first", request.state.lang))
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        """A bug: one line in the server's log, a plain 500 with the security headers (outside the middleware)."""
        # the path (never the query) and the error's class: its message may quote what a person typed
        log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        text = words.say("internal error; please report it", _lang_of(request))
        if api(request):
            response: Response = _problem(500, text)
        else:
            response = Response(text, status_code=500, media_type="text/plain; charset=utf-8")
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(MalformedInput)
    async def malformed(request: Request, exc: MalformedInput) -> Response:
        return _refusal(request, 422, exc.format_message())

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _refusal(request, 403, str(exc))

    def _refusal(request: Request, status: int, message: str) -> Response:
        lang = request.state.lang
        text = words.translate(message, lang)
        if api(request):
            return _problem(status, text)
        page = templates.TemplateResponse(
            request, "error.html", _context(request, None, message=text, status=status), status_code=status
        )
        return page

    # ---- pages ---------------------------------------------------------------------------------
    def _context(request: Request, who: Who | None, **extra: Any) -> dict[str, Any]:
        lang = request.state.lang
        return {
            "t": lambda english, **values: words.word(english, lang, **values),
            "lang": lang,
            "who": who,
            "csrf": who.session.csrf if who is not None and who.session is not None else "",
            "role": who.actor.role if who is not None else None,
            **extra,
        }

    @app.get("/lang/{lang}", dependencies=[public("the language of the pages, kept in a cookie")])
    def switch_lang(lang: str) -> Response:
        response = RedirectResponse("/", status_code=303)
        if lang in ("zh", "en"):
            response.set_cookie(LANG_COOKIE, lang, httponly=True, samesite="strict", secure=secure_cookies)
        return response

    @app.get("/login", response_class=HTMLResponse, dependencies=[public("the login form")])
    def login_page(request: Request) -> Response:
        token = secrets.token_urlsafe(32)
        page = templates.TemplateResponse(request, "login.html", _context(request, None, csrf=token, failed=None))
        page.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies)
        return page

    @app.post("/login", response_class=HTMLResponse, dependencies=[public("logging in")])
    def login(
        request: Request,
        actor: str = Form(""),
        password: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, csrf):
            raise Forbidden("the form has expired or was not sent by this site; reload the page")
        name = actor.strip()[:64]
        address = request.client.host if request.client else "?"
        keys = (f"actor:{name}", f"address:{address}")
        lang = request.state.lang

        def again(reason: str, status: int) -> Response:
            token = secrets.token_urlsafe(32)
            page = templates.TemplateResponse(
                request, "login.html", _context(request, None, csrf=token, failed=reason), status_code=status
            )
            page.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies)
            return page

        if door.throttle.blocked(*keys):
            door.log_access(name or None, "web login", f"refused: too many failures; address={address}")
            return again(words.say("too many failed logins; wait a quarter of an hour", lang), 429)
        from commands import credentials

        known = door.actor(name) if name else None
        good = credentials.verify(door.auth, name, password) if name else False
        if known is None or not good:
            door.throttle.fail(*keys)
            door.log_access(name or None, "web login", f"failed; address={address}")
            return again(words.say("wrong actor or password", lang), 401)
        door.throttle.clear(keys[0])
        session_id = secrets.token_urlsafe(32)
        door.auth.open_session(session_id, known.name, secrets.token_urlsafe(32))
        door.log_access(known.name, "web login", f"address={address}")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=secure_cookies, path="/"
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @app.post("/logout", dependencies=[public("logging out ends the caller's own session")])
    def logout(request: Request, csrf: str = Form("")) -> Response:
        session_id = request.cookies.get(SESSION_COOKIE)
        session = door.auth.session(session_id, door.idle) if session_id else None
        if session is not None:
            if not hmac.compare_digest(session.csrf, csrf):
                raise Forbidden("the form has expired or was not sent by this site; reload the page")
            door.auth.close_session(session_id or "")
            door.log_access(session.actor, "web logout", "")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/")
    def home(who: Who = needs("projections status")) -> Response:
        return RedirectResponse("/clerk" if who.actor.role == "clerk" else "/dashboard", status_code=303)

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard(
        request: Request, month: str | None = None, who: Who = needs("ledger summary", _units_or_scope)
    ) -> Response:
        env = door.env_for(who.name, who.lang)
        try:
            key = ("dashboard", str(who.actor.scope), month or "", env.today(), env.lang)
            board = door.cached(key, lambda: dashboard_numbers(door, env, who.actor, month))
        except (MalformedInput, Refused) as e:
            return _refusal(request, _status(e), e.format_message())
        return templates.TemplateResponse(request, "dashboard.html", _context(request, who, **board))

    @app.get("/ledger", response_class=HTMLResponse)
    def ledger_page(request: Request, who: Who = needs("ledger entries", _units_or_scope)) -> Response:
        env = door.env_for(who.name, who.lang)
        q = request.query_params
        page = _page_number(q.get("page"))
        key, read = _entry_page_read(door, env, who.actor, q, page)

        def shown_page() -> tuple[list[dict[str, Any]], int, Markup]:
            rows, total = read()
            table = [labels.localise(_plain(row), who.lang) for row in rows]
            return rows, total, Markup(ledger_rows.render(rows=table, fields=LEDGER_COLUMNS))

        try:  # the page's rows, localised and rendered, kept while the store stands still
            shown, total, body = door.cached((*key, "shown", who.lang), shown_page)
        except (MalformedInput, Refused) as e:
            return _refusal(request, _status(e), e.format_message())
        # Every time, kept or not: the entry is written while the page is built, and committed
        # before the page leaves (a failure shows nothing) — commands.web.access_writer.
        logged = door.log_access_soon(who.name, "web ledger entries", _detail(q), _residents(shown))
        pages = max(1, -(-total // PAGE_SIZE))
        base = [(k, v) for k, v in q.multi_items() if k != "page"]
        response = templates.TemplateResponse(
            request,
            "ledger.html",
            _context(
                request,
                who,
                body=body,
                total=total,
                page=page,
                pages=pages,
                query=base,
                kinds=_kinds(who.lang),
                categories=_categories(who.lang),
                headers=labels.headers(LEDGER_COLUMNS, who.lang),
                q=q,
            ),  # fmt: skip
        )
        logged.result()
        return response

    @app.get("/ledger.csv")
    def ledger_csv(request: Request, who: Who = needs("ledger entries", _units_or_scope)) -> Response:
        from commands.output import render_csv
        from projections.filters import ENTRY_FIELDS

        env = door.env_for(who.name, who.lang)
        q = request.query_params
        try:
            rows = entry_rows(door, env, who.actor, q)
        except (MalformedInput, Refused) as e:
            return _refusal(request, _status(e), e.format_message())
        door.log_access(who.name, "web ledger entries", _detail(q) + " --format=csv", _residents(rows))
        for row in rows:
            row.pop("entered_on", None)
        body = render_csv(rows, list(ENTRY_FIELDS)) + "\n"
        return Response(
            body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="ledger.csv"'},
        )

    @app.get("/ledger.xlsx")
    def ledger_xlsx(request: Request, who: Who = needs("ledger entries", _units_or_scope)) -> Response:
        env = door.env_for(who.name, who.lang)
        try:
            body, residents = entries_xlsx(door, env, who.actor, request.query_params)
        except (MalformedInput, Refused) as e:
            return _refusal(request, _status(e), e.format_message())
        door.log_access(who.name, "web ledger entries", _detail(request.query_params) + " --format=xlsx", residents)
        return Response(
            body,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="ledger.xlsx"'},
        )

    @app.get("/clerk", response_class=HTMLResponse)
    def clerk_page(request: Request, who: Who = needs("ledger entries", _units_or_scope)) -> Response:
        return templates.TemplateResponse(request, "clerk.html", clerk_context(request, who))

    def clerk_context(request: Request, who: Who, **extra: Any) -> dict[str, Any]:
        env = door.env_for(who.name, who.lang)
        zone = env.zone()
        now = datetime.now(zone)
        communities = scope_communities(door, who.actor)
        today = today_rows(door, env, who, now.date())
        return _context(
            request, who, communities=communities, kinds=_kinds(who.lang), now=now.strftime("%Y-%m-%dT%H:%M"),
            record_id=str(uuid4()), today=today, fields=TODAY_COLUMNS,
            headers=labels.headers(TODAY_COLUMNS, who.lang), **extra,
        )  # fmt: skip

    @app.post("/clerk/record", response_class=HTMLResponse)
    async def clerk_record(request: Request, who: Who = needs("service record", _record_units)) -> Response:
        form = await request.form()
        _require_csrf(who, str(form.get("csrf") or ""))
        data = {k: str(form.get(k) or "") for k in ("community", "kind", "resident", "provider", "at", "minutes")}
        data["record_id"] = str(form.get("record_id") or "")
        return await run_in_threadpool(clerk_submit, request, who, data)

    def clerk_submit(request: Request, who: Who, data: dict[str, Any]) -> Response:
        try:
            result = record_service(door, who, data)
        except Exception as e:
            status, message = _failure(e)
            if status is None:
                raise
            text = words.translate(message, who.lang)
            return templates.TemplateResponse(
                request, "clerk.html", clerk_context(request, who, failed=text, kept=data), status_code=status
            )
        word = "recorded" if result["created"] else "already recorded (unchanged)"
        done = words.word(word, who.lang)
        return templates.TemplateResponse(request, "clerk.html", clerk_context(request, who, done=done))

    # ---- the JSON API --------------------------------------------------------------------------
    @app.get("/api/v1/summary")
    def api_summary(
        request: Request,
        by: str = "community",
        period: str | None = None,
        who: Who = needs("ledger summary", _units_or_scope),
    ) -> Response:
        from commands import ledger_reads

        env = door.env_for(who.name, who.lang)
        q = request.query_params
        try:
            if by not in ("community", "township", "county"):
                raise MalformedInput(f"by: expected community, township or county, got {by!r}")
            filters = _filters(env, who.actor, q, period=period)
            key = ("api summary", str(who.actor.scope), filters, by)
            rows = door.cached(key, lambda: ledger_reads.summary_rows(env, filters, by=by))
        except (MalformedInput, Refused) as e:
            return _problem(_status(e), words.translate(e.format_message(), who.lang))
        return _json(rows)

    @app.get("/api/v1/entries")
    def api_entries(request: Request, who: Who = needs("ledger entries", _units_or_scope)) -> Response:
        from projections.filters import ENTRY_FIELDS

        env = door.env_for(who.name, who.lang)
        q = request.query_params
        try:
            rows = entry_rows(door, env, who.actor, q)
        except (MalformedInput, Refused) as e:
            return _problem(_status(e), words.translate(e.format_message(), who.lang))
        door.log_access(who.name, "web ledger entries", _detail(q) + " --format=json", _residents(rows))
        fields = list(ENTRY_FIELDS)
        return _json([{f: row.get(f) for f in fields} for row in rows])

    @app.post("/api/v1/records")
    async def api_record(request: Request, who: Who = needs("service record", _record_units)) -> Response:
        try:
            body = orjson.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("body: expected a JSON object")
        except ValueError:
            return _problem(422, words.translate("body: expected a JSON object", who.lang))
        if who.session is not None:
            _require_csrf(who, request.headers.get("x-csrf-token", ""))
        data = {k: body.get(k) for k in ("community", "kind", "resident", "provider", "at", "minutes", "record_id")}
        return await run_in_threadpool(api_submit, who, data)

    def api_submit(who: Who, data: dict[str, Any]) -> Response:
        try:
            result = record_service(door, who, data)
        except Exception as e:
            status, message = _failure(e)
            if status is None:
                raise
            return _problem(status, words.translate(message, who.lang))
        return _json(result, status=201 if result["created"] else 200)

    from commands.web import admin, api_writes, clerk_more  # the clerk's other pages, admins, API writes

    clerk_more.register(app, door, templates, _context)
    from commands.web import pickers  # the clerk's name pickers (commands.names)

    pickers.register(app, door)
    admin.register(app, door, templates, _context)
    api_writes.register(app, door)

    @app.get("/api/v1/openapi.json", include_in_schema=False, dependencies=[public("the API's description, no data")])
    def openapi_document() -> Response:
        return JSONResponse(app.openapi())

    from commands.web import audit, supervise  # supervisors' and auditors' routes, each in a module of its own

    supervise.register(app, door, templates, _context)
    audit.register(app, door, templates, _context)
    return app


# ---- the work behind the routes: the CLI's services, with the same arguments ------------------------
LEDGER_COLUMNS = ["occurred_at", "community", "kind", "residents", "providers", "minutes", "place", "status", "late"]
TODAY_COLUMNS = ["occurred_at", "community", "kind", "residents", "providers", "minutes", "recorded_by"]


def _filters(env: Any, actor: Any, q: Any, *, period: str | None = None) -> Any:
    """The CLI's parse_filters on the request's query, inside the actor's scope when it names no unit."""
    import dataclasses

    from commands import ledger_reads

    units = {k: q.get(k) or None for k in ("community", "township", "county")}
    if not any(units.values()):
        units.update({k: v for k, v in scope_params(actor).items()})
    kinds = tuple(k for k in q.getlist("kind") if k) if hasattr(q, "getlist") else ()
    filters = ledger_reads.parse_filters(
        env, community=units["community"], township=units["township"], county=units["county"],
        date_from=q.get("from") or None, date_to=q.get("to") or None, kinds=kinds,
        category=q.get("category") or None, as_of=q.get("as_of") or None, at_position=None,
        period=period if period is not None else (q.get("period") or None),
    )  # fmt: skip
    return dataclasses.replace(filters, unit=ledger_reads.resolve_unit(env, filters.unit))


def entry_rows(door: Door, env: Any, actor: Any, q: Any) -> list[dict[str, Any]]:
    """`ledger entries` rows as the CLI builds them (times in the store's zone, notes opened)."""
    from commands import ledger_reads
    from commands.views import open_notes
    from projections import queries as reads

    filters = _filters(env, actor, q)
    include_voided = q.get("include_voided") in ("1", "on", "true")
    with door.read() as conn:
        rows = ledger_reads._refuse_unknown(lambda: reads.entries(conn, filters, include_voided=include_voided))
    open_notes(door.service, rows)
    clock.localise(rows, env.zone())
    return rows


def entry_page(door: Door, env: Any, actor: Any, q: Any, page: int) -> tuple[list[dict[str, Any]], int]:
    """Page `page` of `entry_rows` (PAGE_SIZE rows; the database sorts, skips and counts) and how
    many entries match; kept while the store stands still (Door.cached). Shared: not to be changed."""
    key, read = _entry_page_read(door, env, actor, q, page)
    return door.cached(key, read)


def _entry_page_read(
    door: Door, env: Any, actor: Any, q: Any, page: int
) -> tuple[tuple[Any, ...], Callable[[], tuple[list[dict[str, Any]], int]]]:
    """The key `entry_page` is kept by, and its read (not kept)."""
    from commands.views import open_notes
    from projections import queries as reads

    filters = _filters(env, actor, q)
    include_voided = q.get("include_voided") in ("1", "on", "true")
    zone = env.zone()

    def read() -> tuple[list[dict[str, Any]], int]:
        with door.read() as conn:
            try:
                rows, total = reads.entries_page(
                    conn, filters, include_voided=include_voided, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
                )
            except reads.UnknownUnit as e:
                raise Refused(str(e)) from None
        open_notes(door.service, rows)
        clock.localise(rows, zone)
        return rows, total

    return ("ledger page", str(actor.scope), filters, include_voided, page, PAGE_SIZE, zone.key), read


def entries_xlsx(door: Door, env: Any, actor: Any, q: Any) -> tuple[bytes, list[tuple[str, str]]]:
    """The printed 台账 as `ledger entries --format xlsx` writes it (names beside codes, heading, 合计);
    returns the file and the residents it shows (for the access log)."""
    import io

    from commands import ledger_reads
    from commands.access_log import entry_residents
    from commands.export import write_xlsx
    from commands.views import open_notes
    from projections import queries as reads

    filters = _filters(env, actor, q)
    include_voided = q.get("include_voided") in ("1", "on", "true")
    with door.read() as conn:
        rows = ledger_reads._refuse_unknown(lambda: reads.entries(conn, filters, include_voided=include_voided))
        named = ledger_reads.attach_names(env, conn, rows)
        heading = ledger_reads.sheet_heading(env, conn, "entries", filters)
    open_notes(door.service, rows)
    fields = ledger_reads.print_fields(named=named, include_voided=include_voided)
    notes = None if named else [labels.words("no_names", env.lang)]
    clock.localise(rows, env.zone())
    out = io.BytesIO()
    write_xlsx(out, rows, fields, env.lang, heading=heading, kind="entries", zone=env.zone().key, notes=notes)
    return out.getvalue(), entry_residents(rows)


def dashboard_numbers(door: Door, env: Any, actor: Any, month: str | None) -> dict[str, Any]:
    """This month and last per unit of the scope, and the scope's 12-month trend — by `ledger summary`."""
    import dataclasses

    from commands import dashboard_reads, ledger_reads
    from commands.assess import ratio_text
    from commands.assess_reads import overdue_rows
    from domain.units import parse_period

    zone = env.zone()
    if month:
        try:
            span = parse_period(month)
        except ValueError as e:
            raise MalformedInput(f"month: {e}") from None
        if span.first.day != 1 or span.last.month != span.first.month or span.last.year != span.first.year:
            raise MalformedInput(f"month: expected YYYY-MM, got {month!r}")
        this = span.first
    else:
        this = datetime.now(zone).date().replace(day=1)
    last = _add_months(this, -1)
    unit = actor.scope.unit
    by = "county" if unit is None else ("township" if unit.level == "county" else "community")
    base = _filters(env, actor, {})
    now_rows = ledger_reads.summary_rows(env, _period(base, this), by=by)
    last_rows = ledger_reads.summary_rows(env, _period(base, last), by=by)
    first = _add_months(this, -11)
    trend_filters = dataclasses.replace(base, date_from=first, date_to=_month_end(this))
    trend = ledger_reads.month_totals(env, trend_filters)  # `ledger summary --per-month`, added up by month
    key = ledger_reads.summary_fields(by, False)[:-4]
    previous = {tuple(r[k] for k in key): r for r in last_rows}
    refs = [dashboard_reads.unit_ref(by, row) for row in now_rows]
    covered = dashboard_reads.coverage(env, parse_period(this.strftime("%Y-%m")), by, refs)
    units = []
    for row, ref in zip(now_rows, refs, strict=True):
        before = previous.get(tuple(row[k] for k in key), {})
        cover = covered.get(ref, {"value": None, "served": 0, "eligible": 0})
        units.append(
            {
                "name": row.get("community_name") or row.get("township") or row.get("county"),
                "code": row.get("community") or "",
                "unit": str(ref),
                "records": row["records"], "minutes": row["minutes"], "residents_served": row["residents_served"],
                "last_records": before.get("records", 0), "last_minutes": before.get("minutes", 0),
                "last_residents_served": before.get("residents_served", 0),
                "coverage": cover, "coverage_text": ratio_text(cover["value"]),
                "kinds": row["kinds"],
            }
        )  # fmt: skip
    overdue = overdue_rows(env, *_scope_units(actor), None, None)
    late_by_community: dict[str, int] = {}
    for visit in overdue:
        late_by_community[visit["community"]] = late_by_community.get(visit["community"], 0) + 1
    flags = {
        "overdue": len(overdue),
        "overdue_by_community": sorted(late_by_community.items()),
        "items": dashboard_reads.open_items(env, actor.scope),
        "idle": [u for u in units if not u["records"]],
    }
    return {
        "month": this.strftime("%Y-%m"),
        "last_month": last.strftime("%Y-%m"),
        "by": by,
        "units": units,
        "kind_columns": _kinds(env.lang),
        "flags": flags,
        "summary": now_rows,
        "trend": trend,
        "trend_json": orjson.dumps(trend).decode(),
    }


def _scope_units(actor: Any) -> tuple[str | None, str | None, str | None]:
    """The actor's scope as (community, township, county) options (all None for the city)."""
    params = scope_params(actor)
    return params.get("community"), params.get("township"), params.get("county")


def _period(filters: Any, first: date) -> Any:
    import dataclasses

    return dataclasses.replace(filters, date_from=first, date_to=_month_end(first))


def _add_months(day: date, n: int) -> date:
    index = day.year * 12 + day.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _month_end(first: date) -> date:
    from datetime import timedelta

    return _add_months(first, 1) - timedelta(days=1)


def scope_communities(door: Door, actor: Any) -> list[dict[str, str]]:
    """The communities inside the actor's scope (code, name), for the clerk's picker."""
    from projections.queries import community_rows

    with door.read() as conn:
        rows = community_rows(conn)
    from domain.units import UnitRef

    found = []
    for row in rows:
        ref = UnitRef("community", county=row["county"], township=row["township"], community=row["code"])
        if actor.scope.covers(ref):
            found.append({"code": row["code"], "name": row["name"]})
    return found


def today_rows(door: Door, env: Any, who: Who, day: date) -> list[dict[str, Any]]:
    """Today's active records in the clerk's scope (codes only; access-logged as the ledger is)."""
    q = {"from": day.isoformat(), "to": day.isoformat()}
    rows = entry_rows(door, env, who.actor, _Query(q))
    if rows:
        door.log_access(who.name, "web clerk today", f"--from={day} --to={day}", _residents(rows))
    return [labels.localise(_plain(row), who.lang) for row in rows]


def record_service(door: Door, who: Who, data: dict[str, Any]) -> dict[str, Any]:
    """`service record` as the CLI runs it: names become codes, the model validates, the service saves."""
    from commands import models, names

    record_id = str(data.get("record_id") or "").strip()
    try:
        UUID(record_id)
    except ValueError:
        raise models.Malformed("record_id", f"expected a UUID, got {record_id!r}") from None
    env = door.env_for(who.name, who.lang)
    fields = {
        "community": data.get("community"),
        "kind": data.get("kind"),
        "residents": _listed(data.get("resident")),
        "providers": _listed(data.get("provider")),
        "occurred_at": data.get("at"),
        "minutes": data.get("minutes"),
        "place": data.get("place"),
        "note": None,
        "record_id": record_id,
        "entered_on": None,
    }

    def logger(shown: dict[str, str]) -> Any:
        def log(residents: list[tuple[str, str]]) -> None:
            door.log_access(who.name, "web service record", f"community={fields['community']}", residents)

        return log

    with door.writing(who.actor) as service:
        fields = names.options_by_name(env, models.RecordService, fields, log=logger)
        cmd = env.validate(models.RecordService, fields)
        result: dict[str, Any] = service.record_service(cmd, who.name, cmd.record_id or record_id)
    door.catch_up()  # the clerk's next page shows it (PostgreSQL too, without waiting for the thread)
    return result


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    from commands import tabular

    return [v for v in tabular.split_list(str(value)) if v]


def _failure(error: Exception) -> tuple[int | None, str]:
    """The status and message of a refused or malformed write; (None, "") for a bug."""
    from commands import models
    from domain.errors import AlreadyExists, LedgerError, NotFound

    if isinstance(error, models.Malformed):
        return 422, str(error)
    if isinstance(error, MalformedInput):
        return 422, error.format_message()
    if isinstance(error, Refused):
        return _status(error), error.format_message()
    from commands.names import NameRefused

    if isinstance(error, NotFound):
        return 404, str(error)
    if isinstance(error, NameRefused):  # no such code or name (404); several people of that name (409)
        return (404 if " is neither a code nor " in str(error) else 409), str(error)
    if isinstance(error, AlreadyExists):
        return 409, str(error)
    if isinstance(error, LedgerError):
        return 409, str(error)
    return None, ""


def _status(error: Exception) -> int:
    if isinstance(error, MalformedInput):
        return 422
    message = error.format_message() if isinstance(error, Refused) else str(error)
    return 403 if message.startswith("permission denied") else 404


def _require_csrf(who: Who, token: str) -> None:
    expected = who.session.csrf if who.session is not None else ""
    if not expected or not token or not hmac.compare_digest(expected, token):
        raise Forbidden("the form has expired or was not sent by this site; reload the page")


def _lang_of(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in ("zh", "en"):
        return chosen
    accept = request.headers.get("accept-language", "")
    if request.url.path.startswith("/api/") and accept.lower().startswith("en"):
        return "en"
    return "zh"


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _json(document: Any, status: int = 200) -> Response:
    from commands.output import render_json

    return Response(render_json(document), status_code=status, media_type="application/json")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, clock.Shown):
            value = str(value)
        elif isinstance(value, list):
            value = "、".join(str(v) for v in value)
        out[key] = value
    return out


def _kinds(lang: str) -> list[tuple[str, str]]:
    return [(slug, KINDS.label(slug, lang)) for slug in KINDS.labels]


def _categories(lang: str) -> list[tuple[str, str]]:
    from domain.vocab import CATEGORIES

    return [(slug, CATEGORIES.label(slug, lang)) for slug in CATEGORIES.labels]


def _page_number(text: str | None) -> int:
    try:
        return max(1, int(text or "1"))
    except ValueError:
        return 1


def _detail(q: Any) -> str:
    return " ".join(f"--{k}={v}" for k, v in q.multi_items() if k != "page" and v)


def _residents(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    from commands.access_log import entry_residents

    return entry_residents(rows)


class _Query(dict):  # type: ignore[type-arg]
    """A plain dict that answers like starlette's QueryParams."""

    def getlist(self, key: str) -> list[str]:
        value = self.get(key)
        return [] if value is None else [value]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self.items())


def create_from_environment() -> FastAPI:
    """The app `taizhang serve` runs (in each uvicorn worker): the store of TAIZHANG_DB."""
    key = os.environ.get("TAIZHANG_KEY_FILE")
    door = Door(os.environ["TAIZHANG_DB"], Path(key) if key else None)
    kept = os.environ.get("TAIZHANG_WEB_KEPT_READS")  # results kept per store position (0: none; the bench's knob)
    if kept:
        if not kept.isdigit():
            raise SystemExit(f"TAIZHANG_WEB_KEPT_READS: expected a whole number, got {kept!r}")
        door.reads.size = int(kept)
    folder = os.environ.get("TAIZHANG_CHECKPOINTS")  # the sealed checkpoints the chain page shows the latest of
    return create_app(
        door,
        secure_cookies=os.environ.get("TAIZHANG_WEB_SECURE_COOKIES") == "1",
        checkpoints=Path(folder) if folder else None,
    )
