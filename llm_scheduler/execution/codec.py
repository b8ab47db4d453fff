"""Proto messages as readable maps and back: the proto JSON mapping with proto field names.

`message_to_doc` and `doc_to_message` give exactly what ``json_format.MessageToDict(message,
preserving_proto_field_name=True)`` and ``json_format.ParseDict(doc, message_type(),
ignore_unknown_fields=True)`` give, several times faster. json_format walks descriptors in pure
Python on every call; here each message type gets a plan, built once from its descriptor, so a call
is a tight loop over the fields a message or a document holds.

The fast path covers what the records use: scalars other than ``float`` and ``bytes``, enums,
repeated fields, nested messages, ``map<string, string>``, ``Struct``, ``Value``, ``ListValue`` and
``Timestamp``. Anything else (a type with other maps, oneofs or other well-known types; a
well-known type on its own) and every
value the fast path does not recognise or finds invalid go to json_format for the whole call, so
edge cases and errors stay exactly json_format's.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["doc_to_message", "fill_message", "message_to_doc", "timestamp_text"]

M = TypeVar("M", bound=Message)

Writer = Callable[[Any], Any]
Reader = Callable[..., Any]


def message_to_doc(message: Message) -> dict[str, Any]:
    """A message as a map, exactly as json_format's ``MessageToDict`` with proto field names.

    Args:
        message: The message. A well-known type on its own (``Value``, ``Timestamp`` ...) goes to
            json_format and comes back in its JSON form, which need not be a map.

    Returns:
        Set fields only, by proto field name: int64 as strings, enums by name, Timestamps in
        RFC 3339.

    Raises:
        json_format.SerializeToJsonError: As json_format raises it (a NaN ``Value``, a Timestamp
            out of range ...).
    """
    doc = _fast_message_to_doc(message)
    if doc is None:
        doc = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return doc


def doc_to_message(doc: dict[str, Any], message_type: type[M]) -> M:
    """A message read from a map, exactly as json_format's ``ParseDict`` ignoring unknown fields.

    Args:
        doc: The map. Keys are proto field names or JSON names; keys that name no field (such as
            control fields stored beside a record) are ignored.
        message_type: The message class to build.

    Returns:
        A new message.

    Raises:
        json_format.ParseError: As json_format raises it for invalid values.
    """
    message = _fast_doc_to_message(doc, message_type)
    if message is None:
        message = message_type()
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    return message


def fill_message(message: Message, doc: dict[str, Any]) -> None:
    """Reads a map into an empty message in place, exactly as `doc_to_message` would build it.

    For a message inside another (``task_run.steps.add()``): building one and appending it
    copies it whole.

    Raises:
        json_format.ParseError: As json_format raises it for invalid values.
    """
    plan = _plan_of(cast(Descriptor, message.DESCRIPTOR))
    if plan.supported:
        try:
            plan.fill(message, doc, 1)
            return
        except Exception:
            message.Clear()  # json_format decides, from the start
    json_format.ParseDict(doc, message, ignore_unknown_fields=True)


def _fast_message_to_doc(message: Message) -> dict[str, Any] | None:
    """`message_to_doc` through the plans; None when json_format has to decide."""
    plan = _plan_of(cast(Descriptor, message.DESCRIPTOR))
    if not plan.supported:
        return None
    try:
        return plan.to_doc(message)
    except Exception:
        # An invalid value (a NaN Value, a Timestamp out of range): json_format raises its own
        # error for it.
        return None


def _fast_doc_to_message(doc: dict[str, Any], message_type: type[M]) -> M | None:
    """`doc_to_message` through the plans; None when json_format has to decide."""
    plan = _plan_of(cast(Descriptor, message_type.DESCRIPTOR))
    if not plan.supported:
        return None
    message = message_type()
    try:
        plan.fill(message, doc, 1)
    except Exception:
        # Whatever the fast path refuses or the message rejects (a wrong type, a number out of
        # range, a surrogate) is json_format's to accept or to reject with its own error.
        return None
    return message


class _Fallback(Exception):
    """The fast path does not handle a value: json_format handles the whole call."""


# json_format refuses documents nested deeper than 100 messages; deep ones go there well before.
_MAX_DEPTH = 64

# How `_Plan.fill` sets a field from a document value (the reader's kind).
_STRING = 0  # setattr after a type check, inlined as the commonest case
_SCALAR = 1  # setattr(message, name, read(value))
_MESSAGE = 2  # read(sub_message, value, depth)
_VALUE = 3  # as _MESSAGE, but null sets null_value as json_format does
_REPEATED_SCALAR = 4  # extend with read(item) for each item
_REPEATED_MESSAGE = 5  # read(added, item, depth) for each item
_STRING_MAP = 6  # a map<string, string>: update with the document's keys and values


class _Plan:
    """How to convert one message type: writers by field descriptor, readers by document key."""

    __slots__ = ("readers", "supported", "writers")

    def __init__(self) -> None:
        self.supported = True
        # field -> (proto name, writer, or None for values json_format keeps as they are)
        self.writers: dict[FieldDescriptor, tuple[str, Writer | None]] = {}
        # proto name and JSON name -> (proto name, kind, reader, the other name or None)
        self.readers: dict[str, tuple[str, int, Reader, str | None]] = {}

    def to_doc(self, message: Message) -> dict[str, Any]:
        """The message as a map; raises where json_format has to decide."""
        if not self.supported:
            raise _Fallback
        writers = self.writers
        doc: dict[str, Any] = {}
        # ListFields holds exactly the fields MessageToDict writes, in the same order.
        for field, value in message.ListFields():
            name, write = writers[field]
            doc[name] = value if write is None else write(value)
        return doc

    def fill(self, message: Message, doc: Any, depth: int) -> None:
        """Sets ``message`` from ``doc``; raises where json_format has to decide."""
        if not self.supported or type(doc) is not dict or depth > _MAX_DEPTH:
            raise _Fallback
        readers = self.readers
        depth += 1
        for key, value in doc.items():
            reader = readers.get(key)
            if reader is None:
                # json_format rejects extension-like keys ("[...]") and keys that are not
                # strings even when it ignores unknown fields.
                if type(key) is not str or key.startswith("["):
                    raise _Fallback
                continue
            name, kind, read, other_name = reader
            # Both spellings of one field: json_format merges them its own way.
            if other_name is not None and other_name in doc:
                raise _Fallback
            if kind == _STRING and type(value) is str:
                setattr(message, name, value)
            elif value is None:
                # json_format clears the field (unset already), but null is a Value.
                if kind == _VALUE:
                    getattr(message, name).null_value = 0
            elif kind <= _SCALAR:
                setattr(message, name, read(value))
            elif kind <= _VALUE:
                sub_message = getattr(message, name)
                sub_message.SetInParent()
                read(sub_message, value, depth)
            elif kind == _STRING_MAP:
                getattr(message, name).update(read(value))
            elif type(value) is not list and type(value) is not tuple:
                raise _Fallback
            elif kind == _REPEATED_SCALAR:
                getattr(message, name).extend([read(item) for item in value])
            else:
                add = getattr(message, name).add
                for item in value:
                    read(add(), item, depth)


# Scalars. The fast path takes values of exactly the types message_to_doc writes, plus what
# ParseDict turns into the same value (ints for int64, enum numbers); the field checks ranges.

_NON_FINITE = {"Infinity": float("inf"), "-Infinity": float("-inf"), "NaN": float("nan")}


def _double_to_doc(value: float) -> float | str:
    if value - value == 0.0:  # finite
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _double_from_doc(value: Any) -> float:
    if type(value) is float:
        if value - value == 0.0:  # json_format refuses NaN and infinities as numbers
            return value
    elif type(value) is int:
        return float(value)
    elif type(value) is str and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise _Fallback


def _int_from_doc(value: Any) -> int:
    if type(value) is int:
        return value
    # ParseDict returns int() of a string without spaces, when int() takes it.
    if type(value) is str and " " not in value:
        return int(value)
    raise _Fallback


def _string_from_doc(value: Any) -> str:
    if type(value) is not str:
        raise _Fallback
    return value


def _bool_from_doc(value: Any) -> bool:
    if type(value) is not bool:
        raise _Fallback
    return value


def _enum_codec(enum_type: EnumDescriptor) -> tuple[Writer, Reader]:
    """The writer and reader of an enum field: names, or numbers no name has."""
    # By json_format's lookups, which decide between aliases of one number.
    names = {number: value.name for number, value in enum_type.values_by_number.items()}
    numbers = {name: value.number for name, value in enum_type.values_by_name.items()}
    is_open = not enum_type.is_closed

    def write(number: int) -> Any:
        # An open enum keeps unknown numbers and json_format writes them as numbers; a closed
        # one cannot hold them, and json_format raises (the KeyError falls back to it).
        return names.get(number, number) if is_open else names[number]

    def read(value: Any) -> int:
        if type(value) is str:
            return numbers[value]
        if type(value) is int and (is_open or value in names):
            return value
        raise _Fallback

    return write, read


# Struct, Value and ListValue.


def _value_to_doc(value: Any) -> Any:
    # A non-empty string_value means that is the kind set, and reads faster than the kind.
    return value.string_value or _other_value_to_doc(value, value.WhichOneof("kind"))


def _other_value_to_doc(value: Any, kind: str | None) -> Any:
    if kind == "string_value":
        return ""
    if kind == "number_value":
        number = value.number_value
        if number - number != 0.0:  # json_format refuses NaN and infinities here
            raise _Fallback
        return number
    if kind == "struct_value":
        return _struct_to_doc(value.struct_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "list_value":
        return _list_value_to_doc(value.list_value)
    return None  # null_value, and a Value with no kind


def _struct_to_doc(struct: Any) -> dict[str, Any]:
    fields = struct.fields
    doc: dict[str, Any] = {}
    # Keys then indexing, as json_format does: faster than items() on upb maps.
    for key in fields:
        value = fields[key]
        doc[key] = value.string_value or _other_value_to_doc(value, value.WhichOneof("kind"))
    return doc


def _list_value_to_doc(list_value: Any) -> list[Any]:
    return [_value_to_doc(item) for item in list_value.values]


def _fill_value(message: Any, value: Any, depth: int) -> None:
    kind = type(value)
    if kind is str:
        message.string_value = value
    elif kind is float or kind is int:
        message.number_value = value
    elif kind is bool:
        message.bool_value = value
    elif value is None:
        message.null_value = 0
    elif kind is dict:
        _fill_struct(message.struct_value, value, depth + 1)
    elif kind is list or kind is tuple:
        _fill_list_value(message.list_value, value, depth + 1)
    else:
        raise _Fallback


def _fill_struct(message: Any, value: Any, depth: int) -> None:
    if type(value) is not dict or depth > _MAX_DEPTH:
        raise _Fallback
    # Set even when empty, as json_format's Clear() sets it. Keys go in in the document's
    # order, as json_format puts them: a upb map iterates in an order that depends on it.
    message.SetInParent()
    fields = message.fields
    depth += 1
    for key, item in value.items():
        if type(key) is not str:
            raise _Fallback
        if type(item) is str:
            fields[key].string_value = item
        else:
            _fill_value(fields[key], item, depth)


def _fill_list_value(message: Any, value: Any, depth: int) -> None:
    if (type(value) is not list and type(value) is not tuple) or depth > _MAX_DEPTH:
        raise _Fallback
    message.SetInParent()
    add = message.values.add
    depth += 1
    for item in value:
        _fill_value(add(), item, depth)


# Timestamp.

_EPOCH = datetime.datetime(1970, 1, 1)
_ONE_SECOND = datetime.timedelta(seconds=1)
_ONE_MINUTE = datetime.timedelta(minutes=1)
# json_format's range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, in whole minutes.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
# The layout json_format writes, with 1 to 9 fraction digits; offsets, lower case and the other
# spellings json_format also reads go to it.
_TIMESTAMP = re.compile(
    r"\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.(\d{1,9}))?Z", re.ASCII
)
# Timestamps up to the minute ("2026-11-21T13:25:") by minutes since the epoch: the timestamps
# of a run share a few, and formatting a date costs more than the rest of a timestamp.
_MINUTES: dict[int, str] = {}
_SECONDS = [f"{second:02d}" for second in range(60)]


def timestamp_text(seconds: int, nanos: int) -> str | None:
    """A `Timestamp` as json_format writes it (RFC 3339, UTC), or None when out of its range."""
    try:
        return _timestamp_text(seconds, nanos)
    except _Fallback:
        return None


def _timestamp_to_doc(timestamp: Any) -> str:
    return _timestamp_text(timestamp.seconds, timestamp.nanos)


def _timestamp_text(seconds: int, nanos: int) -> str:
    text = _MINUTES.get(seconds // 60) or _minute_text(seconds)
    if not 0 <= nanos < 1_000_000_000:
        raise _Fallback
    text += _SECONDS[seconds % 60]
    # json_format writes 0, 3, 6 or 9 fraction digits, the fewest that are exact.
    if nanos % 1000:
        return f"{text}.{nanos:09d}Z"
    if nanos % 1_000_000:
        return f"{text}.{nanos // 1000:06d}Z"
    if nanos:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    return text + "Z"


def _minute_text(seconds: int) -> str:
    """A timestamp's text up to its minute, cached; raises out of json_format's range."""
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise _Fallback
    if len(_MINUTES) >= 4096:
        _MINUTES.clear()
    minutes = seconds // 60
    text = (_EPOCH + minutes * _ONE_MINUTE).isoformat()[:17]
    _MINUTES[minutes] = text
    return text


def _fill_timestamp(message: Any, value: Any, depth: int) -> None:
    if type(value) is not str:
        raise _Fallback
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise _Fallback
    # The layout is checked already; fromisoformat checks the date (a ValueError falls back).
    moment = datetime.datetime.fromisoformat(value[:19])
    message.seconds = (moment - _EPOCH) // _ONE_SECOND
    # Exact from the digits; json_format rounds through a float, to the same number.
    fraction = match[1]
    message.nanos = int(fraction.ljust(9, "0")) if fraction else 0


# Plans, built once per message type.

_WELL_KNOWN: dict[str, tuple[Writer, Reader]] = {
    "google.protobuf.Struct": (_struct_to_doc, _fill_struct),
    "google.protobuf.Value": (_value_to_doc, _fill_value),
    "google.protobuf.ListValue": (_list_value_to_doc, _fill_list_value),
    "google.protobuf.Timestamp": (_timestamp_to_doc, _fill_timestamp),
}
# Other well-known types json_format writes in forms of their own.
_OTHER_WELL_KNOWN = ("google.protobuf.Any", "google.protobuf.Duration", "google.protobuf.FieldMask")

_INT32_TYPES = (
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_FIXED32,
)
_INT64_TYPES = (
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_SFIXED64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_FIXED64,
)

_PLANS: dict[Descriptor, _Plan] = {}
_PLANS_LOCK = threading.Lock()


class _Unsupported(Exception):
    """A field the fast path has no plan for."""


def _plan_of(descriptor: Descriptor) -> _Plan:
    plan = _PLANS.get(descriptor)
    if plan is None:
        with _PLANS_LOCK:
            built: dict[Descriptor, _Plan] = {}
            plan = _build(descriptor, built)
            # Published once complete: other threads read plans without the lock.
            _PLANS.update(built)
    return plan


def _build(descriptor: Descriptor, built: dict[Descriptor, _Plan]) -> _Plan:
    plan = _PLANS.get(descriptor) or built.get(descriptor)
    if plan is not None:
        return plan
    plan = _Plan()
    built[descriptor] = plan  # before its fields, which may refer to it
    if descriptor.full_name in _WELL_KNOWN or _is_other_well_known(descriptor):
        plan.supported = False  # planned as fields only
        return plan
    try:
        for field in descriptor.fields:
            write, kind, read = _field_codec(field, built)
            plan.writers[field] = (field.name, write)
            other_name = field.json_name if field.json_name != field.name else None
            plan.readers[field.name] = (field.name, kind, read, other_name)
        for field in descriptor.fields:
            if field.json_name != field.name:
                # Replaces a field name equal to this JSON name: json_format looks these up first.
                _, kind, read, _ = plan.readers[field.name]
                plan.readers[field.json_name] = (field.name, kind, read, field.name)
    except _Unsupported:
        plan.supported = False
    return plan


def _is_other_well_known(descriptor: Descriptor) -> bool:
    return (
        descriptor.full_name in _OTHER_WELL_KNOWN
        or descriptor.file.name == "google/protobuf/wrappers.proto"
    )


def _field_codec(
    field: FieldDescriptor, built: dict[Descriptor, _Plan]
) -> tuple[Writer | None, int, Reader]:
    """A field's writer (None: the value as it is), its reader's kind and its reader."""
    if field.containing_oneof is not None:
        raise _Unsupported  # json_format checks that one member at most is set
    write: Writer | None
    read: Reader
    kind = _SCALAR
    message_type = field.message_type
    enum_type = field.enum_type
    if message_type is not None:
        if message_type.GetOptions().map_entry:
            return _string_map_codec(message_type)
        if _is_other_well_known(message_type):
            raise _Unsupported
        if message_type.full_name in _WELL_KNOWN:
            write, read = _WELL_KNOWN[message_type.full_name]
        else:
            sub_plan = _build(message_type, built)
            write, read = sub_plan.to_doc, sub_plan.fill
        if field.is_repeated:
            return _each(write), _REPEATED_MESSAGE, read
        is_value = message_type.full_name == "google.protobuf.Value"
        return write, _VALUE if is_value else _MESSAGE, read
    if enum_type is not None:
        # NullValue is written as null; custom JSON names live in enum value options.
        if enum_type.full_name == "google.protobuf.NullValue" or any(
            value.has_options for value in enum_type.values
        ):
            raise _Unsupported
        write, read = _enum_codec(enum_type)
    elif field.type == FieldDescriptor.TYPE_STRING:
        write, read, kind = None, _string_from_doc, _STRING
    elif field.type == FieldDescriptor.TYPE_BOOL:
        write, read = None, _bool_from_doc
    elif field.type in _INT32_TYPES:
        write, read = None, _int_from_doc
    elif field.type in _INT64_TYPES:
        write, read = str, _int_from_doc
    elif field.type == FieldDescriptor.TYPE_DOUBLE:
        write, read = _double_to_doc, _double_from_doc
    else:
        raise _Unsupported  # float (written shortest), bytes (base64)
    if field.is_repeated:
        return (list if write is None else _each(write)), _REPEATED_SCALAR, read
    return write, kind, read


def _string_map_codec(entry: Descriptor) -> tuple[Writer, int, Reader]:
    """The codec of a ``map<string, string>`` field (other maps go to json_format)."""
    key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
    if key.type != FieldDescriptor.TYPE_STRING or value.type != FieldDescriptor.TYPE_STRING:
        raise _Unsupported

    def read(doc: Any) -> dict[str, str]:
        if type(doc) is not dict:
            raise _Fallback
        for item_key, item in doc.items():
            if type(item_key) is not str or type(item) is not str:
                raise _Fallback
        return doc

    return dict, _STRING_MAP, read


def _each(write: Writer) -> Writer:
    """The writer of a repeated field from the writer of one value."""

    def write_each(values: Any) -> list[Any]:
        return [write(value) for value in values]

    return write_each
