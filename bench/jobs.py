"""The workloads as llm-scheduler job configs, and the models file pointing at the fake server.

Prompts match `bench.baseline` character for character.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from llm_scheduler import ConfigFormat, ModelRegistry, Validator, loads
from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.v1 import config_pb2

__all__ = [
    "BENCH_MODEL",
    "HTTP_KEY",
    "MAP_FUNCTION",
    "OFFLINE_KEY",
    "SEED",
    "TOPIC",
    "chain_job",
    "fan_out_job",
    "function_chain_job",
    "hop_chain_job",
    "map_functions",
    "map_items",
    "map_job",
    "registry_for",
    "wide_job",
]

HTTP_KEY = "BENCH"  # the fake server, through the OpenAI adapter
OFFLINE_KEY = "OFFLINE"  # the built-in in-process offline model
BENCH_MODEL = "bench-model"
SEED = "the seed"
TOPIC = "benchmarks"
MAP_FUNCTION = "bench_items"  # W6's first task: the list, made at run time


def _query(model_key: str, prompt: str, outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": model_key, "user_prompt": prompt},
        "output_config": {"payload": outputs},
    }


def _job(
    data: dict[str, Any],
    registry: ModelRegistry,
    functions: FunctionRegistry | None = None,
    *,
    validate: bool = True,
) -> config_pb2.JobConfig:
    job = loads(json.dumps(data), config_pb2.JobConfig, ConfigFormat.JSON)
    if validate:
        Validator(models=registry, functions=functions or default_registry()).check_job(job)
    return job


def chain_job(steps: int, model_key: str, registry: ModelRegistry) -> config_pb2.JobConfig:
    """W1: one task of ``steps`` model steps, each interpolating the previous answer."""
    chain = [
        _query(model_key, f"Step {i}: continue from: %v{i}%", {f"v{i + 1}": ""})
        for i in range(steps)
    ]
    return _job(
        {
            "job_id": "chain",
            "tasks": [{"task_id": "chain", "steps": chain}],
            "input_config": {"payload": {"v0": SEED}},
        },
        registry,
    )


def function_chain_job(steps: int, registry: ModelRegistry) -> config_pb2.JobConfig:
    """W1 with function steps: one task of ``steps`` built-in ``length`` calls, each on a text
    holding the previous result (the engine's cost per step without a model adapter's)."""
    chain = [
        {
            "step_type": "STEP_TYPE_FUNCTION_CALL",
            "function_call_config": {
                "function_name": "length",
                "request": f"Step {i}: continue from: %v{i}%",
            },
            "output_config": {"payload": {f"v{i + 1}": ""}},
        }
        for i in range(steps)
    ]
    return _job(
        {
            "job_id": "function_chain",
            "tasks": [{"task_id": "chain", "steps": chain}],
            "input_config": {"payload": {"v0": SEED}},
        },
        registry,
    )


def fan_out_job(width: int, registry: ModelRegistry) -> config_pb2.JobConfig:
    """W2: ``split`` -> ``width`` parallel ``p###`` tasks -> ``join`` (concatenating them)."""
    parts = [f"p{i:03d}" for i in range(width)]
    tasks: list[dict[str, Any]] = [
        {
            "task_id": "split",
            "steps": [_query(HTTP_KEY, "Split the topic: %topic%", {"root": ""})],
            "next_tasks": parts,
        }
    ]
    for i, task_id in enumerate(parts):
        tasks.append(
            {
                "task_id": task_id,
                "steps": [_query(HTTP_KEY, f"Part {i}: %root%", {"part": ""})],
                "next_task": "join",
            }
        )
    tasks.append(
        {
            "task_id": "join",
            "input_config": {"payload": {"part": {"$combine": "concat"}}},
            "steps": [_query(HTTP_KEY, "Join the parts:\n%part%", {"final": ""})],
        }
    )
    return _job(
        {"job_id": "fanout", "tasks": tasks, "input_config": {"payload": {"topic": TOPIC}}},
        registry,
    )


