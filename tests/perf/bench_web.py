"""The web door under a bounded load, over loopback, against a city-year store.

    python -m tests.perf.bench_web [--events 100000] [--folder DIR] [--workers 1]
        [--sessions 1,10,50] [--requests 20] [--clerks 20] [--supervisors 4] [--seconds 60]

The store: `tests.perf.citygen` (300 communities, `--events` service events over 2025) in
DIR/city-EVENTS.db, made once and reused; the bench adds its actors (an admin, a city
supervisor, one clerk per clerk community with a resident and a provider of its own,
passwords, API tokens) and catches the views up. Then it starts the real server as a
subprocess (`taizhang serve --port P --workers N` on a free loopback port) and loads it with
httpx's async client — one client per session, one connection each, requests in sequence,
as a browser tab does:

1. Reads. For 1, 10 and 50 concurrent sessions of the city supervisor, each sends
   `--requests` requests (after one warm-up) to each of: the dashboard (`/dashboard?month=`),
   a 台账 page (`/ledger`, one community's month) and the API summary (`/api/v1/summary`,
   a month by community). p50/p95 latency and requests/s per route and level, beside the
   in-process time of the service call the route makes (`dashboard_numbers`, `entry_page`,
   `summary_rows`, on a Door opened in this process, before the server starts). The 台账 page
   shows residents' codes, so it writes an access-log entry on every view, as the CLI's
   `ledger entries` does: its in-process time is given both for the read alone and for the
   read followed by that entry (`LedgerService.log_access`, one committed transaction, as the
   CLI writes it), and the server's median is set against both.
   Two loads, both with a fixed request count per session:
   - *closed loop* (stress): each session sends its next request as soon as the last answer
     came (zero think time). With more sessions than the server has cores, latency is then
     ≈ sessions / throughput whatever the code: a queueing limit, shown for capacity.
   - *paced* (`--think`, the issue's "bounded load"): each session waits a think time between
     its requests, as a person reading a page does — drawn from an exponential distribution
     with mean `--think` seconds (1 s by default: a fast reader, chosen before measuring, not
     tuned), its first request after a uniform 0–`--think` s delay, `--paced-requests` each.
     `--think 0` skips it.
2. Writes while reading. `--supervisors` sessions read the three routes in a loop for
   `--seconds` without writes (the baseline), then again while `--clerks` clerks post
   `POST /api/v1/records` for `--seconds` (even clerks with a bearer token, odd ones with a
   session and its X-CSRF-Token). A share of posts is retried at once with the same record id
   (expect 200, "already recorded") and a share is sent twice at the same moment (expect one
   201 and one 200); each clerk's first post is such a double submit and its second a retry, so
   both happen however slow the machine. Afterwards the store is read in this process: every record id answered
   201 is in the ledger (0 lost), each once, and no id got two 201s (0 doubled); every
   status is the expected one.

Prints the figures and the ratios the issue sets as targets (server / in-process median at
1 session ≤ 2; p95 at 50 sessions / p95 at 1 session ≤ 5, for both loads; reads during writes /
without).
Not a test: timings never decide pass or fail (tests/perf/test_bench_web_smoke.py checks the
bench's own invariants at a tiny size). The client runs in this process on the same machine:
on a small machine it takes CPU from the server, and the figures say so only through `uptime`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

PASSWORD = "bench password 0123"
ADMIN = "wb-admin"
SUPERVISOR = "wb-sup-city"
MONTH = "2025-11"  # a full month of the generated year (citygen ends a few days before 31 December)
RECORD_DAY = "2025-12-20"
CSRF = re.compile(r'name="csrf" value="([^"]*)"')
LEDGER_LOGGED = "ledger+log"  # in process: the 台账 page's read and its access-log entry
CLEAN_ENV = ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_KEY_FILE", "TAIZHANG_LANG", "TAIZHANG_WEB_SECURE_COOKIES",
             "TAIZHANG_WEB_KEPT_READS")  # fmt: skip


# ---- the store ------------------------------------------------------------------------------------
@dataclass
class Store:
    url: str
    key: Path
    communities: list[str]  # one per clerk
    clerks: list[str]
    tokens: dict[str, str] = field(default_factory=dict)


def _cli(url: str, key: Path, *args: str, actor: str | None = None, input: str | None = None) -> str:
    from commands.cli import cli

    argv = ["--db", url, "--key-file", str(key)]
    if actor is not None:
        argv += ["--actor", actor]
    result = CliRunner().invoke(cli, [*argv, *args], input=input, env={name: None for name in CLEAN_ENV})
    if result.exit_code != 0:
        raise RuntimeError(f"taizhang {' '.join(args)}: exit {result.exit_code}: {result.output}")
    return result.output


def make_store(
    folder: Path, events: int, clerks: int, *, communities: int, residents: int, say: Callable[[str], None]
) -> Store:
    """The citygen store of `events` (made when missing), with the bench's actors (added when missing)."""
    from tests.perf import citygen

    shape = citygen.Shape(communities=communities, residents=residents)
    tag = f"city-{events}" + ("" if shape == citygen.CITY else f"-{communities}x{residents}")
    path = folder / f"{tag}.db"
    url = f"sqlite:///{path}"
    key = folder / f"{tag}.key"
    if not path.exists():
        say(f"generating {events:,} service events into {path} (citygen, seed 1)")
        t0 = time.perf_counter()
        citygen.generate(url, key, events=events, shape=shape)
        say(f"generated in {time.perf_counter() - t0:.0f} s")
    manifest = folder / f"{tag}.bench-web.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if len(data["clerks"]) >= clerks:
            store = Store(url, key, data["communities"][:clerks], data["clerks"][:clerks], data["tokens"])
            return store
        raise SystemExit(f"{manifest} has {len(data['clerks'])} clerks; remove it and the store to make {clerks}")
    say("adding the bench's actors, passwords and tokens; catching the views up")
    t0 = time.perf_counter()
    _cli(url, key, "projections", "run")
    codes = _community_codes(url, key)[:clerks]
    if len(codes) < clerks:
        raise SystemExit(f"--clerks {clerks}: the store has only {len(codes)} communities")
    _cli(
        url, key, "actor", "add", ADMIN, "--role", "admin", "--scope", "city", actor=ADMIN
    )  # access control on from here
    _cli(url, key, "actor", "add", SUPERVISOR, "--role", "supervisor", "--scope", "city", actor=ADMIN)
    names = [f"wb-clerk-{i:02d}" for i in range(clerks)]
    for name, code in zip(names, codes, strict=True):
        _cli(url, key, "actor", "add", name, "--role", "clerk", "--scope", f"community:{code}", actor=ADMIN)
        _cli(url, key, "resident", "enroll", code, "WB-R", "--name", "韦秀英", actor=name)
        _cli(url, key, "provider", "register", code, "WB-P", "--name", "覃建国", "--role", "党员", actor=name)
    for name in (ADMIN, SUPERVISOR, *names):
        _cli(url, key, "actor", "password", name, actor=ADMIN, input=f"{PASSWORD}\n{PASSWORD}\n")
    tokens = _tokens(url, key, names[0::2])
    _cli(url, key, "projections", "run", actor=ADMIN)
    manifest.write_text(json.dumps({"communities": codes, "clerks": names, "tokens": tokens}, ensure_ascii=False))
    say(f"prepared in {time.perf_counter() - t0:.0f} s")
    return Store(url, key, codes, names, tokens)


