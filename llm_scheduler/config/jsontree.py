"""JSON configs before protobuf reads them: a bounded parse, then every value checked by type.

protobuf's json_format stops at its first problem, often without the list index and in Python's
words ("'bool' object is not iterable"); and some inputs make the parsers fail outright: a
RecursionError on deep nesting, a ValueError on a 5,000-digit number, a SystemError on a lone
surrogate, or a fractional enum number silently truncated. Here every such problem is found
first, each with its exact field path (list indexes included), what the field takes and what it
got, e.g. ``tasks[1].steps: expected a list of step objects, got true``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from typing import Any

from google.protobuf import descriptor
from google.protobuf.descriptor import FieldDescriptor

from llm_scheduler.errors import ConfigError, ConfigProblem

__all__ = ["MAX_JSON_NESTING", "check", "parse"]

# Objects and lists inside one another. Every level of a free-form value is up to three protobuf
# messages deep, and protobuf refuses messages nested more than 100 deep.
MAX_JSON_NESTING = 32
# Longer integers are out of every integer type's range, and over Python's limit on converting
# digits to int (4,300).
_MAX_DIGITS = 400

_FREE_FORM = "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"
_STRING_TYPES = {
    "google.protobuf.Timestamp": 'an RFC 3339 time string ("2025-03-11T04:30:05Z")',
    "google.protobuf.Duration": 'a duration string ("1.5s")',
    "google.protobuf.FieldMask": 'a field mask string ("a.b,c")',
}
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[\[\]{}:,]', re.DOTALL)
_INTEGER = re.compile(r"-?[0-9]+")


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it held more than once (JSON keeps the last)."""

    duplicates: list[str]


@dataclasses.dataclass(frozen=True)
class _BadNumber:
    """A number JSON cannot hold, reported where it stands: too many digits, NaN, Infinity."""

    text: str

    def describe(self) -> str:
        if self.text.lstrip("-").isdigit():
            return f"a {len(self.text.lstrip('-')):,}-digit number"
        return f"{self.text} (not a JSON number)"


def parse(text: str, file: str) -> Any:
    """Parses JSON text (comments already stripped) whose nesting is within `MAX_JSON_NESTING`.

    Objects are dicts that note repeated keys; numbers JSON cannot hold are kept as markers.
    `check` reports both where they stand.

    Raises:
        ConfigError: The text is not JSON, or is nested too deep.
    """
    _check_nesting(text, file)
    try:
        return json.loads(
            text, object_pairs_hook=_object, parse_int=_integer, parse_constant=_BadNumber
        )
    except json.JSONDecodeError as error:
        raise ConfigError.single(
            "",
            f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
            "fix the JSON syntax there (only // line comments are allowed besides JSON)",
            file,
        ) from None


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object()
    result.duplicates = []
    for key, value in pairs:
        if key in result:
            result.duplicates.append(key)
        result[key] = value
    return result


def _integer(text: str) -> int | _BadNumber:
    return _BadNumber(text) if len(text) > _MAX_DIGITS else int(text)


def _check_nesting(text: str, file: str) -> None:
    # The json module recurses once per level: reject deep text before it starts. Each open
    # object or list is [key or index]; strings are skipped whole.
    frames: list[list[Any]] = []
    last_string = ""
    for match in _TOKENS.finditer(text):
        token = match[0]
        if token[0] == '"':
            last_string = token
        elif token in "[{":
            if len(frames) == MAX_JSON_NESTING:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - text.rfind("\n", 0, match.start())
                raise ConfigError.single(
                    _frames_path(frames),
                    f"nested more than {MAX_JSON_NESTING} levels deep (objects and lists, "
                    f"line {line} column {column})",
                    f"a config nests at most {MAX_JSON_NESTING} levels; flatten the value, or "
                    "pass deep data as a JSON string",
                    file,
                )
            frames.append([None] if token == "{" else [0])
        elif token in "]}":
            if frames:
                frames.pop()
        elif frames and token == ":":
            frames[-1][0] = last_string
        elif frames and token == "," and isinstance(frames[-1][0], int):
            frames[-1][0] += 1


def _frames_path(frames: list[list[Any]]) -> str:
    path = ""
    for [step] in frames:
        if isinstance(step, int):
            path += f"[{step}]"
        elif step is not None:
            try:
                key = json.loads(step)
            except ValueError:
                key = step.strip('"')
            path = _join(path, key)
    return path


def check(tree: dict[str, Any], desc: descriptor.Descriptor, file: str) -> list[ConfigProblem]:
    """Every problem of a parsed JSON object as a ``desc`` message, each at its field path.

    Unknown fields (with the closest known name), repeated keys, values of the wrong type,
    integers out of range, enum values that are not names or numbers of the enum, numbers a
    double cannot hold in free-form values, and strings holding lone surrogates.
    """
    checker = _Checker(file)
    checker.message(tree, desc, "")
    return checker.problems


