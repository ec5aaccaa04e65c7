"""constraints.txt, the tested set of package versions (docs/decisions/0030), stays whole and
inside setup.cfg's ranges: a dependency added to setup.cfg without a pin, or a pin outside the
range setup.cfg allows, would make `.ci/run` test (and a deployment install) something else."""

from __future__ import annotations

import configparser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and name.strip() and version.strip(), f"constraints.txt: {line!r} is not NAME==VERSION"
        key = canonicalize_name(name.strip())
        assert key not in pins, f"constraints.txt pins {name.strip()} twice"
        pins[key] = Version(version.strip())
    return pins


def _requirements() -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    values = [config["options"]["install_requires"], *config["options.extras_require"].values()]
    return [
        Requirement(line.strip())
        for value in values
        for line in value.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_every_requirement_of_setup_cfg_is_pinned_inside_its_range() -> None:
    pins = _pins()
    requirements = _requirements()
    assert len(requirements) > 10  # install_requires and the extras were read
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} (setup.cfg) has no pin in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name} {pins[name]}, outside setup.cfg's {requirement.specifier}"
        )
        for extra in requirement.extras:  # psycopg[binary,pool]: the packages the extras bring are pinned too
            if name == "psycopg":
                assert canonicalize_name(f"psycopg-{extra}") in pins, f"psycopg-{extra} has no pin"


def test_the_project_itself_is_not_pinned() -> None:
    assert "taizhang" not in _pins()  # an editable install of the checkout, whatever its version