def _community_codes(url: str, key: Path) -> list[str]:
    from commands.app import LedgerService
    from commands.views import Views
    from infra.store import parse_url
    from projections.queries import community_rows

    store = parse_url(url)
    service = LedgerService.open(store, key)
    views = Views(service, store)
    try:
        with views.read() as conn:
            return sorted(row["code"] for row in community_rows(conn))
    finally:
        views.close()
        service.close()


def _tokens(url: str, key: Path, names: list[str]) -> dict[str, str]:
    """API tokens for these clerks (made as `actor token` makes them)."""
    from commands.app import LedgerService
    from commands.credentials import make_token
    from infra.store import parse_url
    from infra.webauth import WebAuth

    store = parse_url(url)
    service = LedgerService.open(store, key)
    try:
        auth = WebAuth(store)
        auth.ensure()
        return {name: make_token(service, auth, name, 30, ADMIN)[1] for name in names}
    finally:
        service.close()


# ---- the routes, in process -----------------------------------------------------------------------
def routes(store: Store) -> dict[str, tuple[str, dict[str, str]]]:
    """route name → (path, query) the bench asks for."""
    first, _ = MONTH + "-01", None
    return {
        "dashboard": ("/dashboard", {"month": MONTH}),
        "ledger": ("/ledger", {"community": store.communities[0], "from": first, "to": _month_last(MONTH)}),
        "api_summary": ("/api/v1/summary", {"period": MONTH}),
    }