def _join(path: str, key: str) -> str:
    # A key that cannot be printed as is (a control character, a lone surrogate) is escaped.
    shown = key if key.isprintable() and _encodable(key) else ascii(key)
    return f"{path}.{shown}" if path else shown


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe(value: Any) -> str:
    """A JSON value as a problem shows what it got: ``true``, ``"abc"``, ``an object`` ..."""
    if isinstance(value, _BadNumber):
        return value.describe()
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"a {len(str(abs(value))):,}-digit number"
    if isinstance(value, float) and not math.isfinite(value):
        return "a number too large for a double"  # 1e400 reads as infinity
    if isinstance(value, str) and len(value) > 40:
        value = value[:37] + "..."
    return json.dumps(value)  # ASCII only: a lone surrogate shows as \ud800


def _noun(desc: descriptor.Descriptor) -> str:
    """A message type in words: StepConfig -> "step", ModelQueryConfig -> "model query"."""
    name = desc.name.removesuffix("Config") or desc.name
    return " ".join(re.findall(r"[A-Z]+[a-z0-9]*|[a-z0-9]+", name)).lower()


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


@dataclasses.dataclass
class _Checker:
    file: str
    problems: list[ConfigProblem] = dataclasses.field(default_factory=list)

    def add(self, path: str, message: str, hint: str) -> None:
        self.problems.append(ConfigProblem(path, message, hint, self.file))

    def expected(self, path: str, expected: str, value: Any, hint: str = "") -> None:
        self.add(
            path,
            f"expected {expected}, got {_describe(value)}",
            hint or "give the field a value of its declared type (see docs/config_reference.md)",
        )

    def duplicates(self, tree: dict[str, Any], path: str) -> None:
        for key in dict.fromkeys(getattr(tree, "duplicates", ())):
            self.add(
                _join(path, key),
                f"the key {key!r} appears twice in one object",
                "keep one (JSON keeps only the last)",
            )

    def message(self, tree: dict[str, Any], desc: descriptor.Descriptor, path: str) -> None:
        self.duplicates(tree, path)
        fields = {**{f.json_name: f for f in desc.fields}, **{f.name: f for f in desc.fields}}
        given: dict[str, str] = {}
        for key, value in tree.items():
            field_path = _join(path, key)
            field = fields.get(key)
            if field is None:
                close = difflib.get_close_matches(key, [f.name for f in desc.fields], n=1)
                known = ", ".join(f.name for f in desc.fields)
                self.add(
                    field_path,
                    f"unknown field {key!r} in {desc.name} (known fields: {known})",
                    f"did you mean {close[0]!r}?" if close else "remove it",
                )
            elif field.name in given:
                self.add(
                    field_path,
                    f"the field {field.name} is given twice, as {given[field.name]!r} and {key!r}",
                    "keep one",
                )
            else:
                given[field.name] = key
                if value is not None:  # null leaves a field unset
                    self.field(value, field, field_path)

    def field(self, value: Any, field: FieldDescriptor, path: str) -> None:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            if not isinstance(value, dict):
                self.expected(path, "an object", value)
            return  # no config has maps; json_format checks their keys and values
        if not field.is_repeated:
            self.single(value, field, path)
            return
        if not isinstance(value, list):
            self.expected(path, f"a list of {_plural(field)}", value)
            return
        nullable = entry is not None and entry.full_name == "google.protobuf.Value"
        for index, item in enumerate(value):
            if item is None and not nullable:
                self.expected(f"{path}[{index}]", _singular(field), item, "remove the null")
            else:
                self.single(item, field, f"{path}[{index}]")

    def single(self, value: Any, field: FieldDescriptor, path: str) -> None:
        sub = field.message_type
        if sub is None:
            self.scalar(value, field, path)
        elif sub.full_name == "google.protobuf.Struct":
            if isinstance(value, dict):
                self.free(value, path)
            else:
                self.expected(path, "an object", value)
        elif sub.full_name == "google.protobuf.ListValue":
            if isinstance(value, list):
                self.free(value, path)
            else:
                self.expected(path, "a list", value)
        elif sub.full_name == "google.protobuf.Value":
            self.free(value, path)
        elif sub.full_name in _STRING_TYPES:
            if isinstance(value, str):
                self.text(value, path)
            else:
                self.expected(path, _STRING_TYPES[sub.full_name], value)
        elif sub.full_name.startswith("google.protobuf.") and "value" in sub.fields_by_name:
            self.scalar(value, sub.fields_by_name["value"], path)  # wrappers: Int64Value ...
        elif not isinstance(value, dict):
            self.expected(path, _a(f"{_noun(sub)} object"), value)
        elif not sub.full_name.startswith("google.protobuf."):  # Any, Empty: json_format's
            self.message(value, sub, path)

    def scalar(self, value: Any, field: FieldDescriptor, path: str) -> None:
        kind = field.cpp_type
        if kind == FieldDescriptor.CPPTYPE_STRING:
            if isinstance(value, str):
                self.text(value, path)
            else:
                self.expected(path, "a string", value)
        elif kind == FieldDescriptor.CPPTYPE_BOOL:
            if not isinstance(value, bool):
                self.expected(path, "true or false", value)
        elif kind == FieldDescriptor.CPPTYPE_ENUM and field.enum_type is not None:
            self.enum(value, field.enum_type, path)
        elif kind in _INT_RANGES:
            low, high = _INT_RANGES[kind]
            number = _integral(value)
            if number is None or not low <= number <= high:
                self.expected(path, f"an integer from {low} to {high}", value)
        elif not _is_float(value, single=kind == FieldDescriptor.CPPTYPE_FLOAT):
            self.expected(path, "a number", value)

    def enum(self, value: Any, enum: descriptor.EnumDescriptor, path: str) -> None:
        # Looking a lone surrogate up in protobuf's name map raises a SystemError.
        if isinstance(value, str) and _encodable(value) and value in enum.values_by_name:
            return
        number = _integral(value)
        if number is not None and number in enum.values_by_number:
            return
        allowed = ", ".join(f"{v.name} ({v.number})" for v in enum.values)
        self.add(
            path,
            f"expected one of {allowed}, got {_describe(value)}",
            "use a name or a number from that list",
        )

    def free(self, value: Any, path: str) -> None:
        """Checks a free-form value: strings encodable, numbers a double can hold."""
        if isinstance(value, str):
            self.text(value, path)
        elif isinstance(value, dict):
            self.duplicates(value, path)
            for key, item in value.items():
                item_path = _join(path, key)
                if not _encodable(key):
                    self.text(key, item_path)
                self.free(item, item_path)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.free(item, f"{path}[{index}]")
        elif isinstance(value, _BadNumber) and not value.text.lstrip("-").isdigit():
            self.add(
                path, f"{value.text} is not a JSON number", f'write it as a string: "{value.text}"'
            )
        elif not (value is None or isinstance(value, bool) or _fits_double(value)):
            what = "the number" if isinstance(value, float) else _describe(value)
            self.add(
                path,
                f"{what} is too large for a free-form value (protobuf keeps these numbers as "
                "doubles, at most about 1.8e308)",
                "write the number as a string",
            )

    def text(self, value: str, path: str) -> None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            self.add(
                path,
                f"the string holds a lone surrogate {value[error.start]!a} at character "
                f"{error.start + 1}, which is not text",
                "a \\uD800-\\uDFFF escape must be half of a pair (\\ud83d\\ude00 is one "
                "character); write the character itself instead",
            )


