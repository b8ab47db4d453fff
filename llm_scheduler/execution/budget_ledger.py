"""The budget of an event-driven run: one ledger document that every worker reserves in.

A run submitted with a budget (`submit_job(..., budget_usd=)`) gets a ledger document at
``job_runs/{run_id}/budget/ledger`` holding a `BudgetState`; its job run records
``budget_usd``, and ``budget_run_id``: the run whose ledger its calls spend from (its own; for
the child run of a sub-job step, its caller's, so a sub-job spends from the budget of the run
that started it). Every worker, in every process or cloud function instance, reserves a call's
estimate there before the call and settles it after, each an atomic read-modify-write of that
one document (`Store.update_if`), so two calls racing for the last of a budget cannot both be
made (`llm_scheduler.engine.budget` has the rule).

Cost: two writes of the ledger per model or embedding call, for budgeted runs only. Firestore
sustains about one write per second on one document (bursts above it are absorbed, then writes
slow down and conflict), so a budgeted run makes about one call every two seconds, sustained;
runs without a budget never touch a ledger.

A worker that dies between reserve and settle leaves its reservation counted: the budget errs
on the side of spending less. Resuming a run keeps its ledger (what it spent stays spent);
`set_budget` changes its budget, e.g. to raise it before a resume.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from llm_scheduler.engine.budget import (
    Budget,
    BudgetState,
    CallEstimate,
    PlannedCall,
    check_budget,
)
from llm_scheduler.errors import BudgetExceededError, StoreError, UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.store.base import Doc, Store

__all__ = ["StoreBudget", "ledger_path", "read_budget", "set_budget"]


def ledger_path(run_id: str) -> str:
    """The path of a run's ledger document."""
    return f"{docs.job_run_path(run_id)}/budget/ledger"


def read_budget(store: Store, run_id: str) -> BudgetState | None:
    """What the ledger of a run holds, or None when the run has no budget of its own."""
    doc = store.get(ledger_path(run_id))
    return None if doc is None else BudgetState.from_doc(doc)


def set_budget(store: Store, run_id: str, budget_usd: float) -> BudgetState:
    """Sets the budget of a run that has one (what it spent stays spent).

    Raises:
        UserError: ``budget_usd`` is not above 0, or the run has no budget of its own (a run
            submitted without one, or the child run of a sub-job step, which spends from its
            caller's).
    """
    budget_usd = check_budget(budget_usd)
    updated = store.update_if(ledger_path(run_id), lambda doc: {"budget_usd": budget_usd})
    if updated is None:
        raise UserError(
            f"run {run_id!r} has no budget of its own to change: it was submitted without one "
            "(a budget is given when a run is submitted), or it is a sub-job's child run (set "
            "its caller's)"
        )
    return BudgetState.from_doc(updated)


class StoreBudget(Budget):
    """The `Budget` of an event-driven run: its ledger document in the store."""

    def __init__(self, store: Store, budget_run_id: str) -> None:
        """A handle on a run's ledger.

        Args:
            store: Where the run lives.
            budget_run_id: The run whose ledger the calls spend from.
        """
        self._store = store
        self._path = ledger_path(budget_run_id)
        self._run_id = budget_run_id

    async def reserve(self, call: PlannedCall) -> CallEstimate:
        """See `Budget.reserve`; an atomic update of the ledger document.

        Raises:
            BudgetExceededError: The call could take the run over its budget.
            StoreError: The ledger document is missing.
        """
        outcome: list[CallEstimate | BudgetExceededError | None] = []

        def decide(doc: Doc | None) -> Doc | None:
            outcome.clear()  # it may run again, on a newer version of the ledger
            if doc is None:
                return None
            state = BudgetState.from_doc(doc)
            now = time.time()
            if state.must_wait(call, now):  # the model's probe is in flight: read again later
                outcome.append(None)
                return None
            try:
                outcome.append(state.reserve(call, now))
            except BudgetExceededError as error:
                outcome.append(error)
                return {"refused": state.refused}
            fields: Doc = {"reserved_usd": state.reserved_usd, "calls": state.calls}
            if state.probes != doc.get("probes"):
                fields["probes"] = state.probes
            return fields

        pause = 0.02
        while True:
            await self._store.call(self._store.update_if, self._path, decide)
            if not outcome:
                raise StoreError(
                    f"the budget ledger of run {self._run_id!r} ({self._path}) is missing from "
                    f"{self._store.url}"
                )
            result = outcome[0]
            if isinstance(result, BudgetExceededError):
                raise result
            if result is not None:
                return result
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def settle(
        self, estimate: CallEstimate, cost_usd: float, output_tokens: int, input_tokens: int = 0
    ) -> None:
        """See `Budget.settle`; an atomic update of the ledger document."""

        def decide(doc: Doc | None) -> Doc | None:
            if doc is None:
                return None
            state = BudgetState.from_doc(doc)
            state.settle(estimate, cost_usd, output_tokens, input_tokens)
            fields: dict[str, Any] = {
                "reserved_usd": state.reserved_usd,
                "spent_usd": state.spent_usd,
            }
            if state.largest_output_tokens != doc.get("largest_output_tokens"):
                fields["largest_output_tokens"] = state.largest_output_tokens
            if state.input_tokens_per_byte != doc.get("input_tokens_per_byte"):
                fields["input_tokens_per_byte"] = state.input_tokens_per_byte
            if state.probes != doc.get("probes"):
                fields["probes"] = state.probes
            return fields

        await self._store.call(self._store.update_if, self._path, decide)
