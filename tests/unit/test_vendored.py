"""Vendored front-end libraries: the files match what scripts/vendor-echarts.sh recorded, and they install.

The web pages must work on an office network without internet, so ECharts ships inside the Python
package (commands/web/static/vendor). VERSIONS names each file's package, version and sha256; a file
changed by hand, or a package build that leaves the files out, fails here.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "commands" / "web" / "static" / "vendor"
VENDORED = ("echarts.min.js", "echarts.LICENSE.txt", "echarts.NOTICE.txt")


@dataclass(frozen=True)
class Pin:
    file: str
    package: str
    version: str
    sha256: str


def pins() -> dict[str, Pin]:
    """The lines of VERSIONS: `file package@version sha256:HEX integrity`, '#' starts a comment."""
    found: dict[str, Pin] = {}
    for line in (VENDOR / "VERSIONS").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        file, spec, digest, _integrity = line.split()
        package, version = spec.rsplit("@", 1)
        assert digest.startswith("sha256:"), line
        found[file] = Pin(file, package, version, digest.removeprefix("sha256:"))
    return found


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_versions_names_every_vendored_file_and_nothing_else() -> None:
    assert sorted(pins()) == sorted(VENDORED)
    assert sorted(p.name for p in VENDOR.iterdir()) == sorted([*VENDORED, "VERSIONS"])


@pytest.mark.parametrize("name", VENDORED)
def test_vendored_file_matches_its_recorded_sha256(name: str) -> None:
    pin = pins()[name]
    assert sha256((VENDOR / name).read_bytes()) == pin.sha256, (
        f"{name} differs from VERSIONS: rerun scripts/vendor-echarts.sh instead of editing it by hand"
    )


def test_echarts_is_the_pinned_5x_release() -> None:
    pin = pins()["echarts.min.js"]
    assert pin.package == "echarts"
    assert pin.version.split(".")[0] == "5"
    assert f'version="{pin.version}"' in (VENDOR / "echarts.min.js").read_text(encoding="utf-8")
    assert "Apache License" in (VENDOR / "echarts.LICENSE.txt").read_text(encoding="utf-8")
    assert "Apache ECharts" in (VENDOR / "echarts.NOTICE.txt").read_text(encoding="utf-8")


def test_the_imported_package_holds_the_vendored_files() -> None:
    vendor = files("commands.web").joinpath("static", "vendor")
    for name in VENDORED:
        assert sha256(vendor.joinpath(name).read_bytes()) == pins()[name].sha256


@pytest.mark.slow
def test_a_built_wheel_holds_the_vendored_files(tmp_path: Path) -> None:
    """Build the wheel as `pip install .` would (from a copy, so the worktree gets no build/ litter)."""
    source = tmp_path / "src"
    keep = ("setup.cfg", "pyproject.toml", "README.md", "commands", "domain", "projections", "infra")
    for name in keep:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}\n{done.stderr}"
    (wheel,) = (tmp_path / "dist").glob("taizhang-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "commands/web/__init__.py" in names
        for name in VENDORED:
            member = f"commands/web/static/vendor/{name}"
            assert member in names, f"{member} is not in the wheel: see [options.package_data] in setup.cfg"
            assert sha256(zf.read(member)) == pins()[name].sha256
        assert "commands/web/static/vendor/VERSIONS" in names
