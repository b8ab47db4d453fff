"""The no-framework limit: each workload written by hand with plain asyncio and the openai SDK.

Prompts are built exactly as the llm-scheduler configs of `bench.jobs` render them, so both sides
send the same requests and do the same string work; what differs is the engine.
"""

from __future__ import annotations

import asyncio

from openai import AsyncOpenAI

from llm_scheduler.function_steps.builtins import length
from llm_scheduler.models.base import ModelAdapter, ModelRequest

__all__ = [
    "ask",
    "bare_chain",
    "bare_function_chain",
    "chain",
    "fan_out_join",
    "map_join",
    "new_client",
    "wide",
]


def new_client(base_url: str) -> AsyncOpenAI:
    """An SDK client configured like llm-scheduler's OpenAI adapter (no SDK retries)."""
    return AsyncOpenAI(api_key="no-key", base_url=base_url, max_retries=0)


async def ask(client: AsyncOpenAI, model: str, prompt: str) -> str:
    completion = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}]
    )
    return completion.choices[0].message.content or ""


async def chain(client: AsyncOpenAI, model: str, steps: int, seed: str) -> str:
    """W1: ``steps`` sequential calls, each prompt holding the previous answer."""
    previous = seed
    for i in range(steps):
        previous = await ask(client, model, f"Step {i}: continue from: {previous}")
    return previous


async def fan_out_join(client: AsyncOpenAI, model: str, width: int, topic: str) -> str:
    """W2: one call, ``width`` parallel calls on its answer, one call joining theirs."""
    root = await ask(client, model, f"Split the topic: {topic}")
    parts = await asyncio.gather(*(ask(client, model, f"Part {i}: {root}") for i in range(width)))
    return await ask(client, model, "Join the parts:\n" + "\n\n".join(parts))


async def wide(client: AsyncOpenAI, model: str, calls: int, concurrency: int, topic: str) -> int:
    """W3: ``calls`` independent calls, at most ``concurrency`` in flight."""
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        async with limit:
            return await ask(client, model, f"Item {i}: {topic}")

    answers = await asyncio.gather(*(one(i) for i in range(calls)))
    return len(answers)


async def map_join(client: AsyncOpenAI, model: str, items: list[str], concurrency: int) -> str:
    """W6: one call per item, at most ``concurrency`` in flight, the answers joined in order."""
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int, item: str) -> str:
        async with limit:
            return await ask(client, model, f"Item {index}: {item}")

    answers = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
    return "\n".join(answers)


async def bare_chain(adapter: ModelAdapter, model: str, steps: int, seed: str) -> str:
    """W1 in process: the chain calling a model adapter directly, no engine in between."""
    previous = seed
    for i in range(steps):
        request = ModelRequest(
            model=model, system_prompt="", user_prompt=f"Step {i}: continue from: {previous}"
        )
        previous = (await adapter.generate(request)).text
    return previous


def bare_function_chain(steps: int, seed: str) -> int | str:
    """`jobs.function_chain_job` by hand: the same calls of the built-in ``length``."""
    previous: int | str = seed
    for i in range(steps):
        previous = length(f"Step {i}: continue from: {previous}")
    return previous
