"""A dispatcher killed in the middle of a run, and how soon another one gets going again.

On the Firestore emulator (or an SQLite file): submit a 300-task fan-out, start a dispatcher,
SIGKILL it after a few tasks, start another, and time its first finished task. Before issue 10,
every claim read the job run in a transaction, so a process killed inside one left a lock the
emulator kept for about 60 s: the restart waited a minute before its first claim.

    python -m bench.kill_restart [--store=firestore|sqlite] [--trials=3]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time

from bench.contention import BIN, fan_out_job, store_urls


def first_task_after_restart(url: str, env: dict[str, str], kill_after: int) -> float:
    """Kills a dispatcher after ``kill_after`` finished tasks; seconds to the next one's first."""
    environ = {**os.environ, **env}
    command = [str(BIN / "dispatcher"), "--offline", f"--store={url}", "--workers=8"]
    victim = subprocess.Popen(command, env=environ, stderr=subprocess.PIPE, text=True)
    assert victim.stderr is not None
    finished = 0
    for line in victim.stderr:
        finished += ": succeeded" in line
        if finished >= kill_after:
            break
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    started = time.monotonic()
    successor = subprocess.Popen(command, env=environ, stderr=subprocess.PIPE, text=True)
    assert successor.stderr is not None
    try:
        for line in successor.stderr:
            if ": succeeded" in line:
                return time.monotonic() - started
        raise RuntimeError("the second dispatcher finished no task")
    finally:
        successor.kill()
        successor.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["firestore", "sqlite"], default="firestore")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        store_urls(args.store, pathlib.Path(tmp)) as (
            env,
            urls,
        ),
    ):
        job_file = pathlib.Path(tmp) / "fan_out.json"
        job_file.write_text(json.dumps(fan_out_job(298)))
        url = urls[0]
        subprocess.run(
            [str(BIN / "job_submitter"), f"--input_path={job_file}", f"--store={url}", "--quiet"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        for trial in range(args.trials):
            seconds = first_task_after_restart(url, env, kill_after=5 + 7 * trial)
            print(
                f"{args.store}: trial {trial + 1}: first task finished {seconds:.1f} s after "
                "the restart (process start-up included)",
                flush=True,
            )


if __name__ == "__main__":
    main()
