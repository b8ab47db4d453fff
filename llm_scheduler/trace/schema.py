"""A JSON Schema (draft 2020-12) of trace files, generated from the `Trace` protobuf descriptors.

``python -m llm_scheduler.trace.schema > docs/trace.schema.json`` regenerates the checked-in
schema; a test fails when it is stale. It describes the proto JSON mapping as traces are written:
snake_case field names, 64-bit integers as decimal strings (integers accepted), enums as names
(numbers accepted), timestamps as RFC 3339 strings, `Struct` as an object, `Value` as any JSON.
Messages allow no other properties, so an editor validating against it flags a mistyped field.
"""

from __future__ import annotations

import json
import sys
from typing import Any, cast

from google.protobuf import descriptor

from llm_scheduler.trace.files import TRACE_SCHEMA, TRACE_SCHEMA_VERSION
from llm_scheduler.v1 import run_pb2

__all__ = ["render_trace_json_schema", "trace_json_schema"]

Schema = dict[str, Any]

_FD = descriptor.FieldDescriptor
_INT32_RANGE = {"minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32_RANGE = {"minimum": 0, "maximum": 2**32 - 1}
_INT64 = {"type": ["string", "integer"], "pattern": "^-?[0-9]+$"}
_UINT64 = {"type": ["string", "integer"], "pattern": "^[0-9]+$", "minimum": 0}
_FLOAT = {"anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]}

_SCALARS: dict[int, Schema] = {
    _FD.TYPE_STRING: {"type": "string"},
    _FD.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    _FD.TYPE_BOOL: {"type": "boolean"},
    _FD.TYPE_INT32: {"type": "integer", **_INT32_RANGE},
    _FD.TYPE_SINT32: {"type": "integer", **_INT32_RANGE},
    _FD.TYPE_SFIXED32: {"type": "integer", **_INT32_RANGE},
    _FD.TYPE_UINT32: {"type": "integer", **_UINT32_RANGE},
    _FD.TYPE_FIXED32: {"type": "integer", **_UINT32_RANGE},
    _FD.TYPE_INT64: _INT64,
    _FD.TYPE_SINT64: _INT64,
    _FD.TYPE_SFIXED64: _INT64,
    _FD.TYPE_UINT64: _UINT64,
    _FD.TYPE_FIXED64: _UINT64,
    _FD.TYPE_FLOAT: _FLOAT,
    _FD.TYPE_DOUBLE: _FLOAT,
}

# Well-known types have their own JSON forms; a new one must be added here, not guessed.
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
}


def trace_json_schema() -> Schema:
    """The JSON Schema of a trace file, as a JSON-compatible dict."""
    defs: dict[str, Schema] = {}
    root = _message(cast(descriptor.Descriptor, run_pb2.Trace.DESCRIPTOR), defs)
    root["properties"]["schema"] = {"const": TRACE_SCHEMA}
    root["properties"]["schema_version"] = {"const": TRACE_SCHEMA_VERSION}
    root["required"] = ["schema", "schema_version", "job_run"]
    del root["title"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"llm-scheduler trace, format version {TRACE_SCHEMA_VERSION}",
        "description": (
            "A run exported by llm-scheduler (trace_export, job_runner --trace_out): the Trace "
            "message of proto/llm_scheduler/v1/run.proto in the proto JSON mapping. Generated "
            "by `python -m llm_scheduler.trace.schema`; see docs/traces.md."
        ),
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def render_trace_json_schema() -> str:
    """The schema as the text of ``docs/trace.schema.json``."""
    return json.dumps(trace_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _ref(
    desc: descriptor.Descriptor | descriptor.EnumDescriptor, defs: dict[str, Schema]
) -> Schema:
    name = desc.full_name
    if name not in defs:
        defs[name] = {}  # reserved first: messages may refer to themselves
        if isinstance(desc, descriptor.EnumDescriptor):
            defs[name] = _enum(desc)
        else:
            defs[name] = _message(desc, defs)
    return {"$ref": f"#/$defs/{name}"}


def _enum(desc: descriptor.EnumDescriptor) -> Schema:
    return {
        "title": desc.name,
        "anyOf": [
            {"enum": [value.name for value in desc.values]},
            {"type": "integer", **_INT32_RANGE},
        ],
    }


def _message(desc: descriptor.Descriptor, defs: dict[str, Schema]) -> Schema:
    properties = {field.name: _field(field, defs) for field in desc.fields}
    schema: Schema = {
        "title": desc.name,
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    # A oneof's JSON object holds at most one of its fields (a proto3 `optional` field is a
    # oneof of one, so it is no choice).
    choices = [[field.name for field in oneof.fields] for oneof in desc.oneofs]
    pairs = [[a, b] for names in choices for i, a in enumerate(names) for b in names[i + 1 :]]
    if pairs:
        schema["not"] = {"anyOf": [{"required": pair} for pair in pairs]}
    return schema


def _value(field: descriptor.FieldDescriptor, defs: dict[str, Schema]) -> Schema:
    if field.message_type is not None:
        known = _WELL_KNOWN.get(field.message_type.full_name)
        if known is not None:
            return dict(known)
        if field.message_type.full_name.startswith("google.protobuf."):
            raise NotImplementedError(f"no JSON schema for {field.message_type.full_name}")
        return _ref(field.message_type, defs)
    if field.enum_type is not None:
        return _ref(field.enum_type, defs)
    return dict(_SCALARS[field.type])


def _field(field: descriptor.FieldDescriptor, defs: dict[str, Schema]) -> Schema:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        # Map keys are always JSON strings; the value field says what the values are.
        return {
            "type": "object",
            "additionalProperties": _value(message.fields_by_name["value"], defs),
        }
    if field.is_repeated:
        return {"type": "array", "items": _value(field, defs)}
    return _value(field, defs)


def main() -> None:
    """Prints the schema (``python -m llm_scheduler.trace.schema > docs/trace.schema.json``)."""
    sys.stdout.write(render_trace_json_schema())


if __name__ == "__main__":
    main()
