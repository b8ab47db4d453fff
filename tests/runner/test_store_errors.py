"""A store the user's setup cannot open is bad input (exit 2, with the fix), not a failed run."""

from __future__ import annotations

import pathlib

import pytest

from llm_scheduler.errors import MissingCredentialsError
from tests.clitools import run_tool
from tests.conftest import REPO_ROOT

JOB = REPO_ROOT / "examples" / "sample_job_config.json"


def _no_credentials(home: pathlib.Path) -> dict[str, str]:
    # No ADC file (HOME and the gcloud config are empty) and no metadata server to ask.
    return {
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / "gcloud"),
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "GCE_METADATA_IP": "127.0.0.1:9",
    }


UNSET = ("GOOGLE_APPLICATION_CREDENTIALS", "FIRESTORE_EMULATOR_HOST")


@pytest.mark.parametrize(
    "args",
    [
        ["job_submitter", f"--input_path={JOB}", "--offline", "--store=firestore://some-project"],
        ["config_reader", "--run_id=x", "--store=firestore://p"],
    ],
    ids=["job_submitter", "config_reader"],
)
def test_firestore_without_credentials_exits_2_with_the_fix(
    tmp_path: pathlib.Path, args: list[str]
) -> None:
    result = run_tool(*args, env=_no_credentials(tmp_path), unset=UNSET)
    assert result.code == 2, result.stderr
    assert "gcloud auth application-default login" in result.stderr
    assert "FIRESTORE_EMULATOR_HOST" in result.stderr
    assert "run failed" not in result.stderr
    assert result.stdout == ""


def test_an_uncreatable_sqlite_folder_exits_2(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_tool("config_reader", "--run_id=x", f"--store=sqlite:///{blocker}/sub/state.db")
    assert result.code == 2, result.stderr
    assert "cannot create the folder" in result.stderr
    assert "run failed" not in result.stderr


def test_credentials_refused_at_the_first_request_are_the_users_setup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SDK may look for or refresh credentials only when it sends the first request.
    from google.auth.exceptions import RefreshError

    from llm_scheduler.store.firestore import FirestoreStore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # no request is sent
    store = FirestoreStore("p")
    try:
        with (
            pytest.raises(MissingCredentialsError, match="application-default login"),
            store._errors("read", "jobs/j"),
        ):
            message = "invalid_grant: Token has been expired or revoked."
            raise RefreshError(message)  # type: ignore[no-untyped-call]  # untyped upstream
    finally:
        store.close()
