from __future__ import annotations

import os
import pathlib

import hypothesis
import pytest
from hypothesis import strategies as st

from llm_scheduler.config import formats
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config_tools.samples import SEED_STEP_JSON
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

JOB_JSON = """{
  // A two-task job.
  "job_id": "j1", // trailing comment
  "tasks": [
    {"task_id": "a", "next_task": "b",
     "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "see http://x"}}]},
    {"task_id": "b", "steps": [{"step_type": "STEP_TYPE_FUNCTION_CALL",
      "function_call_config": {"function_name": "json_parse", "request": "%response%"}}]}
  ]
}
"""


def _job() -> config_pb2.JobConfig:
    return formats.loads(JOB_JSON, config_pb2.JobConfig, ConfigFormat.JSON, file="job.json")


def test_json_with_line_comments() -> None:
    job = _job()
    assert job.job_id == "j1"
    assert [t.task_id for t in job.tasks] == ["a", "b"]
    assert job.tasks[0].steps[0].model_query_config.user_prompt == "see http://x"
    assert job.tasks[1].steps[0].step_type == config_pb2.STEP_TYPE_FUNCTION_CALL


def test_strip_json_comments_keeps_strings_and_line_numbers() -> None:
    text = '{"url": "http://x", // note\n "q": "a \\" // b"} // end'
    stripped = formats.strip_json_comments(text)
    assert stripped == '{"url": "http://x", \n "q": "a \\" // b"} '
    assert stripped.count("\n") == text.count("\n")


def test_the_seed_step_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "seed_step_config.json"
    path.write_text(SEED_STEP_JSON)
    step = formats.load(path, config_pb2.StepConfig)
    assert step.model_query_config.parameters["temperature"] == "0.7"
    assert step.model_query_config.user_prompt == "%user_prompt%"
    assert step.metadata.timestamp == 1741667405


@pytest.mark.parametrize("fmt", list(ConfigFormat))
def test_round_trip(fmt: ConfigFormat) -> None:
    job = _job()
    data = formats.dumps(job, fmt)
    assert formats.loads(data, config_pb2.JobConfig, fmt) == job


def test_json_output_uses_snake_case_names() -> None:
    text = formats.dumps(_job(), ConfigFormat.JSON).decode()
    assert '"task_id": "a"' in text
    assert '"next_task": "b"' in text
    assert text.endswith("}\n")


@pytest.mark.parametrize("fmt", list(ConfigFormat))
def test_load_from_files_of_every_format(tmp_path: pathlib.Path, fmt: ConfigFormat) -> None:
    suffix = {ConfigFormat.JSON: ".json", ConfigFormat.TEXTPROTO: ".txtpb"}.get(fmt, ".binpb")
    path = tmp_path / f"job{suffix}"
    path.write_bytes(formats.dumps(_job(), fmt))
    assert formats.load(path, config_pb2.JobConfig) == _job()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("job.json", ConfigFormat.JSON),
        ("job.jsonc", ConfigFormat.JSON),
        ("job.textproto", ConfigFormat.TEXTPROTO),
        ("job.txtpb", ConfigFormat.TEXTPROTO),
        ("job.pbtxt", ConfigFormat.TEXTPROTO),
        ("job.prototxt", ConfigFormat.TEXTPROTO),
        ("job.binpb", ConfigFormat.BINARY),
        ("job.pb", ConfigFormat.BINARY),
        ("dir/JOB.BIN", ConfigFormat.BINARY),
        ("no_extension", ConfigFormat.JSON),
    ],
)
def test_format_by_extension(name: str, expected: ConfigFormat) -> None:
    assert formats.format_for_path(name) == expected


def test_a_known_extension_wins_over_the_content() -> None:
    assert formats.format_for_path("job.json", b"\x0a\x01x") == ConfigFormat.JSON
    assert formats.format_for_path("job.binpb", b'{"job_id": "j"}') == ConfigFormat.BINARY


