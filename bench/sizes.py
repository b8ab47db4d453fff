"""How big each workload is: the full sizes of the issue, and tiny ones for ``--quick``."""

from __future__ import annotations

import dataclasses
import json
import math

__all__ = ["FULL", "QUICK", "Sizes"]


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Workload sizes and fake-server latencies.

    Attributes:
        chain_steps: W1/W5: sequential model steps.
        fanout_width: W2: parallel tasks between the first and the join task.
        fanout_latency_ms: W2: the server's latency per call.
        wide_calls: W3: independent calls.
        wide_latency_ms: W3: the server's latency per call.
        wide_concurrency: W3: calls in flight at most.
        hop_tasks: W4: tasks in one chain.
        hop_chains: W4: chains run at once for the throughput figure.
        hop_workers: W4: dispatcher process counts to try.
        firestore_hop_tasks: W4 on the Firestore emulator: tasks in one chain (it is slower).
        hop_budget_seconds: W4: the longest a phase (one chain, several chains) may run; the
            figures of a phase cut short cover the task runs finished by then.
        map_items: W6: items of the map (the target's size).
        map_latency_ms: W6: the server's latency per call.
        map_concurrency: W6: items (calls) in flight at most.
        map_growth: W6: the list lengths measured to show how the cost grows (``map_items``
            among them).
        chain_growth: W7: the chain lengths (steps of one task) measured in process.
        wide_growth: W8: the wide job sizes (independent tasks) measured in process.
        validate_tasks: The fan-out whose validation is timed.
        scaling_repetitions: W7/W8 repetitions at most (the largest sizes take a while).
    """

    chain_steps: int = 200
    fanout_width: int = 100
    fanout_latency_ms: float = 200.0
    wide_calls: int = 1000
    wide_latency_ms: float = 50.0
    wide_concurrency: int = 64
    hop_tasks: int = 200
    hop_chains: int = 4
    hop_workers: tuple[int, ...] = (1, 2, 4)
    firestore_hop_tasks: int = 50
    hop_budget_seconds: float = 20.0
    map_items: int = 1000
    map_latency_ms: float = 50.0
    map_concurrency: int = 64
    map_growth: tuple[int, ...] = (100, 1000)
    chain_growth: tuple[int, ...] = (200, 2_000, 20_000)
    wide_growth: tuple[int, ...] = (1_000, 10_000, 100_000)
    validate_tasks: int = 100_000
    scaling_repetitions: int = 3

    @property
    def fanout_ideal_seconds(self) -> float:
        """Three calls deep: the first task, the parallel tasks, the join."""
        return 3 * self.fanout_latency_ms / 1000

    @property
    def wide_ideal_seconds(self) -> float:
        """ceil(calls / concurrency) waves of one latency each."""
        return math.ceil(self.wide_calls / self.wide_concurrency) * self.wide_latency_ms / 1000

    def map_ideal_seconds(self, items: int) -> float:
        """W6: ceil(items / concurrency) waves of one latency each."""
        return math.ceil(items / self.map_concurrency) * self.map_latency_ms / 1000

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Sizes:
        data = json.loads(text)
        for name in ("hop_workers", "map_growth", "chain_growth", "wide_growth"):
            data[name] = tuple(data[name])
        return cls(**data)


FULL = Sizes()
QUICK = Sizes(
    chain_steps=20,
    fanout_width=10,
    fanout_latency_ms=20.0,
    wide_calls=64,
    wide_latency_ms=10.0,
    wide_concurrency=16,
    hop_tasks=10,
    hop_chains=2,
    hop_workers=(1, 2),
    firestore_hop_tasks=5,
    hop_budget_seconds=5.0,
    map_items=64,
    map_latency_ms=10.0,
    map_concurrency=16,
    map_growth=(16, 64),
    chain_growth=(20, 200),
    wide_growth=(100, 1_000),
    validate_tasks=1_000,
    scaling_repetitions=1,
)