def _month_last(month: str) -> str:
    import calendar

    year, m = (int(x) for x in month.split("-"))
    return f"{month}-{calendar.monthrange(year, m)[1]:02d}"


def in_process(store: Store, repeat: int) -> dict[str, list[float]]:
    """Seconds of the service call each route makes, on a Door opened here (views current)."""
    from commands import ledger_reads
    from commands.web.app import _filters, _Query, dashboard_numbers, entry_page
    from commands.web.door import Door

    door = Door(store.url, store.key, catch_up=False)
    try:
        door.catch_up()
        actor = door.actor(SUPERVISOR)
        assert actor is not None
        env = door.env_for(SUPERVISOR, "zh")
        paths = routes(store)
        calls: dict[str, Callable[[], Any]] = {
            "dashboard": lambda: dashboard_numbers(door, env, actor, MONTH),
            "ledger": lambda: _uncached(door, lambda: entry_page(door, env, actor, _Query(paths["ledger"][1]), 1)),
            "api_summary": lambda: ledger_reads.summary_rows(
                env, _filters(env, actor, _Query({}), period=MONTH), by="community"
            ),
        }
        ledger_query = paths["ledger"][1]

        def ledger_logged() -> Any:  # the read, then its access-log entry as the CLI writes it (one transaction)
            from commands.web.app import _detail, _residents

            shown, total = _uncached(door, lambda: entry_page(door, env, actor, _Query(ledger_query), 1))
            door.service.log_access(SUPERVISOR, "web ledger entries", _detail(_Query(ledger_query)), _residents(shown))
            return shown, total

        calls[LEDGER_LOGGED] = ledger_logged
        times: dict[str, list[float]] = {name: [] for name in calls}
        for name, call in calls.items():
            call()  # warm-up
            for _ in range(repeat):
                t0 = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - t0)
        return times
    finally:
        door.close()


def _uncached(door: Any, call: Callable[[], Any]) -> Any:
    """The route's read itself, not the result the server keeps (commands.web.cache)."""
    door.reads.clear()
    return call()


# ---- the server -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, store: Store, workers: int, log: Path, kept_reads: int | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV and not k.startswith(("LANG", "LC_"))}
        if kept_reads is not None:
            env["TAIZHANG_WEB_KEPT_READS"] = str(kept_reads)
        argv = [sys.executable, "-m", "commands.cli", "--db", store.url, "--key-file", str(store.key),
                "serve", "--port", str(self.port), "--workers", str(workers)]  # fmt: skip
        self.log = log.open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server stopped (exit {self.proc.returncode}); see {self.log.name}")
            try:
                if httpx.get(self.base + "/login", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # uvicorn shuts down on SIGTERM: the app's lifespan closes the Door
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- the clients ----------------------------------------------------------------------------------
def _client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(120.0), follow_redirects=False
    )


async def log_in(base: str, actor: str) -> tuple[httpx.AsyncClient, str]:
    """A client holding a session of `actor`, and the session's CSRF token (from a page's form)."""
    client = _client(base)
    page = await client.get("/login")
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    done = await client.post("/login", data={"actor": actor, "password": PASSWORD, "csrf": found.group(1)})
    if done.status_code != 303:
        raise RuntimeError(f"login of {actor}: {done.status_code} {done.text[:300]}")
    home = await client.get("/clerk" if "clerk" in actor else "/dashboard", params={"month": MONTH})
    csrf = CSRF.search(home.text)
    return client, csrf.group(1) if csrf else ""


