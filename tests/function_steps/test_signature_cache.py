"""Function steps check their arguments against a signature computed once per function."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_scheduler.errors import FunctionCallError
from llm_scheduler.function_steps import FunctionRegistry


class Unhashable:
    """A callable that cannot be a cache key (it defines __eq__ and no __hash__)."""

    def __eq__(self, other: object) -> bool:
        return other is self

    def __call__(self, value: Any) -> Any:
        return value


def test_an_unhashable_callable_is_still_checked_and_called() -> None:
    registry = FunctionRegistry()
    registry.register(Unhashable(), name="echo")
    assert asyncio.run(registry.call("echo", {"value": 3})) == 3
    with pytest.raises(FunctionCallError, match="signature: echo"):
        asyncio.run(registry.call("echo", {"other": 3}))


def test_a_cached_signature_still_refuses_bad_arguments_each_time() -> None:
    registry = FunctionRegistry()

    def add(a: int, b: int) -> int:
        return a + b

    registry.register(add, name="add")
    for _ in range(3):
        assert asyncio.run(registry.call("add", {"a": 1, "b": 2})) == 3
        with pytest.raises(FunctionCallError, match="signature: add"):
            asyncio.run(registry.call("add", {"a": 1}))
