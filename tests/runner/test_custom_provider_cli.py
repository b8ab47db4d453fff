"""The tools load a custom model provider's module with --function_modules, before the models file.

The provider is `tests.models.echo_provider` (``echo``): each tool runs in a subprocess, so only
the flag can have registered it there.
"""

from __future__ import annotations

import json
import pathlib

from llm_scheduler import ConfigFormat, dumps
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.store import open_store
from tests.clitools import run_tool
from tests.models.echo_provider import echo_text
from tests.models.test_custom_providers import (
    assert_echo_chain_recorded,
    chain_job,
    write_echo_models,
)

PLUGIN = "--function_modules=tests.models.echo_provider"


def _files(folder: pathlib.Path) -> tuple[str, str]:
    """The chain job (keys ``ECHO`` and ``echo:mynah``) and the models file, as flags."""
    job = folder / "job.json"
    job.write_bytes(dumps(chain_job(), ConfigFormat.JSON))
    return f"--input_path={job}", f"--models_file={write_echo_models(folder)}"


def test_job_runner_runs_a_custom_provider_from_its_module(tmp_path: pathlib.Path) -> None:
    job, models = _files(tmp_path)

    result = run_tool("job_runner", job, models, PLUGIN)

    assert result.code == 0, result.stderr
    first = echo_text("parrot", "hello owls")
    assert json.loads(result.stdout) == {"second": {"final": echo_text("mynah", f"repeat {first}")}}
    assert "tokens: 7 in, 11 out; cost: $0.000044" in result.stderr


def test_without_the_module_the_models_file_names_an_unknown_provider(
    tmp_path: pathlib.Path,
) -> None:
    job, models = _files(tmp_path)

    result = run_tool("job_runner", job, models)

    assert result.code == 2
    assert "models[0].provider: unknown provider 'echo'" in result.stderr
    assert "register_provider" in result.stderr and "--function_modules" in result.stderr


def test_a_direct_key_of_an_unloaded_provider_is_refused_with_the_providers(
    tmp_path: pathlib.Path,
) -> None:
    step = tmp_path / "step.json"
    step.write_text(
        json.dumps({"model_query_config": {"model_key": "echo:x", "user_prompt": "hi"}})
    )

    refused = run_tool("step_runner", f"--input_path={step}")
    answered = run_tool("step_runner", f"--input_path={step}", PLUGIN)

    assert refused.code == 2
    assert "unknown model key 'echo:x'" in refused.stderr
    assert "'echo' is not a provider: use one of openai, google, anthropic, offline" in (
        refused.stderr
    )
    assert answered.code == 0, answered.stderr
    assert json.loads(answered.stdout) == {"response": echo_text("x", "hi")}


def test_submitter_and_dispatcher_run_a_custom_provider_from_its_module(
    tmp_path: pathlib.Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    job, models = _files(tmp_path)
    submitted = run_tool("job_submitter", job, models, PLUGIN, f"--store={store}")
    assert submitted.code == 0, submitted.stderr
    run_id = submitted.stdout.strip()

    # Without the module the dispatcher refuses to start: its models file names 'echo'.
    refused = run_tool("dispatcher", models, f"--store={store}", "--until_idle")
    assert refused.code == 2 and "unknown provider 'echo'" in refused.stderr

    dispatched = run_tool("dispatcher", models, PLUGIN, f"--store={store}", "--until_idle")
    assert dispatched.code == 0, dispatched.stderr
    assert "handled: {'succeeded': 2}" in dispatched.stderr
    with open_store(store) as opened:
        record = read_job_run(opened, run_id)
    assert record is not None
    assert_echo_chain_recorded(record)
