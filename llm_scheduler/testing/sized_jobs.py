"""Job configs of any size, for tests and benchmarks of how cost grows with a job's size."""

from __future__ import annotations

from llm_scheduler.v1 import config_pb2

__all__ = ["chain_job", "fan_out_job"]


def _step(prompt: str) -> config_pb2.StepConfig:
    return config_pb2.StepConfig(
        model_query_config=config_pb2.ModelQueryConfig(model_key="OFFLINE", user_prompt=prompt)
    )


def fan_out_job(size: int) -> config_pb2.JobConfig:
    """``start`` fans out to ``size - 2`` tasks, which ``end`` joins (``size`` tasks in all)."""
    job = config_pb2.JobConfig(job_id="fan")
    start = job.tasks.add(task_id="start", steps=[_step("hi")])
    for index in range(size - 2):
        start.next_tasks.append(f"w{index}")
        job.tasks.add(task_id=f"w{index}", next_task="end", steps=[_step("%response%")])
    end = job.tasks.add(task_id="end", steps=[_step("%response%")])
    end.input_config.payload.update({"response": {"$combine": "list"}})
    return job


def chain_job(size: int) -> config_pb2.JobConfig:
    """Tasks ``t0 -> t1 -> ...``, each using its predecessor's response."""
    job = config_pb2.JobConfig(job_id="chain")
    for index in range(size):
        task = job.tasks.add(task_id=f"t{index}", steps=[_step("%response%" if index else "hi")])
        if index + 1 < size:
            task.next_task = f"t{index + 1}"
    return job
