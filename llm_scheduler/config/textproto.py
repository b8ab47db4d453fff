r"""Textproto configs before protobuf reads them: nesting and string escapes.

protobuf's text_format recurses once per nested message (a RecursionError on deep text), and
decodes string escapes with Python's ``unicode_escape``, which only warns about an unknown
escape (``"\j"``) and fails without a position on a surrogate (``"\ud800"``). `check` finds
these first, with the fields leading to them and the line and column.
"""

from __future__ import annotations

import re

from llm_scheduler.errors import ConfigError

__all__ = ["MAX_TEXTPROTO_NESTING", "check"]

# Messages inside one another: protobuf's own limit for binary messages.
MAX_TEXTPROTO_NESTING = 100

_TOKENS = re.compile(
    r"""[A-Za-z_][\w.]*|\[[^\]\n]*\]|[{}<>]|#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
)
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", re.DOTALL)
_SIMPLE_ESCAPES = set("abfnrtv\\'\"?01234567xuU")
_ESCAPES_HINT = (
    "textproto strings take the escapes \\n \\t \\r \\\" \\' \\\\ \\NNN (octal) \\xHH "
    "\\uHHHH; write \\\\ for a backslash"
)


def check(text: str, file: str) -> None:
    """Refuses text nested deeper than `MAX_TEXTPROTO_NESTING` or with a bad string escape.

    Raises:
        ConfigError: At the fields leading to the problem (textproto has no list indexes).
    """
    fields: list[str] = []
    last_name = ""
    for match in _TOKENS.finditer(text):
        token = match[0]
        if token in ("{", "<"):
            if len(fields) == MAX_TEXTPROTO_NESTING:
                raise _error(
                    text,
                    match.start(),
                    fields,
                    f"messages nested more than {MAX_TEXTPROTO_NESTING} deep",
                    f"a config nests at most {MAX_TEXTPROTO_NESTING} messages; flatten the value",
                    file,
                )
            fields.append(last_name)
        elif token in ("}", ">"):
            if fields:
                fields.pop()
        elif token[0] in "\"'":
            _check_escapes(text, match.start(), token, [*fields, last_name], file)
        elif token[0] != "#":
            last_name = token


def _check_escapes(text: str, start: int, token: str, fields: list[str], file: str) -> None:
    for escape in _ESCAPE.finditer(token):
        code = escape[1]
        if code[0] in "uU" and len(code) > 1 and 0xD800 <= int(code[1:], 16) <= 0xDFFF:
            raise _error(
                text,
                start + escape.start(),
                fields,
                f"the escape \\{code} is half of a UTF-16 surrogate pair, which a textproto "
                "string cannot hold",
                "write the character itself (the file is UTF-8)",
                file,
            )
        if code[0] not in _SIMPLE_ESCAPES:
            raise _error(
                text,
                start + escape.start(),
                fields,
                f"unknown escape \\{code} in a string",
                _ESCAPES_HINT,
                file,
            )


def _error(
    text: str, at: int, fields: list[str], message: str, hint: str, file: str
) -> ConfigError:
    line = text.count("\n", 0, at) + 1
    column = at - text.rfind("\n", 0, at)
    shown = fields if len(fields) <= 10 else [*fields[:10], "..."]
    return ConfigError.single(
        ".".join(name for name in shown if name),
        f"{message} (line {line} column {column})",
        hint,
        file,
    )
