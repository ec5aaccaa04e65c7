"""Small inputs that would exhaust memory or hang: every file a command reads has a stated limit.

Each attack runs the CLI in its own process (a hang is a timeout there, not a stuck test
run) against a real store, on both backends:

- `/dev/zero`, a FIFO with no writer, and a sparse file just over the limit, given as each
  input path — an import file, --key-file (the master key and the signing key), --public-key,
  --checkpoint, a bundle, --rubric — are refused at once: exit 2, one line naming the option
  and the problem, nothing written;
- an XLSX of well under 1 MB that holds 500,000 rows (or one row numbered 1,048,576) is
  refused while it is read, and the process's peak memory (getrusage) stays far below what
  reading it whole took (2.3 GB);
- an XLSX whose parts unpack to more than the limit (a zip bomb) is refused before it is parsed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook

from commands import files, tabular
from tests.e2e.conftest import Ledger

ROOT = Path(__file__).resolve().parents[2]
# The CLI in a fresh process; the peak resident memory of that process goes to stderr last.
RUNNER = """
import resource, sys
from commands.cli import cli
code = cli.main(sys.argv[1:], standalone_mode=False)
sys.stderr.write(f"peak-rss-kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
sys.exit(code)
"""
TAIZHANG_VARS = ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_KEY_FILE", "TAIZHANG_TZ")
AT_ONCE = 60  # seconds: a command that reads /dev/zero or waits on a FIFO never ends by itself


def taizhang(ledger: Ledger, *args: str, key: Path | None = None) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the CLI on the ledger's store in a new process; (result, peak RSS in KiB)."""
    env = {k: v for k, v in os.environ.items() if k not in TAIZHANG_VARS}
    argv = ["--db", ledger.url, "--key-file", str(key or ledger.cli.key), "--actor", "clerk01", *args]
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=AT_ONCE
    )
    lines = done.stderr.splitlines()
    assert lines and lines[-1].startswith("peak-rss-kib "), done.stderr
    done.stderr = "\n".join(lines[:-1])
    return done, int(lines[-1].split()[1])


