"""Every route's access rule, declared with one mechanism tied to commands.access.POLICY.

A route depends on `needs("ledger summary")` — the CLI command whose rule it follows — or on
`public("why")` (the login page, the language switch). `needs` checks that the session (or
bearer token) names an active actor, then runs commands.access.permit with the route's unit
parameters, exactly as the CLI does for that command. tests/web/test_policy.py walks the app's
routes and fails on one that declares neither.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request

from commands.access import POLICY

if TYPE_CHECKING:
    from domain.actors import Actor
    from infra.webauth import Session

POLICY_ATTR = "__taizhang_policy__"
SESSION_COOKIE = "tz_session"


class NotLoggedIn(Exception):
    """No live session: pages send the browser to the login page, the API answers 401."""


class Forbidden(Exception):
    """The access policy refuses (403), with its one-line message."""


@dataclass(frozen=True)
class Who:
    """The actor of a request, its session (None for a bearer token), and the language it reads."""

    actor: Actor
    session: Session | None
    session_id: str | None
    lang: str

    @property
    def name(self) -> str:
        return self.actor.name


def current(request: Request) -> Who:
    """The live session's actor, looked up in the log on every request: a revoked actor is out at once."""
    door = request.app.state.door
    lang = request.state.lang
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer ") and request.url.path.startswith("/api/"):
        from commands.credentials import token_actor

        name = token_actor(door.auth, authorization[7:].strip())
        actors = request.state.actors = door.actors()  # one look at the log per request: `needs` judges with them
        actor = door.actor(name, actors) if name else None  # a revoked actor's tokens stop at once
        if actor is None:
            raise NotLoggedIn()
        return Who(actor, None, None, lang)
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        raise NotLoggedIn()
    session = door.auth.session(session_id, door.idle)
    if session is None:
        raise NotLoggedIn()
    actors = request.state.actors = door.actors()
    actor = door.actor(session.actor, actors)
    if actor is None:  # revoked (or gone): the session ends now
        door.auth.close_session(session_id)
        raise NotLoggedIn()
    return Who(actor, session, session_id, lang)


def needs(path: str, units: Callable[..., Any] | None = None) -> Any:
    """A dependency: the request's actor may run CLI command `path` on the units `units(request, actor)`
    names (a coroutine function when they come from the body)."""
    if path not in POLICY:
        raise ValueError(f"no access rule named {path!r} in commands.access.POLICY")

    async def check(request: Request) -> Who:
        from starlette.concurrency import run_in_threadpool

        from commands.context import Refused

        door = request.app.state.door

        def judge(who: Who, params: dict[str, Any]) -> Refused | None:
            try:
                door.permit(who.actor, path, params, getattr(request.state, "actors", None))
            except Refused as e:
                return e
            return None

        def look_and_judge() -> tuple[Who, Any, Refused | None]:
            who = current(request)
            params = units(request, who.actor) if units is not None else {}
            if inspect.isawaitable(params):
                return who, params, None
            return who, params, judge(who, params)

        if units is None or not inspect.iscoroutinefunction(units):
            who, params, refused = await run_in_threadpool(look_and_judge)  # one trip to a thread, not two
        else:
            who, params, refused = await run_in_threadpool(current, request), None, None
            params = units(request, who.actor)
        if inspect.isawaitable(params):  # the units come from the body: read between the look and the judgement
            refused = await run_in_threadpool(judge, who, await params)
        if refused is not None:
            discard = getattr(request.state, "discard_on_refusal", None)
            if discard is not None:  # what `units` kept to judge the request (an upload) goes at once
                await run_in_threadpool(discard)
            raise Forbidden(refused.format_message()) from None
        return who

    setattr(check, POLICY_ATTR, path)
    return Depends(check)


def public(reason: str) -> Any:
    """A dependency for a route anyone may reach (nothing of the ledger behind it)."""

    def open_route() -> None:
        return None

    setattr(open_route, POLICY_ATTR, f"public: {reason}")
    return Depends(open_route)


def policy_of(route: Any) -> str | None:
    """The rule a route declared (walks its dependencies); None when it declared none."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        rule = getattr(dep.call, POLICY_ATTR, None)
        if rule is not None:
            return str(rule)
        stack.extend(dep.dependencies)
    return None
