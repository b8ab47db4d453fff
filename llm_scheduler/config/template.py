"""`%var%` templates: parsing, the names they use, filters, and rendering.

Syntax:
    ``%name%`` inserts the variable ``name`` (an identifier). ``%name.a.0%`` walks into a JSON
    value (object keys and list indexes; a string variable holding JSON is parsed first). ``%%``
    is a literal ``%``; any other ``%`` that does not start a placeholder is literal too, so
    ``"50% off"`` needs no escaping.

Filters:
    ``%name|filter%`` or ``%name|filter:ARGUMENT%`` passes the value through filters, left to
    right (``%a|default:'x'|truncate:10%``): ``truncate:N`` keeps the first N characters of the
    text, ``json`` encodes the value as JSON, ``join:SEP`` joins a list, ``default:VALUE`` stands
    in for a missing or empty value (missing variable or field, null, ``""``, ``[]``, ``{}``). An
    argument is ``'text'`` (taken as it is), ``"text"`` (a JSON string, with its backslash
    escapes) or a bare JSON number, ``true``, ``false``, ``null``, ``[]`` or ``{}``. No spaces
    around ``|`` or ``:``. An unknown filter, a bad argument, and text that starts like a
    placeholder with filters but does not parse (``%a | json%``, left literal) are the template's
    `problems`, which validation reports before any call. A template without filters renders
    through exactly the code it did before filters existed.

Rendering is one pass: an inserted value is never scanned again, so a variable whose value holds
``%other%`` stays literal (no prompt injection through variables). Strings are inserted as they
are, other values as JSON. A missing variable is an error, never left in the output, unless a
``default`` filter stands in for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar, overload

from llm_scheduler.config.working_set import WorkingSetCache
from llm_scheduler.errors import InterpolationError

__all__ = [
    "FILTERS",
    "Filter",
    "Placeholder",
    "Template",
    "TemplateProblem",
    "format_value",
    "lookup_path",
]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# A filter argument: 'literal text', "a JSON string", or a bare JSON token (64, null, []).
_ARGUMENT = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s%|\"']+"
_FILTER = re.compile(rf"\|({_IDENT})(?::({_ARGUMENT}))?", re.DOTALL)
# The start of a placeholder with filters, in text that did not parse as one.
_NEAR_MISS = re.compile(rf"%{_IDENT}(?:\.[A-Za-z0-9_]+)*\s*\|\s*{_IDENT}")
_TOKEN = re.compile(
    rf"%%|%({_IDENT}(?:\.[A-Za-z0-9_]+)*)((?:\|{_IDENT}(?::(?:{_ARGUMENT}))?)*)%", re.DOTALL
)


@dataclasses.dataclass(frozen=True)
class TemplateProblem:
    """Why a placeholder cannot render: an unknown filter or a bad argument.

    Attributes:
        message: What is wrong, starting with the placeholder as written.
        hint: How to fix it; it lists the filters.
    """

    message: str
    hint: str


@dataclasses.dataclass(frozen=True)
class Filter:
    """One ``|name`` or ``|name:argument`` of a placeholder.

    Attributes:
        name: The filter's name.
        argument: The argument as written (quotes included), or None when there is none.
    """

    name: str
    argument: str | None


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """One ``%...%`` in a template.

    Attributes:
        name: The variable name (the part before the first dot).
        path: The keys and indexes after the name.
        text: The placeholder as written, without the percent signs.
        filters: Its filters, in order.
        optional: Whether a ``default`` filter stands in when the variable or field is missing.
        problem: Why it cannot render (an unknown filter, a bad argument), or None.
        apply: Given the variables, the filtered value; None without filters.
    """

    name: str
    path: tuple[str, ...]
    text: str
    filters: tuple[Filter, ...] = ()
    optional: bool = False
    problem: TemplateProblem | None = None
    apply: Callable[[Mapping[str, Any]], Any] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )


_T = TypeVar("_T")


class _cached(Generic[_T]):
    """`functools.cached_property` without its lock.

    Python 3.11's version takes a lock on every first read of every instance (~1.1 µs against
    ~0.55 here, and a wide job's validation parses a template per task and reads three or four
    of these); the values here are pure functions of the frozen template, so computing one
    twice in a race is harmless.
    """

    def __init__(self, function: Callable[[Any], _T]) -> None:
        self._function = function
        self._name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _cached[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> _T | _cached[_T]:
        if instance is None:
            return self
        value = self._function(instance)
        instance.__dict__[self._name] = value  # later reads find it there, not here
        return value


@dataclasses.dataclass(frozen=True)
class Template:
    """A parsed template: literal text and placeholders, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        """Parses ``source``; every string is a valid template.

        Parsed templates are immutable and cached: a step's templates are parsed once per
        process, not once per use. A bad filter does not raise: it is in `problems`.
        """
        return _parse(source)

    @classmethod
    def _parse_uncached(cls, source: str) -> Template:
        parts: list[str | Placeholder] = []
        literal: list[str] = []
        position = 0
        filtered = False
        for match in _TOKEN.finditer(source):
            literal.append(source[position : match.start()])
            position = match.end()
            if match.group(1) is None:
                literal.append("%")
                continue
            text = "".join(literal)
            if text:
                parts.append(text)
            literal = []
            name, *path = match.group(1).split(".")
            if match.group(2):
                filtered = True
                parts.append(_filtered(name, tuple(path), match.group(0)[1:-1], match.group(2)))
            else:
                parts.append(Placeholder(name=name, path=tuple(path), text=match.group(1)))
        literal.append(source[position:])
        tail = "".join(literal)
        if tail:
            parts.append(tail)
        # Filters render through a subclass, so a template without any keeps its plain path.
        return (_FilteredTemplate if filtered else cls)(source=source, parts=tuple(parts))

    @_cached
    def placeholders(self) -> tuple[Placeholder, ...]:
        """The placeholders, in order of appearance."""
        return tuple(part for part in self.parts if isinstance(part, Placeholder))

    @_cached
    def names(self) -> frozenset[str]:
        """The variable names the template reads, with or without a ``default``."""
        return frozenset(placeholder.name for placeholder in self.placeholders)

    @_cached
    def required_names(self) -> frozenset[str]:
        """The names the template cannot render without (read with no ``default`` filter)."""
        return frozenset(p.name for p in self.placeholders if not p.optional)

    @_cached
    def problems(self) -> tuple[TemplateProblem, ...]:
        """What validation reports: unknown filters, bad arguments, and near misses.

        A near miss is literal text that starts like a placeholder with filters but does not
        parse (``%a | json%``, ``%a|default:'it's'%``): it would be sent as it is.
        """
        found = [p.problem for p in self.placeholders if p.problem is not None]
        position = 0
        for match in [*_TOKEN.finditer(self.source), None]:
            end = len(self.source) if match is None else match.start()
            near = _NEAR_MISS.search(self.source, position, end)
            if near is not None:
                close = self.source.find("%", near.end(), end)
                stop = end if close < 0 else close + 1
                fragment = self.source[near.start() : stop].split("\n")[0]
                fragment = fragment if len(fragment) <= 60 else fragment[:57] + "..."
                found.append(
                    TemplateProblem(
                        f"{fragment!r} looks like a placeholder with filters but does not "
                        "parse, so it would stay literal text",
                        "write %name|filter% or %name|filter:ARGUMENT% with no spaces, text "
                        "arguments quoted ('as it is' or \"with JSON escapes\") and a closing "
                        f"%; write %% for a literal %; {_LISTING}",
                    )
                )
            if match is not None:
                position = match.end()
        return tuple(found)

    @_cached
    def is_template(self) -> bool:
        """Whether the text holds at least one placeholder."""
        return any(isinstance(part, Placeholder) for part in self.parts)

    def render(self, variables: Mapping[str, Any]) -> str:
        """Renders the template to a string.

        Raises:
            InterpolationError: A placeholder names a missing variable or path, a filter does
                not apply to its value, or the template has a problem.
        """
        return "".join(
            part if isinstance(part, str) else format_value(_resolve(part, variables))
            for part in self.parts
        )

    def render_value(self, variables: Mapping[str, Any]) -> Any:
        """Renders like `render`, but a template that is exactly one placeholder keeps its type.

        ``"%items%"`` gives the list itself rather than its JSON text, so structured values flow
        between steps unchanged; with filters, the last filter's value (``%items|default:[]%``
        gives a list, ``%items|json%`` a string).
        """
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder):
            return _resolve(self.parts[0], variables)
        return self.render(variables)


