"""The web UI runs jobs in its store, where sub-jobs cannot run yet: it says so, runs nothing."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.execution.test_sub_jobs_in_store import PATH, SUB_JOB
from tests.web.conftest import store_of


def test_the_web_ui_shows_the_problem_and_does_not_run_the_job(client: TestClient) -> None:
    text = json.dumps(SUB_JOB)
    checked = client.post("/api/validate", json={"text": text, "format": "json"}).json()
    assert checked["ok"] is False
    assert [p["path"] for p in checked["problems"]] == [PATH]
    response = client.post("/api/runs", json={"text": text})
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == PATH
    assert store_of(client).list("job_runs") == []
