"""A run's budget in US dollars: a call is refused before it is made if it would take the run over.

The rule (docs/costs.md, "Budgets"), the same in process and event-driven:

1. Before a model or embedding call (not a response-cache hit, not a step a replay reuses), its
   cost is **estimated** from what is known before sending it (`estimate_call`), at the model's
   full input and output prices:
   - input tokens: the rendered request's UTF-8 bytes (prompts, and a JSON schema if any) times
     the most tokens per byte this model key counted in this run so far, or one token per
     `DEFAULT_BYTES_PER_TOKEN` bytes before it has answered;
   - output tokens: the step's ``max_tokens`` when it sets one, else the largest output this
     model key gave in this run so far, else as many as its input (a reply as long as its
     request).
   After one call of a model the estimate of the same call again is its recorded cost, so a
   run of like calls stops exactly before the one that would take it over. While a model has
   not answered in the run, its first call whose output is unknown (no ``max_tokens``) is a
   **probe**: the run's other such calls to that model wait until it returns (at most
   `PROBE_WAIT_SECONDS`), so a parallel fan-out is estimated from what the probe counted rather
   than all at once from the guess before it.
2. The estimate is **reserved**: the call goes ahead only if what the run has spent, plus what
   calls in flight have reserved, plus this estimate, is at most the budget. Otherwise the step
   fails with `BudgetExceededError` and nothing is sent. Reserving is atomic (one ledger per
   run: in memory, or one store document shared by every worker), so two calls in parallel
   cannot both pass a check that only one of them fits.
3. When the call returns, its reservation is **settled**: replaced by its recorded cost (0 when
   it failed: providers do not bill failed requests), and what it counted (input tokens per
   byte, output tokens) informs the next estimates.

An estimate is not a bound: a reply longer than estimated (a step without ``max_tokens``), or a
first call whose request counts more tokens per byte than the default, may take the recorded
cost over the budget by that call's difference; every call after it is refused. Set
``max_tokens`` on the steps to bound the output.

A call whose model needs an API key but has no prices (a ``provider:model`` key, or a models
file entry without prices) is refused in a budgeted run: its cost cannot be estimated. Calls to
the offline model and to keyless servers (local models) are free.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import json
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from llm_scheduler.errors import BudgetExceededError, UserError
from llm_scheduler.models.base import EmbeddingRequest, ModelRequest
from llm_scheduler.models.registry import ModelSpec

__all__ = [
    "DEFAULT_BYTES_PER_TOKEN",
    "PROBE_WAIT_SECONDS",
    "Budget",
    "BudgetLedger",
    "BudgetState",
    "CallEstimate",
    "PlannedCall",
    "check_budget",
    "estimate_call",
    "plan_embedding",
    "plan_query",
]

# The bytes of a request counted as one input token before its model has answered in the run
# (English text averages about four bytes per token; three errs on the side of spending less).
DEFAULT_BYTES_PER_TOKEN = 3
# The longest other calls wait for a model's probe (its first call of unknown output) before
# going ahead on the guess: a worker that died mid-probe holds nobody up longer.
PROBE_WAIT_SECONDS = 300.0
# How often a waiting call looks again (doubling from the first to the last).
_FIRST_PAUSE_SECONDS = 0.005
_LAST_PAUSE_SECONDS = 0.5


@dataclasses.dataclass(frozen=True)
class PlannedCall:
    """What is known about a call before it is made, for `estimate_call`.

    Attributes:
        model_key: The step's model key.
        request_bytes: The UTF-8 bytes of its rendered request (prompts, JSON schema; an
            embedding's input).
        max_output_tokens: The step's ``max_tokens``; 0 when it sets none.
        embedding: Whether it is an embedding call (no output tokens).
        input_price: US dollars per million input tokens.
        output_price: US dollars per million output tokens.
        priced: Whether its cost can be estimated (False: a model that needs an API key but has
            no prices).
    """

    model_key: str
    request_bytes: int
    max_output_tokens: int = 0
    embedding: bool = False
    input_price: float = 0.0
    output_price: float = 0.0
    priced: bool = True


@dataclasses.dataclass(frozen=True)
class CallEstimate:
    """A call's estimated cost, as reserved.

    Attributes:
        model_key: The step's model key.
        request_bytes: The UTF-8 bytes of the rendered request.
        input_tokens: Input tokens estimated.
        output_tokens: Output tokens estimated.
        input_basis: Where ``input_tokens`` came from: ``ratio_so_far`` (the most tokens per
            byte of this model key in the run so far) or ``default`` (`DEFAULT_BYTES_PER_TOKEN`).
        output_basis: Where ``output_tokens`` came from: ``max_tokens``, ``largest_so_far``,
            ``as_input`` (as many as the input) or ``embedding`` (none).
        cost_usd: The estimated cost in US dollars.
        input_price: US dollars per million input tokens.
        output_price: US dollars per million output tokens.
    """

    model_key: str
    request_bytes: int
    input_tokens: int
    output_tokens: int
    input_basis: str
    output_basis: str
    cost_usd: float
    input_price: float = 0.0
    output_price: float = 0.0

    def describe(self) -> str:
        """How the estimate was made, in words."""
        per_byte = (
            f"the most tokens per byte {self.model_key} counted in this run so far"
            if self.input_basis == "ratio_so_far"
            else f"one token per {DEFAULT_BYTES_PER_TOKEN} bytes before {self.model_key} answered"
        )
        text = (
            f"estimated ${self.cost_usd:.6f}: {self.input_tokens} input tokens "
            f"({self.request_bytes} bytes of request at {per_byte}) at ${self.input_price:g}/M"
        )
        if self.output_basis == "embedding":
            return text
        basis = {
            "max_tokens": "the step's max_tokens",
            "largest_so_far": f"the largest output of {self.model_key} in this run so far",
            "as_input": "as many as the input: the step sets no max_tokens and "
            f"{self.model_key} has not answered in this run yet",
        }[self.output_basis]
        return f"{text} + {self.output_tokens} output tokens ({basis}) at ${self.output_price:g}/M"


def check_budget(budget_usd: float) -> float:
    """Returns a budget once checked.

    Raises:
        UserError: It is not a finite number above 0.
    """
    if (
        isinstance(budget_usd, bool)
        or not isinstance(budget_usd, int | float)
        or not math.isfinite(budget_usd)
        or budget_usd <= 0
    ):
        raise UserError(
            f"a budget is an amount in US dollars above 0, e.g. 0.50, not {budget_usd!r}"
        )
    return float(budget_usd)


def _priced(spec: ModelSpec) -> bool:
    return spec.priced or (not spec.needs_api_key)


def plan_query(model_key: str, spec: ModelSpec, request: ModelRequest) -> PlannedCall:
    """The `PlannedCall` of a model query about to be sent to the model of ``spec``."""
    size = len(request.system_prompt.encode()) + len(request.user_prompt.encode())
    schema = request.response_format.json_schema
    if schema:
        size += len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode())
    max_tokens = request.parameters.get("max_tokens")
    limit = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0
    return PlannedCall(
        model_key=model_key,
        request_bytes=size,
        max_output_tokens=max(limit, 0),
        input_price=spec.input_price,
        output_price=spec.output_price,
        priced=_priced(spec),
    )


def plan_embedding(model_key: str, spec: ModelSpec, request: EmbeddingRequest) -> PlannedCall:
    """The `PlannedCall` of an embedding about to be made with the model of ``spec``."""
    return PlannedCall(
        model_key=model_key,
        request_bytes=len(request.input.encode()),
        embedding=True,
        input_price=spec.input_price,
        priced=_priced(spec),
    )


def estimate_call(
    call: PlannedCall,
    largest_output: Mapping[str, int],
    tokens_per_byte: Mapping[str, float],
) -> CallEstimate:
    """A call's estimated cost (the rule of the module docstring).

    Args:
        call: The call.
        largest_output: The largest output (tokens) each model key gave in the run so far.
        tokens_per_byte: The most input tokens per request byte each model key counted in the
            run so far.
    """
    ratio = tokens_per_byte.get(call.model_key)
    if ratio:
        input_tokens, input_basis = math.ceil(call.request_bytes * ratio), "ratio_so_far"
    else:
        input_tokens = math.ceil(call.request_bytes / DEFAULT_BYTES_PER_TOKEN)
        input_basis = "default"
    if call.embedding:
        output, basis = 0, "embedding"
    elif call.max_output_tokens:
        output, basis = call.max_output_tokens, "max_tokens"
    elif largest_output.get(call.model_key):
        output, basis = largest_output[call.model_key], "largest_so_far"
    else:
        output, basis = input_tokens, "as_input"
    cost = (input_tokens * call.input_price + output * call.output_price) / 1e6
    return CallEstimate(
        model_key=call.model_key,
        request_bytes=call.request_bytes,
        input_tokens=input_tokens,
        output_tokens=output,
        input_basis=input_basis,
        output_basis=basis,
        cost_usd=cost,
        input_price=call.input_price,
        output_price=call.output_price,
    )


@dataclasses.dataclass
class BudgetState:
    """What a run's ledger holds.

    Attributes:
        budget_usd: The budget in US dollars.
        spent_usd: The recorded cost of the calls settled so far.
        reserved_usd: The estimates of the calls in flight (reserved, not settled yet). A worker
            that died mid-call leaves its reservation here: it stays counted.
        calls: Calls reserved so far.
        refused: Calls refused so far.
        largest_output_tokens: The largest output each model key gave in the run so far.
        input_tokens_per_byte: The most input tokens per request byte each model key counted
            in the run so far.
        probes: The model keys whose probe (first call of unknown output) is in flight, with
            the time (seconds since the epoch) it was reserved.
    """

    budget_usd: float
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    calls: int = 0
    refused: int = 0
    largest_output_tokens: dict[str, int] = dataclasses.field(default_factory=dict)
    input_tokens_per_byte: dict[str, float] = dataclasses.field(default_factory=dict)
    probes: dict[str, float] = dataclasses.field(default_factory=dict)

    def _unknown_output(self, call: PlannedCall) -> bool:
        return (
            not call.embedding
            and not call.max_output_tokens
            and not self.largest_output_tokens.get(call.model_key)
            and call.output_price > 0
        )

    def must_wait(self, call: PlannedCall, now: float) -> bool:
        """Whether ``call`` waits for its model's probe before it may be reserved."""
        started = self.probes.get(call.model_key)
        return (
            started is not None
            and now - started < PROBE_WAIT_SECONDS
            and self._unknown_output(call)
        )

    def reserve(self, call: PlannedCall, now: float | None = None) -> CallEstimate:
        """Reserves a call's estimate.

        Raises:
            BudgetExceededError: It could take the run over its budget (nothing is reserved).
        """
        estimate = estimate_call(call, self.largest_output_tokens, self.input_tokens_per_byte)
        if not call.priced:
            self.refused += 1
            raise BudgetExceededError(
                f"the run's budget of ${self.budget_usd:.6f} cannot cover a call to "
                f"{call.model_key}: its model needs an API key and has no prices, so its cost "
                "cannot be estimated; no call was made. Give it prices in a models file "
                "(--models_file, *_price_per_million_tokens) or run without a budget"
            )
        committed = self.spent_usd + self.reserved_usd
        if estimate.cost_usd > 0 and committed + estimate.cost_usd > self.budget_usd:
            self.refused += 1
            in_flight = (
                f" and ${self.reserved_usd:.6f} is reserved by calls in flight"
                if self.reserved_usd > 0
                else ""
            )
            raise BudgetExceededError(
                f"the run's budget of ${self.budget_usd:.6f} would be exceeded: "
                f"${self.spent_usd:.6f} is spent{in_flight}, and this call to "
                f"{call.model_key} is {estimate.describe()}; no call was made. Raise the budget "
                "(--budget_usd), or set a smaller max_tokens on the step"
            )
        self.reserved_usd += estimate.cost_usd
        self.calls += 1
        if self._unknown_output(call):
            self.probes[call.model_key] = time.time() if now is None else now
        return estimate

    def settle(
        self, estimate: CallEstimate, cost_usd: float, output_tokens: int, input_tokens: int = 0
    ) -> None:
        """Replaces a reservation by the call's recorded cost (the arguments of `Budget.settle`)."""
        self.reserved_usd = max(self.reserved_usd - estimate.cost_usd, 0.0)
        self.spent_usd += cost_usd
        key = estimate.model_key
        if estimate.output_basis == "as_input":  # a probe returned (or failed): others go on
            self.probes.pop(key, None)
        if output_tokens > self.largest_output_tokens.get(key, 0):
            self.largest_output_tokens[key] = output_tokens
        if input_tokens and estimate.request_bytes:
            ratio = input_tokens / estimate.request_bytes
            if ratio > self.input_tokens_per_byte.get(key, 0.0):
                self.input_tokens_per_byte[key] = ratio

    def to_doc(self) -> dict[str, Any]:
        """The state as a JSON object (a store document)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BudgetState:
        """The state a `to_doc` object holds."""
        largest = doc.get("largest_output_tokens") or {}
        return cls(
            budget_usd=float(doc.get("budget_usd") or 0.0),
            spent_usd=float(doc.get("spent_usd") or 0.0),
            reserved_usd=float(doc.get("reserved_usd") or 0.0),
            calls=int(doc.get("calls") or 0),
            refused=int(doc.get("refused") or 0),
            largest_output_tokens={str(k): int(v) for k, v in dict(largest).items()},
            input_tokens_per_byte={
                str(k): float(v) for k, v in dict(doc.get("input_tokens_per_byte") or {}).items()
            },
            probes={str(k): float(v) for k, v in dict(doc.get("probes") or {}).items()},
        )


class Budget(abc.ABC):
    """A run's ledger: where calls reserve their estimates and settle their costs."""

    @abc.abstractmethod
    async def reserve(self, call: PlannedCall) -> CallEstimate:
        """Reserves a call's estimate before it is made.

        Raises:
            BudgetExceededError: The call could take the run over its budget; it must not be
                made.
        """

    @abc.abstractmethod
    async def settle(
        self, estimate: CallEstimate, cost_usd: float, output_tokens: int, input_tokens: int = 0
    ) -> None:
        """Replaces a call's reservation by its recorded cost once it returned (or failed).

        Args:
            estimate: What `reserve` returned for the call.
            cost_usd: The call's recorded cost (0 when it failed).
            output_tokens: The output tokens it counted (0 when it failed).
            input_tokens: The input tokens it counted (0 when it failed).
        """


class BudgetLedger(Budget):
    """The ledger of a run in one process (`run_job(..., budget_usd=)`).

    Attributes:
        state: What it holds; read it for what the run spent.
    """

    def __init__(self, budget_usd: float) -> None:
        """Creates a ledger with nothing spent.

        Args:
            budget_usd: The budget in US dollars (more than 0).
        """
        self.state = BudgetState(budget_usd=budget_usd)
        self._lock = threading.Lock()  # a context may serve runs in several threads

    async def reserve(self, call: PlannedCall) -> CallEstimate:
        """See `Budget.reserve`; waits while the model's probe is in flight."""
        pause = _FIRST_PAUSE_SECONDS
        while True:
            with self._lock:
                now = time.time()
                if not self.state.must_wait(call, now):
                    return self.state.reserve(call, now)
            await asyncio.sleep(pause)  # polled: the ledger may serve several event loops
            pause = min(pause * 2, _LAST_PAUSE_SECONDS)

    async def settle(
        self, estimate: CallEstimate, cost_usd: float, output_tokens: int, input_tokens: int = 0
    ) -> None:
        """See `Budget.settle`."""
        with self._lock:
            self.state.settle(estimate, cost_usd, output_tokens, input_tokens)
