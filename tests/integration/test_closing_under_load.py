"""`ledger close` of a county completes while four clerks keep recording into its communities.

Real processes, on SQLite and PostgreSQL: four writer processes record services dated
inside the period, one command at a time, for the whole run; the close runs as the CLI
in a process of its own. It must complete (exit 0), and every write must either have
landed before its community's closure or have been refused as inside a closed period:
none lost, none slipped past.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import pytest

from commands.app import Busy, LedgerService
from commands.audit_chain import verify_log
from domain.errors import PeriodClosed
from infra.store import parse_url
from tests import helpers
from tests.integration.test_service import payloads

WRITERS = 4
COMMUNITIES = 4
DEADLINE = 300  # seconds the whole run may take before the test gives up
AFTER_CLOSE = 5  # writes each writer still tries once the close has finished
ROOT = Path(__file__).resolve().parents[2]


def _writer(number: int, url: str, key_file: str, codes: list[str], gate: Any, closed: Any, results: Any) -> None:
    """Record March services round-robin into the communities until a while after the close finished."""
    outcomes: list[tuple[str, str, str]] = []  # (community, record_id, "created" | "closed" | "busy")
    errors: list[str] = []
    try:
        service = LedgerService.open(parse_url(url), Path(key_file))
        try:
            if not gate.wait(60):
                raise RuntimeError("the test never opened the gate")
            after = 0
            started = time.monotonic()
            i = 0
            while after < AFTER_CLOSE and time.monotonic() - started < DEADLINE:
                if closed.is_set():
                    after += 1
                code = codes[(number + i) % len(codes)]
                record_id = str(uuid.uuid4())
                day = 1 + (number * 7 + i) % 28
                try:
                    helpers.record(service, code, record_id, occurred_at=f"2026-03-{day:02d} 09:{i % 60:02d}")
                    outcomes.append((code, record_id, "created"))
                except PeriodClosed:
                    outcomes.append((code, record_id, "closed"))
                except Busy:
                    outcomes.append((code, record_id, "busy"))
                i += 1
        finally:
            service.close()
    except BaseException:  # report everything: the parent asserts there was nothing
        errors.append(traceback.format_exc())
    results.put((number, outcomes, errors))


def test_a_county_close_completes_while_four_clerks_keep_recording(
    service: LedgerService, db_url: str, key_file: Path
) -> None:
    codes = [helpers.small_community(service) for _ in range(COMMUNITIES)]
    ctx = multiprocessing.get_context("spawn")
    gate, closed, results = ctx.Event(), ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_writer, args=(n, db_url, str(key_file), codes, gate, closed, results))
        for n in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    gate.set()
    reports = []
    try:
        time.sleep(1.0)  # the clerks are writing before the close starts
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAIZHANG_")}
        env.update(TAIZHANG_DB=db_url, TAIZHANG_KEY_FILE=str(key_file), TAIZHANG_ACTOR="sup01")
        done = subprocess.run(
            [sys.executable, "-m", "commands.cli", "ledger", "close", "--unit", "county:八步区",
             "--period", "2026-03", "--reason", "三月结账", "--format", "json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=DEADLINE, check=False,
        )  # fmt: skip
        closed.set()
        for _ in workers:
            reports.append(results.get(timeout=DEADLINE))
    except queue.Empty:
        pytest.fail(f"a writer did not finish within {DEADLINE} s")
    finally:
        closed.set()
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    errors = [e for _n, _o, errs in reports for e in errs]
    assert not errors, "\n".join(errors)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"

    stored = payloads(service)
    close_at = {
        n.originator_id: n.id for n, p in stored if n.topic.endswith(".PeriodClosed") and p["period"] == "2026-03"
    }
    assert len(close_at) == COMMUNITIES  # every community of the county carries the closure
    recorded = {p["record_id"]: (n.id, n.originator_id) for n, p in stored if n.topic.endswith(".ServiceRecorded")}
    outcomes = [o for _n, outs, _e in reports for o in outs]
    created = {record_id for _c, record_id, what in outcomes if what == "created"}
    refused = {record_id for _c, record_id, what in outcomes if what == "closed"}
    busy = [o for o in outcomes if o[2] == "busy"]
    assert not busy, f"{len(busy)} write(s) gave up with Busy"
    assert created and refused  # the clerks wrote before the close and were refused after it
    # None lost: every write the clerks were told landed is in the log, and nothing else is.
    assert set(recorded) == created
    # None slipped past: each landed before its community's closure; each refusal wrote nothing.
    for record_id in created:
        position, community = recorded[record_id]
        assert position < close_at[community], record_id
    assert not refused & set(recorded)
    assert verify_log(service)["intact"] is True
