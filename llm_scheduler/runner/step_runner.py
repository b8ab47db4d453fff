"""Runs one step config and prints its outputs.

Usage: step_runner --input_path=step.json [--var name=value ...] [--offline]
"""

from __future__ import annotations

import sys

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator, model_keys_of
from llm_scheduler.engine.step import run_step
from llm_scheduler.runner import common, flags
from llm_scheduler.runner.progress import ProgressPrinter
from llm_scheduler.v1 import config_pb2

__all__ = ["main", "run"]


def _run_step() -> int:
    path = common.require_input_path()
    step = formats.load(path, config_pb2.StepConfig)
    registry = common.models_registry()
    context = common.build_context(
        registry, progress=ProgressPrinter(quiet=True), response_cache=True
    )
    variables = common.parse_vars(flags.VARS.value)
    Validator(registry, context.functions, file=path).check_step(step, variables)
    context.models.check_credentials(model_keys_of([step]))
    result = common.run_async(context, run_step(step, variables, context))
    record = result.record
    if not result.ok:
        print(f"step failed: {record.error.type}: {record.error.message}", file=sys.stderr)
    else:
        model = f"{record.provider}:{record.provider_model} " if record.provider else ""
        summary = common.describe_usage(record.usage, record.cost_usd)
        cached = " (cached)" if record.cache_hit else ""
        common.report(f"{model}{summary}; {record.latency_seconds:.2f}s{cached}")
    common.print_json(record if flags.PRINT_RECORD.value else result.outputs)
    return common.status_exit_code(record.status)


main = common.main_for(_run_step)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()
