from __future__ import annotations

import os
import pathlib

import hypothesis
import pytest
from hypothesis import strategies as st

from llm_scheduler.config import formats
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
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


STEP_TYPES = (
    "STEP_TYPE_MODEL_QUERY (0), STEP_TYPE_FUNCTION_CALL (1), STEP_TYPE_EMBEDDING (2), "
    "STEP_TYPE_SUB_JOB (3)"
)
INT64 = "an integer from -9223372036854775808 to 9223372036854775807"


def _only_problem(text: str, fmt: ConfigFormat = ConfigFormat.JSON) -> ConfigProblem:
    with pytest.raises(ConfigError) as info:
        formats.loads(text, config_pb2.JobConfig, fmt, file="job.json")
    [problem] = info.value.problems
    assert problem.file == "job.json"
    assert problem.hint
    return problem


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ('"EMBEDDING"', '"EMBEDDING"'),
        ("1.9", "1.9"),  # json_format truncated it to 1
        ("true", "true"),  # ... and took true for 1
        ("4", "4"),  # an unknown number
        ("-1", "-1"),
        ('"\\ud800"', '"\\ud800"'),  # a SystemError inside protobuf
        ("[0]", "a list"),
    ],
)
def test_bad_enum_value_names_the_field_and_the_allowed_values(value: str, got: str) -> None:
    text = f'{{"tasks": [{{"task_id": "a"}}, {{"steps": [{{}}, {{"step_type": {value}}}]}}]}}'
    problem = _only_problem(text)
    assert problem.path == "tasks[1].steps[1].step_type"
    assert problem.message == f"expected one of {STEP_TYPES}, got {got}"
    assert problem.hint == "use a name or a number from that list"


@pytest.mark.parametrize("value", ['"STEP_TYPE_FUNCTION_CALL"', "1", "1.0", '"1"'])
def test_enum_values_by_name_or_number(value: str) -> None:
    text = f'{{"tasks": [{{"steps": [{{"step_type": {value}}}]}}]}}'
    job = formats.loads(text, config_pb2.JobConfig, ConfigFormat.JSON)
    assert job.tasks[0].steps[0].step_type == config_pb2.STEP_TYPE_FUNCTION_CALL


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ('{"tasks": 5}', "tasks", "expected a list of task objects, got 5"),
        ('{"tasks": {"a": 1}}', "tasks", "expected a list of task objects, got an object"),
        ('{"tasks": [{}, 1]}', "tasks[1]", "expected a task object, got 1"),
        ('{"tasks": [null]}', "tasks[0]", "expected a task object, got null"),
        (
            '{"tasks": [{"task_id": "a"}, {"task_id": "b", "steps": true}]}',
            "tasks[1].steps",
            "expected a list of step objects, got true",
        ),
        ('{"tasks": [{}, {"task_id": 5}]}', "tasks[1].task_id", "expected a string, got 5"),
        (
            '{"tasks": [{"next_tasks": "b"}]}',
            "tasks[0].next_tasks",
            'expected a list of strings, got "b"',
        ),
        (
            '{"tasks": [{"next_tasks": ["a", 1]}]}',
            "tasks[0].next_tasks[1]",
            "expected a string, got 1",
        ),
        ('{"job_id": 5}', "job_id", "expected a string, got 5"),
        ('{"job_id": ["a"]}', "job_id", "expected a string, got a list"),
        ('{"input_config": []}', "input_config", "expected a data object, got an empty list"),
        ('{"input_config": {"payload": 5}}', "input_config.payload", "expected an object, got 5"),
        (
            '{"tasks": [{"steps": [{"model_query_config": "x"}]}]}',
            "tasks[0].steps[0].model_query_config",
            'expected a model query object, got "x"',
        ),
        (
            '{"tasks": [{"steps": [{"metadata": {"timestamp": 1.5}}]}]}',
            "tasks[0].steps[0].metadata.timestamp",
            f"expected {INT64}, got 1.5",
        ),
        ('{"metadata": {"timestamp": true}}', "metadata.timestamp", f"expected {INT64}, got true"),
        (
            '{"metadata": {"timestamp": "12 "}}',
            "metadata.timestamp",
            f'expected {INT64}, got "12 "',
        ),
        (
            '{"metadata": {"timestamp": 1e30}}',
            "metadata.timestamp",
            f"expected {INT64}, got 1e+30",
        ),
        (
            '{"metadata": {"timestamp": ' + "9" * 5000 + "}}",  # over Python's 4,300 digits
            "metadata.timestamp",
            f"expected {INT64}, got a 5,000-digit number",
        ),
        (
            '{"metadata": {"timestamp": NaN}}',
            "metadata.timestamp",
            f"expected {INT64}, got NaN (not a JSON number)",
        ),
    ],
)
def test_a_bad_value_names_its_exact_path_and_the_types_in_words(
    text: str, path: str, message: str
) -> None:
    problem = _only_problem(text)
    assert (problem.path, problem.message) == (path, message)
    assert "declared type" in problem.hint or problem.hint == "remove the null"


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        formats.loads(
            '{"job_id": 1, "tasks": [{"task_id": 2}, {"steps": [{"step_type": 4}]}]}',
            config_pb2.JobConfig,
            ConfigFormat.JSON,
        )
    assert [p.path for p in info.value.problems] == [
        "job_id",
        "tasks[0].task_id",
        "tasks[1].steps[0].step_type",
    ]


