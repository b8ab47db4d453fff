"""Rate limits per model entry: the limiter on a virtual clock, then through ModelClient.

No test here reads wall time: the limiter's own tests run on an event loop whose clock jumps from
timer to timer (`clocks.run_in_virtual_time`), and the tests through the provider SDKs and the
fake server use a `clocks.FakeClock` that only the test moves.
"""

from __future__ import annotations

import asyncio
import collections
import json
import pathlib
import random
import threading
from collections.abc import Sequence
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from llm_scheduler import (
    ConfigError,
    ModelClient,
    ModelRequest,
    RateLimiter,
    RateLimiters,
    RetryPolicy,
)
from llm_scheduler.models.client import RetryEvent
from llm_scheduler.models.rate_limit import estimate_tokens, shared_rate_limiters
from llm_scheduler.models.registry import ModelRegistry, ModelSpec, load_models_file
from llm_scheduler.testing import FakeProviderServer
from tests.conftest import FAKE_CREDENTIALS, write_models_file
from tests.models.clocks import FakeClock, run_in_virtual_time, until

WINDOW = 60.0


def most_in_a_window(times: Sequence[float]) -> int:
    """The most of ``times`` that any window [t, t + 60) holds."""
    ordered = sorted(times)
    most = first = 0
    for last, time in enumerate(ordered):
        while ordered[first] + WINDOW <= time:
            first += 1
        most = max(most, last - first + 1)
    return most


def request(text: str = "hi", **parameters: Any) -> ModelRequest:
    return ModelRequest(model="m", system_prompt="", user_prompt=text, parameters=parameters)


# -- requests per minute ------------------------------------------------------------------------


def test_60_rpm_lets_200_requests_at_once_start_60_a_minute_in_arrival_order() -> None:
    async def main() -> list[tuple[float, int]]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(requests_per_minute=60, clock=loop.time)
        starts: list[tuple[float, int]] = []

        async def one(index: int) -> None:
            await limiter.acquire()
            starts.append((loop.time(), index))
            await asyncio.sleep(3)  # the call itself: does not matter to a start limit

        await asyncio.gather(*(one(index) for index in range(200)))
        return starts

    starts = run_in_virtual_time(main())

    assert [time for time, _ in starts] == [0.0] * 60 + [60.0] * 60 + [120.0] * 60 + [180.0] * 20
    assert [index for _, index in starts] == list(range(200))
    assert most_in_a_window([time for time, _ in starts]) == 60


