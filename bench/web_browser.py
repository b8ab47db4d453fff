"""What `bench.web_ui` measures in Chromium: page loads, a click on a graph node, live updates.

Debian's Chromium (``/usr/bin/chromium``), headless, driven by Playwright with the flags the
browser tests use, a new profile per launch. Times are taken in the page, by scripts added before
any of the page's own (`BrowserContext.add_init_script`: the page's CSP does not apply to them),
as `performance.now()` from the navigation's start, so Playwright's round trips are not counted.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from llm_scheduler.engine.context import EngineEvent, EventKind
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.events import event_to_record, events_collection
from llm_scheduler.store import Store
from llm_scheduler.testing.chromium import CHROMIUM, chromium_args, missing_chromium_message

__all__ = [
    "CHROMIUM",
    "EventWriter",
    "chromium",
    "chromium_args",
    "live_latency",
    "run_list_load",
    "run_page_interactive",
]

VIEWPORT = {"width": 1400, "height": 900}
# The longest a page may take to reach a mark; far above any target, it only stops a stuck run.
_TIMEOUT_MS = 60_000
# The pause between two page loads.
_SETTLE_SECONDS = 0.5

# Marks of a page load: DOMContentLoaded (the run list's rows in the DOM by then), and the end of
# the first frame after it (the table painted). `setTimeout` inside `requestAnimationFrame` runs
# after that frame's style, layout and paint.
_LIST_SCRIPT = """
(() => {
  const marks = window.__bench = {};
  document.addEventListener("DOMContentLoaded", () => {
    marks.dcl = performance.now();
    marks.rows = document.querySelectorAll("#runs tbody tr").length;
    requestAnimationFrame(() => setTimeout(() => { marks.usable = performance.now(); }, 0));
  });
})();
"""

# The run page: once run.js has wired the page (its DOMContentLoaded handler, which runs after
# this one: hence the `setTimeout`), count the graph's nodes and click one as a user would (the
# event bubbles to the graph's box, where run.js listens); the page is interactive when the
# details panel shows that task (run.js fetches it) and the frame after it is painted.
_RUN_SCRIPT = """
(() => {
  const task = %(task)s;
  const marks = window.__bench = {};
  document.addEventListener("DOMContentLoaded", () => {
    marks.dcl = performance.now();
    setTimeout(() => {
      marks.wired = performance.now();
      marks.nodes = document.querySelectorAll("#graph-box g.graph-node").length;
      const node = document.querySelector(
        '#graph-box g.graph-node[data-task-id="' + CSS.escape(task) + '"]');
      const panel = document.getElementById("task-details");
      if (!node || !panel) {
        marks.error = "no graph node " + task + " or no details panel";
        return;
      }
      const observer = new MutationObserver(() => {
        if (panel.dataset.taskId !== task || marks.details !== undefined) return;
        marks.details = performance.now();
        observer.disconnect();
        requestAnimationFrame(() => setTimeout(() => {
          marks.interactive = performance.now();
        }, 0));
      });
      observer.observe(panel, { attributes: true, childList: true, subtree: true });
      node.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
    }, 0);
  });
})();
"""

# Live updates: the wall-clock time (ms since the epoch, the clock `time.time()` reads) at which
# each graph node first gets the class status-running (run.js on a task_started event).
_LIVE_SCRIPT = """
(() => {
  const seen = window.__live = {};
  new MutationObserver((mutations) => {
    const now = performance.timeOrigin + performance.now();
    for (const mutation of mutations) {
      const node = mutation.target;
      if (!node.classList || !node.classList.contains("graph-node")) continue;
      if (!node.classList.contains("status-running")) continue;
      const task = node.getAttribute("data-task-id");
      if (task !== null && !(task in seen)) seen[task] = now;
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["class"] });
})();
"""


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, with a new empty profile (Playwright makes one per launch).

    Raises:
        FileNotFoundError: /usr/bin/chromium is missing (``make browser`` installs it).
    """
    if not CHROMIUM.exists():
        raise FileNotFoundError(missing_chromium_message())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=chromium_args()
        )
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def _context(browser: Browser, script: str) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(_TIMEOUT_MS)
    context.add_init_script(script)
    try:
        yield context
    finally:
        context.close()


