"""Access control through the CLI: every role × scope × command, on both stores.

One store per backend for the module (`acl`), with actors of every role at every
level of scope. Each case states, from DESIGN §3 "Who may do what", which roles
may run the command and which unit it touches; the test derives the verdict for
every actor. A refused command exits 1 with one line `permission denied: …` that
names the actor, its role and its scope, and changes no row of the store; an
allowed one is never refused for permission (it may still fail on the ledger's
own rules, e.g. a code already taken).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from commands.access import POLICY, WRITES, command_paths
from commands.cli import cli
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import COMMUNITY, Cli, backend_of, error_line, establish_args, store_counts, write_csv

ADMIN = "boss"
HZ1 = COMMUNITY  # HZ-001 in 八步区/贺街镇
HZ2 = {**COMMUNITY, "code": "HZ-002", "name": "莲塘社区", "township": "莲塘镇", "village": "莲塘村", "natural_villages": []}
QT = {**COMMUNITY, "code": "QT-2", "name": "望高社区", "county": "平桂区", "township": "望高镇", "village": "望高村", "natural_villages": []}

# name -> (role, scope)
ACTORS = {
    "boss": ("admin", "city"),
    "admin-bb": ("admin", "county:八步区"),
    "clerk-city": ("clerk", "city"),
    "clerk-hj": ("clerk", "township:八步区/贺街镇"),
    "clerk-c1": ("clerk", "community:HZ-001"),
    "sup-bb": ("supervisor", "county:八步区"),
    "sup-city": ("supervisor", "city"),
    "aud-city": ("auditor", "city"),
    "aud-pg": ("auditor", "county:平桂区"),
    "worker": ("projector", "city"),
}
REVOKED = "gone"

# Where each community lies, as (county, township).
PLACES = {"HZ-001": ("八步区", "贺街镇"), "HZ-002": ("八步区", "莲塘镇"), "QT-2": ("平桂区", "望高镇")}


@dataclass
class Acl:
    cli: Cli
    record_hz: str
    record_qt: str
    tmp: Path

    @property
    def url(self) -> str:
        return self.cli.url


def _login_args(url: str) -> list[str]:
    if backend_of(url) != "postgres":
        return []
    return ["--login", url.split("://", 1)[1].split(":", 1)[0]]


def build(cli: Cli, tmp: Path) -> Acl:
    record_hz, record_qt = str(uuid.uuid4()), str(uuid.uuid4())
    cli.ok("init", "--admin", ADMIN)
    for community in (HZ1, HZ2, QT):
        cli.ok(*establish_args(community), actor=ADMIN)
    login = _login_args(cli.url)
    for name, (role, scope) in ACTORS.items():
        if name != ADMIN:
            cli.ok("actor", "add", name, "--role", role, "--scope", scope, *login, actor=ADMIN)
    cli.ok("actor", "add", REVOKED, "--role", "clerk", "--scope", "city", *login, actor=ADMIN)
    cli.ok("actor", "revoke", REVOKED, "--reason", "调离岗位", actor=ADMIN)
    for code in ("HZ-001", "QT-2"):
        cli.ok("resident", "enroll", code, "R1", "--name", "张秀英", "--category", "留守老人", actor="clerk-city")
        cli.ok("provider", "register", code, "P1", "--name", "李建国", "--role", "党员", actor="clerk-city")
    for code, record in (("HZ-001", record_hz), ("QT-2", record_qt)):
        cli.ok("service", "record", code, "--kind", "life_care", "--resident", "R1", "--provider", "P1",
               "--at", "2026-03-05 09:30", "--minutes", "45", "--record-id", record, actor="clerk-city")  # fmt: skip
    cli.ok("official", "register", "O-1", "--name", "黄志明", "--title", "贺街镇党委书记", actor="sup-city")
    cli.ok("projections", "run", actor=ADMIN)
    return Acl(cli, record_hz, record_qt, tmp)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def acl(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Acl]:
    tmp = tmp_path_factory.mktemp(f"acl-{request.param}")
    if request.param == "sqlite":
        yield build(Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key"), tmp)
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield build(Cli(url, tmp / "taizhang.key"), tmp)
    finally:
        drop_pg_database(admin, url)


# ---- the matrix ---------------------------------------------------------------------------------------
CLERK, SUPERVISOR, AUDITOR, ADMIN_ROLE = {"clerk"}, {"supervisor"}, {"auditor"}, {"admin"}
PROJECTOR = {"projector"}  # the projection worker: keeps the views, reads nothing through the CLI, records nothing
EVERYONE = {"admin", "clerk", "supervisor", "auditor"}
WHOLE = ("city",)  # the command reads or writes the whole store
NONE = ()  # the command touches no unit's data


def community(code: str) -> tuple[str, ...]:
    return ("community", *PLACES[code], code)


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    roles: set[str]
    target: tuple[str, ...]  # WHOLE, NONE, ("county", C), ("township", C, T) or community(code)


def cases(acl: Acl, tmp: Path) -> list[Case]:
    residents_hz = write_csv(tmp / "residents-hz.csv", [["community", "code", "name"], ["HZ-001", "R7", "王小明"]])
    residents_mixed = write_csv(
        tmp / "residents-mixed.csv", [["community", "code", "name"], ["HZ-001", "R8", "王小明"], ["QT-2", "R8", "李华"]]
    )
    communities = write_csv(
        tmp / "communities.csv",
        [["code", "name", "county", "township", "village"], ["HZ-009", "新社区", "八步区", "贺街镇", "新村"]],
    )
    login = tuple(_login_args(acl.url))
    at = ("--at", "2026-03-06 10:00", "--minutes", "30")
    sealing_key, checkpoint = tmp / "seal.key", tmp / "checkpoint.json"
    if not checkpoint.exists():  # the sealing office's key and one checkpoint, for seal and prove
        acl.cli.ok("audit", "keygen", "--key-file", str(sealing_key), actor="aud-city")
        acl.cli.ok("audit", "seal", "--key-file", str(sealing_key), "--output", str(checkpoint), actor="aud-city")
    fresh = uuid.uuid4().hex[:6]
    return [
        # admin
        Case("community-establish", ("community", "establish", "HZ-003", "--name", "n", "--county", "八步区",
             "--township", "贺街镇", "--village", "v", "--established-on", "2026-01-01"), ADMIN_ROLE,
             ("township", "八步区", "贺街镇")),  # fmt: skip
        Case("import-communities", ("import", "communities", str(communities)), ADMIN_ROLE, ("township", "八步区", "贺街镇")),
        Case("actor-add-qt", ("actor", "add", f"new-{uuid.uuid4().hex[:6]}", "--role", "clerk", "--scope", "community:QT-2", *login),
             ADMIN_ROLE, community("QT-2")),  # fmt: skip
        Case("actor-add-city", ("actor", "add", f"new-{uuid.uuid4().hex[:6]}", "--role", "auditor", "--scope", "city", *login),
             ADMIN_ROLE, WHOLE),  # fmt: skip
        Case("actor-revoke-unknown", ("actor", "revoke", "ghost", "--reason", "r"), ADMIN_ROLE, NONE),
        Case("actor-list", ("actor", "list"), {"admin", "auditor"}, NONE),
        # no input: an allowed admin reaches the prompt and stops there (exit 1, aborted); nothing is written
        Case("actor-password-hj", ("actor", "password", "clerk-hj"), ADMIN_ROLE, ("township", "八步区", "贺街镇")),
        Case("actor-password-city", ("actor", "password", "sup-city"), ADMIN_ROLE, WHOLE),
        Case("actor-token-hj", ("actor", "token", "clerk-hj", "--days", "1"), ADMIN_ROLE, ("township", "八步区", "贺街镇")),
        Case("erase-qt", ("resident", "erase", "QT-2", "R99", "--reason", "r"), ADMIN_ROLE, community("QT-2")),
        Case("backup", ("backup", str(tmp / f"backup-{uuid.uuid4().hex[:6]}.db")), ADMIN_ROLE, WHOLE),
        Case("access-log-qt", ("audit", "access", "--resident", "QT-2/R1"), {"admin", "auditor"}, community("QT-2")),
        Case("access-log-all", ("audit", "access"), {"admin", "auditor"}, WHOLE),
        Case("projections-rebuild", ("projections", "rebuild"), ADMIN_ROLE, NONE),
        # clerks
        Case("enroll-hz", ("resident", "enroll", "HZ-001", "R5", "--name", "赵六"), CLERK, community("HZ-001")),
        Case("enroll-qt", ("resident", "enroll", "QT-2", "R5", "--name", "赵六"), CLERK, community("QT-2")),
        Case("update-hz2", ("resident", "update", "HZ-002", "R1", "--grid", "G1"), CLERK, community("HZ-002")),
        Case("depart-qt", ("resident", "depart", "QT-2", "R9", "--reason", "moved", "--on", "2026-02-01"), CLERK,
             community("QT-2")),  # fmt: skip
        Case("provider-register-hz", ("provider", "register", "HZ-001", "P5", "--name", "周", "--role", "cadre"), CLERK,
             community("HZ-001")),  # fmt: skip
        Case("provider-retire-qt", ("provider", "retire", "QT-2", "P9", "--on", "2026-02-01"), CLERK, community("QT-2")),
        Case("record-hz", ("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
             *at, "--record-id", str(uuid.uuid4())), CLERK, community("HZ-001")),  # fmt: skip
        Case("record-qt", ("service", "record", "QT-2", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
             *at, "--record-id", str(uuid.uuid4())), CLERK, community("QT-2")),  # fmt: skip
        Case("correct-qt", ("service", "correct", "QT-2", acl.record_qt, "--minutes", "50", "--reason", "r"), CLERK,
             community("QT-2")),  # fmt: skip
        Case("void-hz", ("service", "void", "HZ-001", str(uuid.uuid4()), "--reason", "r"), CLERK, community("HZ-001")),
        Case("import-residents-hz", ("import", "residents", str(residents_hz)), CLERK, community("HZ-001")),
        Case("import-residents-mixed", ("import", "residents", str(residents_mixed), "--skip-invalid"), CLERK,
             community("QT-2")),  # fmt: skip
        Case("visit-plan-hz", ("visit-plan", "set", "HZ-001", "R1", "--every", "14", "--provider", "P1", "--from",
             "2026-01-01"), CLERK, community("HZ-001")),  # fmt: skip
        Case("visit-plan-end-qt", ("visit-plan", "end", "QT-2", "R1", "--on", "2026-06-01"), CLERK, community("QT-2")),
        Case("pairing-qt", ("pairing", "add", "QT-2", "--provider", "P1", "--resident", "R1", "--on", "2026-01-01"), CLERK,
             community("QT-2")),  # fmt: skip
        # supervisors
        Case("official-register", ("official", "register", f"O-{uuid.uuid4().hex[:6]}", "--name", "n", "--title", "t"),
             SUPERVISOR, NONE),  # fmt: skip
        Case("duty-hj", ("duty", "assign", "O-1", "--unit", "township:八步区/贺街镇", "--duty", "contact_point", "--from",
             "2026-01-01"), SUPERVISOR, ("township", "八步区", "贺街镇")),  # fmt: skip
        Case("duty-end-qt", ("duty", "end", "O-1", "--unit", "community:QT-2", "--duty", "secretary"), SUPERVISOR,
             community("QT-2")),  # fmt: skip
        Case("debrief-bb", ("debrief", "file", "O-1", "--unit", "county:八步区", "--period", "2026-Q1", "--summary", "s"),
             SUPERVISOR, ("county", "八步区")),  # fmt: skip
        Case("target-pg", ("target", "set", "--unit", "county:平桂区", "--period", "2026-Q1", "--metric", "records",
             "--at-least", "10"), SUPERVISOR, ("county", "平桂区")),  # fmt: skip
        Case("target-decompose-bb", ("target", "decompose", "--unit", "county:八步区", "--period", "2026-Q1", "--metric",
             "records", "--into", "township:八步区/贺街镇=5"), SUPERVISOR, ("county", "八步区")),  # fmt: skip
        Case("supervise-hz", ("supervise", "open", "--unit", "community:HZ-001", "--item", "补齐", "--due", "2026-12-01"),
             SUPERVISOR, community("HZ-001")),  # fmt: skip
        Case("close-pg", ("ledger", "close", "--unit", "county:平桂区", "--period", "2025-12", "--reason", "r"), SUPERVISOR,
             ("county", "平桂区")),  # fmt: skip
        Case("reopen-hj", ("ledger", "reopen", "--unit", "township:八步区/贺街镇", "--period", "2025-12", "--reason", "r"),
             SUPERVISOR, ("township", "八步区", "贺街镇")),  # fmt: skip
        Case("supervise-resolve-unknown", ("supervise", "resolve", str(uuid.uuid4()), "--note", "n"), SUPERVISOR, NONE),
        # funding lines (issue 15): supervisors and admins allocate, transfer and return; clerks spend and reverse
        Case("funds-allocate-bb", ("funds", "allocate", "--department", "妇联", "--document", f"F-{fresh}", "--purpose",
             "p", "--amount", "1", "--unit", "county:八步区", "--on", "2026-01-15"), {"supervisor", "admin"},
             ("county", "八步区")),  # fmt: skip
        Case("funds-transfer-hj", ("funds", "transfer", "--department", "妇联", "--document", "F-none", "--from",
             "township:八步区/贺街镇", "--to", "community:HZ-001", "--amount", "1"), {"supervisor", "admin"},
             ("township", "八步区", "贺街镇")),  # fmt: skip
        Case("funds-return-qt", ("funds", "return", "--department", "妇联", "--document", "F-none", "--unit",
             "community:QT-2", "--amount", "1", "--reason", "r"), {"supervisor", "admin"}, community("QT-2")),  # fmt: skip
        Case("funds-spend-hz", ("funds", "spend", "HZ-001", "--department", "妇联", "--document", "F-none", "--amount",
             "1", "--voucher", "V1", "--purpose", "p"), CLERK, community("HZ-001")),  # fmt: skip
        Case("funds-reverse-qt", ("funds", "reverse", "QT-2", "V1", "--reason", "r"), CLERK, community("QT-2")),
        # reads
        Case("community-list", ("community", "list"), EVERYONE, WHOLE),
        Case("resident-list-qt", ("resident", "list", "QT-2"), EVERYONE, community("QT-2")),
        Case("provider-list-hz", ("provider", "list", "HZ-001"), EVERYONE, community("HZ-001")),
        Case("entries-all", ("ledger", "entries"), EVERYONE, WHOLE),
        Case("entries-hj", ("ledger", "entries", "--township", "八步区/贺街镇"), EVERYONE, ("township", "八步区", "贺街镇")),
        Case("entries-hz", ("ledger", "entries", "--community", "HZ-001"), EVERYONE, community("HZ-001")),
        Case("summary-by-county", ("ledger", "summary", "--by", "county"), EVERYONE, WHOLE),
        Case("summary-pg", ("ledger", "summary", "--by", "county", "--county", "平桂区"), EVERYONE, ("county", "平桂区")),
        Case("overdue-bb", ("visits", "overdue", "--county", "八步区"), EVERYONE, ("county", "八步区")),
        Case("funds-ledger-all", ("funds", "ledger", "--by", "unit"), EVERYONE, WHOLE),
        Case("funds-ledger-pg", ("funds", "ledger", "--by", "line", "--unit", "county:平桂区"), EVERYONE,
             ("county", "平桂区")),  # fmt: skip
        Case("funds-trace-hz", ("funds", "trace", "民政局/无此文号", "--unit", "community:HZ-001"), EVERYONE,
             community("HZ-001")),  # fmt: skip
        Case("projections-status", ("projections", "status"), EVERYONE | PROJECTOR, NONE),
        Case("projections-run", ("projections", "run"), ADMIN_ROLE | PROJECTOR, NONE),
        # assessments
        Case("assess-run", ("assess", "run", "--period", "2026-03", "--level", "township"), {"supervisor", "auditor"}, WHOLE),
        Case("assess-explain-hj", ("assess", "explain", "--period", "2026-03", "--unit", "township:八步区/贺街镇",
             "--metric", "coverage"), {"supervisor", "auditor"}, ("township", "八步区", "贺街镇")),  # fmt: skip
        Case("history-hz", ("audit", "history", "HZ-001"), AUDITOR, community("HZ-001")),
        Case("verify-all", ("audit", "verify"), AUDITOR, WHOLE),
        Case("verify-qt", ("audit", "verify", "--community", "QT-2"), AUDITOR, community("QT-2")),
        Case("keygen", ("audit", "keygen", "--key-file", str(tmp / f"key-{fresh}")), AUDITOR, NONE),
        Case("seal", ("audit", "seal", "--key-file", str(sealing_key), "--output", str(tmp / f"cp-{fresh}.json")),
             AUDITOR, WHOLE),  # fmt: skip
        Case("prove", ("audit", "prove", acl.record_qt, "--checkpoint", str(checkpoint), "--output",
             str(tmp / f"bundle-{fresh}.json")), AUDITOR, WHOLE),  # fmt: skip
        Case("prove-qt", ("audit", "prove", acl.record_qt, "--community", "QT-2", "--checkpoint", str(checkpoint),
             "--output", str(tmp / f"bundle-qt-{fresh}.json")), AUDITOR, community("QT-2")),  # fmt: skip
        Case("history-qt", ("audit", "history", "QT-2"), AUDITOR, community("QT-2")),
        Case("history-line", ("audit", "history", "--line", "民政局/贺民发〔2026〕1号"), AUDITOR, WHOLE),
        Case("history-line-bb", ("audit", "history", "--line", "民政局/贺民发〔2026〕1号", "--unit", "county:八步区"),
             AUDITOR, ("county", "八步区")),  # fmt: skip
        # the cost of care (funds views)
        Case("funds-cost-all", ("funds", "cost", "--by", "township", "--period", "2026-03"), EVERYONE, WHOLE),
        Case("funds-cost-pg", ("funds", "cost", "--by", "community", "--unit", "county:平桂区", "--period", "2026-03"),
             EVERYONE, ("county", "平桂区")),  # fmt: skip
        Case("responsibility-pg", ("audit", "responsibility", "--unit", "county:平桂区", "--period", "2026-03"),
             {"supervisor", "auditor"}, ("county", "平桂区")),  # fmt: skip
    ]


def covers(scope: str, target: tuple[str, ...]) -> bool:
    """DESIGN §3, restated independently of commands.access."""
    if target == NONE or scope == "city":
        return True
    if target == WHOLE:
        return False
    level, _, rest = scope.partition(":")
    if level == "county":
        return target[1] == rest
    if level == "township":
        return target[0] in ("township", "community") and "/".join(target[1:3]) == rest
    return target[0] == "community" and target[3] == rest


def test_every_command_has_an_access_policy() -> None:
    """A new command without an entry in commands.access.POLICY fails here (and is refused at run time)."""
    paths = set(command_paths(cli))
    missing = sorted(paths - set(POLICY))
    assert not missing, f"commands without an access policy: {missing}"


def test_the_matrix_covers_every_command_with_a_store(acl: Acl) -> None:
    needed = {path for path in command_paths(cli) if POLICY[path].permission != "open"} - {"keys rotate"}
    untested = needed - {_path(case.args) for case in cases(acl, acl.tmp)}
    assert untested == set(), f"commands missing from the permission matrix: {sorted(untested)}"


def _path(args: tuple[str, ...]) -> str:
    paths = set(command_paths(cli))
    for n in (2, 1):
        if " ".join(args[:n]) in paths:
            return " ".join(args[:n])
    raise AssertionError(f"no command for {args}")


def test_permission_matrix(acl: Acl) -> None:
    """Every role × scope × command: refused ones exit 1 naming actor, role and scope, and write nothing."""
    failures: list[str] = []
    for case in cases(acl, acl.tmp):
        for name, (role, scope) in ACTORS.items():
            allowed = role in case.roles and covers(scope, case.target)
            before = store_counts(acl.url)
            result = acl.cli(*case.args, actor=name)
            refused = result.exit_code == 1 and "permission denied" in result.stderr
            if allowed and refused:
                failures.append(f"{case.id} by {name}: refused: {result.stderr.strip()}")
            elif not allowed:
                if not refused:
                    failures.append(f"{case.id} by {name}: not refused (exit {result.exit_code}) {result.stderr.strip()}")
                    continue
                line = error_line(result, 1, "permission denied", f"actor {name} ({role}, {scope})")
                if store_counts(acl.url) != before:
                    failures.append(f"{case.id} by {name}: refused but wrote: {line}")
            elif result.exit_code not in (0, 1) or "Traceback" in result.output:
                failures.append(f"{case.id} by {name}: exit {result.exit_code}: {result.output}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("actor", "needle"),
    [(None, "name yourself with --actor"), ("nobody", "actor nobody is not known"), (REVOKED, f"actor {REVOKED} (clerk, city) was revoked")],
)
@pytest.mark.parametrize("args", [("community", "list"), ("ledger", "entries", "--community", "HZ-001"), ("resident", "enroll", "HZ-001", "R6", "--name", "n")])
def test_every_command_needs_a_known_unrevoked_actor(acl: Acl, actor: str | None, needle: str, args: tuple[str, ...]) -> None:
    before = store_counts(acl.url)
    if actor is None and _path(args) in WRITES:  # a write without --actor is malformed input, whatever the store
        error_line(acl.cli(*args, actor=actor), 2, "--actor: required for commands that write")
    else:
        error_line(acl.cli(*args, actor=actor), 1, "permission denied", needle)
    assert store_counts(acl.url) == before


def _write_cases(acl: Acl) -> list[Case]:
    found = [case for case in cases(acl, acl.tmp) if _path(case.args) in WRITES]
    assert {_path(case.args) for case in found} | {"keys rotate"} == WRITES
    return found


@pytest.mark.parametrize("actor", [None, " "], ids=["absent", "blank"])
def test_a_write_without_an_actor_is_malformed_input_on_a_store_with_actors(acl: Acl, actor: str | None) -> None:
    """DESIGN §5: judged without the store, so exit 2 and the hint, not a permission refusal (exit 1)."""
    for case in [*_write_cases(acl), Case("keys-rotate", ("keys", "rotate"), ADMIN_ROLE, WHOLE)]:
        before = store_counts(acl.url)
        result = acl.cli(*case.args, actor=actor)
        error_line(result, 2, "--actor: required for commands that write (or set TAIZHANG_ACTOR)")
        assert store_counts(acl.url) == before, case.id


def test_a_write_without_an_actor_is_judged_before_the_store_is_read(acl: Acl, tmp_path: Path) -> None:
    """The same answer on a store without actors, on a missing store and on a server nobody listens on."""
    fresh = Cli(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path / "fresh.key")
    fresh.ok("init")
    missing = Cli(f"sqlite:///{tmp_path / 'missing.db'}", tmp_path / "missing.key")
    nowhere = Cli("postgresql://nobody:secret@127.0.0.1:9/nothing", tmp_path / "nowhere.key")
    for case in [*_write_cases(acl), Case("keys-rotate", ("keys", "rotate"), ADMIN_ROLE, WHOLE)]:
        for where in (fresh, missing, nowhere):
            error_line(where(*case.args, actor=None), 2, "--actor: required for commands that write")
    assert not (tmp_path / "missing.db").exists()


def test_the_write_commands_are_the_ones_that_need_an_actor() -> None:
    """commands.access.WRITES lists exactly the commands whose body calls Env.writer()."""
    import inspect

    calls_writer = {
        path
        for path, command in command_paths(cli).items()
        if "env.writer()" in inspect.getsource(inspect.unwrap(command.callback))  # type: ignore[arg-type]
    }
    assert calls_writer == WRITES


def test_a_filter_outside_the_scope_is_refused_not_narrowed(acl: Acl) -> None:
    line = error_line(acl.cli("ledger", "summary", "--by", "county", actor="clerk-hj"), 1, "permission denied")
    assert "the whole store" in line and "add --township 八步区/贺街镇" in line
    line = error_line(acl.cli("ledger", "entries", "--county", "平桂区", actor="clerk-hj"), 1, "county:平桂区")
    assert "add --township 八步区/贺街镇" in line
    # Inside the scope the answer is the same as a city-wide reader's.
    mine = acl.cli.json("ledger", "entries", "--township", "八步区/贺街镇", actor="clerk-hj")
    theirs = acl.cli.json("ledger", "entries", "--township", "八步区/贺街镇", actor="aud-city")
    assert mine == theirs and {row["community"] for row in mine} == {"HZ-001"}


def test_an_import_with_one_row_outside_the_scope_writes_nothing(acl: Acl) -> None:
    path = write_csv(acl.tmp / "two.csv", [["community", "code", "name"], ["HZ-001", "R20", "甲"], ["QT-2", "R20", "乙"]])
    before = store_counts(acl.url)
    for extra in ((), ("--skip-invalid",)):
        error_line(acl.cli("import", "residents", str(path), *extra, actor="clerk-hj"), 1, "community:QT-2", "actor clerk-hj")
    assert store_counts(acl.url) == before


def test_an_import_for_community_outside_the_scope_writes_nothing(acl: Acl) -> None:
    """A sheet without 社区 column names no community: --community is checked like a row's own."""
    path = write_csv(acl.tmp / "village.csv", [["code", "name"], ["R21", "甲"]])
    before = store_counts(acl.url)
    for extra in ((), ("--skip-invalid",)):
        args = ("import", "residents", str(path), "--community", "QT-2", *extra)
        error_line(acl.cli(*args, actor="clerk-hj"), 1, "community:QT-2", "actor clerk-hj")
    assert store_counts(acl.url) == before