def test_values_protobuf_accepts_still_load() -> None:
    job = formats.loads(
        """{"metadata": {"timestamp": "1741667405"}, "job_id": null,
            "input_config": {"payload": {"n": null,
                                         "x": [1.5, true, {"y": "\\u00e9\\ud83d\\ude00"}]}},
            "tasks": [{"steps": [{"metadata": {"timestamp": 3.0}}]}]}""",
        config_pb2.JobConfig,
        ConfigFormat.JSON,
    )
    assert job.metadata.timestamp == 1741667405
    assert job.tasks[0].steps[0].metadata.timestamp == 3
    assert struct_to_dict(job.input_config.payload)["x"][2]["y"] == "é😀"


def test_models_file_numbers() -> None:
    models = formats.loads(
        '{"models": [{"key": "K", "timeout_seconds": "2.5", "max_concurrency": 4.0,'
        ' "input_price_per_million_tokens": 1}]}',
        config_pb2.ModelsConfig,
        ConfigFormat.JSON,
    )
    assert models.models[0].timeout_seconds == 2.5
    with pytest.raises(ConfigError) as info:
        formats.loads(
            '{"models": [{"max_concurrency": 3000000000, "timeout_seconds": "soon",'
            ' "no_api_key": "yes", "output_price_per_million_tokens": 1e400}]}',
            config_pb2.ModelsConfig,
            ConfigFormat.JSON,
        )
    assert [(p.path, p.message) for p in info.value.problems] == [
        (
            "models[0].max_concurrency",
            "expected an integer from -2147483648 to 2147483647, got 3000000000",
        ),
        ("models[0].timeout_seconds", 'expected a number, got "soon"'),
        ("models[0].no_api_key", 'expected true or false, got "yes"'),
        (
            "models[0].output_price_per_million_tokens",
            "expected a number, got a number too large for a double",
        ),
    ]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"tasks": [{"task_id": "a"}, {"task_id": "b", "task_id": "c"}]}', "tasks[1].task_id"),
        ('{"job_id": "a", "job_id": "a"}', "job_id"),
        ('{"input_config": {"payload": {"x": {"y": 1, "y": 2}}}}', "input_config.payload.x.y"),
    ],
)
def test_a_repeated_key_is_reported_where_it_is(text: str, path: str) -> None:
    problem = _only_problem(text)
    assert problem.path == path
    assert problem.message.startswith("the key ")
    assert problem.message.endswith(" appears twice in one object")


def test_a_field_given_by_both_its_names() -> None:
    problem = _only_problem('{"job_id": "a", "jobId": "b"}')
    assert problem.path == "jobId"
    assert problem.message == "the field job_id is given twice, as 'job_id' and 'jobId'"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"job_id": "\\ud800"}', "job_id"),
        ('{"tasks": [{"next_tasks": ["a", "x\\udfff"]}]}', "tasks[0].next_tasks[1]"),
        ('{"input_config": {"payload": {"k": ["\\ud800"]}}}', "input_config.payload.k[0]"),
        ('{"input_config": {"payload": {"\\ud800": 1}}}', "input_config.payload.'\\ud800'"),
    ],
)
def test_a_lone_surrogate_is_reported_at_its_path(text: str, path: str) -> None:
    problem = _only_problem(text)
    assert problem.path == path
    assert "lone surrogate" in problem.message
    assert "half of a pair" in problem.hint


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("9" * 5000, "a 5,000-digit number is too large for a free-form value"),
        ("1" + "0" * 400, "a 401-digit number is too large for a free-form value"),
        ("1e400", "the number is too large for a free-form value"),
        ("-Infinity", "-Infinity is not a JSON number"),
        ("NaN", "NaN is not a JSON number"),
    ],
)
def test_numbers_a_free_form_value_cannot_hold(number: str, message: str) -> None:
    problem = _only_problem(f'{{"input_config": {{"payload": {{"n": [1, {number}]}}}}}}')
    assert problem.path == "input_config.payload.n[1]"
    assert problem.message.startswith(message)


