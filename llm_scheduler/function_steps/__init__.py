"""Python functions that function-call steps call by name, and the built-in ones.

Register your own with `register_function` and pass their modules to the runners with
``--function_modules``::

    from llm_scheduler.function_steps import JsonValue, register_function

    @register_function
    def word_count(text: str) -> JsonValue:
        return len(text.split())
"""

from llm_scheduler.function_steps.builtins import (
    BUILTINS,
    join,
    json_extract,
    json_parse,
    length,
    regex_extract,
    template,
)
from llm_scheduler.function_steps.registry import (
    FunctionRegistry,
    RegisteredFunction,
    UnknownFunctionError,
    default_registry,
    register_function,
)
from llm_scheduler.jsonvalue import JsonValue, is_json_value

__all__ = [
    "BUILTINS",
    "FunctionRegistry",
    "JsonValue",
    "RegisteredFunction",
    "UnknownFunctionError",
    "default_registry",
    "is_json_value",
    "join",
    "json_extract",
    "json_parse",
    "length",
    "regex_extract",
    "register_function",
    "template",
]