def test_a_write_is_checked_against_the_unit_it_changes(acl: Acl) -> None:
    """`supervise resolve ITEM` names no unit: the item's own unit is checked when it is saved."""
    opened = acl.cli.json("supervise", "open", "--unit", "county:平桂区", "--item", "i", "--due", "2026-12-01", actor="sup-city")
    before = store_counts(acl.url)
    error_line(acl.cli("supervise", "resolve", opened["item_id"], "--note", "n", actor="sup-bb"), 1,
               "permission denied", "county:平桂区")  # fmt: skip
    assert store_counts(acl.url) == before


def test_grants_and_revocations_are_events_saying_who_and_when(acl: Acl) -> None:
    rows = {row["actor"]: row for row in acl.cli.json("actor", "list", actor="aud-city")}
    assert set(rows) >= {*ACTORS, REVOKED}  # and those the matrix added
    assert rows["clerk-hj"]["role"] == "clerk" and rows["clerk-hj"]["scope"] == "township:八步区/贺街镇"
    assert rows["clerk-hj"]["granted_by"] == ADMIN and rows["clerk-hj"]["granted_at"].endswith("+08:00")  # the store's zone
    assert rows[REVOKED]["status"] == "revoked" and rows[REVOKED]["revoked_by"] == ADMIN
    assert rows[REVOKED]["reason"] == "调离岗位" and rows[REVOKED]["revoked_at"] >= rows[REVOKED]["granted_at"]  # one offset: text order is time order
    topics = _topics(acl.url)
    assert topics.count("taizhang:Actors.Revoked") >= 1 and topics.count("taizhang:Actors.Granted") >= len(ACTORS) + 1
    assert topics[0] == "taizhang:Actors.Opened"  # init --admin opened access control before anything else


