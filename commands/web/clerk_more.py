"""The clerk's other pages: correct or void a record, upload a spreadsheet (report, then confirm).

The same services as `service correct`, `service void` and `import services`, with the same
refusals; the access rule of each route is the CLI command's (commands.web.policy.needs).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from commands.context import MalformedInput, Refused
from commands.web import uploads, words
from commands.web.door import Door
from commands.web.policy import Forbidden, Who, needs

CORRECT_FIELDS = ("community", "record_id", "reason", "kind", "at", "minutes", "resident", "provider", "place", "note")
IMPORT_OPTIONS = ("community", "year", "duration_unit", "default_time")


# ---- the units a route names (for its access rule) ----------------------------------------------
def query_community(request: Request, _actor: Any) -> dict[str, Any]:
    community = request.query_params.get("community", "").strip()
    if not community:
        raise MalformedInput("community: required")
    return {"community": community}


async def upload_units(request: Request, actor: Any) -> dict[str, Any]:
    """`import`'s rule reads the file's rows: keep the upload first (size-limited, after the CSRF check)."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > uploads.MAX_BYTES + 64 * 1024:
        raise uploads.TooLarge(
            f"file: larger than {uploads.MAX_BYTES // (1024 * 1024)} MB; split it into smaller files"
        )
    form = await request.form()
    if request.url.path.startswith("/api/"):
        _session_csrf(request, actor, request.headers.get("x-csrf-token", ""))
    else:
        _session_csrf(request, actor, str(form.get("csrf") or ""))
    options = {k: str(form.get(k) or "").strip() for k in IMPORT_OPTIONS}
    from commands.models import Malformed

    try:
        sheet_options(options)  # malformed options: refused before the file is kept
    except Malformed as e:
        raise MalformedInput(str(e)) from None
    file = form.get("file")
    if file is None or isinstance(file, str):
        raise MalformedInput("file: is required")
    kept = await uploads.keep(file, actor.name, options)
    request.state.upload = kept
    request.state.discard_on_refusal = lambda: uploads.drop(kept)  # refused: not kept for 15 minutes
    return import_params(kept)


async def kept_units(request: Request, actor: Any) -> dict[str, Any]:
    """The confirmation names an upload kept by the report: its rows are checked again."""
    form = await request.form()
    _session_csrf(request, actor, str(form.get("csrf") or ""))
    try:
        kept = await run_in_threadpool(uploads.find, str(form.get("upload") or ""), actor.name)
    except Refused as e:
        raise Forbidden(e.format_message()) from None
    request.state.upload = kept
    return import_params(kept)


def import_params(kept: uploads.Upload) -> dict[str, Any]:
    return {
        "file": kept.path(uploads.folder()),
        "kind": "services",
        "community": kept.options.get("community") or None,
    }


def _session_csrf(request: Request, actor: Any, token: str) -> None:
    """A session's writes carry its CSRF token; a bearer token's API calls need none."""
    import hmac

    from commands.web.policy import SESSION_COOKIE

    if request.url.path.startswith("/api/") and request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    door = request.app.state.door
    session_id = request.cookies.get(SESSION_COOKIE) or ""
    session = door.auth.session(session_id, door.idle) if session_id else None
    expected = session.csrf if session is not None and session.actor == actor.name else ""
    if not expected or not token or not hmac.compare_digest(expected, token):
        raise Forbidden("the form has expired or was not sent by this site; reload the page")


