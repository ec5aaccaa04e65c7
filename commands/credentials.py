"""Passwords of actors (argon2id), for the web door: set by `actor password`, checked at login.

Both doors use this module; neither imports the other. Every change of a password and every
login, logout and failure is appended to the access log (who, what, when by the database clock).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from commands.context import MalformedInput, Refused

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from commands.app import LedgerService
    from infra.webauth import WebAuth

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; a megabyte "password" is a denial of service


@cache
def hasher() -> PasswordHasher:
    from argon2 import PasswordHasher, Type

    return PasswordHasher(type=Type.ID)  # argon2id, the library's RFC 9106 low-memory profile


def check_password(password: str) -> str:
    """A password good enough to store (judged without the store: exit 2 otherwise)."""
    if len(password) < MIN_LENGTH:
        raise MalformedInput(f"password: at least {MIN_LENGTH} characters, got {len(password)}")
    if len(password) > MAX_LENGTH:
        raise MalformedInput(f"password: at most {MAX_LENGTH} characters, got {len(password)}")
    if any(ord(c) < 32 for c in password):
        raise MalformedInput("password: must not contain control characters")
    return password


def set_password(service: LedgerService, auth: WebAuth, name: str, password: str, by: str | None) -> None:
    """Store the hash of `name`'s new password (an active actor's); ends its sessions; access-logged."""
    _active(service, name)
    auth.set_password(name, hasher().hash(password), by or name)
    service.log_access(by, "actor password", f"actor={name}", [], 0)


def verify(auth: WebAuth, name: str, password: str) -> bool:
    """Whether `password` is `name`'s; the same work is done for an unknown actor (no timing oracle)."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    stored = auth.password_hash(name)
    ph = hasher()
    if stored is None:
        _dummy_verify(password)
        return False
    try:
        ph.verify(stored, password[:MAX_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if ph.check_needs_rehash(stored):
        auth.replace_hash(name, stored, ph.hash(password))
    return True


TOKEN_PREFIX = "tz"
MAX_TOKEN_DAYS = 366


def make_token(service: LedgerService, auth: WebAuth, name: str, days: int, by: str | None) -> tuple[str, str, float]:
    """A new API token for an active actor: (token id, the token shown once, expiry); access-logged."""
    import secrets

    _active(service, name)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    expires = auth.add_token(token_id, name, secret, days, by or name)
    service.log_access(by, "actor token", f"actor={name} token={token_id} days={days}", [], 0)
    return token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}", expires


def revoke_token(service: LedgerService, auth: WebAuth, name: str, token_id: str, by: str | None) -> None:
    if not auth.revoke_token(token_id, name):
        raise Refused(f"actor {name} has no live token {token_id}")
    service.log_access(by, "actor token", f"actor={name} token={token_id} revoked", [], 0)


TOKEN_FIELDS = ["token", "status", "created_at", "expires_at", "revoked_at", "made_by"]


def token_rows(service: LedgerService, auth: WebAuth, name: str) -> list[dict[str, Any]]:
    """`actor token ACTOR --list`: the actor's tokens by id, with their expiry and state — never a secret or hash."""
    import time
    from datetime import UTC, datetime

    from commands import clock

    now = time.time()

    def moment(seconds: float | None) -> datetime | None:
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    rows = []
    for token_id, created, expires, revoked, made_by in auth.tokens(name):
        status = "revoked" if revoked is not None else ("expired" if expires < now else "live")
        rows.append(
            {
                "token": token_id, "status": status, "created_at": moment(created), "expires_at": moment(expires),
                "revoked_at": moment(revoked), "made_by": made_by,
            }
        )  # fmt: skip
    clock.localise(
        rows, service.tz, {"created_at": clock.RECORDED, "expires_at": clock.RECORDED, "revoked_at": clock.RECORDED}
    )
    return rows


def token_actor(auth: WebAuth, token: str) -> str | None:
    """The actor a bearer token names, when it is live; None for anything else."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not token_id or not secret or len(token) > 200:
        return None
    return auth.token_actor(token_id, secret)


def _active(service: LedgerService, name: str) -> None:
    from commands.access import load_actors

    actors = load_actors(service)
    actor = actors.get(name) if actors is not None else None
    if actor is None:
        raise Refused(f"actor {name} is not known to this store")
    if actor.revoked:
        raise Refused(f"{actor.describe()} was revoked")


@cache
def _dummy_hash() -> str:
    return hasher().hash("taizhang: no such actor")


def _dummy_verify(password: str) -> None:
    from argon2.exceptions import VerificationError

    try:
        hasher().verify(_dummy_hash(), password[:MAX_LENGTH])
    except VerificationError:
        pass


def require_actors(service: LedgerService) -> None:
    """`serve` on a store without actors is refused: nobody could log in, and nothing would be protected."""
    from commands.access import load_actors

    actors = load_actors(service)
    if actors is None or not [a for a in actors.all() if not a.revoked]:
        raise Refused(
            "this store has no actors, so nobody can log in; create the first admin with "
            "'taizhang init --admin NAME' (a new store) or 'taizhang actor add NAME --role admin --scope city', "
            "then set a password with 'taizhang --actor NAME actor password NAME'"
        )
