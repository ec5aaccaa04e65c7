"""What every command shares: the environment (store, actor, language, key file), options, errors."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click

from commands import i18n
from commands.messages import shown
from infra.store import DEFAULT_TZ, StoreError, StoreURL, parse_url

if TYPE_CHECKING:
    from commands.app import LedgerService

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class MalformedInput(click.ClickException):
    exit_code = 2


class Refused(click.ClickException):
    exit_code = 1


@dataclass
class Env:
    """What every command needs: the store URL, the actor, the language, the key file."""

    db: str
    actor: str | None
    lang: str
    key_file: Path | None
    _service: LedgerService | None = field(default=None, repr=False)
    _views: Any = field(default=None, repr=False)
    _writes: bool = field(default=False, repr=False)
    _open_to_all: bool | None = field(default=None, repr=False)
    _settings: dict[str, str] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list, repr=False)

    @property
    def store(self) -> StoreURL:
        return parse_url(self.db)

    @property
    def key_path(self) -> Path:
        return self.key_file or self.store.default_key_file()

    def service(self) -> LedgerService:
        """The open store; a missing one is an error (only init and demo create)."""
        service = self._service
        if service is None:
            from commands.app import LedgerService

            service = LedgerService.open(self.store, self.key_path)
            self.adopt(service)
        if self._writes:  # once per process (LedgerService.check_integrity), before the command reads
            service.check_integrity()
        return service

    def open_to_all(self) -> bool:
        """True for a SQLite store that has no actors (access control is off), read with sqlite3
        alone: an initialised store, its init finished, its schema current. False when unsure;
        the application then opens the store and decides (and names any problem)."""
        if self._open_to_all is None:
            self._open_to_all = self._check_open_to_all()
        return self._open_to_all

    def _check_open_to_all(self) -> bool:
        import sqlite3

        from infra import litesql
        from infra.store import SCHEMA_VERSION

        try:
            store = self.store
        except ValueError:
            return False
        if store.backend != "sqlite" or store.path is None or not store.path.is_file():
            return False
        try:
            raw = litesql.connect(store.path)
        except sqlite3.Error:
            return False
        try:
            raw.execute("BEGIN")
            settings = self._settings = litesql.settings(raw)
            if not settings.get("format_version") or settings.get("pending_admin"):
                return False
            if settings.get("schema_version") != SCHEMA_VERSION:
                return False
            return not litesql.has_events_of(raw, litesql.ACTORS_ID)
        except sqlite3.Error:
            return False
        finally:
            raw.close()

    def adopt(self, service: LedgerService) -> None:
        """Make `service` this command's store; its notes (a snapshot not written) go to stderr."""
        self._service = service
        service.app.warn = self.warn

    def validate(self, model: type[T], data: dict[str, Any]) -> T:
        """Validate a command against the store's time zone.

        Malformed input is reported before a missing store: it can be judged
        without one (in TAIZHANG_TZ, or Asia/Shanghai).
        """
        try:
            service = self.service()
        except StoreError:
            from commands import models

            zone = self.default_zone()
            models.validate(model, data, tz=zone, now=datetime.now(zone))  # type: ignore[arg-type]
            raise
        return service.validate(model, data)

    def zone(self) -> ZoneInfo:
        """The store's time zone (or TAIZHANG_TZ / Asia/Shanghai when there is no store)."""
        if self._service is None and self.open_to_all():  # read without opening the application
            return ZoneInfo(self._settings.get("time_zone", DEFAULT_TZ))
        try:
            return self.service().tz
        except StoreError:
            return self.default_zone()

    @staticmethod
    def default_zone() -> ZoneInfo:
        """The zone where no store decides: TAIZHANG_TZ, else Asia/Shanghai."""
        return ZoneInfo(os.environ.get("TAIZHANG_TZ") or DEFAULT_TZ)

    def today(self) -> str:
        """Today in the store's time zone (or the default zone when there is no store)."""
        try:
            return self.service().now().date().isoformat()
        except StoreError:
            return datetime.now(self.default_zone()).date().isoformat()

    def require_actor(self) -> str:
        """The actor a write names; judged without the store (exit 2 when missing or not a plain name).

        The actor is stored in every event and printed in ledgers (`recorded_by`):
        no control characters, at most 64 characters. commands.access calls this for every
        write command before it opens the store, so a store with actors and one without
        give the same answer.
        """
        if not self.actor or not self.actor.strip():
            raise MalformedInput("--actor: required for commands that write (or set TAIZHANG_ACTOR)")
        from commands import models

        try:
            return models.clean_text(self.actor, limit=models.MAX_CODE, what="actor")
        except ValueError as e:
            raise MalformedInput(f"--actor: {e}") from None

    def writer(self) -> str:
        """The actor of a write command (`require_actor`); from now on the store must be sound."""
        actor = self.require_actor()
        self._writes = True  # from now on service() refuses a damaged store
        return actor

    def log_access(self, residents: Iterable[tuple[str, str]], records: int = 0) -> None:
        """Append who reads which residents' personal data to the access log (PIPL).

        Call it after the query and BEFORE printing: when the entry cannot be written the
        command fails and prints nothing. `residents` are (community, code) pairs whose data
        the output shows; `records` counts the service notes it shows. The command and its
        options are taken from the running click command.
        """
        from commands.access_log import log_access

        log_access(self, residents, records)

    def views(self) -> Any:
        """The read models of the open store (commands.views.Views)."""
        if self._views is None:
            from commands.views import Views

            self._views = Views(
                self.service, self.store, light=self.open_to_all
            )  # opens the application only if it must
        return self._views

    def warn(self, message: str) -> None:
        """A note for stderr, printed once the command has succeeded (an error stays one line)."""
        self.notes.append(i18n.note_line(message, self.lang))

    def flush_notes(self) -> None:
        for note in self.notes:
            click.echo(note, err=True)
        self.notes.clear()

    def close(self) -> None:
        if self._views is not None:
            self._views.close()
            self._views = None
        if self._service is not None:
            self._service.close()
            self._service = None


pass_env = click.make_pass_decorator(Env)


class Seconds(click.FloatRange):
    """A number of seconds within a range; NaN is refused (click's FloatRange lets it through)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{shown(value)} is not a number of seconds", param, ctx)
        return seconds


MAX_WAIT = 3600.0
WAIT = Seconds(min=0, max=MAX_WAIT)  # --wait: at most an hour
INTERVAL = Seconds(min=0.01, max=MAX_WAIT)  # --interval of a follower


def format_option(*choices: str) -> Callable[[F], F]:
    values = choices or ("table", "json", "csv")
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(values),
        default=values[0],
        show_default=True,
        help="Output format.",
    )


def write_format_option(func: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json prints the ids the command touched.",
    )(func)
