"""The check pass of a large import runs in a process of its own beside the apply pass
(commands.checkpass, docs/decisions/0032). Whatever runs where, the same file gives the same
result, the same problems, the same names logged and the same store; what the child cannot read
(the codes of a community, what a name names, whether notes can be sealed) it asks the importing
process, also while that process holds the write lock; and an import whose child fails or is
refused writes nothing and leaves no process behind."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import checkpass, importer, names, tabular
from commands.app import LedgerService
from commands.importer import ImportRefused, import_file
from commands.views import Views
from infra import crypto
from infra.store import parse_url
from tests.conftest import fresh_store_url
from tests.integration.test_import_overlap import COMMUNITIES, HEADER, _store, _write_base, two_stores
from tests.integration.test_service import store_counts

# Residents by code and by name (the base enrols 居民B000R000 …), names of nobody, a name of another
# community's resident, a malformed minutes cell: every path of the names and of validation.
RESIDENTS = ["R000", "R001", "R000;R001", "居民{c}R001", " 居民 {c}R000 ", "居民{c}R000;R001", "张三", "居民B001R000"]
row = st.tuples(
    st.sampled_from(COMMUNITIES),
    st.sampled_from(["", "", "0b7c2f9e-6a51-4c1e-9a38-2d5f3c8e1a01"]),
    st.sampled_from(RESIDENTS),
    st.sampled_from(["P00", "服务者{c}", "李四"]),
    st.sampled_from(["2025-03-01 09:00", "2025-03-02 10:30"]),
    st.sampled_from(["30", "45", "半小时"]),
    st.sampled_from(["", "送米"]),
)
rows = st.lists(row, min_size=1, max_size=14)


def _sheet(path: Path, drawn: list[tuple[Any, ...]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for community, record_id, residents, providers, at, minutes, note in drawn:
            people = [residents.format(c=community), providers.format(c=community)]
            w.writerow([community, record_id, "life_care", *people, at, minutes, "other", note])
    return path


@contextmanager
def import_settings(chunk: int, beside: bool) -> Iterator[None]:
    """The chunk size and where the check pass runs, for the imports inside (hypothesis examples
    share a function's fixtures, so not monkeypatch)."""
    saved, setting = importer.CHUNK, os.environ.get("TAIZHANG_CHECK_PROCESS")
    importer.CHUNK = chunk
    os.environ["TAIZHANG_CHECK_PROCESS"] = "on" if beside else "off"
    try:
        yield
    finally:
        importer.CHUNK = saved
        if setting is None:
            os.environ.pop("TAIZHANG_CHECK_PROCESS", None)
        else:
            os.environ["TAIZHANG_CHECK_PROCESS"] = setting


def _outcome(service: LedgerService, path: Path, beside: bool, chunk: int) -> tuple[Any, ...]:
    """The import's result or refusal, with every problem's words, and the names it logged."""
    logged: list[list[tuple[str, str]]] = []
    try:
        with import_settings(chunk, beside):
            result = import_file(service, "services", path, "clerk", skip_invalid=True, log_names=logged.append)
    except ImportRefused as refused:  # not with skip_invalid; kept for a clear failure
        return ("refused", [str(p) for p in refused.result.problems], logged)
    return ("imported", result.counts(), [str(p) for p in result.problems], logged)


@pytest.fixture
def pair(backend: str, tmp_path: Path, key_file: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Any, ...]]:
    """Two stores with the same base: one checks beside, the other here."""
    yield from two_stores(backend, tmp_path, key_file, request)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=rows, chunk=st.integers(min_value=1, max_value=5))
def test_checking_beside_gives_the_result_the_names_and_the_store_of_checking_here(
    pair: tuple[Any, ...], drawn: list[tuple[Any, ...]], chunk: int
) -> None:
    """Small chunks: the child asks for names after the first chunk was written, while the import
    holds the write lock (on SQLite a catch-up of the views would wait on that very lock)."""
    beside, here, folder, beside_base, here_base = pair
    path = _sheet(folder / "services.csv", drawn)
    assert _outcome(beside, path, True, chunk) == _outcome(here, path, False, chunk)
    assert _store(beside, beside_base) == _store(here, here_base)


