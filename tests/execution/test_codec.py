"""The record codec gives exactly json_format's results, through its fast path or json_format."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import pytest
from google.protobuf import descriptor_pb2, json_format, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from llm_scheduler.execution import codec
from llm_scheduler.execution import documents as docs
from llm_scheduler.v1 import config_pb2, run_pb2

M = TypeVar("M", bound=Message)

MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
SEEDS_PER_TYPE = 30


def _descriptors() -> Iterator[Descriptor]:
    def walk(descriptor: Descriptor) -> Iterator[Descriptor]:
        yield descriptor
        for nested in descriptor.nested_types:
            yield from walk(nested)

    for file in (config_pb2.DESCRIPTOR, run_pb2.DESCRIPTOR):
        for descriptor in file.message_types_by_name.values():
            yield from walk(descriptor)


MESSAGE_TYPES = [message_factory.GetMessageClass(d) for d in _descriptors()]
MESSAGE_TYPE_IDS = [t.DESCRIPTOR.name for t in MESSAGE_TYPES]

STRINGS = [
    "",
    "x",
    "plain text",
    "héllo wörld ✓ 日本語 🚀 \U0010ffff",
    '"quotes" \\backslash\\ /slash/ \n\r\t\b\f \x00\x01\x1f \x7f \u2028\u2029',
    "RUN_STATUS_SUCCEEDED",
    "2026-11-21T13:25:03Z",
    "12345678901234567890",
    "null",
]
DOUBLES = [0.0, -0.0, 1.0, 2.0, -3.0, 0.1, 1e300, -1e-300, 5e-324, 2.0**53 + 2, 1e16, 1e22]
INT64S = [0, 1, -1, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1, -(2**63), 10**18]
INT32S = [0, 1, -1, 2**31 - 1, -(2**31), 1000]
NANOS = [0, 1, 999_999_999, 5_000_000, 123_000_000, 7_000, 123_456_000, 123_456_789, 100]


class Filler:
    """Fills messages with deterministic random values, driven by their descriptors.

    ``exotic`` adds values that do not survive a round trip through json_format: NaN doubles and
    Values with no kind (written as null, read back as null_value).
    """

    def __init__(self, seed: int, exotic: bool = True) -> None:
        self.rng = random.Random(seed)
        self.exotic = exotic

    def message(self, message: Message, depth: int = 0) -> None:
        for field in cast(Descriptor, message.DESCRIPTOR).fields:
            roll = self.rng.random()
            if roll < 0.3:
                continue  # unset
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                entries = getattr(message, field.name)  # map<string, string>
                value_field = field.message_type.fields_by_name["value"]
                for _ in range(self.rng.choice((0, 1, 2, 3))):
                    entries[self.scalar(value_field)] = self.scalar(value_field)
            elif field.is_repeated:
                container = getattr(message, field.name)
                for _ in range(self.rng.choice((0, 1, 2, 3) if depth < 2 else (0, 1))):
                    if field.message_type is not None:
                        self.sub_message(container.add(), depth + 1)
                    else:
                        container.append(self.scalar(field))
            elif field.message_type is not None:
                self.sub_message(getattr(message, field.name), depth + 1)
            elif roll < 0.4:
                setattr(message, field.name, field.default_value)  # stays unset in proto3
            else:
                setattr(message, field.name, self.scalar(field))

    def sub_message(self, message: Message, depth: int) -> None:
        message.SetInParent()
        if isinstance(message, struct_pb2.Struct):
            self.struct(message, 0)
        elif isinstance(message, struct_pb2.Value):
            self.value(message, 0)
        elif isinstance(message, timestamp_pb2.Timestamp):
            self.timestamp(message)
        elif depth < 4 and self.rng.random() > 0.15:
            self.message(message, depth)
        # else: set but empty

    def scalar(self, field: FieldDescriptor) -> Any:
        rng = self.rng
        if field.enum_type is not None:
            if rng.random() < 0.1:
                return rng.choice((42, -7))  # open enums keep unknown numbers
            return rng.choice([value.number for value in field.enum_type.values])
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            return self.string()
        if kind == FieldDescriptor.TYPE_BOOL:
            return rng.random() < 0.5
        if kind == FieldDescriptor.TYPE_INT32:
            return rng.choice([*INT32S, rng.randint(-(2**31), 2**31 - 1)])
        if kind == FieldDescriptor.TYPE_INT64:
            return rng.choice([*INT64S, rng.randint(-(2**63), 2**63 - 1)])
        if kind == FieldDescriptor.TYPE_DOUBLE:
            extra = [math.inf, -math.inf] + ([math.nan] if self.exotic else [])
            extra += [rng.uniform(-1e6, 1e6), float(rng.randint(-99, 99))]
            return rng.choice([*DOUBLES, *extra])
        raise AssertionError(f"no values for {field.full_name}")

    def string(self) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            return rng.choice(STRINGS)
        ranges = [(0x20, 0x7E), (0x00, 0x1F), (0xA0, 0x2FF), (0x3040, 0x30FF), (0x1F600, 0x1F64F)]
        chars = []
        for _ in range(rng.randint(0, 12)):
            low, high = rng.choice(ranges)
            chars.append(chr(rng.randint(low, high)))
        return "".join(chars)

    def struct(self, struct: struct_pb2.Struct, depth: int) -> None:
        for _ in range(self.rng.choice((0, 1, 2, 4))):
            self.value(struct.fields[self.string()], depth + 1)

    def value(self, value: struct_pb2.Value, depth: int) -> None:
        rng = self.rng
        kinds = ["null", "number", "string", "bool", "struct", "list"]
        if depth > 3:
            kinds = kinds[:4]
        if self.exotic:
            kinds.append("unset")
        kind = rng.choice(kinds)
        if kind == "null":
            value.null_value = struct_pb2.NULL_VALUE
        elif kind == "number":
            numbers = [0.0, -0.0, 3.0, 0.1, 1e300, float(2**60), -5.5, 1e-7]
            value.number_value = rng.choice([*numbers, rng.uniform(-1e9, 1e9)])
        elif kind == "string":
            value.string_value = self.string()
        elif kind == "bool":
            value.bool_value = rng.random() < 0.5
        elif kind == "struct":
            value.struct_value.SetInParent()
            self.struct(value.struct_value, depth + 1)
        elif kind == "list":
            value.list_value.SetInParent()
            for _ in range(rng.choice((0, 1, 3))):
                self.value(value.list_value.values.add(), depth + 1)

    def timestamp(self, timestamp: timestamp_pb2.Timestamp) -> None:
        rng = self.rng
        seconds = [0, -1, 1, MIN_SECONDS, MAX_SECONDS, 1_795_000_000, 951_782_400]
        seconds += [rng.randint(MIN_SECONDS, 0), rng.randint(0, MAX_SECONDS)]
        timestamp.seconds = rng.choice(seconds)
        nanos = [*NANOS, rng.randint(0, 999) * 1_000_000, rng.randint(0, 999_999) * 1000]
        timestamp.nanos = rng.choice([*nanos, rng.randint(0, 999_999_999)])


def generated(message_type: type[Message], exotic: bool = True) -> Iterator[Message]:
    for seed in range(SEEDS_PER_TYPE):
        message = message_type()
        Filler(seed * 7919 + len(message_type.DESCRIPTOR.name), exotic).message(message)
        yield message


def expected_doc(message: Message) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def expected_message(doc: Any, message_type: type[M]) -> M:
    message = message_type()
    json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    return message


def assert_same(actual: Any, expected: Any, path: str = "doc") -> None:
    """Equal with the same types, key order and float bits (1 == 1.0 == True is not enough)."""
    assert type(actual) is type(expected), f"{path}: {actual!r} != {expected!r}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), path
        for key, value in expected.items():
            assert_same(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for index, (item, expected_item) in enumerate(zip(actual, expected, strict=True)):
            assert_same(item, expected_item, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert repr(actual) == repr(expected), path
    else:
        assert actual == expected, path


def assert_same_message(actual: Message, expected: Message, map_order: bool = True) -> None:
    """Equal to the bit (NaN, -0.0) and, with ``map_order``, with Struct keys in the same order."""
    assert type(actual) is type(expected)
    assert actual.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    if map_order:
        # A upb map iterates in an order that depends on the order keys went in.
        assert actual.SerializeToString() == expected.SerializeToString()
        written = outcome(lambda: expected_doc(actual))
        assert_same_outcome(written, outcome(lambda: expected_doc(expected)))


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as error:  # compared with json_format's
        return error


def assert_same_outcome(actual: Any, expected: Any) -> None:
    if isinstance(expected, Exception):
        assert type(actual) is type(expected), f"{actual!r} != {expected!r}"
        assert str(actual) == str(expected)
    elif isinstance(expected, Message):
        assert_same_message(actual, expected)
    else:
        assert_same(actual, expected)


# (a) Equivalence over every message type, filled with generated values.


def test_every_message_type_is_covered() -> None:
    names = set(MESSAGE_TYPE_IDS)
    assert {"StepRun", "TaskRun", "JobRun", "JobConfig", "Trace", "ModelsConfig"} <= names
    assert len(MESSAGE_TYPES) * SEEDS_PER_TYPE >= 300


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=MESSAGE_TYPE_IDS)
def test_message_to_doc_is_json_formats(message_type: type[Message]) -> None:
    for message in generated(message_type):
        doc = codec._fast_message_to_doc(message)
        assert doc is not None, "the fast path handles every generated message"
        assert_same(doc, expected_doc(message))


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=MESSAGE_TYPE_IDS)
def test_doc_to_message_is_json_formats(message_type: type[Message]) -> None:
    for message in generated(message_type):
        doc = expected_doc(message)
        parsed = codec._fast_doc_to_message(doc, message_type)
        assert parsed is not None, "the fast path handles every written document"
        assert_same_message(parsed, expected_message(doc, message_type))
        assert_same_message(filled(doc, message_type), expected_message(doc, message_type))


def filled(doc: dict[Any, Any], message_type: type[Message]) -> Message:
    """``doc`` read in place (`codec.fill_message`); a StepRun inside a TaskRun, as the reader
    fills them."""
    if message_type is run_pb2.StepRun:
        message: Message = run_pb2.TaskRun().steps.add()
    else:
        message = message_type()
    codec.fill_message(message, doc)
    return message


# (b) Round trips.


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=MESSAGE_TYPE_IDS)
def test_round_trips(message_type: type[Message]) -> None:
    for message in generated(message_type, exotic=False):
        round_tripped = codec.doc_to_message(codec.message_to_doc(message), message_type)
        assert round_tripped == message
        # Structs come back with their keys in the order a document lists them.
        assert_same_message(round_tripped, message, map_order=False)


def test_exotic_values_read_back_as_json_format_reads_them() -> None:
    step = run_pb2.StepRun(cost_usd=math.nan, function_request=struct_pb2.Value())
    doc = codec.message_to_doc(step)
    assert_same(doc, {"function_request": None, "cost_usd": "NaN"})
    assert_same_message(
        codec.doc_to_message(doc, run_pb2.StepRun), expected_message(doc, run_pb2.StepRun)
    )


# (c) Inputs ParseDict accepts beyond what message_to_doc writes.


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=MESSAGE_TYPE_IDS)
def test_json_names_int64_numbers_and_enum_numbers_are_read(message_type: type[Message]) -> None:
    for message in generated(message_type):
        for doc in (
            json_format.MessageToDict(message),  # camelCase JSON names
            json_format.MessageToDict(
                message,
                preserving_proto_field_name=True,
                use_integers_for_enums=True,
                unquote_int64_if_possible=True,
            ),
        ):
            parsed = codec._fast_doc_to_message(doc, message_type)
            assert parsed is not None
            assert_same_message(parsed, expected_message(doc, message_type))


def with_unknown_keys(doc: Any, descriptor: Descriptor) -> Any:
    """``doc`` with control fields added to every message map (not inside Structs)."""
    result = {"lease_owner": "worker-1", "lease": {"until": 12.5}, **doc, "attempts_left": 3}
    for field in descriptor.fields:
        value = doc.get(field.name)
        sub_type = field.message_type
        if value is None or sub_type is None or sub_type.full_name.startswith("google.protobuf"):
            continue
        if sub_type.GetOptions().map_entry:
            continue  # a map's keys are data
        if field.is_repeated:
            result[field.name] = [with_unknown_keys(item, sub_type) for item in value]
        else:
            result[field.name] = with_unknown_keys(value, sub_type)
    return result


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=MESSAGE_TYPE_IDS)
def test_unknown_keys_are_ignored(message_type: type[Message]) -> None:
    for message in generated(message_type):
        doc = with_unknown_keys(expected_doc(message), cast(Descriptor, message_type.DESCRIPTOR))
        parsed = codec._fast_doc_to_message(doc, message_type)
        assert parsed is not None
        assert_same_message(parsed, expected_message(doc, message_type))


def test_int64_as_numbers_and_enum_numbers() -> None:
    doc = {
        "usage": {"input_tokens": 2**62 + 1, "output_tokens": -(2**63), "cached_input_tokens": "7"},
        "status": 4,
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "index": "12",
        "latency_seconds": 3,
        "cost_usd": "-Infinity",
        "predecessors": ("a", "b"),
    }
    parsed = codec._fast_doc_to_message(doc, run_pb2.StepRun)
    assert parsed is not None
    assert parsed.usage.input_tokens == 2**62 + 1
    assert_same_message(parsed, expected_message(doc, run_pb2.StepRun))


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T13:25:03Z",
        "2026-11-21T13:25:03.6Z",
        "2026-11-21T13:25:03.66Z",
        "2026-11-21T13:25:03.662Z",
        "2026-11-21T13:25:03.6621Z",
        "2026-11-21T13:25:03.66213Z",
        "2026-11-21T13:25:03.662133Z",
        "2026-11-21T13:25:03.6621337Z",
        "2026-11-21T13:25:03.66213376Z",
        "2026-11-21T13:25:03.662133763Z",
        "2026-11-21T13:25:03.000000001Z",
        "2026-11-21T13:25:03.999999999Z",
        "1969-12-31T23:59:59.999999999Z",
        "1900-02-28T00:00:00.1Z",
        "2000-02-29T12:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
    ],
)
def test_timestamps_are_read_exactly(text: str) -> None:
    doc = {"started_at": text, "finished_at": text}
    parsed = codec._fast_doc_to_message(doc, run_pb2.StepRun)
    assert parsed is not None
    assert_same_message(parsed, expected_message(doc, run_pb2.StepRun))


def test_random_timestamp_fractions_are_read_exactly() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        doc = {"time": f"2026-11-21T13:25:03.{digits}Z"}
        parsed = codec._fast_doc_to_message(doc, run_pb2.RunEvent)
        assert parsed is not None
        assert parsed.time.nanos == expected_message(doc, run_pb2.RunEvent).time.nanos


@pytest.mark.parametrize("seconds", [MIN_SECONDS, -1, 0, 59, 60, 1_795_000_000, MAX_SECONDS])
@pytest.mark.parametrize("nanos", NANOS)
def test_timestamps_are_written_exactly(seconds: int, nanos: int) -> None:
    event = run_pb2.RunEvent(time=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))
    doc = codec._fast_message_to_doc(event)
    assert doc is not None
    assert_same(doc, expected_doc(event))


# (d) Whatever the fast path does not take goes to json_format: same result or same error.

FALLBACK_DOCS: list[tuple[type[Message], dict[Any, Any]]] = [
    (run_pb2.StepRun, {"index": 7.0}),
    (run_pb2.StepRun, {"index": 7.5}),
    (run_pb2.StepRun, {"index": True}),
    (run_pb2.StepRun, {"index": 2**31}),
    (run_pb2.StepRun, {"index": "1e3"}),
    (run_pb2.StepRun, {"index": " 5"}),
    (run_pb2.StepRun, {"index": "five"}),
    (run_pb2.StepRun, {"usage": {"input_tokens": 2**63}}),
    (run_pb2.StepRun, {"usage": {"input_tokens": "1_000"}}),
    (run_pb2.StepRun, {"status": "NOT_A_STATUS", "index": 3}),
    (run_pb2.StepRun, {"status": "3"}),
    (run_pb2.StepRun, {"status": 3.7}),
    (run_pb2.StepRun, {"status": True}),
    (run_pb2.StepRun, {"status": 2**40}),
    (run_pb2.StepRun, {"status": ["RUN_STATUS_FAILED"]}),
    (run_pb2.StepRun, {"latency_seconds": "1.5"}),
    (run_pb2.StepRun, {"latency_seconds": "nan"}),
    (run_pb2.StepRun, {"latency_seconds": math.nan}),
    (run_pb2.StepRun, {"latency_seconds": math.inf}),
    (run_pb2.StepRun, {"latency_seconds": True}),
    (run_pb2.StepRun, {"latency_seconds": 10**400}),
    (run_pb2.StepRun, {"cache_hit": "true"}),
    (run_pb2.StepRun, {"cache_hit": 1}),
    (run_pb2.StepRun, {"name": 5}),
    (run_pb2.StepRun, {"name": b"bytes"}),
    (run_pb2.StepRun, {"name": "\ud800 unpaired"}),
    (run_pb2.StepRun, {"name": "\ud83d\ude00 paired surrogates"}),
    (run_pb2.StepRun, {"usage": "abc"}),
    (run_pb2.StepRun, {"usage": []}),
    (run_pb2.StepRun, {"usage": [1]}),
    (run_pb2.StepRun, {"inputs": []}),
    (run_pb2.StepRun, {"inputs": "text"}),
    (run_pb2.StepRun, {"inputs": {1: "a"}}),
    (run_pb2.StepRun, {"inputs": {"a": {1, 2}}}),
    (run_pb2.StepRun, {"inputs": {"a": 10**400}}),
    (run_pb2.StepRun, {"inputs": {"a": "\ud800"}}),
    (run_pb2.StepRun, {"function_request": {"a", "b"}}),
    (run_pb2.StepRun, {"started_at": "2026-11-21T13:25:03+01:00"}),
    (run_pb2.StepRun, {"started_at": "2026-11-21T13:25:03.5-05:30"}),
    (run_pb2.StepRun, {"started_at": "2026-11-21t13:25:03Z"}),
    (run_pb2.StepRun, {"started_at": "2026-11-21T13:25:03z"}),
    (run_pb2.StepRun, {"started_at": "2026-11-21T13:25:03.Z"}),
    (run_pb2.StepRun, {"started_at": "2026-11-21T13:25:03.1234567890Z"}),
    (run_pb2.StepRun, {"started_at": "2026-02-30T00:00:00Z"}),
    (run_pb2.StepRun, {"started_at": "2026-11-21T24:00:00Z"}),
    (run_pb2.StepRun, {"started_at": "2026-11-21T13:25:60Z"}),
    (run_pb2.StepRun, {"started_at": "0000-01-01T00:00:00Z"}),
    (run_pb2.StepRun, {"started_at": "2026-1-2T3:4:5Z"}),
    (run_pb2.StepRun, {"started_at": "２０２６-11-21T13:25:03Z"}),
    (run_pb2.StepRun, {"started_at": 1_795_000_000}),
    (run_pb2.StepRun, {"[llm_scheduler.v1.ext]": 1}),
    (run_pb2.StepRun, {"[not an extension": 1, "index": 2}),
    (run_pb2.StepRun, {5: "x"}),
    (run_pb2.StepRun, {"user_prompt": "a", "userPrompt": "b"}),
    (run_pb2.StepRun, {"response_format": {"json_schema": {"a": 1}, "jsonSchema": {"b": 2}}}),
    (run_pb2.StepRun, {"usage": {"inputTokens": "1", "input_tokens": "2"}}),
    (config_pb2.TaskConfig, {"next_tasks": ["a"], "nextTasks": ["b"]}),
    (run_pb2.StepRun, {"usage": {"input_tokens": "1"}, "usage ": {}}),
    (run_pb2.TaskRun, {"steps": {"index": 1}}),
    (run_pb2.TaskRun, {"steps": [None]}),
    (run_pb2.TaskRun, {"steps": [{"index": 1}, "xy"]}),
    (run_pb2.TaskRun, {"predecessors": ["a", None]}),
    (run_pb2.TaskRun, {"predecessors": ["a", 5]}),
    (run_pb2.TaskRun, {"predecessors": "ab"}),
    (run_pb2.JobRun, {"config": {"tasks": [{"steps": [{"step_type": "NOPE"}]}]}}),
    (run_pb2.JobRun, {"config": {"tasks": [{"next_tasks": ["a", "a"]}], "jobId": "j"}}),
]


def _nested(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        doc = {"nested": doc}
    return doc


FALLBACK_DOCS += [
    (run_pb2.StepRun, {"inputs": _nested(40)}),  # the fast path stops before json_format's limit
    (run_pb2.StepRun, {"inputs": _nested(60)}),  # json_format refuses it
]


@pytest.mark.parametrize(("message_type", "doc"), FALLBACK_DOCS)
def test_fallback_reads_as_json_format(message_type: type[Message], doc: dict[Any, Any]) -> None:
    expected = outcome(lambda: expected_message(doc, message_type))
    assert_same_outcome(outcome(lambda: codec.doc_to_message(doc, message_type)), expected)
    assert_same_outcome(outcome(lambda: docs.record_from_doc(doc, message_type)), expected)
    assert_same_outcome(outcome(lambda: filled(doc, message_type)), expected)


def test_values_the_fast_path_reads_like_json_format() -> None:
    cases: list[dict[str, Any]] = [
        {"function_request": None, "function_response": [None, [], {}, {"a": [1, True, None]}]},
        {"inputs": {"nan": math.nan, "big": 2**70, "neg": -0.0, "t": True, "n": None}},
        {"status": 99, "error": {}, "usage": None, "started_at": None, "unknown": None},
        {"outputs": {"": "", "a.b": {"": []}}},
    ]
    for doc in cases:
        parsed = codec._fast_doc_to_message(doc, run_pb2.StepRun)
        assert parsed is not None
        assert_same_message(parsed, expected_message(doc, run_pb2.StepRun))


def _nan_value() -> struct_pb2.Value:
    return struct_pb2.Value(number_value=math.nan)


FALLBACK_MESSAGES: list[Message] = [
    run_pb2.StepRun(function_request=_nan_value()),
    run_pb2.StepRun(function_response=struct_pb2.Value(number_value=-math.inf)),
    run_pb2.StepRun(inputs=struct_pb2.Struct(fields={"a": _nan_value()})),
    run_pb2.StepRun(
        outputs={"a": [1, 2]},
        function_request=struct_pb2.Value(
            list_value=struct_pb2.ListValue(values=[struct_pb2.Value(), _nan_value()])
        ),
    ),
    run_pb2.RunEvent(time=timestamp_pb2.Timestamp(seconds=MAX_SECONDS + 1)),
    run_pb2.RunEvent(time=timestamp_pb2.Timestamp(seconds=MIN_SECONDS - 1)),
    run_pb2.RunEvent(time=timestamp_pb2.Timestamp(nanos=-1)),
    run_pb2.RunEvent(time=timestamp_pb2.Timestamp(seconds=5, nanos=1_000_000_000)),
    # Well-known types on their own.
    struct_pb2.Struct(fields={"a": struct_pb2.Value(string_value="b")}),
    struct_pb2.Value(string_value="b"),
    _nan_value(),
    struct_pb2.ListValue(values=[struct_pb2.Value(bool_value=True)]),
    timestamp_pb2.Timestamp(seconds=5, nanos=5),
]


@pytest.mark.parametrize("message", FALLBACK_MESSAGES)
def test_fallback_writes_as_json_format(message: Message) -> None:
    expected = outcome(lambda: expected_doc(message))
    assert codec._fast_message_to_doc(message) is None
    assert_same_outcome(outcome(lambda: codec.message_to_doc(message)), expected)
    assert_same_outcome(outcome(lambda: docs.record_to_doc(message)), expected)


def test_types_without_a_plan_go_to_json_format() -> None:
    """descriptor.proto is proto2 (closed enums, explicit presence) with bytes and oneofs."""
    file = descriptor_pb2.FileDescriptorProto()
    run_pb2.DESCRIPTOR.CopyToProto(file)
    option = descriptor_pb2.UninterpretedOption(string_value=b"\x00\xff", double_value=0.5)
    file.options.uninterpreted_option.append(option)
    for message in (file, option, descriptor_pb2.FieldOptions(uninterpreted_option=[option])):
        doc = codec.message_to_doc(message)
        assert_same(doc, expected_doc(message))
        assert_same_message(
            codec.doc_to_message(doc, type(message)), expected_message(doc, type(message))
        )


def test_documents_use_the_codec() -> None:
    step = next(generated(run_pb2.StepRun, exotic=False))
    assert_same(docs.record_to_doc(step), codec.message_to_doc(step))
    assert docs.record_from_doc(docs.record_to_doc(step), run_pb2.StepRun) == step
