"""A map run in the browser: its box counts its items, its details list them, each opens.

The run is made in process (offline) and opened in the trace viewer, which draws a run exactly
as the run page does (test_journey_map_live follows a map run in a store). The trace viewer
reads no store, so one backend is enough.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.browser.conftest import screenshot
from tests.web.map_support import FAILED_ITEM, SECTIONS, map_trace


@pytest.mark.parametrize("web_stack", ["sqlite"], indirect=True)
def test_a_map_run_shows_its_item_count_and_each_items_status(
    page: Page, tmp_path: pathlib.Path
) -> None:
    trace = tmp_path / "map-trace.json"
    trace.write_text(json.dumps(map_trace()), encoding="utf-8")
    page.goto("/traces/view")
    page.get_by_label("Trace file").set_input_files(trace)

    # The graph: the map's box is a stack, says what it maps over, and counts its items.
    node = page.locator('#graph-box g.graph-node[data-task-id="write"]')
    expect(node).to_have_class(re.compile(r"\bis-map\b"))
    expect(node).to_have_class(re.compile(r"\bstatus-failed\b"))
    expect(node.locator("rect.graph-stack")).to_have_count(1)
    expect(node.locator("text.graph-map")).to_have_text("for each section in %sections%")
    expect(node.locator("text.graph-items")).to_have_text("8/12 items · 1 failed · 3 skipped")
    expect(node.locator("rect.graph-bar.status-succeeded")).to_have_count(1)
    expect(node.locator("rect.graph-bar.status-failed")).to_have_count(1)
    other = page.locator('#graph-box g.graph-node[data-task-id="plan"]')
    expect(other.locator("rect.graph-stack")).to_have_count(0)
    # The task table says the same in its Steps column.
    row = page.locator('#tasks tr[data-task-id="write"]')
    expect(row.locator(".items-label")).to_have_text("8/12 items · 1 failed · 3 skipped")

    # The details: one row per item, with its status; an item opens to its steps.
    node.click()
    panel = page.locator("#task-details")
    expect(panel.locator(".items-label")).to_have_text("8/12 items · 1 failed · 3 skipped")
    items = panel.locator("details.map-item")
    expect(items).to_have_count(len(SECTIONS))
    expected = ["succeeded"] * FAILED_ITEM + ["failed"] + ["skipped"] * 3
    expect(items.locator("summary .badge")).to_have_text(expected)
    failed = panel.locator(f'details.map-item[data-item-index="{FAILED_ITEM}"]')
    expect(failed.locator(".map-item-error")).to_contain_text("no JSON found in the text")
    first = panel.locator('details.map-item[data-item-index="0"]')
    expect(first.locator("details.step")).to_have_count(0)  # drawn when opened
    first.locator("summary.map-item-row").click()
    expect(first.locator("details.step")).to_have_count(2)
    expect(first.locator(".step-response").last).to_contain_text("Write section 0 about tides.")
    first.locator("summary.map-item-row").click()
    expect(first.locator("details.step").first).to_be_hidden()
    failed.locator("summary.map-item-row").click()
    expect(failed.locator(".notice.error").first).to_contain_text("json_parse")
    expect(failed.locator("details.step .badge").first).to_have_text("failed")
    # The picture: the graph at the top, the panel scrolled to the map's items.
    page.locator(".run-layout").evaluate("layout => layout.scrollIntoView()")
    panel.evaluate("p => { p.scrollTop = p.querySelector('.map-items-count').offsetTop - 120; }")
    screenshot(page, "map_run")


@pytest.mark.parametrize("web_stack", ["sqlite"], indirect=True)
def test_a_large_maps_items_are_drawn_a_chunk_at_a_time(page: Page, tmp_path: pathlib.Path) -> None:
    sections = [json.dumps(f"part {i}") for i in range(120)]
    trace = tmp_path / "large-map-trace.json"
    trace.write_text(json.dumps(map_trace(sections)), encoding="utf-8")
    page.goto("/traces/view")
    page.get_by_label("Trace file").set_input_files(trace)
    node = page.locator('#graph-box g.graph-node[data-task-id="write"]')
    expect(node.locator("text.graph-items")).to_have_text("120/120 items")
    node.click()
    panel = page.locator("#task-details")
    items = panel.locator("details.map-item")
    expect(items).to_have_count(50)
    expect(panel.locator(".map-items-count")).to_have_text(
        "Showing 50 of 120 items; open one to see its steps."
    )
    more = panel.get_by_role("button", name="Show more items")
    more.click()
    expect(items).to_have_count(100)
    more.click()
    expect(items).to_have_count(120)
    expect(more).to_be_hidden()
    last = panel.locator('details.map-item[data-item-index="119"]')
    last.locator("summary.map-item-row").click()
    expect(last.locator(".step-response").last).to_contain_text("about part 119.")