class _FilteredTemplate(Template):
    """A template with at least one filtered placeholder."""

    def render(self, variables: Mapping[str, Any]) -> str:
        return "".join(
            part if isinstance(part, str) else format_value(_value(part, variables))
            for part in self.parts
        )

    def render_value(self, variables: Mapping[str, Any]) -> Any:
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder):
            return _value(self.parts[0], variables)
        return self.render(variables)


# Parsed templates kept per process at least; more for a larger job (see `working_set`).
_templates: WorkingSetCache[str, Template] = WorkingSetCache(4096)


def _parse(source: str) -> Template:
    template = _templates.get(source)
    return (
        template
        if template is not None
        else _templates.put(source, Template._parse_uncached(source))
    )


def reserve_templates(count: int) -> None:
    """Keeps ``count`` parsed templates cached together (a job's templates, see `working_set`)."""
    _templates.reserve(count)


def format_value(value: Any) -> str:
    """Formats a value for insertion into text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def lookup_path(value: Any, path: tuple[str, ...], text: str) -> Any:
    """Walks ``path`` into a JSON value; a string holding JSON is parsed on the way.

    Raises:
        InterpolationError: A key or index is missing.
    """
    current = value
    for depth, key in enumerate(path):
        if isinstance(current, str):
            try:
                current = json.loads(current)
            except ValueError:
                where = ".".join((text.split(".")[0], *path[:depth]))
                raise InterpolationError(
                    f"%{text}%: {where!r} is text, not JSON, so it has no field {key!r}"
                ) from None
        if isinstance(current, Mapping) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            where = ".".join((text.split(".")[0], *path[:depth]))
            kind = "list" if isinstance(current, list) else type(current).__name__
            raise InterpolationError(f"%{text}%: {where!r} ({kind}) has no field {key!r}")
    return current


def _resolve(placeholder: Placeholder, variables: Mapping[str, Any]) -> Any:
    if placeholder.name not in variables:
        known = ", ".join(sorted(variables)) or "none"
        raise InterpolationError(
            f"%{placeholder.text}%: no variable {placeholder.name!r} (variables here: {known})"
        )
    return lookup_path(variables[placeholder.name], placeholder.path, placeholder.text)


def _value(placeholder: Placeholder, variables: Mapping[str, Any]) -> Any:
    if placeholder.apply is None:
        return _resolve(placeholder, variables)
    return placeholder.apply(variables)


# Filters -----------------------------------------------------------------------------------


class _Missing:
    """The value of a missing variable or field, on its way to a ``default``."""


_MISSING: Final = _Missing()
_NO_ARGUMENT: Final = object()

# Given the argument and the placeholder as written: the filter's function of the value.
_Build = Callable[[Any, str], Callable[[Any], Any]]


@dataclasses.dataclass(frozen=True)
class _Spec:
    usage: str  # how it is written, for the listing
    help: str  # what it does and takes, for hints
    check: Callable[[Any], str | None]  # the argument's problem, or None
    build: _Build


def _truncate(length: int, text: str) -> Callable[[Any], Any]:
    return lambda value: format_value(value)[:length]


def _json(_: Any, text: str) -> Callable[[Any], Any]:
    return lambda value: json.dumps(value, ensure_ascii=False)


def _join(separator: str, text: str) -> Callable[[Any], Any]:
    def join(value: Any) -> str:
        items = value
        if isinstance(items, str):  # a model's answer holding a JSON list
            with contextlib.suppress(ValueError, RecursionError):
                items = json.loads(items)
        if not isinstance(items, list):
            raise InterpolationError(
                f"%{text}%: join needs a list, but the value is {_kind(value)}"
            )
        return separator.join(map(format_value, items))

    return join


def _default(fallback: Any, text: str) -> Callable[[Any], Any]:
    def default(value: Any) -> Any:
        empty = (
            value is _MISSING
            or value is None
            or (isinstance(value, (str, list, dict)) and not value)
        )
        return fallback if empty else value

    return default


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text that is not a JSON list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else json.dumps(value)


def _check_truncate(argument: Any) -> str | None:
    if argument is _NO_ARGUMENT:
        return "needs a length"
    if isinstance(argument, bool) or not isinstance(argument, int) or argument < 0:
        return "is not a length"
    return None


def _check_join(argument: Any) -> str | None:
    if argument is _NO_ARGUMENT:
        return "needs a separator"
    return None if isinstance(argument, str) else "is not a separator (it is not text)"


def _check_json(argument: Any) -> str | None:
    return None if argument is _NO_ARGUMENT else "takes no argument"


def _check_default(argument: Any) -> str | None:
    return "needs a value" if argument is _NO_ARGUMENT else None


_SPECS: Final[dict[str, _Spec]] = {
    "default": _Spec(
        "default:VALUE",
        "default:VALUE stands in for a missing or empty value, e.g. default:'none'",
        _check_default,
        _default,
    ),
    "join": _Spec(
        "join:SEP", "join:SEP joins a list with the text SEP, e.g. join:', '", _check_join, _join
    ),
    "json": _Spec(
        "json", "json encodes the value as JSON and takes no argument", _check_json, _json
    ),
    "truncate": _Spec(
        "truncate:N",
        "truncate:N keeps the first N characters (a whole number, 0 or more), e.g. truncate:64",
        _check_truncate,
        _truncate,
    ),
}

FILTERS: Final[tuple[str, ...]] = tuple(_SPECS)
"""The filters' names."""

