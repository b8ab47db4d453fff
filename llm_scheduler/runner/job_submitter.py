"""Validates a config and commits a job run to a store; prints the run id.

Usage: job_submitter --input_path=job.json [--config_type=step|task|job] [--store=URL]
                     [--var name=value ...] [--run_id=ID] [--offline] [--cache=use|refresh|off]
                     [--budget_usd=AMOUNT]

The commit is what starts event-driven execution: a dispatcher (or, in the cloud, the function
triggered by the write) picks the run up. A step config is submitted as a job of one task, task
configs (``--input_path=a.json,b.json``) as a job of their ``next_task`` chain, resolved among
the given files and the tasks saved by earlier submissions. Submitting needs no provider key:
the workers that run the steps hold them. ``--offline`` is recorded in the run, so every worker
answers its model steps with the offline model. ``--budget_usd`` is recorded in the run too:
every worker refuses a call estimated to take the run over it (docs/costs.md). Submitting the
same --run_id twice starts it once.
"""

from __future__ import annotations

import functools

from absl import flags as absl_flags

from llm_scheduler.config import formats
from llm_scheduler.config.as_job import SubmittedConfig, job_of
from llm_scheduler.config.kinds import message_type
from llm_scheduler.config.validation import Validator
from llm_scheduler.errors import ConfigError, UserError
from llm_scheduler.execution.submit import (
    load_task_definition,
    save_task_definition,
    submit_job,
)
from llm_scheduler.function_steps import default_registry
from llm_scheduler.models.client import offline_from_env
from llm_scheduler.runner import common, flags
from llm_scheduler.telemetry import with_telemetry
from llm_scheduler.v1 import config_pb2

__all__ = ["main", "run"]

_SUBMITTABLE = ("step", "task", "job")


def _load(path: str) -> SubmittedConfig:
    config_type = flags.CONFIG_TYPE.value or common.guess_config_type(path)
    if config_type not in _SUBMITTABLE:
        raise UserError(
            f"{path}: a {config_type} config cannot be submitted; submit a step, task or job "
            "config (--config_type=step|task|job)"
        )
    config = formats.load(path, message_type(config_type))
    assert isinstance(config, SubmittedConfig)
    return config


def _submit() -> int:
    budget_usd = common.budget_from_flags()
    paths = common.require_input_paths()
    configs = [(path, _load(path)) for path in paths]
    registry = common.models_registry()
    functions = default_registry()
    functions.load_modules(flags.FUNCTION_MODULES.value)
    variables = common.parse_vars(flags.VARS.value)
    validator = Validator(registry, functions)
    # Each file is checked on its own first, so that problems name the file's own fields.
    problems = []
    for path, config in configs:
        validator.file = path
        try:
            if isinstance(config, config_pb2.StepConfig):
                validator.check_step(config, variables)
            elif isinstance(config, config_pb2.JobConfig):
                validator.check_job(config, variables)
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    offline = flags.OFFLINE.value or offline_from_env()
    with common.open_store_from_flags() as store:
        job = job_of(configs, functools.partial(load_task_definition, store))
        validator.file = paths[0] if len(paths) == 1 else ",".join(paths)
        validator.check_job(job, variables)
        for _, config in configs:
            if isinstance(config, config_pb2.TaskConfig):
                save_task_definition(store, config)
        run_id = submit_job(
            store,
            job,
            inputs=variables,
            run_id=flags.RUN_ID.value or "",
            default_cache_policy=_cache_policy(),
            offline=offline,
            budget_usd=budget_usd,
        )
        mode = " (offline: every worker answers with the offline model)" if offline else ""
        if budget_usd:
            mode += f" with a budget of ${budget_usd:g}"
        common.report(f"submitted job {job.job_id!r} to {store.url}{mode}")
    print(run_id)
    return common.EXIT_OK


def _cache_policy() -> str:
    # Event-driven runs use the cache only when the submitter asks for it.
    if not absl_flags.FLAGS["cache"].present:
        return ""
    return config_pb2.CachePolicy.Name(common.cache_policy_from_flags(on_by_default=False))


# Exports runs when the OTEL_* environment asks for it (docs/observability.md).
main = common.main_for(with_telemetry(_submit))


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()
