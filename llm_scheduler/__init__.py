"""llm-scheduler: run LLM workflows described by protobuf configs.

A Job is a graph of Tasks, a Task a list of Steps, a Step one model query, one registered
function call or one embedding. The same configs run in process (`run_job`, or `run_job_sync`
from code that is not async) and event-driven on a store: each committed task run triggers the
work that runs it (`llm_scheduler.execution`; the `job_submitter` and `dispatcher` tools on one
machine, a Cloud Function on Firestore).

Example::

    import json

    from llm_scheduler import ModelClient, RunContext, Validator, load_config, run_job_sync
    from llm_scheduler import struct_to_dict
    from llm_scheduler.v1 import config_pb2

    job = load_config("examples/sample_job_config.json", config_pb2.JobConfig)
    Validator().check_job(job)
    record = run_job_sync(job, RunContext(models=ModelClient(offline=True)))
    print(json.dumps(struct_to_dict(record.outputs), indent=2))

Custom model providers (a gateway, a test double) are `ModelAdapter` subclasses registered with
`register_provider` (see docs/custom_models.md).
"""

from llm_scheduler.config.formats import ConfigFormat, dumps, loads
from llm_scheduler.config.formats import load as load_config
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.template import Template
from llm_scheduler.config.validation import Validator
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.job import run_job, run_job_sync
from llm_scheduler.engine.step import StepResult, run_step
from llm_scheduler.engine.task import run_task
from llm_scheduler.errors import (
    BudgetExceededError,
    ConfigError,
    ConfigProblem,
    FunctionCallError,
    InterpolationError,
    LlmSchedulerError,
    MissingApiKey,
    MissingApiKeyError,
    MissingCredentialsError,
    MissingDependencyError,
    ProviderError,
    RunError,
    UserError,
)
from llm_scheduler.function_steps import FunctionRegistry, default_registry, register_function
from llm_scheduler.models.base import (
    EmbeddingRequest,
    EmbeddingResponse,
    ModelAdapter,
    ModelRequest,
    ModelResponse,
    ResponseFormatSpec,
    Usage,
)
from llm_scheduler.models.client import EmbeddingCall, ModelCall, ModelClient
from llm_scheduler.models.providers import register_provider, unregister_provider
from llm_scheduler.models.rate_limit import RateLimiter, RateLimiters
from llm_scheduler.models.registry import ModelRegistry, ModelSpec
from llm_scheduler.models.retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "BudgetExceededError",
    "ConfigError",
    "ConfigFormat",
    "ConfigProblem",
    "EmbeddingCall",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EngineEvent",
    "EventKind",
    "FunctionCallError",
    "FunctionRegistry",
    "InterpolationError",
    "LlmSchedulerError",
    "MissingApiKey",
    "MissingApiKeyError",
    "MissingCredentialsError",
    "MissingDependencyError",
    "ModelAdapter",
    "ModelCall",
    "ModelClient",
    "ModelRegistry",
    "ModelRequest",
    "ModelResponse",
    "ModelSpec",
    "ProviderError",
    "RateLimiter",
    "RateLimiters",
    "ResponseFormatSpec",
    "RetryPolicy",
    "RunContext",
    "RunError",
    "StepResult",
    "TaskGraph",
    "Template",
    "Usage",
    "UserError",
    "Validator",
    "__version__",
    "default_registry",
    "dumps",
    "load_config",
    "loads",
    "register_function",
    "register_provider",
    "run_job",
    "run_job_sync",
    "run_step",
    "run_task",
    "struct_to_dict",
    "unregister_provider",
]
