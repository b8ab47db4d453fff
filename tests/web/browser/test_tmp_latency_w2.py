import pathlib, time
from playwright.sync_api import Page, expect
from tests.web.browser.conftest import WebStack
from tests.web.browser.test_journey_runs import gated_job, submit, node, status

def test_latency(page: Page, web_stack: WebStack, tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    run_id = submit(web_stack, gated_job(first, second))
    page.goto(f"/runs/{run_id}")
    expect(node(page, "open")).to_have_class(status("running"), timeout=60000)
    page.evaluate("""() => { window.changed = null; const n = document.querySelector('#graph-box g.graph-node[data-task-id="open"]');
      new MutationObserver(() => { if (n.classList.contains('status-succeeded') && !window.changed) window.changed = Date.now(); }).observe(n, {attributes: true}); }""")
    t0 = time.time()
    first.write_text("x")
    expect(node(page, "open")).to_have_class(status("succeeded"), timeout=60000)
    changed = page.evaluate("window.changed")
    with web_stack.open_store() as store:
        from llm_scheduler.execution.events import read_events
        evs = [e for _, e in read_events(store, run_id) if e.kind == "task_finished" and e.task_id == "open"]
    ev_t = evs[0].time.seconds + evs[0].time.nanos / 1e9
    print(f"\nfile->page {changed/1000 - t0:.3f}s  event->page {changed/1000 - ev_t:.3f}s")
    second.write_text("y")
