"""Files a person names on the command line: read within a limit, written without surprises.

Reading (`read_input`, `check_input`): every file a command reads — an import file, a key
file, a public key, a checkpoint, a bundle, a rubric — must be a regular file no larger than
its stated limit. `/dev/zero`, a pipe or a 2 GB file named by mistake (or by a hostile
colleague) is refused at once, with one line naming the option and the limit, instead of
being read until memory runs out. The file is opened without blocking (a FIFO with no writer
would hang an ordinary open) and judged by fstat on the open descriptor, so a name swapped
for something else between a check and the read cannot slip through.

Writing (`check_output`, `output_file`, `create_private`): an output file is created mode
0600 (it holds personal data), never written through a symbolic link, and never replaces an
existing file unless the command was given `--force`; a replacement is written beside the
target and renamed over it, so the old file is either kept whole or replaced whole.
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

from commands.messages import shown

KiB = 1024
MiB = 1024 * KiB

# Stated limits (README "Limits"): far above any real file of each kind.
MAX_IMPORT_BYTES = 100 * MiB  # a CSV or XLSX import file on disk
MAX_KEY_BYTES = 64 * KiB  # master key files, signing keys, public keys
MAX_CHECKPOINT_BYTES = 1 * MiB  # a sealed checkpoint is a few hundred bytes
MAX_BUNDLE_BYTES = 64 * MiB  # a proof bundle: one record's events and their proofs
MAX_RUBRIC_BYTES = 64 * KiB  # an assessment rubric (TOML)

PRIVATE = 0o600


class InputProblem(Exception):
    """A file that cannot be read as input; the message is one line naming the option.

    `limit` is set when the file is too large, `strerror` when the system refused to open or
    read it (neither: not a regular file), for a caller that names the file its own way."""

    def __init__(self, message: str, *, limit: int | None = None, strerror: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.strerror = strerror


def _unreadable(option: str, path: Path, error: OSError) -> InputProblem:
    strerror = str(error.strerror or error)
    return InputProblem(f"{option}: cannot read {_name(path)}: {strerror}", strerror=strerror)


class OutputProblem(Exception):
    """An output path that cannot be written (exit 2): no folder, a folder, an unwritable name."""


class OutputExists(Exception):
    """An output path that already holds something that will not be replaced (exit 1)."""


def limit_text(limit: int) -> str:
    """A byte count as people read limits: 64 KiB, 100 MiB."""
    if limit % MiB == 0:
        return f"{limit // MiB} MiB"
    if limit % KiB == 0:
        return f"{limit // KiB} KiB"
    return f"{limit} bytes"


def _name(path: Path) -> str:
    return shown(os.fsencode(path).decode("utf-8", "replace"), limit=300)


def _open_input(path: Path, option: str, limit: int) -> tuple[int, int]:
    """An open descriptor of a regular file within `limit`, and its size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _unreadable(option, path, e) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputProblem(f"{option}: {_name(path)} is not a regular file")
        if info.st_size > limit:
            raise InputProblem(f"{option}: {_name(path)} is larger than the limit of {limit_text(limit)}", limit=limit)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def check_input(path: Path, option: str, limit: int, *, missing_ok: bool = False) -> None:
    """Refuse, before a loader opens it, a file that is not regular or is larger than `limit`.

    With `missing_ok` a file that does not exist passes: the loader reports it in its own words."""
    if missing_ok and not os.path.lexists(path):
        return
    fd, _size = _open_input(path, option, limit)
    os.close(fd)


def open_input(path: Path, option: str, limit: int) -> BinaryIO:
    """A regular file of at most `limit` bytes, open for reading (for a reader that streams it)."""
    fd, _size = _open_input(path, option, limit)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_input(path: Path, option: str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (a file that grows meanwhile is refused)."""
    fd, _size = _open_input(path, option, limit)
    try:
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(MiB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise InputProblem(f"{option}: {_name(path)} is larger than the limit of {limit_text(limit)}", limit=limit)
    except OSError as e:
        raise _unreadable(option, path, e) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


# ---- writing --------------------------------------------------------------------------------
def check_output(path: Path, option: str, *, force: bool) -> None:
    """Refuse, before any work is done, an output path that will not be written."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        if not folder.is_dir():
            raise OutputProblem(f"{option}: folder {_name(folder)} does not exist")
        if path.is_symlink():
            raise OutputExists(f"{option}: {_name(path)} is a symbolic link; an output is never written through one")
        if path.is_dir():
            raise OutputProblem(f"{option}: {_name(path)} is a folder")
        if path.exists():
            if not path.is_file():
                raise OutputExists(f"{option}: {_name(path)} is not a regular file; it is never replaced")
            if not force:
                raise OutputExists(f"{option}: {_name(path)} already exists; give --force to replace it")
    except OSError as e:  # a name too long, a folder that cannot be searched
        raise OutputProblem(f"{option}: cannot write {_name(path)}: {e.strerror or e}") from None


def create_private(path: Path) -> int:
    """Create a new file mode 0600 and return its descriptor; never through a link, never over a file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, PRIVATE)
    os.fchmod(fd, PRIVATE)  # whatever the umask
    return fd


@contextmanager
def output_file(path: Path, option: str, *, force: bool) -> Iterator[BinaryIO]:
    """A binary file to write the output into; it is in place, mode 0600, once the block ends.

    Without `force` the target itself is created exclusively (it fails if anything, a link
    included, appeared meanwhile). With `force` the output goes to a new file beside the
    target that is then renamed over it: a rename replaces a link itself, never its target.
    A failed write leaves no partial file behind.
    """
    check_output(path, option, force=force)
    target = path
    if force and path.exists():
        target = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        fd = create_private(target)
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ELOOP):  # it appeared after the check: a file or a link
            check_output(path, option, force=False)
        raise OutputProblem(f"{option}: cannot write {_name(path)}: {e.strerror or e}") from None
    done = False
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        if target != path:
            os.replace(target, path)
        done = True
    except OSError as e:
        raise OutputProblem(f"{option}: cannot write {_name(path)}: {e.strerror or e}") from None
    finally:
        if not done:
            try:
                os.unlink(target)
            except OSError:
                pass


@contextmanager
def output_text(path: Path, option: str, *, force: bool) -> Iterator[TextIO]:
    """`output_file` for text: UTF-8, newlines as written."""
    with output_file(path, option, force=force) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        yield text


FORCE_HELP = "Replace FILE if it exists (an output never replaces a file without it, nor writes through a link)."
