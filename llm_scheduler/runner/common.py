"""What the command-line tools share: building a run context, variables, output, exit codes."""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import ModuleType
from typing import Any, TextIO, TypeVar

from absl import app
from absl import flags as absl_flags
from absl import logging as absl_logging
from google.protobuf import json_format
from google.protobuf.message import Message

from llm_scheduler.cache import StoreResponseCache
from llm_scheduler.config import formats
from llm_scheduler.config.kinds import CONFIG_TYPES
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.budget import check_budget
from llm_scheduler.engine.context import RunContext
from llm_scheduler.errors import ConfigError, LlmSchedulerError, RunError, StoreError, UserError
from llm_scheduler.function_steps import default_registry
from llm_scheduler.models.client import ModelClient, RetryEvent, offline_from_env
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.runner import flags, usage
from llm_scheduler.runner.progress import ProgressPrinter
from llm_scheduler.store import Store, default_store_url, open_store
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_RUN_FAILED",
    "build_context",
    "cache_policy_from_flags",
    "check_input_file",
    "configure_logging",
    "describe_cache_hits",
    "guess_config_type",
    "main_for",
    "message_dict",
    "open_store_from_flags",
    "parse_flags",
    "parse_vars",
    "print_json",
    "report",
    "require_input_path",
    "require_input_paths",
    "run_cli",
    "start",
    "status_exit_code",
]

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2

MODELS_FILE_ENV = "LLM_SCHEDULER_MODELS_FILE"

T = TypeVar("T")


# Libraries that log routine INFO lines (each HTTP request, SDK notices): a CLI shows their
# warnings and errors only.
THIRD_PARTY_LOGGERS = (
    "absl",
    "anthropic",
    "google.api_core",
    "google.auth",
    "google_genai",
    "grpc",
    "httpcore",
    "httpx",
    "openai",
    "urllib3",
)


