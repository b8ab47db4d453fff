"""Fuzzed strategies: any JSON in their fields is valid or a clear config error."""

from __future__ import annotations

from typing import Any

import hypothesis
from hypothesis import strategies as st

from tests.config.test_fuzz_graph_fields import JSON, _check, _query

NAMES = st.text(max_size=6) | st.sampled_from(["model", "a=b", "x,y", "[", "~", "a/b", ""])
VALUE = st.dictionaries(st.sampled_from(["name", "value"]), NAMES | JSON, max_size=2)
AXIS = st.dictionaries(
    st.sampled_from(["name", "variable", "values"]),
    NAMES | st.sampled_from(["model_key", "tone"]) | st.lists(VALUE, max_size=3) | JSON,
    max_size=3,
)
STRATEGY = st.dictionaries(
    st.sampled_from(["axes", "only", "in_series"]),
    st.lists(AXIS, max_size=3) | st.lists(NAMES, max_size=2) | JSON,
    max_size=3,
)


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(strategy=STRATEGY)
def test_any_strategy_is_valid_or_a_config_error(strategy: dict[str, Any]) -> None:
    _check(
        {
            "job_id": "fuzz",
            "input_config": {"payload": {"tone": "plain"}},
            "tasks": [{"task_id": "t", "strategy": strategy, "steps": [_query("%tone%")]}],
        }
    )
