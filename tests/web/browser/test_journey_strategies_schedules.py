"""A strategy's variations compared on its run page; a schedule added, paused and resumed.

The strategy job (three offline models × two prompts) runs on the stack's dispatcher; the
schedules page adds a schedule of a job file of the configs folder (a problem first shown at its
field), lists its next fire times, then pauses and resumes it. Nothing here waits on the clock:
the schedule's first slot is hours away.
"""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from llm_scheduler.config import formats
from tests.web.browser.conftest import WebStack, screenshot
from tests.web.browser.test_journey_runs import LIVE_TIMEOUT_MS, node, status, submit
from tests.web.test_schedules_pages import SAVED_JOB
from tests.web.test_strategy_pages import LONG_TEXT, MODELS, long_strategy_job

VARIATIONS = [f"rewrite[model={m},prompt={p}]" for m in MODELS for p in ("concise", "formal")]


def test_a_strategy_compares_its_variations(page: Page, web_stack: WebStack) -> None:
    run_id = submit(web_stack, long_strategy_job())
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    rewrite = node(page, "rewrite")
    expect(rewrite).to_have_class(re.compile(r"\bis-map\b"))
    expect(rewrite).to_have_class(status("succeeded"))
    expect(rewrite.locator("rect.graph-stack")).to_have_count(1)
    expect(rewrite.locator("text.graph-map")).to_have_text("strategy: model × prompt")
    expect(rewrite.locator("text.graph-items")).to_have_text("6/6 variations")
    expect(page.locator('#tasks tr[data-task-id="rewrite"] .items-label')).to_have_text(
        "6/6 variations"
    )

    rewrite.click()
    panel = page.locator("#task-details")
    table = panel.locator("#strategy-variations")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(VARIATIONS))
    expect(rows.locator("td.mono")).to_have_text(VARIATIONS)
    expect(rows.locator(".badge")).to_have_text(["succeeded"] * len(VARIATIONS))
    first = rows.first.locator("details.output-full")
    expect(first.locator("summary")).to_contain_text("…")
    expect(first.locator("pre")).to_be_hidden()
    first.locator("summary").click()
    expect(first.locator("pre")).to_be_visible()
    expect(first.locator("pre")).to_contain_text(LONG_TEXT.strip())
    expect(first.locator("pre")).to_contain_text("[offline alpha")
    # The task's own page: the same table, the width of the page.
    page.goto(f"/runs/{run_id}/tasks/rewrite")
    rows = page.locator("#strategy-variations tbody tr")
    expect(rows).to_have_count(len(VARIATIONS))
    third = rows.nth(2).locator("details.output-full")
    third.locator("summary").click()
    expect(third.locator("pre")).to_contain_text("[offline beta")
    if web_stack.backend == "sqlite":
        page.evaluate("window.scrollTo(0, document.querySelector('h3').offsetTop - 20)")
        screenshot(page, "strategy_compare")


def test_a_schedule_is_added_paused_and_resumed(page: Page, web_stack: WebStack) -> None:
    job_file = web_stack.configs_dir / "scheduled_note.json"
    job_file.write_bytes(formats.dumps(SAVED_JOB, formats.ConfigFormat.JSON))
    page.goto("/schedules")
    form = page.locator("#schedule-form")
    form.locator("#schedule-id").fill("weekday-mornings")
    form.locator("#schedule-job").select_option(f"file:{job_file}")
    form.locator("#schedule-cron").fill("0 6 * * 1-5 *")
    form.locator("#schedule-zone").fill("Europe/Paris")
    form.locator("#schedule-inputs").fill(json.dumps({"note": "hello"}))
    form.locator("#schedule-add").click()
    # A wrong cron is shown at its field, and nothing is added.
    expect(page.locator("#error-cron")).not_to_be_empty()
    expect(page.locator("#error-cron").locator("xpath=..")).to_have_class(re.compile("has-error"))
    expect(page.locator("#schedules")).to_have_count(0)

    form.locator("#schedule-cron").fill("0 6 * * 1-5")
    form.locator("#schedule-add").click()
    row = page.locator('#schedules tr[data-schedule-id="weekday-mornings"]')
    expect(row).to_have_count(1)
    expect(row.locator(".schedule-state")).to_have_text("active")
    times = row.locator("ul.fire-times li")
    expect(times).to_have_count(5)
    expect(times.first).to_contain_text(" 06:00 +0")
    expect(row).to_contain_text("Europe/Paris")
    expect(row).to_contain_text("none yet")

    row.locator('button[data-action="pause"]').click()
    expect(row.locator(".schedule-state")).to_have_text("paused")
    expect(row.locator('button[data-action="resume"]')).to_be_visible()
    with web_stack.open_store() as store:
        from llm_scheduler.execution.schedules import get_schedule

        found = get_schedule(store, "weekday-mornings")
        assert found is not None and found.config.paused
    row.locator('button[data-action="resume"]').click()
    expect(row.locator(".schedule-state")).to_have_text("active")
    expect(row.locator('button[data-action="pause"]')).to_be_visible()
    expect(times).to_have_count(5)
    if web_stack.backend == "sqlite":
        screenshot(page, "schedules")