# ---- the work: the CLI's services with the CLI's arguments ------------------------------------------
def _given(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return value


def correct_service(door: Door, who: Who, data: dict[str, Any]) -> dict[str, Any]:
    """`service correct`: only the fields given change (a list given replaces the old list)."""
    from commands import models, names
    from commands.web.app import _listed

    env = door.env_for(who.name, who.lang)
    fields = {
        "community": _given(data.get("community")),
        "record_id": _given(data.get("record_id")),
        "reason": _given(data.get("reason")),
        "kind": _given(data.get("kind")),
        "occurred_at": _given(data.get("at")),
        "minutes": _given(data.get("minutes")),
        "residents": _listed(data.get("resident")) or None,
        "providers": _listed(data.get("provider")) or None,
        "place": _given(data.get("place")),
        "note": _given(data.get("note")),
    }

    def logger(_shown: dict[str, str]) -> Any:
        def log(residents: list[tuple[str, str]]) -> None:
            door.log_access(who.name, "web service correct", f"community={fields['community']}", residents)

        return log

    with door.writing(who.actor) as service:
        fields = names.options_by_name(env, models.CorrectService, fields, log=logger)
        cmd = env.validate(models.CorrectService, fields)
        if not cmd.changes_something():
            raise MalformedInput(
                "service correct: give at least one of kind, at, minutes, resident, provider, place, note"
            )
        result: dict[str, Any] = service.correct_service(cmd, who.name)
    door.catch_up()
    return result


def void_service(door: Door, who: Who, data: dict[str, Any]) -> dict[str, Any]:
    """`service void`."""
    from commands import models

    env = door.env_for(who.name, who.lang)
    fields = {k: _given(data.get(k)) for k in ("community", "record_id", "reason")}
    cmd = env.validate(models.VoidService, fields)
    with door.writing(who.actor) as service:
        result: dict[str, Any] = service.void_service(cmd, who.name)
    door.catch_up()
    return result


def sheet_options(options: dict[str, str]) -> Any:
    """`import services`' --community, --year, --duration-unit, --default-time, judged as the CLI judges them."""
    import datetime as dt

    from commands.importer import SheetOptions
    from commands.models import Malformed, clean_code

    community = options.get("community") or None
    if community is not None:
        try:
            community = clean_code(community)
        except ValueError as e:
            raise Malformed("community", str(e)) from None
    year = None
    if options.get("year"):
        text = options["year"]
        if not text.isdigit() or not 1900 <= int(text) <= 2999:
            raise Malformed("year", f"expected a year from 1900 to 2999, got {text!r}")
        year = int(text)
    unit = options.get("duration_unit") or None
    if unit is not None and unit not in ("minutes", "hours"):
        raise Malformed("duration_unit", f"expected minutes or hours, got {unit!r}")
    at = None
    if options.get("default_time"):
        try:
            at = dt.datetime.strptime(options["default_time"], "%H:%M").time()
        except ValueError:
            raise Malformed("default_time", f"expected HH:MM, got {options['default_time']!r}") from None
    return SheetOptions(community=community, year=year, duration_unit=unit, default_time=at)


def _name_logger(door: Door, who: Who, kept: uploads.Upload) -> Any:
    def log(residents: list[tuple[str, str]]) -> None:
        door.log_access(who.name, "web import services", f"file={kept.digest[:12]}", residents)

    return log


def preview_import(door: Door, who: Who, kept: uploads.Upload) -> Any:
    """What `import services` would do with the kept file now (nothing written)."""
    from commands.importer import preview_file

    with door.writing(who.actor) as service:
        return preview_file(
            service, "services", kept.path(uploads.folder()), who.name,
            options=sheet_options(kept.options), log_names=_name_logger(door, who, kept),
        )  # fmt: skip


def run_import(door: Door, who: Who, kept: uploads.Upload) -> Any:
    """`import services` on the kept file, all-or-nothing; raises ImportRefused with the rows' problems."""
    from commands.importer import import_file

    with door.writing(who.actor) as service:
        result = import_file(
            service, "services", kept.path(uploads.folder()), who.name,
            options=sheet_options(kept.options), log_names=_name_logger(door, who, kept),
        )  # fmt: skip
    door.catch_up()
    return result


def report_lines(result: Any, name: str, lang: str) -> dict[str, Any]:
    """The CLI's report of an import, line by line, in `lang`."""
    from commands import i18n
    from commands.tabular import NO_HEADER

    columns = i18n.import_terms("services")
    counts = i18n.translate(f"{name}: added {result.added}, existing {result.existing}, skipped {result.skipped}", lang)
    left = result.left_out()
    lines = []
    if "ignored_columns" in left:
        shown = [i18n.translate(c, lang) if c.endswith(NO_HEADER) else c for c in left["ignored_columns"]]
        lines.append("ignored columns: " + ", ".join(shown))
    if "footer_rows_skipped" in left:
        lines.append(f"footer rows skipped: {left['footer_rows_skipped']}")
    if "blank_rows_skipped" in left:
        lines.append(f"blank rows skipped: {left['blank_rows_skipped']}")
    return {
        "counts": counts,
        "left_out": [i18n.translate(line, lang) for line in lines],
        "problems": [i18n.translate(str(p), lang, terms=columns) for p in result.problems],
        "json": {**result.report(), "problems": [str(p) for p in result.problems]},
    }


# ---- the routes ----------------------------------------------------------------------------------
def register(app: FastAPI, door: Door, templates: Jinja2Templates, context: Any) -> None:
    from commands.web import app as core

    def fix_context(request: Request, who: Who, **extra: Any) -> dict[str, Any]:
        from commands import labels
        from domain.vocab import PLACES

        q = request.query_params
        community = extra.pop("community", None) or q.get("community", "")
        record_id = extra.pop("record_id", None) or q.get("record_id", "")
        env = door.env_for(who.name, who.lang)
        from datetime import datetime

        today = core.today_rows(door, env, who, datetime.now(env.zone()).date())
        shown = next((r for r in today if r.get("record_id") == record_id), None)
        places = [(slug, PLACES.label(slug, who.lang)) for slug in PLACES.labels]
        return context(
            request, who, community=community, record_id=record_id, record=shown, kinds=core._kinds(who.lang),
            places=places, fields=core.TODAY_COLUMNS, headers=labels.headers(core.TODAY_COLUMNS, who.lang),
            communities=core.scope_communities(door, who.actor), **extra,
        )  # fmt: skip

    @app.get("/clerk/fix", response_class=HTMLResponse)
    def clerk_fix(request: Request, who: Who = needs("service correct", query_community)) -> Response:
        return templates.TemplateResponse(request, "clerk_fix.html", fix_context(request, who))

    async def fix_form(request: Request, who: Who) -> dict[str, Any]:
        form = await request.form()
        core._require_csrf(who, str(form.get("csrf") or ""))
        return {k: str(form.get(k) or "") for k in CORRECT_FIELDS}

    def fix_answer(request: Request, who: Who, data: dict[str, Any], work: Any, done: Any) -> Response:
        try:
            result = work(door, who, data)
        except Exception as e:
            status, message = core._failure(e)
            if status is None:
                raise
            page = fix_context(
                request, who, community=data.get("community"), record_id=data.get("record_id"),
                failed=words.translate(message, who.lang), kept=data,
            )  # fmt: skip
            return templates.TemplateResponse(request, "clerk_fix.html", page, status_code=status)
        page = fix_context(
            request, who, community=data.get("community"), record_id=data.get("record_id"),
            done=words.translate(done(result), who.lang),
        )  # fmt: skip
        return templates.TemplateResponse(request, "clerk_fix.html", page)

    @app.post("/clerk/correct", response_class=HTMLResponse)
    async def clerk_correct(request: Request, who: Who = needs("service correct", core._record_units)) -> Response:
        data = await fix_form(request, who)
        done = lambda r: f"corrected {r['record_id']} (revision {r['revision']})"  # noqa: E731
        return await run_in_threadpool(fix_answer, request, who, data, correct_service, done)

    @app.post("/clerk/void", response_class=HTMLResponse)
    async def clerk_void(request: Request, who: Who = needs("service void", core._record_units)) -> Response:
        data = await fix_form(request, who)
        return await run_in_threadpool(
            fix_answer, request, who, data, void_service, lambda r: f"voided {r['record_id']}"
        )

    # ---- upload: report first, then confirm -------------------------------------------------------
    def import_context(request: Request, who: Who, **extra: Any) -> dict[str, Any]:
        return context(
            request, who, communities=core.scope_communities(door, who.actor),
            max_mb=uploads.MAX_BYTES // (1024 * 1024), **extra,
        )  # fmt: skip

    @app.get("/clerk/import", response_class=HTMLResponse)
    def clerk_import_page(request: Request, who: Who = needs("ledger entries", core._units_or_scope)) -> Response:
        return templates.TemplateResponse(request, "clerk_import.html", import_context(request, who))

    @app.post("/clerk/import", response_class=HTMLResponse)
    async def clerk_import_check(request: Request, who: Who = needs("import", upload_units)) -> Response:
        kept: uploads.Upload = request.state.upload
        return await run_in_threadpool(check_answer, request, who, kept)

    def check_answer(request: Request, who: Who, kept: uploads.Upload) -> Response:
        try:
            result = preview_import(door, who, kept)
        except Exception as e:
            uploads.drop(kept)
            status, message = core._failure(e)
            if status is None:
                raise
            page = import_context(request, who, failed=words.translate(message, who.lang))
            return templates.TemplateResponse(request, "clerk_import.html", page, status_code=status)
        report = report_lines(result, kept.name, who.lang)
        if result.problems:
            uploads.drop(kept)
        page = import_context(
            request, who, report=report, upload=None if result.problems else kept.id, file_name=kept.name,
            options=kept.options, problems=bool(result.problems),
        )  # fmt: skip
        return templates.TemplateResponse(request, "clerk_import.html", page)

    @app.post("/clerk/import/confirm", response_class=HTMLResponse)
    async def clerk_import_confirm(request: Request, who: Who = needs("import", kept_units)) -> Response:
        kept: uploads.Upload = request.state.upload
        return await run_in_threadpool(confirm_answer, request, who, kept)

    def confirm_answer(request: Request, who: Who, kept: uploads.Upload) -> Response:
        from commands.importer import ImportRefused

        try:
            result = run_import(door, who, kept)
        except ImportRefused as refused:
            uploads.drop(kept)
            report = report_lines(refused.result, kept.name, who.lang)
            page = import_context(request, who, report=report, upload=None, file_name=kept.name, problems=True)
            return templates.TemplateResponse(request, "clerk_import.html", page, status_code=refused_status(refused))
        except Exception as e:
            status, message = core._failure(e)
            if status is None:
                raise
            page = import_context(request, who, failed=words.translate(message, who.lang), upload=kept.id)
            return templates.TemplateResponse(request, "clerk_import.html", page, status_code=status)
        uploads.drop(kept)
        report = report_lines(result, kept.name, who.lang)
        page = import_context(request, who, report=report, imported=True, file_name=kept.name)
        return templates.TemplateResponse(request, "clerk_import.html", page)


def refused_status(refused: Any) -> int:
    return 422 if refused.exit_code == 2 else 409