def _stats(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0, "p50": float("nan"), "p95": float("nan")}
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"n": len(ordered), "p50": statistics.median(ordered), "p95": p95}


async def read_levels(
    base: str, store: Store, sessions: list[int], requests: int, think: float = 0.0, seed: int = 1
) -> dict[str, dict[int, dict[str, float]]]:
    """For each route and level: p50, p95, requests/s of `level` sessions × `requests` requests each.

    `think` > 0: paced sessions — each waits an exponentially drawn think time (mean `think` s)
    between its requests, and starts after a uniform 0–`think` s delay (seeded: the same draws
    in every run). 0: closed loop, the next request as soon as the answer came."""
    paths = routes(store)
    clients = [await log_in(base, SUPERVISOR) for _ in range(max(sessions))]
    statuses: dict[int, int] = {}
    out: dict[str, dict[int, dict[str, float]]] = {name: {} for name in paths}
    try:
        for name, (path, query) in paths.items():
            for level in sessions:

                async def one(
                    client: httpx.AsyncClient,
                    times: list[float],
                    rng: random.Random,
                    path: str = path,
                    query: dict[str, str] = query,
                ) -> None:
                    try:
                        await client.get(path, params=query)  # warm-up (not counted)
                    except httpx.RemoteProtocolError:  # the server closed the idle keep-alive connection as
                        await client.get(path, params=query)  # this request went out (uvicorn: after 5 s)
                    if think > 0:
                        await asyncio.sleep(rng.uniform(0, think))
                    for i in range(requests):
                        if think > 0 and i:
                            await asyncio.sleep(rng.expovariate(1 / think))
                        for attempt in (1, 2):
                            t0 = time.perf_counter()
                            try:
                                response = await client.get(path, params=query)
                            except httpx.RemoteProtocolError:  # an idle keep-alive connection closed by the
                                if attempt == 2 or think <= 0:  # server as this request went out (paced only)
                                    raise
                                continue
                            break
                        times.append(time.perf_counter() - t0)
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

                lists: list[list[float]] = [[] for _ in range(level)]
                rngs = [random.Random(f"{seed}/{name}/{level}/{i}") for i in range(level)]
                t0 = time.perf_counter()
                await asyncio.gather(*(one(clients[i][0], lists[i], rngs[i]) for i in range(level)))
                wall = time.perf_counter() - t0
                figures = _stats([t for times in lists for t in times])
                figures["rps"] = level * requests / wall
                out[name][level] = figures
    finally:
        for client, _csrf in clients:
            await client.aclose()
    if set(statuses) != {200}:
        raise RuntimeError(f"reads answered {statuses}, expected only 200")
    return out


@dataclass
class Writes:
    created: dict[str, int] = field(default_factory=dict)  # record id → 201s it got
    statuses: dict[str, int] = field(default_factory=dict)  # "kind:status" → count
    unexpected: list[str] = field(default_factory=list)
    posts: int = 0
    retries: int = 0
    doubles: int = 0
    seconds: list[float] = field(default_factory=list)


