"""Personal data over its life: `resident erase`, `keys rotate`, `backup`, `audit access`.

- `resident erase` destroys a resident's data key and the note keys of every record that
  lists them, atomically with a ResidentErased event; history keeps its codes and numbers.
- `keys rotate` re-wraps every data key under a new master key in one transaction.
- `backup` copies a SQLite store while writers run (SQLite's online backup API).
- `audit access` lists the access log that every command printing personal data appends to.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import click

from commands import clock, files
from commands.access_log import ACCESS_FIELDS, ACCESS_LABELS
from commands.cli.assess import audit
from commands.cli.ledger import _day
from commands.cli.people import resident
from commands.context import Env, MalformedInput, Refused, format_option, pass_env, write_format_option
from commands.labels import headers
from commands.output import emit, emit_write
from projections.filters import utc_ms


# ---- erasure ---------------------------------------------------------------------------------
@resident.command("erase")
@click.argument("community")
@click.argument("code")
@click.option(
    "--reason", required=True, help="Why (e.g. the person's request under PIPL art. 47); kept in the history."
)
@write_format_option
@pass_env
def erase(env: Env, community: str, code: str, reason: str, fmt: str) -> None:
    """Erase a resident's personal data: name, birth date and the notes of every record that lists them.

    Their data key and those records' note keys are destroyed, so the encrypted values in
    the history can never be opened again, even with the master key; they show as
    "(erased)". Codes, categories, dates and every count, total and assessment stay as
    they were. Nothing more can be recorded about the resident afterwards. Cannot be undone.

    \b
    Example:
      taizhang --actor admin resident erase HZ-001 R007 --reason "本人申请删除（个人信息保护法第四十七条）"
    """
    actor = env.writer()
    if not reason.strip():
        raise MalformedInput("--reason: must not be empty")
    service = env.service()
    result = service.erase_resident(community, code, reason, actor)
    if not result["scrubbed"]:
        env.warn(
            "the freed bytes could not be scrubbed now (a reader held the database, or this login does not own "
            "data_keys); the next checkpoint or VACUUM FULL data_keys does it"
        )
    emit_write(
        result,
        fmt,
        f"erased resident {code} of community {community}: {result['keys_destroyed']} key(s) destroyed "
        f"(the resident's and the notes of {len(result['records'])} record(s))",
    )


# ---- key rotation ----------------------------------------------------------------------------
@click.group("keys")
def keys() -> None:
    """The master key that wraps every data key."""


@keys.command("rotate")
@click.option(
    "--new-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Where to write the new master key (default: the key file's name + .new, beside it). Never overwritten.",
)
@write_format_option
@pass_env
def rotate(env: Env, new_key_file: Path | None, fmt: str) -> None:
    """Re-wrap every data key under a new master key; the old key file then opens nothing in the store.

    The new key is written to a new file; every data key is re-wrapped in one
    transaction. Then swap the files as printed, back the new key file up, and destroy
    the old one once no backup made before the rotation is needed (it opens only those).

    \b
    Example:
      taizhang --actor admin keys rotate
      taizhang --actor admin --key-file /etc/taizhang/taizhang.key keys rotate --new-key-file /etc/taizhang/new.key
    """
    env.writer()
    old_path = env.key_path
    if new_key_file is None:
        service = env.service()  # a missing store first: its key file's folder may be missing too
    target = new_key_file or old_path.with_name(old_path.name + ".new")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise MalformedInput(f"--new-key-file: folder {str(folder)!r} does not exist")
    if target.exists():
        raise Refused(f"--new-key-file: {target} already exists; a key file is never overwritten")
    service = env.service()
    result = service.rotate_keys(target)
    if not result["scrubbed"]:
        env.warn("the old wrapped keys could not be scrubbed now; run VACUUM FULL data_keys as the table's owner")
    result["key_file"] = str(old_path)
    retired = old_path.with_name(f"{old_path.name}.old-{result['old_master_key']}")
    lines = [
        f"re-wrapped {result['data_keys']} data key(s) under master key {result['new_master_key']} "
        f"(was {result['old_master_key']}) in one transaction.",
        f"The store now opens only with the new key file {target}. Next:",
        f"  1. back up {target} now, apart from the database: without it no name can be read;",
        f"  2. swap the files:  mv {old_path} {retired} && mv {target} {old_path}",
        "     (or point --key-file / TAIZHANG_KEY_FILE at the new file on every machine that uses the store);",
        f"  3. destroy {retired} once no backup made before now is needed: it opens only those.",
    ]
    emit_write(result, fmt, "\n".join(lines))


# ---- backup ----------------------------------------------------------------------------------
@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@write_format_option
@pass_env
def backup(env: Env, file: Path, fmt: str) -> None:
    """Copy a SQLite store to FILE, consistently, while clerks keep writing (SQLite's online backup).

    The copy is one database file; it never overwrites an existing one. The key file is
    NOT in it: back the key file up separately, so that a stolen backup reveals no name.
    On PostgreSQL use pg_dump (see the README).

    \b
    Example:
      taizhang backup backups/taizhang-2026-04-01.db
    """
    store = env.store
    folder = file.parent if str(file.parent) else Path(".")
    if not folder.is_dir():
        raise MalformedInput(f"FILE: folder {str(folder)!r} does not exist")
    env.service()  # refuses a missing store, brings an old one up to date
    if store.backend != "sqlite":
        raise Refused(
            f"backup: {store.display} is PostgreSQL; use pg_dump --format=custom (restore with pg_restore), see the README"
        )
    if file.exists() or file.is_symlink():
        raise Refused(f"FILE: {file} already exists; a backup never overwrites a file")
    assert store.path is not None
    if file.resolve() == store.path.resolve():
        raise Refused(f"FILE: {file} is the store itself")
    events = copy_sqlite(store.path, file)
    shown = click.format_filename(file)  # printable even when the name is not valid UTF-8
    result = {"backup": shown, "events": events, "bytes": file.stat().st_size, "key_file_included": False}
    message = (
        f"backed up {events} event(s) of {store.display} to {shown} ({result['bytes']:,} bytes). "
        f"The key file is not in it: back up {env.key_path} separately."
    )
    emit_write(result, fmt, message)


def copy_sqlite(source: Path, target: Path) -> int:
    """The online backup into a temporary file beside `target`, checked, then linked into place.

    `backup()` with the default `pages=-1` copies every page in ONE step, inside one read
    transaction: a consistent snapshot, and in WAL mode writers are not blocked meanwhile.
    Returns the number of events in the copy.
    """
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    temporary.unlink(missing_ok=True)
    try:
        os.close(files.create_private(temporary))  # mode 0600: SQLite keeps the mode of the file it opens
        src = sqlite3.connect(os.fsencode(source), timeout=30)  # bytes: any file name the OS allows
        try:
            dst = sqlite3.connect(os.fsencode(temporary))
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise Refused(f"backup: the copy failed its integrity check: {check}")
                events = int(dst.execute("SELECT count(*) FROM stored_events").fetchone()[0])
            finally:
                dst.close()
        finally:
            src.close()
        try:
            os.link(temporary, target)  # fails if target appeared meanwhile: never overwrite
        except FileExistsError:
            raise Refused(f"FILE: {target} already exists; a backup never overwrites a file") from None
        return events
    finally:
        temporary.unlink(missing_ok=True)


# ---- the access log --------------------------------------------------------------------------
def _resident_arg(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    community, sep, code = value.partition("/")
    if not sep or not community.strip() or not code.strip():
        raise MalformedInput(f"--resident: expected COMMUNITY/CODE, got {value!r}")
    return community.strip(), code.strip()


@audit.command("access")
@click.option("--resident", metavar="COMMUNITY/CODE", help="Only reads that showed this resident's data.")
@click.option("--actor", "who", metavar="ACTOR", help="Only reads by this actor.")
@click.option("--from", "date_from", metavar="DATE", help="First day (inclusive, local date).")
@click.option("--to", "date_to", metavar="DATE", help="Last day (inclusive, local date).")
@format_option()
@pass_env
def audit_access(
    env: Env, resident: str | None, who: str | None, date_from: str | None, date_to: str | None, fmt: str
) -> None:
    """List the access log: who printed whose names, birth dates or notes, with which command, when.

    Every command that shows personal data (resident list, ledger entries, their
    exports …) appends an entry before it prints; the log cannot be changed or deleted.

    \b
    Example:
      taizhang audit access --resident HZ-001/R002
      taizhang audit access --actor clerk01 --from 2026-04-01 --to 2026-04-30 --format csv
    """
    subject = _resident_arg(resident)
    first, last = _day("--from", date_from), _day("--to", date_to)
    if first and last and first > last:
        raise MalformedInput(f"--from {first} is after --to {last}")
    if who is not None and not who.strip():
        raise MalformedInput("--actor: must not be empty")
    tz = env.zone()
    start = utc_ms(datetime.combine(first, time(0), tz)) if first else None
    end = utc_ms(datetime.combine(last + timedelta(days=1), time(0), tz)) if last else None
    service = env.service()
    rows: list[dict[str, Any]] = service.recorder.access_entries(
        resident=subject, actor=who.strip() if who else None, start=start, end=end
    )
    clock.localise(rows, service.tz)
    labels = [ACCESS_LABELS[f][1 if env.lang == "zh" else 0] for f in ACCESS_FIELDS]
    emit(rows, ACCESS_FIELDS, fmt, labels if fmt == "table" else headers(ACCESS_FIELDS, env.lang))


def register(group: click.Group) -> None:
    group.add_command(keys)
    group.add_command(backup)