def refused(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == 2, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ---- hostile paths -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real signing key (and its .pub) from audit keygen, so that only the path under test is bad."""
    from click.testing import CliRunner

    from commands.cli import cli

    key = tmp_path_factory.mktemp("office") / "office.key"
    result = CliRunner().invoke(cli, ["audit", "keygen", "--key-file", str(key)])
    assert result.exit_code == 0, result.output
    return key


def _hostile(kind: str, folder: Path, name: str, limit: int) -> Path:
    path = folder / name
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")  # a name with the right suffix, the endless device behind it
    elif kind == "fifo":
        os.mkfifo(path)  # nobody ever writes: an ordinary open() waits for ever
    else:
        with path.open("wb") as f:
            f.truncate(limit + 1)  # sparse: one byte over the limit costs no disk
    return path


# (option named in the error, file name, limit, argv with {} for the hostile path)
INPUTS = [
    ("import", "services.csv", files.MAX_IMPORT_BYTES, ["import", "services", "{}"]),
    ("import", "services.xlsx", files.MAX_IMPORT_BYTES, ["import", "services", "{}"]),
    ("--key-file", "master.key", files.MAX_KEY_BYTES, ["--key-file", "{}", "resident", "list", "HZ-001"]),
    ("--key-file", "seal.key", files.MAX_KEY_BYTES, ["audit", "seal", "--key-file", "{}"]),
    ("--public-key", "office.pub", files.MAX_KEY_BYTES, ["audit", "verify", "--checkpoint", "{cp}", "--public-key", "{}"]),
    ("--checkpoint", "march.checkpoint", files.MAX_CHECKPOINT_BYTES, ["audit", "verify", "--checkpoint", "{}", "--public-key", "{pub}"]),
    ("--checkpoint", "march.checkpoint", files.MAX_CHECKPOINT_BYTES, ["audit", "prove", "{rid}", "--checkpoint", "{}", "--output", "{out}"]),
    ("BUNDLE", "record.bundle", files.MAX_BUNDLE_BYTES, ["audit", "check", "{}", "--public-key", "{pub}"]),
    ("--rubric", "rubric.toml", files.MAX_RUBRIC_BYTES, ["assess", "run", "--period", "2026", "--level", "county", "--rubric", "{}"]),
]
IDS = ["import-csv", "import-xlsx", "master-key", "seal-key", "public-key", "checkpoint-verify", "checkpoint-prove", "bundle", "rubric"]


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "over-the-limit"])
@pytest.mark.parametrize("option, name, limit, args", INPUTS, ids=IDS)
def test_each_input_path_refuses_devices_fifos_and_oversized_files_at_once(
    ledger: Ledger, office: Path, tmp_path: Path, kind: str, option: str, name: str, limit: int, args: list[str]
) -> None:
    hostile = _hostile(kind, tmp_path, name, limit)
    before = ledger.counts()
    key = None
    argv = []
    for arg in args:
        arg = arg.replace("{cp}", str(tmp_path / "none.checkpoint")).replace("{pub}", str(office) + ".pub")
        arg = arg.replace("{rid}", ledger.active).replace("{out}", str(tmp_path / "out.bundle"))
        argv.append(str(hostile) if arg == "{}" else arg)
    if argv[0] == "--key-file":  # the global option: given once, before the command
        key, argv = hostile, argv[2:]
    done, _peak = taizhang(ledger, *argv, key=key)
    problem = "not a regular file" if kind != "over-the-limit" else f"larger than the limit of {files.limit_text(limit)}"
    named = hostile.name if option == "import" else option
    refused(done, named, problem)
    assert ledger.counts() == before
    assert not (tmp_path / "out.bundle").exists()


# ---- spreadsheets that claim or hold too many rows -------------------------------------------
HEADER = ["community", "kind", "residents", "providers", "occurred_at", "minutes"]


def _rows_xml(rows: Iterator[str]) -> Iterator[bytes]:
    yield b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    yield b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    yield b'<dimension ref="A1:F1048576"/><sheetData>'  # what the sheet claims; never trusted
    for row in rows:
        yield row.encode()
    yield b"</sheetData></worksheet>"


def _cells(values: list[str], number: int | None = None) -> str:
    cells = "".join(f'<c t="inlineStr"><is><t>{v}</t></is></c>' for v in values)
    return f'<row r="{number}">{cells}</row>' if number else f"<row>{cells}</row>"  # no r: the next row


def spreadsheet(path: Path, rows: Iterator[str]) -> Path:
    """An XLSX made by openpyxl whose sheet is replaced by the given rows (streamed into the zip)."""
    book = Workbook()
    book.active.append(HEADER)
    template = path.with_suffix(".template.xlsx")
    book.save(template)
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for item in source.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                with target.open(item.filename, "w") as sheet:
                    for chunk in _rows_xml(rows):
                        sheet.write(chunk)
            else:
                target.writestr(item, source.read(item.filename))
    template.unlink()
    return path


ROW = ["HZ-001", "life_care", "R1", "P1", "2026-03-05 09:30", "45"]


def _many(count: int) -> Iterator[str]:
    """The header, then `count` identical rows (no row numbers: each is the next), a thousand a chunk."""
    yield _cells(HEADER)
    for _ in range(count // 1000):
        yield _cells(ROW) * 1000


def _sparse() -> Iterator[str]:
    yield _cells(HEADER)
    yield _cells(ROW)
    yield _cells(ROW, number=1_048_576)  # the last row a sheet can have


# Reading the 500,000 rows whole took 2.3 GB. The bound is generous (a CLI process alone
# takes about 100 MB): the test is about the order of magnitude, not a timing.
PEAK_BOUND_KIB = 600 * 1024


@pytest.mark.parametrize("rows", [lambda: _many(500_000), _sparse], ids=["holds-500k-rows", "row-1048576"])
def test_a_tiny_xlsx_with_more_rows_than_the_limit_is_refused_in_bounded_memory(
    ledger: Ledger, tmp_path: Path, rows: Callable[[], Iterator[str]]
) -> None:
    path = spreadsheet(tmp_path / "services.xlsx", rows())
    assert path.stat().st_size < 1024 * 1024  # well under a megabyte on disk
    before = ledger.counts()
    done, peak = taizhang(ledger, "import", "services", str(path))
    refused(done, "services.xlsx", f"more than {tabular.MAX_ROWS:,} rows")
    assert peak < PEAK_BOUND_KIB, f"peak RSS {peak // 1024} MiB"
    assert ledger.counts() == before


def test_an_xlsx_that_unpacks_past_the_limit_is_refused_before_it_is_parsed(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    book = Workbook()
    book.active.append(HEADER)
    book.save(path)
    chunk = b" " * (1024 * 1024)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive, archive.open("xl/padding.bin", "w") as pad:
        for _ in range(tabular.MAX_XLSX_UNPACKED // len(chunk) + 1):
            pad.write(chunk)
    assert path.stat().st_size < 2 * 1024 * 1024
    before = ledger.counts()
    done, peak = taizhang(ledger, "import", "services", str(path))
    refused(done, "bomb.xlsx", f"unpacks to more than {files.limit_text(tabular.MAX_XLSX_UNPACKED)}")
    assert peak < PEAK_BOUND_KIB
    assert ledger.counts() == before