async def clerk(
    base: str, store: Store, i: int, until: float, writes: Writes, rng: random.Random, retry: float, double: float
) -> None:
    name, code = store.clerks[i], store.communities[i]
    if name in store.tokens:
        client = _client(base)
        headers = {"Authorization": f"Bearer {store.tokens[name]}"}
    else:
        client, csrf = await log_in(base, name)
        headers = {"X-CSRF-Token": csrf}
    kinds = ("life_care", "family_care", "counseling", "production_development", "emergency_aid", "rights_protection")

    async def post(body: dict[str, Any], kind: str, expect: set[int]) -> int:
        t0 = time.perf_counter()
        response = await client.post("/api/v1/records", json=body, headers=headers)
        writes.seconds.append(time.perf_counter() - t0)
        writes.posts += 1
        status = response.status_code
        writes.statuses[f"{kind}:{status}"] = writes.statuses.get(f"{kind}:{status}", 0) + 1
        if status not in expect:
            writes.unexpected.append(f"{name} {kind} {body['record_id']}: {status} {response.text[:200]}")
        if status == 201:
            writes.created[body["record_id"]] = writes.created.get(body["record_id"], 0) + 1
        return status

    try:
        n = 0
        while n < 2 or time.perf_counter() < until:  # each clerk's first two posts: a double submit, a retry
            n += 1
            body = {
                "community": code, "kind": rng.choice(kinds), "resident": "WB-R", "provider": "WB-P",
                "at": f"{RECORD_DAY} {8 + n % 10:02d}:{n % 60:02d}", "minutes": 15 + n % 60,
                "record_id": str(uuid.uuid4()),
            }  # fmt: skip
            draw = {1: 0.0, 2: double}.get(n, rng.random())
            if draw < double:  # a double submit: two posts of one record at the same moment
                writes.doubles += 1
                pair = await asyncio.gather(post(body, "double", {200, 201}), post(body, "double", {200, 201}))
                if sorted(pair) != [200, 201]:
                    writes.unexpected.append(f"{name} double {body['record_id']}: {pair}, expected one 201 and one 200")
                continue
            await post(body, "first", {201})
            if draw < double + retry:  # the answer was "lost": the client sends it again
                writes.retries += 1
                await post(body, "retry", {200})
    finally:
        await client.aclose()


async def reader(
    client: httpx.AsyncClient,
    paths: dict[str, tuple[str, dict[str, str]]],
    until: float,
    times: dict[str, list[float]],
    statuses: dict[int, int],
) -> None:
    names = list(paths)
    n = 0
    while n < len(names) or time.perf_counter() < until:  # each route at least once
        route = names[n % len(names)]
        n += 1
        path, query = paths[route]
        t0 = time.perf_counter()
        response = await client.get(path, params=query)
        times[route].append(time.perf_counter() - t0)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1


async def writing_while_reading(
    base: str, store: Store, supervisors: int, seconds: float, retry: float, double: float, seed: int
) -> dict[str, Any]:
    paths = routes(store)
    readers = [await log_in(base, SUPERVISOR) for _ in range(supervisors)]
    statuses: dict[int, int] = {}
    try:
        quiet: dict[str, list[float]] = {name: [] for name in paths}
        until = time.perf_counter() + seconds
        await asyncio.gather(*(reader(c, paths, until, quiet, statuses) for c, _ in readers))
        busy: dict[str, list[float]] = {name: [] for name in paths}
        writes = Writes()
        rng = random.Random(seed)
        t0 = time.perf_counter()
        until = t0 + seconds
        await asyncio.gather(
            *(reader(c, paths, until, busy, statuses) for c, _ in readers),
            *(
                clerk(base, store, i, until, writes, random.Random(rng.random()), retry, double)
                for i in range(len(store.clerks))
            ),
        )
        wall = time.perf_counter() - t0
    finally:
        for client, _csrf in readers:
            await client.aclose()
    if set(statuses) != {200}:
        writes.unexpected.append(f"reads answered {statuses}, expected only 200")
    return {"quiet": quiet, "busy": busy, "writes": writes, "wall": wall}


def check_ledger(store: Store, writes: Writes) -> dict[str, int]:
    """After the run, in this process: every id answered 201 is in the ledger once; no id had two 201s."""
    from commands.web.app import _Query, entry_rows
    from commands.web.door import Door

    door = Door(store.url, store.key, catch_up=False)
    try:
        door.catch_up()
        actor = door.actor(ADMIN)
        assert actor is not None
        env = door.env_for(ADMIN, "zh")
        counts: dict[str, int] = {}
        for code in store.communities:
            for row in entry_rows(door, env, actor, _Query({"community": code, "include_voided": "1"})):
                counts[str(row["record_id"])] = counts.get(str(row["record_id"]), 0) + 1
    finally:
        door.close()
    lost = sum(1 for rid in writes.created if rid not in counts)
    doubled = sum(1 for rid, n in writes.created.items() if n > 1) + sum(
        1 for rid in writes.created if counts.get(rid, 0) > 1
    )
    return {"created": len(writes.created), "lost": lost, "doubled": doubled}