def _marks(page: Page, url: str, last: str) -> dict[str, Any]:
    """Loads ``url`` in ``page`` and returns its marks once ``last`` is set (or an error)."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(
        "(last) => window.__bench && (window.__bench[last] !== undefined"
        " || window.__bench.error !== undefined)",
        arg=last,
        polling=10,
    )
    marks: dict[str, Any] = page.evaluate("() => window.__bench")
    if "error" in marks:
        raise RuntimeError(f"{url}: {marks['error']}")
    return marks


def _loads(
    browser: Browser, script: str, url: str, navigations: int, last: str
) -> list[dict[str, Any]]:
    """The marks of ``navigations`` loads of ``url``, each in a new tab, after one warm-up load
    (the static files are then in the cache, as on a user's second page)."""
    found = []
    with _context(browser, script) as context:
        for index in range(navigations + 1):
            # Chromium tears the last tab down in the background: let it finish, on 2 cores.
            time.sleep(_SETTLE_SECONDS if index else 0)
            page = context.new_page()
            try:
                marks = _marks(page, url, last)
            finally:
                page.close()
            if index:
                found.append(marks)
    return found


def run_list_load(
    browser: Browser, url: str, navigations: int, rows: int
) -> dict[str, list[float]]:
    """Milliseconds from navigation start to DOMContentLoaded (``dcl``) and to the first frame
    painted after it (``usable``), for each load of the run list at ``url``.

    Raises:
        RuntimeError: A load did not show ``rows`` runs.
    """
    loads = _loads(browser, _LIST_SCRIPT, url, navigations, "usable")
    for marks in loads:
        if marks["rows"] != rows:
            raise RuntimeError(f"{url} showed {marks['rows']} runs, not {rows}")
    return {key: [marks[key] for marks in loads] for key in ("dcl", "usable")}


def run_page_interactive(
    browser: Browser, url: str, navigations: int, task_id: str, tasks: int
) -> dict[str, list[float]]:
    """Milliseconds from navigation start to DOMContentLoaded (``dcl``), to the click on
    ``task_id``'s graph node once run.js is wired (``wired``), to its details in the panel
    (``details``) and to the frame painted after them (``interactive``), for each load.

    Raises:
        RuntimeError: A load did not draw ``tasks`` graph nodes, or the click showed nothing.
    """
    script = _RUN_SCRIPT % {"task": json.dumps(task_id)}
    loads = _loads(browser, script, url, navigations, "interactive")
    for marks in loads:
        if marks["nodes"] != tasks:
            raise RuntimeError(f"{url} drew {marks['nodes']} graph nodes, not {tasks}")
    return {
        key: [marks[key] for marks in loads] for key in ("dcl", "wired", "details", "interactive")
    }


class EventWriter:
    """Writes a run's progress events as a worker's event writer does.

    The same documents, ids and call (`Store.create_all`, one commit) as
    `llm_scheduler.execution.events`, but written at once instead of after the writer's 50 ms
    batching wait, so that the commit's time is known.
    """

    def __init__(self, store: Store, run_id: str, worker_id: str = "bench-web-ui") -> None:
        """Writes into ``store`` the events of ``run_id``, as worker ``worker_id``."""
        self.store = store
        self.run_id = run_id
        self.worker_id = worker_id
        self._sequence = itertools.count()

    def task_started(self, task_id: str) -> float:
        """Writes a task_started event; returns `time.time()` right after its commit."""
        event = EngineEvent(EventKind.TASK_STARTED, task_id=task_id, run_id=self.run_id)
        record = event_to_record(event, self.worker_id)
        event_id = f"{record.time.ToNanoseconds():020d}-{self.worker_id}-{next(self._sequence):06d}"
        path = f"{events_collection(self.run_id)}/{event_id}"
        self.store.create_all([(path, docs.record_to_doc(record))])
        return time.time()


def _seen(page: Page, task_id: str) -> float:
    """The page's wall-clock time (ms) at which ``task_id``'s node turned running."""
    page.wait_for_function(
        "(task) => window.__live[task] !== undefined", arg=task_id, polling=10, timeout=10_000
    )
    seen: float = page.evaluate("(task) => window.__live[task]", task_id)
    return seen


def _clock_offset_ms(page: Page, tries: int = 10) -> float:
    """The page's clock minus Python's, from the read with the shortest round trip."""
    reads = []
    for _ in range(tries):
        before = time.time()
        page_now: float = page.evaluate("() => performance.timeOrigin + performance.now()")
        after = time.time()
        reads.append((after - before, page_now - (before + after) / 2 * 1000))
    return min(reads)[1]


def live_latency(
    browser: Browser,
    url: str,
    writer: EventWriter,
    warm_up_task: str,
    tasks: Sequence[str],
    seed: int = 11,
) -> dict[str, Any]:
    """Milliseconds from each task_started event's commit to its graph node turning running.

    Opens the run page at ``url`` (a run whose tasks are pending, so the page follows it), writes
    one event for ``warm_up_task`` and waits until the page shows it (the stream is then open),
    then one event per task of ``tasks``, each after a random pause of 50 to 350 ms so that the
    commits fall anywhere in the server's poll cycle.

    Returns:
        ``latencies_ms`` (one per task) and ``clock_offset_ms``: the page's clock minus
        Python's (about 0: both read the machine's clock; a check, not a correction).
    """
    pause = random.Random(seed)
    with _context(browser, _LIVE_SCRIPT) as context:
        page = context.new_page()
        page.goto(url, wait_until="domcontentloaded")
        offset = _clock_offset_ms(page)
        writer.task_started(warm_up_task)
        _seen(page, warm_up_task)
        latencies = []
        for task_id in tasks:
            time.sleep(pause.uniform(0.05, 0.35))
            committed = writer.task_started(task_id)
            latencies.append(_seen(page, task_id) - committed * 1000)
        page.close()
    return {"latencies_ms": latencies, "clock_offset_ms": offset}
