"""The message types a config file may hold, by the names the CLIs use (``--config_type``)."""

from __future__ import annotations

from google.protobuf.message import Message

from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["CONFIG_TYPES", "message_type"]

CONFIG_TYPES: dict[str, type[Message]] = {
    "step": config_pb2.StepConfig,
    "task": config_pb2.TaskConfig,
    "job": config_pb2.JobConfig,
    "models": config_pb2.ModelsConfig,
    "step_run": run_pb2.StepRun,
    "task_run": run_pb2.TaskRun,
    "job_run": run_pb2.JobRun,
    "trace": run_pb2.Trace,
}


def message_type(name: str) -> type[Message]:
    """The message class for a ``--config_type`` name.

    Raises:
        KeyError: The name is unknown.
    """
    return CONFIG_TYPES[name]
