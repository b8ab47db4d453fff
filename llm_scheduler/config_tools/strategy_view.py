"""How `config_reader` shows strategy tasks: every variation before a run, a compare table after.

Before a run, a strategy task reads ``rewrite  6 variations (model x prompt), in parallel``,
then one line per variation with its bindings. After one, ``--compare=TASK`` prints one row per
variation (`engine.strategy_compare`): its parameters, status, output (shortened), tokens, cost
and latency; ``--compare_with=OTHER_RUN`` adds the other run's status and output and what
changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from llm_scheduler.config.strategies import is_strategy, variations
from llm_scheduler.engine.strategy_compare import VariationChange, VariationRow
from llm_scheduler.v1 import config_pb2

__all__ = [
    "OUTPUT_CHARS",
    "change_table",
    "describe_strategy",
    "strategies_preview",
    "variation_table",
]

# A table's output cells are cut to this many characters.
OUTPUT_CHARS = 48


def describe_strategy(task: config_pb2.TaskConfig) -> list[str]:
    """A strategy task's header line, then one indented line per variation with its bindings."""
    found = variations(task)
    axes = " x ".join(axis.name for axis in task.strategy.axes)
    mode = "one at a time" if task.strategy.in_series else "in parallel"
    subset = f", {len(found)} listed in only" if task.strategy.only else ""
    lines = [f"{task.task_id}  {len(found)} variations ({axes}{subset}), {mode}"]
    for variation in found:
        bindings = ", ".join(
            f"{name}={_short(json.dumps(value), 30)}" for name, value in variation.bindings.items()
        )
        lines.append(f"  {variation.name}  {bindings}")
    return lines


def strategies_preview(tasks: Iterable[config_pb2.TaskConfig]) -> str:
    """A ``strategy tasks:`` block listing every variation by name, for a description; or ``""``."""
    lines = [
        f"\n  {line}" for task in tasks if is_strategy(task) for line in describe_strategy(task)
    ]
    return "\nstrategy tasks:" + "".join(lines) if lines else ""


def _short(text: str, limit: int = OUTPUT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    every = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in every
    )


def _axes(rows: Iterable[VariationRow | None]) -> list[str]:
    axes: dict[str, None] = {}
    for row in rows:
        if row is not None:
            axes.update(dict.fromkeys(row.parameters))
    return list(axes)


def _cells(row: VariationRow) -> list[str]:
    return [
        row.status.lower(),
        _short(row.output_text()),
        f"{row.input_tokens}/{row.output_tokens}",
        f"${row.cost_usd:.6f}",
        f"{row.latency_seconds:.2f}s" + (" (reused)" if row.reused else ""),
    ]


def variation_table(rows: Sequence[VariationRow]) -> str:
    """One line per variation: its parameters, status, output, tokens, cost and latency."""
    axes = _axes(rows)
    header = [
        *(axis.upper() for axis in axes),
        "STATUS",
        "OUTPUT",
        "TOKENS IN/OUT",
        "COST",
        "LATENCY",
    ]
    body = [[*(row.parameters.get(axis, "-") for axis in axes), *_cells(row)] for row in rows]
    return _table(header, body)


def change_table(changes: Sequence[VariationChange]) -> str:
    """One line per variation of two runs: each run's status and output, and what changed."""
    axes = _axes([*(c.before for c in changes), *(c.after for c in changes)])
    header = [
        *(axis.upper() for axis in axes),
        "BEFORE",
        "AFTER",
        "OUTPUT BEFORE",
        "OUTPUT AFTER",
        "CHANGED",
    ]
    body: list[list[str]] = []
    for change in changes:
        either = change.after or change.before
        assert either is not None
        body.append(
            [
                *(either.parameters.get(axis, "-") for axis in axes),
                change.before.status.lower() if change.before else "-",
                change.after.status.lower() if change.after else "-",
                _short(change.before.output_text(), 32) if change.before else "-",
                _short(change.after.output_text(), 32) if change.after else "-",
                ", ".join(change.changed) or "nothing",
            ]
        )
    return _table(header, body)
