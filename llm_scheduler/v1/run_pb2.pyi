import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llm_scheduler.v1 import config_pb2 as _config_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_PENDING: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_SUCCEEDED: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_SKIPPED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELLED: _ClassVar[RunStatus]
    RUN_STATUS_WAITING: _ClassVar[RunStatus]
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_PENDING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_SUCCEEDED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_SKIPPED: RunStatus
RUN_STATUS_CANCELLED: RunStatus
RUN_STATUS_WAITING: RunStatus

class TokenUsage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_input_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_input_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., cache_write_input_tokens: _Optional[int] = ...) -> None: ...

class ErrorInfo(_message.Message):
    __slots__ = ("type", "message", "retryable", "http_status")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    retryable: bool
    http_status: int
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ..., http_status: _Optional[int] = ...) -> None: ...

class StepRun(_message.Message):
    __slots__ = ("step_id", "index", "name", "step_type", "status", "inputs", "outputs", "system_prompt", "user_prompt", "model_key", "provider", "provider_model", "parameters", "response_format", "response_text", "function_name", "function_request", "function_response", "usage", "cost_usd", "latency_seconds", "attempts", "error", "started_at", "finished_at", "fingerprint", "cache_hit", "reused_from_run_id", "response_digest", "outputs_digest", "embedding_input", "embedding", "child_run_id")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STEP_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    USER_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_KEY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MODEL_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TEXT_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_REQUEST_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    REUSED_FROM_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_INPUT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    CHILD_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    index: int
    name: str
    step_type: _config_pb2.StepType
    status: RunStatus
    inputs: _struct_pb2.Struct
    outputs: _struct_pb2.Struct
    system_prompt: str
    user_prompt: str
    model_key: str
    provider: str
    provider_model: str
    parameters: _struct_pb2.Struct
    response_format: _config_pb2.ResponseFormat
    response_text: str
    function_name: str
    function_request: _struct_pb2.Value
    function_response: _struct_pb2.Value
    usage: TokenUsage
    cost_usd: float
    latency_seconds: float
    attempts: int
    error: ErrorInfo
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    fingerprint: str
    cache_hit: bool
    reused_from_run_id: str
    response_digest: str
    outputs_digest: str
    embedding_input: str
    embedding: _containers.RepeatedScalarFieldContainer[float]
    child_run_id: str
    def __init__(self, step_id: _Optional[str] = ..., index: _Optional[int] = ..., name: _Optional[str] = ..., step_type: _Optional[_Union[_config_pb2.StepType, str]] = ..., status: _Optional[_Union[RunStatus, str]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., system_prompt: _Optional[str] = ..., user_prompt: _Optional[str] = ..., model_key: _Optional[str] = ..., provider: _Optional[str] = ..., provider_model: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., response_format: _Optional[_Union[_config_pb2.ResponseFormat, _Mapping]] = ..., response_text: _Optional[str] = ..., function_name: _Optional[str] = ..., function_request: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., function_response: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., latency_seconds: _Optional[float] = ..., attempts: _Optional[int] = ..., error: _Optional[_Union[ErrorInfo, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fingerprint: _Optional[str] = ..., cache_hit: _Optional[bool] = ..., reused_from_run_id: _Optional[str] = ..., response_digest: _Optional[str] = ..., outputs_digest: _Optional[str] = ..., embedding_input: _Optional[str] = ..., embedding: _Optional[_Iterable[float]] = ..., child_run_id: _Optional[str] = ...) -> None: ...

class TaskRun(_message.Message):
    __slots__ = ("task_run_id", "task_id", "job_run_id", "status", "config", "inputs", "outputs", "steps", "predecessors", "attempt", "error", "usage", "cost_usd", "started_at", "finished_at", "inputs_digest", "items", "items_total", "item_index", "variation")
    TASK_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    PREDECESSORS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEM_INDEX_FIELD_NUMBER: _ClassVar[int]
    VARIATION_FIELD_NUMBER: _ClassVar[int]
    task_run_id: str
    task_id: str
    job_run_id: str
    status: RunStatus
    config: _config_pb2.TaskConfig
    inputs: _struct_pb2.Struct
    outputs: _struct_pb2.Struct
    steps: _containers.RepeatedCompositeFieldContainer[StepRun]
    predecessors: _containers.RepeatedScalarFieldContainer[str]
    attempt: int
    error: ErrorInfo
    usage: TokenUsage
    cost_usd: float
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    inputs_digest: str
    items: _containers.RepeatedCompositeFieldContainer[TaskRun]
    items_total: int
    item_index: int
    variation: str
    def __init__(self, task_run_id: _Optional[str] = ..., task_id: _Optional[str] = ..., job_run_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., config: _Optional[_Union[_config_pb2.TaskConfig, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[StepRun, _Mapping]]] = ..., predecessors: _Optional[_Iterable[str]] = ..., attempt: _Optional[int] = ..., error: _Optional[_Union[ErrorInfo, _Mapping]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., inputs_digest: _Optional[str] = ..., items: _Optional[_Iterable[_Union[TaskRun, _Mapping]]] = ..., items_total: _Optional[int] = ..., item_index: _Optional[int] = ..., variation: _Optional[str] = ...) -> None: ...

class JobRun(_message.Message):
    __slots__ = ("run_id", "job_id", "status", "config", "inputs", "outputs", "tasks", "error", "usage", "cost_usd", "started_at", "finished_at", "parent_run_id", "children", "caller_task_run_id", "caller_step_index", "caller_run_id", "schedule_id", "schedule_slot", "budget_usd")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    PARENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    CALLER_TASK_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    CALLER_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_SLOT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    job_id: str
    status: RunStatus
    config: _config_pb2.JobConfig
    inputs: _struct_pb2.Struct
    outputs: _struct_pb2.Struct
    tasks: _containers.RepeatedCompositeFieldContainer[TaskRun]
    error: ErrorInfo
    usage: TokenUsage
    cost_usd: float
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    parent_run_id: str
    children: _containers.RepeatedCompositeFieldContainer[JobRun]
    caller_task_run_id: str
    caller_step_index: int
    caller_run_id: str
    schedule_id: str
    schedule_slot: str
    budget_usd: float
    def __init__(self, run_id: _Optional[str] = ..., job_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., config: _Optional[_Union[_config_pb2.JobConfig, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[TaskRun, _Mapping]]] = ..., error: _Optional[_Union[ErrorInfo, _Mapping]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., parent_run_id: _Optional[str] = ..., children: _Optional[_Iterable[_Union[JobRun, _Mapping]]] = ..., caller_task_run_id: _Optional[str] = ..., caller_step_index: _Optional[int] = ..., caller_run_id: _Optional[str] = ..., schedule_id: _Optional[str] = ..., schedule_slot: _Optional[str] = ..., budget_usd: _Optional[float] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("run_id", "kind", "task_id", "step_index", "step_count", "name", "detail", "time", "usage", "cost_usd", "worker_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_COUNT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    kind: str
    task_id: str
    step_index: int
    step_count: int
    name: str
    detail: str
    time: _timestamp_pb2.Timestamp
    usage: TokenUsage
    cost_usd: float
    worker_id: str
    def __init__(self, run_id: _Optional[str] = ..., kind: _Optional[str] = ..., task_id: _Optional[str] = ..., step_index: _Optional[int] = ..., step_count: _Optional[int] = ..., name: _Optional[str] = ..., detail: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., worker_id: _Optional[str] = ...) -> None: ...

class Trace(_message.Message):
    __slots__ = ("schema", "schema_version", "exported_at", "job_run")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    JOB_RUN_FIELD_NUMBER: _ClassVar[int]
    schema: str
    schema_version: int
    exported_at: _timestamp_pb2.Timestamp
    job_run: JobRun
    def __init__(self, schema: _Optional[str] = ..., schema_version: _Optional[int] = ..., exported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., job_run: _Optional[_Union[JobRun, _Mapping]] = ...) -> None: ...
