"""The view model of a strategy task's variations, compared side by side on a run page.

A strategy task (`TaskConfig.strategy`) records one item per variation; its details show them
as one table (`engine.strategy_compare.variation_rows`): name, parameters, status, output (cut
short, in full on demand), tokens, cost and latency. Like `run_view`, this only reshapes the
record.
"""

from __future__ import annotations

from typing import Any

from llm_scheduler.config.strategies import is_strategy, variations
from llm_scheduler.engine.strategy_compare import variation_rows
from llm_scheduler.v1 import run_pb2

__all__ = ["SHORT_OUTPUT_CHARS", "strategy_view"]

# How much of a variation's output its row shows before "show in full".
SHORT_OUTPUT_CHARS = 120


def strategy_view(job_run: run_pb2.JobRun, task_id: str) -> dict[str, Any] | None:
    """A strategy task's variations, for its details; None for a task that is no strategy.

    Returns:
        ``axes`` (the axes' names, in config order), ``in_series``, ``variations_total`` (how
        many variations the config names) and ``variations``: a row each, in variation order
        (`VariationRow.to_json` with ``output`` (its text, `VariationRow.output_text`),
        ``output_short`` (cut to `SHORT_OUTPUT_CHARS`), ``output_cut`` (whether it was) and
        ``tokens`` (in plus out)).
    """
    config = next((task for task in job_run.config.tasks if task.task_id == task_id), None)
    if config is None or not is_strategy(config):
        return None
    rows = []
    for row in variation_rows(job_run, task_id):
        text = row.output_text()
        cut = len(text) > SHORT_OUTPUT_CHARS
        rows.append(
            row.to_json()
            | {
                "output": text,
                "output_short": text[: SHORT_OUTPUT_CHARS - 1] + "…" if cut else text,
                "output_cut": cut,
                "tokens": row.input_tokens + row.output_tokens,
            }
        )
    return {
        "axes": [axis.name for axis in config.strategy.axes],
        "in_series": config.strategy.in_series,
        "variations_total": len(variations(config)),
        "variations": rows,
    }