def _topics(url: str) -> list[str]:
    if backend_of(url) == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            return [r[0] for r in conn.execute("SELECT topic FROM stored_events ORDER BY rowid")]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT topic FROM taizhang_events ORDER BY notification_id")]


def test_actor_rules(acl: Acl) -> None:
    error_line(acl.cli("actor", "add", "clerk-hj", "--role", "clerk", "--scope", "city", *_login_args(acl.url), actor=ADMIN),
               1, "already granted")  # fmt: skip
    error_line(acl.cli("actor", "revoke", ADMIN, "--reason", "r", actor="admin-bb"), 1, "permission denied", "whole store")
    error_line(acl.cli("actor", "add", "x", "--role", "king", "--scope", "city", actor=ADMIN), 2, "--role")
    error_line(acl.cli("actor", "add", "x", "--role", "clerk", "--scope", "village:1", actor=ADMIN), 2, "--scope")
    listed = orjson.loads(acl.cli.ok("actor", "list", "--format", "json", actor="aud-city").stdout)
    assert all(row["status"] in ("active", "revoked") for row in listed)


def test_the_last_admin_cannot_be_revoked(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'one.db'}", tmp_path / "one.key")
    cli.ok("init", "--admin", "solo")
    error_line(cli("actor", "revoke", "solo", "--reason", "r", actor="solo"), 1, "last admin")
    error_line(cli("actor", "add", "x", "--role", "clerk", "--scope", "city", "--login", "pg", actor="solo"), 2, "--login")


