from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StepType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_TYPE_MODEL_QUERY: _ClassVar[StepType]
    STEP_TYPE_FUNCTION_CALL: _ClassVar[StepType]
    STEP_TYPE_EMBEDDING: _ClassVar[StepType]
    STEP_TYPE_SUB_JOB: _ClassVar[StepType]

class CachePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_POLICY_DEFAULT: _ClassVar[CachePolicy]
    CACHE_POLICY_USE: _ClassVar[CachePolicy]
    CACHE_POLICY_REFRESH: _ClassVar[CachePolicy]
    CACHE_POLICY_OFF: _ClassVar[CachePolicy]

class OverlapPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERLAP_POLICY_UNSPECIFIED: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_SKIP: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_ALLOW: _ClassVar[OverlapPolicy]

class CatchUpPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATCH_UP_POLICY_UNSPECIFIED: _ClassVar[CatchUpPolicy]
    CATCH_UP_POLICY_LATEST: _ClassVar[CatchUpPolicy]
    CATCH_UP_POLICY_NONE: _ClassVar[CatchUpPolicy]
    CATCH_UP_POLICY_ALL: _ClassVar[CatchUpPolicy]
STEP_TYPE_MODEL_QUERY: StepType
STEP_TYPE_FUNCTION_CALL: StepType
STEP_TYPE_EMBEDDING: StepType
STEP_TYPE_SUB_JOB: StepType
CACHE_POLICY_DEFAULT: CachePolicy
CACHE_POLICY_USE: CachePolicy
CACHE_POLICY_REFRESH: CachePolicy
CACHE_POLICY_OFF: CachePolicy
OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy
OVERLAP_POLICY_SKIP: OverlapPolicy
OVERLAP_POLICY_ALLOW: OverlapPolicy
CATCH_UP_POLICY_UNSPECIFIED: CatchUpPolicy
CATCH_UP_POLICY_LATEST: CatchUpPolicy
CATCH_UP_POLICY_NONE: CatchUpPolicy
CATCH_UP_POLICY_ALL: CatchUpPolicy

