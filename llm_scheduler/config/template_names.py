"""The names a template without filters reads, found without parsing it.

Validating a wide job whose tasks' prompts all differ ("Item 17: %subject%") parsed each prompt
and looked for problems in it: ~20 µs a prompt. A template with no ``|`` has no filters, so it
has no `Template.problems` (each comes from a filter or a near miss, which holds a ``|``), and
every placeholder it has is required. Its names are then one regular-expression scan away: the
placeholder syntax of `config.template` without the filters, which match nothing in such text.
"""

from __future__ import annotations

import re

__all__ = ["plain_names"]

# `template._TOKEN` without the filters: ``%%``, or a placeholder (its name captured).
_PLAIN_TOKEN = re.compile(r"%%|%([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_]+)*%")
# The sorted names of each list of placeholder names found (a wide job repeats a few).
_sorted: dict[tuple[str, ...], tuple[str, ...]] = {}
_NONE: tuple[str, ...] = ()


def plain_names(text: str) -> tuple[str, ...] | None:
    """The names ``text`` reads (`Template.required_names`, sorted), or None if it has a ``|``.

    For a template without ``|`` these are all the names it reads, and it has no problems; a
    text with a ``|`` needs `Template.parse`.
    """
    if "%" not in text:
        return _NONE
    if "|" in text:
        return None
    found = tuple(_PLAIN_TOKEN.findall(text))
    names = _sorted.get(found)
    if names is None:
        if len(_sorted) > 4096:  # a bound for a long-lived process; only a speed-up
            _sorted.clear()
        names = _sorted[found] = tuple(sorted({name for name in found if name}))
    return names
