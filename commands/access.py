"""Who may run which command on which units: the one access policy, enforced in one place.

Access control is off until the store has an actor (`init --admin`, `actor add`).
From then on every command names an actor (`--actor` / TAIZHANG_ACTOR) that
exists and is not revoked; on PostgreSQL the connection's login must be the
actor's. Two checks, both central:

1. Before a command's body runs (`install` wraps every command of the tree):
   the actor's role must hold the command's permission (`POLICY`), and every
   unit the command names or reads — its COMMUNITY argument, its --unit, its
   --community/--township/--county filter, every row of an import file, or the
   whole store when it has no filter — must lie inside the actor's scope. A filter outside the scope is
   refused, never narrowed.
2. Before anything is saved (`ScopeGuard`, called by the application's `save`):
   every aggregate with new events must lie inside the actor's scope, and an
   auditor saves nothing. This catches any write a command's rule did not
   foresee (e.g. `supervise resolve ITEM`, whose unit is the item's).

A command missing from `POLICY` is refused on a store with actors (and a test
walks the command tree so that never ships).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from commands.context import Env, MalformedInput, Refused
from domain.units import UnitRef, parse_unit
from infra.store import HiddenEvent, StoreError

if TYPE_CHECKING:
    from domain.actors import Actor, Actors, Scope

ALL_ROLES = frozenset({"admin", "clerk", "supervisor", "auditor"})

# permission -> the roles that hold it (DESIGN §3 "Who may do what")
PERMISSIONS: dict[str, frozenset[str]] = {
    "record": frozenset({"clerk"}),  # residents, providers, services, imports, visit plans, pairings
    "supervise": frozenset({"supervisor"}),  # duties, targets, supervision items, debriefings, closing periods
    "read": ALL_ROLES,  # ledgers, lists, overdue visits — inside the scope
    "fund": frozenset({"supervisor", "admin"}),  # funding lines: allocate, transfer and return money (issue 15)
    "assess": frozenset({"supervisor", "auditor"}),  # assessments, responsibility audits
    "audit": frozenset({"auditor"}),  # history, verification, seals, proofs
    "audit-access": frozenset({"auditor", "admin"}),  # the access log
    "actors": frozenset({"admin", "auditor"}),  # who may do what
    "admin": frozenset({"admin"}),  # actors, communities, keys, erasure, backup, rebuilding views
    "project": frozenset({"admin", "projector"}),  # keeping the views (on PostgreSQL only their logins may)
    "views": ALL_ROLES | {"projector"},  # how far the views are along the log
}

Target = UnitRef | None  # None: the whole store
Targets = Callable[["Lookup", Mapping[str, Any]], list[Target]]


@dataclass(frozen=True)
class Rule:
    permission: str  # a PERMISSIONS key, or "open": no store, no actor needed
    targets: Targets


class Lookup:
    """Where communities lie (from the write-time `community_units` table) and who the actors are."""

    def __init__(self, recorder: Any, actors: Actors) -> None:
        self.recorder = recorder
        self.actors = actors
        self._units: dict[str, tuple[str, str]] | None = None

    def locate(self, ref: UnitRef) -> UnitRef:
        """A community filled in with its county and township (left empty when unknown)."""
        if ref.level != "community" or ref.county:
            return ref
        if self._units is None:
            self._units = {code: (county, township) for code, county, township in self.recorder.units()}
        county, township = self._units.get(ref.community, ("", ""))
        return UnitRef("community", county=county, township=township, community=ref.community)

    def scope_target(self, scope: str) -> Target:
        """An actor's scope as a unit to check another actor's scope against (None: the city)."""
        from domain.actors import parse_scope

        unit = parse_scope(scope).unit
        return None if unit is None else self.locate(unit)


# ---- deriving the units a command touches ---------------------------------------------------------
def _unit(text: str, option: str) -> UnitRef:
    try:
        return parse_unit(text)
    except ValueError as e:
        raise MalformedInput(f"{option}: {e}") from None


def nothing(_lookup: Lookup, _params: Mapping[str, Any]) -> list[Target]:
    """No unit: the command touches no unit's data (or its writes are checked when saved)."""
    return []