class DataConfig(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: _struct_pb2.Struct
    def __init__(self, payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Metadata(_message.Message):
    __slots__ = ("timestamp", "source", "version")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    timestamp: int
    source: str
    version: str
    def __init__(self, timestamp: _Optional[int] = ..., source: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ResponseFormat(_message.Message):
    __slots__ = ("type", "json_schema", "schema_name")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_TEXT: _ClassVar[ResponseFormat.Type]
        TYPE_JSON: _ClassVar[ResponseFormat.Type]
        TYPE_JSON_SCHEMA: _ClassVar[ResponseFormat.Type]
    TYPE_TEXT: ResponseFormat.Type
    TYPE_JSON: ResponseFormat.Type
    TYPE_JSON_SCHEMA: ResponseFormat.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_NAME_FIELD_NUMBER: _ClassVar[int]
    type: ResponseFormat.Type
    json_schema: _struct_pb2.Struct
    schema_name: str
    def __init__(self, type: _Optional[_Union[ResponseFormat.Type, str]] = ..., json_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., schema_name: _Optional[str] = ...) -> None: ...

class ModelQueryConfig(_message.Message):
    __slots__ = ("model_key", "parameters", "system_prompt", "user_prompt", "response_format")
    MODEL_KEY_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    USER_PROMPT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    model_key: str
    parameters: _struct_pb2.Struct
    system_prompt: str
    user_prompt: str
    response_format: ResponseFormat
    def __init__(self, model_key: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., system_prompt: _Optional[str] = ..., user_prompt: _Optional[str] = ..., response_format: _Optional[_Union[ResponseFormat, _Mapping]] = ...) -> None: ...

class FunctionCallConfig(_message.Message):
    __slots__ = ("function_name", "request")
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    function_name: str
    request: _struct_pb2.Value
    def __init__(self, function_name: _Optional[str] = ..., request: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class EmbeddingConfig(_message.Message):
    __slots__ = ("model_key", "input", "dimensions")
    MODEL_KEY_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    model_key: str
    input: str
    dimensions: int
    def __init__(self, model_key: _Optional[str] = ..., input: _Optional[str] = ..., dimensions: _Optional[int] = ...) -> None: ...

class StepConfig(_message.Message):
    __slots__ = ("id", "name", "description", "step_type", "input_config", "model_query_config", "function_call_config", "output_config", "metadata", "cache", "embedding_config", "sub_job_config")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STEP_TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    MODEL_QUERY_CONFIG_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_CALL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SUB_JOB_CONFIG_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    step_type: StepType
    input_config: DataConfig
    model_query_config: ModelQueryConfig
    function_call_config: FunctionCallConfig
    output_config: DataConfig
    metadata: Metadata
    cache: CachePolicy
    embedding_config: EmbeddingConfig
    sub_job_config: SubJobConfig
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., step_type: _Optional[_Union[StepType, str]] = ..., input_config: _Optional[_Union[DataConfig, _Mapping]] = ..., model_query_config: _Optional[_Union[ModelQueryConfig, _Mapping]] = ..., function_call_config: _Optional[_Union[FunctionCallConfig, _Mapping]] = ..., output_config: _Optional[_Union[DataConfig, _Mapping]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., cache: _Optional[_Union[CachePolicy, str]] = ..., embedding_config: _Optional[_Union[EmbeddingConfig, _Mapping]] = ..., sub_job_config: _Optional[_Union[SubJobConfig, _Mapping]] = ...) -> None: ...

class SubJobConfig(_message.Message):
    __slots__ = ("job_path", "job", "inputs")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_PATH_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    job_path: str
    job: JobConfig
    inputs: _containers.ScalarMap[str, str]
    def __init__(self, job_path: _Optional[str] = ..., job: _Optional[_Union[JobConfig, _Mapping]] = ..., inputs: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TaskConfig(_message.Message):
    __slots__ = ("task_id", "input_config", "steps", "output_config", "metadata", "next_task", "next_tasks", "name", "description", "for_each", "strategy")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    NEXT_TASK_FIELD_NUMBER: _ClassVar[int]
    NEXT_TASKS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FOR_EACH_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    input_config: DataConfig
    steps: _containers.RepeatedCompositeFieldContainer[StepConfig]
    output_config: DataConfig
    metadata: Metadata
    next_task: str
    next_tasks: _containers.RepeatedScalarFieldContainer[str]
    name: str
    description: str
    for_each: MapConfig
    strategy: StrategyConfig
    def __init__(self, task_id: _Optional[str] = ..., input_config: _Optional[_Union[DataConfig, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[StepConfig, _Mapping]]] = ..., output_config: _Optional[_Union[DataConfig, _Mapping]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., next_task: _Optional[str] = ..., next_tasks: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., for_each: _Optional[_Union[MapConfig, _Mapping]] = ..., strategy: _Optional[_Union[StrategyConfig, _Mapping]] = ...) -> None: ...

class MapConfig(_message.Message):
    __slots__ = ("items", "item_variable", "index_variable", "max_in_flight", "max_items")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ITEM_VARIABLE_FIELD_NUMBER: _ClassVar[int]
    INDEX_VARIABLE_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: str
    item_variable: str
    index_variable: str
    max_in_flight: int
    max_items: int
    def __init__(self, items: _Optional[str] = ..., item_variable: _Optional[str] = ..., index_variable: _Optional[str] = ..., max_in_flight: _Optional[int] = ..., max_items: _Optional[int] = ...) -> None: ...

class JobConfig(_message.Message):
    __slots__ = ("job_id", "name", "description", "tasks", "start_task", "input_config", "metadata")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    START_TASK_FIELD_NUMBER: _ClassVar[int]
    INPUT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    description: str
    tasks: _containers.RepeatedCompositeFieldContainer[TaskConfig]
    start_task: str
    input_config: DataConfig
    metadata: Metadata
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[TaskConfig, _Mapping]]] = ..., start_task: _Optional[str] = ..., input_config: _Optional[_Union[DataConfig, _Mapping]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class ModelEntry(_message.Message):
    __slots__ = ("key", "provider", "model", "base_url", "api_key_env", "no_api_key", "input_price_per_million_tokens", "output_price_per_million_tokens", "cached_input_price_per_million_tokens", "max_concurrency", "timeout_seconds", "max_attempts", "kind", "requests_per_minute", "tokens_per_minute", "cache_write_price_per_million_tokens")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ENV_FIELD_NUMBER: _ClassVar[int]
    NO_API_KEY_FIELD_NUMBER: _ClassVar[int]
    INPUT_PRICE_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PRICE_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_PRICE_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_PRICE_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    key: str
    provider: str
    model: str
    base_url: str
    api_key_env: str
    no_api_key: bool
    input_price_per_million_tokens: float
    output_price_per_million_tokens: float
    cached_input_price_per_million_tokens: float
    max_concurrency: int
    timeout_seconds: float
    max_attempts: int
    kind: str
    requests_per_minute: int
    tokens_per_minute: int
    cache_write_price_per_million_tokens: float
    def __init__(self, key: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., base_url: _Optional[str] = ..., api_key_env: _Optional[str] = ..., no_api_key: _Optional[bool] = ..., input_price_per_million_tokens: _Optional[float] = ..., output_price_per_million_tokens: _Optional[float] = ..., cached_input_price_per_million_tokens: _Optional[float] = ..., max_concurrency: _Optional[int] = ..., timeout_seconds: _Optional[float] = ..., max_attempts: _Optional[int] = ..., kind: _Optional[str] = ..., requests_per_minute: _Optional[int] = ..., tokens_per_minute: _Optional[int] = ..., cache_write_price_per_million_tokens: _Optional[float] = ...) -> None: ...

class ModelsConfig(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelEntry]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelEntry, _Mapping]]] = ...) -> None: ...

class StrategyAxis(_message.Message):
    __slots__ = ("name", "variable", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    variable: str
    values: _containers.RepeatedCompositeFieldContainer[StrategyValue]
    def __init__(self, name: _Optional[str] = ..., variable: _Optional[str] = ..., values: _Optional[_Iterable[_Union[StrategyValue, _Mapping]]] = ...) -> None: ...

class StrategyValue(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: _struct_pb2.Value
    def __init__(self, name: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class StrategyConfig(_message.Message):
    __slots__ = ("axes", "only", "in_series")
    AXES_FIELD_NUMBER: _ClassVar[int]
    ONLY_FIELD_NUMBER: _ClassVar[int]
    IN_SERIES_FIELD_NUMBER: _ClassVar[int]
    axes: _containers.RepeatedCompositeFieldContainer[StrategyAxis]
    only: _containers.RepeatedScalarFieldContainer[str]
    in_series: bool
    def __init__(self, axes: _Optional[_Iterable[_Union[StrategyAxis, _Mapping]]] = ..., only: _Optional[_Iterable[str]] = ..., in_series: _Optional[bool] = ...) -> None: ...

class ScheduleConfig(_message.Message):
    __slots__ = ("schedule_id", "job_path", "job_id", "cron", "time_zone", "inputs", "overlap", "catch_up", "paused")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_PATH_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    job_path: str
    job_id: str
    cron: str
    time_zone: str
    inputs: _struct_pb2.Struct
    overlap: OverlapPolicy
    catch_up: CatchUpPolicy
    paused: bool
    def __init__(self, schedule_id: _Optional[str] = ..., job_path: _Optional[str] = ..., job_id: _Optional[str] = ..., cron: _Optional[str] = ..., time_zone: _Optional[str] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., overlap: _Optional[_Union[OverlapPolicy, str]] = ..., catch_up: _Optional[_Union[CatchUpPolicy, str]] = ..., paused: _Optional[bool] = ...) -> None: ...
