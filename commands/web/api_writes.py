"""JSON API writes besides `POST /api/v1/records`: correct, void, import — with the CLI's semantics.

Malformed → 422 naming the field and the value; refused → 403 (permission), 404 (unknown record
or community), 409 (a rule: a closed period, an inactive record); one `detail` message each.
An import is all-or-nothing; its rows' problems come as `problems` beside `detail`. Importing
the same file again adds nothing (rows without a record id get one derived from their content),
so an offline client may retry any import; `dry_run=true` reports without writing.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from commands.web import clerk_more, uploads, words
from commands.web.door import Door
from commands.web.policy import Who, needs

_TEXT = {"type": "string"}
_LIST = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
CORRECT_SCHEMA = {
    "type": "object",
    "required": ["community", "record_id", "reason"],
    "properties": {
        "community": _TEXT, "record_id": {"type": "string", "format": "uuid"}, "reason": _TEXT, "kind": _TEXT,
        "at": _TEXT, "minutes": {"type": "integer"}, "resident": _LIST, "provider": _LIST, "place": _TEXT, "note": _TEXT,
    },
}  # fmt: skip
VOID_SCHEMA = {
    "type": "object",
    "required": ["community", "record_id", "reason"],
    "properties": {"community": _TEXT, "record_id": {"type": "string", "format": "uuid"}, "reason": _TEXT},
}
IMPORT_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "CSV or XLSX, as `import services` reads it"},
        "community": _TEXT, "year": {"type": "integer"}, "duration_unit": {"enum": ["minutes", "hours"]},
        "default_time": {"type": "string", "description": "HH:MM"}, "dry_run": {"type": "boolean"},
    },
}  # fmt: skip


def _body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}}}}


def register(app: FastAPI, door: Door) -> None:
    from commands.web import app as core

    async def json_body(request: Request, who: Who) -> dict[str, Any] | Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return core._problem(422, words.translate("body: expected a JSON object", who.lang))
        if who.session is not None:
            core._require_csrf(who, request.headers.get("x-csrf-token", ""))
        return body

    def answer(who: Who, work: Any, body: dict[str, Any]) -> Response:
        try:
            result = work(door, who, body)
        except Exception as e:
            status, message = core._failure(e)
            if status is None:
                raise
            return core._problem(status, words.translate(message, who.lang))
        return core._json(result)

    @app.post("/api/v1/corrections", openapi_extra=_body(CORRECT_SCHEMA), summary="service correct")
    async def api_correct(request: Request, who: Who = needs("service correct", core._record_units)) -> Response:
        body = await json_body(request, who)
        if isinstance(body, Response):
            return body
        return await run_in_threadpool(answer, who, clerk_more.correct_service, body)

    @app.post("/api/v1/voids", openapi_extra=_body(VOID_SCHEMA), summary="service void")
    async def api_void(request: Request, who: Who = needs("service void", core._record_units)) -> Response:
        body = await json_body(request, who)
        if isinstance(body, Response):
            return body
        return await run_in_threadpool(answer, who, clerk_more.void_service, body)

    @app.post("/api/v1/imports", openapi_extra=_body(IMPORT_SCHEMA, "multipart/form-data"), summary="import services")
    async def api_import(request: Request, who: Who = needs("import", clerk_more.upload_units)) -> Response:
        kept: uploads.Upload = request.state.upload
        dry = str((await request.form()).get("dry_run") or "").lower() in ("1", "true", "on")
        return await run_in_threadpool(import_answer, who, kept, dry)

    def import_answer(who: Who, kept: uploads.Upload, dry: bool) -> Response:
        from commands.importer import ImportRefused

        try:
            result = (clerk_more.preview_import if dry else clerk_more.run_import)(door, who, kept)
        except ImportRefused as refused:
            problems = [words.translate(str(p), who.lang) for p in refused.result.problems]
            detail = words.translate(_refusal_line(refused), who.lang)
            status = clerk_more.refused_status(refused)
            return JSONResponse({"detail": detail, "problems": problems}, status_code=status)
        except Exception as e:
            status, message = core._failure(e)
            if status is None:
                raise
            return core._problem(status, words.translate(message, who.lang))
        finally:
            uploads.drop(kept)
        document = {**result.report(), "digest": kept.digest}
        if dry:
            document["problems"] = [words.translate(str(p), who.lang) for p in result.problems]
        return core._json(document)


def _refusal_line(refused: Any) -> str:
    rows = len({p.row for p in refused.result.problems})
    verdict = "malformed" if refused.result.malformed else "refused"
    return f"{rows} row(s) {verdict}; nothing imported"
