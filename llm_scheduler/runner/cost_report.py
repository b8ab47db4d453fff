"""Reports what the runs in a store cost, per job, task, model and day (see docs/costs.md).

Usage:
    cost_report [--store=URL] [--group_by=job,task,model,day] [--since=YYYY-MM-DD]
                [--until=YYYY-MM-DD] [--job_id=ID | --run_id=ID] [--models_file=PATH] [--json]

Each call's cost is computed from its recorded usage at the registry's prices now (the
built-in ones, or --models_file's), cached input tokens at the cached-input price and cache
writes at the cache-write price, and shown beside the cost recorded when it ran: a difference
means the prices changed since.
"""

from __future__ import annotations

import sys

from absl import flags as absl_flags

from llm_scheduler.execution.cost_report import (
    GROUP_FIELDS,
    CostReport,
    CostRow,
    parse_day,
    store_cost_report,
)
from llm_scheduler.runner import common, flags

__all__ = ["main", "run"]

GROUP_BY = absl_flags.DEFINE_string(
    "group_by",
    ",".join(GROUP_FIELDS),
    f"What to add costs up by: any of {', '.join(GROUP_FIELDS)}, comma-separated; empty for the "
    "total only.",
)
SINCE = absl_flags.DEFINE_string(
    "since", None, "Count only calls whose step started on this UTC day (YYYY-MM-DD) or later."
)
UNTIL = absl_flags.DEFINE_string(
    "until", None, "Count only calls whose step started on this UTC day (YYYY-MM-DD) or earlier."
)

# Progress on stderr once every this many runs read.
_PROGRESS_EVERY = 50


def _report() -> int:
    registry = common.models_registry()
    since = parse_day(SINCE.value, "--since") if SINCE.value else None
    until = parse_day(UNTIL.value, "--until") if UNTIL.value else None

    def progress(runs: int) -> None:
        if runs % _PROGRESS_EVERY == 0 and not flags.QUIET.value:
            print(f"cost_report: {runs} runs read", file=sys.stderr, flush=True)

    with common.open_store_from_flags() as store:
        report = store_cost_report(
            store,
            registry,
            run_id=flags.RUN_ID.value or "",
            job_id=flags.JOB_ID.value or "",
            group_by=GROUP_BY.value.split(","),
            since=since,
            until=until,
            on_progress=progress,
        )
    if flags.JSON.value:
        common.print_json(report.to_json())
    else:
        sys.stdout.write(format_report(report))
    if report.unpriced_models:
        print(
            f"cost_report: no prices for {', '.join(report.unpriced_models)}: their calls show "
            "$0; give their prices in a models file (--models_file)",
            file=sys.stderr,
        )
    return common.EXIT_OK


_COUNTS = (
    ("calls", "calls"),
    ("cache hits", "cache_hits"),
    ("reused", "reused"),
    ("input", "input_tokens"),
    ("cached input", "cached_input_tokens"),
    ("cache write", "cache_write_input_tokens"),
    ("output", "output_tokens"),
)


def format_report(report: CostReport) -> str:
    """The report as an aligned text table, with the total last.

    A ``*`` marks a recorded cost that differs from the cost at today's prices.
    """
    header = [*report.group_by, *(title for title, _ in _COUNTS), "cost $", "recorded $"]
    lines = [_cells(report, row) for row in report.rows]
    total = _cells(report, report.total)
    if report.group_by:
        total[0] = "total"
    table = [header, *lines, total]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    named = len(report.group_by)

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < named else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [render(header), *(render(line) for line in lines)]
    out.append("-" * len(render(header)))
    out.append(render(total))
    where = f"{report.runs} run{'' if report.runs == 1 else 's'}"
    if report.since or report.until:
        where += f", days {report.since or '…'} to {report.until or '…'} (UTC)"
    out.append(f"({where})")
    return "\n".join(out) + "\n"


def _cells(report: CostReport, row: CostRow) -> list[str]:
    differs = abs(row.cost_usd - row.recorded_cost_usd) > 5e-7
    return [
        *(row.group.get(name, "") for name in report.group_by),
        *(str(getattr(row, field)) for _, field in _COUNTS),
        f"{row.cost_usd:.6f}",
        f"{row.recorded_cost_usd:.6f}{'*' if differs else ''}",
    ]


main = common.main_for(_report)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()