@pytest.mark.parametrize("views", ["current", "behind"])
def test_names_met_once_the_import_holds_the_write_lock_are_matched(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, views: str
) -> None:
    """The first name comes in a later chunk, when the import holds the write lock: it is matched
    through the views when they are current, through the community's events when they are behind
    (never by catching the views up, which on SQLite would wait on the import's own lock)."""
    _write_base(service, tmp_path)
    late = tmp_path / "late.csv"
    late.write_text("community,code,name\nB000,R005,王芳\n")
    if views == "current":
        import_file(service, "residents", late, "clerk")
    opened = Views(service)
    opened.prepare()
    opened.runner.catch_up()  # PostgreSQL: what `taizhang projections run` does (SQLite: already done)
    opened.close()
    if views == "current":
        monkeypatch.setattr(names.NameResolver, "_rows_from_log", None)  # would fail if called
    else:
        import_file(service, "residents", late, "clerk")  # enrolled after the views were caught up
        monkeypatch.setattr(Views, "settle", None)  # would fail if called
    monkeypatch.setattr(importer, "CHUNK", 1)
    monkeypatch.setenv("TAIZHANG_CHECK_PROCESS", "on")
    drawn = [("B000", "", "R000", "P00", "2025-03-01 09:00", "30", "")] * 3
    drawn += [
        ("B000", "", "居民B000R001", "服务者B000", "2025-03-02 10:30", "30", ""),
        ("B000", "", "王芳", "P00", "2025-03-03 10:30", "30", ""),
    ]
    logged: list[list[tuple[str, str]]] = []
    result = import_file(service, "services", _sheet(tmp_path / "s.csv", drawn), "clerk", log_names=logged.append)
    assert result.counts() == {"added": 5, "existing": 0, "skipped": 0}  # identical rows: distinct services
    assert logged == [[("B000", "R001"), ("B000", "R005")]]


def _started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The check processes the imports start (subprocess.Popen), to look at afterwards."""
    started: list[Any] = []
    real_spawn = checkpass._spawn

    def spawn() -> Any:
        proc = real_spawn()
        assert proc is not None
        started.append(proc)
        return proc

    monkeypatch.setattr(checkpass, "_spawn", spawn)
    monkeypatch.setenv("TAIZHANG_CHECK_PROCESS", "on")
    return started


def test_notes_without_the_key_file_are_refused_from_beside_and_nothing_is_written(
    backend: str, tmp_path: Path, key_file: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_store_url(backend, tmp_path / "t.db", request) as url:
        owner, _ = LedgerService.create(parse_url(url), key_file, None)
        _write_base(owner, tmp_path)
        owner.close()
        keyless = LedgerService.open(parse_url(url), tmp_path / "elsewhere" / "taizhang.key")
        try:
            started = _started(monkeypatch)
            monkeypatch.setattr(importer, "CHUNK", 1)
            before = store_counts(keyless)
            drawn = [("B000", "", "R000", "P00", "2025-03-01 09:00", "30", "")] * 2
            drawn.append(("B000", "", "R001", "P00", "2025-03-01 09:00", "30", "送米"))
            with pytest.raises(crypto.KeyFileError, match="no key file"):
                import_file(keyless, "services", _sheet(tmp_path / "s.csv", drawn), "clerk")
            assert store_counts(keyless) == before
            assert [proc.poll() is not None for proc in started] == [True]
        finally:
            keyless.close()


def test_a_file_changed_after_it_was_opened_is_refused(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Access control read the file the command opened: that file is imported or nothing (the first
    rows are checked here while the child starts, and both refuse another file)."""
    _write_base(service, tmp_path)
    path = _sheet(tmp_path / "s.csv", [("B000", "", "R000", "P00", "2025-03-01 09:00", "30", "")])
    table = importer.load_table(path, "services")
    with path.open("a", newline="") as f:
        csv.writer(f).writerow(["B000", "", "life_care", "R001", "P00", "2025-03-01 09:00", "30", "other", ""])
    monkeypatch.setattr(importer, "load_table", lambda *_args: table)
    started = _started(monkeypatch)
    before = store_counts(service)
    with pytest.raises(tabular.FileChanged, match="the file changed while it was being imported"):
        import_file(service, "services", path, "clerk")
    assert store_counts(service) == before
    assert [proc.poll() is not None for proc in started] == [True]


