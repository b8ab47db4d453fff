"""Validation and coercion of model parameters.

Configs may give numbers as strings (the seed writes ``"temperature": "0.7"``). Known parameters
are checked and converted to their type under a provider-neutral name; unknown ones are passed to
the provider unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from llm_scheduler.errors import ConfigProblem

__all__ = ["KNOWN_PARAMETERS", "ParameterSpec", "coerce_parameters"]


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """A known parameter: its neutral name, type, allowed range and aliases."""

    name: str
    kind: type
    minimum: float | None = None
    maximum: float | None = None
    aliases: tuple[str, ...] = ()

    def describe(self) -> str:
        """Says what values are allowed, for error hints."""
        if self.kind is list:
            return "a string or a list of strings"
        kind = "an integer" if self.kind is int else "a number"
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {_fmt(self.minimum)} to {_fmt(self.maximum)}"
        if self.minimum is not None:
            return f"{kind} of at least {_fmt(self.minimum)}"
        return kind


KNOWN_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("temperature", float, 0.0, 2.0),
    ParameterSpec("top_p", float, 0.0, 1.0),
    ParameterSpec("top_k", int, 1, None),
    ParameterSpec(
        "max_tokens", int, 1, None, aliases=("max_output_tokens", "max_completion_tokens")
    ),
    ParameterSpec("stop", list, aliases=("stop_sequences",)),
    ParameterSpec("seed", int),
    ParameterSpec("presence_penalty", float, -2.0, 2.0),
    ParameterSpec("frequency_penalty", float, -2.0, 2.0),
)

_BY_NAME: dict[str, ParameterSpec] = {
    name: spec for spec in KNOWN_PARAMETERS for name in (spec.name, *spec.aliases)
}


def coerce_parameters(
    raw: Mapping[str, Any], path: str
) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """Validates and coerces parameters.

    Args:
        raw: The parameters as configured.
        path: The field path of the parameters, for error messages.

    Returns:
        The parameters under their neutral names with coerced values, and the problems found.
    """
    result: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for key, value in raw.items():
        spec = _BY_NAME.get(key)
        if spec is None:
            result[key] = value
            continue
        field = f"{path}.{key}"
        if spec.name in result:
            problems.append(
                ConfigProblem(
                    field, f"{spec.name!r} is given twice", f"keep one of {spec.name!r} or {key!r}"
                )
            )
            continue
        coerced = _COERCERS[spec.kind](value)
        if coerced is None or not _in_range(spec, coerced):
            problems.append(
                ConfigProblem(field, f"bad value {value!r}", f"{key} takes {spec.describe()}")
            )
            continue
        result[spec.name] = coerced
    return result, problems


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _to_int(value: Any) -> int | None:
    number = _to_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _to_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


_COERCERS: dict[type, Callable[[Any], Any]] = {float: _to_float, int: _to_int, list: _to_list}


def _in_range(spec: ParameterSpec, value: Any) -> bool:
    if spec.kind is list:
        return True
    if spec.minimum is not None and value < spec.minimum:
        return False
    return spec.maximum is None or value <= spec.maximum


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
