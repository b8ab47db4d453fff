"""A map run in the store, followed live on its run page: its box and its details count its items.

The job maps over a list of 8 topics from its input, two items in flight; each item waits for
its file (``web_test.wait_for_file``), then asks the offline model. The test writes the files,
so it decides when each item finishes, whatever the machine's speed; the stack's dispatcher
runs the items, and the page follows them by its event stream, never reloaded.
"""

from __future__ import annotations

import pathlib
import re

from playwright.sync_api import Page, expect

from llm_scheduler.v1 import config_pb2
from tests.web.browser.conftest import WebStack, screenshot
from tests.web.browser.test_journey_runs import LIVE_TIMEOUT_MS, node, status, submit
from tests.web.runs_support import job_from, model_step

TOPICS = ["tides", "owls", "moss", "kelp", "ferns", "larks", "bees", "cliffs"]


def gated_map_job(folder: pathlib.Path) -> config_pb2.JobConfig:
    """write (a map over the input's topics, each item waiting for its file) -> join."""
    return job_from(
        {
            "job_id": "gated-map",
            "name": "Write about each topic",
            "input_config": {"payload": {"topics": TOPICS}},
            "tasks": [
                {
                    "task_id": "write",
                    "name": "Write each",
                    "for_each": {
                        "items": "%topics%",
                        "item_variable": "topic",
                        "max_in_flight": 2,
                    },
                    "steps": [
                        {
                            "id": "wait",
                            "name": "wait for the item's file",
                            "step_type": "STEP_TYPE_FUNCTION_CALL",
                            "function_call_config": {
                                "function_name": "web_test.wait_for_file",
                                "request": {"path": f"{folder}/item-%index%.txt"},
                            },
                            "output_config": {"payload": {"note": "%response%"}},
                        },
                        model_step("draft", "Write about %topic% (%note%).", "text"),
                    ],
                    "next_task": "join",
                },
                {"task_id": "join", "steps": [model_step("join", "Join: %text%", "final")]},
            ],
        }
    )


def release(folder: pathlib.Path, *indexes: int) -> None:
    """Lets these items finish: their files appear."""
    for index in indexes:
        (folder / f"item-{index}.txt").write_text(f"note {index}")


def test_a_stored_map_run_shows_its_items_live(
    page: Page, web_stack: WebStack, tmp_path: pathlib.Path
) -> None:
    run_id = submit(web_stack, gated_map_job(tmp_path))
    page.goto(f"/runs/{run_id}")
    page.evaluate("window.notReloaded = true")
    write = node(page, "write")
    items_label = write.locator("text.graph-items")
    expect(write).to_have_class(re.compile(r"\bis-map\b"))
    expect(write.locator("text.graph-map")).to_have_text("for each topic in %topics%")
    # Two items in flight, the map waiting for them.
    expect(items_label).to_have_text("0/8 items · 2 running", timeout=LIVE_TIMEOUT_MS)
    expect(write).to_have_class(status("waiting"))
    expect(node(page, "join")).to_have_class(status("pending"))
    expect(page.locator("#tasks tr[data-task-id='write'] .badge")).to_have_text("waiting")

    # The details list the 8 items with their statuses, and follow them live.
    write.click()
    panel = page.locator("#task-details")
    items = panel.locator("details.map-item")
    badges = items.locator("summary.map-item-row .badge")
    expect(items).to_have_count(len(TOPICS))
    expect(badges).to_have_text(["running"] * 2 + ["pending"] * 6)
    release(tmp_path, 0)
    expect(items_label).to_have_text("1/8 items · 2 running", timeout=LIVE_TIMEOUT_MS)
    expect(badges).to_have_text(["succeeded"] + ["running"] * 2 + ["pending"] * 5)
    release(tmp_path, 1, 2)
    expect(items_label).to_have_text("3/8 items · 2 running", timeout=LIVE_TIMEOUT_MS)
    expect(badges).to_have_text(["succeeded"] * 3 + ["running"] * 2 + ["pending"] * 3)
    expect(panel.locator(".items-label")).to_have_text("3/8 items · 2 running")
    if web_stack.backend == "sqlite":
        page.locator(".run-layout").evaluate("layout => layout.scrollIntoView()")
        panel.evaluate(
            "p => { p.scrollTop = p.querySelector('.map-items-count').offsetTop - 120; }"
        )
        screenshot(page, "map_run_live")

    # An item finished opens to its steps, fetched from the store.
    third = panel.locator('details.map-item[data-item-index="2"]')
    with page.expect_response(re.compile(r"/tasks/write/items/2\.json$")) as fetched:
        third.locator("summary.map-item-row").click()
    assert fetched.value.ok
    expect(third.locator("details.step")).to_have_count(2)
    expect(third.locator(".step-response").first).to_contain_text("note 2")
    expect(third.locator(".step-prompt").last).to_have_text("Write about moss (note 2).")
    expect(third).to_contain_text("write~000002")

    release(tmp_path, *range(3, len(TOPICS)))
    expect(items_label).to_have_text("8/8 items", timeout=LIVE_TIMEOUT_MS)
    expect(write).to_have_class(status("succeeded"), timeout=LIVE_TIMEOUT_MS)
    expect(node(page, "join")).to_have_class(status("succeeded"), timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    expect(badges).to_have_text(["succeeded"] * len(TOPICS))
    expect(write).not_to_have_class(status("waiting"))
    expect(page.locator("#tasks tr[data-task-id='write'] .badge")).to_have_text("succeeded")
    # The item opened stays open across the live redraws, its steps fetched again.
    expect(third.locator("details.step")).to_have_count(2)
    expect(page.locator("#tasks tr[data-task-id='write'] .items-label")).to_have_text("8/8 items")
    assert page.evaluate("window.notReloaded") is True