def parse_flags(argv: list[str], module: ModuleType | None = None) -> list[str]:
    """Parses flags for `absl.app.run`; a bad flag exits with code 2 like any bad input.

    ``--help`` (or ``-h``, ``--helpshort``) prints the tool's usage and flags and exits 0;
    ``--helpfull`` adds absl's own flags. Logging is then set up (`configure_logging`).

    Args:
        argv: The command line.
        module: The tool's module, whose docstring and flags ``--help`` shows; ``__main__`` by
            default.
    """
    wanted = usage.help_requested(argv)
    if wanted is not None:
        tool = module or sys.modules["__main__"]
        sys.stdout.write(usage.tool_help(tool, full=wanted == "helpfull"))
        sys.exit(EXIT_OK)
    try:
        remaining = absl_flags.FLAGS(argv)
    except absl_flags.Error as error:
        print(f"error: {error}\nPass --help to list the flags.", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    configure_logging(quiet=flags.QUIET.value)
    return remaining


def configure_logging(*, quiet: bool) -> None:
    """Shows warnings and errors of the logging module on stderr; with ``quiet``, errors only.

    absl raises the level to INFO after parsing unless ``--verbosity`` is given, which shows
    every library's routine lines (each HTTP request, SDK notices): the level is set here
    instead. An explicit ``--verbosity`` or ``--logger_levels`` still decides.
    """
    floor = logging.ERROR if quiet else logging.WARNING
    verbosity = absl_flags.FLAGS["verbosity"]
    if not verbosity.present:
        verbosity.value = absl_logging.ERROR if quiet else absl_logging.WARNING
        verbosity.using_default_value = False  # or absl sets INFO
    if not absl_flags.FLAGS["logger_levels"].present:
        for name in THIRD_PARTY_LOGGERS:
            logging.getLogger(name).setLevel(floor)


def main_for(body: Callable[[], int]) -> Callable[[list[str]], int]:
    """A tool's absl ``main``: refuses stray arguments, then runs ``body`` under `run_cli`.

    The ``main`` carries ``body``'s module and name, so `start` finds the tool's docstring and
    flags for ``--help``.
    """

    @functools.wraps(body)
    def main(argv: list[str]) -> int:
        if len(argv) > 1:
            print(f"error: unexpected arguments {argv[1:]}; use --flags", file=sys.stderr)
            return EXIT_BAD_INPUT
        return run_cli(body)

    return main


def start(main: Callable[[list[str]], int]) -> None:
    """Runs a tool's ``main`` with absl, as every console script does."""
    module = sys.modules.get(main.__module__) or sys.modules["__main__"]
    app.run(main, flags_parser=functools.partial(parse_flags, module=module))


def run_cli(body: Callable[[], int], *, stderr: TextIO | None = None) -> int:
    """Runs a tool's body, turning llm-scheduler errors into a message and an exit code."""
    err = stderr or sys.stderr
    try:
        return body()
    except UserError as error:
        print(f"error: {error}", file=err)
        return EXIT_BAD_INPUT
    except StoreError as error:  # e.g. reading a run back: nothing may have run
        print(f"store error: {error}", file=err)
        return EXIT_RUN_FAILED
    except (RunError, LlmSchedulerError) as error:
        print(f"run failed: {error}", file=err)
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130


def report(message: str) -> None:
    """Prints a progress or summary line on stderr, unless ``--quiet``."""
    if not flags.QUIET.value:
        print(message, file=sys.stderr)


def check_input_file(path: str, source: str = "--input_path") -> str:
    """Returns ``path`` if it names a readable file.

    A missing file is the user's typo, not a problem in a config: it gets its own message.

    Args:
        path: The file.
        source: Where the path came from (a flag or an environment variable), for the message.

    Raises:
        UserError: There is no such file, or it is a folder or unreadable.
    """
    if not os.path.exists(path):
        raise UserError(f"{source}: no such file: {path}")
    if os.path.isdir(path):
        raise UserError(f"{source}: {path} is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{source}: cannot read {path}: permission denied")
    return path


def require_input_path() -> str:
    """The ``--input_path`` flag's value, a readable file.

    Raises:
        UserError: The flag is missing, or names no readable file.
    """
    if not flags.INPUT_PATH.value:
        raise UserError("--input_path is required: the config file to read")
    return check_input_file(flags.INPUT_PATH.value)


def require_input_paths() -> list[str]:
    """The comma-separated files of ``--input_path``, each a readable file.

    Raises:
        UserError: The flag is missing, or a path names no readable file.
    """
    if not flags.INPUT_PATH.value:
        raise UserError("--input_path is required: the config file to read")
    paths = [path for path in flags.INPUT_PATH.value.split(",") if path]
    if not paths:
        raise UserError("--input_path is required: the config file to read")
    return [check_input_file(path) for path in paths]


def models_registry() -> ModelRegistry:
    """The model registry with the models file from ``--models_file`` or the environment.

    The modules of ``--function_modules`` are imported first: they may register the model
    providers that the models file and the configs name.

    Raises:
        UserError: The models file does not exist, or a module failed to import.
        ConfigError: The models file is invalid.
    """
    default_registry().load_modules(flags.FUNCTION_MODULES.value)
    if flags.MODELS_FILE.value:
        path: str | None = check_input_file(flags.MODELS_FILE.value, "--models_file")
    else:
        path = os.environ.get(MODELS_FILE_ENV) or None
        if path:
            check_input_file(path, MODELS_FILE_ENV)
    return ModelRegistry.with_models_file(path)


def budget_from_flags() -> float:
    """The budget of ``--budget_usd``, checked; 0 when the flag is not given.

    Raises:
        UserError: It is given but not above 0.
    """
    if flags.BUDGET_USD.value is None:
        return 0.0
    return check_budget(flags.BUDGET_USD.value)


def open_store_from_flags() -> Store:
    """The store named by ``--store`` (or the default)."""
    return open_store(flags.STORE.value or default_store_url())


def build_context(
    registry: ModelRegistry,
    *,
    progress: ProgressPrinter | None = None,
    response_cache: bool = False,
) -> RunContext:
    """A run context from the common flags (offline mode, functions, concurrency, cache).

    Args:
        registry: The model keys.
        progress: Receives progress events and retries, if given.
        response_cache: Whether to set up the response cache from ``--cache`` in the store of
            ``--store`` (the local runners; event-driven runs take their policy from the job
            run instead). The store stays open until the process exits.
    """
    functions = default_registry()
    functions.load_modules(flags.FUNCTION_MODULES.value)
    on_retry: Callable[[RetryEvent], None] | None = progress.retry if progress else None
    offline = flags.OFFLINE.value or offline_from_env()
    client = ModelClient(registry, offline=offline, on_retry=on_retry)
    context = RunContext(
        models=client,
        functions=functions,
        max_concurrency=flags.MAX_CONCURRENCY.value,
        on_event=progress.event if progress else None,
    )
    if response_cache:
        # Offline answers are free and instant: cache them only when asked to explicitly.
        policy = cache_policy_from_flags(on_by_default=not offline)
        if policy != config_pb2.CACHE_POLICY_OFF:
            store = open_store_from_flags()
            atexit.register(store.close)
            context.cache = StoreResponseCache(store)
            context.default_cache_policy = policy
    return context


_CACHE_POLICIES = {
    "use": config_pb2.CACHE_POLICY_USE,
    "refresh": config_pb2.CACHE_POLICY_REFRESH,
    "off": config_pb2.CACHE_POLICY_OFF,
}


def cache_policy_from_flags(*, on_by_default: bool) -> config_pb2.CachePolicy:
    """The `CachePolicy` ``--cache`` names; when the flag is not given, its default or OFF."""
    if not on_by_default and not absl_flags.FLAGS["cache"].present:
        return config_pb2.CACHE_POLICY_OFF
    return _CACHE_POLICIES[flags.CACHE.value]


def describe_cache_hits(task_runs: Iterable[run_pb2.TaskRun]) -> str:
    """``"; N cache hits"`` for the steps answered from the response cache, or nothing."""
    every = (run for task_run in task_runs for run in (task_run, *task_run.items))  # map items
    hits = sum(step.cache_hit for task_run in every for step in task_run.steps)
    if not hits:
        return ""
    return f"; {hits} cache hit{'s' if hits != 1 else ''}"


def parse_vars(pairs: Iterable[str]) -> dict[str, Any]:
    """Parses ``name=value`` pairs; a value that is valid JSON is taken as JSON.

    ``NaN`` and ``Infinity`` (which Python's JSON reader accepts but JSON and the stores do not)
    stay text, as does anything else that is not JSON.

    Raises:
        UserError: A pair has no ``=`` or an empty name, or its JSON is nested too deep.
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--var {pair!r}: write name=value")
        try:
            value: Any = json.loads(text, parse_constant=_no_constant)
        except ValueError:
            value = text
        except RecursionError:
            raise UserError(f"--var {name.strip()}: the JSON value is nested too deep") from None
        result[name.strip()] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def run_and_close(context: RunContext, work: Awaitable[T]) -> T:
    """Awaits ``work`` and closes the context's model connections afterwards."""
    try:
        return await work
    finally:
        await context.models.aclose()


def run_async(context: RunContext, work: Awaitable[T]) -> T:
    """Runs ``work`` in a new event loop and closes the model connections."""
    result: list[T] = []

    async def main() -> None:
        # The value is handed out through `result`, not as the main task's result: on Python
        # 3.11, `asyncio.run` formats its main task's repr (result included) twice while
        # restoring the SIGINT handler, and the repr of a run record is its whole text
        # format (0.9 s for a 10,000-task run).
        result.append(await run_and_close(context, work))

    asyncio.run(main())
    return result[0]


def message_dict(message: Message) -> dict[str, Any]:
    """A message as a dict in the proto JSON mapping with snake_case names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def print_json(value: Any, out: TextIO | None = None) -> None:
    """Prints a JSON value (or a message, in the proto JSON mapping) on stdout."""
    if isinstance(value, Message):
        value = message_dict(value)
    print(json.dumps(value, indent=2, ensure_ascii=False), file=out or sys.stdout)


def status_exit_code(status: int) -> int:
    """The exit code for a run's final status."""
    return EXIT_OK if status == run_pb2.RUN_STATUS_SUCCEEDED else EXIT_RUN_FAILED


def guess_config_type(path: str) -> str:
    """Guesses what a JSON config holds from its top-level fields.

    Raises:
        UserError: The file is binary (its type cannot be seen) or unreadable.
    """
    data = formats.read_bytes(path)
    fmt = formats.format_for_path(path, data)
    if fmt is formats.ConfigFormat.BINARY:
        raise UserError(
            f"{path}: a binary config does not say what it holds: pass --config_type "
            f"({', '.join(CONFIG_TYPES)})"
        )
    text = data.decode("utf-8", errors="replace")
    if fmt is formats.ConfigFormat.JSON:
        try:
            tree = formats.parse_json(text, path)
        except ConfigError:  # reported with its position when the file is loaded
            tree = None
        keys = set(tree) if isinstance(tree, dict) else set()
    else:
        keys = {line.split(":")[0].split("{")[0].strip() for line in text.splitlines()}
    for name, field in (
        ("trace", "schema_version"),
        ("job_run", "run_id"),
        ("task_run", "task_run_id"),
        ("job", "tasks"),
        ("task", "steps"),
        ("models", "models"),
    ):
        if field in keys:
            return name
    return "step"


def describe_usage(usage: run_pb2.TokenUsage, cost: float) -> str:
    """A one-line summary of token usage and cost."""
    parts = []
    if usage.cached_input_tokens:
        parts.append(f"{usage.cached_input_tokens} cached")
    if usage.cache_write_input_tokens:
        parts.append(f"{usage.cache_write_input_tokens} cache write")
    cached = f" ({', '.join(parts)})" if parts else ""
    return f"tokens: {usage.input_tokens} in{cached}, {usage.output_tokens} out; cost: ${cost:.6f}"


def outputs_of(record: Message) -> Mapping[str, Any]:
    """The ``outputs`` field of a run record as a dict."""
    outputs = getattr(record, "outputs")  # noqa: B009 - any record type with outputs
    return struct_to_dict(outputs)
