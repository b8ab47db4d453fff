"""The explicit registry of Python functions that function-call steps may call by name.

Configs name functions, never module paths: a function is callable only once its module is in the
allowed list the user passes (``--function_modules=my_pkg.funcs``) and it is registered with
`register_function`.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar, overload

from llm_scheduler.errors import FunctionCallError, UserError
from llm_scheduler.function_steps.builtins import BUILTINS
from llm_scheduler.jsonvalue import JsonValue, describe_non_json

__all__ = [
    "FunctionRegistry",
    "RegisteredFunction",
    "UnknownFunctionError",
    "default_registry",
    "register_function",
]

RegisteredFunction: TypeAlias = Callable[..., Any]
"""A sync or async function taking JSON arguments and returning a `JsonValue`."""

_F = TypeVar("_F", bound=RegisteredFunction)

# Dots allow namespaced names (``my_pkg.clean``); lambdas (``<lambda>``) need an explicit name.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class UnknownFunctionError(UserError, KeyError):
    """A function name is not registered; the message lists the registered names."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)

    def __str__(self) -> str:
        # KeyError.__str__ would quote the whole message.
        return str(self.args[0])


class FunctionRegistry:
    """Functions callable from function-call steps, by name."""

    def __init__(self) -> None:
        self._functions: dict[str, RegisteredFunction] = {}

    @classmethod
    def with_builtins(cls) -> FunctionRegistry:
        """Creates a registry holding the built-in functions (`json_parse`, ...)."""
        registry = cls()
        for name, function in BUILTINS.items():
            registry.register(function, name)
        return registry

    def register(self, function: RegisteredFunction, name: str | None = None) -> None:
        """Registers a function; registering the same function again is a no-op.

        Args:
            function: A sync or async function.
            name: The name configs use; the function's ``__name__`` by default.

        Raises:
            ValueError: The name is invalid or taken by another function.
        """
        if name is None:
            name = getattr(function, "__name__", "")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"invalid function name {name!r}: use letters, digits, '_', '.' or '-', "
                "not starting with a digit (pass name= to register a lambda)"
            )
        existing = self._functions.get(name)
        if existing is not None and existing is not function:
            raise ValueError(
                f"function name {name!r} is already registered to {_qualified(existing)}; "
                f"cannot register {_qualified(function)} under it"
            )
        self._functions[name] = function

    def load_modules(self, module_names: Sequence[str]) -> None:
        """Imports modules from the user's allowed list so that their decorators register.

        Modules register into the registry their decorators name (the default one unless they
        pass ``registry=``); a module imported before is not run again.

        Args:
            module_names: Absolute module names such as ``my_pkg.funcs``; blank ones are skipped.

        Raises:
            UserError: A module failed to import; names the module and the error.
        """
        for module_name in module_names:
            module_name = module_name.strip()
            if not module_name:
                continue
            try:
                importlib.import_module(module_name)
            except Exception as exc:
                # Only when the listed module itself is missing, not something it imports.
                missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
                if missing and f"{module_name}.".startswith(f"{missing}."):
                    hint = " (is it installed, or its directory on PYTHONPATH?)"
                else:
                    hint = ""
                raise UserError(
                    f"cannot import function module {module_name!r}: "
                    f"{type(exc).__name__}: {exc}{hint}"
                ) from exc

    def names(self) -> list[str]:
        """Returns the registered names, sorted."""
        return sorted(self._functions)

    def has(self, name: str) -> bool:
        """Tells whether a name is registered."""
        return name in self._functions

    def get(self, name: str) -> RegisteredFunction:
        """Returns the function registered under a name.

        Raises:
            UnknownFunctionError: The name is not registered.
        """
        try:
            return self._functions[name]
        except KeyError:
            pass
        suggestion = self.suggest(name)
        did_you_mean = f" (did you mean {suggestion!r}?)" if suggestion else ""
        known = ", ".join(self.names()) or "none"
        raise UnknownFunctionError(
            name,
            f"unknown function {name!r}{did_you_mean}. Registered functions: {known}. "
            "Register your own with @register_function and load their modules with "
            "--function_modules.",
        )

    def suggest(self, name: str) -> str | None:
        """Returns the registered name closest to a misspelt one, or None if none is close."""
        matches = difflib.get_close_matches(name, self._functions, n=1)
        return matches[0] if matches else None

    async def call(self, name: str, request: JsonValue) -> JsonValue:
        """Calls a registered function with a step's request.

        A dict request is passed as keyword arguments, anything else as the only positional
        argument. Async functions are awaited; sync ones run directly on the event loop, so they
        must be cheap.

        Args:
            name: The registered name.
            request: The step's request, already rendered.

        Returns:
            The function's result.

        Raises:
            UnknownFunctionError: The name is not registered.
            FunctionCallError: The arguments do not fit the function's signature, the function
                raised, or it returned a value that is not JSON-compatible.
        """
        function = self._functions.get(name) or self.get(name)  # get raises the error
        args: tuple[JsonValue, ...] = ()
        kwargs: dict[str, JsonValue] = {}
        keywords: tuple[str, ...] | None = None
        if isinstance(request, dict):
            kwargs = request
            keywords = tuple(request)
        else:
            args = (request,)
        # Checked before the call, so a TypeError raised inside the function is not mistaken
        # for a bad request.
        bind_error = _bind_error(function, keywords)
        if bind_error is not None:
            signature, exc = bind_error
            passed = (
                f"keyword arguments {', '.join(kwargs) or '(none)'}"
                if isinstance(request, dict)
                else f"one positional {type(request).__name__} argument"
            )
            raise FunctionCallError(
                f"function {name!r} failed: TypeError: {exc} "
                f"(called with {passed}; signature: {name}{signature})"
            ) from exc
        try:
            result = function(*args, **kwargs)
            if type(result) not in _PLAIN and inspect.isawaitable(result):
                result = await result
        except FunctionCallError as exc:
            raise FunctionCallError(f"function {name!r} failed: {exc}") from exc
        except Exception as exc:
            raise FunctionCallError(
                f"function {name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        problem = None if type(result) in _PLAIN else describe_non_json(result)
        if problem is not None:
            raise FunctionCallError(
                f"function {name!r} returned a value that is not JSON-compatible: {problem}"
            )
        json_result: JsonValue = result
        return json_result


# Results that are JSON and never awaitable, checked by their exact type (not subclasses).
_PLAIN = frozenset({str, int, bool, type(None)})


def _bind_error(
    function: RegisteredFunction, keywords: tuple[str, ...] | None
) -> tuple[inspect.Signature, TypeError] | None:
    """Why the function's signature refuses a call, or None when it accepts it (or has none).

    Args:
        function: The function.
        keywords: The keyword arguments' names, in order; None for one positional argument.

    Binding depends only on the arguments' names and number, never on their values, so the
    answer is computed once per function and shape of call (``Signature.bind`` cost ~5 µs a
    step).
    """
    try:
        return _cached_bind_error(function, keywords)
    except TypeError:  # an unhashable callable: checked each time
        return _compute_bind_error(function, keywords)


@functools.lru_cache(maxsize=4096)
def _cached_bind_error(
    function: RegisteredFunction, keywords: tuple[str, ...] | None
) -> tuple[inspect.Signature, TypeError] | None:
    return _compute_bind_error(function, keywords)


def _compute_bind_error(
    function: RegisteredFunction, keywords: tuple[str, ...] | None
) -> tuple[inspect.Signature, TypeError] | None:
    signature = _signature(function)
    if signature is None:
        return None
    try:
        if keywords is None:
            signature.bind(None)
        else:
            signature.bind(**dict.fromkeys(keywords))
    except TypeError as exc:
        return signature, exc
    return None


def _signature(function: RegisteredFunction) -> inspect.Signature | None:
    """The function's signature, computed once per function (about 60 µs each time otherwise)."""
    try:
        return _cached_signature(function)
    except TypeError:  # an unhashable callable: computed each time
        return _compute_signature(function)


@functools.lru_cache(maxsize=1024)
def _cached_signature(function: RegisteredFunction) -> inspect.Signature | None:
    return _compute_signature(function)


def _compute_signature(function: RegisteredFunction) -> inspect.Signature | None:
    try:
        # Evaluated so that modules using `from __future__ import annotations` show `a: int`,
        # not `a: 'int'`.
        return inspect.signature(function, eval_str=True)
    except Exception:  # e.g. a NameError from an annotation imported under TYPE_CHECKING
        pass
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None  # Some C functions have none; the call itself will complain.


def _qualified(function: RegisteredFunction) -> str:
    module = getattr(function, "__module__", None) or "?"
    qualname = getattr(function, "__qualname__", None) or repr(function)
    return f"{module}.{qualname}"


_DEFAULT_REGISTRY = FunctionRegistry.with_builtins()


def default_registry() -> FunctionRegistry:
    """Returns the global registry; it always holds the built-in functions."""
    return _DEFAULT_REGISTRY


@overload
def register_function(name: _F, *, registry: FunctionRegistry | None = None) -> _F: ...


@overload
def register_function(
    name: str | None = None, *, registry: FunctionRegistry | None = None
) -> Callable[[_F], _F]: ...


def register_function(
    name: str | _F | None = None, *, registry: FunctionRegistry | None = None
) -> _F | Callable[[_F], _F]:
    """Registers the decorated function so that configs can call it by name.

    Works with or without parentheses::

        @register_function
        def clean(text: str) -> str: ...

        @register_function("summary.count_words")
        async def count_words(text: str) -> int: ...

    Args:
        name: The name configs use; the function's ``__name__`` by default.
        registry: The registry; the default one when None.

    Returns:
        A decorator that registers the function and returns it unchanged.

    Raises:
        ValueError: The name is invalid or taken by another function.
    """
    target = _DEFAULT_REGISTRY if registry is None else registry
    if callable(name):
        target.register(name)
        return name
    explicit_name = name

    def decorator(function: _F) -> _F:
        target.register(function, explicit_name)
        return function

    return decorator
