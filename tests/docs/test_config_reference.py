"""Checks docs/config_reference.md against config.proto and the built-in registries.

Each message of ``config.proto`` has a section headed by its name (``ResponseFormat``; a nested
message ``Outer.Inner``) holding one ``| field | type | meaning |`` table that lists exactly the
message's fields, with their proto types.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from llm_scheduler.function_steps import default_registry
from llm_scheduler.models.registry import BUILTIN_MODELS, ModelSpec
from llm_scheduler.v1 import config_pb2

REFERENCE = Path(__file__).parents[2] / "docs" / "config_reference.md"

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_FIELD_TABLE_HEADER = ["field", "type", "meaning"]
_PACKAGE_PREFIX = config_pb2.DESCRIPTOR.package + "."

_SCALAR_TYPES = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
}


@dataclasses.dataclass(frozen=True)
class Section:
    """A heading of the reference and the lines up to the next heading of its level or above."""

    title: str
    level: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _read_sections() -> list[Section]:
    lines = REFERENCE.read_text(encoding="utf-8").splitlines()
    headings: list[tuple[int, int, str]] = []  # (line index, level, title)
    in_fence = False
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING.match(line)
        if match:
            headings.append((index, len(match.group(1)), match.group(2).replace("`", "").strip()))
    sections: list[Section] = []
    for position, (start, level, title) in enumerate(headings):
        end = next((i for i, lvl, _ in headings[position + 1 :] if lvl <= level), len(lines))
        sections.append(Section(title, level, tuple(lines[start + 1 : end])))
    return sections


SECTIONS = _read_sections()


def _cells(line: str) -> list[str]:
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(row)]


def _tables(lines: tuple[str, ...]) -> Iterator[tuple[list[str], list[list[str]]]]:
    """Yields (header cells, body rows) for every Markdown table in the lines."""
    index = 0
    while index < len(lines):
        is_table = (
            lines[index].lstrip().startswith("|")
            and index + 1 < len(lines)
            and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[index + 1]) is not None
        )
        if not is_table:
            index += 1
            continue
        header = [cell.lower() for cell in _cells(lines[index])]
        index += 2
        rows: list[list[str]] = []
        while index < len(lines) and lines[index].lstrip().startswith("|"):
            rows.append(_cells(lines[index]))
            index += 1
        yield header, rows


def _field_tables(section: Section) -> list[list[list[str]]]:
    return [rows for header, rows in _tables(section.lines) if header == _FIELD_TABLE_HEADER]


def _walk(descriptors: list[Descriptor]) -> Iterator[Descriptor]:
    for descriptor in descriptors:
        if descriptor.GetOptions().map_entry:
            continue
        yield descriptor
        yield from _walk(list(descriptor.nested_types))


MESSAGES = list(_walk(list(config_pb2.DESCRIPTOR.message_types_by_name.values())))


def _name(full_name: str) -> str:
    return full_name.removeprefix(_PACKAGE_PREFIX)


def _type_name(field: FieldDescriptor) -> str:
    """The field's type as the reference writes it: ``repeated StepConfig``, ``int64``, ..."""
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        key, value = message.fields_by_name["key"], message.fields_by_name["value"]
        return f"map<{_type_name(key)}, {_type_name(value)}>"
    if message is not None:
        base = _name(message.full_name)
    elif field.enum_type is not None:
        base = _name(field.enum_type.full_name)
    else:
        base = _SCALAR_TYPES[field.type]
    return f"repeated {base}" if field.is_repeated else base


def _message_section(message: Descriptor) -> Section:
    name = _name(message.full_name)
    found = [section for section in SECTIONS if section.title == name]
    assert len(found) == 1, f"expected one section headed {name!r}, found {len(found)}"
    return found[0]


def test_messages_found() -> None:
    names = {_name(message.full_name) for message in MESSAGES}
    assert {"StepConfig", "TaskConfig", "JobConfig", "ModelsConfig"} <= names


@pytest.mark.parametrize("message", MESSAGES, ids=lambda message: message.full_name)
def test_message_table_lists_exactly_its_fields(message: Descriptor) -> None:
    section = _message_section(message)
    tables = _field_tables(section)
    assert len(tables) == 1, (
        f"section {section.title!r} needs exactly one '| field | type | meaning |' table"
    )
    documented = [row[0].replace("`", "").strip() for row in tables[0]]
    fields = [field.name for field in message.fields]
    missing = [name for name in fields if name not in documented]
    unknown = [name for name in documented if name not in fields]
    repeated = sorted({name for name in documented if documented.count(name) > 1})
    assert not missing, f"{message.name}: fields missing from the table: {missing}"
    assert not unknown, f"{message.name}: the table lists fields that do not exist: {unknown}"
    assert not repeated, f"{message.name}: fields listed twice: {repeated}"


@pytest.mark.parametrize("message", MESSAGES, ids=lambda message: message.full_name)
def test_message_table_types_match(message: Descriptor) -> None:
    rows = _field_tables(_message_section(message))[0]
    documented = {row[0].replace("`", "").strip(): row[1].replace("`", "").strip() for row in rows}
    wrong = {
        field.name: (documented[field.name], _type_name(field))
        for field in message.fields
        if field.name in documented and documented[field.name] != _type_name(field)
    }
    assert not wrong, f"{message.name}: (documented, actual) types differ: {wrong}"


def _own_tables(section: Section) -> list[list[list[str]]]:
    # A section's lines include its subsections; only count tables before the first of them.
    own: list[str] = []
    in_fence = False
    for line in section.lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and _HEADING.match(line):
            break
        own.append(line)
    return _field_tables(Section(section.title, section.level, tuple(own)))


