"""The W7/W8 table of the report: how the engine's cost per step and per task grows with size."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from bench.sizes import Sizes

__all__ = ["HEADER", "scaling_rows"]

Results = Mapping[str, Sequence[Mapping[str, Any]]]

# The targets (issue 14).
MODEL_STEP_US = 20.0  # engine CPU above the bare loop, per model step
FUNCTION_STEP_US = 10.0  # per function step
GROWTH = 1.2  # the largest size's cost per unit / the smallest's
TASK_KB = 3.0  # memory per task of a wide job
VALIDATE_SECONDS = 2.0  # a 100,000-task job

HEADER = [
    "Workload",
    "Size",
    "llm-scheduler, CPU per unit",
    "Bare, CPU per unit",
    "Overhead per unit",
    "Growth (vs smallest)",
    "Memory per unit (ours / bare)",
    "Target",
    "Status",
]


def _median(results: Results, variant: str, field: str) -> float | None:
    values = [r[field] for r in results.get(variant, ()) if r.get(field) is not None]
    return statistics.median(values) if values else None


def _per_unit_us(results: Results, variant: str, size: int) -> float | None:
    cpu = _median(results, f"{variant}@{size}", "cpu_seconds")
    return None if cpu is None else cpu / size * 1e6


def _kb_per_unit(results: Results, variant: str, size: int) -> float | None:
    runs = [
        (r["rss_mb"] - r["rss_before_mb"]) * 1024 / size
        for r in results.get(f"{variant}@{size}", ())
        if "rss_before_mb" in r
    ]
    return statistics.median(runs) if runs else None


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} µs"


def _kb(value: float | None) -> str:
    return "—" if value is None else f"{max(value, 0.0):.1f} KB"


def _status(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def _series(
    results: Results,
    label: str,
    kind: str,
    growth: Sequence[int],
    overhead_target: float | None,
    memory: bool,
) -> list[list[str]]:
    rows: list[list[str]] = []
    first: float | None = None
    for size in growth:
        ours = _per_unit_us(results, f"scaling_{kind}_engine", size)
        bare = _per_unit_us(results, f"scaling_{kind}_bare", size)
        overhead = None if ours is None or bare is None else ours - bare
        # Growth of the engine's own cost for chains, of the whole cost per task for wide jobs.
        measure = overhead if overhead_target is not None else ours
        if first is None:
            first = measure
        grows = None if measure is None or not first else measure / first
        targets: list[str] = []
        oks: list[bool] = []
        if overhead_target is not None and overhead is not None:
            targets.append(f"≤ {overhead_target:.0f} µs")
            oks.append(overhead <= overhead_target)
        if grows is not None and size != growth[0]:
            targets.append(f"growth ≤ {GROWTH}x")
            oks.append(grows <= GROWTH)
        mine_kb = _kb_per_unit(results, f"scaling_{kind}_engine", size) if memory else None
        bare_kb = _kb_per_unit(results, f"scaling_{kind}_bare", size) if memory else None
        if mine_kb is not None:
            targets.append(f"≤ {TASK_KB:.0f} KB/task")
            oks.append(mine_kb <= TASK_KB)
        rows.append(
            [
                label,
                f"{size:,}",
                _us(ours),
                _us(bare),
                _us(overhead),
                "—" if grows is None else f"{grows:.2f}x",
                f"{_kb(mine_kb)} / {_kb(bare_kb)}" if memory else "—",
                ", ".join(targets) or "—",
                _status(all(oks) if oks else None),
            ]
        )
    return rows


def scaling_rows(results: Results, sizes: Sizes) -> list[list[str]]:
    """One row per workload and size, and one for the validation of a large job."""
    rows = [
        *_series(
            results, "W7 chain, model steps", "chain", sizes.chain_growth, MODEL_STEP_US, False
        ),
        *_series(
            results,
            "W7 chain, function steps",
            "fchain",
            sizes.chain_growth,
            FUNCTION_STEP_US,
            False,
        ),
        *_series(
            results, "W8 wide, one model step per task", "wide", sizes.wide_growth, None, True
        ),
    ]
    for variant, label in (
        ("validate", "Validation of a fan-out (tasks of one shape)"),
        ("validate_distinct", "Validation of W8's job (a prompt per task)"),
    ):
        validated = _median(results, f"scaling_{variant}@{sizes.validate_tasks}", "cpu_seconds")
        rows.append(
            [
                label,
                f"{sizes.validate_tasks:,} tasks",
                "—" if validated is None else f"{validated:.2f} s",
                "—",
                "—",
                "—",
                "—",
                f"≤ {VALIDATE_SECONDS:.0f} s at 100,000 tasks",
                _status(None if validated is None else validated <= VALIDATE_SECONDS),
            ]
        )
    return rows