def wide_job(
    calls: int, registry: ModelRegistry, model_key: str = HTTP_KEY, *, validate: bool = True
) -> config_pb2.JobConfig:
    """W3: ``calls`` independent one-call tasks, each with a prompt of its own.

    A job runs what is reachable from one start task, so a function step (no model call, a few
    microseconds) starts them all. ``validate=False`` leaves the validation to the caller.
    """
    items = [f"w{i:04d}" for i in range(calls)]
    start = {
        "task_id": "start",
        "steps": [
            {
                "step_type": "STEP_TYPE_FUNCTION_CALL",
                "function_call_config": {"function_name": "template", "request": "%topic%"},
                "output_config": {"payload": {"subject": ""}},
            }
        ],
        "next_tasks": items,
    }
    tasks = [start] + [
        {"task_id": task_id, "steps": [_query(model_key, f"Item {i}: %subject%", {"answer": ""})]}
        for i, task_id in enumerate(items)
    ]
    return _job(
        {"job_id": "wide", "tasks": tasks, "input_config": {"payload": {"topic": TOPIC}}},
        registry,
        validate=validate,
    )


def map_items(count: int | str) -> list[str]:
    """W6's list: ``count`` short strings (the baseline builds the same list)."""
    return [f"section {i:05d} of {TOPIC}" for i in range(int(count))]


def map_functions() -> FunctionRegistry:
    """The built-in functions plus `MAP_FUNCTION` (`map_items`)."""
    functions = FunctionRegistry.with_builtins()
    functions.register(map_items, MAP_FUNCTION)
    return functions


def map_job(
    items: int, in_flight: int, registry: ModelRegistry, functions: FunctionRegistry
) -> config_pb2.JobConfig:
    """W6: ``plan`` (a function step making a list of ``items``) -> ``write``, a map with one
    model step per item, at most ``in_flight`` at once -> ``join``, receiving the answers as a
    list in item order and joining them (a function step: no call)."""
    tasks: list[dict[str, Any]] = [
        {
            "task_id": "plan",
            "steps": [
                {
                    "step_type": "STEP_TYPE_FUNCTION_CALL",
                    "function_call_config": {
                        "function_name": MAP_FUNCTION,
                        "request": {"count": "%count%"},
                    },
                    "output_config": {"payload": {"sections": ""}},
                }
            ],
            "next_task": "write",
        },
        {
            "task_id": "write",
            "for_each": {
                "items": "%sections%",
                "max_in_flight": in_flight,
                "max_items": max(items, 1),
            },
            "steps": [_query(HTTP_KEY, "Item %index%: %item%", {"answer": ""})],
            "next_task": "join",
        },
        {
            "task_id": "join",
            "steps": [
                {
                    "step_type": "STEP_TYPE_FUNCTION_CALL",
                    "function_call_config": {
                        "function_name": "join",
                        "request": {"items": "%answer%"},
                    },
                    "output_config": {"payload": {"final": ""}},
                }
            ],
        },
    ]
    return _job(
        {"job_id": "map", "tasks": tasks, "input_config": {"payload": {"count": items}}},
        registry,
        functions,
    )


def hop_chain_job(tasks: int, registry: ModelRegistry) -> config_pb2.JobConfig:
    """W4: ``tasks`` one-step tasks in a chain (offline model): every hop goes through the store."""
    ids = [f"t{i:04d}" for i in range(tasks)]
    chain: list[dict[str, Any]] = []
    for i, task_id in enumerate(ids):
        task: dict[str, Any] = {
            "task_id": task_id,
            "steps": [_query(OFFLINE_KEY, f"Hop {i}: %h{i}%", {f"h{i + 1}": ""})],
        }
        if i + 1 < len(ids):
            task["next_task"] = ids[i + 1]
        chain.append(task)
    return _job(
        {"job_id": "hops", "tasks": chain, "input_config": {"payload": {"h0": SEED}}}, registry
    )


def registry_for(base_url: str, max_concurrency: int, folder: pathlib.Path) -> ModelRegistry:
    """The built-in registry plus ``BENCH``: the fake server, keyless, with a concurrency cap."""
    entry = {
        "key": HTTP_KEY,
        "provider": "openai",
        "model": BENCH_MODEL,
        "base_url": base_url,
        "no_api_key": True,
        "max_concurrency": max_concurrency,
        "max_attempts": 1,
        "timeout_seconds": 60,
    }
    path = folder / "bench_models.json"
    path.write_text(json.dumps({"models": [entry]}))
    return ModelRegistry.with_models_file(path)
