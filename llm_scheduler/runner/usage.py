"""What ``--help`` prints: a tool's usage (its module docstring) and the flags it reads.

absl's own ``--help`` lists the flags defined in ``__main__``, which a console script is not,
so it printed no flag at all; ``--helpfull`` lists absl's hundreds of internal flags. Here each
tool lists the flags it defines plus the shared ones (`runner.flags`) it reads, as recorded in
`SHARED_FLAGS`, and exits 0.
"""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from absl import flags as absl_flags

from llm_scheduler.runner import flags

__all__ = [
    "HELPFULL_ARGS",
    "HELP_ARGS",
    "SHARED_FLAGS",
    "help_requested",
    "tool_help",
    "tool_module_name",
]

# The arguments that ask for help (absl's --help, --helpshort and -?, plus the usual -h).
HELP_ARGS = frozenset({"-h", "--h", "-help", "--help", "-helpshort", "--helpshort", "-?", "--?"})
HELPFULL_ARGS = frozenset({"-helpfull", "--helpfull"})

_ALL_SHARED: tuple[absl_flags.FlagHolder[Any], ...] = (
    flags.BUDGET_USD,
    flags.CACHE,
    flags.CONFIG_TYPE,
    flags.FUNCTION_MODULES,
    flags.INPUT_PATH,
    flags.JOB_ID,
    flags.JSON,
    flags.MAX_CONCURRENCY,
    flags.MODELS_FILE,
    flags.OFFLINE,
    flags.OUTPUT_FORMAT,
    flags.PRINT_RECORD,
    flags.QUIET,
    flags.RUN_ID,
    flags.STORE,
    flags.VARS,
)
_RUN_FLAGS = (
    flags.INPUT_PATH,
    flags.VARS,
    flags.OFFLINE,
    flags.MODELS_FILE,
    flags.FUNCTION_MODULES,
    flags.PRINT_RECORD,
    flags.QUIET,
    flags.STORE,
    flags.CACHE,
)

# The shared flags each tool reads, directly or through `runner.common` (its own flags are
# found in its module). tests/runner/test_help.py checks this against the tools' code.
SHARED_FLAGS: Mapping[str, tuple[absl_flags.FlagHolder[Any], ...]] = {
    "llm_scheduler.config_tools.create_sample": (),
    "llm_scheduler.config_tools.config_reader": (
        flags.INPUT_PATH,
        flags.CONFIG_TYPE,
        flags.OUTPUT_FORMAT,
        flags.MODELS_FILE,
        flags.FUNCTION_MODULES,
        flags.RUN_ID,
        flags.JOB_ID,
        flags.STORE,
        flags.PRINT_RECORD,
        flags.JSON,
        flags.QUIET,
    ),
    "llm_scheduler.runner.step_runner": _RUN_FLAGS,
    "llm_scheduler.runner.task_runner": _RUN_FLAGS,
    "llm_scheduler.runner.job_runner": (*_RUN_FLAGS, flags.MAX_CONCURRENCY, flags.BUDGET_USD),
    "llm_scheduler.runner.job_submitter": (
        flags.INPUT_PATH,
        flags.CONFIG_TYPE,
        flags.VARS,
        flags.OFFLINE,
        flags.MODELS_FILE,
        flags.FUNCTION_MODULES,
        flags.STORE,
        flags.RUN_ID,
        flags.CACHE,
        flags.BUDGET_USD,
        flags.QUIET,
    ),
    "llm_scheduler.runner.dispatcher": (
        flags.STORE,
        flags.OFFLINE,
        flags.MODELS_FILE,
        flags.FUNCTION_MODULES,
        flags.QUIET,
    ),
    "llm_scheduler.runner.run_watcher": (flags.RUN_ID, flags.STORE, flags.QUIET),
    "llm_scheduler.runner.schedule": (
        flags.INPUT_PATH,
        flags.JOB_ID,
        flags.VARS,
        flags.MODELS_FILE,
        flags.FUNCTION_MODULES,
        flags.OUTPUT_FORMAT,
        flags.STORE,
        flags.QUIET,
    ),
    "llm_scheduler.runner.trace_export": (flags.RUN_ID, flags.STORE, flags.QUIET),
    "llm_scheduler.runner.cost_report": (
        flags.STORE,
        flags.RUN_ID,
        flags.JOB_ID,
        flags.MODELS_FILE,
        flags.FUNCTION_MODULES,
        flags.JSON,
        flags.QUIET,
    ),
    "proto_decoder.main": (flags.INPUT_PATH, flags.CONFIG_TYPE, flags.OUTPUT_FORMAT),
    "llm_scheduler.web.cli": (
        flags.STORE,
        flags.OFFLINE,
        flags.MODELS_FILE,
        flags.FUNCTION_MODULES,
        flags.QUIET,
    ),
}


def help_requested(argv: Sequence[str]) -> str | None:
    """``"help"`` or ``"helpfull"`` when the arguments (before any ``--``) ask for it."""
    for arg in argv[1:]:
        if arg == "--":
            break
        if arg in HELP_ARGS:
            return "help"
        if arg in HELPFULL_ARGS:
            return "helpfull"
    return None


def tool_help(module: ModuleType, *, full: bool = False) -> str:
    """A tool's help: its module docstring, then its flags with their help text.

    Args:
        module: The tool's module (``__main__`` when it runs with ``python -m`` or as a script).
        full: Also list every flag absl knows, its internal ones included.
    """
    doc = inspect.cleandoc(module.__doc__ or f"Usage: {pathlib.Path(sys.argv[0]).name} [flags]")
    own = [value for value in vars(module).values() if isinstance(value, absl_flags.FlagHolder)]
    shared = SHARED_FLAGS.get(tool_module_name(module), _ALL_SHARED)
    holders = {holder.name: holder for holder in (*own, *shared)}
    lines = [doc, "", "flags:"]
    lines += [_describe(absl_flags.FLAGS[name]) for name in sorted(holders)]
    if full:
        lines += ["", "all flags, absl's included:", absl_flags.FLAGS.get_help()]
    else:
        lines += ["", "--helpfull also lists absl's own flags (--flagfile, --verbosity, ...)."]
    return "\n".join(lines) + "\n"


def tool_module_name(module: ModuleType) -> str:
    """A tool module's importable name, also when it runs as ``__main__``."""
    spec = module.__spec__
    if spec is not None and spec.name != "__main__":
        return spec.name  # python -m NAME
    if module.__name__ != "__main__":
        return module.__name__  # a console script imports it
    # Run as a script (as Bazel's py_binary does): the tool whose file it is.
    file = pathlib.Path(getattr(module, "__file__", "") or ".").resolve()
    for name in SHARED_FLAGS:
        found = importlib.util.find_spec(name)
        if found is not None and found.origin and pathlib.Path(found.origin).resolve() == file:
            return name
    return module.__name__


def _describe(flag: absl_flags.Flag[Any]) -> str:
    # The layout of absl's own flag help.
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    text = absl_flags.text_wrap(f"{name}: {flag.help}", indent="    ", firstline_indent="  ")
    if flag.default_as_str:
        text += "\n" + absl_flags.text_wrap(f"(default: {flag.default_as_str})", indent="    ")
    syntax = flag.parser.syntactic_help
    if syntax:
        text += "\n" + absl_flags.text_wrap(f"({syntax})", indent="    ")
    return text
