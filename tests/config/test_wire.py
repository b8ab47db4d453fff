"""A job's task fields read from its bytes agree with the same fields read through the wrappers."""

from __future__ import annotations

import hypothesis
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import strategies as st

from llm_scheduler.config import wire
from llm_scheduler.config.wire import (
    FOR_EACH,
    INPUT_CONFIG,
    OUTPUT_CONFIG,
    STRATEGY,
    TaskFields,
    step_keys,
    task_fields,
    task_fields_of_wrappers,
)
from llm_scheduler.v1 import config_pb2

TEXT = st.text(max_size=4) | st.text(alphabet="ab%é", min_size=100, max_size=300)


@st.composite
def tasks(draw: st.DrawFn) -> config_pb2.TaskConfig:
    task = config_pb2.TaskConfig(
        task_id=draw(TEXT),
        next_task=draw(TEXT),
        next_tasks=draw(st.lists(TEXT, max_size=3)),
        name=draw(TEXT),
    )
    for prompt in draw(st.lists(TEXT, max_size=3)):
        step = task.steps.add(model_query_config={"model_key": "OFFLINE", "user_prompt": prompt})
        if draw(st.booleans()):
            step.output_config.payload.update({key: "%response%" for key in draw(st.lists(TEXT))})
    if draw(st.booleans()):
        task.input_config.payload.update({"a": 1, "b": [2, "c"]})
    if draw(st.booleans()):
        task.output_config.SetInParent()
    if draw(st.booleans()):
        task.for_each.items = draw(TEXT)
    if draw(st.booleans()):
        task.strategy.SetInParent()
    if draw(st.booleans()):
        task.metadata.SetInParent()
    return task


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(st.lists(tasks(), max_size=4), TEXT, st.booleans())
def test_the_bytes_and_the_wrappers_agree(
    job_tasks: list[config_pb2.TaskConfig], job_id: str, inputs: bool
) -> None:
    job = config_pb2.JobConfig(job_id=job_id, tasks=job_tasks, start_task=job_id)
    if inputs:
        job.input_config.payload.update({"x": "y"})
    fields = task_fields(job)
    assert fields == task_fields_of_wrappers(job)
    assert [step_keys(steps) for steps in fields.steps] == [
        tuple(step.SerializeToString(deterministic=True) for step in task.steps)
        for task in job.tasks
    ]


def test_fields_and_steps_of_a_task() -> None:
    job = config_pb2.JobConfig(job_id="j")
    job.tasks.add(task_id="a", next_task="b", next_tasks=["c", ""])
    task = job.tasks.add(task_id="b", for_each={"items": "%x%"})
    step = task.steps.add(model_query_config={"model_key": "OFFLINE", "user_prompt": "hi"})
    task.input_config.SetInParent()
    task.output_config.payload.update({"o": ""})
    task.strategy.SetInParent()
    fields = task_fields(job)
    assert fields.links == [("a", "b", ("c", "")), ("b", "", ())]
    assert fields.steps[0] == b""
    assert step_keys(fields.steps[1]) == (step.SerializeToString(deterministic=True),)
    assert fields.fields == [0, INPUT_CONFIG | OUTPUT_CONFIG | FOR_EACH | STRATEGY]


def test_an_unknown_field_of_another_kind_is_read_through_the_wrappers() -> None:
    first = config_pb2.JobConfig(job_id="j", tasks=[config_pb2.TaskConfig(task_id="a")])
    # Task "b" with field 12 (a varint) and field 13 (bytes), unknown; the job with field 20.
    second = config_pb2.TaskConfig(task_id="b").SerializeToString() + b"\x60\x01\x6a\x01z"
    raw = first.SerializeToString() + b"\x22" + bytes([len(second)]) + second + b"\xa0\x01\x05"
    job = config_pb2.JobConfig.FromString(raw)
    assert [task.task_id for task in job.tasks] == ["a", "b"]
    assert wire._from_bytes(job.SerializeToString(deterministic=True)) is None
    assert task_fields(job) == task_fields_of_wrappers(job)
    assert task_fields(job).links == [("a", "", ()), ("b", "", ())]


def test_an_unknown_length_delimited_field_is_read_from_the_bytes() -> None:
    task = config_pb2.TaskConfig(task_id="b").SerializeToString() + b"\x6a\x01z"
    job = config_pb2.JobConfig.FromString(b"\x22" + bytes([len(task)]) + task)
    assert wire._from_bytes(job.SerializeToString(deterministic=True)) == TaskFields(
        [("b", "", ())], [b""], [0]
    )


def test_every_field_of_a_task_and_a_job_has_a_one_byte_tag_of_wire_type_2() -> None:
    # Otherwise every job setting such a field is read through the wrappers (correct, but
    # slower for a large job): teach `config.wire` the new kind of field.
    length_delimited = {
        FieldDescriptor.TYPE_STRING,
        FieldDescriptor.TYPE_BYTES,
        FieldDescriptor.TYPE_MESSAGE,
    }
    for message in (config_pb2.TaskConfig, config_pb2.JobConfig):
        for field in message.DESCRIPTOR.fields:
            assert field.number < 16, field.full_name
            assert field.type in length_delimited, field.full_name


