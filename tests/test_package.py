"""Package-level checks: public API, generated code, dependency pins."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shlex
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

import llm_scheduler
from tests.conftest import REPO_ROOT


def test_public_api_is_complete() -> None:
    exported = set(llm_scheduler.__all__)
    public = {name for name in vars(llm_scheduler) if not name.startswith("_")}
    modules = {name for name in public if isinstance(getattr(llm_scheduler, name), type(sys))}
    assert public - modules - exported == set(), "add these to llm_scheduler.__all__"
    assert all(hasattr(llm_scheduler, name) for name in exported)


def test_generated_protobuf_code_is_fresh(tmp_path: pathlib.Path) -> None:
    protos = sorted((REPO_ROOT / "proto").rglob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO_ROOT / 'proto'}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            *map(str, protos),
        ],
        check=True,
    )
    generated = sorted(tmp_path.rglob("*_pb2.py*"))
    assert generated
    for path in generated:
        relative = path.relative_to(tmp_path)
        checked_in = REPO_ROOT / relative
        assert checked_in.exists(), f"missing {relative}: run make proto"
        assert checked_in.read_text() == path.read_text(), f"stale {relative}: run make proto"


def _requirements(lines: list[str]) -> dict[str, SpecifierSet]:
    """Each requirement's normalized name and version specifier."""
    requirements: dict[str, SpecifierSet] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            requirements[canonicalize_name(requirement.name)] = requirement.specifier
    return requirements


@dataclasses.dataclass
class _Pin:
    version: Version
    hashes: int = 0
    via: set[str] = dataclasses.field(default_factory=set)


def _lock() -> tuple[str, dict[str, _Pin]]:
    """The lock's pip-compile command (from its header) and its pins."""
    text = (REPO_ROOT / "requirements_lock.txt").read_text()
    lines = text.splitlines()
    command = lines[lines.index("# by the following command:") + 2].lstrip("# ").strip()
    pins: dict[str, _Pin] = {}
    pin: _Pin | None = None
    for line in lines:
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line):
            pin = pins.setdefault(canonicalize_name(match[1]), _Pin(Version(match[2])))
        elif pin and "--hash=sha256:" in line:
            pin.hashes += 1
        elif pin and (match := re.match(r"^\s+#\s+(?:via\s+)?(\S.*)$", line)):
            if match[1] != "via":
                pin.via.add(match[1] if match[1].startswith("-r ") else canonicalize_name(match[1]))
        elif not line.startswith(" "):
            pin = None
    return command, pins


def test_requirements_in_matches_pyproject() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirements(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        for name, specifier in _requirements(extra).items():
            assert declared.setdefault(name, specifier) == specifier, f"{name}: two specifiers"
    requirements = _requirements((REPO_ROOT / "requirements.in").read_text().splitlines())
    assert declared == requirements, "keep requirements.in and pyproject.toml in step"


def test_lock_was_made_by_make_lock() -> None:
    # pip-compile writes its options sorted and without --quiet; compare them as sets.
    makefile = (REPO_ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^lock:.*\n\t(.*)$", makefile, re.M)
    assert recipe, "the Makefile has no lock target"
    make_args = shlex.split(recipe[1])
    make_args = make_args[[a.endswith("pip-compile") for a in make_args].index(True) + 1 :]
    command, _ = _lock()
    lock_args = shlex.split(command)
    assert lock_args[0] == "pip-compile"
    assert sorted(set(make_args) - {"--quiet", "-q"}) == sorted(lock_args[1:]), "run make lock"


def test_lock_is_in_step_with_requirements_in() -> None:
    # The index is out of reach offline, so re-resolving is not an option; instead check what a
    # stale lock cannot pass: the direct requirements pip-compile recorded ("via -r
    # requirements.in") are exactly today's, each pinned version satisfies today's specifier,
    # every pin is hashed, and every package a pin is "via" is itself pinned.
    requirements = _requirements((REPO_ROOT / "requirements.in").read_text().splitlines())
    _, pins = _lock()
    direct = {name for name, pin in pins.items() if "-r requirements.in" in pin.via}
    assert direct == set(requirements), "run make lock: requirements.in changed"
    for name, specifier in requirements.items():
        version = pins[name].version
        assert specifier.contains(version, prereleases=True), f"run make lock: {name}=={version}"
    for name, pin in pins.items():
        assert pin.hashes, f"{name} has no --hash"
        assert pin.via, f"{name} is pinned but nothing requires it: run make lock"
        unpinned = {v for v in pin.via if not v.startswith("-r ")} - set(pins)
        assert not unpinned, f"{name} is required by unpinned {sorted(unpinned)}: run make lock"


def test_bootstrap_pip_is_the_locked_pip() -> None:
    # `make setup` upgrades a fresh venv's bundled pip from requirements_pip.txt before it
    # installs the lock; both files must name the same pip with the same hashes.
    text = (REPO_ROOT / "requirements_pip.txt").read_text()
    version = re.search(r"^pip==(\S+)", text, re.M)
    assert version, "requirements_pip.txt pins no pip"
    lock = (REPO_ROOT / "requirements_lock.txt").read_text()
    locked = re.search(r"^pip==(\S+) \\\n((?:\s+--hash=sha256:\w+(?: \\)?\n)+)", lock, re.M)
    assert locked, "the lock pins no pip (make lock uses --allow-unsafe)"
    assert version[1] == locked[1], "requirements_pip.txt and requirements_lock.txt disagree"
    assert set(re.findall(r"sha256:(\w+)", text)) == set(re.findall(r"sha256:(\w+)", locked[2]))
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert makefile.index("-r requirements_pip.txt") < makefile.index("-r requirements_lock.txt")