_LISTING = "filters: " + ", ".join(spec.usage for spec in _SPECS.values())
_QUOTING = (
    "quote text: 'as it is' or \"with JSON escapes\"; unquoted, an argument is a number, true, "
    "false, null, [] or {}"
)


def _argument(raw: str) -> Any:
    """Decodes an argument as written; raises ValueError when it is not one."""
    if raw.startswith("'"):
        return raw[1:-1]
    if not raw.startswith('"'):
        # A bare token is JSON without quotes; NaN and Infinity are not JSON.
        return json.loads(raw, parse_constant=_reject)
    return json.loads(raw, strict=False)


def _reject(constant: str) -> Any:
    raise ValueError(constant)


def _filtered(name: str, path: tuple[str, ...], text: str, chain: str) -> Placeholder:
    """A placeholder with filters, its chain compiled into one callable."""
    filters: list[Filter] = []
    functions: list[Callable[[Any], Any]] = []
    problem: TemplateProblem | None = None
    first_default: int | None = None
    for match in _FILTER.finditer(chain):
        filter_name, raw = match.group(1), match.group(2)
        filters.append(Filter(filter_name, raw))
        if problem is not None:
            continue
        spec = _SPECS.get(filter_name)
        if spec is None:
            close = difflib.get_close_matches(filter_name, _SPECS, n=1)
            maybe = f"did you mean {close[0]!r}? " if close else ""
            problem = TemplateProblem(f"%{text}%: unknown filter {filter_name!r}", maybe + _LISTING)
            continue
        written = filter_name if raw is None else f"{filter_name}:{raw}"
        try:
            argument = _NO_ARGUMENT if raw is None else _argument(raw)
        except (ValueError, RecursionError):
            # Unquoted text: say what the filter wanted when text would not do either.
            wrong = spec.check(raw)
            problem = TemplateProblem(
                f"%{text}%: {written} {wrong}"
                if wrong
                else f"%{text}%: {written}: {raw} is not a value",
                f"{spec.help}; {_LISTING}" if wrong else f"{spec.help}; {_QUOTING}; {_LISTING}",
            )
            continue
        wrong = spec.check(argument)
        if wrong is not None:
            problem = TemplateProblem(f"%{text}%: {written} {wrong}", f"{spec.help}; {_LISTING}")
            continue
        if filter_name == "default" and first_default is None:
            first_default = len(functions)
        functions.append(spec.build(argument, text))
    plain = Placeholder(name=name, path=path, text=text)
    return Placeholder(
        name=name,
        path=path,
        text=text,
        filters=tuple(filters),
        optional=any(f.name == "default" for f in filters),
        problem=problem,
        apply=_chain(plain, problem, tuple(functions), first_default),
    )


def _chain(
    plain: Placeholder,
    problem: TemplateProblem | None,
    functions: tuple[Callable[[Any], Any], ...],
    first_default: int | None,
) -> Callable[[Mapping[str, Any]], Any]:
    if problem is not None:
        message = f"{problem.message} ({problem.hint})"

        def broken(variables: Mapping[str, Any]) -> Any:
            raise InterpolationError(message)

        return broken
    # A missing value skips the filters before the first default: they have nothing to act on.
    if_missing = None if first_default is None else functions[first_default:]

    def apply(variables: Mapping[str, Any]) -> Any:
        steps = functions
        try:
            value = _resolve(plain, variables)
        except InterpolationError:
            if if_missing is None:
                raise
            value, steps = _MISSING, if_missing
        for step in steps:
            value = step(value)
        return value

    return apply
