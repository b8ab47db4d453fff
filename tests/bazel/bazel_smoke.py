"""Smoke test of the Bazel targets: the library and the CLIs run offline from runfiles.

`bazel test //tests/bazel:bazel_smoke_test` runs it with unittest, as py_test does; pytest does
not collect it (the name does not match), since outside Bazel there are no runfiles.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

# The runfiles tree of the test: Bazel starts it in the workspace's folder there.
WORKSPACE = pathlib.Path(os.environ.get("TEST_SRCDIR", "."), "llm_scheduler").absolute()
EXAMPLES = WORKSPACE / "examples"


def run_target(package: str, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs a py_binary from this test's runfiles, with no API keys in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [str(WORKSPACE / package / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


class LibraryTest(unittest.TestCase):
    def test_package_comes_from_runfiles_and_dependencies_from_the_venv(self) -> None:
        import google.protobuf

        import llm_scheduler

        package = pathlib.Path(llm_scheduler.__file__)
        self.assertTrue(package.is_relative_to(WORKSPACE), package)
        self.assertIn(".venv", pathlib.Path(sys.executable).parts)
        self.assertIn(".venv", pathlib.Path(google.protobuf.__file__).parts)

    def test_a_sample_step_validates_and_runs_offline(self) -> None:
        from llm_scheduler import ModelClient, RunContext, Validator, load_config, run_step
        from llm_scheduler.v1 import config_pb2, run_pb2

        step = load_config(str(EXAMPLES / "sample_step_config.json"), config_pb2.StepConfig)
        Validator().check_step(step)
        result = asyncio.run(run_step(step, {}, RunContext(models=ModelClient(offline=True))))
        self.assertEqual(result.record.status, run_pb2.RUN_STATUS_SUCCEEDED)
        self.assertTrue(result.record.response_text.startswith("[offline GEMINI_FLASH"))


class CliTest(unittest.TestCase):
    def test_step_runner_prints_json_offline(self) -> None:
        result = run_target(
            "llm_scheduler/runner",
            "step_runner",
            f"--input_path={EXAMPLES / 'sample_step_config.json'}",
            "--offline",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIsInstance(json.loads(result.stdout), dict)
        self.assertIn("offline:GEMINI_FLASH", result.stderr)

    def test_create_sample_writes_configs_that_config_reader_validates(self) -> None:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as out:
            created = run_target(
                "llm_scheduler/config_tools", "create_sample", f"--output_dir={out}"
            )
            self.assertEqual(created.returncode, 0, created.stderr)
            paths = created.stdout.split()
            names = {pathlib.Path(path).name for path in paths}
            for name in (
                "step",
                "task",
                "job",
                "fanout_job",
                "map_job",
                "sub_job",
                "sub_job_child",
            ):
                self.assertIn(f"sample_{name}_config.json", names, created.stdout)
            for path in paths:
                with self.subTest(path=path):
                    read = run_target(
                        "llm_scheduler/config_tools", "config_reader", f"--input_path={path}"
                    )
                    self.assertEqual(read.returncode, 0, read.stderr)
                    self.assertIn("valid", read.stderr)

    def test_the_map_sample_runs_offline(self) -> None:
        result = run_target(
            "llm_scheduler/runner",
            "job_runner",
            f"--input_path={EXAMPLES / 'sample_map_job_config.json'}",
            "--offline",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("article", json.loads(result.stdout)["assemble"])
        self.assertIn("[write[2]] step 1/1 write done", result.stderr)

    def test_the_sub_job_sample_runs_offline(self) -> None:
        result = run_target(
            "llm_scheduler/runner",
            "job_runner",
            f"--input_path={EXAMPLES / 'sample_sub_job_config.json'}",
            "--offline",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("article", json.loads(result.stdout)["assemble"])
        self.assertIn("job Draft and polish one section succeeded", result.stderr)

    def test_an_invalid_config_exits_2(self) -> None:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as out:
            job = json.loads((EXAMPLES / "sample_job_config.json").read_text())
            job["tasks"][2]["next_task"] = "nowhere"
            path = pathlib.Path(out, "bad_job.json")
            path.write_text(json.dumps(job))
            result = run_target(
                "llm_scheduler/runner", "job_runner", f"--input_path={path}", "--offline"
            )
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("tasks[2].next_task", result.stderr)


if __name__ == "__main__":
    unittest.main()
