"""A map run for the web UI's tests: run in process with the offline model, kept as a trace.

The pages see it through the trace viewer (and the run page's view functions, which only
reshape a record); test_map_runs_stored runs the same job in a store.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llm_scheduler import RunContext, run_job
from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator
from llm_scheduler.models.client import ModelClient
from llm_scheduler.trace import to_trace
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import run_closing
from tests.web.runs_support import job_from

# Item 8 is not JSON, so its first step fails; one item runs at a time, so the three after it
# never start (skipped): 8 succeeded, 1 failed, 3 skipped.
TOPICS = ["tides", "owls", "moss", "kelp", "ferns", "larks", "bees", "cliffs"]
SECTIONS = [json.dumps(topic) for topic in TOPICS] + ["not json", '"dunes"', '"reefs"', '"hail"']
FAILED_ITEM = 8


def map_job(sections: list[str] | None = None) -> config_pb2.JobConfig:
    """plan (parses the list of sections) -> write (a map over it) -> join."""
    listed = SECTIONS if sections is None else sections
    return job_from(
        {
            "job_id": "sections",
            "name": "Write the sections",
            "input_config": {"payload": {"plan_text": json.dumps(listed)}},
            "tasks": [
                {
                    "task_id": "plan",
                    "name": "Plan",
                    "steps": [_parse("list", "%plan_text%", "sections")],
                    "next_task": "write",
                },
                {
                    "task_id": "write",
                    "name": "Write each section",
                    "for_each": {
                        "items": "%sections%",
                        "item_variable": "section",
                        "max_in_flight": 1,
                    },
                    "steps": [
                        _parse("topic", "%section%", "topic"),
                        {
                            "id": "draft",
                            "name": "draft",
                            "model_query_config": {
                                "model_key": "offline:echo",
                                "user_prompt": "Write section %index% about %topic%.",
                            },
                            "output_config": {"payload": {"text": ""}},
                        },
                    ],
                    "next_task": "join",
                },
                {
                    "task_id": "join",
                    "name": "Join",
                    "steps": [
                        {
                            "id": "join",
                            "model_query_config": {
                                "model_key": "offline:echo",
                                "user_prompt": "Join: %text%",
                            },
                            "output_config": {"payload": {"final": ""}},
                        }
                    ],
                },
            ],
        }
    )


def _parse(step_id: str, request: str, output: str) -> dict[str, Any]:
    return {
        "id": step_id,
        "name": f"parse {step_id}",
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "json_parse", "request": request},
        "output_config": {"payload": {output: "%response%"}},
    }


def map_run(sections: list[str] | None = None) -> run_pb2.JobRun:
    """The map job run in process, offline.

    In a thread of its own: a browser test's thread already runs Playwright's event loop.
    """
    job = map_job(sections)
    Validator().check_job(job)
    context = RunContext(models=ModelClient(offline=True))
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run_closing, context, run_job(job, context)).result()


def map_trace(sections: list[str] | None = None) -> dict[str, Any]:
    """The map run as a trace file's JSON object."""
    text = formats.dumps(to_trace(map_run(sections)), formats.ConfigFormat.JSON)
    trace: dict[str, Any] = json.loads(text)
    return trace
