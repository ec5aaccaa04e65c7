"""The application service: get -> domain call -> save, with retry on conflicts.

Every write goes through `LedgerService`, whether it comes from the CLI, an import
or the demo. It turns validated commands (commands.models) into domain calls,
encrypts personal data before it reaches an event, refuses a record id another
community recorded, and retries a save that lost a race with another writer.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, Repository
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent

from commands import files
from commands.messages import one_line
from commands.snapshots import CheckedSnapshots
from domain.actors import ACTORS_ID, Actors
from domain.community import Community
from domain.errors import AlreadyExists, LedgerError, NotActive, NotFound, RuleViolation
from domain.ids import community_id
from infra import crypto, recordstate
from infra.codec import OrjsonMapper
from infra.store import (
    DEFAULT_TZ,
    FORMAT_VERSION,
    SCHEMA_VERSION,
    StoreError,
    StoreURL,
    UpgradeNeedsOwner,
    eventsourcing_env,
    prune_many_snapshots,
    prune_snapshots,
    store_exists,
)

if TYPE_CHECKING:
    from commands import models

T = TypeVar("T")

MAX_ATTEMPTS = 30
SNAPSHOT_INTERVAL = 100


class Busy(LedgerError):
    """Other writers kept winning the race for a community."""


class Unfinished(StoreError):
    """The store's `init --admin` did not finish: every command but that init is refused."""

    def __init__(self, store: StoreURL, admin: str) -> None:
        again = f"init --admin {admin}" if admin else "init"
        super().__init__(f"the init of the store at {store.display} did not finish; run taizhang {again} again as its owner")


