from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

import llm_scheduler.function_steps as function_steps
from llm_scheduler.errors import FunctionCallError, UserError
from llm_scheduler.function_steps import (
    BUILTINS,
    FunctionRegistry,
    JsonValue,
    UnknownFunctionError,
    default_registry,
    register_function,
)
from llm_scheduler.function_steps import registry as registry_module
from llm_scheduler.jsonvalue import describe_non_json, is_json_value


@pytest.fixture
def fresh_default(monkeypatch: pytest.MonkeyPatch) -> FunctionRegistry:
    """Swaps the global registry so that tests do not leave functions in it."""
    registry = FunctionRegistry.with_builtins()
    monkeypatch.setattr(registry_module, "_DEFAULT_REGISTRY", registry)
    return registry


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(function_steps).items()
        if not name.startswith("_") and not isinstance(value, type(sys))
    }
    assert public == set(function_steps.__all__)


def test_register_with_default_and_explicit_name() -> None:
    registry = FunctionRegistry()

    @register_function(registry=registry)
    def shout(text: str) -> str:
        return text.upper()

    @register_function("text.whisper", registry=registry)
    def whisper(text: str) -> str:
        return text.lower()

    assert registry.names() == ["shout", "text.whisper"]
    assert registry.has("shout")
    assert not registry.has("whisper")
    assert registry.get("text.whisper") is whisper
    assert shout("a") == "A"  # the decorator returns the function unchanged


def test_register_without_parentheses(fresh_default: FunctionRegistry) -> None:
    @register_function
    def bare(text: str) -> str:
        return text

    assert default_registry() is fresh_default
    assert fresh_default.get("bare") is bare


def test_register_duplicate_name() -> None:
    registry = FunctionRegistry()

    def first(x: int) -> int:
        return x

    def second(x: int) -> int:
        return x

    registry.register(first, "f")
    registry.register(first, "f")  # the same function again is fine
    with pytest.raises(ValueError, match=r"'f' is already registered to .*first"):
        registry.register(second, "f")
    assert registry.get("f") is first


def test_register_invalid_name() -> None:
    registry = FunctionRegistry()
    with pytest.raises(ValueError, match="invalid function name '<lambda>'"):
        registry.register(lambda x: x)
    with pytest.raises(ValueError, match="invalid function name ''"):
        registry.register(len, "")
    registry.register(lambda x: x, "identity")
    assert registry.names() == ["identity"]


def test_default_registry_has_builtins() -> None:
    registry = default_registry()
    assert registry is default_registry()
    for name in ("json_parse", "json_extract", "regex_extract", "template", "join", "length"):
        assert registry.get(name) is BUILTINS[name]
    assert FunctionRegistry.with_builtins().names() == sorted(BUILTINS)
    assert FunctionRegistry().names() == []


def test_get_unknown_lists_names_and_suggests() -> None:
    registry = FunctionRegistry.with_builtins()
    with pytest.raises(UnknownFunctionError) as info:
        registry.get("json_pars")
    error = info.value
    assert isinstance(error, KeyError)
    assert isinstance(error, UserError)
    assert error.name == "json_pars"
    message = str(error)
    assert message.startswith("unknown function 'json_pars' (did you mean 'json_parse'?).")
    assert "json_extract, json_parse, length" in message
    assert "--function_modules" in message


def test_get_unknown_in_empty_registry() -> None:
    with pytest.raises(KeyError, match="Registered functions: none"):
        FunctionRegistry().get("anything")


def test_suggest() -> None:
    registry = FunctionRegistry.with_builtins()
    assert registry.suggest("regex_extrct") == "regex_extract"
    assert registry.suggest("lenght") == "length"
    assert registry.suggest("json_parse") == "json_parse"
    assert registry.suggest("completely_different") is None
    assert FunctionRegistry().suggest("x") is None


def _registry_with(*functions: object) -> FunctionRegistry:
    registry = FunctionRegistry()
    for function in functions:
        assert callable(function)
        registry.register(function)
    return registry


def test_call_sync_with_dict_request() -> None:
    def add(a: int, b: int = 10) -> int:
        return a + b

    registry = _registry_with(add)
    assert asyncio.run(registry.call("add", {"a": 1, "b": 2})) == 3
    assert asyncio.run(registry.call("add", {"a": 1})) == 11


def test_call_async_function() -> None:
    async def fetch(key: str) -> dict[str, JsonValue]:
        await asyncio.sleep(0)
        return {"key": key, "values": [1, 2.5, None, True]}

    registry = _registry_with(fetch)
    result = asyncio.run(registry.call("fetch", {"key": "k"}))
    assert result == {"key": "k", "values": [1, 2.5, None, True]}


@pytest.mark.parametrize("request_value", ["text", 3, 2.5, [1, "a"], None, True])
def test_call_non_dict_request_is_positional(request_value: JsonValue) -> None:
    def echo(value: JsonValue) -> JsonValue:
        return value

    registry = _registry_with(echo)
    assert asyncio.run(registry.call("echo", request_value)) == request_value


def test_call_dict_request_is_keywords_not_positional() -> None:
    seen: list[dict[str, JsonValue]] = []

    def collect(**kwargs: JsonValue) -> None:
        seen.append(kwargs)

    registry = _registry_with(collect)
    assert asyncio.run(registry.call("collect", {"x": 1, "y": [2]})) is None
    assert seen == [{"x": 1, "y": [2]}]


