"""A strategy through the cloud function (functions-framework) on the Firestore emulator."""

from __future__ import annotations

import pathlib

import pytest

from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.testing.firestore_emulator import FirestoreEmulator
from tests.conftest import FAKE_CREDENTIALS
from tests.engine.test_strategy import strategy_job
from tests.execution.test_graphs_cloud_function import (
    dispatch_through,
    firestore_url,
    function_server,
)
from tests.execution.test_strategy_runs import assert_strategy

__all__ = ["firestore_url"]  # the fixture, used by name


@pytest.mark.timeout(180)
def test_a_strategy_runs_through_the_function_with_every_event_delivered_twice(
    tmp_path: pathlib.Path,
    firestore_url: str,
    firestore_emulator: FirestoreEmulator,
    fake_server: FakeProviderServer,
    models_file: pathlib.Path,
) -> None:
    fake_server.latency_seconds = 0.02
    server = function_server(
        tmp_path,
        firestore_url,
        firestore_emulator,
        LLM_SCHEDULER_MODELS_FILE=str(models_file),
        **FAKE_CREDENTIALS,
    )
    try:
        with open_store(firestore_url) as store:
            run_id = submit_job(store, strategy_job(steps=2))
            dispatch_through(server, firestore_url, workers=4, duplicate=True)
            assert_strategy(store, run_id)
    finally:
        server.stop()
    assert fake_server.count() == 6 * 2
    log = server.log.read_text()
    assert '"action": "waiting"' in log and "Traceback" not in log