class _Stale(Exception):
    """What was loaded is already out of date: load again and redo the decision."""


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's project_aggregate without its per-event `isinstance` against a runtime-checkable
    Protocol, which costs ~11 µs an event (typing walks the protocol's members every time): a write
    replays up to 99 events since its community's snapshot, and that check was a quarter to two fifths
    of a single write (BENCHMARKS.md §1). Every event of this store is a domain event class of ours,
    with `mutate`."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class _Repository(Repository[UUID]):
    """The library's repository, loading with `_project` unless a caller names a projector."""

    def get(self, aggregate_id: UUID, *, projector_func: Any = _project, **kwargs: Any) -> Any:
        return super().get(aggregate_id, projector_func=projector_func, **kwargs)


class TaizhangApplication(Application[UUID]):
    name = "taizhang"
    snapshotting_intervals = {Community: SNAPSHOT_INTERVAL}

    # Set by commands.access once a command's actor is known: checks every save against its scope
    # (the aggregates with pending events, and those a bulk import wrote events into itself).
    guard: Callable[..., None] | None = None
    # Set by the CLI: where a note goes — a snapshot that could not be written (see _take_snapshots)
    # or that does not decode (commands.snapshots).
    warn: Callable[[str], None] | None = None
    # Set by LedgerService: refuses to write into a damaged store (checked once per process).
    before_write: Callable[[], None] | None = None

    def construct_mapper(self) -> OrjsonMapper:
        return OrjsonMapper()

    def construct_repository(self) -> _Repository:
        # No aggregate cache (the library's AGGREGATE_CACHE_* settings are not read): every command
        # loads what it decides on from the store, under the store's own concurrency control.
        return _Repository(event_store=self.events, snapshot_store=self.snapshots)

    def construct_snapshot_store(self) -> CheckedSnapshots:
        """Snapshots that do not decode are skipped and reported through `warn` (commands.snapshots)."""
        return CheckedSnapshots(self.mapper, self.factory.aggregate_recorder(purpose="snapshots"), lambda: self.warn)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        if self.before_write is not None:
            self.before_write()
        if self.guard is not None:
            self.guard([o for o in objs if o is not None])
        return super().save(*objs, **kwargs)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot each saved aggregate once, from memory, when it crossed an interval,
        and drop its older snapshots (only the newest is ever read).

        eventsourcing's default re-reads the store at every multiple of the interval,
        which replays a bulk import a second time. The aggregate in memory is exactly
        the stored state right after a successful save, so snapshot that.

        The events are committed by now: a snapshot is only a cache, so a failure to
        write it (a full disk, a revoked privilege) must not fail the command that stored
        them, or a retry would store them again. Loading replays from the previous snapshot.
        """
        if self.snapshots is None:
            return
        crossed: dict[UUID, Any] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            if isinstance(aggregate, Community) and event.originator_version % SNAPSHOT_INTERVAL == 0:
                crossed[aggregate.id] = aggregate
        self.snapshot(crossed.values())

    def snapshot(self, aggregates: Iterable[Any]) -> None:
        """Snapshot these saved aggregates from memory and drop their older snapshots (a cache:
        a failure is reported through `warn`, never raised)."""
        if self.snapshots is None:
            return
        aggregates = list(aggregates)
        if len(aggregates) > 1:  # an import crosses an interval in many communities: one transaction each way
            try:
                self.snapshots.put([Community.Snapshot.take(aggregate) for aggregate in aggregates])
            except Exception:  # noqa: S110 (each is tried on its own below, which names the one that fails)
                pass
            else:
                try:
                    prune_many_snapshots(self.snapshots.recorder, [(a.id, a.version) for a in aggregates])
                except Exception:  # each pruned on its own, reported as below
                    self._prune_each(aggregates)
                return
        for aggregate in aggregates:
            try:
                self.snapshots.put([Community.Snapshot.take(aggregate)])
                prune_snapshots(self.snapshots.recorder, aggregate.id, aggregate.version)
            except Exception as e:  # any failure of a cache, after the commit
                self._snapshot_failed(aggregate, e)

    def _prune_each(self, aggregates: list[Any]) -> None:
        for aggregate in aggregates:
            try:
                prune_snapshots(self.snapshots.recorder, aggregate.id, aggregate.version)  # type: ignore[union-attr]
            except Exception as e:  # any failure of a cache, after the commit
                self._snapshot_failed(aggregate, e)

    def _snapshot_failed(self, aggregate: Any, e: Exception) -> None:
        if self.warn is not None:
            error = one_line(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
            self.warn(f"community {aggregate.code} was saved, but its snapshot (a cache) could not be written: {error}")


@dataclass
class KeySession:
    """Data keys for one attempt: found in the store, or new and pending with the save."""

    recorder: Any
    master: crypto.MasterKey | None
    cache: dict[str, bytes] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    pending: list[tuple[str, str, bytes]] = field(default_factory=list)
    erased: set[str] = field(default_factory=set)
    known_live: set[str] = field(default_factory=set)

    def _master(self) -> crypto.MasterKey:
        if self.master is None:
            raise crypto.KeyFileError("no key file: names and notes cannot be encrypted")
        return self.master

    def prefetch(self, key_ids: Iterable[str]) -> None:
        wanted = [key_id for key_id in key_ids if key_id not in self.cache and key_id not in self.absent]
        if not wanted:
            return
        master = self._master()
        found = self.recorder.data_keys(wanted)
        missing = [key_id for key_id in wanted if key_id not in found]
        self.absent.update(missing)
        self.erased_among(missing)
        for key_id, (master_id, wrapped) in found.items():
            if master_id != master.key_id:
                raise crypto.KeyFileError(
                    f"data key {key_id} is wrapped by master key {master_id}, not {master.key_id} "
                    "(a wrong key file, or the master key was rotated: use the new key file)"
                )
            self.cache[key_id] = master.unwrap(key_id, wrapped)

    def erased_among(self, key_ids: Iterable[str]) -> set[str]:
        """Which of these key ids an erasure destroyed (needs no master key)."""
        ids = set(key_ids)
        unknown = ids - self.erased - self.known_live
        if unknown:
            erased = self.recorder.erased_keys(unknown)
            self.erased.update(erased)
            self.known_live.update(unknown - erased)
        return ids & self.erased

    def find(self, key_id: str) -> bytes | None:
        if key_id not in self.cache and key_id not in self.absent:
            self.prefetch([key_id])
        return self.cache.get(key_id)

    def drop_pending(self, mark: int) -> None:
        """Forget the keys made since `len(pending)` was `mark` (a row that made them was then refused:
        nothing of it is written, its note's key neither)."""
        for key_id, _master_id, _wrapped in self.pending[mark:]:
            self.cache.pop(key_id, None)
            self.absent.add(key_id)
        del self.pending[mark:]

    def get_or_create(self, key_id: str) -> bytes:
        key = self.find(key_id)
        if key is None and key_id in self.erased:
            raise NotActive(f"{describe_key(key_id)} was erased; nothing personal can be recorded under it again")
        if key is None:
            master = self._master()
            key = crypto.new_data_key()
            self.cache[key_id] = key
            self.absent.discard(key_id)
            self.pending.append((key_id, master.key_id, master.wrap(key_id, key)))
        return key


@dataclass
class Change:
    """What one attempt decided: the result, the aggregates to save, and their side rows."""

    result: Any
    aggregates: list[Any] = field(default_factory=list)
    units: list[tuple[str, str, str]] = field(default_factory=list)
    erase_keys: list[str] = field(default_factory=list)


class BulkSave:
    """Writes chunks of pending events into one open transaction (LedgerService.bulk_save)."""

    def __init__(self, app: TaizhangApplication, append: Callable[..., Any]) -> None:
        self.app = app
        self.append = append
        self.crossed: dict[UUID, Any] = {}  # aggregates whose version crossed a snapshot interval
        self.events = 0

    def write(
        self,
        aggregates: Iterable[Any],
        data_keys: Sequence[Any] = (),
        *,
        stored: Sequence[StoredEvent] = (),
        written: Sequence[Community] = (),
        record_rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None = None,
    ) -> None:
        """Append the aggregates' pending events (then no longer pending) with their side rows;
        then `stored`: events the caller encoded itself (infra.codec.stored_event) into the
        `written` aggregates, with their record_state / record_people rows if it made them."""
        changed = [a for a in aggregates if a is not None and a.pending_events]
        if not changed and not stored:
            return
        if not self.events and self.app.before_write is not None:
            self.app.before_write()
        if self.app.guard is not None:
            self.app.guard(changed, written)
        units = [
            (event.code, event.county, event.township)
            for aggregate in changed
            for event in aggregate.pending_events
            if isinstance(event, Community.Established)
        ]
        to_stored = self.app.mapper.to_stored_event
        events = []
        for aggregate in changed:
            for event in aggregate.collect_events():
                events.append(to_stored(event))
                if isinstance(aggregate, Community) and event.originator_version % SNAPSHOT_INTERVAL == 0:
                    self.crossed[aggregate.id] = aggregate
        if stored:
            by_id = {aggregate.id: aggregate for aggregate in written}
            for event in stored:
                if event.originator_version % SNAPSHOT_INTERVAL == 0:
                    self.crossed[event.originator_id] = by_id[event.originator_id]
            events.extend(stored)
        extra = {"record_rows": record_rows} if record_rows is not None and not changed else {}
        self.append(events, data_keys=list(data_keys), units=units, **extra)
        self.events += len(events)


class LedgerService:
    """One open store. Construct with `open()` or `create()`; close when done."""

    def __init__(self, store: StoreURL, app: TaizhangApplication, key_file: Path) -> None:
        self.store = store
        self.app = app
        self.key_file = key_file
        self._master: crypto.MasterKey | None = None
        self._master_error: str | None = None
        self._tz: ZoneInfo | None = None
        self._sound = False
        app.before_write = self.check_integrity

    # ---- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, store: StoreURL, key_file: Path) -> LedgerService:
        if not store_exists(store):
            raise StoreError(f"no store at {store.display}; run taizhang init")
        service = cls(store, TaizhangApplication(env=eventsourcing_env(store, create=False)), key_file)
        pending = service.unfinished()
        if pending is not None:
            service.close()
            raise Unfinished(store, pending)
        service.upgrade()
        return service

    def unfinished(self) -> str | None:
        """None for a store whose init finished; else the admin its init was to make ("" if unknown)."""
        settings = self.recorder.settings()
        if not settings.get("format_version"):
            return ""
        return settings.get("pending_admin") or None

    @classmethod
    def peek_unfinished(cls, store: StoreURL, key_file: Path) -> str | None:
        """`unfinished()` of an existing store, read without upgrading or writing anything."""
        service = cls(store, TaizhangApplication(env=eventsourcing_env(store, create=False)), key_file)
        try:
            return service.unfinished()
        finally:
            service.close()

    def upgrade(self) -> None:
        """Bring a store made by an earlier version up to this schema (idempotent, in place)."""
        if self.recorder.settings().get("schema_version") == SCHEMA_VERSION:
            return
        try:
            self.recorder.upgrade_schema()
        except UpgradeNeedsOwner:
            raise StoreError(
                f"the store at {self.store.display} was made by an earlier version of taizhang and only its"
                " owner's login can upgrade it: run one taizhang command as the owner, then try again"
            ) from None
        known = {code for code, _county, _township in self.recorder.units()}
        missing = [c for c in self.communities_from_log() if c[0] not in known]
        if missing:
            with self.recorder.datastore.transaction(commit=True) as c:
                sql = "INSERT INTO community_units (code, county, township) VALUES (?, ?, ?)"
                if self.store.backend == "postgres":
                    sql = sql.replace("?", "%s")
                c.executemany(sql, missing)
        self.recorder.chain_backlog()  # events stored before the hash chain existed
        self.recorder.access_backlog()  # access-log entries written before the access chain existed
        self.recorder.rebuild_record_state()  # record_state / record_people from the log (schema 7)
        self.recorder.put_settings({"schema_version": SCHEMA_VERSION})

    def communities_from_log(self) -> list[tuple[str, str, str]]:
        """(code, county, township) of every Established event, read from the log."""
        from infra.codec import decode_payload

        found: list[tuple[str, str, str]] = []
        start = 1
        while True:
            batch = self.recorder.select_notifications(start, 1000, topics=[Community.Established.TOPIC])
            if not batch:
                return found
            for n in batch:
                p = decode_payload(n.state)
                found.append((p["code"], p["county"], p["township"]))
            start = batch[-1].id + 1

    @classmethod
    def create(
        cls, store: StoreURL, key_file: Path, tz: str | None, pending_admin: str | None = None
    ) -> tuple[LedgerService, bool]:
        """Create the store if needed; returns (service, created). Refuses another time zone.

        With `pending_admin` a new store is marked unfinished in the same write as its first
        settings: every command but `init --admin` refuses it until `finish_init()`.
        """
        existed = store_exists(store)
        try:
            if store.backend == "sqlite" and store.path is not None:
                if store.path.is_dir():
                    raise StoreError(f"cannot create a store at {store.display}: it is a directory")
                store.path.parent.mkdir(parents=True, exist_ok=True)
                if not store.path.exists():
                    # Created here, mode 0600, so that SQLite gives its -wal and -shm files that mode too.
                    os.close(files.create_private(store.path))
            app = TaizhangApplication(env=eventsourcing_env(store, create=True))
        except (OSError, PersistenceError) as e:
            raise StoreError(f"cannot create a store at {store.display}: {e}") from None
        service = cls(store, app, key_file)
        settings = service.recorder.settings()
        if not settings:
            zone = tz or DEFAULT_TZ
            check_zone(zone)
            values = {
                "format_version": FORMAT_VERSION,
                "schema_version": SCHEMA_VERSION,
                "time_zone": zone,
                "created_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            }
            if service.master is not None:
                values["master_key_id"] = service.master.key_id  # new data keys must be wrapped by it
                values["master_key_check"] = crypto.key_check(service.master)  # and its key must be this one
            if pending_admin:
                values["pending_admin"] = pending_admin
            service.recorder.put_settings(values)
        elif tz and settings.get("time_zone") != tz:
            service.close()
            raise StoreError(
                f"the store at {store.display} already uses time zone {settings.get('time_zone')}; it cannot change"
            )
        else:
            service.upgrade()
        return service, not existed

    def check_integrity(self) -> None:
        """Refuse to write into a SQLite file with damaged pages: SQLite would go on appending to
        it, and every later write would deepen the damage a backup must repair. Once per process."""
        if self._sound or self.store.backend != "sqlite":
            return
        finding = self.recorder.quick_check()
        if finding is not None:
            raise StoreError(
                f"the store at {self.store.display} is damaged (SQLite quick_check: {finding}); "
                "nothing was written: restore it from a backup (taizhang backup makes them)"
            )
        self._sound = True

    def finish_init(self) -> None:
        self.recorder.put_settings({"pending_admin": ""})

    def close(self) -> None:
        self.app.close()

    @property
    def recorder(self) -> Any:
        return self.app.recorder

    @property
    def tz(self) -> ZoneInfo:
        if self._tz is None:
            self._tz = ZoneInfo(self.recorder.settings().get("time_zone", DEFAULT_TZ))
        return self._tz

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def validate(self, model: type[T], data: dict[str, Any]) -> T:
        from commands import models  # pydantic: imported by the commands that validate

        return models.validate(model, data, tz=self.tz, now=self.now())  # type: ignore[arg-type]

    # ---- keys ----------------------------------------------------------------------------
    @property
    def master(self) -> crypto.MasterKey | None:
        """The key file's master key, checked against the store's check value; None without a key file."""
        if self._master is None and self._master_error is None:
            # /dev/zero or a pipe as --key-file is refused before it is read (exit 2).
            files.check_input(self.key_file, "--key-file", files.MAX_KEY_BYTES, missing_ok=True)
            try:
                master = crypto.load_key_file(self.key_file)
            except crypto.KeyFileError as e:
                self._master_error = str(e)
                return None
            self._check_master(master)
            self._master = master
        return self._master

    def _check_master(self, master: crypto.MasterKey) -> None:
        """Refuse a key file that names the store's master key but holds other key material.

        A store without a check value (made before it existed, or without a key file) gets
        one, once the key has opened one of its data keys (or when it has none yet).
        Another key id is left to the data-key checks, which name the rotation.
        """
        settings = self.recorder.settings()
        current = settings.get("master_key_id")
        if current and current != master.key_id:
            return
        stored = settings.get("master_key_check")
        opens = crypto.check_matches(master, stored) if stored is not None else self._opens_a_data_key(master)
        if opens is False:
            raise crypto.DamagedKey(
                f"key file {self.key_file} does not hold the store's master key {master.key_id}: "
                "its key fails the store's check (a damaged or altered copy; restore it from its backup)"
            )
        if stored is None and opens is True:
            values = {"master_key_check": crypto.key_check(master)}
            if not current:
                values["master_key_id"] = master.key_id
            self.recorder.put_settings_if_allowed(values)

    def _opens_a_data_key(self, master: crypto.MasterKey) -> bool | None:
        """Whether the key unwraps one of the store's data keys: True also when it has none yet;
        None when they are wrapped by another master key (the data-key checks refuse those)."""
        sample = self.recorder.sample_data_key(master.key_id)
        if sample is None:
            return True
        key_id, master_id, wrapped = sample
        if master_id != master.key_id:
            return None
        try:
            master.unwrap(key_id, wrapped)
        except crypto.KeyFileError:
            return False
        return True

    def require_master(self) -> crypto.MasterKey:
        master = self.master
        if master is None:
            raise crypto.KeyFileError(
                f"{self._master_error}; names and notes cannot be encrypted "
                "(set TAIZHANG_KEY_FILE to the store's key file)"
            )
        return master

    def key_session(self) -> KeySession:
        return KeySession(self.recorder, self.master)

    # ---- the write loop ---------------------------------------------------------------
    def get_community(self, code: str, records: Iterable[str] = ()) -> Community:
        """The community's registry, with the current state of `records` (those of them it holds)
        handed in from the store's record_state (docs/decisions: record state)."""
        try:
            community: Community = self.app.repository.get(community_id(code))  # type: ignore[assignment]
        except AggregateNotFoundError:
            raise NotFound(f"community {code} is not established") from None
        community.forget_records()
        ids = list(records)
        if ids:
            know_states(community, self.recorder.record_states(community.id, ids).values())
        return community

    def know_active_service_of(self, community: Community, role: str, code: str, day: date | str) -> None:
        """Hand the community the earliest active service of a person on or after a day (index lookup)."""
        row = self.recorder.first_active_record(community.id, role, code, as_day(day))
        if row is not None:
            know_states(community, [row])

    def _write(self, decide: Callable[[KeySession], Change], attempts: int = MAX_ATTEMPTS) -> Any:
        """Run `decide` and save what it changed, redoing it after a lost race."""
        for attempt in range(1, attempts + 1):
            keys = self.key_session()
            try:
                change = decide(keys)
                if not any(aggregate.pending_events for aggregate in change.aggregates):
                    return change.result
                self.app.save(
                    *change.aggregates,
                    data_keys=keys.pending,
                    units=change.units,
                    erase_keys=change.erase_keys,
                )
            except (IntegrityError, _Stale):
                if attempt == attempts:
                    break
                # Back off with jitter so two writers stop colliding in step.
                time.sleep(random.uniform(0, min(0.5, 0.005 * 2**attempt)))
                continue
            return change.result
        raise Busy("the store is busy with other writers to the same community; try again")

    # ---- communities ----------------------------------------------------------------------
    def establish_community(self, cmd: models.EstablishCommunity, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            try:
                self.app.repository.get(community_id(cmd.code))
            except AggregateNotFoundError:
                pass
            else:
                raise AlreadyExists(f"community {cmd.code} is already established")
            community = Community.establish(
                code=cmd.code,
                name=cmd.name,
                county=cmd.county,
                township=cmd.township,
                village=cmd.village,
                natural_villages=cmd.natural_villages,
                established_on=cmd.established_on or self.now().date(),
                actor=actor,
            )
            return Change(
                {"community": cmd.code, "created": True},
                [community],
                units=[(cmd.code, cmd.county, cmd.township)],
            )

        return self._write(decide)

    # ---- residents ------------------------------------------------------------------------
    def enroll_resident(self, cmd: models.EnrollResident, actor: str) -> dict[str, Any]:
        self.require_master()

        def decide(keys: KeySession) -> Change:
            community = self.get_community(cmd.community)
            self.apply_enroll(community, cmd, keys, actor)
            return Change({"community": cmd.community, "resident": cmd.code}, [community])

        return self._write(decide)

    def apply_enroll(self, community: Community, cmd: models.EnrollResident, keys: KeySession, actor: str) -> None:
        if cmd.code in community.residents:
            raise AlreadyExists(f"resident {cmd.code} is already enrolled in community {cmd.community}")
        data_key = keys.get_or_create(crypto.resident_key_id(cmd.community, cmd.code))

        def sealed(field: str, text: str) -> dict[str, Any]:
            return crypto.seal(crypto.resident_field(cmd.community, cmd.code, field), data_key, text)

        community.enroll_resident(
            code=cmd.code,
            name=sealed("name", cmd.name),
            birth_date=sealed("birth_date", cmd.birth_date.isoformat()) if cmd.birth_date else None,
            gender=cmd.gender,
            categories=cmd.categories,
            grid=cmd.grid,
            household=cmd.household,
            enrolled_on=cmd.enrolled_on,
            actor=actor,
        )

    def update_resident(self, cmd: models.UpdateResident, actor: str) -> dict[str, Any]:
        def decide(keys: KeySession) -> Change:
            community = self.get_community(cmd.community)
            refuse_erased(keys, cmd.community, [cmd.code])
            community.update_resident(
                code=cmd.code, categories=cmd.categories, grid=cmd.grid, household=cmd.household, actor=actor
            )
            return Change({"community": cmd.community, "resident": cmd.code}, [community])

        return self._write(decide)

    def depart_resident(self, cmd: models.DepartResident, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            community = self.get_community(cmd.community)
            self.know_active_service_of(community, "r", cmd.code, cmd.on)
            community.depart_resident(code=cmd.code, reason=cmd.reason, on=cmd.on, actor=actor)
            return Change({"community": cmd.community, "resident": cmd.code}, [community])

        return self._write(decide)

    # ---- providers ------------------------------------------------------------------------
    def register_provider(self, cmd: models.RegisterProvider, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            community = self.get_community(cmd.community)
            self.apply_register(community, cmd, actor)
            return Change({"community": cmd.community, "provider": cmd.code}, [community])

        return self._write(decide)

    @staticmethod
    def apply_register(community: Community, cmd: models.RegisterProvider, actor: str) -> None:
        community.register_provider(
            code=cmd.code,
            name=cmd.name,
            role=cmd.role,
            team=cmd.team,
            registered_on=cmd.registered_on,
            actor=actor,
        )

    def retire_provider(self, cmd: models.RetireProvider, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            community = self.get_community(cmd.community)
            self.know_active_service_of(community, "p", cmd.code, cmd.on)
            community.retire_provider(code=cmd.code, on=cmd.on, actor=actor)
            return Change({"community": cmd.community, "provider": cmd.code}, [community])

        return self._write(decide)

    # ---- services -------------------------------------------------------------------------
    def record_service(self, cmd: models.RecordService, actor: str, record_id: str) -> dict[str, Any]:
        if cmd.note is not None:
            self.require_master()

        def decide(keys: KeySession) -> Change:
            community = self.get_community(cmd.community, [record_id])
            if record_id not in community.records:
                owner = self.recorder.claims([record_id]).get(record_id)
                if owner == str(community.id):
                    raise _Stale  # another writer recorded it here after we loaded the community
                if owner is not None:
                    raise AlreadyExists(
                        f"record {record_id} is already recorded in another community; use service correct"
                    )
            created = self.apply_record(community, cmd, record_id, keys, actor)
            return Change({"record_id": record_id, "created": created}, [community])

        return self._write(decide)

    @staticmethod
    def apply_record(
        community: Community, cmd: models.RecordService, record_id: str, keys: KeySession, actor: str
    ) -> bool:
        fields = LedgerService.service_fields(community, cmd, record_id, keys, actor)
        if fields is None:
            return False
        community.trigger_event(community.ServiceRecorded, **fields)
        return True

    @staticmethod
    def service_fields(
        community: Community,
        cmd: models.RecordService,
        record_id: str,
        keys: KeySession,
        actor: str,
        *,
        erased_among: bool = True,
        digest: str | None = None,
    ) -> dict[str, Any] | None:
        """The ServiceRecorded fields of this command (its note sealed), or None when the same record
        exists: the rules applied, the aggregate unchanged (`apply_record` triggers the event; a
        bulk import stores it itself, see commands.importer). An import passes `erased_among=False`
        when none of its chunk's residents was erased, and the `digest` of a row without a note."""
        if erased_among and record_id not in community.records:
            refuse_erased(keys, community.code, cmd.residents)
        note, note_mac = sealed_note(keys, community.code, record_id, cmd.note)
        if note_mac is not None:
            digest = None  # the note's MAC is part of the content
        return community.service_to_record(
            record_id=record_id,
            kind=cmd.kind,
            residents=cmd.residents,
            providers=cmd.providers,
            occurred_at=cmd.occurred_at,
            minutes=cmd.minutes,
            place=cmd.place,
            note=note,
            note_mac=note_mac,
            entered_on=cmd.entered_on,
            actor=actor,
            digest=digest,
        )

    def correct_service(self, cmd: models.CorrectService, actor: str) -> dict[str, Any]:
        if cmd.note is not None:
            self.require_master()

        def decide(keys: KeySession) -> Change:
            community = self.get_community(cmd.community, [cmd.record_id])
            if cmd.residents is not None and community.record_status(cmd.record_id) is not None:
                listed = set(community.record_residents(cmd.record_id))
                refuse_erased(keys, cmd.community, [code for code in cmd.residents if code not in listed])
            note = note_mac = None
            if community.record_status(cmd.record_id) is not None:
                note, note_mac = sealed_note(keys, cmd.community, cmd.record_id, cmd.note)
            community.correct_service(
                record_id=cmd.record_id,
                reason=cmd.reason,
                actor=actor,
                kind=cmd.kind,
                occurred_at=cmd.occurred_at,
                minutes=cmd.minutes,
                residents=cmd.residents,
                providers=cmd.providers,
                place=cmd.place,
                note=note,
                note_mac=note_mac,
            )
            return Change(
                {"record_id": cmd.record_id, "revision": community.record_revision(cmd.record_id)}, [community]
            )

        return self._write(decide)

    def void_service(self, cmd: models.VoidService, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            community = self.get_community(cmd.community, [cmd.record_id])
            community.void_service(record_id=cmd.record_id, reason=cmd.reason, actor=actor)
            return Change({"record_id": cmd.record_id, "status": "voided"}, [community])

        return self._write(decide)

    # ---- erasure, rotation, access log -------------------------------------------------------
    def erase_resident(self, community_code: str, code: str, reason: str, actor: str) -> dict[str, Any]:
        """Destroy a resident's data key and the note keys of every record that lists them.

        The keys are deleted, and the ResidentErased event stored, in ONE transaction (the
        write-time hook): there is no moment at which one exists without the other. Stored
        events are not touched; their envelopes simply no longer open. Afterwards the freed
        bytes are scrubbed (SQLite: WAL checkpoint over secure_delete'd pages; PostgreSQL:
        VACUUM FULL of data_keys).
        """
        def decide(keys: KeySession) -> Change:
            community = self.get_community(community_code)
            if code not in community.residents:
                raise NotFound(f"resident {code} is not enrolled in community {community_code}")
            resident_key = crypto.resident_key_id(community_code, code)
            if keys.erased_among([resident_key]):
                raise NotActive(f"resident {code} of community {community_code} was already erased")
            # Every record any revision of which listed them: the store's index (record_people).
            records = self.recorder.records_listing(community.id, code)
            key_ids = [resident_key, *(crypto.note_key_id(r) for r in records)]
            community.erase_resident(code=code, reason=reason.strip(), records=records, actor=actor)
            destroyed = sorted(self.recorder.data_keys(key_ids))
            return Change(
                {"community": community_code, "resident": code, "records": records, "keys_destroyed": len(destroyed)},
                [community],
                erase_keys=key_ids,
            )

        result = self._write(decide)
        result["scrubbed"] = self.recorder.scrub()
        return result

    def rotate_keys(self, new_key_file: Path) -> dict[str, Any]:
        """Re-wrap every data key under a new master key written to `new_key_file` (never overwritten)."""
        old = self.require_master()
        if new_key_file.exists():
            raise RuleViolation(f"{new_key_file} already exists; a key file is never overwritten")
        current = self.recorder.settings().get("master_key_id")
        if current and current != old.key_id:
            raise crypto.KeyFileError(
                f"the store's master key is {current}, not {old.key_id} from {self.key_file}; "
                "give the current key file with --key-file"
            )
        try:
            new = crypto.create_key_file(new_key_file)
        except OSError as e:
            raise RuleViolation(f"cannot write {new_key_file}: {e.strerror or e}") from None

        def rewrap(key_id: str, master_id: str, wrapped: bytes) -> bytes:
            if master_id != old.key_id:
                raise crypto.KeyFileError(f"data key {key_id} is wrapped by master key {master_id}, not {old.key_id}")
            return new.wrap(key_id, old.unwrap(key_id, wrapped))

        try:
            count = self.recorder.rotate(rewrap, new.key_id, crypto.key_check(new))
        except BaseException:
            new_key_file.unlink(missing_ok=True)  # nothing changed: the new key opens nothing
            raise
        scrubbed = self.recorder.scrub()
        return {
            "old_master_key": old.key_id,
            "new_master_key": new.key_id,
            "new_key_file": str(new_key_file),
            "data_keys": count,
            "scrubbed": scrubbed,
        }

    def log_access(
        self, actor: str | None, command: str, detail: str, residents: Iterable[tuple[str, str]], records: int = 0
    ) -> int:
        """Append one entry to the access log (who, what, when by the database clock)."""
        return self.log_access_many([(actor, command, detail, residents, records)])[0]

    def log_access_many(
        self, entries: Sequence[tuple[str | None, str, str, Iterable[tuple[str, str]], int]]
    ) -> list[int]:
        """Append access-log entries in order in ONE transaction (one commit: the web's group commit)."""
        batch = [
            (actor, command, detail, sorted(set(residents)), records)
            for actor, command, detail, residents, records in entries
        ]
        return [int(i) for i in self.recorder.log_access_many(batch)]

    # ---- bulk -----------------------------------------------------------------------------
    @contextmanager
    def bulk_save(self) -> Iterator[BulkSave]:
        """One transaction that an import streams its events into, chunk by chunk: all or nothing.

        The first chunk takes the write lock; a writer that committed to the same aggregates
        since they were loaded makes it raise IntegrityError, as `save` does. Snapshots are
        taken after the commit.
        """
        with self.recorder.bulk_transaction() as append:
            saver = BulkSave(self.app, append)
            yield saver
        self.app.snapshot(saver.crossed.values())

    def save_many(self, aggregates: list[Community], keys: KeySession) -> None:
        """Save many aggregates' events in one transaction (imports, the demo)."""
        units = [
            (event.code, event.county, event.township)
            for aggregate in aggregates
            for event in aggregate.pending_events
            if isinstance(event, Community.Established)
        ]
        self.app.save(*aggregates, data_keys=keys.pending, units=units)

    # ---- actors ---------------------------------------------------------------------------
    def grant_actor(self, name: str, role: str, scope: str, login: str | None, actor: str) -> dict[str, Any]:
        """Grant a role and scope to a new actor; the store's first actor opens access control."""

        def decide(_keys: KeySession) -> Change:
            try:
                actors: Actors = self.app.repository.get(ACTORS_ID)  # type: ignore[assignment]
            except AggregateNotFoundError:
                actors = Actors.open(actor=actor)
            actors.grant(name=name, role=role, scope=scope, login=login, actor=actor)
            return Change({"actor": name, "role": role, "scope": scope, "login": login}, [actors])

        return self._write(decide)

    def revoke_actor(self, name: str, reason: str, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            try:
                actors: Actors = self.app.repository.get(ACTORS_ID)  # type: ignore[assignment]
            except AggregateNotFoundError:
                raise NotFound(f"no actor {name}") from None
            actors.revoke(name=name, reason=reason, actor=actor)
            return Change({"actor": name, "revoked": True}, [actors])

        return self._write(decide)

    # ---- reads ----------------------------------------------------------------------------
    def communities(self) -> list[Community]:
        """Every community, in code order, from the log of Established events."""
        topic = Community.Established.TOPIC
        ids: list[UUID] = []
        start = 1
        while True:
            batch = self.recorder.select_notifications(start, 1000, topics=[topic])
            if not batch:
                break
            ids.extend(n.originator_id for n in batch)
            start = batch[-1].id + 1
        found = [self.app.repository.get(i) for i in ids]
        return sorted(found, key=lambda c: c.code)  # type: ignore[no-any-return]

    def open_envelope(
        self, envelope: dict[str, Any] | None, keys: KeySession | None = None, *, where: crypto.Binding
    ) -> str | None:
        """The clear text of the envelope found at `where`, or None when it cannot be opened (no key, erased).

        An envelope that belongs elsewhere (another person, record or field), or whose
        ciphertext was altered, raises crypto.Unopenable: it is never shown as this place's.
        """
        if envelope is None or self.master is None:
            return None
        if not crypto.belongs(envelope, where):
            raise crypto.Unopenable(
                f"the {where.field} of {where.subject} in community {where.community} is sealed for another place"
            )
        session = keys or self.key_session()
        data_key = session.find(where.key_id)
        if data_key is None:
            return None
        return crypto.open_sealed(envelope, data_key, where)


def know_states(community: Community, rows: Iterable[dict[str, Any]]) -> None:
    """Hand record_state rows to the community; a row changed after the version loaded means the
    community is out of date: load again (the change bumped its version, so a save would lose anyway)."""
    states = {}
    for row in rows:
        if row["version"] > community.version:
            raise _Stale
        states[row["record_id"]] = recordstate.compact(row)
    community.know_records(states)


def describe_key(key_id: str) -> str:
    """A key id as a clerk reads it: "resident HZ-001/R1" or "the note of record …"."""
    if key_id.startswith("res:"):
        return f"resident {key_id[4:]}"
    if key_id.startswith("note:"):
        return f"the note of record {key_id[5:]}"
    if key_id.startswith("payee:"):
        community, _sep, year = key_id[6:].rpartition("/")
        return f"the payees of community {community} in {year}"
    return f"data key {key_id}"


def sealed_note(keys: KeySession, community: str, record_id: str, text: str | None) -> tuple[Any, str | None]:
    """A record's note sealed under its data key and its MAC; (None, None) without a note."""
    if text is None:
        return None, None
    where = crypto.note_of(community, record_id)
    data_key = keys.get_or_create(where.key_id)
    return crypto.seal(where, data_key, text), crypto.mac(data_key, text)


def refuse_erased(keys: KeySession, community: str, residents: Iterable[str]) -> None:
    """Nothing new is recorded about an erased resident: their record is gone."""
    ids = {crypto.resident_key_id(community, code): code for code in residents}
    erased = keys.erased_among(ids)
    if erased:
        code = ids[min(erased)]
        raise NotActive(
            f"resident {code} of community {community} was erased; nothing more can be recorded about them"
        )


def check_zone(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        from commands import models

        raise models.Malformed("--tz", f"unknown time zone {zone!r}") from None


def as_day(value: date | datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()