def test_a_check_process_that_dies_fails_the_import_and_nothing_is_written(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_base(service, tmp_path)
    # More chunks than the pipe holds: when it is killed the child cannot have sent them all.
    days = [f"2025-0{m}-{d:02d} {h:02d}:00" for m in range(3, 10) for d in range(1, 29) for h in range(8, 18)]
    drawn = [("B000", "", "R000", "P00", at, "30", "") for at in days]
    path = _sheet(tmp_path / "s.csv", drawn)
    monkeypatch.setattr(importer, "CHUNK", 20)
    started = _started(monkeypatch)
    receive = checkpass.CheckBeside._receive

    def receive_then_die(self: checkpass.CheckBeside) -> Any:
        chunk = receive(self)
        self.proc.kill()  # after its first chunk: the import has written the head into its transaction
        return chunk

    monkeypatch.setattr(checkpass.CheckBeside, "_receive", receive_then_die)
    before = store_counts(service)
    with pytest.raises(RuntimeError, match="check process ended before the end of the file"):
        import_file(service, "services", path, "clerk")
    assert store_counts(service) == before
    assert [proc.poll() is not None for proc in started] == [True]
    monkeypatch.setattr(checkpass.CheckBeside, "_receive", receive)
    assert import_file(service, "services", path, "clerk").counts() == {"added": len(days), "existing": 0, "skipped": 0}


def test_a_small_file_is_checked_here_and_a_large_one_beside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAIZHANG_CHECK_PROCESS", raising=False)
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_bytes(b"x" * (importer.CHECK_BESIDE_BYTES - 1))
    large.write_bytes(b"x" * importer.CHECK_BESIDE_BYTES)
    assert [importer._check_beside(p) for p in (small, large)] == [False, True]
    monkeypatch.setenv("TAIZHANG_CHECK_PROCESS", "off")
    assert importer._check_beside(large) is False
    monkeypatch.setenv("TAIZHANG_CHECK_PROCESS", "on")
    assert importer._check_beside(small) is True


@pytest.mark.parametrize("lost_at", [1, 3])
def test_an_attempt_lost_to_another_writer_starts_again_from_the_spill_and_goes_on_with_the_child(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost_at: int
) -> None:
    """Another writer commits to the same communities while the import runs: its write number
    `lost_at` fails (IntegrityError), the attempt is rolled back and the next one reads the chunks
    received so far from the spill, then the rest from the child, which never stopped."""
    from eventsourcing.persistence import IntegrityError

    from commands.app import BulkSave

    _write_base(service, tmp_path)
    days = [f"2025-03-{d:02d} {h:02d}:00" for d in range(1, 29) for h in range(8, 18)]
    drawn = [(("B000", "B001")[i % 2], "", "R000", "P00", at, "30", "送米" if i % 3 else "") for i, at in enumerate(days)]
    path = _sheet(tmp_path / "s.csv", drawn)
    monkeypatch.setattr(importer, "CHUNK", 20)
    started = _started(monkeypatch)
    real_write = BulkSave.write
    writes: list[int] = []

    def write(self: BulkSave, *args: Any, **kwargs: Any) -> None:
        writes.append(1)
        if len(writes) == lost_at:
            raise IntegrityError("another writer committed to B000 meanwhile")
        real_write(self, *args, **kwargs)

    monkeypatch.setattr(BulkSave, "write", write)
    result = import_file(service, "services", path, "clerk")
    assert result.counts() == {"added": len(days), "existing": 0, "skipped": 0}
    assert [proc.poll() is not None for proc in started] == [True]
    monkeypatch.setattr(BulkSave, "write", real_write)
    monkeypatch.setenv("TAIZHANG_CHECK_PROCESS", "off")
    again = import_file(service, "services", path, "clerk")  # every row is in the store, once
    assert again.counts() == {"added": 0, "existing": len(days), "skipped": 0}


def test_the_check_process_runs_this_code_whatever_the_working_directory_holds(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder with a `commands` package of its own, as the working directory and on PYTHONPATH,
    does not become the check process's code."""
    _write_base(service, tmp_path)
    path = _sheet(tmp_path / "s.csv", [("B000", "", "R000", "P00", f"2025-03-0{d} 09:00", "30", "") for d in range(1, 8)])
    other = tmp_path / "elsewhere"
    (other / "commands").mkdir(parents=True)
    (other / "commands" / "__init__.py").write_text("raise SystemExit('not this code')\n")
    (other / "commands" / "checkpass.py").write_text("raise SystemExit('not this code')\n")
    monkeypatch.chdir(other)
    monkeypatch.setenv("PYTHONPATH", str(other))
    monkeypatch.setattr(importer, "CHUNK", 2)
    started = _started(monkeypatch)
    assert import_file(service, "services", path, "clerk").counts() == {"added": 7, "existing": 0, "skipped": 0}
    assert [proc.returncode for proc in started] == [0]


def test_the_check_process_is_told_neither_where_the_store_is_nor_its_key(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the child is given — its environment and its job — holds neither the store's address,
    nor the key file's path, nor the master key: it asks the importing process instead."""
    import pickle

    _write_base(service, tmp_path)
    drawn = [("B000", "", "居民B000R001", "P00", f"2025-03-0{d} 09:00", "30", "送米") for d in range(1, 8)]
    path = _sheet(tmp_path / "s.csv", drawn)
    monkeypatch.setenv("TAIZHANG_DB", service.store.url)
    monkeypatch.setenv("TAIZHANG_KEY_FILE", str(service.key_file))
    monkeypatch.setattr(importer, "CHUNK", 2)
    monkeypatch.setenv("TAIZHANG_CHECK_PROCESS", "on")
    given: list[Any] = []
    real_popen, real_send = checkpass.subprocess.Popen, checkpass._send

    def popen(*args: Any, **kwargs: Any) -> Any:
        given.append(kwargs["env"])
        return real_popen(*args, **kwargs)

    def send(stream: Any, message: Any) -> None:
        given.append(message)
        real_send(stream, message)

    monkeypatch.setattr(checkpass.subprocess, "Popen", popen)
    monkeypatch.setattr(checkpass, "_send", send)
    assert import_file(service, "services", path, "clerk").counts() == {"added": 7, "existing": 0, "skipped": 0}
    env, job, *answers = given
    assert not [name for name in env if name.startswith("TAIZHANG_")]
    assert set(job) >= {"table", "options", "after"} and answers  # the job, then what the child asked
    master = service.require_master()
    for sent in given:
        text = pickle.dumps(sent)
        for secret in (service.store.url.encode(), str(service.key_file).encode(), master.key):
            assert secret not in text
