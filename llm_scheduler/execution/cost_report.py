"""What runs cost: calls, tokens and US dollars per job, task, model and day, from run records.

A cost report adds up the model and embedding calls of job runs (`cost_report` over records,
`store_cost_report` over the runs in a store, SQLite or Firestore alike through
`execution.reader`). Each call's cost is computed again from its recorded usage and the
registry's prices (`ModelSpec.cost`: other input tokens at the input price, prompt-cache reads
at the cached-input price, prompt-cache writes at the cache-write price, output tokens at the
output price), and shown beside the cost recorded when it ran, so a price changed since (or a
models file missing at run time) shows as a difference instead of going unnoticed.

What counts:

- A **call** is a model-query or embedding step that sent a request (``attempts`` > 0), whether
  it succeeded or failed; its usage and recorded cost are those of its record.
- A step answered from the **response cache** made no call and cost nothing: it is counted in
  ``cache_hits``, its tokens are not (its record repeats the cached response's usage).
- A step **reused** by a replay made no call: counted in ``reused``, with no tokens.
- A step refused by a budget, or that failed before sending, made no call and counts nowhere.
- Function steps cost nothing. A sub-job step's own record repeats its child run's totals: it
  is skipped, and the child's calls are counted under the child's job and tasks when the child
  is read (with ``--run_id``, a run's children are read with it; over a whole store, every run,
  child runs included, counts its own calls once).
- A call answered by the offline model in place of a real one (``--offline``) costs nothing.
- The **day** of a call is the UTC date its step started.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from llm_scheduler.errors import UserError
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.run_list import MAX_LIMIT, list_runs
from llm_scheduler.models.registry import ModelRegistry, ModelSpec, UnknownModelKeyError
from llm_scheduler.store.base import Store
from llm_scheduler.v1 import run_pb2

__all__ = [
    "GROUP_FIELDS",
    "CostReport",
    "CostRow",
    "cost_report",
    "parse_day",
    "parse_group_by",
    "store_cost_report",
]

# What a report can be grouped by, in column order.
GROUP_FIELDS = ("job", "task", "model", "day")


@dataclasses.dataclass
class CostRow:
    """The calls of one group (or of the whole report).

    Attributes:
        group: The group's value of each field it is grouped by (``{"model": "GPT_4O"}``).
        calls: Model and embedding calls made.
        cache_hits: Steps answered from the response cache (no call, no cost).
        reused: Steps a replay reused (no call, no cost).
        input_tokens: Input tokens of the calls, prompt-cache reads and writes included.
        cached_input_tokens: The part of ``input_tokens`` served from a prompt cache.
        cache_write_input_tokens: The part of ``input_tokens`` written to a prompt cache.
        output_tokens: Output tokens of the calls.
        cost_usd: Their cost at the registry's prices now.
        recorded_cost_usd: Their cost as recorded when they ran.
    """

    group: dict[str, str] = dataclasses.field(default_factory=dict)
    calls: int = 0
    cache_hits: int = 0
    reused: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    recorded_cost_usd: float = 0.0

    def add(self, other: CostRow) -> None:
        """Adds another row's counts and costs into this one."""
        self.calls += other.calls
        self.cache_hits += other.cache_hits
        self.reused += other.reused
        self.input_tokens += other.input_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.cache_write_input_tokens += other.cache_write_input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.recorded_cost_usd += other.recorded_cost_usd

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object: its group's fields, then its counts and costs."""
        counts = dataclasses.asdict(self)
        del counts["group"]
        return {**self.group, **counts}


@dataclasses.dataclass(frozen=True)
class CostReport:
    """A cost report.

    Attributes:
        group_by: The fields its rows are grouped by (of `GROUP_FIELDS`).
        rows: One row per group that made a call (or had a cache hit or a reused step), ordered
            by group.
        total: Every row added up.
        runs: The job runs read (child runs of sub-jobs included).
        unpriced_models: Model keys of calls that the registry prices at 0 although their
            model needs an API key (or that it does not know): their cost shows as 0.
        since: The first day counted, if limited.
        until: The last day counted, if limited.
    """

    group_by: tuple[str, ...]
    rows: list[CostRow]
    total: CostRow
    runs: int
    unpriced_models: list[str]
    since: datetime.date | None = None
    until: datetime.date | None = None

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return {
            "group_by": list(self.group_by),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "runs": self.runs,
            "rows": [row.to_json() for row in self.rows],
            "total": self.total.to_json(),
            "unpriced_models": self.unpriced_models,
        }


