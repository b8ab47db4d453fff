"""The jobs side of the web UI: list, editor, validate, save and run, against a real store."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator
from llm_scheduler.errors import ConfigError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.submit import load_job_definition, save_job_definition
from llm_scheduler.v1 import config_pb2
from llm_scheduler.web import WebSettings, job_configs
from llm_scheduler.web.job_configs import NEW_JOB_TEXT
from tests.conftest import REPO_ROOT
from tests.web.conftest import make_client, state_of, store_of

SAMPLE = (REPO_ROOT / "examples/sample_job_config.json").read_text()
FANOUT = (REPO_ROOT / "examples/sample_fanout_job_config.json").read_text()
MODEL_KEY_PATH = "tasks[0].steps[0].model_query_config.model_key"
XSS = "<script>alert(1)</script> <img src=x onerror=alert(1)>"

TEXTPROTO_JOB = """\
# A one-task job in textproto.
job_id: "tp"
name: "Textproto job"
input_config { payload { fields { key: "who" value { string_value: "you" } } } }
tasks {
  task_id: "hello"
  steps { name: "greet" model_query_config { model_key: "OFFLINE" user_prompt: "Hi %who%" } }
}
"""


def bad_model_key(text: str = SAMPLE) -> str:
    return text.replace('"GEMINI_FLASH"', '"NO_SUCH_MODEL"', 1)


def validate(client: TestClient, text: str, fmt: str = "json", file: str = "") -> dict[str, Any]:
    response = client.post("/api/validate", json={"text": text, "format": fmt, "file": file})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# --- /api/validate -------------------------------------------------------------------------


def test_validate_a_valid_job(client: TestClient) -> None:
    data = validate(client, FANOUT)
    assert data["ok"] is True
    assert data["problems"] == []
    assert data["job"] == {"job_id": "idea_review", "name": data["job"]["name"], "tasks": 4}
    assert [node["task_id"] for node in data["graph"]["nodes"]] == [
        "outline",
        "pros",
        "cons",
        "verdict",
    ]
    assert data["inputs"] == [{"name": "idea", "default": "a library of reusable LLM workflows"}]


def test_validate_reports_an_unknown_model_key_at_its_field_path(client: TestClient) -> None:
    data = validate(client, bad_model_key(), file="poem.json")
    assert data["ok"] is False
    (problem,) = data["problems"]
    assert problem["path"] == MODEL_KEY_PATH
    assert "NO_SUCH_MODEL" in problem["message"]
    assert "registered key" in problem["hint"] and "GEMINI_FLASH" in problem["hint"]
    assert problem["file"] == "poem.json"
    # The config parses: the preview still shows its graph and inputs.
    assert len(data["graph"]["nodes"]) == 3
    assert data["job"]["job_id"] == "poem"


def test_validate_reports_what_config_reader_reports(client: TestClient) -> None:
    # The same problems as the CLI's own checks (formats.loads + Validator).
    text = bad_model_key()
    job = formats.loads(text, config_pb2.JobConfig, formats.ConfigFormat.JSON)
    with pytest.raises(ConfigError) as raised:
        Validator().check_job(job)
    expected = [(p.path, p.message, p.hint) for p in raised.value.problems]
    got = [(p["path"], p["message"], p["hint"]) for p in validate(client, text)["problems"]]
    assert got == expected


def test_validate_takes_json_with_comments(client: TestClient) -> None:
    text = "// a comment\n" + SAMPLE.replace('"tasks": [', '"tasks": [ // the tasks\n', 1)
    assert validate(client, text)["ok"] is True


def test_validate_reports_a_json_syntax_error(client: TestClient) -> None:
    data = validate(client, '{\n  "job_id": "x",\n  "tasks": [\n')
    assert data["ok"] is False
    assert data["job"] is None and data["graph"] is None and data["inputs"] == []
    (problem,) = data["problems"]
    assert "line" in problem["message"]
    assert problem["hint"]


def test_validate_reports_an_unknown_field_with_a_suggestion(client: TestClient) -> None:
    data = validate(client, SAMPLE.replace('"next_task"', '"next_tsak"', 1))
    (problem,) = data["problems"]
    assert problem["path"].startswith("tasks[0]")
    assert "next_task" in problem["hint"] or "next_task" in problem["message"]


def test_validate_textproto(client: TestClient) -> None:
    data = validate(client, TEXTPROTO_JOB, "textproto")
    assert data["ok"] is True, data["problems"]
    assert data["inputs"] == [{"name": "who", "default": "you"}]
    broken = validate(client, TEXTPROTO_JOB.replace("tasks {", "tasks {{", 1), "textproto")
    assert broken["ok"] is False
    assert "textproto" in broken["problems"][0]["message"]


def test_validate_refuses_an_unknown_format(client: TestClient) -> None:
    response = client.post("/api/validate", json={"text": "{}", "format": "yaml"})
    assert response.status_code == 400
    assert "json or textproto" in response.json()["error"]


def test_validate_needs_text(client: TestClient) -> None:
    assert client.post("/api/validate", json={"format": "json"}).status_code == 422


def test_validate_uses_the_models_file(
    client: TestClient, web_settings: WebSettings, tmp_path: pathlib.Path
) -> None:
    models = tmp_path / "models.json"
    models.write_text(
        json.dumps({"models": [{"key": "MY_MODEL", "provider": "offline", "model": "echo"}]})
    )
    text = SAMPLE.replace('"GEMINI_FLASH"', '"MY_MODEL"')
    assert validate(client, text)["ok"] is False
    with make_client(dataclasses.replace(web_settings, models_path=str(models))) as other:
        assert validate(other, text)["ok"] is True


# --- /api/jobs -------------------------------------------------------------------------------


def test_save_a_valid_job(client: TestClient) -> None:
    response = client.post("/api/jobs", json={"text": SAMPLE, "format": "json"})
    assert response.status_code == 200
    assert response.json() == {"job_id": "poem", "url": "/jobs/edit?job_id=poem"}
    saved = load_job_definition(store_of(client), "poem")
    assert saved is not None and len(saved.tasks) == 3


def test_an_invalid_job_is_never_saved(client: TestClient) -> None:
    response = client.post("/api/jobs", json={"text": bad_model_key()})
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == MODEL_KEY_PATH
    assert load_job_definition(store_of(client), "poem") is None


def test_a_saved_job_needs_an_id(client: TestClient) -> None:
    text = SAMPLE.replace('"job_id": "poem",', "", 1)
    assert validate(client, text)["ok"] is True
    response = client.post("/api/jobs", json={"text": text})
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == "job_id"


# --- /api/runs -------------------------------------------------------------------------------


def run_doc(client: TestClient, run_id: str) -> dict[str, Any]:
    doc = store_of(client).get(docs.job_run_path(run_id))
    assert doc is not None, f"no run {run_id}"
    return doc


def test_run_a_config_text_commits_a_run(any_store_client: TestClient) -> None:
    client = any_store_client
    response = client.post("/api/runs", json={"text": FANOUT, "inputs": {"idea": "owls"}})
    assert response.status_code == 201
    data = response.json()
    assert data["url"] == f"/runs/{data['run_id']}"
    doc = run_doc(client, data["run_id"])
    assert doc["job_id"] == "idea_review"
    assert doc["status"] == docs.Status.PENDING
    assert doc["inputs"] == {"idea": "owls"}
    assert doc["offline"] is True  # the server's default (web_settings.offline)
    # The start task's run is committed with it: a dispatcher will pick it up.
    task_runs = store_of(client).list(f"{docs.job_run_path(data['run_id'])}/task_runs")
    assert [doc["task_id"] for _, doc in task_runs] == ["outline"]


def test_run_a_saved_job_with_default_inputs(client: TestClient) -> None:
    save_job_definition(
        store_of(client), formats.loads(FANOUT, config_pb2.JobConfig, formats.ConfigFormat.JSON)
    )
    response = client.post("/api/runs", json={"job_id": "idea_review", "offline": False})
    assert response.status_code == 201
    doc = run_doc(client, response.json()["run_id"])
    assert doc["inputs"] == {"idea": "a library of reusable LLM workflows"}
    assert "offline" not in doc


def test_run_an_unknown_saved_job(client: TestClient) -> None:
    response = client.post("/api/runs", json={"job_id": "nope"})
    assert response.status_code == 404
    assert "nope" in response.json()["error"]


def test_run_needs_a_job(client: TestClient) -> None:
    assert client.post("/api/runs", json={"inputs": {}}).status_code == 400


def test_an_invalid_job_does_not_run(client: TestClient) -> None:
    response = client.post("/api/runs", json={"text": bad_model_key()})
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == MODEL_KEY_PATH
    assert store_of(client).list("job_runs") == []


def test_run_inputs_count_as_variables(client: TestClient) -> None:
    # A prompt that needs %extra%, which only the run's inputs supply.
    text = SAMPLE.replace("about %topic%", "about %topic% and %extra%", 1)
    assert validate(client, text)["ok"] is False
    refused = client.post("/api/runs", json={"text": text})
    assert refused.status_code == 422
    response = client.post("/api/runs", json={"text": text, "inputs": {"extra": "owls"}})
    assert response.status_code == 201, response.text


# --- pages -----------------------------------------------------------------------------------


def write_configs(folder: pathlib.Path) -> None:
    (folder / "b_fanout.json").write_text(FANOUT)
    (folder / "a_tp.textproto").write_text(TEXTPROTO_JOB)
    (folder / "step.json").write_text('{"model_query_config": {"model_key": "OFFLINE"}}')
    (folder / "broken.json").write_text('{"job_id": "broken", "tasks": [{"task_idd": "x"}]}')
    (folder / "notes.txt").write_text("not a config")


def test_jobs_list_from_the_store_and_the_folder(
    any_store_client: TestClient, configs_dir: pathlib.Path
) -> None:
    client = any_store_client
    write_configs(configs_dir)
    job = formats.loads(SAMPLE, config_pb2.JobConfig, formats.ConfigFormat.JSON)
    job.name = XSS
    save_job_definition(store_of(client), job)
    data = client.get("/jobs.json").json()
    assert data["configs_dir"] == str(configs_dir)
    rows = [(j["job_id"], j["tasks"], j["source"], bool(j["error"])) for j in data["jobs"]]
    assert rows == [
        ("poem", 3, "store", False),
        ("tp", 1, str(configs_dir / "a_tp.textproto"), False),
        ("idea_review", 4, str(configs_dir / "b_fanout.json"), False),
        ("", 0, str(configs_dir / "broken.json"), True),
    ]
    assert data["jobs"][0]["edit_url"] == "/jobs/edit?job_id=poem"
    assert data["jobs"][0]["name"] == XSS
    html = client.get("/jobs").text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="/jobs/edit?file=' in html


def test_jobs_list_without_a_folder(web_settings: WebSettings) -> None:
    with make_client(dataclasses.replace(web_settings, configs_dir="")) as client:
        assert state_of(client).settings.configs_dir == ""
        data = client.get("/jobs.json").json()
        assert data == {"configs_dir": "", "jobs": []}
        assert "No jobs yet" in client.get("/jobs").text


def test_editor_opens_a_file_of_the_folder(client: TestClient, configs_dir: pathlib.Path) -> None:
    write_configs(configs_dir)
    path = str(configs_dir / "b_fanout.json")
    data = client.get("/jobs/edit.json", params={"file": path}).json()
    assert data["text"] == FANOUT
    assert data["format"] == "json"
    assert data["source"] == path
    assert data["check"]["ok"] is True
    assert data["check"]["inputs"] == [
        {"name": "idea", "default": "a library of reusable LLM workflows"}
    ]
    textproto = client.get("/jobs/edit.json", params={"file": str(configs_dir / "a_tp.textproto")})
    assert textproto.json()["format"] == "textproto"
    html = client.get("/jobs/edit", params={"file": path}).text
    assert 'data-task-id="verdict"' in html
    assert 'id="editor-data"' in html


def test_editor_opens_nothing_outside_the_folder(
    client: TestClient, configs_dir: pathlib.Path
) -> None:
    write_configs(configs_dir)
    for name in ("/etc/passwd", str(configs_dir / "../configs/notes.txt"), "examples/x.json"):
        response = client.get("/jobs/edit", params={"file": name})
        assert response.status_code == 400, name
        assert "not a job config of the configs folder" in response.text
    assert client.get("/jobs/edit.json", params={"file": "/etc/passwd"}).json()["error"]


def test_editor_opens_a_saved_job(client: TestClient) -> None:
    save_job_definition(
        store_of(client), formats.loads(SAMPLE, config_pb2.JobConfig, formats.ConfigFormat.JSON)
    )
    data = client.get("/jobs/edit.json", params={"job_id": "poem"}).json()
    assert data["source"] == "store"
    assert data["check"]["ok"] is True
    assert json.loads(data["text"])["job_id"] == "poem"
    missing = client.get("/jobs/edit", params={"job_id": "nope"})
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]


def test_a_new_job_starts_valid(client: TestClient) -> None:
    data = client.get("/jobs/edit.json").json()
    assert data["text"] == NEW_JOB_TEXT
    assert data["source"] == "new"
    assert data["check"]["ok"] is True, data["check"]["problems"]
    assert data["check"]["inputs"] == [{"name": "topic", "default": "owls"}]


def test_editor_escapes_the_config_text(client: TestClient, configs_dir: pathlib.Path) -> None:
    text = SAMPLE.replace('"name": "Draft', f'"description": "</textarea>{XSS}", "name": "Draft')
    (configs_dir / "x.json").write_text(text)
    html = client.get("/jobs/edit", params={"file": str(configs_dir / "x.json")}).text
    assert "</textarea><script>" not in html and "<img src=x" not in html
    assert "&lt;/textarea&gt;&lt;script&gt;" in html
    # The JSON block for the script is escaped for a <script> element too.
    block = html.split('id="editor-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block


def test_problems_show_in_the_page(client: TestClient, configs_dir: pathlib.Path) -> None:
    (configs_dir / "bad.json").write_text(bad_model_key())
    html = client.get("/jobs/edit", params={"file": str(configs_dir / "bad.json")}).text
    assert f'<span class="problem-path">{MODEL_KEY_PATH}</span>' in html
    assert "1 problem." in html


def test_list_jobs_directly(client: TestClient, configs_dir: pathlib.Path) -> None:
    write_configs(configs_dir)
    entries = job_configs.list_jobs(store_of(client), str(configs_dir))
    assert [entry.job_id for entry in entries] == ["tp", "idea_review", ""]
    assert job_configs.list_jobs(store_of(client), str(configs_dir / "missing")) == []


def test_the_in_process_dispatcher_runs_what_the_ui_starts(web_settings: WebSettings) -> None:
    # web_ui's default: a dispatcher in the server's event loop, stopped with the app.
    with make_client(dataclasses.replace(web_settings, dispatch=True)) as client:
        response = client.post("/api/runs", json={"text": FANOUT, "inputs": {"idea": "owls"}})
        assert response.status_code == 201
        run_id = response.json()["run_id"]
        store = store_of(client)
        for _ in range(600):
            status = run_doc(client, run_id)["status"]
            if status in docs.FINISHED:
                break
            store.wait_for_change(0.1)
        assert status == docs.Status.SUCCEEDED