def test_format_by_content() -> None:
    step = config_pb2.StepConfig(id="1", name="x")
    assert formats.format_for_path("cfg", b'// comment\n  {"id": "1"}') == ConfigFormat.JSON
    assert formats.format_for_path("cfg", b'id: "1"\n\tname: "x"\r\n') == ConfigFormat.TEXTPROTO
    assert formats.format_for_path("cfg.data", b"\x0a\x02\xff\xfe") == ConfigFormat.BINARY
    # Small binary messages are valid UTF-8 but hold control bytes.
    assert step.SerializeToString().decode("utf-8")
    assert formats.format_for_path("cfg", step.SerializeToString()) == ConfigFormat.BINARY
    seed = formats.loads(SEED_STEP_JSON, config_pb2.StepConfig, ConfigFormat.JSON)
    for fmt in ConfigFormat:
        assert formats.format_for_path("seed", formats.dumps(seed, fmt)) == fmt


def test_invalid_json_reports_line_and_column() -> None:
    text = '{\n  "job_id": "j1",\n  "tasks" []\n}'
    with pytest.raises(ConfigError) as info:
        formats.loads(text, config_pb2.JobConfig, ConfigFormat.JSON, file="job.json")
    [problem] = info.value.problems
    assert problem.file == "job.json"
    assert problem.path == ""
    assert problem.message == "invalid JSON at line 3 column 11: Expecting ':' delimiter"
    assert "JSON syntax" in problem.hint


def test_line_numbers_count_comment_lines() -> None:
    text = '// header\n// more\n{"job_id": }'
    with pytest.raises(ConfigError, match="line 3 column 12"):
        formats.loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


@pytest.mark.parametrize("text", ["[]", '"job"', "3", "null"])
def test_non_object_json(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        formats.loads(text, config_pb2.JobConfig, ConfigFormat.JSON, file="job.json")
    [problem] = info.value.problems
    assert problem.file == "job.json"
    assert problem.message == "a JobConfig must be a JSON object"
    assert problem.hint == "wrap it in {...}"


def test_bad_enum_value_names_the_field() -> None:
    text = '{"tasks": [{"task_id": "a"}, {"steps": [{}, {"step_type": "EMBEDDING"}]}]}'
    with pytest.raises(ConfigError) as info:
        formats.loads(text, config_pb2.JobConfig, ConfigFormat.JSON, file="job.json")
    [problem] = info.value.problems
    assert problem.path == "tasks[1].steps[1].step_type"
    assert problem.file == "job.json"
    assert problem.message == (
        "bad value: Invalid enum value EMBEDDING for enum type llm_scheduler.v1.StepType"
    )
    assert "declared type" in problem.hint


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"tasks": 5}', "tasks"),
        ('{"tasks": [{"next_tasks": "b"}]}', "tasks[0].next_tasks"),
        ('{"job_id": 5}', "job_id"),
        (
            '{"tasks": [{"steps": [{"metadata": {"timestamp": 1.5}}]}]}',
            "tasks[0].steps[0].metadata.timestamp",
        ),
        ('{"input_config": {"payload": 5}}', "input_config.payload"),
    ],
)
def test_bad_value_names_the_field(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        formats.loads(text, config_pb2.JobConfig, ConfigFormat.JSON, file="job.json")
    [problem] = info.value.problems
    assert problem.path == path
    assert problem.message.startswith("bad value: ")
    assert not problem.message.endswith(".")


def test_unknown_fields_accept_json_names_and_skip_free_form_values() -> None:
    text = """{
      "jobId": "j",
      "input_config": {"payload": {"anything": {"goes": 1}}},
      "tasks": [{"taskId": "a", "steps": [{"function_call_config": {"request": {"x": 1}}}]}]
    }"""
    job = formats.loads(text, config_pb2.JobConfig, ConfigFormat.JSON)
    assert job.job_id == "j"
    assert job.tasks[0].task_id == "a"


def test_invalid_textproto() -> None:
    with pytest.raises(ConfigError) as info:
        formats.loads(
            'job_id: "j"\nbogus: 1\n', config_pb2.JobConfig, ConfigFormat.TEXTPROTO, file="j.txtpb"
        )
    [problem] = info.value.problems
    assert problem.file == "j.txtpb"
    assert problem.message.startswith("not a valid JobConfig textproto: 2:")
    assert "bogus" in problem.message


def test_binary_decode_error() -> None:
    with pytest.raises(ConfigError) as info:
        formats.loads(b"\x0a\x05ab", config_pb2.StepConfig, ConfigFormat.BINARY, file="s.binpb")
    [problem] = info.value.problems
    assert problem.file == "s.binpb"
    assert problem.message.startswith("not a binary StepConfig: ")
    assert "--config_type" in problem.hint


def test_text_that_is_not_utf8() -> None:
    with pytest.raises(ConfigError) as info:
        formats.loads(b'{"job_id": "\xff"}', config_pb2.JobConfig, ConfigFormat.JSON, file="j.json")
    [problem] = info.value.problems
    assert problem.message == "the file is not UTF-8 text"
    assert ".binpb" in problem.hint


def test_utf8_bom_is_accepted() -> None:
    job = formats.loads(b'\xef\xbb\xbf{"job_id": "j"}', config_pb2.JobConfig, ConfigFormat.JSON)
    assert job.job_id == "j"


def test_missing_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        formats.load(path, config_pb2.JobConfig)
    [problem] = info.value.problems
    assert problem.file == str(path)
    assert problem.message.startswith("cannot read the file")
    assert problem.hint == "check the path"


# --- what read_bytes refuses ----------------------------------------------------------------------


def _read_problem(path: pathlib.Path | str, **kwargs: int) -> ConfigProblem:
    with pytest.raises(ConfigError) as info:
        formats.read_bytes(path, **kwargs)
    [problem] = info.value.problems
    assert problem.file == str(path)
    return problem


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: pathlib.Path) -> None:
    fifo = tmp_path / "job.json"
    os.mkfifo(fifo)
    problem = _read_problem(fifo)
    assert problem.message == "cannot read the file: it is a named pipe (FIFO), not a regular file"
    assert "save its content to a file first" in problem.hint


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_is_refused() -> None:
    problem = _read_problem("/dev/zero")
    assert problem.message == "cannot read the file: it is a character device, not a regular file"