def parse_group_by(text: str | Sequence[str]) -> tuple[str, ...]:
    """The fields of ``job,task,model,day`` (any of them, in any order; none for a total only).

    Raises:
        UserError: A field is unknown or repeated.
    """
    names = text.split(",") if isinstance(text, str) else list(text)
    fields = tuple(name.strip() for name in names if name.strip())
    for name in fields:
        if name not in GROUP_FIELDS:
            raise UserError(
                f"cannot group costs by {name!r}: use any of {', '.join(GROUP_FIELDS)}, comma-"
                "separated"
            )
    if len(set(fields)) != len(fields):
        raise UserError(f"a field is named twice in the grouping {','.join(fields)!r}")
    return fields


def parse_day(text: str, what: str = "a day") -> datetime.date:
    """A UTC day written ``YYYY-MM-DD``.

    Raises:
        UserError: It is not one.
    """
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{what} is a date written YYYY-MM-DD (UTC), not {text!r}") from None


class _Accumulator:
    """Adds up the calls of job runs into the rows of a report."""

    def __init__(
        self,
        registry: ModelRegistry,
        group_by: tuple[str, ...],
        since: datetime.date | None,
        until: datetime.date | None,
        job_id: str,
    ) -> None:
        self._registry = registry
        self._group_by = group_by
        self._since = since
        self._until = until
        self._job_id = job_id
        self._rows: dict[tuple[str, ...], CostRow] = {}
        self._specs: dict[str, ModelSpec | None] = {}
        self.unpriced: set[str] = set()
        self.runs = 0

    def add_run(self, job_run: run_pb2.JobRun, *, children: bool) -> None:
        """Adds a run's calls (and its sub-jobs' child runs', with ``children``)."""
        self.runs += 1
        if not self._job_id or job_run.job_id == self._job_id:
            for task_run in job_run.tasks:
                for run in (task_run, *task_run.items):
                    for step in run.steps:
                        self._add_step(job_run.job_id, task_run.task_id, step)
        if children:
            for child in job_run.children:
                self.add_run(child, children=True)

    def _add_step(self, job_id: str, task_id: str, step: run_pb2.StepRun) -> None:
        if not step.model_key or step.child_run_id:
            return  # a function or sub-job step: no call of its own
        reused, hit = bool(step.reused_from_run_id), step.cache_hit
        if not (reused or hit or step.attempts > 0):
            return  # refused by a budget, or failed before sending: no call
        day = _day(step.started_at)
        if (self._since or self._until) and day is None:
            return
        if day is not None and (
            (self._since and day < self._since) or (self._until and day > self._until)
        ):
            return
        values = {
            "job": job_id,
            "task": task_id,
            "model": step.model_key,
            "day": day.isoformat() if day else "unknown",
        }
        key = tuple(values[name] for name in self._group_by)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = CostRow(group=dict(zip(self._group_by, key, strict=True)))
        if reused:
            row.reused += 1
        elif hit:
            row.cache_hits += 1
        else:
            usage = step.usage
            row.calls += 1
            row.input_tokens += usage.input_tokens
            row.cached_input_tokens += usage.cached_input_tokens
            row.cache_write_input_tokens += usage.cache_write_input_tokens
            row.output_tokens += usage.output_tokens
            row.recorded_cost_usd += step.cost_usd
            row.cost_usd += self._price(step)

    def _price(self, step: run_pb2.StepRun) -> float:
        """A call's cost at the registry's prices now."""
        key = step.model_key
        if key not in self._specs:
            try:
                self._specs[key] = self._registry.resolve(key)
            except UnknownModelKeyError:
                self._specs[key] = None
        spec = self._specs[key]
        if spec is None:
            self.unpriced.add(key)
            return 0.0
        if step.provider == "offline" and spec.provider != "offline":
            return 0.0  # the offline model answered in its place: free
        if not spec.priced:
            if spec.needs_api_key:
                self.unpriced.add(key)
            return 0.0
        usage = step.usage
        return spec.cost(
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            cache_write_input_tokens=usage.cache_write_input_tokens,
        )

    def report(self) -> CostReport:
        rows = [self._rows[key] for key in sorted(self._rows)]
        total = CostRow()
        for row in rows:
            total.add(row)
        return CostReport(
            group_by=self._group_by,
            rows=rows,
            total=total,
            runs=self.runs,
            unpriced_models=sorted(self.unpriced),
            since=self._since,
            until=self._until,
        )