def _integral(value: Any) -> int | None:
    """``value`` as an integer, when it is one: a JSON integer, 3.0, or a decimal string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and len(value) <= _MAX_DIGITS and _INTEGER.fullmatch(value):
        return int(value)
    return None


def _is_float(value: Any, *, single: bool) -> bool:
    """Whether a double (or, ``single``, a float) field takes ``value``, as json_format does."""
    if isinstance(value, str):
        if value in ("NaN", "Infinity", "-Infinity"):
            return True
        try:
            float(value)
        except ValueError:
            return False
        return value != "nan"  # json_format wants "NaN"
    return _fits_double(value) and (not single or abs(value) <= _FLOAT32_MAX)


def _fits_double(value: Any) -> bool:
    """Whether ``value`` is a JSON number a double holds (not too large, not NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer of hundreds of digits
        return False


def _plural(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return f"{_noun(field.message_type)} objects"
    return {
        FieldDescriptor.CPPTYPE_STRING: "strings",
        FieldDescriptor.CPPTYPE_BOOL: "true/false values",
        FieldDescriptor.CPPTYPE_ENUM: f"{_enum_name(field)} values",
    }.get(field.cpp_type, "numbers")


def _singular(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return _a(f"{_noun(field.message_type)} object")
    return {
        FieldDescriptor.CPPTYPE_STRING: "a string",
        FieldDescriptor.CPPTYPE_BOOL: "true or false",
        FieldDescriptor.CPPTYPE_ENUM: f"a {_enum_name(field)} value",
    }.get(field.cpp_type, "a number")


def _enum_name(field: FieldDescriptor) -> str:
    return field.enum_type.name if field.enum_type is not None else "enum"
