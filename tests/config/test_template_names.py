"""The names a template without filters reads agree with its parse."""

from __future__ import annotations

import hypothesis
from hypothesis import strategies as st

from llm_scheduler.config.template import Template
from llm_scheduler.config.template_names import plain_names

PIECES = st.sampled_from(["%", "%%", "a", "b1", "_", ".", "0", " ", "é", "\n", "|", ":", "'", "x"])


@hypothesis.settings(max_examples=500, deadline=None)
@hypothesis.given(st.lists(PIECES, max_size=20).map("".join))
def test_plain_names_agree_with_the_parse(text: str) -> None:
    names = plain_names(text)
    template = Template.parse(text)
    if names is None:
        assert "|" in text
    else:
        assert names == tuple(sorted(template.required_names))
        assert template.required_names == template.names
        assert template.problems == ()


def test_plain_names() -> None:
    assert plain_names("Item 17: %subject% and %b.c.0% %subject% 50% %% %a%") == (
        "a",
        "b",
        "subject",
    )
    assert plain_names("no placeholder") == ()
    assert plain_names("%%a%%") == ()
    assert plain_names("%a|json%") is None
