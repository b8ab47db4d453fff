"""create_sample, config_reader and proto_decoder, and the round trips between them."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from llm_scheduler.config import formats
from llm_scheduler.config.kinds import message_type
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.sub_jobs import as_written
from llm_scheduler.config_tools.config_reader import describe, describe_step
from llm_scheduler.config_tools.samples import SAMPLE_FILES, sample_embedding_job, sample_files
from llm_scheduler.trace import read_trace
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.clitools import run_tool
from tests.conftest import REPO_ROOT

KINDS = {
    "sample_step_config.json": "step",
    "sample_task_config.json": "task",
    "sample_job_config.json": "job",
    "sample_fanout_job_config.json": "job",
    "sample_embedding_job_config.json": "job",
    "sample_map_job_config.json": "job",
    "sample_sub_job_config.json": "job",
    "sample_sub_job_child_config.json": "job",
    "sample_strategy_job_config.json": "job",
}
JOB_SAMPLES = [name for name, kind in KINDS.items() if kind == "job"]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("samples")
    result = run_tool("create_sample", f"-output_dir={folder}")
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(SAMPLE_FILES)
    return folder


def test_step_sample_is_the_seed_verbatim(samples: pathlib.Path) -> None:
    seed = REPO_ROOT.parent / "shared" / "seeds" / "001_5ac12f98e78fecb6.txt"
    text = (samples / "sample_step_config.json").read_text()
    assert "// Interpolate input variables into model query" in text
    if seed.exists():
        assert text in seed.read_text()


def test_examples_folder_matches_create_sample() -> None:
    for name, content in sample_files().items():
        assert (REPO_ROOT / "examples" / name).read_bytes() == content, f"run create_sample: {name}"


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_samples_round_trip_through_config_reader_and_proto_decoder(
    samples: pathlib.Path, tmp_path: pathlib.Path, name: str
) -> None:
    kind = KINDS[name]
    original = formats.load(samples / name, message_type(kind))
    # What the tools print: a sub-job step keeps its job_path, not the child read from it.
    written = (
        as_written(original)
        if isinstance(original, (config_pb2.JobConfig, config_pb2.TaskConfig))
        else original
    )

    read = run_tool("config_reader", f"--input_path={samples / name}", f"--config_type={kind}")
    assert read.code == 0, read.stderr
    assert read.stderr.startswith(f"valid {kind}")
    via_reader = formats.loads(read.stdout, message_type(kind), formats.ConfigFormat.JSON)
    assert via_reader == written

    # The converted files go next to copies of the samples: a job_path is relative to its file.
    for sample in SAMPLE_FILES:
        shutil.copy(samples / sample, tmp_path / sample)
    as_text = tmp_path / "c.textproto"
    as_binary = tmp_path / "c.binpb"
    for target, fmt in ((as_text, "textproto"), (as_binary, "binary")):
        result = run_tool(
            "proto_decoder",
            f"--input_path={samples / name}",
            f"--output_format={fmt}",
            f"--output_path={target}",
        )
        assert result.code == 0, result.stderr
    assert formats.load(as_text, message_type(kind)) == original
    back = run_tool("proto_decoder", f"--input_path={as_binary}", f"--config_type={kind}")
    assert back.code == 0, back.stderr
    # Binary -> readable JSON is the same text config_reader printed: nothing lost or changed.
    assert back.stdout == read.stdout
    assert formats.loads(back.stdout, message_type(kind), formats.ConfigFormat.JSON) == written


def test_config_reader_draws_the_job_graph(samples: pathlib.Path) -> None:
    result = run_tool("config_reader", f"--input_path={samples / 'sample_fanout_job_config.json'}")
    assert result.code == 0, result.stderr
    assert "level 1  (run in parallel)" in result.stderr
    assert "verdict [1 step]  (final)  (joins pros, cons)" in result.stderr


def test_config_reader_rejects_invalid_config_with_exit_2(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "task.json"
    path.write_text('{"task_id": "t", "steps": [], "nxt_task": "x"}')
    result = run_tool("config_reader", f"--input_path={path}", "--config_type=task")
    assert result.code == 2
    assert "nxt_task" in result.stderr and "did you mean 'next_task'" in result.stderr


def test_proto_decoder_needs_config_type_for_binary(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "x.binpb"
    path.write_bytes(b"\x0a\x01a")
    result = run_tool("proto_decoder", f"--input_path={path}")
    assert result.code == 2
    assert "--config_type" in result.stderr


def test_proto_decoder_prints_textproto(samples: pathlib.Path) -> None:
    result = run_tool(
        "proto_decoder",
        f"--input_path={samples / 'sample_step_config.json'}",
        "--output_format=textproto",
    )
    assert result.code == 0, result.stderr
    assert 'model_key: "GEMINI_FLASH"' in result.stdout


def test_config_reader_describes_embedding_steps(samples: pathlib.Path) -> None:
    job = sample_embedding_job()
    step = job.tasks[0].steps[1]

    assert describe("step", step) == "valid step '2': embedding · GEMINI_EMBEDDING, 256 dimensions"
    assert describe("job", job).endswith(
        "\nembedding steps:\n"
        "  task 'note' step 'embed': embedding · GEMINI_EMBEDDING, 256 dimensions"
    )
    assert describe_step(job.tasks[0].steps[0]) == "model query · GEMINI_FLASH"
    read = run_tool("config_reader", f"--input_path={samples / 'sample_embedding_job_config.json'}")
    assert read.code == 0, read.stderr
    assert "embedding steps:" in read.stderr


@pytest.mark.parametrize("name", JOB_SAMPLES)
def test_every_job_sample_runs_offline(samples: pathlib.Path, name: str) -> None:
    result = run_tool("job_runner", f"--input_path={samples / name}", "--offline")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)
    assert "succeeded" in result.stderr


def test_the_map_sample_writes_each_planned_section_and_the_join_gets_them_in_order(
    samples: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    trace = tmp_path / "map_trace.json"
    result = run_tool(
        "job_runner",
        f"--input_path={samples / 'sample_map_job_config.json'}",
        "--offline",
        f"--trace_out={trace}",
    )
    assert result.code == 0, result.stderr
    job_run = read_trace(trace)
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    tasks = {task.task_id: task for task in job_run.tasks}
    # The offline model answers the outline's JSON schema with a list of three titles.
    sections = struct_to_dict(tasks["outline"].outputs)["sections"]
    assert isinstance(sections, list) and len(sections) == 3
    write = tasks["write"]
    assert write.items_total == 3
    assert [item.status for item in write.items] == [run_pb2.RUN_STATUS_SUCCEEDED] * 3
    paragraphs = struct_to_dict(write.outputs)["paragraph"]
    assert [f"section {i} of" in paragraph for i, paragraph in enumerate(paragraphs)] == [True] * 3
    assert struct_to_dict(tasks["assemble"].inputs)["paragraph"] == paragraphs
    assert "article" in json.loads(result.stdout)["assemble"]
