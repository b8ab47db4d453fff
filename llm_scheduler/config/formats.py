"""Reading and writing configs as JSON, textproto and binary protobuf.

JSON is the proto JSON mapping with the original snake_case field names; ``//`` line comments are
allowed because the seed documents its configs that way. Unknown fields are reported all at once,
each with its field path and the closest known name.

Nothing a file holds may surface as a parser's traceback: files are read within limits (regular
files, `MAX_FILE_BYTES`), JSON values are checked by type before protobuf reads them
(`config.jsontree`), textproto nesting and escapes too (`config.textproto`), and what textproto
and binary let through (unknown enum numbers, NaN in free-form values) is checked after.
"""

from __future__ import annotations

import enum
import json
import math
import os
import pathlib
import re
import stat
import warnings
from typing import Any, TypeVar, cast

from google.protobuf import descriptor, json_format, struct_pb2, text_format
from google.protobuf.message import DecodeError, Message

from llm_scheduler.config import jsontree, textproto
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

__all__ = [
    "MAX_FILE_BYTES",
    "ConfigFormat",
    "decode_text",
    "dumps",
    "format_for_path",
    "load",
    "loads",
    "parse_json",
    "read_bytes",
    "strip_json_comments",
]

M = TypeVar("M", bound=Message)

# The largest file `read_bytes` reads by default (configs and models files).
MAX_FILE_BYTES = 32 * 2**20

_FREE_FORM = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}


class ConfigFormat(enum.Enum):
    """The on-disk formats of a config."""

    JSON = "json"
    TEXTPROTO = "textproto"
    BINARY = "binary"


_EXTENSIONS = {
    ".json": ConfigFormat.JSON,
    ".jsonc": ConfigFormat.JSON,
    ".textproto": ConfigFormat.TEXTPROTO,
    ".txtpb": ConfigFormat.TEXTPROTO,
    ".pbtxt": ConfigFormat.TEXTPROTO,
    ".prototxt": ConfigFormat.TEXTPROTO,
    ".binpb": ConfigFormat.BINARY,
    ".pb": ConfigFormat.BINARY,
    ".bin": ConfigFormat.BINARY,
}


# Every byte but the control characters other than \t \n \v \f \r (UTF-8 sequences of other
# characters hold no byte below 0x80, so bytes can be checked before decoding).
_NOT_CONTROL = bytes([*range(0x09, 0x0E), *range(0x20, 0x100)])
# Whitespace and // comments before the first value of a JSON config.
_LEADING_COMMENTS = re.compile(r"(?:\s+|//[^\n]*)*")


def format_for_path(path: str | pathlib.Path, data: bytes | None = None) -> ConfigFormat:
    """Chooses the format from the file extension, or from the content when it is unknown."""
    known = _EXTENSIONS.get(pathlib.Path(path).suffix.lower())
    if known is not None or data is None:
        return known or ConfigFormat.JSON
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ConfigFormat.BINARY
    # Small binary messages are often valid UTF-8, but their tags and lengths are control bytes
    # that JSON and textproto never hold outside strings.
    if data.translate(None, _NOT_CONTROL):
        return ConfigFormat.BINARY
    leading = _LEADING_COMMENTS.match(text)  # always matches, maybe nothing
    is_json = text.startswith("{", leading.end() if leading else 0)
    return ConfigFormat.JSON if is_json else ConfigFormat.TEXTPROTO


def load(path: str | pathlib.Path, message_type: type[M]) -> M:
    """Reads a config file into a message of ``message_type``.

    A job's or task's sub-job steps get their child jobs read from their ``job_path`` (relative
    to this file) and inlined (`sub_jobs.inline_sub_jobs`).

    Raises:
        ConfigError: The file is missing, unreadable or not a valid ``message_type``, or a
            sub-job file is (or the sub-jobs form a cycle).
    """
    data = read_bytes(path)
    message = loads(data, message_type, format_for_path(path, data), file=str(path))
    if isinstance(message, (config_pb2.JobConfig, config_pb2.TaskConfig)):
        from llm_scheduler.config.sub_jobs import inline_sub_jobs  # it reads files with this one

        inline_sub_jobs(message, path)
    return message