def whole_store(_lookup: Lookup, _params: Mapping[str, Any]) -> list[Target]:
    return [None]


def community_arg(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    return [lookup.locate(UnitRef("community", community=str(params["community"]).strip()))]


def filters(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    """--community / --township / --county (or --unit, or a COMMUNITY argument); none: the whole store."""
    found: list[Target] = []
    if params.get("community"):
        found.append(lookup.locate(UnitRef("community", community=str(params["community"]).strip())))
    if params.get("township"):
        county, sep, name = str(params["township"]).partition("/")
        if not sep:  # the name alone (ledger entries|summary): placed by the store, as the command places it
            from commands.ledger_reads import township_of, townships_named

            name = county.strip()
            county = township_of(townships_named(lookup.recorder.units(), name), name)
        elif not county.strip() or not name.strip():
            raise MalformedInput(f"--township: expected COUNTY/NAME or NAME, got {params['township']!r}")
        found.append(UnitRef("township", county=county.strip(), township=name.strip()))
    if params.get("county"):
        found.append(UnitRef("county", county=str(params["county"]).strip()))
    if params.get("unit"):
        found.append(lookup.locate(_unit(str(params["unit"]), "--unit")))
    return found or [None]


def unit_opt(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    return [lookup.locate(_unit(str(params["unit"]), "--unit"))]


def unit_filter(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    """--unit when given (the funding ledger's reads); none: the whole store."""
    return [lookup.locate(_unit(str(params["unit"]), "--unit"))] if params.get("unit") else [None]


def transfer_units(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    """`funds transfer --from UNIT --to UNIT`: both ends must lie inside the actor's scope."""
    return [
        lookup.locate(_unit(str(params[name]), option))
        for name, option in (("from_unit", "--from"), ("to_unit", "--to"))
    ]


def new_community(_lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    return [UnitRef("township", county=str(params["county"]).strip(), township=str(params["township"]).strip())]


def resident_filter(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    """`audit access --resident COMMUNITY/CODE`: that community; without it, the whole store."""
    value = params.get("resident")
    if not value:
        return [None]
    community, sep, code = str(value).partition("/")
    if not sep or not community.strip() or not code.strip():
        raise MalformedInput(f"--resident: expected COMMUNITY/CODE, got {value!r}")
    return [lookup.locate(UnitRef("community", community=community.strip()))]


def new_actor_scope(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    try:
        return [lookup.scope_target(str(params["scope"]))]
    except ValueError as e:
        raise MalformedInput(f"--scope: {e}") from None


def revoked_actor_scope(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    found = lookup.actors.get(str(params["name"]).strip())
    return [] if found is None else [lookup.scope_target(str(found.scope))]


def import_rows(lookup: Lookup, params: Mapping[str, Any]) -> list[Target]:
    """Every row's community (or, for communities, its township), read before anything is written."""
    from pathlib import Path

    from commands.importer import load_table

    community = params.get("community")
    supplied = frozenset({"community"}) if community else frozenset()
    table = load_table(Path(params["file"]), str(params["kind"]), supplied)
    found: set[Target] = set()
    if community:  # --community: the community of every row without one
        found.add(lookup.locate(UnitRef("community", community=str(community).strip())))
    for row in table.rows:
        values = row.values
        if params["kind"] == "allocations":
            try:  # a malformed unit is the import's to report, row by row
                found.add(lookup.locate(parse_unit(str(values.get("unit") or "").strip())))
            except ValueError:
                pass
        elif params["kind"] == "communities":
            county, township = values.get("county"), values.get("township")
            if county is not None and township is not None:
                found.add(UnitRef("township", county=str(county).strip(), township=str(township).strip()))
        elif values.get("community") is not None:
            found.add(lookup.locate(UnitRef("community", community=str(values["community"]).strip())))
    return sorted(found, key=str)


OPEN = Rule("open", nothing)

# Every command of the tree, by its path. `import` is checked row by row when saved.
POLICY: dict[str, Rule] = {
    "init": OPEN,
    "demo": OPEN,
    "audit check": OPEN,  # checks a proof file against a public key; needs no store
    # administration
    "actor add": Rule("admin", new_actor_scope),
    "actor revoke": Rule("admin", revoked_actor_scope),
    "actor list": Rule("actors", nothing),
    "actor password": Rule("admin", revoked_actor_scope),  # the actor's scope, as for revoke
    "actor token": Rule("admin", revoked_actor_scope),
    "serve": OPEN,  # the server is no actor: it refuses a store without actors, then checks each request
    "community establish": Rule("admin", new_community),
    "keys rotate": Rule("admin", whole_store),
    "resident erase": Rule("admin", community_arg),
    "backup": Rule("admin", whole_store),
    "projections rebuild": Rule("admin", nothing),
    # clerks
    "resident enroll": Rule("record", community_arg),
    "resident update": Rule("record", community_arg),
    "resident depart": Rule("record", community_arg),
    "provider register": Rule("record", community_arg),
    "provider retire": Rule("record", community_arg),
    "service record": Rule("record", community_arg),
    "service correct": Rule("record", community_arg),
    "service void": Rule("record", community_arg),
    "import": Rule("record", import_rows),  # importing communities needs admin: see `_import_permission`
    "visit-plan set": Rule("record", community_arg),
    "visit-plan end": Rule("record", community_arg),
    "pairing": Rule("record", community_arg),
    # supervisors
    "official register": Rule("supervise", nothing),  # a store-wide registry; duties name the units
    "duty assign": Rule("supervise", unit_opt),
    "duty end": Rule("supervise", unit_opt),
    "debrief file": Rule("supervise", unit_opt),
    "target set": Rule("supervise", unit_opt),
    "target decompose": Rule("supervise", unit_opt),  # the parts lie inside --unit
    "supervise open": Rule("supervise", unit_opt),
    "supervise resolve": Rule("supervise", nothing),  # the item's unit is checked when saved
    "ledger close": Rule("supervise", filters),
    # funding lines (资金台账): money is allocated, passed down and returned by those who answer
    # for units (supervisors; admins too, who set a store up); spent and reversed by the clerk
    # of the spending community. A return moves money between levels like a transfer — it is
    # the township's or county's finance office that sends unspent money back, not the village.
    "funds allocate": Rule("fund", unit_opt),
    "funds transfer": Rule("fund", transfer_units),
    "funds return": Rule("fund", unit_opt),
    "funds spend": Rule("record", community_arg),
    "funds reverse": Rule("record", community_arg),
    "ledger reopen": Rule("supervise", filters),
    # reads
    "community list": Rule("read", whole_store),
    "resident list": Rule("read", community_arg),
    "provider list": Rule("read", community_arg),
    "ledger entries": Rule("read", filters),
    "ledger summary": Rule("read", filters),
    "visits overdue": Rule("read", filters),
    "funds ledger": Rule("read", unit_filter),
    "funds trace": Rule("read", unit_filter),
    "projections status": Rule("views", nothing),
    "projections run": Rule("project", nothing),  # on SQLite every query also catches the views up
    # assessments
    "assess run": Rule("assess", whole_store),  # scores every unit of a level
    "assess explain": Rule("assess", unit_opt),
    "audit responsibility": Rule("assess", unit_opt),
    # the cost of care: money per service record and resident (--unit inside the scope; none: the whole store)
    "funds cost": Rule("read", filters),
    # audits
    "audit history": Rule("audit", filters),
    "audit verify": Rule("audit", filters),
    "audit seal": Rule("audit", filters),
    "audit prove": Rule("audit", filters),
    "audit keygen": Rule("audit", nothing),
    "audit access": Rule("audit-access", resident_filter),
}


# Every command that writes events: each needs --actor, judged before the store is opened
# (DESIGN §5: malformed input, exit 2, on a store with actors or without). A test checks
# this list against the commands whose body calls `Env.writer()`.
WRITES: frozenset[str] = frozenset(
    {
        "actor add",
        "actor revoke",
        "community establish",
        "keys rotate",
        "resident erase",
        "resident enroll",
        "resident update",
        "resident depart",
        "provider register",
        "provider retire",
        "service record",
        "service correct",
        "service void",
        "import",
        "visit-plan set",
        "visit-plan end",
        "pairing",
        "official register",
        "duty assign",
        "duty end",
        "debrief file",
        "target set",
        "target decompose",
        "supervise open",
        "supervise resolve",
        "ledger close",
        "ledger reopen",
        "funds allocate",
        "funds transfer",
        "funds spend",
        "funds reverse",
        "funds return",
    }
)


def _import_permission(params: Mapping[str, Any]) -> str:
    kind = params.get("kind")
    if kind == "communities":
        return "admin"
    return "fund" if kind == "allocations" else "record"


# ---- the checks ----------------------------------------------------------------------------------------
def denied(message: str) -> Refused:
    return Refused(f"permission denied: {message}")


def load_actors(service: Any) -> Actors | None:
    from eventsourcing.application import AggregateNotFoundError

    from domain.actors import ACTORS_ID

    try:
        return service.app.repository.get(ACTORS_ID)  # type: ignore[no-any-return]
    except AggregateNotFoundError:
        return None


def _filter_for(scope: Scope) -> tuple[str, str] | None:
    """The filter option (and value) that keeps a query inside the scope."""
    unit = scope.unit
    if unit is None:
        return None
    if unit.level == "county":
        return "--county", unit.county
    if unit.level == "township":
        return "--township", f"{unit.county}/{unit.township}"
    return "--community", unit.community


def _where(target: Target) -> str:
    if target is None:
        return "the whole store"
    if target.level == "community" and not target.county:
        return f"community:{target.community} (not in the store)"
    return str(target)


def check_login(service: Any, actor: Actor) -> None:
    """On PostgreSQL the connection's login must be the actor's."""
    if service.store.backend != "postgres":
        return
    login = service.recorder.session_user()
    if actor.login is None:
        raise denied(f"{actor.describe()} has no database login, but this connection is logged in as {login}")
    if actor.login != login:
        raise denied(
            f"{actor.describe()} is bound to database login {actor.login}, but this connection is logged in as {login}"
        )


def authorise(env: Env, path: str, params: Mapping[str, Any]) -> None:
    """Refuse the command unless the store's policy lets its actor run it on these units."""
    rule = POLICY.get(path)
    if rule is not None and rule.permission == "open":
        return
    if rule is not None and env.open_to_all():
        return  # a SQLite store without actors: checked without opening the application
    try:
        service = env.service()
    except StoreError:
        return  # no store: nothing to protect, and the command says so itself
    try:
        actors = load_actors(service)
    except HiddenEvent:
        if path == "audit verify":
            return  # the actors cannot be trusted; the one command that names what was done to them runs
        raise
    if actors is None:
        return  # access control is off until the store has an actor
    name = (env.actor or "").strip()
    if not name:
        raise denied("this store has access control; name yourself with --actor or TAIZHANG_ACTOR")
    actor = actors.get(name)
    if actor is None:
        raise denied(f"actor {name} is not known to this store")
    who = actor.describe()
    if actor.revoked:
        raise denied(f"{who} was revoked")
    check_login(service, actor)
    lookup = Lookup(service.recorder, actors)
    service.app.guard = ScopeGuard(actor, lookup)
    permit(actor, lookup, path, params)


def permit(actor: Actor, lookup: Lookup, path: str, params: Mapping[str, Any]) -> None:
    """Refuse unless `actor` (known, not revoked) may run `path` on the units `params` name.

    The one decision both doors take: the CLI through `authorise`, the web through each
    route's rule (commands.web.policy), with the same POLICY, permissions and scopes.
    """
    rule = POLICY.get(path)
    who = actor.describe()
    if rule is None:
        raise denied(f"{who} may not run '{path}': no access policy covers it (please report it)")
    permission = _import_permission(params) if path == "import" else rule.permission
    allowed = PERMISSIONS[permission]
    if actor.role not in allowed:
        raise denied(f"{who} may not run '{path}' (it needs {' or '.join(sorted(allowed))})")
    for target in rule.targets(lookup, params):
        if actor.scope.covers(target):
            continue
        hint = _filter_for(actor.scope) if rule.targets in (filters, resident_filter) else None
        if rule.targets is unit_filter and actor.scope.unit is not None:
            hint = ("--unit", str(actor.scope.unit))
        if hint is not None:
            option, value = hint
            raise denied(f"{who} may not run '{path}' on {_where(target)}: outside its scope; add {option} {value}")
        raise denied(f"{who} may not run '{path}' on {_where(target)}: outside its scope")


class ScopeGuard:
    """Called with the aggregates about to be saved: each must lie inside the actor's scope."""

    def __init__(self, actor: Actor, lookup: Lookup) -> None:
        self.actor = actor
        self.lookup = lookup

    def __call__(self, aggregates: Sequence[Any], written: Sequence[Any] = ()) -> None:
        """`written`: aggregates that events were made for without pending them (a bulk import's)."""
        changed = [a for a in aggregates if getattr(a, "pending_events", None)] + list(written)
        if not changed:
            return
        if self.actor.role == "auditor":
            raise denied(f"{self.actor.describe()} may not change the ledger: auditors write nothing")
        if self.actor.role == "projector":
            raise denied(
                f"{self.actor.describe()} may not change the ledger: the projection worker writes only the views"
            )
        for aggregate in changed:
            for target in self.targets(aggregate):
                if not self.actor.scope.covers(target):
                    raise denied(f"{self.actor.describe()} may not write to {_where(target)}: outside its scope")

    def targets(self, aggregate: Any) -> Iterable[Target]:
        from domain.accountability import Official, SupervisionItem, UnitTargets
        from domain.actors import Actors
        from domain.community import Community
        from domain.funds import FundingLine, Voucher

        if isinstance(aggregate, FundingLine):
            return [self.lookup.locate(parse_unit(u)) for u in sorted(_funds_units(aggregate.pending_events))]
        if isinstance(aggregate, Voucher):
            return [self.lookup.locate(parse_unit(aggregate.community))]
        if isinstance(aggregate, Community):
            return [
                UnitRef("community", county=aggregate.county, township=aggregate.township, community=aggregate.code)
            ]
        if isinstance(aggregate, (UnitTargets, SupervisionItem)):
            return [self.lookup.locate(parse_unit(aggregate.unit))]
        if isinstance(aggregate, Official):
            units = {str(unit) for e in aggregate.pending_events if (unit := getattr(e, "unit", None))}
            return [self.lookup.locate(parse_unit(u)) for u in sorted(units)]
        if isinstance(aggregate, Actors):
            found: list[Target] = []
            for event in aggregate.pending_events:
                if isinstance(event, Actors.Granted):
                    found.append(self.lookup.scope_target(event.scope))
                elif isinstance(event, Actors.Revoked):
                    found.append(self.lookup.scope_target(aggregate.entries[event.name]["scope"]))
            return found
        return [None]  # an aggregate this guard does not know: only a city-wide actor may write it


def _funds_units(events: Iterable[Any]) -> set[str]:
    """Every unit a funding line's new events move money of: both ends of a transfer."""
    units: set[str] = set()
    for event in events:
        for name in ("unit", "from_unit", "to_unit", "community"):
            value = getattr(event, name, None)
            if isinstance(value, str) and value:
                units.add(value)
    return units


# ---- installing the check on every command --------------------------------------------------------------
def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Every runnable command of the tree, by its path ("ledger entries")."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found.update(command_paths(command, path))
        else:
            found[" ".join(path)] = command
    return found


def install(root: click.Group) -> None:
    """Wrap every command's callback so `authorise` runs after parsing and before its body."""
    install_commands(root.commands)


def install_commands(commands: Mapping[str, click.Command]) -> None:
    """`install` for these top-level commands (the root loads its commands lazily)."""
    paths: dict[str, click.Command] = {}
    for name, command in commands.items():
        if isinstance(command, click.Group):
            paths.update(command_paths(command, (name,)))
        else:
            paths[name] = command
    for path, command in paths.items():
        callback = command.callback
        if callback is None or getattr(callback, "__taizhang_guarded__", False):
            continue
        command.callback = _guarded(path, callback)


def _guarded(path: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        env = ctx.find_object(Env)
        if env is not None:
            if path in WRITES:
                env.require_actor()  # malformed input: before the store is read
            authorise(env, path, ctx.params)
        return callback(*args, **kwargs)

    run.__taizhang_guarded__ = True  # type: ignore[attr-defined]
    return run
