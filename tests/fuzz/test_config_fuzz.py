"""Fuzzing config loading and validation: bad input is a UserError, never a traceback.

Raw bytes, random JSON, textproto-like token soup, and the sample configs mutated (values,
types, keys, nesting; then their text or bytes) are loaded as step, task and job configs and
validated; a config that passes is printed as config_reader would. The only exceptions allowed
are `UserError`s with a message. The examples are derandomized (see tests/conftest.py), so a
failure reproduces; the sizes keep the whole module near 15 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import hypothesis
from google.protobuf import descriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck
from hypothesis import strategies as st

from llm_scheduler.config import formats
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.validation import Validator
from llm_scheduler.config_tools.samples import sample_files
from llm_scheduler.errors import ConfigError, UserError
from llm_scheduler.function_steps import default_registry
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.v1 import config_pb2
from tests.conftest import REPO_ROOT

_MODELS = ModelRegistry()
_FUNCTIONS = default_registry()
_FILE = "fuzz.cfg"

_VALIDATE: dict[type[Message], Callable[[Validator, Any], None]] = {
    config_pb2.StepConfig: lambda validator, step: validator.check_step(step),
    config_pb2.TaskConfig: lambda validator, task: validator.check_tasks([task]),
    config_pb2.JobConfig: lambda validator, job: validator.check_job(job),
}


def load_validate_print(data: bytes | str, fmt: ConfigFormat) -> None:
    """What config_reader does with a file, for each config type; UserErrors are expected."""
    for message_type, validate in _VALIDATE.items():
        try:
            message = formats.loads(data, message_type, fmt, file=_FILE)
            validate(Validator(_MODELS, _FUNCTIONS, file=_FILE), message)
            for out in ConfigFormat:
                formats.dumps(message, out)
            if isinstance(message, config_pb2.JobConfig):
                TaskGraph.from_job(message).render_text()
        except UserError as error:
            assert str(error).strip()
            if isinstance(error, ConfigError):
                assert all(problem.message for problem in error.problems)


def _names(desc: descriptor.Descriptor, seen: set[str]) -> None:
    if desc.full_name in seen:
        return
    seen.add(desc.full_name)
    for field in desc.fields:
        seen.add(field.name)
        if field.enum_type is not None:
            seen.update(value.name for value in field.enum_type.values)
        if field.message_type is not None and field.message_type.file is desc.file:
            _names(field.message_type, seen)


def _config_words() -> list[str]:
    words: set[str] = set()
    _names(cast(descriptor.Descriptor, config_pb2.JobConfig.DESCRIPTOR), words)
    return [*sorted(w for w in words if "." not in w), "$combine", "response", "OFFLINE"]


WORDS = _config_words()

# JSON values that broke loading once: deep nesting (a RecursionError), numbers over Python's
# 4,300 digits (a ValueError), lone surrogates (a SystemError inside protobuf), numbers a double
# cannot hold, and values validation must refuse (fractional enums, ids that are paths).
NASTY_VALUES = [
    "[" * 1000 + "]" * 1000,
    '{"a": ' * 1000 + "1" + "}" * 1000,
    "[" * 33 + "]" * 33,
    "9" * 5000,
    "-" + "9" * 5000,
    "1" + "0" * 400,
    "1e400",
    "NaN",
    "-Infinity",
    '"\\ud800"',
    '"x\\udfff"',
    '"a/b"',
    '".."',
    '"__x__"',
    "1.9",
    "2",
    "true",
    "null",
    "[null]",
]
# Text that breaks the syntax around it.
NASTY_TEXT = [*NASTY_VALUES, '"x": 1, "x": 2', "//", "\\", '"', "{", "]"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "a/b", "..", "__x__", "%response%", "%x.y%", "STEP_TYPE_NONE"])
    | st.sampled_from(WORDS)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=24,
)


def _seeds() -> list[bytes]:
    found = dict.fromkeys(sample_files().values())
    for path in sorted((REPO_ROOT / "examples").glob("*.json")):
        found[path.read_bytes()] = None
    return list(found)


SEEDS = _seeds()
SEED_TREES = [formats.parse_json(seed.decode("utf-8")) for seed in SEEDS]


def _raw(index: int) -> str:
    """A placeholder `to_json` replaces with the text of ``NASTY_VALUES[index]``."""
    return f"@@nasty{index}@@"


def to_json(tree: Any, *, ensure_ascii: bool = True) -> str:
    """``tree`` as JSON text, its placeholders replaced by nasty JSON values."""
    text = json.dumps(tree, ensure_ascii=ensure_ascii)
    for index, value in enumerate(NASTY_VALUES):
        text = text.replace(f'"{_raw(index)}"', value)
    return text


def _replacement(data: st.DataObject, value: Any) -> Any:
    """A value to put in place of ``value``: another type, a wrapper, a random or nasty one."""
    choice = data.draw(st.integers(0, 7), label="replacement")
    if choice == 7:
        return _raw(data.draw(st.integers(0, len(NASTY_VALUES) - 1), label="nasty value"))
    if choice == 0:
        return data.draw(json_values, label="random value")
    if choice == 1:
        return [value]
    if choice == 2:
        return {data.draw(st.sampled_from(WORDS), label="key"): value}
    if choice == 3:
        for _ in range(data.draw(st.integers(1, 40), label="nesting")):
            value = [value]
        return value
    if choice == 4:
        return str(value) if not isinstance(value, str) else len(value)
    if choice == 5:
        return data.draw(st.sampled_from([None, True, 1.9, -1, 2**64, float("nan"), "\ud800"]))
    return {}


def mutate(data: st.DataObject, tree: Any) -> Any:
    """``tree`` with one change at a random place: replaced, deleted or added to."""
    if isinstance(tree, dict) and tree and data.draw(st.integers(0, 3), label="descend") < 3:
        key = data.draw(st.sampled_from(sorted(tree)), label="key")
        result = dict(tree)
        action = data.draw(st.integers(0, 5), label="dict action")
        if action == 0:
            del result[key]
        elif action == 1:
            result[data.draw(st.sampled_from(WORDS), label="new key")] = data.draw(json_values)
        else:
            result[key] = mutate(data, tree[key])
        return result
    if isinstance(tree, list) and tree and data.draw(st.integers(0, 3), label="descend") < 3:
        index = data.draw(st.integers(0, len(tree) - 1), label="index")
        items = list(tree)
        if data.draw(st.booleans(), label="duplicate"):
            items.append(items[index])  # a repeated task, step or id
        else:
            items[index] = mutate(data, tree[index])
        return items
    return _replacement(data, tree)


def edit_text(data: st.DataObject, text: str) -> str:
    """``text`` with up to three snippets inserted and spans deleted at random places."""
    for _ in range(data.draw(st.integers(0, 3), label="edits")):
        at = data.draw(st.integers(0, len(text)), label="at")
        if data.draw(st.booleans(), label="insert"):
            snippet = data.draw(st.sampled_from(NASTY_TEXT) | st.sampled_from(WORDS))
            text = text[:at] + snippet + text[at:]
        else:
            text = text[:at] + text[at + data.draw(st.integers(1, 20), label="span") :]
    return text


_SETTINGS = hypothesis.settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


# The documents the fuzzing of the CLIs found, always tried (in every format) besides random bytes.
_STEP = '{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"}}'
_CHAIN = ", ".join(
    f'{{"task_id": "t{i}", "next_task": "t{i + 1}", "steps": [{_STEP}]}}' for i in range(1199)
)
KNOWN_CRASHES = [
    '{"input_config": {"payload": {"x": ' + NASTY_VALUES[0] + "}}}",
    '{"metadata": {"timestamp": ' + "9" * 5000 + "}}",
    '{"tasks": [{"steps": [{"step_type": "\\ud800"}]}]}',
    '{"input_config": {"payload": {"x": 1e400}}, "tasks": [{"task_id": "a", "steps": ['
    + _STEP
    + "]}]}",
    'input_config { payload { fields { key: "x" value { '
    + "list_value { values { " * 300
    + "} } " * 300
    + "} } } }",
    'job_id: "\\j"',
    '{"tasks": [' + _CHAIN + f', {{"task_id": "t1199", "steps": [{_STEP}]}}]}}',
]


def _with_examples(*examples: bytes) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for example in examples:
            test = hypothesis.example(example)(test)
        return test

    return decorate


@hypothesis.settings(_SETTINGS, max_examples=300)
@hypothesis.given(st.binary(max_size=300))
@_with_examples(*(text.encode("utf-8") for text in KNOWN_CRASHES))
def test_random_bytes(data: bytes) -> None:
    for fmt in ConfigFormat:
        load_validate_print(data, fmt)


@hypothesis.settings(_SETTINGS, max_examples=300)
@hypothesis.given(json_values | st.dictionaries(st.sampled_from(WORDS), json_values, max_size=6))
def test_random_json(value: Any) -> None:
    load_validate_print(json.dumps(value), ConfigFormat.JSON)


@hypothesis.settings(_SETTINGS, max_examples=300)
@hypothesis.given(
    st.lists(
        st.sampled_from(WORDS)
        | st.sampled_from(["{", "}", "<", ">", ":", "[", "]", ",", "\n", "#", "-", "inf"])
        | st.sampled_from(NASTY_TEXT)
        | st.text(max_size=4),
        max_size=40,
    )
)
def test_textproto_like_text(tokens: list[str]) -> None:
    load_validate_print(" ".join(tokens), ConfigFormat.TEXTPROTO)


@hypothesis.settings(_SETTINGS, max_examples=500)
@hypothesis.given(st.integers(0, len(SEEDS) - 1), st.data())
def test_mutated_sample_configs(seed: int, data: st.DataObject) -> None:
    tree = SEED_TREES[seed]
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        tree = mutate(data, tree)
    text = to_json(tree, ensure_ascii=data.draw(st.booleans(), label="ascii"))
    load_validate_print(edit_text(data, text), ConfigFormat.JSON)


@hypothesis.settings(_SETTINGS, max_examples=200)
@hypothesis.given(st.integers(0, len(SEEDS) - 1), st.data())
def test_mutated_sample_configs_as_textproto_and_binary(seed: int, data: st.DataObject) -> None:
    for message_type in (config_pb2.JobConfig, config_pb2.TaskConfig, config_pb2.StepConfig):
        try:
            message = formats.loads(SEEDS[seed], message_type, ConfigFormat.JSON)
            break
        except ConfigError:
            continue
    else:
        return  # the models file
    text = formats.dumps(message, ConfigFormat.TEXTPROTO).decode("utf-8")
    load_validate_print(edit_text(data, text), ConfigFormat.TEXTPROTO)
    binary = bytearray(formats.dumps(message, ConfigFormat.BINARY))
    for _ in range(data.draw(st.integers(1, 4), label="byte edits")):
        at = data.draw(st.integers(0, len(binary) - 1), label="byte at")
        binary[at] = data.draw(st.integers(0, 255), label="byte")
    load_validate_print(bytes(binary), ConfigFormat.BINARY)
