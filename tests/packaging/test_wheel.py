"""The built wheel, installed with extras in a brand-new venv, works as users run it.

Once per module: build the wheel from a copy of the sources (``pip wheel --no-deps``, as
deploy/deploy.sh does, but with this venv's setuptools instead of one fetched into an isolated
build environment each time), make a venv with ``python -m venv`` (its bundled pip, not
upgraded: what a user has), and ``pip install 'llm_scheduler-*.whl[firestore,cloud,otel]'``
from the index pip is configured with, constrained to the lock's versions (pip's cache after
``make setup`` holds them). Everything then runs from a folder outside the checkout, so only
the installed package is importable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import llm_scheduler
from tests.conftest import REPO_ROOT

# Minutes, not seconds: pip downloads the extras' dependencies when its cache is cold.
pytestmark = pytest.mark.timeout(900)

EXTRAS = "firestore,cloud,otel"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]
PACKAGES = ("llm_scheduler", "proto_decoder")
# Not package data: Bazel's build files and Python's caches.
NOT_SHIPPED = re.compile(r"(^|/)(BUILD|__pycache__/.*|.*\.pyc)$")


@dataclasses.dataclass(frozen=True)
class Installed:
    """The wheel and the venv it is installed in."""

    wheel: pathlib.Path
    sources: pathlib.Path  # the copy the wheel was built from
    venv: pathlib.Path
    work: pathlib.Path  # a folder outside the checkout to run in

    def run(
        self, *command: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Runs a program of the venv's bin/ (``python``, a console script) in ``work``."""
        return subprocess.run(
            [str(self.venv / "bin" / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            cwd=self.work,
            env={**_clean_env(), **(env or {})},
            timeout=timeout,
            check=False,
        )

    def pip_install(self, requirement: str) -> None:
        """Installs ``requirement`` (the wheel with extras) with the venv's own pip."""
        completed = self.run(
            "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            # Python compiles what the tests import; all of grpc, protobuf and the Google
            # libraries up front took a third of the install (pip only warns when it fails).
            "--no-compile",
            "--constraint",
            str(self.work / "constraints.txt"),
            requirement,
            timeout=840,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


def _clean_env() -> dict[str, str]:
    """The environment without this checkout's settings, keys, coverage hooks or venv."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_SCHEDULER_", "COVERAGE_", "PYTHON", "VIRTUAL_ENV"))
        and not k.endswith("_API_KEY")
    }


def _copy_sources(to: pathlib.Path) -> None:
    """What the wheel is built from: pyproject, README and the packages, without build debris."""
    to.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, to / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, to / package, ignore=ignore)


def _constraints() -> str:
    """The lock's pins without their hashes (hashes would make pip demand one for the wheel)."""
    lock = (REPO_ROOT / "requirements_lock.txt").read_text()
    return "".join(f"{pin}\n" for pin in re.findall(r"^([A-Za-z0-9_.\-]+==\S+)", lock, re.M))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("packaging")
    sources = root / "src"
    _copy_sources(sources)
    # Built with this venv's setuptools (the lock's pin), not one pip would fetch into an
    # isolated build environment; so it must satisfy [build-system] requires.
    for text in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(text)
        assert requirement.specifier.contains(Version(importlib.metadata.version(requirement.name)))
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(root / "dist"),
            str(sources),
        ],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    work = root / "work"
    work.mkdir()
    (work / "constraints.txt").write_text(_constraints())
    result = Installed(wheel=wheel, sources=sources, venv=venv, work=work)
    result.pip_install(f"{wheel}[{EXTRAS}]")
    return result


def test_the_wheel_holds_every_package_file(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        shipped = {name for name in archive.namelist() if ".dist-info/" not in name}
    sources = {
        path.relative_to(installed.sources).as_posix()
        for package in PACKAGES
        for path in (installed.sources / package).rglob("*")
        if path.is_file()
    }
    expected = {name for name in sources if not NOT_SHIPPED.search(name)}
    assert shipped == expected
    # The package data a user needs: type information, the web UI's templates and scripts.
    for name in (
        "llm_scheduler/py.typed",
        "llm_scheduler/v1/config_pb2.pyi",
        "llm_scheduler/v1/run_pb2.pyi",
        "llm_scheduler/web/templates/base.html",
        "llm_scheduler/web/static/app.js",
    ):
        assert name in shipped


def test_the_wheel_metadata(installed: Installed) -> None:
    version = llm_scheduler.__version__
    assert installed.wheel.name == f"llm_scheduler-{version}-py3-none-any.whl"
    with zipfile.ZipFile(installed.wheel) as archive:
        info = f"llm_scheduler-{version}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert f"\nVersion: {version}\n" in metadata
    extras = set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.M))
    assert extras == set(PYPROJECT["project"]["optional-dependencies"])
    assert "\nLicense-Expression: Apache-2.0\n" in metadata
    listed = dict(re.findall(r"^(\w+) = (\S+)$", entry_points, re.M))
    assert listed == SCRIPTS


def test_the_installed_package_is_the_one_that_runs(installed: Installed) -> None:
    completed = installed.run("python", "-m", "llm_scheduler", "--version")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"llm-scheduler {llm_scheduler.__version__}\n"
    completed = installed.run(
        "python",
        "-c",
        "import importlib.metadata, llm_scheduler;"
        "print(importlib.metadata.version('llm-scheduler'));print(llm_scheduler.__file__)",
    )
    assert completed.returncode == 0, completed.stderr
    version, where = completed.stdout.split()
    assert version == llm_scheduler.__version__
    assert pathlib.Path(where).is_relative_to(installed.venv)
    completed = installed.run("python", "-m", "llm_scheduler")
    assert completed.returncode == 0, completed.stderr
    assert all(f"\n  {name} " in completed.stdout for name in SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_each_console_script_answers_help(installed: Installed, script: str) -> None:
    completed = installed.run(script, "--help")
    assert completed.returncode == 0, completed.stderr
    assert script in completed.stdout
    assert completed.stderr == ""


def test_the_sample_job_runs_event_driven_on_sqlite(installed: Installed) -> None:
    # What `make run` does, with the installed tools and a store of its own.
    env = {"LLM_SCHEDULER_STORE": f"sqlite:///{installed.work / 'state.db'}"}
    job = REPO_ROOT / "examples" / "sample_job_config.json"
    submitted = installed.run("job_submitter", f"--input_path={job}", "--offline", env=env)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    dispatched = installed.run("dispatcher", "--until_idle", "--offline", env=env)
    assert dispatched.returncode == 0, dispatched.stderr
    assert "handled: {'succeeded': 3}" in dispatched.stderr
    read = installed.run("config_reader", f"--run_id={run_id}", env=env)
    assert read.returncode == 0, read.stderr
    assert "succeeded, 3/3 tasks succeeded" in read.stderr
    assert '"status": "SUCCEEDED"' in read.stdout
    assert '"poem": "[offline GEMINI_FLASH' in read.stdout


def test_the_extras_bring_what_their_code_imports(installed: Installed) -> None:
    # firestore: the store backend; cloud: the cloud functions' module as deploy/ stages it
    # beside the wheel; otel: the OpenTelemetry SDK and its OTLP/HTTP exporter.
    shutil.copy2(REPO_ROOT / "functions" / "main.py", installed.work / "main.py")
    completed = installed.run(
        "python",
        "-c",
        "import llm_scheduler.store.firestore, google.cloud.firestore\n"
        "import main, functions_framework\n"
        "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter\n",
    )
    assert completed.returncode == 0, completed.stderr


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_listening(server: subprocess.Popen[str], port: int) -> None:
    """Waits for the server's socket (it prints its URL just before it binds)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            assert server.poll() is None, "web_ui exited"
            assert time.monotonic() < deadline, "web_ui never listened"
            time.sleep(0.05)


@contextlib.contextmanager
def _serving(installed: Installed, port: int) -> Iterator[subprocess.Popen[str]]:
    server = subprocess.Popen(
        [str(installed.venv / "bin" / "web_ui"), f"--port={port}", "--nodispatch", "--offline"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=installed.work,
        env={**_clean_env(), "LLM_SCHEDULER_STORE": f"sqlite:///{installed.work / 'web.db'}"},
    )
    try:
        yield server
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_the_web_extra_on_demand(installed: Installed) -> None:
    # Last in the module: it installs the web extra into the shared venv. Without it, web_ui
    # names the install command (its --help works regardless, above).
    completed = installed.run("web_ui", "--offline")
    assert completed.returncode == 2
    assert "pip install 'llm-scheduler[web]'" in completed.stderr
    assert "Traceback" not in completed.stderr
    installed.pip_install(f"{installed.wheel}[{EXTRAS},web]")
    port = _free_port()
    with _serving(installed, port) as server:
        assert server.stdout is not None
        assert server.stdout.readline().startswith(f"web UI: http://127.0.0.1:{port}/")
        _wait_until_listening(server, port)
        # The pages render from the installed templates, the scripts come from its static/.
        for path, expected in (("/", "<html"), ("/static/app.js", "")):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as reply:
                assert reply.status == 200
                assert expected in reply.read().decode()