def _step_with_texts(texts: tuple[str, str, str], **fields: object) -> config_pb2.StepConfig:
    step = config_pb2.StepConfig(**fields)  # type: ignore[arg-type]
    system, user, embed = texts
    if system or user:
        step.model_query_config.system_prompt = system
        step.model_query_config.user_prompt = user
    if embed:
        step.embedding_config.input = embed
    return step


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    st.tuples(TEXT, TEXT, TEXT),
    st.tuples(TEXT, TEXT, TEXT),
    st.sampled_from([0, 2]),
    TEXT,
    st.booleans(),
)
def test_steps_differing_only_in_their_texts_have_the_same_rest(
    first: tuple[str, str, str],
    second: tuple[str, str, str],
    step_type: int,
    model_key: str,
    outputs: bool,
) -> None:
    def step(texts: tuple[str, str, str]) -> config_pb2.StepConfig:
        made = _step_with_texts(texts, step_type=step_type, id="s")
        made.model_query_config.model_key = model_key
        made.embedding_config.dimensions = 3
        if outputs:
            made.output_config.payload.update({"o": "%response%"})
        return made

    one = wire.step_texts(step(first).SerializeToString(deterministic=True))
    two = wire.step_texts(step(second).SerializeToString(deterministic=True))
    assert one is not None and two is not None
    assert (one[1], two[1]) == (first, second)
    # The same rest exactly when the same texts are set (an empty text is no field).
    assert (one[0] == two[0]) == ([bool(t) for t in first] == [bool(t) for t in second])


def test_steps_differing_elsewhere_have_different_rests() -> None:
    texts = ("", "Item 1: %x%", "")
    base = _step_with_texts(texts, model_query_config={"model_key": "OFFLINE"})
    others = [
        _step_with_texts(texts, model_query_config={"model_key": "OFFLINE2"}),
        _step_with_texts(texts, model_query_config={"model_key": "OFFLINE"}, id="s"),
        _step_with_texts(texts, model_query_config={"model_key": "OFFLINE"}, cache=1),
        _step_with_texts(("x", texts[1], ""), model_query_config={"model_key": "OFFLINE"}),
    ]
    rests = {wire.step_texts(s.SerializeToString(deterministic=True)) for s in [base, *others]}
    assert len({rest for rest, _ in filter(None, rests)}) == len(others) + 1


def test_a_long_text_and_a_long_config_are_read() -> None:
    prompt = "é%x%" * 100
    step = _step_with_texts(("s" * 200, prompt, ""), model_query_config={"model_key": "K" * 300})
    split = wire.step_texts(step.SerializeToString(deterministic=True))
    assert split is not None
    rest, texts = split
    assert texts == ("s" * 200, prompt, "")
    emptied = config_pb2.StepConfig.FromString(rest)  # still a step's bytes
    assert emptied.model_query_config.model_key == "K" * 300
    assert emptied.model_query_config.user_prompt == ""


def test_steps_of_other_types_and_unexpected_bytes_have_no_texts() -> None:
    for step_type in (1, 3, 7):
        step = config_pb2.StepConfig(step_type=step_type)  # type: ignore[arg-type]
        assert wire.step_texts(step.SerializeToString(deterministic=True)) is None
    assert wire.step_texts(b"\x32\x02\x0d\x00") is None  # a 32-bit field in model_query_config
    assert wire.step_texts(b"\x45\x00\x00\x00\x00") is None  # a 32-bit field in the step


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    st.lists(
        st.tuples(
            st.tuples(TEXT, TEXT, TEXT),
            st.sampled_from([0, 2, 1]),
            st.sampled_from(["", "K", "OFFLINE"]),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_step_texts_reading_steps_in_turn_agrees_with_step_texts(
    steps: list[tuple[tuple[str, str, str], int, str, bool]],
) -> None:
    read = wire.StepTexts()
    for texts, step_type, model_key, outputs in steps:
        step = _step_with_texts(texts, step_type=step_type)
        step.model_query_config.model_key = model_key
        if outputs:
            step.output_config.payload.update({"o": "%response%"})
        raw = step.SerializeToString(deterministic=True)
        assert read(raw) == wire.step_texts(raw)


def test_step_texts_reads_a_step_like_the_last_but_for_its_prompt() -> None:
    read = wire.StepTexts()
    steps = [
        _step_with_texts(
            ("", f"Item {i}: %x%" * (1 + i % 3), ""), model_query_config={"model_key": "M"}
        )
        for i in range(1, 6)
    ]
    raws = [step.SerializeToString(deterministic=True) for step in steps]
    assert [read(raw) for raw in raws] == [wire.step_texts(raw) for raw in raws]
    assert len({read(raw)[0] for raw in raws if raw}) == 1  # type: ignore[index]
