"""Journeys: fix a job in the editor, run it, watch it finish live, edit a step, see what the
replay will re-run, replay, and compare the outputs side by side."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from llm_scheduler.execution import documents as docs
from tests.conftest import REPO_ROOT
from tests.web.browser.conftest import WebStack, screenshot

SAMPLE = (REPO_ROOT / "examples/sample_job_config.json").read_text()
MODEL_KEY_PATH = "tasks[0].steps[0].model_query_config.model_key"


def test_fix_run_watch_edit_preview_replay_and_compare(page: Page, web_stack: WebStack) -> None:
    config = web_stack.configs_dir / "poem_typo.json"
    config.write_text(SAMPLE.replace('"GEMINI_FLASH"', '"GEMINI_FLASSH"', 1))

    # The jobs page lists the file; its link opens the editor.
    page.goto("/jobs")
    page.get_by_role("link", name="poem").first.click()
    expect(page).to_have_url(re.compile(r"/jobs/edit\?file="))

    # The problem shows at its field path, with the validator's message and hint.
    problems = page.locator("#problems li")
    expect(problems).to_have_count(1)
    expect(problems.locator(".problem-path")).to_have_text(MODEL_KEY_PATH)
    expect(problems).to_contain_text("unknown model key 'GEMINI_FLASSH'")
    expect(problems.locator(".problem-hint")).to_contain_text("GEMINI_FLASH")
    # The config parses, so the graph is drawn all the same.
    nodes = page.locator("#graph-preview g.graph-node")
    expect(nodes).to_have_count(3)
    if web_stack.backend == "sqlite":
        screenshot(page, "editor")

    # Typing a fix: checked again as you type (debounced), the problem goes away.
    editor = page.get_by_role("textbox", name="Config")
    text = editor.input_value()
    editor.fill(text.replace("GEMINI_FLASSH", "GEMINI_FLASH"))
    expect(problems).to_have_count(0)
    expect(page.locator("#editor-status")).to_contain_text("Valid job poem: 3 tasks")
    expect(nodes).to_have_count(3)
    for task_id in ("draft", "review", "revise"):
        expect(
            page.locator(f'#graph-preview g.graph-node[data-task-id="{task_id}"]')
        ).to_be_visible()

    # Break it again (a syntax error): the graph stays, the problem is the parse error.
    editor.press("Control+End")
    editor.press_sequentially(",")
    expect(problems).to_have_count(1)
    expect(problems).to_contain_text("invalid JSON")
    expect(nodes).to_have_count(3)
    editor.press("Backspace")
    expect(problems).to_have_count(0)

    # Run: a form from the job's input variables, with their defaults.
    page.get_by_role("button", name="Run…").click()
    topic = page.get_by_label("topic")
    expect(topic).to_have_value("the sea")
    topic.fill("owls at night")
    expect(page.get_by_label("Offline model")).to_be_checked()
    page.get_by_role("button", name="Start run").click()

    # The run's page, served by the web UI; the separate dispatcher runs it.
    expect(page).to_have_url(re.compile(r"/runs/poem-[\w-]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    with web_stack.open_store() as store:
        doc = store.get(docs.job_run_path(run_id))
        assert doc is not None
        assert doc["inputs"]["topic"] == "owls at night"
        assert doc.get("offline") is True
    # Live: the header and every node turn succeeded without a reload.
    expect(page.locator("#run-status")).to_have_class(
        re.compile("status-succeeded"), timeout=60_000
    )
    for task_id in ("draft", "review", "revise"):
        node = page.locator(f'g.graph-node[data-task-id="{task_id}"]')
        expect(node).to_have_class(re.compile("status-succeeded"))
    _wait_for_run(web_stack, run_id)

    # Open a step: its rendered prompt and response.
    page.locator('#run-graph g.graph-node[data-task-id="draft"]').click()
    details = page.locator("#task-details")
    expect(details.locator(".step-prompt").first).to_contain_text(
        "Write a four-line poem about owls at night."
    )
    recorded = details.locator(".step-response").first.inner_text()
    assert recorded.strip()

    # What if the draft had been different? Edit its response and see the plan before paying.
    task_loads: list[str] = []
    page.on(
        "request",
        lambda request: (
            task_loads.append(request.url) if "/what-if/tasks/" in request.url else None
        ),
    )
    page.get_by_role("link", name="What if…").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/what-if$"))
    expect(page.locator("#plan-summary")).to_contain_text("4 of 4 steps reused, 0 run")
    # The page opens on the first task (the draft); clicking it again keeps its editor, so what
    # is typed next cannot land in an editor about to be replaced.
    page.locator('#what-if-graph g.graph-node[data-task-id="draft"]').click()
    response = page.get_by_label("Response", exact=True)
    expect(response).to_have_value(recorded)
    edited = "Owls <b>glide</b> at night,\nsilent and bright."
    response.fill(edited)
    expect(page.locator("#edit-count")).to_have_text("1 edit")
    assert [url.rsplit("/", 1)[1] for url in task_loads] == ["draft.json"]
    summary = page.locator("#plan-summary")
    expect(summary).to_contain_text("1 of 4 steps reused, 3 run (2 model calls)")
    rows = page.locator("#plan-table tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_have_attribute("data-action", "reuse")
    expect(rows.nth(1)).to_have_attribute("data-action", "run")
    expect(rows.nth(1)).to_contain_text("user prompt changed")
    expect(rows.nth(2)).to_contain_text("a step before it recomputes")
    expect(page.locator('#what-if-graph g.graph-node[data-task-id="review"]')).to_have_class(
        re.compile("plan-run")
    )
    if web_stack.backend == "sqlite":
        screenshot(page, "what_if")

    # A function step's response is edited as JSON (what the function returned).
    page.locator('#what-if-graph g.graph-node[data-task-id="revise"]').click()
    expect(page.get_by_label("Response (JSON: what the function returned)")).to_be_visible()
    expect(page.locator("#edit-count")).to_have_text("1 edit")  # the draft's edit is kept

    # Replay: a new run linked to this one, run by the separate dispatcher, live to succeeded.
    page.get_by_role("button", name="Replay").click()
    expect(page).to_have_url(re.compile(r"/runs/poem-[\w-]+$"))
    replay_id = page.url.rsplit("/", 1)[1]
    assert replay_id != run_id
    expect(page.locator("#run-status")).to_have_class(
        re.compile("status-succeeded"), timeout=60_000
    )
    with web_stack.open_store() as store:
        doc = store.get(docs.job_run_path(replay_id))
    assert doc is not None and doc["parent_run_id"] == run_id

    # Side by side: the edited draft, and the outputs it changed downstream.
    page.get_by_role("link", name="Compare with parent").click()
    expect(page).to_have_url(re.compile(rf"/runs/{replay_id}/compare$"))
    expect(page.locator("#changed-count")).to_have_text("3")
    draft = page.locator('#compare-table tr.compare-task[data-task-id="draft"]')
    expect(draft.locator("pre.after")).to_contain_text("Owls <b>glide</b> at night")
    expect(draft.locator("pre.before")).not_to_contain_text("glide")
    assert page.locator("#compare-table b").count() == 0  # the model's markup is text
    if web_stack.backend == "sqlite":
        screenshot(page, "compare")


def _wait_for_run(web_stack: WebStack, run_id: str) -> None:
    """The run is SUCCEEDED in the store too (the page may be ahead of a slow read)."""
    with web_stack.open_store() as store:
        for _ in range(300):
            doc = store.get(docs.job_run_path(run_id))
            if doc and doc["status"] in docs.FINISHED:
                break
            time.sleep(0.1)
        assert doc is not None and doc["status"] == docs.Status.SUCCEEDED, doc


def test_write_a_new_job_and_save_it(page: Page, web_stack: WebStack) -> None:
    page.goto("/jobs")
    page.get_by_role("link", name="New job").click()
    expect(page.locator("#editor-status")).to_contain_text("Valid job my_job: 1 task")
    editor = page.get_by_role("textbox", name="Config")
    job_id = f"saved_{web_stack.backend}"
    editor.fill(editor.input_value().replace('"my_job"', f'"{job_id}"'))
    expect(page.locator("#editor-status")).to_contain_text(f"Valid job {job_id}")
    page.get_by_role("button", name="Save to store").click()
    expect(page.locator("#action-result")).to_contain_text(f"Saved as job {job_id}")
    page.goto("/jobs")
    row = page.locator(f'#jobs tr[data-job-id="{job_id}"][data-source="store"]')
    expect(row).to_have_count(1)
    row.get_by_role("link", name=job_id).click()
    expect(page.locator("h1")).to_contain_text("saved in the store")
    expect(page.locator("#problems li")).to_have_count(0)


def test_markup_in_a_config_shows_as_text(page: Page) -> None:
    page.goto("/jobs/edit")
    editor = page.get_by_role("textbox", name="Config")
    attack = "<img src=x onerror=window.__xss=1>"
    editor.fill(editor.input_value().replace("GEMINI_FLASH", attack))
    problem = page.locator("#problems li")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text(f"unknown model key '{attack}'")
    expect(page.locator("#graph-preview")).to_contain_text("draft · <img src=x")
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__xss") is None