def test_every_field_table_belongs_to_a_message() -> None:
    names = {_name(message.full_name) for message in MESSAGES}
    with_tables = [section.title for section in SECTIONS if _own_tables(section)]
    assert [title for title in with_tables if title not in names] == []


def _price(value: float) -> str:
    return f"{value:g}"


def _expected_model_row(spec: ModelSpec) -> list[str]:
    return [
        f"`{spec.key}`",
        spec.provider,
        f"`{spec.model}`",
        _price(spec.input_price),
        _price(spec.output_price),
        _price(spec.cached_input_price),
        _price(spec.cache_write_price),
    ]


@pytest.mark.parametrize("spec", BUILTIN_MODELS, ids=lambda spec: spec.key)
def test_builtin_model_key_documented(spec: ModelSpec) -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    assert f"`{spec.key}`" in text
    model_rows = [
        row
        for section in SECTIONS
        if section.title == "Built-in keys"
        for header, rows in _tables(section.lines)
        if header[:3] == ["key", "provider", "model"]
        for row in rows
    ]
    expected = _expected_model_row(spec)
    found = [row for row in model_rows if row[0] == expected[0]]
    assert found == [expected], (
        f"the 'Built-in keys' table needs the row: | {' | '.join(expected)} |"
    )


def test_builtin_model_table_has_no_stale_keys() -> None:
    keys = {f"`{spec.key}`" for spec in BUILTIN_MODELS}
    documented = [
        row[0]
        for section in SECTIONS
        if section.title == "Built-in keys"
        for header, rows in _tables(section.lines)
        if header[:3] == ["key", "provider", "model"]
        for row in rows
    ]
    assert documented, "no 'Built-in keys' table found"
    assert [key for key in documented if key not in keys] == []


@pytest.mark.parametrize("name", default_registry().names())
def test_builtin_function_documented(name: str) -> None:
    found = [section for section in SECTIONS if section.title == "Function-call steps"]
    assert len(found) == 1, "expected one 'Function-call steps' section"
    assert f"`{name}(" in found[0].text, (
        f"document the built-in function {name!r} with its signature under 'Function-call steps'"
    )


# -- commands and examples in the docs ------------------------------------------------------------

REPO_ROOT = REFERENCE.parents[1]
README = REPO_ROOT / "README.md"
_SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
_EXAMPLE_PATH = re.compile(r"(?<![\w.-])examples/[\w./-]*\w")
_OPTION = re.compile(r"--(\w+)=(\S+)")
_WRITES = {"output_path", "output", "trace_out", "output_dir"}
_READS = {"input_path", "replay"}


def _fenced_blocks(text: str) -> Iterator[tuple[str, list[str]]]:
    """(language, lines) of every fenced code block of Markdown text, in order."""
    language, inside = "", False
    lines: list[str] = []
    for line in text.splitlines():
        if _FENCE.match(line):
            if inside:
                yield language, lines
                language, lines, inside = "", [], False
            else:
                language, inside = line.strip().strip("`~").strip().lower(), True
        elif inside:
            lines.append(line)


def _shell_commands(path: Path) -> list[str]:
    """The commands of a doc's shell blocks (in a console block, the lines after ``$ ``)."""
    commands: list[str] = []
    for language, lines in _fenced_blocks(path.read_text(encoding="utf-8")):
        if language not in _SHELL_LANGUAGES:
            continue
        for line in lines:
            if language == "console":
                if line.startswith("$ "):
                    commands.append(line[2:])
            elif line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.split(" # ")[0])
    return commands


DOCS = [REFERENCE, README]


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_shell_commands_name_existing_example_files(doc: Path) -> None:
    commands = _shell_commands(doc)
    named = [(command, match) for command in commands for match in _EXAMPLE_PATH.findall(command)]
    assert named, f"{doc.name}: no command uses a file of examples/"
    missing = [(match, command) for command, match in named if not (REPO_ROOT / match).is_file()]
    assert not missing, f"{doc.name}: commands name files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_example_file_the_doc_names_exists(doc: Path) -> None:
    named = set(_EXAMPLE_PATH.findall(doc.read_text(encoding="utf-8")))
    assert [name for name in sorted(named) if not (REPO_ROOT / name).exists()] == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_commands_read_files_only_after_a_command_writes_them(doc: Path) -> None:
    # A file one command writes (--output_path, --trace_out, ...) and another reads
    # (--input_path, --replay) must be written first, so the commands run in the order shown.
    written: dict[str, int] = {}
    read: list[tuple[int, str]] = []
    for index, command in enumerate(_shell_commands(doc)):
        for option, value in _OPTION.findall(command):
            if option in _WRITES:
                written.setdefault(value.rstrip("/"), index)
            elif option in _READS:
                read += [(index, file) for file in value.split(",") if file]

    def writer(file: str) -> int | None:
        found = [at for out, at in written.items() if file == out or file.startswith(out + "/")]
        return min(found) if found else None

    early = [
        (file, command)
        for command, file in read
        if (at := writer(file)) is not None and at >= command
    ]
    assert not early, f"{doc.name}: files read before the command that writes them: {early}"


def test_readme_library_example_runs_and_prints_readable_json() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Using it as a library") :]
    code = next(lines for language, lines in _fenced_blocks(section) if language == "python")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith("_API_KEY") and not name.startswith("LLM_SCHEDULER_")
    }
    completed = subprocess.run(
        [sys.executable, "-c", "\n".join(code)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout)  # readable JSON, not a protobuf repr
    assert printed["status"] == "RUN_STATUS_SUCCEEDED"
    assert set(printed["outputs"]) == {"revise"}
    assert "owls" in printed["outputs"]["revise"]["poem"]
