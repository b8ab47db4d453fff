"""The benchmark command: ``python -m bench.run [--quick] [--repetitions=5] [--write-docs]``.

It starts the fake OpenAI server in its own process (and the Firestore emulator, unless
``--no-firestore``), then, for each repetition, measures every workload variant in a fresh
process (`bench.workloads`, `bench.hops`), alternating which of a scheduler/baseline pair goes
first. It prints the markdown report on stdout (progress on stderr) and, with
``--write-docs``, puts it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench import report
from bench.fake_openai_server import ServerProcess
from bench.sizes import FULL, QUICK, Sizes

__all__ = ["main"]

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
_VARIANT_TIMEOUT_SECONDS = 900


def _pairs(sizes: Sizes) -> list[tuple[tuple[str, ...], float]]:
    """Variant groups (a scheduler/baseline pair, or one) and the server latency they need."""
    return [
        (("w1_bare", "w1_engine", "w1_engine_otel"), 0.0),
        (("w1_persisted",), 0.0),
        (("w1_http_baseline", "w1_http_engine"), 0.0),
        (("w2_baseline", "w2_engine"), sizes.fanout_latency_ms),
        (("w3_baseline", "w3_engine", "w3_engine_tasks_capped"), sizes.wide_latency_ms),
        (("w5_replay",), 0.0),
        (("w6_baseline", "w6_engine"), sizes.map_latency_ms),
        (("client_sdk", "client_httpx", "client_lean"), 0.0),
    ]


def w6_key(variant: str, items: int, sizes: Sizes) -> str:
    """Where a W6 measurement is kept: ``w6_engine`` at the target's size, ``w6_engine@100``
    at the other sizes of the growth series."""
    return variant if items == sizes.map_items else f"{variant}@{items}"


def _group_sizes(group: tuple[str, ...], sizes: Sizes) -> list[Sizes]:
    """The sizes a group of variants is measured at: W6 once per length of its growth series."""
    if not group[0].startswith("w6_"):
        return [sizes]
    lengths = sorted({*sizes.map_growth, sizes.map_items})
    return [dataclasses.replace(sizes, map_items=items) for items in lengths]


def scaling_runs(sizes: Sizes) -> list[tuple[str, int]]:
    """W7/W8 and validation: ``(variant, size)`` in the order they run (bare and engine of a
    size back to back)."""
    runs = [
        (f"{kind}_{side}", size)
        for kind, growth in (("chain", sizes.chain_growth), ("fchain", sizes.chain_growth))
        for size in growth
        for side in ("bare", "engine")
    ]
    runs += [(f"wide_{side}", size) for size in sizes.wide_growth for side in ("bare", "engine")]
    return [
        *runs,
        ("validate", sizes.validate_tasks),
        ("validate_distinct", sizes.validate_tasks),
    ]


def _run(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=_VARIANT_TIMEOUT_SECONDS,
        env=env,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(command[:3])} failed (exit {completed.returncode}):\n"
            f"{completed.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@contextlib.contextmanager
def _firestore(enabled: bool) -> Iterator[str | None]:
    """The emulator's host while it runs, or None when skipped or unavailable."""
    if not enabled:
        yield None
        return
    from llm_scheduler.testing.firestore_emulator import FirestoreEmulator, emulator_available

    if not emulator_available():
        print("Firestore emulator not installed: W4 on Firestore skipped", file=sys.stderr)
        yield None
        return
    with FirestoreEmulator() as emulator:
        yield emulator.host


def _progress(result: dict[str, Any]) -> str:
    if "cpu_seconds" in result and "size" in result:
        return f"{result['cpu_seconds'] * 1000:.1f} ms CPU, {result['rss_mb']:.0f} MB"
    if "seconds" in result:
        return f"{result['seconds'] * 1000:.1f} ms, {result['rss_mb']:.0f} MB"
    hops = ", ".join(f"{w}w {r['hop_ms']:.1f} ms/hop" for w, r in result["workers"].items())
    return hops


def _selected(variant: str, only: tuple[str, ...]) -> bool:
    return not only or any(variant.startswith(prefix) for prefix in only)


def measure_all(
    sizes: Sizes,
    repetitions: int,
    firestore: bool,
    firestore_repetitions: int,
    only: tuple[str, ...] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Every variant (or those whose name starts with one of ``only``), ``repetitions`` times,
    each run in a fresh process."""
    results: dict[str, list[dict[str, Any]]] = {}

    def record(result: dict[str, Any]) -> None:
        if "items" in result:
            result["variant"] = w6_key(result["variant"], result["items"], sizes)
        if "size" in result:
            result["variant"] = f"{result['variant']}@{result['size']}"
        results.setdefault(result["variant"], []).append(result)
        print(f"  {result['variant']}: {_progress(result)}", file=sys.stderr, flush=True)

    with ServerProcess() as server, _firestore(firestore) as emulator_host:
        for rep in range(repetitions):
            print(f"repetition {rep + 1}/{repetitions}", file=sys.stderr, flush=True)
            for group, latency_ms in _pairs(sizes):
                server.control(latency_ms=latency_ms, reset=True)
                for group_sizes in _group_sizes(group, sizes):
                    args = ["--sizes", group_sizes.to_json(), "--server", server.root_url]
                    # Alternate which of a pair goes first, so drift does not favour one side.
                    for variant in group if rep % 2 == 0 else reversed(group):
                        if _selected(variant, only):
                            record(_run(["-m", "bench.workloads", variant, *args]))
            if rep < sizes.scaling_repetitions:
                for variant, size in scaling_runs(sizes):
                    if _selected(f"scaling_{variant}", only):
                        record(_run(["-m", "bench.scaling", variant, "--size", str(size)]))
            hop_args = ["-m", "bench.hops", "measure", "--sizes", sizes.to_json(), "--store"]
            if _selected("w4_sqlite", only):
                record(_run([*hop_args, "sqlite"]))
            if (
                emulator_host is not None
                and rep < firestore_repetitions
                and _selected("w4_firestore", only)
            ):
                env = {**os.environ, "FIRESTORE_EMULATOR_HOST": emulator_host}
                record(_run([*hop_args, "firestore"], env=env))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark llm-scheduler against baselines.")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--no-firestore", action="store_true", help="skip W4 on the emulator")
    parser.add_argument(
        "--firestore-repetitions",
        type=int,
        default=1,
        help="repetitions of W4 on the (slow) Firestore emulator; at most --repetitions",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated variant name prefixes to run (e.g. w1_,w4_sqlite); for profiling",
    )
    parser.add_argument(
        "--map-growth",
        default="",
        help="W6: comma-separated list lengths to measure instead of the default series "
        "(e.g. 100,1000,10000)",
    )
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS}")
    parser.add_argument("--json", type=pathlib.Path, help="also write the raw measurements here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.map_growth:
        growth = tuple(int(length) for length in args.map_growth.split(",") if length)
        sizes = dataclasses.replace(sizes, map_growth=growth)
    repetitions = max(args.repetitions, 1)
    started = time.monotonic()
    machine = report.machine(repetitions, args.quick)
    only = tuple(prefix for prefix in args.only.split(",") if prefix)
    if only and args.write_docs:
        parser.error("--only measures a subset: it cannot --write-docs")
    results = measure_all(
        sizes, repetitions, not args.no_firestore, max(args.firestore_repetitions, 1), only
    )
    generated = machine + "\n" + report.render(results, sizes, repetitions)
    print(generated)
    print(f"benchmark took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.write_docs:
        report.write_docs(DOCS, generated)
        print(f"wrote {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
