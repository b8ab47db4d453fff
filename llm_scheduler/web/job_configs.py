"""What the jobs pages show: job configs checked as the CLI checks them, and the jobs to list.

No web framework here: functions take text, a store and a folder, and return JSON-able data, so
the routes stay thin and these are tested directly.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from llm_scheduler.config import dataflow, formats
from llm_scheduler.config.sub_jobs import inline_sub_jobs, sub_job_steps
from llm_scheduler.config.validation import Validator
from llm_scheduler.errors import ConfigError, ConfigProblem, UserError
from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.store import Store
from llm_scheduler.store.base import document_id
from llm_scheduler.v1 import config_pb2
from llm_scheduler.web.graph_layout import layout_job

__all__ = [
    "FORMATS",
    "MAX_TEXT_CHARS",
    "NEW_JOB_TEXT",
    "CheckedJob",
    "JobEntry",
    "check_job_text",
    "config_file",
    "format_of",
    "job_files",
    "job_text",
    "list_jobs",
    "read_config_file",
]

FORMATS = {"json": formats.ConfigFormat.JSON, "textproto": formats.ConfigFormat.TEXTPROTO}
# The largest config text the editor takes (as the CLIs' file limit).
MAX_TEXT_CHARS = formats.MAX_FILE_BYTES

# What the editor opens for a new job: one task, one step, an input with a default.
NEW_JOB_TEXT = """\
// A job: tasks (each a list of steps) linked by next_task / next_tasks.
{
  "job_id": "my_job",
  "name": "My job",
  "input_config": {"payload": {"topic": "owls"}},
  "tasks": [
    {
      "task_id": "draft",
      "steps": [
        {
          "name": "draft",
          "model_query_config": {
            "model_key": "GEMINI_FLASH",
            "user_prompt": "Write a haiku about %topic%."
          },
          "output_config": {"payload": {"haiku": ""}}
        }
      ]
    }
  ]
}
"""


@dataclasses.dataclass(frozen=True)
class CheckedJob:
    """A job config text, parsed and validated.

    Attributes:
        job: The parsed config, or None when the text does not parse (as a job config).
        problems: Everything wrong with it: parse errors, or the validator's problems.
    """

    job: config_pb2.JobConfig | None
    problems: list[ConfigProblem]

    @property
    def ok(self) -> bool:
        """Whether the config is a valid job."""
        return self.job is not None and not self.problems

    def to_json(self) -> dict[str, Any]:
        """``{"ok", "problems", "job", "graph", "inputs"}`` for the editor.

        The graph and inputs are there whenever the text parses, valid or not, so the preview
        stays while a problem is being fixed.
        """
        job = self.job
        return {
            "ok": self.ok,
            "problems": [dataclasses.asdict(problem) for problem in self.problems],
            "job": None
            if job is None
            else {"job_id": job.job_id, "name": job.name, "tasks": len(job.tasks)},
            "graph": layout_job(job) if job is not None and job.tasks else None,
            "inputs": [] if job is None else _inputs(job),
        }


def _inputs(job: config_pb2.JobConfig) -> list[dict[str, Any]]:
    return [
        {"name": name, "default": value}
        for name, value in dataflow.payload(job.input_config).items()
    ]


def format_of(name: str) -> formats.ConfigFormat:
    """The editor format named ``json`` or ``textproto``.

    Raises:
        UserError: Another name.
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise UserError(f"unknown format {name!r}: use json or textproto") from None


def check_job_text(
    text: str,
    fmt: formats.ConfigFormat,
    *,
    registry: ModelRegistry,
    functions: FunctionRegistry | None = None,
    file: str = "",
    variables: Iterable[str] = (),
    path: str = "",
) -> CheckedJob:
    """Parses and validates a job config as ``config_reader`` does (`formats`, `Validator`).

    Args:
        text: The config text.
        fmt: JSON (with ``//`` comments) or textproto.
        registry: The model keys the config may use.
        functions: The functions it may call; the default registry when None.
        file: The file name the problems name, if any.
        variables: Input variable names given at run time, beside the job's own.
        path: The config's file in the configs folder, if it is one: its sub-job steps' child
            jobs are read from their ``job_path`` (relative to it, and only from inside its
            folder) and inlined, as `formats.load` does.
    """
    if len(text) > MAX_TEXT_CHARS:
        problem = ConfigProblem(
            "", f"the config is over {MAX_TEXT_CHARS} characters", "split it up", file
        )
        return CheckedJob(None, [problem])
    try:
        job = formats.loads(text, config_pb2.JobConfig, fmt, file)
    except ConfigError as error:
        return CheckedJob(None, error.problems)
    if path:
        try:
            _check_inside(job, path, file)
            inline_sub_jobs(job, path)
        except ConfigError as error:
            return CheckedJob(job, error.problems)
    try:
        Validator(registry, functions or default_registry(), file=file).check_job(job, variables)
    except ConfigError as error:
        return CheckedJob(job, error.problems)
    # The web UI runs jobs in its store: what a store cannot run yet is a problem here too.
    return CheckedJob(job, [])


