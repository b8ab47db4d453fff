"""Journeys on the run page: follow a run live, read a step, see hostile answers as text, resume.

Runs are submitted to the stack's store from the test and executed by its separate dispatcher
process. Tasks that call ``web_test.wait_for_file`` run until the test writes their file, so the
test decides when each task finishes, whatever the machine's speed.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, expect

from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.testing.sized_jobs import fan_out_job
from llm_scheduler.v1 import config_pb2
from llm_scheduler.web.routes_runs import LARGE_RUN_TASKS
from tests.web.browser.conftest import WebStack, screenshot
from tests.web.runs_support import XSS, job_from, model_step, xss_job

# Generous: the dispatcher and the web UI share the machine with other tests.
LIVE_TIMEOUT_MS = 60_000


def file_step(step_id: str, function: str, path: pathlib.Path, output: str) -> dict[str, Any]:
    return {
        "id": step_id,
        "name": f"{function.removeprefix('web_test.')} {step_id}",
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": function, "request": {"path": str(path)}},
        "output_config": {"payload": {output: "%response%"}},
    }


def gated_job(first: pathlib.Path, second: pathlib.Path) -> config_pb2.JobConfig:
    """open -> gate -> answer: each gate runs until the test writes its file."""
    return job_from(
        {
            "job_id": "gated",
            "name": "Gated questions",
            "input_config": {"payload": {"topic": "owls"}},
            "tasks": [
                {
                    "task_id": "open",
                    "name": "Open the gate",
                    "steps": [file_step("wait", "web_test.wait_for_file", first, "note")],
                    "next_task": "gate",
                },
                {
                    "task_id": "gate",
                    "name": "Second gate",
                    "steps": [file_step("wait", "web_test.wait_for_file", second, "more")],
                    "next_task": "answer",
                },
                {
                    "task_id": "answer",
                    "name": "Answer",
                    "steps": [model_step("ask", "Tell me about %topic% (%more%).", "fact")],
                },
            ],
        }
    )


def submit(web_stack: WebStack, job: config_pb2.JobConfig) -> str:
    with web_stack.open_store() as store:
        return submit_job(store, job, offline=True)


def node(page: Page, task_id: str) -> Any:
    return page.locator(f'#graph-box g.graph-node[data-task-id="{task_id}"]')


def status(name: str) -> re.Pattern[str]:
    return re.compile(rf"\bstatus-{name}\b")


def test_a_run_shows_live_and_its_steps_on_demand(
    page: Page, web_stack: WebStack, tmp_path: pathlib.Path
) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    run_id = submit(web_stack, gated_job(first, second))
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-id")).to_have_text(run_id)
    expect(node(page, "open")).to_have_class(status("running"), timeout=LIVE_TIMEOUT_MS)
    expect(node(page, "gate")).to_have_class(status("pending"))
    expect(page.locator("#cancel-button")).to_be_visible()

    # Each change arrives by the event stream: the page is never reloaded.
    page.evaluate("window.notReloaded = true")
    first.write_text("first gate open")
    expect(node(page, "open")).to_have_class(status("succeeded"), timeout=LIVE_TIMEOUT_MS)
    expect(node(page, "gate")).to_have_class(status("running"), timeout=LIVE_TIMEOUT_MS)
    expect(node(page, "answer")).to_have_class(status("pending"))
    second.write_text("second gate open")
    expect(node(page, "gate")).to_have_class(status("succeeded"), timeout=LIVE_TIMEOUT_MS)
    expect(node(page, "answer")).to_have_class(status("succeeded"), timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#tasks tr[data-task-id='answer'] .badge")).to_have_text("succeeded")
    expect(page.locator("#run-timeline g.timeline-row")).to_have_count(3)
    expect(page.locator("#cancel-button")).to_be_hidden()
    assert page.evaluate("window.notReloaded") is True

    # The keyboard opens a task's details: focus its node, press Enter.
    node(page, "answer").focus()
    page.keyboard.press("Enter")
    details = page.locator("#task-details")
    expect(details.locator("h2")).to_contain_text("answer")
    prompt = "Tell me about owls (second gate open)."
    expect(details.locator(".step-prompt")).to_have_text(prompt)
    expect(details.locator(".step-response")).to_contain_text("[offline GEMINI_FLASH")
    expect(details.locator(".step-response")).to_contain_text(prompt)
    expect(details).to_contain_text("You are terse.")
    expect(details).to_contain_text('"temperature": 0.5')
    expect(node(page, "answer")).to_have_class(re.compile(r"\bselected\b"))
    # The task list opens details too (a link, so Enter works on it as well).
    page.locator("#tasks a.task-link[data-task-id='open']").click()
    expect(details.locator(".step-response")).to_contain_text("first gate open")
    if web_stack.backend == "sqlite":
        page.locator("#tasks a.task-link[data-task-id='answer']").focus()
        page.keyboard.press("Enter")
        expect(details.locator(".step-prompt")).to_have_text(prompt)
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "run_page")


def dialogs_of(page: Page) -> list[str]:
    """The messages of the dialogs (alert, confirm) the page opens from now on, dismissed."""
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def test_hostile_answers_show_as_text(page: Page, web_stack: WebStack) -> None:
    dialogs = dialogs_of(page)
    run_id = submit(web_stack, xss_job())
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#run-header")).to_contain_text("Job <script>alert(1)</script>")
    expect(page.locator("#tasks")).to_contain_text("Task <img src=x onerror=alert(1)>")
    node(page, "evil").click()
    details = page.locator("#task-details")
    responses = details.locator(".step-response")
    expect(responses).to_have_count(2)
    expect(responses.first).to_contain_text(XSS)  # the model's answer
    expect(responses.last).to_contain_text(XSS)  # the function's output
    expect(details.locator("h2")).to_contain_text("Task <img src=x onerror=alert(1)>")
    # Shown as text: no element was made from it.
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    page.wait_for_timeout(200)  # a dialog an injected handler opened would have come by now
    assert dialogs == []


def fragile_job(path: pathlib.Path) -> config_pb2.JobConfig:
    return job_from(
        {
            "job_id": "fragile",
            "tasks": [
                {
                    "task_id": "prepare",
                    "steps": [model_step("ask", "Name a file.", "name")],
                    "next_task": "fragile",
                },
                {
                    "task_id": "fragile",
                    "steps": [file_step("read", "web_test.read_file", path, "content")],
                },
            ],
        }
    )


def test_a_failed_run_shows_its_error_then_resumes(
    page: Page, web_stack: WebStack, tmp_path: pathlib.Path
) -> None:
    missing = tmp_path / "fix.txt"
    run_id = submit(web_stack, fragile_job(missing))
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("failed", timeout=LIVE_TIMEOUT_MS)
    expect(node(page, "fragile")).to_have_class(status("failed"))
    expect(node(page, "prepare")).to_have_class(status("succeeded"))
    expect(page.locator("#tasks tr[data-task-id='fragile']")).to_contain_text(
        "does not exist yet: <b>create it</b>, then resume"
    )
    page.locator("#tasks a.task-link[data-task-id='fragile']").click()
    details = page.locator("#task-details")
    expect(details.locator(".notice.error").first).to_contain_text("FunctionCallError")
    expect(details).to_contain_text(f"{missing} does not exist yet: <b>create it</b>")
    resume = page.get_by_role("button", name="Resume")
    expect(resume).to_be_visible()

    missing.write_text("the fix is in")
    resume.click()
    expect(page.locator("#action-result")).to_contain_text("requeued fragile")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    expect(node(page, "fragile")).to_have_class(status("succeeded"), timeout=LIVE_TIMEOUT_MS)
    expect(resume).to_be_hidden()
    expect(page.locator("#run-header")).to_contain_text('"content": "the fix is in"')
    expect(details.locator(".step-response")).to_contain_text("the fix is in")


def test_a_downloaded_trace_opens_in_the_trace_view(
    page: Page, context: BrowserContext, web_stack: WebStack, tmp_path: pathlib.Path
) -> None:
    dialogs = dialogs_of(page)
    run_id = submit(web_stack, xss_job())
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download trace").click()
    download = download_info.value
    assert download.suggested_filename == f"trace-{run_id}.json"
    trace = tmp_path / download.suggested_filename
    download.save_as(trace)

    # A file that is no trace: the server's 422 shows as the problem, at its field. (In a tab
    # of its own: Chromium logs the 422 as a console error, which `page` counts as a failure.)
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something.else", "schema_version": 1}')
    other = context.new_page()
    other.goto("/traces/view")
    other.get_by_label("Trace file").set_input_files(bad)
    expect(other.locator("#trace-result .notice.error")).to_contain_text(
        "not an llm-scheduler trace"
    )
    expect(other.locator("#trace-result .problem-path")).to_have_text("schema")
    other.close()

    page.goto("/traces/view")
    page.get_by_label("Trace file").set_input_files(trace)
    expect(page.locator("#run-id")).to_have_text(run_id)
    expect(page.locator("#run-header h1")).to_contain_text("Trace of run")
    expect(page.locator("#trace-result .notice")).to_have_count(0)
    expect(node(page, "evil")).to_have_class(status("succeeded"))
    expect(page.locator("#run-timeline g.timeline-row")).to_have_count(1)
    node(page, "evil").focus()
    page.keyboard.press("Enter")
    responses = page.locator("#task-details .step-response")
    expect(responses).to_have_count(2)
    expect(responses.first).to_contain_text(XSS)
    assert page.locator("main img").count() == 0

    # Replay the uploaded trace into the store: every recorded step is reused.
    expect(page.locator("#trace-plan")).to_contain_text("2 of 2 steps reused, 0 run")
    page.get_by_role("button", name="Replay into the store").click()
    expect(page).to_have_url(re.compile(r"/runs/xss-[\w-]+$"))
    replay_id = page.url.rsplit("/", 1)[1]
    assert replay_id != run_id
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    with web_stack.open_store() as store:
        replayed = read_job_run(store, replay_id)
    assert replayed is not None and replayed.parent_run_id == run_id
    assert all(s.reused_from_run_id == run_id for t in replayed.tasks for s in t.steps)
    assert dialogs == []


def test_a_running_run_is_cancelled_from_its_page(
    page: Page, web_stack: WebStack, tmp_path: pathlib.Path
) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    run_id = submit(web_stack, gated_job(first, second))
    page.goto(f"/runs/{run_id}")
    expect(node(page, "open")).to_have_class(status("running"), timeout=LIVE_TIMEOUT_MS)
    try:
        page.get_by_role("button", name="Cancel run").click()
        expect(page.locator("#action-result")).to_contain_text("Cancelled: open")
        expect(page.locator("#run-status")).to_have_text("cancelled")
        expect(node(page, "open")).to_have_class(status("cancelled"))
        expect(page.locator("#run-header .notice.error")).to_contain_text("cancelled by user")
        expect(page.get_by_role("button", name="Resume")).to_be_visible()
        expect(page.get_by_role("button", name="Cancel run")).to_be_hidden()
    finally:
        # The task's step in flight ends (and is kept); no further task starts.
        first.write_text("released")


def test_a_large_run_draws_its_tasks_when_scrolled_to(page: Page, web_stack: WebStack) -> None:
    if web_stack.backend != "sqlite":
        pytest.skip("drawing is the browser's: one store is enough")
    size = LARGE_RUN_TASKS + 1
    run_id = submit(web_stack, fan_out_job(size))
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#graph-box g.graph-node")).to_have_count(size)
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    page.locator("#task-list").scroll_into_view_if_needed()
    rows = page.locator("#tasks tbody tr")
    expect(rows).to_have_count(size)
    expect(page.locator("#run-timeline g.timeline-row")).to_have_count(size)
    expect(page.locator("#tasks tr[data-task-id='end'] .badge")).to_have_text("succeeded")
    page.locator("#tasks a.task-link[data-task-id='end']").click()
    # The details are fetched from the store: allow for a loaded machine (CI on every core).
    expect(page.locator("#task-details h2")).to_contain_text("end", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#tasks tr[data-task-id='end']")).to_have_class(re.compile("selected"))