# ---- the run --------------------------------------------------------------------------------------
def run(args: argparse.Namespace, say: Callable[[str], None] = print) -> dict[str, Any]:
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = make_store(
        folder, args.events, args.clerks, communities=args.communities, residents=args.residents, say=say
    )
    sessions = sorted({int(x) for x in str(args.sessions).split(",") if x.strip()})
    say(f"in-process times ({args.in_process_repeat} calls each)")
    local = in_process(store, args.in_process_repeat)
    server = Server(store, args.workers, folder / "serve.log", args.kept_reads)
    try:
        server.wait()
        say(
            f"server up on {server.base} (--workers {args.workers}); reads at {sessions} sessions × {args.requests} requests"
        )
        levels = asyncio.run(read_levels(server.base, store, sessions, args.requests))
        paced = None
        if args.think > 0:
            say(
                f"paced reads at {sessions} sessions × {args.paced_requests} requests, think time exponential, mean {args.think} s"
            )
            paced = asyncio.run(
                read_levels(server.base, store, sessions, args.paced_requests, think=args.think, seed=args.seed)
            )
        say(
            f"{args.clerks} clerks write for {args.seconds} s while {args.supervisors} supervisors read (after {args.seconds} s of reads alone)"
        )
        mixed = asyncio.run(
            writing_while_reading(
                server.base, store, args.supervisors, args.seconds, args.retry, args.double, args.seed
            )
        )
    finally:
        server.stop()
    writes: Writes = mixed["writes"]
    ledger = check_ledger(store, writes)
    return {
        "store": store, "sessions": sessions, "local": local, "levels": levels, "paced": paced,
        "mixed": mixed, "ledger": ledger,
    }  # fmt: skip