def _check_inside(job: config_pb2.JobConfig, path: str, file: str) -> None:
    """Refuses a sub-job file outside the config's folder: the editor's text is the user's.

    Raises:
        ConfigError: A ``job_path`` leads out of the folder.
    """
    folder = pathlib.Path(path).parent.resolve()
    for field, step in sub_job_steps(job):
        job_path = step.sub_job_config.job_path
        if job_path and not (folder / job_path).resolve().is_relative_to(folder):
            raise ConfigError.single(
                f"{field}.sub_job_config.job_path",
                f"the sub-job {job_path!r} is outside the configs folder",
                "put the child job's file in the configs folder, or give the job inline",
                file,
            )


@dataclasses.dataclass(frozen=True)
class JobEntry:
    """A job config the jobs page lists.

    Attributes:
        job_id: The job's id (empty when the file does not parse).
        name: The job's name.
        tasks: How many tasks it has.
        source: ``store`` for a job saved in the store, else the file's path.
        error: Why the file could not be read as a job, if it could not.
    """

    job_id: str
    name: str
    tasks: int
    source: str
    error: str = ""

    @property
    def edit_url(self) -> str:
        """The editor's address for this job."""
        if self.source == "store":
            return "/jobs/edit?" + urlencode({"job_id": self.job_id})
        return "/jobs/edit?" + urlencode({"file": self.source})

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {**dataclasses.asdict(self), "edit_url": self.edit_url}


def list_jobs(store: Store, configs_dir: str) -> list[JobEntry]:
    """The jobs saved in the store (``jobs/{job_id}``), then the job configs of a folder.

    A folder's files are those with a JSON or textproto extension whose content looks like a
    job (``runner.common.guess_config_type``); one that does not parse is listed with its error.
    """
    entries = []
    for path, doc in store.list("jobs"):
        job_id = document_id(path)
        try:
            full = blobs.inline(store, doc, f"saved job {job_id!r}")
            job = docs.record_from_doc(full.get("config") or {}, config_pb2.JobConfig)
        except UserError as error:  # pragma: no cover - a damaged definition
            entries.append(JobEntry(job_id, "", 0, "store", str(error)))
            continue
        entries.append(JobEntry(job.job_id or job_id, job.name, len(job.tasks), "store"))
    for file in job_files(configs_dir):
        try:
            job = formats.load(file, config_pb2.JobConfig)
        except UserError as error:
            entries.append(JobEntry("", "", 0, file, str(error)))
            continue
        entries.append(JobEntry(job.job_id, job.name, len(job.tasks), file))
    return entries


# The extensions `formats.format_for_path` reads as JSON or textproto.
_TEXT_SUFFIXES = {".json", ".jsonc", ".textproto", ".txtpb", ".pbtxt", ".prototxt"}


def job_files(configs_dir: str) -> list[str]:
    """The job config files directly in a folder, by name (none when the folder is empty)."""
    from llm_scheduler.runner.common import guess_config_type

    if not configs_dir or not os.path.isdir(configs_dir):
        return []
    found = []
    for entry in sorted(pathlib.Path(configs_dir).iterdir()):
        if entry.suffix.lower() not in _TEXT_SUFFIXES or not entry.is_file():
            continue
        try:
            if guess_config_type(str(entry)) == "job":
                found.append(str(entry))
        except UserError:
            continue
    return found


def config_file(configs_dir: str, name: str) -> str:
    """The path of a job config file of the folder, from a path the jobs page gave.

    Only files of ``configs_dir`` can be opened this way, never another path on the machine.

    Raises:
        UserError: No folder is set, or ``name`` is not one of its job config files.
    """
    if not configs_dir:
        raise UserError("no configs folder is set: start web_ui with --configs_dir=DIR")
    wanted = pathlib.Path(name).resolve()
    for file in job_files(configs_dir):
        if pathlib.Path(file).resolve() == wanted:
            return file
    raise UserError(f"{name}: not a job config of the configs folder {configs_dir}")


def job_text(
    job: config_pb2.JobConfig, fmt: formats.ConfigFormat = formats.ConfigFormat.JSON
) -> str:
    """A job config as editor text."""
    return formats.dumps(job, fmt).decode("utf-8")


def read_config_file(path: str) -> tuple[str, formats.ConfigFormat]:
    """A config file's text and format (by its extension).

    Raises:
        ConfigError: The file is too large or not UTF-8 text.
    """
    data = formats.read_bytes(path)
    fmt = formats.format_for_path(path, data)
    return formats.decode_text(data, path), fmt
