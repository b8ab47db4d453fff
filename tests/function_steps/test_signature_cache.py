"""Function steps check their arguments against a signature computed once per function."""

from __future__ import annotations

import asyncio
import inspect
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


def test_arguments_are_bound_once_per_function_and_shape_of_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Binding depends on the arguments' names (and count), never on their values.
    registry = FunctionRegistry()

    def scale(value: int, factor: int = 2) -> int:
        return value * factor

    registry.register(scale, name="scale")
    binds: list[tuple[Any, ...]] = []
    original = inspect.Signature.bind

    def counting_bind(self: inspect.Signature, *args: Any, **kwargs: Any) -> Any:
        binds.append((args, tuple(kwargs)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(inspect.Signature, "bind", counting_bind)
    for value in range(5):
        assert asyncio.run(registry.call("scale", {"value": value})) == 2 * value
        assert asyncio.run(registry.call("scale", {"value": value, "factor": 3})) == 3 * value
        assert asyncio.run(registry.call("scale", value)) == 2 * value
    assert len(binds) == 3


def test_a_refused_call_says_the_same_however_often_it_is_made() -> None:
    registry = FunctionRegistry()

    def pair(a: int, b: int) -> int:
        return a + b

    registry.register(pair, name="pair")
    messages = set()
    for _ in range(3):
        with pytest.raises(FunctionCallError) as caught:
            asyncio.run(registry.call("pair", {"b": 1, "c": 2}))
        messages.add(str(caught.value))
        assert isinstance(caught.value.__cause__, TypeError)
    assert messages == {
        "function 'pair' failed: TypeError: missing a required argument: 'a' "
        "(called with keyword arguments b, c; signature: pair(a: int, b: int) -> int)"
    }