@hypothesis.settings(max_examples=60)
@hypothesis.given(
    limit=st.integers(min_value=1, max_value=12),
    arrivals=st.lists(st.floats(min_value=0, max_value=300), min_size=1, max_size=80),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_no_window_holds_more_starts_than_the_limit_and_no_start_waits_needlessly(
    limit: int, arrivals: list[float], seed: int
) -> None:
    rng = random.Random(seed)
    latencies = [rng.uniform(0, 90) for _ in arrivals]

    async def main() -> list[tuple[float, float]]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(requests_per_minute=limit, clock=loop.time)
        started: list[tuple[float, float]] = []  # (arrival, start)

        async def one(arrival: float, latency: float) -> None:
            await asyncio.sleep(arrival)
            arrived = loop.time()
            await limiter.acquire()
            started.append((arrived, loop.time()))
            await asyncio.sleep(latency)

        await asyncio.gather(*map(one, arrivals, latencies))
        return started

    started = run_in_virtual_time(main())

    starts = [start for _, start in started]
    assert len(starts) == len(arrivals)
    assert most_in_a_window(starts) <= limit
    for arrived, start in started:
        if start > arrived:  # it waited: only because the window before its start was full
            assert sum(other < start <= other + WINDOW for other in starts) >= limit


# -- tokens per minute --------------------------------------------------------------------------


def test_tokens_per_minute_hold_in_every_window_when_estimates_are_right() -> None:
    rng = random.Random(3)
    sizes = [rng.randint(10, 300) for _ in range(150)]

    async def main() -> list[tuple[float, int]]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(tokens_per_minute=1000, clock=loop.time)
        starts: list[tuple[float, int]] = []

        async def one(size: int) -> None:
            permit = await limiter.acquire(size)
            starts.append((loop.time(), size))
            await asyncio.sleep(rng.uniform(0, 20))
            permit.settle(size)

        await asyncio.gather(*map(one, sizes))
        return starts

    starts = run_in_virtual_time(main())

    assert len(starts) == 150
    worst = max(window_tokens(starts, time) for time, _ in starts)
    assert 900 < worst <= 1000


def window_tokens(starts: Sequence[tuple[float, int]], begin: float) -> int:
    return sum(tokens for time, tokens in starts if begin <= time < begin + WINDOW)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_window_exceeds_the_token_limit_only_by_the_underestimates_in_flight(
    concurrency: int,
) -> None:
    rng = random.Random(concurrency)
    # Each request uses more than its estimate (the reply's tokens are not in the estimate).
    requests = [(rng.randint(20, 200), rng.randint(0, 150)) for _ in range(120)]

    async def main() -> list[tuple[float, float, int, int]]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(tokens_per_minute=1000, clock=loop.time)
        slots = asyncio.Semaphore(concurrency)  # like an entry's max_concurrency
        done: list[tuple[float, float, int, int]] = []  # (start, end, estimate, used)

        async def one(estimate: int, extra: int) -> None:
            async with slots:
                permit = await limiter.acquire(estimate)
                start = loop.time()
                await asyncio.sleep(rng.uniform(1, 30))
                permit.settle(estimate + extra)
                done.append((start, loop.time(), estimate, estimate + extra))

        await asyncio.gather(*(one(estimate, extra) for estimate, extra in requests))
        return done

    done = run_in_virtual_time(main())

    max_extra = max(extra for _, extra in requests)
    for begin, *_ in done:
        inside = [entry for entry in done if begin <= entry[0] < begin + WINDOW]
        last_start = max(start for start, *_ in inside)
        in_flight = [entry for entry in inside if entry[1] >= last_start]
        used = sum(entry[3] for entry in inside)
        assert used <= 1000 + sum(entry[3] - entry[2] for entry in in_flight)
        assert used <= 1000 + concurrency * max_extra
    used_starts = [(entry[0], entry[3]) for entry in done]
    assert max(window_tokens(used_starts, begin) for begin, _ in used_starts) > 1000  # not vacuous


def test_usage_below_the_estimate_lets_the_first_in_line_start_at_once() -> None:
    async def main() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(tokens_per_minute=100, clock=loop.time)
        started: dict[str, float] = {}

        async def big() -> None:
            permit = await limiter.acquire(100)  # e.g. max_tokens counted up front
            started["big"] = loop.time()
            await asyncio.sleep(5)
            permit.settle(30)  # the reply was short

        async def next_one() -> None:
            await asyncio.sleep(1)
            await limiter.acquire(50)
            started["next"] = loop.time()

        await asyncio.gather(big(), next_one())
        return started

    assert run_in_virtual_time(main()) == {"big": 0.0, "next": 5.0}


def test_an_estimate_above_the_limit_waits_for_an_empty_window_and_goes_alone() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(tokens_per_minute=100, clock=loop.time)
        started: list[tuple[str, float]] = []

        async def one(name: str, arrival: float, tokens: int) -> None:
            await asyncio.sleep(arrival)
            permit = await limiter.acquire(tokens)
            started.append((name, loop.time()))
            permit.settle(tokens)

        await asyncio.gather(one("small", 0, 10), one("huge", 1, 500), one("after", 2, 10))
        return started

    # "huge" counts as the whole limit: it waits for "small" to leave, then fills the window.
    assert run_in_virtual_time(main()) == [("small", 0.0), ("huge", 60.0), ("after", 120.0)]


def test_waiting_requests_start_in_arrival_order_and_a_cancelled_one_leaves_the_line() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(tokens_per_minute=100, clock=loop.time)
        started: list[tuple[str, float]] = []

        async def one(name: str, arrival: float, tokens: int) -> None:
            await asyncio.sleep(arrival)
            permit = await limiter.acquire(tokens)
            started.append((name, loop.time()))
            permit.settle(tokens)

        first = asyncio.ensure_future(one("first", 0, 60))
        # "big" needs "first" gone; "small" would fit beside "first" but does not jump the line.
        big = asyncio.ensure_future(one("big", 1, 80))
        small = asyncio.ensure_future(one("small", 2, 10))
        cancelled = asyncio.ensure_future(one("cancelled", 3, 5))
        await asyncio.sleep(10)
        assert limiter.waiting == 3
        cancelled.cancel()
        await asyncio.gather(first, big, small)
        assert cancelled.cancelled() and limiter.waiting == 0
        return started

    assert run_in_virtual_time(main()) == [("first", 0.0), ("big", 60.0), ("small", 60.0)]


def test_a_cancelled_first_in_line_hands_its_turn_on() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(requests_per_minute=1, clock=loop.time)
        starts: list[float] = []

        async def one() -> None:
            await limiter.acquire()
            starts.append(loop.time())

        await one()
        first_in_line = asyncio.ensure_future(one())
        second = asyncio.ensure_future(one())
        await asyncio.sleep(10)
        first_in_line.cancel()
        await second
        return starts

    assert run_in_virtual_time(main()) == [0.0, 60.0]


def test_estimate_tokens_counts_prompt_characters_over_4_and_max_tokens() -> None:
    assert estimate_tokens(request("")) == 0
    assert estimate_tokens(request("abcd")) == 1
    assert estimate_tokens(request("abcde")) == 2
    with_system = ModelRequest(model="m", system_prompt="x" * 8, user_prompt="y" * 8)
    assert estimate_tokens(with_system) == 4
    assert estimate_tokens(request("abcd", max_tokens=100)) == 101
    assert estimate_tokens(request("abcd", max_tokens=True)) == 1


# -- limits per entry, 0 for none, the models file ----------------------------------------------


def test_zero_means_no_limit() -> None:
    assert RateLimiters().limiter_for(ModelSpec(key="K", provider="offline", model="m")) is None

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(0, 0, clock=loop.time)
        starts = []
        for _ in range(1000):
            await limiter.acquire(10**9)
            starts.append(loop.time())
        return starts

    assert set(run_in_virtual_time(main())) == {0.0}
    with pytest.raises(ValueError, match="must not be negative"):
        RateLimiter(-1)


def test_limiters_are_per_entry_and_shared_by_equal_entries() -> None:
    limiters = RateLimiters()
    spec = ModelSpec(key="A", provider="offline", model="m", requests_per_minute=60)
    same_model_other_key = ModelSpec(key="B", provider="offline", model="m", requests_per_minute=60)
    limiter = limiters.limiter_for(spec)

    assert limiter is not None and limiter.requests_per_minute == 60
    assert limiters.limiter_for(ModelSpec(**vars(spec))) is limiter  # loaded again, same entry
    assert limiters.limiter_for(same_model_other_key) not in (None, limiter)
    assert RateLimiters().limiter_for(spec) is not limiter
    assert ModelClient(offline=True).rate_limiters is shared_rate_limiters()


def write_models(path: pathlib.Path, *entries: dict[str, Any]) -> pathlib.Path:
    path.write_text(json.dumps({"models": list(entries)}))
    return path


def test_a_models_file_sets_the_limits_and_rejects_negative_ones(tmp_path: pathlib.Path) -> None:
    good = write_models(
        tmp_path / "good.json",
        {
            "key": "K",
            "provider": "offline",
            "model": "m",
            "requests_per_minute": 60,
            "tokens_per_minute": 90000,
        },
        {"key": "FREE", "provider": "offline", "model": "m"},
    )
    limited, free = load_models_file(good)
    assert (limited.requests_per_minute, limited.tokens_per_minute) == (60, 90000)
    assert (free.requests_per_minute, free.tokens_per_minute) == (0, 0)
    registry = ModelRegistry.with_models_file(good)
    assert all(
        spec.requests_per_minute == spec.tokens_per_minute == 0
        for spec in registry.specs()
        if spec.key != "K"
    )

    bad = write_models(
        tmp_path / "bad.json",
        {
            "key": "K",
            "provider": "openai",
            "model": "m",
            "requests_per_minute": -1,
            "tokens_per_minute": -5,
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_models_file(bad)
    problems = {(p.path, p.message, p.hint, p.file) for p in caught.value.problems}
    assert problems == {
        ("models[0].requests_per_minute", "must not be negative", "use 0 for no limit", str(bad)),
        ("models[0].tokens_per_minute", "must not be negative", "use 0 for no limit", str(bad)),
    }


# -- through ModelClient ------------------------------------------------------------------------


def test_every_client_of_a_process_shares_an_entrys_limit_and_entries_do_not_share(
    tmp_path: pathlib.Path,
) -> None:
    path = write_models(
        tmp_path / "models.json",
        {"key": "A", "provider": "offline", "model": "a", "requests_per_minute": 60},
        {"key": "B", "provider": "offline", "model": "b", "requests_per_minute": 60},
        {"key": "FREE", "provider": "offline", "model": "f"},
    )
    registry = ModelRegistry.with_models_file(path)

    async def main() -> dict[str, list[float]]:
        loop = asyncio.get_running_loop()
        limiters = RateLimiters(clock=loop.time)
        # Four clients, as four runs (or tasks of a dispatcher) of one process.
        clients = [ModelClient(registry, offline=False, rate_limiters=limiters) for _ in range(4)]
        starts: dict[str, list[float]] = collections.defaultdict(list)

        async def one(index: int, key: str) -> None:
            call = await clients[index % 4].generate(key, request(f"question {index}"))
            assert call.attempts == 1
            starts[key].append(loop.time())  # the offline model answers at once

        await asyncio.gather(*(one(i, key) for i in range(200) for key in ("A", "B", "FREE")))
        return starts

    starts = run_in_virtual_time(main())

    for key in ("A", "B"):
        assert len(starts[key]) == 200
        assert most_in_a_window(starts[key]) == 60
        assert sorted(starts[key]) == [0.0] * 60 + [60.0] * 60 + [120.0] * 60 + [180.0] * 20
    assert starts["FREE"] == [0.0] * 200


def test_model_client_counts_tokens_by_estimate_and_settles_with_usage(
    tmp_path: pathlib.Path,
) -> None:
    path = write_models(
        tmp_path / "models.json",
        {"key": "T", "provider": "offline", "model": "t", "tokens_per_minute": 200},
    )
    registry = ModelRegistry.with_models_file(path)
    rng = random.Random(5)
    prompts = [" ".join(["word"] * rng.randint(1, 40)) for _ in range(60)]

    async def main() -> list[tuple[float, int, int]]:
        loop = asyncio.get_running_loop()
        client = ModelClient(registry, offline=False, rate_limiters=RateLimiters(clock=loop.time))
        used: list[tuple[float, int, int]] = []  # (start, tokens used, estimate)

        async def one(prompt: str) -> None:
            call = await client.generate("T", request(prompt))
            usage = call.response.usage
            tokens = usage.input_tokens + usage.output_tokens
            used.append((loop.time(), tokens, estimate_tokens(call.request)))

        await asyncio.gather(*map(one, prompts))
        return used

    used = run_in_virtual_time(main())

    assert len(used) == 60
    # The offline model answers without waiting: a request is settled before the next starts,
    # so a window exceeds the limit by at most one request's underestimate.
    worst_underestimate = max(tokens - estimate for _, tokens, estimate in used)
    assert worst_underestimate > 0
    starts = [(time, tokens) for time, tokens, _ in used]
    assert max(window_tokens(starts, time) for time, _ in starts) <= 200 + worst_underestimate
    assert max(time for time, _ in starts) >= 120  # the limit did make requests wait


def test_the_limit_holds_across_threads_each_with_its_own_event_loop() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=5, clock=clock.now, sleep=clock.sleep)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        async def body() -> None:
            async def one() -> None:
                await limiter.acquire()
                with lock:
                    starts.append(clock.now())

            await asyncio.gather(*(one() for _ in range(6)))

        asyncio.run(body())

    threads = [threading.Thread(target=worker) for _ in range(2)]

    async def drive() -> None:
        for thread in threads:
            thread.start()
        await until(lambda: len(starts) >= 5 and limiter.waiting <= 7)
        clock.advance_to(60)
        await until(lambda: len(starts) >= 10 and limiter.waiting <= 2)
        clock.advance_to(120)
        await until(lambda: len(starts) == 12)

    asyncio.run(drive())
    for thread in threads:
        thread.join()
    assert sorted(starts) == [0.0] * 5 + [60.0] * 5 + [120.0] * 2


# -- through the provider SDKs and the fake server ----------------------------------------------


def limited_registry(
    tmp_path: pathlib.Path, server: FakeProviderServer, **limits: int
) -> ModelRegistry:
    path = write_models_file(tmp_path / "models.json", server)
    comment, text = path.read_text().split("\n", 1)
    models = json.loads(text)
    for entry in models["models"]:
        entry.update(limits)
    path.write_text(f"{comment}\n{json.dumps(models)}")
    return ModelRegistry.with_models_file(path)


def record_times(server: FakeProviderServer, clock: FakeClock) -> list[float]:
    """Makes the server note the fake clock's time of every request it answers."""
    times: list[float] = []

    def responder(provider: str, body: dict[str, Any]) -> str:
        times.append(clock.now())
        return "ok"

    server.responder = responder
    return times


def test_a_models_file_limit_of_60_rpm_holds_through_the_sdk_within_max_concurrency(
    fake_server: FakeProviderServer, tmp_path: pathlib.Path
) -> None:
    registry = limited_registry(tmp_path, fake_server, requests_per_minute=60, max_concurrency=4)
    clock = FakeClock()
    times = record_times(fake_server, clock)
    fake_server.latency_seconds = 0.005  # so that requests overlap and the cap matters

    async def main() -> None:
        limiters = RateLimiters(clock=clock.now, sleep=clock.sleep)
        clients = [
            ModelClient(
                registry, offline=False, credentials=FAKE_CREDENTIALS, rate_limiters=limiters
            )
            for _ in range(2)
        ]
        calls = [
            asyncio.ensure_future(clients[i % 2].generate("FAKE_OPENAI", request(f"q{i}")))
            for i in range(130)
        ]
        try:
            # The clock stands still until the test moves it; it moves only once every request
            # the limiter allows has been answered, so the server sees each at its start time.
            await until(lambda: sum(call.done() for call in calls) >= 60)
            clock.advance_to(60)
            await until(lambda: sum(call.done() for call in calls) >= 120)
            clock.advance_to(120)
            results = await asyncio.gather(*calls)
        finally:
            for client in clients:
                await client.aclose()
        assert all(result.response.text == "ok" for result in results)

    asyncio.run(main())

    assert fake_server.count() == 130
    assert collections.Counter(times) == {0.0: 60, 60.0: 60, 120.0: 10}
    assert most_in_a_window(times) == 60
    assert fake_server.max_in_flight <= 2 * 4  # max_concurrency holds per client


@pytest.mark.parametrize("model_key", ["FAKE_OPENAI", "FAKE_GEMINI", "FAKE_ANTHROPIC"])
def test_a_429_retry_after_is_waited_even_when_the_limiter_has_room(
    model_key: str, fake_server: FakeProviderServer, tmp_path: pathlib.Path
) -> None:
    registry = limited_registry(tmp_path, fake_server, requests_per_minute=2)
    clock = FakeClock()
    times = record_times(fake_server, clock)
    fake_server.fail_next(1, status=429, retry_after=90)
    retries: list[RetryEvent] = []

    async def main() -> list[int]:
        client = ModelClient(
            registry,
            offline=False,
            credentials=FAKE_CREDENTIALS,
            retry_policy=RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01),
            on_retry=retries.append,
            rate_limiters=RateLimiters(clock=clock.now, sleep=clock.sleep),
        )
        calls = [
            asyncio.ensure_future(client.generate(model_key, request(f"q{i}"))) for i in (0, 1, 2)
        ]
        try:
            # t=0: two starts, one answered 429 with Retry-After: 90; the third waits for t=60.
            await until(lambda: len(retries) == 1 and sum(c.done() for c in calls) >= 1)
            clock.advance_to(60)  # the limiter has room again; the retry still waits
            await until(lambda: sum(c.done() for c in calls) >= 2)
            assert fake_server.count() == 3
            clock.advance_to(90)
            results = await asyncio.gather(*calls)
        finally:
            await client.aclose()
        return [result.attempts for result in results]

    attempts = asyncio.run(main())

    assert sorted(attempts) == [1, 1, 2]
    assert retries[0].delay_seconds == 90 and retries[0].error.retry_after == 90
    assert fake_server.count() == 4  # the retry counts as a request
    assert times == [0.0, 60.0, 90.0]  # the answered requests; the 429 came at 0
