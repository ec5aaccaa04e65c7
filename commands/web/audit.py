"""Auditors' pages and API reads: a community's history `as of` a moment, the chain's status,
proof bundles, the access log — each behind the access rule of its CLI command
(`audit history`, `audit verify`, `audit prove`, `audit access`), with the CLI's services.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from commands import clock
from commands.context import MalformedInput
from commands.web import words
from commands.web.app import _failure, _json, _problem, _require_csrf, query_units
from commands.web.door import Door
from commands.web.policy import Who, needs

MAX_CHECKPOINT_BYTES = 1024 * 1024
CHAIN_WORDS = {  # `audit verify --format json` members -> the words a page shows them with
    "community": "Community",
    "events": "events chained",
    "last_position": "last position",
    "head_hash": "head hash",
    "access_entries": "access-log entries",
    "access_head": "access-log head",
}


def history_rows(door: Door, who: Who, community: str, as_of: str | None) -> list[dict[str, Any]]:
    """`audit history COMMUNITY [--as-of T] --format json`, access-logged as the CLI logs it."""
    from commands import models
    from commands.access_log import history_residents
    from commands.history import Bound, history
    from commands.ledger_reads import parse_as_of

    try:
        code = models.clean_code(community)
    except ValueError as e:
        raise models.Malformed("community", str(e)) from None
    env = door.env_for(who.name, who.lang)
    bound = Bound(as_of=parse_as_of(env, as_of) if as_of else None, position=None)
    rows = history(door.service, code, bound)
    clock.localise(rows, door.service.tz)
    detail = f"--community={code}" + (f" --as-of={as_of}" if as_of else "")
    door.log_access(who.name, "web audit history", detail, *history_residents(code, rows))
    return rows


def chain_status(door: Door, community: str | None) -> dict[str, Any]:
    """`audit verify [--community C] --format json`; a broken chain is a result here, not an error."""
    from commands import audit_chain

    try:
        if community:
            result = audit_chain.verify_community(door.service, community)
        else:
            result = audit_chain.verify_log(door.service)
    except audit_chain.VerificationFailed as e:
        return {"intact": False, "problem": str(e)}
    return result


def latest_checkpoint(door: Door, folder: Path | None) -> dict[str, Any] | None:
    """The latest sealed checkpoint in the folder `taizhang serve` was given (TAIZHANG_CHECKPOINTS), checked
    as `audit verify --checkpoint FILE --public-key FILE` checks it; None: no folder, or no checkpoint in it.

    Layout: the sealing office copies each checkpoint there as `NAME.checkpoint` (what `audit seal --output`
    wrote) with the public key it was sealed with beside it as `NAME.pub` (the `.pub` of `audit keygen`), e.g.
    `2026-03.checkpoint` + `2026-03.pub`. The latest is the one with the latest `sealed_at`. A checkpoint
    that cannot be read, a missing or wrong key, a signature that does not verify or a log that is not an
    append-only extension of the sealed one is a result here (`extends: False` with the problem), not an error.
    """
    from commands import audit_chain, files
    from infra import checkpoint as cpt

    if folder is None:
        return None
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix == ".checkpoint" and p.is_file())
    except OSError:
        return None
    latest: tuple[str, Path, cpt.Checkpoint | None, str | None] | None = None
    for path in paths:
        try:
            files.check_input(path, "--checkpoint", files.MAX_CHECKPOINT_BYTES)
            cp = cpt.load_checkpoint_file(path, None)  # the signature is checked below, with its key
        except Exception as e:  # an unreadable file is a failure shown, never a 500
            if latest is None:
                latest = ("", path, None, str(e))
            continue
        if latest is None or latest[2] is None or cp.sealed_at > latest[0]:
            latest = (cp.sealed_at, path, cp, None)
    if latest is None:
        return None
    _, path, cp, problem = latest
    shown = {"file": path.name, "sealed_at": "", "log_size": "", "key_id": "", "extends": False, "problem": problem}
    if cp is None:
        return shown
    tz = door.service.tz
    shown.update(sealed_at=clock.text(cp.sealed_at, tz), log_size=cp.log_size, key_id=cp.key_id)
    key = path.with_suffix(".pub")
    try:
        files.check_input(key, "--public-key", files.MAX_KEY_BYTES)
        public = cpt.load_public_key(key)
        cpt.read_checkpoint(cp.raw, public)
        audit_chain.verify_against(door.service, cp)
    except audit_chain.VerificationFailed as e:
        shown["problem"] = str(e)
    except (cpt.ProofError, cpt.KeyFileProblem, MalformedInput) as e:
        shown["problem"] = str(e)
    else:
        shown["extends"] = True
    return shown


async def _checkpoint_upload(file: UploadFile | None) -> bytes:
    if file is None:
        raise MalformedInput("checkpoint: required")
    data = await file.read(MAX_CHECKPOINT_BYTES + 1)
    if not data or len(data) > MAX_CHECKPOINT_BYTES:
        raise MalformedInput("checkpoint: expected a sealed checkpoint file (at most 1 MiB)")
    return data


def proof_bundle(door: Door, record_id: str, checkpoint: bytes, community: str | None = None) -> bytes:
    """`audit prove RECORD_ID [--community C] --checkpoint FILE`: the bundle `audit check` verifies offline."""
    from uuid import UUID

    from commands import audit_chain
    from infra import checkpoint as cpt

    try:
        UUID(record_id)
    except ValueError:
        raise MalformedInput(f"record_id: expected a UUID, got {record_id!r}") from None
    try:
        sealed = cpt.read_checkpoint(cpt.parse_document(checkpoint, "checkpoint"), None)
    except cpt.ProofError as e:
        raise MalformedInput(f"checkpoint: {e}") from None
    return cpt.document(audit_chain.prove(door.service, record_id, sealed, community))


def access_rows(door: Door, who: Who, q: Any) -> list[dict[str, Any]]:
    """`audit access [--actor A] [--from D] [--to D] --format json`."""
    from commands.ledger_reads import _day
    from projections.filters import utc_ms

    first, last = _day("from", q.get("from") or None), _day("to", q.get("to") or None)
    if first and last and first > last:
        raise MalformedInput(f"--from {first} is after --to {last}")
    actor = (q.get("actor") or "").strip() or None
    tz = door.service.tz
    start = utc_ms(datetime.combine(first, time(0), tz)) if first else None
    end = utc_ms(datetime.combine(last + timedelta(days=1), time(0), tz)) if last else None
    rows: list[dict[str, Any]] = door.service.recorder.access_entries(resident=None, actor=actor, start=start, end=end)
    clock.localise(rows, tz)
    return rows


def _named(request: Request, _actor: Any) -> dict[str, Any]:
    """The units the request names (none: the whole store, as the CLI command without a filter)."""
    return query_units(request)


async def _proved_community(request: Request, _actor: Any) -> dict[str, Any]:
    """`audit prove --community`: the community the form names (none: the whole store, as the CLI without it)."""
    community = (await request.form()).get("community")
    if isinstance(community, str) and community.strip():
        return {"community": community.strip()}
    return {}


def _community(request: Request, _actor: Any) -> dict[str, Any]:
    """`audit history COMMUNITY`: the community the request names (required)."""
    units = query_units(request)
    if not units.get("community"):
        raise MalformedInput("community: required")
    return {"community": units["community"]}


def register(app: FastAPI, door: Door, templates: Jinja2Templates, context: Callable[..., dict[str, Any]]) -> None:
    """The routes of this module, on the app (commands.web.app.create_app calls it once)."""

    def page(request: Request, who: Who, name: str, code: int = 200, **extra: Any) -> Response:
        return templates.TemplateResponse(request, name, context(request, who, **extra), status_code=code)

    def refused(request: Request, who: Who, error: Exception) -> Response:
        status, message = _failure(error)
        if status is None:
            raise error
        text = words.translate(message, who.lang)
        return page(request, who, "error.html", status, message=text, status=status)

    def problem(who: Who, error: Exception) -> Response:
        status, message = _failure(error)
        if status is None:
            raise error
        return _problem(status, words.translate(message, who.lang))

    @app.get("/audit/history", response_class=HTMLResponse)
    def history_page(request: Request, who: Who = needs("audit history", _named)) -> Response:
        from commands.history_text import TABLE_FIELDS, _header, shown_row
        from commands.web.app import scope_communities

        q = request.query_params
        communities = scope_communities(door, who.actor)
        rows: list[dict[str, Any]] = []
        if q.get("community"):
            try:
                rows = history_rows(door, who, q["community"], q.get("as_of") or None)
            except Exception as e:
                return refused(request, who, e)
        shown = [{k: (str(v) if v is not None else "") for k, v in shown_row(r, who.lang).items()} for r in rows]
        return page(
            request, who, "audit_history.html", q=q, communities=communities, rows=shown, fields=TABLE_FIELDS,
            headers=[_header(f, who.lang) for f in TABLE_FIELDS], unkeyed=door.service.master is None,
        )  # fmt: skip

    @app.get("/audit/chain", response_class=HTMLResponse)
    def chain_page(request: Request, who: Who = needs("audit verify", _named)) -> Response:
        community = request.query_params.get("community") or None
        result = chain_status(door, community)
        facts = [(CHAIN_WORDS[k], v) for k, v in result.items() if k in CHAIN_WORDS]
        sealed = None if community else latest_checkpoint(door, app.state.checkpoints)  # it covers the whole log
        if sealed is not None and sealed["problem"]:
            sealed["problem"] = words.translate(sealed["problem"], who.lang)
        return page(
            request, who, "audit_chain.html", result=result, facts=facts, community=community or "", sealed=sealed,
            checkpoints=app.state.checkpoints is not None,
        )  # fmt: skip

    @app.post("/audit/prove")
    async def prove(request: Request, who: Who = needs("audit prove", _proved_community)) -> Response:
        form = await request.form()
        _require_csrf(who, str(form.get("csrf") or ""))
        record_id = str(form.get("record_id") or "").strip()
        community = str(form.get("community") or "").strip() or None
        upload = form.get("checkpoint")
        try:
            data = await _checkpoint_upload(upload if isinstance(upload, UploadFile) else None)
            bundle = await run_in_threadpool(proof_bundle, door, record_id, data, community)
        except Exception as e:
            return refused(request, who, e)
        detail = f"record_id={record_id}" + (f" community={community}" if community else "")
        door.log_access(who.name, "web audit prove", detail)
        return Response(
            bundle,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{record_id}.bundle"'},
        )

    @app.get("/audit/access", response_class=HTMLResponse)
    def access_page(request: Request, who: Who = needs("audit access")) -> Response:
        from commands.access_log import ACCESS_FIELDS, ACCESS_LABELS

        q = request.query_params
        try:
            rows = access_rows(door, who, q)
        except Exception as e:
            return refused(request, who, e)
        table = [{k: ("" if v is None else str(v)) for k, v in row.items()} for row in rows]
        headers = [ACCESS_LABELS[f][1 if who.lang == "zh" else 0] for f in ACCESS_FIELDS]
        return page(request, who, "audit_access.html", q=q, rows=table, fields=ACCESS_FIELDS, headers=headers)

    # ---- the JSON API ------------------------------------------------------------------------
    @app.get("/api/v1/history")
    def api_history(
        community: str | None = None, as_of: str | None = None, who: Who = needs("audit history", _community)
    ) -> Response:
        """`audit history COMMUNITY [--as-of T] --format json`."""
        try:
            return _json(history_rows(door, who, community or "", as_of))
        except Exception as e:
            return problem(who, e)
