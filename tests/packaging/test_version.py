"""One version, read from one place; ``python -m llm_scheduler`` prints it and lists the tools."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib

import pytest
from packaging.version import Version

import llm_scheduler
from llm_scheduler import __main__ as entry
from tests.conftest import REPO_ROOT


def test_the_version_lives_in_the_package_only() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "llm_scheduler.__version__"}
    # A literal, so setuptools reads it without importing the package (and its dependencies).
    tree = ast.parse((REPO_ROOT / "llm_scheduler" / "__init__.py").read_text())
    literals = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    assert literals == [llm_scheduler.__version__]
    assert str(Version(llm_scheduler.__version__)) == llm_scheduler.__version__


def test_the_listed_tools_are_the_console_scripts() -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert list(entry.TOOLS) == list(scripts)


def test_version_flag_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"llm-scheduler {llm_scheduler.__version__}\n"


def test_no_arguments_list_the_tools_a_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert entry.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"llm-scheduler {llm_scheduler.__version__}"
    for name, summary in entry.TOOLS.items():
        assert any(line.split()[:1] == [name] and line.endswith(summary) for line in lines)


def test_help_and_unknown_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--version" in out
    assert all(name in out for name in entry.TOOLS)
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["--verison"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --verison" in capsys.readouterr().err


def test_python_dash_m_runs_it() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "llm_scheduler", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (completed.returncode, completed.stdout) == (
        0,
        f"llm-scheduler {llm_scheduler.__version__}\n",
    )
