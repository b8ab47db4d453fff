"""Writes sample step, task and job configs to a folder.

Usage: create_sample --output_dir=DIR
"""

from __future__ import annotations

import pathlib

from absl import flags

from llm_scheduler.config_tools.samples import sample_files
from llm_scheduler.errors import UserError
from llm_scheduler.runner import common

__all__ = ["main", "run", "write_samples"]

OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "", "The folder to write the samples to (created if missing; default: .)."
)


def write_samples(output_dir: str | pathlib.Path) -> list[pathlib.Path]:
    """Writes every sample config into ``output_dir`` and returns the paths written.

    Raises:
        UserError: The folder cannot be created or written.
    """
    folder = pathlib.Path(output_dir or ".")
    written: list[pathlib.Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in sample_files().items():
            path = folder / name
            path.write_bytes(content)
            written.append(path)
    except OSError as error:
        raise UserError(f"cannot write samples to {folder}: {error.strerror or error}") from None
    return written


def _create() -> int:
    for path in write_samples(OUTPUT_DIR.value):
        print(path)
    return common.EXIT_OK


main = common.main_for(_create)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()