def _day(stamp: Any) -> datetime.date | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return datetime.datetime.fromtimestamp(stamp.seconds, datetime.UTC).date()


def cost_report(
    runs: Iterable[run_pb2.JobRun],
    registry: ModelRegistry,
    *,
    group_by: Sequence[str] = GROUP_FIELDS,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    job_id: str = "",
) -> CostReport:
    """The cost report of job runs (each with its sub-jobs' child runs in ``children``).

    Args:
        runs: The job runs (`run_job` records, `read_job_run` records, traces' runs).
        registry: Prices each call's recorded usage.
        group_by: Fields of `GROUP_FIELDS` to group by; none for a total only.
        since: Count only calls whose step started on this UTC day or later.
        until: Count only calls whose step started on this UTC day or earlier.
        job_id: Count only the calls of this job's runs (not of other jobs' sub-jobs).

    Raises:
        UserError: A field of ``group_by`` is unknown, or ``since`` is after ``until``.
    """
    accumulator = _accumulator(registry, group_by, since, until, job_id)
    for run in runs:
        accumulator.add_run(run, children=True)
    return accumulator.report()


def store_cost_report(
    store: Store,
    registry: ModelRegistry,
    *,
    run_id: str = "",
    job_id: str = "",
    group_by: Sequence[str] = GROUP_FIELDS,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> CostReport:
    """The cost report of the runs in a store.

    Args:
        store: The store.
        registry: Prices each call's recorded usage.
        run_id: Only this run, with the child runs of its sub-jobs; every run by default (each
            counting its own calls: child runs are runs of the store too).
        job_id: Only calls of this job's runs.
        group_by: Fields of `GROUP_FIELDS` to group by; none for a total only.
        since: Count only calls whose step started on this UTC day or later.
        until: Count only calls whose step started on this UTC day or earlier.
        on_progress: Called with the number of runs read so far, after each run.

    Raises:
        UserError: No run ``run_id`` is in the store, a field of ``group_by`` is unknown, or
            ``since`` is after ``until``.
    """
    accumulator = _accumulator(registry, group_by, since, until, job_id)
    if run_id:
        job_run = read_job_run(store, run_id)
        if job_run is None:
            raise UserError(f"no job run {run_id!r} in {store.url}")
        accumulator.add_run(job_run, children=True)
        if on_progress is not None:
            on_progress(accumulator.runs)
        return accumulator.report()
    for listed_id in _run_ids(store, job_id, since, until):
        # Child runs are runs of the store too: each is read once, as a run of its own.
        job_run = read_job_run(store, listed_id, children=False)
        if job_run is None:
            continue  # gone since it was listed
        accumulator.add_run(job_run, children=False)
        if on_progress is not None:
            on_progress(accumulator.runs)
    return accumulator.report()


def _accumulator(
    registry: ModelRegistry,
    group_by: Sequence[str],
    since: datetime.date | None,
    until: datetime.date | None,
    job_id: str,
) -> _Accumulator:
    fields = parse_group_by(group_by)
    if since and until and since > until:
        raise UserError(f"the first day {since} is after the last day {until}")
    return _Accumulator(registry, fields, since, until, job_id)


def _run_ids(
    store: Store, job_id: str, since: datetime.date | None, until: datetime.date | None
) -> Iterator[str]:
    """The runs that may hold calls in the days asked for, newest first, a page at a time."""
    cursor = ""
    while True:
        page = list_runs(store, job_id=job_id, limit=MAX_LIMIT, cursor=cursor)
        for summary in page.runs:
            created = _date_of(summary.created_at)
            finished = _date_of(summary.finished_at)
            if until and created and created > until:
                continue  # its steps all started after it was created
            if since and finished and finished < since:
                continue  # its steps all started before it finished
            yield summary.run_id
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _date_of(text: str) -> datetime.date | None:
    """The UTC day of an RFC 3339 timestamp, or None when there is none."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return None
