"""The in-process execution engine: steps, tasks and jobs."""