def report(args: argparse.Namespace, result: dict[str, Any]) -> str:
    ms = 1000.0
    lines = []
    sessions = result["sessions"]
    lo, hi = sessions[0], sessions[-1]
    kept = "" if args.kept_reads is None else f", TAIZHANG_WEB_KEPT_READS={args.kept_reads}"
    lines.append(
        f"store: citygen --events {args.events} ({result['store'].url}); server --workers {args.workers}{kept}"
    )

    def table(levels: dict[str, dict[int, dict[str, float]]]) -> None:
        lines.append(
            f"{'route':<12} {'in-proc p50':>11} " + " ".join(f"{f'{n}s p50/p95 ms  req/s':>24}" for n in sessions)
        )
        for name, per in levels.items():
            local = _stats(result["local"][name])
            cells = " ".join(
                f"{per[n]['p50'] * ms:8.1f}/{per[n]['p95'] * ms:8.1f} {per[n]['rps']:6.1f}" for n in sessions
            )
            lines.append(f"{name:<12} {local['p50'] * ms:9.1f}ms {cells}")

    logged = _stats(result["local"].get(LEDGER_LOGGED, []))
    lines.append("closed loop (stress: each session sends again as soon as it has the answer):")
    table(result["levels"])
    lines.append(
        f"{LEDGER_LOGGED:<12} {logged['p50'] * ms:9.1f}ms   (in process: the 台账 page's read and its access-log"
        " entry, as `ledger entries` writes it)"
    )
    lines.append("ratios (targets: server/in-process p50 at 1 session ≤ 2; p95 at most sessions / p95 at 1 ≤ 5):")
    for name, per in result["levels"].items():
        local = _stats(result["local"][name])
        over = per[lo]["p50"] / local["p50"]
        spread = per[hi]["p95"] / per[lo]["p95"]
        extra = ""
        if name == "ledger" and logged["n"]:
            extra = f" (read alone); {per[lo]['p50'] / logged['p50']:5.2f} (read + access-log entry)"
        lines.append(
            f"  {name:<12} server/in-process p50 = {over:5.2f}{extra}   p95 {hi}/{lo} sessions = {spread:6.2f}"
        )
    paced = result.get("paced")
    if paced:
        lines.append(
            f"paced (the target load: think time between requests exponential, mean {args.think} s;"
            f" {args.paced_requests} requests per session):"
        )
        table(paced)
        lines.append(f"ratios, paced (target: p95 at {hi} sessions / p95 at {lo} ≤ 5):")
        for name, per in paced.items():
            local = _stats(result["local"][name])
            lines.append(
                f"  {name:<12} server/in-process p50 = {per[lo]['p50'] / local['p50']:5.2f}"
                f"   p95 {hi}/{lo} sessions = {per[hi]['p95'] / per[lo]['p95']:6.2f}"
            )
    mixed = result["mixed"]
    writes: Writes = mixed["writes"]
    wstats = _stats(writes.seconds)
    lines.append(
        f"writes: {args.clerks} clerks, {args.seconds} s: {writes.posts} posts ({writes.posts / mixed['wall']:.1f}/s), "
        f"{writes.retries} retries, {writes.doubles} double submits; post p50/p95 {wstats['p50'] * ms:.1f}/{wstats['p95'] * ms:.1f} ms"
    )
    lines.append(f"  statuses: {dict(sorted(writes.statuses.items()))}")
    ledger = result["ledger"]
    lines.append(
        f"  ledger: {ledger['created']} created (201), lost {ledger['lost']}, doubled {ledger['doubled']}, unexpected statuses {len(writes.unexpected)}"
    )
    for line in writes.unexpected[:10]:
        lines.append(f"    {line}")
    lines.append(f"reads by {args.supervisors} supervisors, without writes → during writes (p50/p95 ms, n):")
    for name in mixed["quiet"]:
        q, b = _stats(mixed["quiet"][name]), _stats(mixed["busy"][name])
        lines.append(
            f"  {name:<12} {q['p50'] * ms:7.1f}/{q['p95'] * ms:7.1f} ({q['n']}) → {b['p50'] * ms:7.1f}/{b['p95'] * ms:7.1f} ({b['n']})"
            f"   ×{b['p50'] / q['p50']:.2f} p50, ×{b['p95'] / q['p95']:.2f} p95"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--events", type=int, default=100_000, help="service events of the city year (the issue asks 1,000,000)"
    )
    p.add_argument(
        "--folder",
        default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "taizhang-bench-web"),
        help="where the store is kept and reused",
    )
    p.add_argument("--communities", type=int, default=15, help="communities per township (citygen's shape)")
    p.add_argument("--residents", type=int, default=100, help="residents per community (citygen's shape)")
    p.add_argument("--workers", type=int, default=1, help="taizhang serve --workers")
    p.add_argument("--sessions", default="1,10,50", help="concurrent sessions, comma-separated")
    p.add_argument("--requests", type=int, default=20, help="requests per session per route")
    p.add_argument(
        "--think",
        type=float,
        default=1.0,
        help="paced sessions: mean think time in seconds between requests (exponential; 0: no paced run)",
    )
    p.add_argument("--paced-requests", type=int, default=20, help="requests per paced session per route")
    p.add_argument("--in-process-repeat", type=int, default=20)
    p.add_argument(
        "--kept-reads",
        type=int,
        default=None,
        help="results the server keeps per store position (TAIZHANG_WEB_KEPT_READS; 0: every request reads)",
    )
    p.add_argument("--clerks", type=int, default=20)
    p.add_argument("--supervisors", type=int, default=4)
    p.add_argument(
        "--seconds", type=float, default=60.0, help="how long the clerks write (and the readers read alone before)"
    )
    p.add_argument("--retry", type=float, default=0.10, help="share of posts retried with the same record id")
    p.add_argument("--double", type=float, default=0.05, help="share of posts sent twice at the same moment")
    p.add_argument("--seed", type=int, default=1)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = run(args, say=lambda m: print(m, file=sys.stderr, flush=True))
    print(report(args, result))
    ledger = result["ledger"]
    return 0 if not ledger["lost"] and not ledger["doubled"] and not result["mixed"]["writes"].unexpected else 1


if __name__ == "__main__":
    sys.exit(main())
