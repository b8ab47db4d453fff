"""The command-line runners: step_runner, task_runner, job_runner."""
