"""Package-level checks: public API, generated code, dependency pins."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import tomllib

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


def _names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\s<>=!~\[;]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_requirements_in_matches_pyproject_and_lock() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    declared = _names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= _names(extra)
    requirements = _names((REPO_ROOT / "requirements.in").read_text().splitlines())
    assert declared == requirements, "keep requirements.in and pyproject.toml in step"
    lock = (REPO_ROOT / "requirements_lock.txt").read_text()
    pinned = {m.lower().replace("_", "-") for m in re.findall(r"^([A-Za-z0-9_.\-]+)==", lock, re.M)}
    assert requirements <= pinned, f"run make lock: {sorted(requirements - pinned)} not pinned"
    assert "--hash=sha256:" in lock
