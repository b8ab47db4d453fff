"""``python -m llm_scheduler``: the installed version, and the command-line tools, one line each.

Usage:
    python -m llm_scheduler             # the tools the package installs, one line each
    python -m llm_scheduler --version   # llm-scheduler X.Y.Z
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from llm_scheduler import __version__

__all__ = ["TOOLS", "main"]

# The console scripts of pyproject.toml's [project.scripts] (a test keeps the two in step); each
# prints its own usage and flags with --help.
TOOLS: dict[str, str] = {
    "create_sample": "write sample step, task and job configs to a folder",
    "config_reader": "validate and print a config (a job's task graph too), or read runs",
    "step_runner": "run one step config and print its outputs",
    "task_runner": "run one task config, or several in a row, and print the outputs",
    "job_runner": "run a job config in process; replay, resume or cancel runs",
    "job_submitter": "validate a config and commit a job run to a store; print the run id",
    "dispatcher": "run the task runs committed to a store, as the cloud function would",
    "run_watcher": "follow an event-driven run live, or replay its timeline",
    "schedule": "add, list, pause, resume or remove cron schedules of jobs",
    "trace_export": "export a run from a store as a trace file",
    "cost_report": "add up calls, tokens and cost over the runs in a store",
    "web_ui": "serve the web UI: runs, jobs, the config editor (extra: web)",
    "proto_decoder": "convert configs and run records between JSON, textproto and binary",
}


def _parser() -> argparse.ArgumentParser:
    width = max(map(len, TOOLS))
    tools = "\n".join(f"  {name:<{width}}  {summary}" for name, summary in TOOLS.items())
    return argparse.ArgumentParser(
        prog="python -m llm_scheduler",
        description="llm-scheduler: run LLM workflows (jobs of tasks of steps) from configs.",
        epilog=f"command-line tools (each with --help):\n{tools}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the version (``--version``) or the command-line tools with a line each.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 (argparse exits 2 by itself on an unknown argument).
    """
    parser = _parser()
    parser.add_argument("--version", action="version", version=f"llm-scheduler {__version__}")
    parser.parse_args(argv)
    sys.stdout.write(f"llm-scheduler {__version__}\n\n{parser.epilog}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
