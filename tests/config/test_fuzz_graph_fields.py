"""Fuzzed maps and sub-job steps: any JSON in their fields is valid or a clear config error."""

from __future__ import annotations

import json
from typing import Any

import hypothesis
from hypothesis import strategies as st

from llm_scheduler import Validator, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.errors import UserError
from llm_scheduler.v1 import config_pb2

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["%rows%", "%item%", "%x.y%", "%%", "%response%", "a/b", "~", "..", "0"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
MAP_FIELDS = st.dictionaries(
    st.sampled_from(["items", "item_variable", "index_variable", "max_in_flight", "max_items"]),
    JSON,
    max_size=5,
)
SUB_JOB_FIELDS = st.dictionaries(st.sampled_from(["job_path", "job", "inputs"]), JSON, max_size=3)


def _query(prompt: str) -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": prompt},
        "output_config": {"payload": {"out": ""}},
    }


def _check(config: dict[str, Any]) -> None:
    try:
        job = loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)
        Validator().check_job(job)
    except UserError as error:
        assert str(error)  # a message a person can act on


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(for_each=MAP_FIELDS)
def test_any_for_each_is_valid_or_a_config_error(for_each: dict[str, Any]) -> None:
    _check(
        {
            "job_id": "fuzz",
            "input_config": {"payload": {"rows": ["a", "b"]}},
            "tasks": [{"task_id": "t", "for_each": for_each, "steps": [_query("%item%")]}],
        }
    )


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(sub_job=SUB_JOB_FIELDS, output=JSON)
def test_any_sub_job_config_is_valid_or_a_config_error(
    sub_job: dict[str, Any], output: Any
) -> None:
    _check(
        {
            "job_id": "fuzz",
            "tasks": [
                {
                    "task_id": "t",
                    "steps": [
                        {
                            "step_type": "STEP_TYPE_SUB_JOB",
                            "sub_job_config": sub_job,
                            "output_config": {"payload": {"out": output}},
                        }
                    ],
                }
            ],
        }
    )
