"""Converts configs and run records between JSON, textproto and binary protobuf.

Usage:
    proto_decoder --input_path=job.binpb --config_type=job            # binary -> readable JSON
    proto_decoder --input_path=job.json --output_format=textproto
    proto_decoder --input_path=job.json --output_format=binary --output_path=job.binpb

The input format comes from the file extension (.json, .textproto/.txtpb/.pbtxt,
.binpb/.pb/.bin) or, failing that, from the content.
"""

from __future__ import annotations

import pathlib
import sys

from absl import flags as absl_flags

from llm_scheduler.config import formats
from llm_scheduler.config.kinds import message_type
from llm_scheduler.config.sub_jobs import as_written
from llm_scheduler.errors import UserError
from llm_scheduler.runner import common, flags
from llm_scheduler.v1 import config_pb2

__all__ = ["convert", "main", "run"]

OUTPUT_PATH = absl_flags.DEFINE_string(
    "output_path", None, "Where to write the result (default: stdout)."
)


def convert(input_path: str, config_type: str, output_format: formats.ConfigFormat) -> bytes:
    """Reads a config of ``config_type`` and returns it in ``output_format``.

    Sub-job steps keep their ``job_path`` without the child job read from it
    (`sub_jobs.as_written`), so the result loads again.

    Raises:
        ConfigError: The file is not a valid ``config_type``.
    """
    message = formats.load(input_path, message_type(config_type))
    if isinstance(message, (config_pb2.JobConfig, config_pb2.TaskConfig)):
        message = as_written(message)
    return formats.dumps(message, output_format)


def _convert() -> int:
    path = common.require_input_path()
    config_type = flags.CONFIG_TYPE.value or common.guess_config_type(path)
    fmt = formats.ConfigFormat(flags.OUTPUT_FORMAT.value)
    data = convert(path, config_type, fmt)
    if OUTPUT_PATH.value:
        try:
            pathlib.Path(OUTPUT_PATH.value).write_bytes(data)
        except OSError as error:
            raise UserError(f"cannot write {OUTPUT_PATH.value}: {error.strerror}") from None
        return common.EXIT_OK
    if fmt is formats.ConfigFormat.BINARY and sys.stdout.isatty():
        raise UserError("refusing to print binary to a terminal: pass --output_path")
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return common.EXIT_OK


main = common.main_for(_convert)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()