def test_the_first_actor_must_be_an_admin(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'open.db'}", tmp_path / "open.key")
    cli.ok("init")
    error_line(cli("actor", "add", "c", "--role", "clerk", "--scope", "city"), 1, "first actor")
    cli.ok("actor", "add", "a", "--role", "admin", "--scope", "city", actor="anyone")
    error_line(cli("community", "list", actor="anyone"), 1, "actor anyone is not known")
    cli.ok("community", "list", actor="a")


def test_only_a_city_admin_rotates_the_keys(tmp_path: Path) -> None:
    """`keys rotate` (kept out of the shared store: it changes the key file) needs admin and a city scope."""
    cli = Cli(f"sqlite:///{tmp_path / 'k.db'}", tmp_path / "k.key")
    cli.ok("init", "--admin", "boss")
    cli.ok(*establish_args(HZ1), actor="boss")
    cli.ok("actor", "add", "admin-bb", "--role", "admin", "--scope", "county:八步区", actor="boss")
    cli.ok("actor", "add", "clerk", "--role", "clerk", "--scope", "city", actor="boss")
    before = store_counts(cli.url)
    error_line(cli("keys", "rotate", actor="clerk"), 1, "permission denied", "it needs admin")
    error_line(cli("keys", "rotate", actor="admin-bb"), 1, "permission denied", "the whole store")
    assert store_counts(cli.url) == before and not (tmp_path / "k.key.new").exists()
    cli.ok("keys", "rotate", actor="boss")
