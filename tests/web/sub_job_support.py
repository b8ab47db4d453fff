"""A job with sub-job steps for the web UI's tests: one in a task, one in a map (per item).

``intro`` runs the child job (draft -> polish) once; ``write`` maps over the input's sections,
a child run per section; ``join`` joins them. Every model is the offline one.
"""

from __future__ import annotations

from typing import Any

from llm_scheduler.v1 import config_pb2
from tests.web.runs_support import job_from, model_step

SECTIONS = ["tides", "owls", "moss"]

CHILD: dict[str, Any] = {
    "job_id": "section_writer",
    "name": "Draft and polish one section",
    "input_config": {"payload": {"section": ""}},
    "tasks": [
        {
            "task_id": "draft",
            "steps": [model_step("draft", "Draft a paragraph about %section%.", "draft")],
            "next_task": "polish",
        },
        {
            "task_id": "polish",
            "steps": [model_step("polish", "Polish: %draft%", "paragraph")],
        },
    ],
}


def sub_job_step(section: str, output: str = "paragraph") -> dict[str, Any]:
    """A sub-job step running `CHILD` on ``section``, keeping its polished paragraph."""
    return {
        "id": "child",
        "name": "write_section",
        "step_type": "STEP_TYPE_SUB_JOB",
        "sub_job_config": {"job": CHILD, "inputs": {"section": section}},
        "output_config": {"payload": {output: "%response.polish.paragraph%"}},
    }


def sub_job_job(sections: list[str] | None = None, max_in_flight: int = 2) -> config_pb2.JobConfig:
    """intro (a sub-job step) -> write (a map over the sections, a sub-job step each) -> join."""
    return job_from(
        {
            "job_id": "article_by_sub_jobs",
            "name": "An article, a child run per section",
            "input_config": {"payload": {"sections": sections or SECTIONS}},
            "tasks": [
                {
                    "task_id": "intro",
                    "name": "Write the introduction",
                    "steps": [sub_job_step("introduction", "intro")],
                    "next_task": "write",
                },
                {
                    "task_id": "write",
                    "name": "Write each section with the child job",
                    "for_each": {
                        "items": "%sections%",
                        "item_variable": "section",
                        "max_in_flight": max_in_flight,
                    },
                    "steps": [sub_job_step("%section%")],
                    "next_task": "join",
                },
                {
                    "task_id": "join",
                    "steps": [model_step("join", "Join %paragraph%", "article")],
                },
            ],
        }
    )
