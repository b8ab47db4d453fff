"""``--help``: every tool lists its own flags with their help text, and exits 0."""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import subprocess
import sys
import tomllib

import pytest

from llm_scheduler.runner import flags, usage
from tests.clitools import MODULES, run_tool
from tests.conftest import REPO_ROOT

# A few flags each tool must list: its own and the shared ones it is used with.
KEY_FLAGS = {
    "create_sample": ["--output_dir"],
    "config_reader": ["--input_path", "--config_type", "--run_id", "--store", "--output_format"],
    "step_runner": ["--input_path", "--var", "--[no]offline", "--models_file", "--cache"],
    "task_runner": ["--input_path", "--var", "--[no]offline", "--[no]quiet", "--[no]print_record"],
    "job_runner": [
        "--input_path",
        "--trace_out",
        "--replay",
        "--resume",
        "--cancel",
        "--max_concurrency",
        "--budget_usd",
    ],
    "job_submitter": ["--input_path", "--store", "--var", "--run_id", "--cache", "--budget_usd"],
    "dispatcher": ["--store", "--workers", "--lease_seconds", "--[no]until_idle", "--target_url"],
    "run_watcher": ["--run_id", "--store", "--[no]replay_timeline"],
    "schedule": [
        "--schedule_id",
        "--input_path",
        "--job_id",
        "--cron",
        "--time_zone",
        "--var",
        "--overlap",
        "--catch_up",
        "--count",
        "--store",
    ],
    "trace_export": ["--run_id", "--output", "--store"],
    "cost_report": ["--store", "--group_by", "--since", "--until", "--models_file", "--[no]json"],
    "proto_decoder": ["--input_path", "--output_format", "--output_path", "--config_type"],
    "web_ui": ["--store", "--host", "--port", "--token", "--configs_dir", "--[no]dispatch"],
}
# Flags a tool does not read, so its help must not list them.
NOT_LISTED = {
    "create_sample": ["--input_path", "--var"],
    "schedule": ["--run_id", "--[no]offline"],
    "proto_decoder": ["--var", "--store"],
    "trace_export": ["--var", "--input_path"],
    "cost_report": ["--var", "--input_path", "--budget_usd"],
    "web_ui": ["--var", "--input_path"],
}
SCRIPTS = pathlib.Path(sys.executable).parent


def _listed(help_text: str) -> list[str]:
    """The flag names at the start of the help's flag entries (``--name`` or ``--[no]name``)."""
    return [line.split(":")[0].strip() for line in help_text.splitlines() if line[:4] == "  --"]


def test_every_console_script_is_covered() -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(KEY_FLAGS) == set(MODULES)
    assert {target.split(":")[0] for target in scripts.values()} == set(usage.SHARED_FLAGS)


@pytest.mark.parametrize("tool", sorted(KEY_FLAGS))
def test_help_lists_the_tools_flags_with_their_help(tool: str) -> None:
    # The installed console script: absl's own --help found no flag in its __main__.
    completed = subprocess.run(
        [str(SCRIPTS / tool), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    listed = _listed(out)
    for name in KEY_FLAGS[tool]:
        assert name in listed, f"{tool} --help does not list {name}:\n{out}"
    for name in NOT_LISTED.get(tool, []):
        assert name not in listed, f"{tool} --help lists {name}, which it does not read"
    # Only the tool's flags, not absl's internal ones.
    assert not {"--flagfile", "--[no]logtostderr", "--verbosity"} & set(listed)
    assert "Usage" in out or "USAGE" in out
    assert completed.stderr == ""


def test_help_text_of_each_flag_is_shown() -> None:
    result = run_tool("task_runner", "-h")  # python -m: the tool's module is __main__
    assert result.code == 0, result.stderr
    assert "--input_path: The config file to read" in result.stdout
    assert "Usage: task_runner" in result.stdout
    assert "(default: 'use')" in result.stdout


def test_helpfull_adds_absl_flags_and_exits_0() -> None:
    result = run_tool("proto_decoder", "--helpfull")
    assert result.code == 0, result.stderr
    assert "--output_path" in result.stdout
    assert "--flagfile" in result.stdout


def test_a_help_flag_after_double_dash_is_an_argument() -> None:
    result = run_tool("proto_decoder", "--", "--help")
    assert result.code == 2
    assert "unexpected arguments" in result.stderr


def _shared_flags_read(module: str) -> set[str]:
    """The shared flags a tool's module reads directly (``flags.NAME``)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin
    tree = ast.parse(pathlib.Path(spec.origin).read_text())
    return {
        getattr(flags, node.attr).name
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "flags"
        and node.attr in flags.__all__
    }


@pytest.mark.parametrize("module", sorted(usage.SHARED_FLAGS))
def test_shared_flags_table_covers_what_each_tool_reads(module: str) -> None:
    declared = {holder.name for holder in usage.SHARED_FLAGS[module]}
    missing = _shared_flags_read(module) - declared
    assert not missing, f"add {sorted(missing)} to usage.SHARED_FLAGS[{module!r}]"
