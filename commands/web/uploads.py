"""Uploaded spreadsheets kept server-side between the report and the confirmation.

A clerk uploads a file, reads the row-by-row report, then confirms: the confirmation imports
exactly the bytes that were checked. They are kept under a random id (256 bits, never derived
from the file or its name) in a private directory (mode 0700, files 0600) shared by the
server's workers, with the actor who uploaded them, the import options and the SHA-256 of the
bytes; only that actor can confirm them, for `EXPIRY` seconds. Nothing of the file goes in a
URL: the id travels in the form's body.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from commands.context import MalformedInput, Refused

MAX_BYTES = 10 * 1024 * 1024  # a village's year of services is well under a megabyte
EXPIRY = 15 * 60  # seconds an uploaded file waits for its confirmation
CHUNK = 64 * 1024
SUFFIXES = (".csv", ".xlsx")
ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Upload:
    id: str
    actor: str
    name: str  # the file's own name, shown in the report
    suffix: str
    digest: str  # sha256 of the bytes
    size: int
    created: float
    options: dict[str, Any]

    def path(self, folder: Path) -> Path:
        return folder / f"{self.id}{self.suffix}"


class TooLarge(MalformedInput):
    """The upload passed the size limit."""


def folder() -> Path:
    """The uploads directory (TAIZHANG_UPLOAD_DIR, else one in the system's temporary directory)."""
    chosen = os.environ.get("TAIZHANG_UPLOAD_DIR")
    path = Path(chosen) if chosen else Path(tempfile.gettempdir()) / f"taizhang-uploads-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def suffix_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise MalformedInput(f"file: expected a .csv or .xlsx file, got {suffix or '(none)'}")
    return suffix


async def keep(upload: Any, actor: str, options: dict[str, Any], limit: int = MAX_BYTES) -> Upload:
    """Copy an UploadFile into the directory (refusing past `limit` bytes); returns its record."""
    name = Path(str(upload.filename or "")).name[:200]
    suffix = suffix_of(name)
    where = folder()
    sweep(where)
    ident = secrets.token_urlsafe(32)
    target = where / f"{ident}{suffix}"
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"file: larger than {limit // (1024 * 1024)} MB; split it into smaller files")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if size == 0:
        target.unlink(missing_ok=True)
        raise MalformedInput("file: the file is empty")
    found = Upload(ident, actor, name, suffix, digest.hexdigest(), size, time.time(), options)
    meta = where / f"{ident}.json"
    fd = os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(asdict(found)))
    return found


def find(ident: str, actor: str) -> Upload:
    """The upload this actor made under `ident`, still waiting; refused otherwise (one message for all)."""
    gone = Refused("the uploaded file has expired or is not yours; upload it again")
    if not ID.match(ident or ""):
        raise gone
    where = folder()
    try:
        found = Upload(**orjson.loads((where / f"{ident}.json").read_bytes()))
    except (OSError, ValueError, TypeError):
        raise gone from None
    if found.actor != actor or time.time() - found.created > EXPIRY or not found.path(where).is_file():
        raise gone
    digest = hashlib.sha256(found.path(where).read_bytes()).hexdigest()
    if digest != found.digest:
        raise gone
    return found


def drop(found: Upload) -> None:
    where = folder()
    found.path(where).unlink(missing_ok=True)
    (where / f"{found.id}.json").unlink(missing_ok=True)


def sweep(where: Path) -> None:
    """Remove uploads older than the expiry (each upload sweeps; no thread needed)."""
    limit = time.time() - EXPIRY
    for entry in where.iterdir():
        try:
            if entry.stat().st_mtime < limit:
                entry.unlink(missing_ok=True)
        except OSError:
            continue