def test_call_unknown_function() -> None:
    with pytest.raises(UnknownFunctionError, match="unknown function 'nope'"):
        asyncio.run(FunctionRegistry().call("nope", None))


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ((1, 2), "tuple at $"),
        ({"a": [1, {2, 3}]}, "set at $.a[1]"),
        ({1: "x"}, "int key 1 at $"),
        (float("nan"), "non-finite float nan at $"),
        (b"bytes", "bytes at $"),
    ],
)
def test_call_non_json_result(result: object, problem: str) -> None:
    registry = FunctionRegistry()
    registry.register(lambda _request: result, "bad")
    with pytest.raises(FunctionCallError) as info:
        asyncio.run(registry.call("bad", None))
    assert str(info.value) == (
        f"function 'bad' returned a value that is not JSON-compatible: {problem}"
    )


def test_call_wraps_exceptions() -> None:
    def explode(text: str) -> str:
        raise RuntimeError(f"boom on {text}")

    async def explode_later(text: str) -> str:
        await asyncio.sleep(0)
        raise ValueError("late boom")

    registry = _registry_with(explode, explode_later)
    with pytest.raises(FunctionCallError) as info:
        asyncio.run(registry.call("explode", "x"))
    assert str(info.value) == "function 'explode' failed: RuntimeError: boom on x"
    assert isinstance(info.value.__cause__, RuntimeError)

    with pytest.raises(FunctionCallError, match="'explode_later' failed: ValueError: late boom"):
        asyncio.run(registry.call("explode_later", "x"))


def test_call_does_not_double_wrap_function_call_error() -> None:
    def picky(text: str) -> str:
        raise FunctionCallError("text is too short")

    registry = _registry_with(picky)
    with pytest.raises(FunctionCallError) as info:
        asyncio.run(registry.call("picky", "x"))
    assert str(info.value) == "function 'picky' failed: text is too short"


def test_call_type_error_inside_function_is_not_blamed_on_the_request() -> None:
    def buggy(text: str) -> str:
        raise TypeError("can only concatenate str (not 'int') to str")

    registry = _registry_with(buggy)
    with pytest.raises(FunctionCallError) as info:
        asyncio.run(registry.call("buggy", "x"))
    message = str(info.value)
    assert message.startswith("function 'buggy' failed: TypeError: can only concatenate")
    assert "signature" not in message


def test_call_wrong_keyword_arguments_names_signature() -> None:
    def add(a: int, b: int = 10) -> int:
        return a + b

    registry = _registry_with(add)
    with pytest.raises(FunctionCallError) as info:
        asyncio.run(registry.call("add", {"a": 1, "c": 2}))
    assert str(info.value) == (
        "function 'add' failed: TypeError: got an unexpected keyword argument 'c' "
        "(called with keyword arguments a, c; signature: add(a: int, b: int = 10) -> int)"
    )
    assert isinstance(info.value.__cause__, TypeError)

    with pytest.raises(FunctionCallError, match=r"missing a required argument: 'a'.*\(none\)"):
        asyncio.run(registry.call("add", {}))


def test_call_wrong_positional_request_names_signature() -> None:
    def pair(a: int, b: int) -> int:
        return a + b

    registry = _registry_with(pair)
    with pytest.raises(FunctionCallError) as info:
        asyncio.run(registry.call("pair", [1, 2]))
    assert str(info.value) == (
        "function 'pair' failed: TypeError: missing a required argument: 'b' "
        "(called with one positional list argument; signature: pair(a: int, b: int) -> int)"
    )


def test_load_modules_registers_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_default: FunctionRegistry
) -> None:
    (tmp_path / "fs_test_user_funcs.py").write_text(
        textwrap.dedent(
            """
            from llm_scheduler.function_steps import register_function

            @register_function
            def double(x: int) -> int:
                return 2 * x
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        fresh_default.load_modules(["fs_test_user_funcs", " ", ""])
    finally:
        sys.modules.pop("fs_test_user_funcs", None)
    assert fresh_default.has("double")
    assert asyncio.run(fresh_default.call("double", {"x": 4})) == 8


def test_load_modules_missing_module() -> None:
    with pytest.raises(UserError) as info:
        FunctionRegistry().load_modules(["no_such_pkg_for_fs_tests.funcs"])
    message = str(info.value)
    assert message.startswith(
        "cannot import function module 'no_such_pkg_for_fs_tests.funcs': "
        "ModuleNotFoundError: No module named 'no_such_pkg_for_fs_tests'"
    )
    assert "PYTHONPATH" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_load_modules_module_that_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fs_test_broken_funcs.py").write_text("import no_such_dependency_for_fs_tests\n")
    (tmp_path / "fs_test_raising_funcs.py").write_text("raise RuntimeError('bad setup')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = FunctionRegistry()

    with pytest.raises(UserError) as info:
        registry.load_modules(["fs_test_broken_funcs"])
    message = str(info.value)
    assert "'fs_test_broken_funcs'" in message
    assert "No module named 'no_such_dependency_for_fs_tests'" in message
    # The listed module was found; the hint about PYTHONPATH would mislead.
    assert "PYTHONPATH" not in message

    with pytest.raises(
        UserError,
        match="cannot import function module 'fs_test_raising_funcs': RuntimeError: bad setup",
    ):
        registry.load_modules(["fs_test_raising_funcs"])
    sys.modules.pop("fs_test_broken_funcs", None)
    sys.modules.pop("fs_test_raising_funcs", None)


def test_is_json_value() -> None:
    nested: JsonValue = {"a": [1, 2.5, "s", None, True, {"b": []}]}
    assert is_json_value(nested)
    assert not is_json_value((1,))
    assert not is_json_value(float("inf"))
    loop: list[object] = []
    loop.append(loop)
    assert describe_non_json(loop) == "circular reference at $[0]"
    shared: list[JsonValue] = [1]
    assert is_json_value([shared, shared])  # shared, not circular
