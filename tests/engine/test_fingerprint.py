"""Fingerprints and digests are assembled from parts for speed; they must equal the reference.

They are stored in run records and traces, so a changed byte would silently stop replays and
response-cache hits across versions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_scheduler.engine.fingerprint import (
    call_fingerprint,
    call_fingerprint_content,
    canonical_json,
    digest,
    digest_text,
    query_fingerprint,
    query_fingerprint_content,
    query_static_json,
    step_digests,
)
from llm_scheduler.models.base import ModelRequest, ResponseFormatSpec

_TEXTS = ["", "plain", 'quote " and \\ backslash', "line\nbreak\ttab\x01", "ünïcødé ✓ 🦙", "%x%"]


def _requests() -> list[ModelRequest]:
    formats = [
        ResponseFormatSpec(),
        ResponseFormatSpec(kind="json"),
        ResponseFormatSpec(
            kind="json_schema",
            json_schema={"type": "object", "properties": {"b": {}, "a": {"enum": [1, 2.5]}}},
            schema_name="ünï",
        ),
    ]
    parameters: list[dict[str, Any]] = [
        {},
        {"temperature": 0.2, "max_tokens": 100, "stop": ["\n", "é"], "seed": 7},
    ]
    return [
        ModelRequest(
            model=model,
            system_prompt=system,
            user_prompt=user,
            parameters=params,
            response_format=response_format,
        )
        for model in ("gpt-4o-mini", 'we"ird')
        for system in _TEXTS[:3]
        for user in _TEXTS
        for params in parameters
        for response_format in formats
    ]


@pytest.mark.parametrize("model_key", ["FAST", 'ké"y'])
def test_query_fingerprint_is_the_digest_of_its_documented_content(model_key: str) -> None:
    for request in _requests():
        expected = digest(query_fingerprint_content(model_key, "openai", request))
        assert query_fingerprint(model_key, "openai", request) == expected
        static = query_static_json(request)
        assert query_fingerprint(model_key, "openai", request, static_json=static) == expected


def test_a_known_fingerprint_never_changes() -> None:
    # Pinned (computed by the dict-based implementation this one replaced): a different
    # value means old traces and caches no longer match (then bump the version).
    request = ModelRequest(model="gpt-4o-mini", system_prompt="Be brief.", user_prompt="Hi")
    assert query_fingerprint("FAST", "openai", request) == "842dfd4bc37a6df5955f9bbb5486f325"


@pytest.mark.parametrize(
    ("response", "outputs"),
    [
        ("text", {"response": "text"}),
        ('ünï "q"', {"b": 'ünï "q"', "a": 1, "c": {"z": [1, 2.5, None], "y": True}}),
        ({"k": [1, 2]}, {"x": {"k": [1, 2]}, "copy": "literal"}),
        (None, {}),
        (3.0, {"v": 3.0}),
        ("only", {"o": "only"}),
        ("only", {"o": "another"}),
        (12, {"n": 12}),
        (2**70, {"n": 2**70, "m": -1}),
    ],
)
def test_step_digests_equal_separate_digests(response: Any, outputs: dict[str, Any]) -> None:
    # The response object itself, as outputs hold it, and an equal copy.
    outputs = {k: response if v == response else v for k, v in outputs.items()}
    assert step_digests(response, outputs) == (digest(response), digest(outputs))


def test_digest_text_hashes_the_canonical_text() -> None:
    assert digest({"b": 1, "a": "é"}) == digest_text('{"a":"é","b":1}')


_REQUESTS: list[Any] = [
    "",
    'ünï "q" \\ \n',
    0,
    -7,
    2**80,
    2.5,
    True,
    None,
    [1, "é", None, {"b": 1, "a": [2]}],
    {"z": 1, "a": {"y": "x", "b": []}},
]


@pytest.mark.parametrize("request_", _REQUESTS, ids=range(len(_REQUESTS)))
@pytest.mark.parametrize("function", ["template", 'f"n'])
def test_call_fingerprint_is_the_digest_of_its_documented_content(
    request_: Any, function: str
) -> None:
    expected = digest(call_fingerprint_content(function, request_))
    assert call_fingerprint(function, request_) == expected


def test_a_known_call_fingerprint_never_changes() -> None:
    # Pinned from the dict-based implementation: see test_a_known_fingerprint_never_changes.
    assert call_fingerprint("template", {"text": "Hi"}) == "c8ae74c439d7260039fe2483f301a093"


@pytest.mark.parametrize("value", _REQUESTS, ids=range(len(_REQUESTS)))
def test_canonical_json_shortcuts_equal_the_encoder(value: Any) -> None:
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == encoder.encode(value)
