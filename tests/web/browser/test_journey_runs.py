"""Journeys on the run page: follow a run live, read a step, see hostile answers as text, resume.

Runs are submitted to the stack's store from the test and executed by its separate dispatcher
process. Tasks that call ``web_test.wait_for_file`` run until the test writes their file, so the
test decides when each task finishes, whatever the machine's speed.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

from playwright.sync_api import Dialog, Page, expect

from llm_scheduler.execution.submit import submit_job
from llm_scheduler.v1 import config_pb2
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


def test_hostile_answers_show_as_text(page: Page, web_stack: WebStack) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
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
