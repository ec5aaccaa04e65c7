"""The check pass of a large import in a process of its own, beside the apply pass.

An import reads, names and validates every row (the check pass, commands.importer.CheckPass),
then applies the valid rows to the store in one transaction (the apply pass). Both are Python
and each keeps one core busy; for a file of importer.CHECK_BESIDE_BYTES or more the check pass
runs in a child process (this interpreter running `main` below) and hands its chunks over as it
checks them, while the importing process applies the chunks before (docs/decisions/0032). While
the child starts, the importing process checks the file's first rows itself (`start`).

The child never opens the store. What only the store knows (the codes of a community, what a
name in a cell names, whether notes can be sealed) it asks the importing process, which answers
between two chunks (importer._answer): the names a lookup reveals are logged by the importing
process, as when the check pass runs there.

The two talk over the child's stdin and stdout, one pickled message per frame (an 8-byte length,
then the pickle), and nothing else: the child's own stdout is its stderr.
  importing process → child: the job, then one answer per question.
  child → importing process: ("ask", question) … ("chunk", pickled rows, count, problems) …
  then ("done", ignored columns, footer rows, blank rows), or ("error", exception), or
  ("crash", traceback). Each pickle is read only from that pipe, written by the child of this
  very import.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path
from typing import IO, Any

from commands import importer, tabular


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=5)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        return _ENDED
    size = int.from_bytes(head, "big")
    data = stream.read(size)
    if len(data) < size:
        return _ENDED
    return pickle.loads(data)  # noqa: S301 (the pipe of this import's own child, see the module's text)


_ENDED = object()


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        try:
            stream.close()
        except OSError:
            pass  # a pipe the child no longer reads
NICENESS = 10  # the check process's scheduling priority, below the importing process's


class CheckBeside(importer.Checked):
    """The check pass running in a child process; `chunks` receives its chunks as it sends them,
    answering its questions in between, and keeps each in the spill for a later attempt."""

    def __init__(self, proc: subprocess.Popen[bytes], answer: importer.Ask) -> None:
        super().__init__()
        self.proc = proc
        self.answer = answer

    def _receive(self) -> list[importer._Valid] | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        while True:
            message = _read(self.proc.stdout)
            if message is _ENDED:
                code = self.proc.wait()
                raise RuntimeError(f"the import's check process ended before the end of the file (exit code {code})")
            what = message[0]
            if what == "ask":
                _send(self.proc.stdin, self.answer(message[1]))
            elif what == "chunk":
                _what, pickled, count, problems = message
                self.keep(pickled, count, problems)
                return importer._from_plain(pickle.loads(pickled)) if count else None  # noqa: S301
            elif what == "done":
                self.finish(*message[1:])
                return None
            elif what == "error":
                raise message[1]
            else:
                raise RuntimeError(f"the import's check process failed: {message[1]}")

    def end_child(self) -> None:
        """The child ended and waited for: given a moment to exit once it has sent everything (or
        was never given a job: a file checked whole here), killed when the import ended early (an
        error, a refusal: the rest is not needed)."""
        proc = self.proc
        _close(proc.stdin)  # a child waiting for its job or for an answer reads the end of it
        if proc.poll() is None:
            if self.finished:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
            else:
                proc.kill()
        proc.wait()
        _close(proc.stdout)

    def close(self) -> None:
        try:
            self.end_child()
        finally:
            super().close()


def start(
    table: tabular.Table, label: str, kind: str, options: importer.SheetOptions, tz: Any, now: Any, answer: importer.Ask
) -> CheckBeside | None:
    """The check pass of an opened table, beside: a child process is started, and while it starts
    (about 0.3 s) this process checks the file's first HEAD_ROWS rows itself; the child then reads
    and passes over them and checks the rest. A file that ends among them is checked here whole.
    None when no process can be started (the caller then checks here). The child reads the file
    itself and refuses it if it is not the file this process opened (tabular.FileChanged: what
    access control read is what is imported)."""
    proc = _spawn()
    if proc is None:
        return None
    beside = CheckBeside(proc, answer)
    try:
        first = min(importer.CHUNK, importer.HEAD_ROWS)
        head = importer.CheckPass(kind, table, options, label, tz=tz, now=now, ask=answer, first=first)
        try:
            chunks = head.chunks()
            for valid, problems in chunks:
                beside.keep(valid, len(valid), problems)
                if head.rows == first:
                    break
            chunks.close()
            seen = head.identical.seen() if head.identical is not None else []
        finally:
            head.close()
        if head.rows < first:  # the whole file: the child is not needed
            beside.finish(table.ignored, table.footer_rows, table.blank_rows)
            beside.end_child()
            return beside
        assert proc.stdin is not None
        job = {"table": table, "label": label, "kind": kind, "options": options, "tz": tz, "now": now}
        job.update(chunk=importer.CHUNK, after=(head.rows, seen))
        _send(proc.stdin, job)
    except BaseException:
        beside.close()
        raise
    return beside


def _spawn() -> subprocess.Popen[bytes] | None:
    """This interpreter running this module's `main`, from this very code (isolated: neither the
    working directory nor PYTHONPATH can put another `commands` package first); None if it
    cannot start."""
    if not sys.executable:
        return None
    root = str(Path(__file__).resolve().parent.parent)
    code = f"import sys; sys.path.insert(0, {root!r}); from commands.checkpass import main; sys.exit(main())"
    # Not even where the store and its key file are (TAIZHANG_DB, TAIZHANG_KEY_FILE, …): it needs neither.
    env = {name: value for name, value in os.environ.items() if not name.startswith("TAIZHANG_")}
    try:
        return subprocess.Popen(  # noqa: S603 (this interpreter, this module)
            [sys.executable, "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
    except OSError:
        return None


def main() -> int:
    """The child: the job from stdin, the chunks and questions to stdout."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the messages
    source = sys.stdin.buffer
    job = _read(source)
    if job is _ENDED:
        return 1

    def ask(question: tuple[Any, ...]) -> Any:
        _send(out, ("ask", question))
        reply = _read(source)
        if reply is _ENDED:
            raise SystemExit(1)  # the importing process has gone
        return reply

    # The apply pass is the slower of the two: the check pass can give way to whatever else wants
    # the cores (a supervisor's query while a county migrates) and still keep ahead of it.
    os.nice(NICENESS)
    gc.freeze()  # what the imports made is never garbage
    gc.disable()  # a chunk of accepted rows forms no cycles; a refused row's error might (below)
    check: importer.CheckPass | None = None
    try:
        table, kind, options = job["table"], job["kind"], job["options"]
        importer.CHUNK = job["chunk"]  # the importing process's chunk size, whatever it is set to
        check = importer.CheckPass(
            kind, table, options, job["label"], tz=job["tz"], now=job["now"], ask=ask, after=job["after"]
        )
        for valid, problems in check.chunks():
            _send(out, ("chunk", pickle.dumps(importer._plain(valid), protocol=5), len(valid), problems))
            if problems:
                gc.collect()
        _send(out, ("done", table.ignored, table.footer_rows, table.blank_rows))
    except (SystemExit, BrokenPipeError):
        return 1
    except Exception as error:
        try:
            pickle.loads(pickle.dumps(error))  # noqa: S301 (its own pickle)
            message: tuple[Any, ...] = ("error", error)
        except Exception:
            message = ("crash", "".join(traceback.format_exception_only(error)).strip())
        _send(out, message)
        return 1
    finally:
        if check is not None:
            check.close()
    return 0