def test_a_directory_is_refused(tmp_path: pathlib.Path) -> None:
    problem = _read_problem(tmp_path)
    assert problem.message == "cannot read the file: it is a directory, not a regular file"


def test_a_file_over_the_limit_is_refused_without_reading_it(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "job.json"
    with path.open("wb") as stream:
        stream.truncate(formats.MAX_FILE_BYTES + 1)  # sparse: nothing is written
    problem = _read_problem(path)
    assert problem.message == (
        "the file is too large: at most 33,554,432 bytes (32 MiB) are read, "
        "and it has 33,554,433 bytes"
    )
    assert problem.hint.startswith("check the path")
    path.write_bytes(b"{}")
    assert _read_problem(path, max_bytes=1).message == (
        "the file is too large: at most 1 bytes are read, and it has 2 bytes"
    )
    assert formats.read_bytes(path, max_bytes=2) == b"{}"


@pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"), reason="no /proc here")
def test_a_file_that_reports_no_size_is_read_up_to_the_limit_only() -> None:
    # /proc files are regular files of size 0 whatever they hold.
    assert os.stat("/proc/self/cmdline").st_size == 0
    problem = _read_problem("/proc/self/cmdline", max_bytes=4)
    assert problem.message == (
        "the file is too large: at most 4 bytes are read, and it has more bytes than that"
    )


def _strip_comments_char_by_char(text: str) -> str:
    """The reference: what strip_json_comments did one character at a time (slow on big files)."""
    out: list[str] = []
    in_string = escaped = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif text.startswith("//", index):
            newline = text.find("\n", index)
            index = len(text) if newline == -1 else newline
            continue
        else:
            in_string = char == '"'
            out.append(char)
        index += 1
    return "".join(out)


@hypothesis.settings(max_examples=300)
@hypothesis.given(st.text(alphabet='"\\/\n a{', max_size=30))
def test_strip_json_comments_matches_the_reference(text: str) -> None:
    assert formats.strip_json_comments(text) == _strip_comments_char_by_char(text)
