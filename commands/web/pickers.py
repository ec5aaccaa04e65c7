"""The clerk's name pickers: the active residents (providers) of a community matching what is typed.

A POST (names never in URLs or server logs) with the session's CSRF token in `X-CSRF-Token`,
under the access rule of `service record` for the community it names. The answer comes from
commands.names, the service that turns `service record --resident NAME` into a code, and the
residents it shows are access-logged as that lookup is. Without JavaScript the form needs none
of this: names typed are resolved when it is submitted.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from commands.context import MalformedInput
from commands.web import words
from commands.web.app import _json, _problem, _record_units, _require_csrf
from commands.web.door import Door
from commands.web.policy import Who, needs

MOST = 10
LONGEST = 50
WHO = {"resident": "resident", "residents": "resident", "provider": "provider", "providers": "provider"}


def picks(door: Door, who: Who, community: str, kind: str, typed: str) -> list[dict[str, str]]:
    """At most MOST matches, by code; the residents shown go to the access log (one entry)."""
    from commands import names

    env = door.env_for(who.name, who.lang)

    def log(residents: list[tuple[str, str]]) -> None:
        door.log_access(who.name, "web name picker", f"community={community} --{kind}={names.NAME_SHOWN}", residents)

    return names.matches(env, kind, community, typed, log=log, limit=MOST)


def register(app: FastAPI, door: Door) -> None:
    """The route of this module, on the app (commands.web.app.create_app calls it once)."""

    @app.post("/clerk/names")
    async def name_picker(request: Request, who: Who = needs("service record", _record_units)) -> Response:
        _require_csrf(who, request.headers.get("x-csrf-token", ""))
        try:
            kind, community, typed = asked(await request.body())
        except MalformedInput as e:
            return _problem(422, words.translate(e.format_message(), who.lang))
        found = await run_in_threadpool(picks, door, who, community, kind, typed)
        return _json({"matches": found})


def asked(raw: bytes) -> tuple[str, str, str]:
    """(resident|provider, community, text) of a picker's JSON body; malformed: MalformedInput naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise MalformedInput("body: expected a JSON object")
    kind = WHO.get(str(body.get("who") or ""))
    if kind is None:
        raise MalformedInput(f"who: expected resident or provider, got {str(body.get('who'))[:20]!r}")
    typed = body.get("text")
    if not isinstance(typed, str):
        typed = ""
    if len(typed) > LONGEST:
        raise MalformedInput(f"text: at most {LONGEST} characters, got {len(typed)}")
    return kind, str(body.get("community") or "").strip(), typed
