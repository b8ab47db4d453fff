"""Validates a job config and commits a job run to a store; prints the run id.

Usage: job_submitter --input_path=job.json [--store=URL] [--var name=value ...] [--run_id=ID]
                     [--cache=use|refresh|off]

The commit is what starts event-driven execution: a dispatcher (or, in the cloud, the function
triggered by the write) picks the run up. Submitting the same --run_id twice starts it once.
"""

from __future__ import annotations

import sys

from absl import flags as absl_flags

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator, model_keys_of
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.function_steps import default_registry
from llm_scheduler.models.client import ModelClient, offline_from_env
from llm_scheduler.runner import common, flags
from llm_scheduler.v1 import config_pb2

__all__ = ["main", "run"]


def _submit() -> int:
    path = common.require_input_path()
    job = formats.load(path, config_pb2.JobConfig)
    registry = common.models_registry()
    functions = default_registry()
    functions.load_modules(flags.FUNCTION_MODULES.value)
    variables = common.parse_vars(flags.VARS.value)
    Validator(registry, functions, file=path).check_job(job, variables)
    if not (flags.OFFLINE.value or offline_from_env()):
        # The workers need the keys, but a missing one is better reported now than later.
        ModelClient(registry, offline=False).check_credentials(
            model_keys_of(s for t in job.tasks for s in t.steps)
        )
    with common.open_store_from_flags() as store:
        run_id = submit_job(
            store,
            job,
            inputs=variables,
            run_id=flags.RUN_ID.value or "",
            default_cache_policy=_cache_policy(),
        )
        print(f"submitted job {job.job_id!r} to {store.url}", file=sys.stderr)
    print(run_id)
    return common.EXIT_OK


def _cache_policy() -> str:
    # Event-driven runs use the cache only when the submitter asks for it.
    if not absl_flags.FLAGS["cache"].present:
        return ""
    return config_pb2.CachePolicy.Name(common.cache_policy_from_flags(on_by_default=False))


main = common.main_for(_submit)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()
