"""A map over a sub-job step, run in the store: an item's step links its child run, and back.

The job of `sub_job_support` (as the sample ``sample_sub_job_config.json``: a map whose step
runs a child job per item) runs on the stack's dispatcher; the run page's graph marks the
sub-job, the map's items open to their sub-job step, whose child run link opens the child's
page, which names its caller with a link back. SQLite only: the pages read the same JSON on
both backends, which the in-process tests check on each.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.browser.conftest import WebStack, screenshot
from tests.web.browser.test_journey_runs import LIVE_TIMEOUT_MS, node, status, submit
from tests.web.sub_job_support import SECTIONS, sub_job_job


@pytest.mark.parametrize("web_stack", ["sqlite"], indirect=True)
def test_a_map_items_sub_job_step_links_its_child_run_and_back(
    page: Page, web_stack: WebStack
) -> None:
    run_id = submit(web_stack, sub_job_job())
    child_id = f"{run_id}~write~000001~0"
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    write = node(page, "write")
    expect(write).to_have_class(status("succeeded"))
    expect(write.locator("text.graph-badge")).to_have_text("sub-job")
    expect(write.locator("text.graph-subjob")).to_have_text("↳ draft → polish")
    expect(write.locator("text.graph-items")).to_have_text(f"{len(SECTIONS)}/{len(SECTIONS)} items")

    # The map's details list its items; an item opens to its sub-job step and its child run.
    write.click()
    panel = page.locator("#task-details")
    items = panel.locator("details.map-item")
    expect(items).to_have_count(len(SECTIONS))
    second = panel.locator('details.map-item[data-item-index="1"]')
    second.locator("summary.map-item-row").click()
    link = second.locator("a.child-run-link")
    expect(link).to_have_text(child_id)
    expect(link).to_have_attribute("href", f"/runs/{child_id}")
    expect(second.locator(".child-run .badge")).to_have_text("succeeded")
    expect(second.locator("dl.sub-job")).to_contain_text("section_writer")
    page.locator(".run-layout").evaluate("layout => layout.scrollIntoView()")
    panel.evaluate(
        "p => { p.scrollTop = p.querySelector('details.map-item[open]').offsetTop - 60; }"
    )
    screenshot(page, "sub_job_run")

    # The child's page: its own graph (draft -> polish), and who called it, with links back.
    link.click()
    expect(page).to_have_url(re.compile(re.escape(f"/runs/{child_id}") + "$"))
    expect(page.locator("#run-id")).to_have_text(child_id)
    expect(node(page, "draft")).to_have_class(status("succeeded"))
    expect(node(page, "polish")).to_have_class(status("succeeded"))
    caller = page.locator("#run-caller")
    expect(caller).to_contain_text(f"run {run_id}")
    expect(caller.locator("a").nth(1)).to_have_text("write[1]")
    expect(caller.locator("a").nth(1)).to_have_attribute(
        "href", f"/runs/{run_id}/tasks/write/items/1"
    )
    caller.locator("a").first.click()
    expect(page).to_have_url(re.compile(re.escape(f"/runs/{run_id}") + "$"))
    expect(page.locator("#run-id")).to_have_text(run_id)

    # The run list shows the child runs, each marked as a child of its caller.
    page.goto("/runs")
    row = page.locator(f'#runs tr[data-run-id="{child_id}"]')
    expect(row.locator(".child-of")).to_contain_text(f"child of {run_id}")
