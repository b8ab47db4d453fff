"""A custom model provider written against the public API only: a test double, and a plugin.

Importing this module registers two providers, as an in-house one would be registered:

- ``echo``: in process, no key; answers ``echo <model>: <user prompt>`` and counts words as
  tokens (``input_tokens`` = words of both prompts, ``output_tokens`` = words of the answer).
- ``echo-keyed``: the same answer, but it needs an API key (``ECHO_API_KEY`` by default) and
  says whether it got one, never which.

The tools load it with ``--function_modules=tests.models.echo_provider`` (the cloud function
with ``LLM_SCHEDULER_FUNCTION_MODULES``).
"""

from __future__ import annotations

import json
from typing import ClassVar

from llm_scheduler import ModelAdapter, ModelRequest, ModelResponse, Usage, register_provider

__all__ = ["ECHO_KEY_ENV", "EchoAdapter", "KeyedEchoAdapter", "echo_text"]

ECHO_KEY_ENV = "ECHO_API_KEY"


def echo_text(model: str, user_prompt: str) -> str:
    """The echo answer to a prompt."""
    return f"echo {model}: {user_prompt}"


@register_provider
class EchoAdapter(ModelAdapter):
    """Answers with the user prompt; JSON formats get ``{"echo": <prompt>}``."""

    provider: ClassVar[str] = "echo"
    in_process: ClassVar[bool] = True
    supported_parameters: ClassVar[frozenset[str]] = frozenset({"temperature", "max_tokens"})

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Returns the echo answer, with words counted as tokens."""
        text = echo_text(request.model, request.user_prompt)
        if request.response_format.kind != "text":
            text = json.dumps({"echo": request.user_prompt})
        words = len(request.system_prompt.split()) + len(request.user_prompt.split())
        usage = Usage(input_tokens=words, output_tokens=len(text.split()))
        return ModelResponse(
            text=text, usage=usage, model=f"{request.model}-v1", finish_reason="stop"
        )


@register_provider
class KeyedEchoAdapter(EchoAdapter):
    """The echo answer, from a provider that needs an API key."""

    provider: ClassVar[str] = "echo-keyed"
    in_process: ClassVar[bool] = False
    default_api_key_env: ClassVar[str] = ECHO_KEY_ENV

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """The echo answer, prefixed with whether a key came (the key itself never shows)."""
        response = await super().generate(request)
        has_key = "with key" if self.api_key else "without key"
        return ModelResponse(
            text=f"[{has_key}] {response.text}",
            usage=response.usage,
            model=response.model,
            finish_reason=response.finish_reason,
        )