def read_bytes(path: str | pathlib.Path, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A config-like file's bytes (configs, models files, traces).

    Only regular files are read, and never more than ``max_bytes``: a FIFO or a device such as
    ``/dev/zero`` would block or never end.

    Raises:
        ConfigError: The file is missing, unreadable, not a regular file or too large, naming it.
    """
    file = str(path)
    try:
        # Look before opening: opening a FIFO waits for a writer, opening a device may act.
        _check_regular(os.stat(path).st_mode, file)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(stream.fileno())
            _check_regular(info.st_mode, file)  # it may have been replaced meanwhile
            if info.st_size > max_bytes:
                raise _too_large(info.st_size, max_bytes, file)
            data = stream.read(max_bytes + 1)  # a file may grow, or report no size (/proc)
    except OSError as error:
        raise ConfigError.single(
            "", f"cannot read the file: {error.strerror or error}", "check the path", file
        ) from None
    if len(data) > max_bytes:
        raise _too_large(None, max_bytes, file)
    return data


_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(mode: int, file: str) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
    raise ConfigError.single(
        "",
        f"cannot read the file: it is {kind}, not a regular file",
        "pass the path of a config file (to read a pipe or a device, save its content to a "
        "file first)",
        file,
    )


def _too_large(size: int | None, max_bytes: int, file: str) -> ConfigError:
    """The error for a file of ``size`` bytes (None: more than it reported) over ``max_bytes``."""
    limit = f"{max_bytes:,} bytes"
    if max_bytes % 2**20 == 0:
        limit += f" ({max_bytes // 2**20} MiB)"
    found = f"{size:,} bytes" if size is not None else "more bytes than that"
    return ConfigError.single(
        "",
        f"the file is too large: at most {limit} are read, and it has {found}",
        "check the path: configs are small, so a file this large is likely not one",
        file,
    )


def decode_text(data: bytes, file: str, hint: str = "") -> str:
    """A file's bytes as text (UTF-8, a byte-order mark dropped).

    Raises:
        ConfigError: The bytes are not UTF-8; ``hint`` says what the file should be.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError.single(
            "",
            "the file is not UTF-8 text",
            hint or "save it as UTF-8, or use a .binpb extension",
            file,
        ) from None


def loads(data: bytes | str, message_type: type[M], fmt: ConfigFormat, file: str = "") -> M:
    """Parses config text or bytes of the given format; see `load`."""
    message = message_type()
    if fmt is ConfigFormat.BINARY:
        _parse_binary(data, message, file)
    else:
        text = data if isinstance(data, str) else decode_text(data, file)
        if fmt is ConfigFormat.TEXTPROTO:
            _parse_textproto(text, message, file)
        else:
            _parse_json(text, message, file)
            return message  # its values were checked before protobuf read them
    problems: list[ConfigProblem] = []
    _check_values(message, "", file, problems)
    if problems:
        raise ConfigError(problems)
    return message


def parse_json(text: str, file: str = "") -> Any:
    """Parses JSON text with ``//`` comments, refusing nesting deeper than a config's.

    Raises:
        ConfigError: The text is not JSON, or is nested too deep.
    """
    return jsontree.parse(strip_json_comments(text), file)


# Besides their own errors, protobuf's parsers raise these on some inputs (a SystemError from a
# lone surrogate, an OverflowError from a huge number ...); none may escape as a traceback.
_PARSER_FAILURES = (ValueError, TypeError, OverflowError, SystemError, RecursionError)


def _parse_binary(data: bytes | str, message: Message, file: str) -> None:
    name = message.DESCRIPTOR.name
    try:
        message.ParseFromString(data.encode("utf-8") if isinstance(data, str) else data)
    except (DecodeError, *_PARSER_FAILURES) as error:
        raise ConfigError.single(
            "", f"not a binary {name}: {_clip(error)}", "check the file and --config_type", file
        ) from None


def _parse_textproto(text: str, message: Message, file: str) -> None:
    name = message.DESCRIPTOR.name
    textproto.check(text, file)
    try:
        with warnings.catch_warnings():
            # textproto.check refuses unknown escapes, which Python's unicode_escape (used by
            # text_format) only warns about; should one get through, it is an error too.
            warnings.simplefilter("error", DeprecationWarning)
            text_format.Parse(text, message)
    except (text_format.ParseError, DeprecationWarning, *_PARSER_FAILURES) as error:
        raise ConfigError.single(
            "",
            f"not a valid {name} textproto: {_clip(error)}",
            "fix the text at that position",
            file,
        ) from None


def _parse_json(text: str, message: Message, file: str) -> None:
    desc = cast(descriptor.Descriptor, message.DESCRIPTOR)
    tree = parse_json(text, file)
    if not isinstance(tree, dict):
        raise ConfigError.single(
            "", f"a {desc.name} must be a JSON object", "wrap it in {...}", file
        )
    problems = jsontree.check(tree, desc, file)
    if problems:
        raise ConfigError(problems)
    try:
        json_format.ParseDict(tree, message)
    except json_format.ParseError as error:
        field_path, detail = _explain_parse_error(str(error))
        raise ConfigError.single(
            field_path,
            f"bad value: {detail}",
            "give the field a value of its declared type (see docs/config_reference.md)",
            file,
        ) from None
    except _PARSER_FAILURES as error:
        raise ConfigError.single(
            "",
            f"protobuf cannot read this {desc.name}: {_clip(error)}",
            "check the values against docs/config_reference.md",
            file,
        ) from None


def _clip(error: Exception) -> str:
    # A parser's message may quote a whole 5,000-digit token.
    text = str(error)
    return text if len(text) <= 300 else f"{text[:297]}..."


def _check_values(message: Message, path: str, file: str, problems: list[ConfigProblem]) -> None:
    """Finds what textproto and binary let through that JSON would not.

    Enum numbers the enum does not define, NaN and infinities in free-form values.
    """
    for field, value in message.ListFields():
        field_path = f"{path}.{field.name}" if path else field.name
        items = list(enumerate(value)) if field.is_repeated else [(-1, value)]
        for index, item in items:
            item_path = f"{field_path}[{index}]" if index >= 0 else field_path
            if field.enum_type is not None and item not in field.enum_type.values_by_number:
                allowed = ", ".join(f"{v.name} ({v.number})" for v in field.enum_type.values)
                problems.append(
                    ConfigProblem(
                        item_path,
                        f"expected one of {allowed}, got {item}",
                        "use a name or a number from that list",
                        file,
                    )
                )
            elif field.message_type is None or field.message_type.GetOptions().map_entry:
                continue
            elif field.message_type.full_name in _FREE_FORM:
                _check_free_form(item, item_path, file, problems)
            else:
                _check_values(item, item_path, file, problems)


def _check_free_form(value: Message, path: str, file: str, problems: list[ConfigProblem]) -> None:
    if isinstance(value, struct_pb2.Struct):
        for key, item in value.fields.items():
            _check_free_form(item, f"{path}.{key}", file, problems)
    elif isinstance(value, struct_pb2.ListValue):
        for index, item in enumerate(value.values):
            _check_free_form(item, f"{path}[{index}]", file, problems)
    elif isinstance(value, struct_pb2.Value):
        kind = value.WhichOneof("kind")
        if kind == "number_value" and not math.isfinite(value.number_value):
            problems.append(
                ConfigProblem(
                    path,
                    f"{value.number_value} does not fit a free-form value (JSON has no NaN "
                    "or infinite numbers)",
                    "write a finite number, or the value as a string",
                    file,
                )
            )
        elif kind in ("struct_value", "list_value"):
            _check_free_form(getattr(value, kind), path, file, problems)


def dumps(message: Message, fmt: ConfigFormat) -> bytes:
    """Writes a message in the given format (JSON with snake_case names, 2-space indent).

    JSON output is canonical: free-form values (`Struct`) have their keys sorted, so the same
    config always prints the same text whatever format or key order it was read from.
    """
    if fmt is ConfigFormat.BINARY:
        return message.SerializeToString(deterministic=True)
    if fmt is ConfigFormat.TEXTPROTO:
        return text_format.MessageToString(message).encode("utf-8")
    tree = json_format.MessageToDict(message, preserving_proto_field_name=True)
    tree = _sort_free_form(tree, cast(descriptor.Descriptor, message.DESCRIPTOR))
    return (json.dumps(tree, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _sort_free_form(tree: dict[str, Any], desc: descriptor.Descriptor) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in tree.items():
        field = desc.fields_by_name.get(key)
        sub = field.message_type if field is not None else None
        if sub is None or not isinstance(value, dict | list):
            result[key] = value  # scalars and well-known types printed as strings
        elif sub.full_name in _FREE_FORM or sub.GetOptions().map_entry:
            result[key] = _sorted_json(value)
        elif isinstance(value, list):
            result[key] = [_sort_free_form(item, sub) for item in value]
        else:
            result[key] = _sort_free_form(value, sub)
    return result


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(item) for item in value]
    return value


def strip_json_comments(text: str) -> str:
    """Removes ``//`` line comments outside JSON strings (line numbers are kept)."""
    return _STRING_OR_COMMENT.sub(_keep_strings, text)


# A JSON string (to the end of the text when unterminated, as JSON would read it) or a comment.
_STRING_OR_COMMENT = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|//[^\n]*', re.DOTALL)


def _keep_strings(match: re.Match[str]) -> str:
    return match[0] if match[0].startswith('"') else ""


def _explain_parse_error(message: str) -> tuple[str, str]:
    # json_format nests messages like 'Failed to parse steps field: Failed to parse x field:
    # <detail> at TaskConfig.steps[0].x.'; keep the detail and the path without the type name.
    detail = re.sub(r"Failed to parse \w+ field: ", "", message)
    fields = re.findall(r"Failed to parse (\w+) field: ", message)
    located = re.search(r" at [A-Za-z_]\w*((?:\.\w+|\[\d+\])*)\.*$", detail)
    if located is None:
        return ".".join(fields), detail.rstrip(".")
    path = located.group(1).lstrip(".")
    # A bad repeated field is located at the message holding it, not at the field itself.
    if fields and not re.search(rf"(^|\.){fields[-1]}(\[\d+\])?$", path):
        path = f"{path}.{fields[-1]}" if path else fields[-1]
    return path, detail[: located.start()]
