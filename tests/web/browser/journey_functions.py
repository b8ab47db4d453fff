"""Functions the browser tests' dispatcher may call (``--function_modules``).

Both depend on a file the test writes, so a test decides when a task finishes or whether it
fails, whatever the machine's speed: ``web_test.wait_for_file`` keeps its task running until the
file exists; ``web_test.read_file`` fails until it exists (the fix), so that resuming the run
then makes it succeed.
"""

from __future__ import annotations

import asyncio
import pathlib

from llm_scheduler.errors import FunctionCallError
from llm_scheduler.function_steps import register_function

# A task waiting for its file gives up after this long (a test that failed half-way).
_WAIT_SECONDS = 120.0
_POLL_SECONDS = 0.02


@register_function("web_test.read_file")
def read_file(path: str) -> str:
    """The text of ``path``; fails while there is no such file."""
    file = pathlib.Path(path)
    if not file.exists():
        raise FunctionCallError(f"{path} does not exist yet: <b>create it</b>, then resume")
    return file.read_text()


@register_function("web_test.wait_for_file")
async def wait_for_file(path: str) -> str:
    """The text of ``path``, once it exists (the task runs until then)."""
    file = pathlib.Path(path)
    for _ in range(int(_WAIT_SECONDS / _POLL_SECONDS)):
        if file.exists():
            return file.read_text()
        await asyncio.sleep(_POLL_SECONDS)
    raise FunctionCallError(f"{path} did not appear in {_WAIT_SECONDS:.0f} s")