def test_json_nested_too_deep_is_refused_before_parsing() -> None:
    deep = "[" * 1000 + "]" * 1000  # the json module would hit the recursion limit
    prefix = '{"tasks": [{"input_config": {"payload": {"x": '  # 5 levels
    problem = _only_problem(f"{prefix}{deep}}}}}}}]}}")
    assert problem.path == "tasks[0].input_config.payload.x" + "[0]" * 27
    column = len(prefix) + 28  # the 28th "[" is the 33rd level
    assert problem.message == (
        f"nested more than 32 levels deep (objects and lists, line 1 column {column})"
    )
    assert "flatten the value" in problem.hint
    objects = '{"a": ' * 1000 + "1" + "}" * 1000
    problem = _only_problem(f'{{"input_config": {{"payload": {objects}}}}}')
    assert problem.path == "input_config.payload" + ".a" * 30


def test_json_nested_to_the_limit_loads_and_converts_to_every_format() -> None:
    inner = '{"a": ' * 29 + "1" + "}" * 29  # 32 levels with the job and the payload
    job = formats.loads(
        f'{{"input_config": {{"payload": {inner}}}}}', config_pb2.JobConfig, ConfigFormat.JSON
    )
    for fmt in ConfigFormat:
        assert formats.loads(formats.dumps(job, fmt), config_pb2.JobConfig, fmt) == job


def test_textproto_nested_too_deep_is_refused_before_parsing() -> None:
    text = 'input_config { payload { fields { key: "a" value { ' + "list_value { values { " * 150
    problem = _only_problem(text + "} } " * 150 + "} } } }", ConfigFormat.TEXTPROTO)
    assert problem.path == (
        "input_config.payload.fields.value.list_value.values.list_value.values.list_value.values...."
    )
    assert problem.message.startswith("messages nested more than 100 deep (line 1 column ")


def test_textproto_number_over_the_digit_limit() -> None:
    problem = _only_problem("metadata { timestamp: " + "9" * 5000 + " }", ConfigFormat.TEXTPROTO)
    assert problem.message.startswith("not a valid JobConfig textproto: 1:")
    assert len(problem.message) < 400


def test_textproto_and_binary_values_json_would_refuse() -> None:
    text = (
        "tasks { steps { cache: 7 step_type: 4 } }\n"
        'input_config { payload { fields { key: "n" value { number_value: nan } } } }\n'
    )
    with pytest.raises(ConfigError) as info:
        formats.loads(text, config_pb2.JobConfig, ConfigFormat.TEXTPROTO)
    assert [(p.path, p.message) for p in info.value.problems] == [
        (
            "tasks[0].steps[0].step_type",
            f"expected one of {STEP_TYPES}, got 4",
        ),
        (
            "tasks[0].steps[0].cache",
            "expected one of CACHE_POLICY_DEFAULT (0), CACHE_POLICY_USE (1), "
            "CACHE_POLICY_REFRESH (2), CACHE_POLICY_OFF (3), got 7",
        ),
        (
            "input_config.payload.n",
            "nan does not fit a free-form value (JSON has no NaN or infinite numbers)",
        ),
    ]
    job = config_pb2.JobConfig()
    job.input_config.payload["n"] = float("inf")
    with pytest.raises(ConfigError, match=r"input_config.payload.n: inf does not fit"):
        formats.loads(job.SerializeToString(), config_pb2.JobConfig, ConfigFormat.BINARY)


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


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        # Python only warns about "\j" (a DeprecationWarning), and protobuf decodes with Python.
        ('job_id: "a\\joke"', "job_id", "unknown escape \\j in a string (line 1 column 11)"),
        (
            'tasks {\n  next_tasks: "x\\ud800"\n}',
            "tasks.next_tasks",
            "the escape \\ud800 is half of a UTF-16 surrogate pair, which a textproto string "
            "cannot hold (line 2 column 17)",
        ),
    ],
)
def test_textproto_string_escapes(text: str, path: str, message: str) -> None:
    problem = _only_problem(text, ConfigFormat.TEXTPROTO)
    assert (problem.path, problem.message) == (path, message)


def test_textproto_escapes_protobuf_takes() -> None:
    text = "job_id: \"\\n\\t\\\\j\\\"\\x41\\101\\u00e9\" name: 'it\\'s'"
    job = formats.loads(text, config_pb2.JobConfig, ConfigFormat.TEXTPROTO)
    assert job.job_id == '\n\t\\j"AAé'
    assert job.name == "it's"
