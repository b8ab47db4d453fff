"""A schedule's own fields checked: id, job reference, cron expression, time zone, policies.

The job a schedule runs is checked by `llm_scheduler.execution.schedules.add_schedule`, with the
`Validator`, as ``job_submitter`` checks a job.
"""

from __future__ import annotations

from llm_scheduler.errors import ConfigError, ConfigProblem, UserError
from llm_scheduler.execution import cron
from llm_scheduler.execution import documents as docs
from llm_scheduler.v1 import config_pb2

__all__ = ["MAX_SCHEDULE_ID_LENGTH", "check_schedule"]

# Run ids are `{schedule_id}-YYYYMMDDTHHMMZ`, within the 256 bytes of an id.
MAX_SCHEDULE_ID_LENGTH = 200


def check_schedule(config: config_pb2.ScheduleConfig) -> None:
    """Validates a schedule's own fields (not its job): id, job reference, cron, time zone.

    Raises:
        ConfigError: Every problem found, each at its field path with a hint.
    """
    problems: list[ConfigProblem] = []
    if not config.schedule_id:
        problems.append(
            ConfigProblem("schedule_id", "a schedule needs an id", 'e.g. "nightly_report"')
        )
    elif len(config.schedule_id) > MAX_SCHEDULE_ID_LENGTH:
        problems.append(
            ConfigProblem(
                "schedule_id",
                f"the id is longer than {MAX_SCHEDULE_ID_LENGTH} characters",
                "shorten it: run ids are the id followed by the slot",
            )
        )
    else:
        try:
            docs.path_segment("schedule id", config.schedule_id)
        except UserError as error:
            problems.append(
                ConfigProblem("schedule_id", str(error), "use letters, digits, '_', '-' and '.'")
            )
    if bool(config.job_path) == bool(config.job_id):
        problems.append(
            ConfigProblem(
                "job_path" if config.job_path else "",
                "a schedule names its job with exactly one of job_path and job_id",
                "give job_path (a job config file) or job_id (a job saved at jobs/{job_id})",
            )
        )
    elif config.job_id:
        try:
            docs.job_definition_path(config.job_id)
        except UserError as error:
            problems.append(ConfigProblem("job_id", str(error)))
    try:
        cron.check_cron(config.cron)
    except ValueError as error:
        problems.append(
            ConfigProblem(
                "cron",
                str(error),
                'five fields: minute hour day-of-month month day-of-week, e.g. "*/5 * * * *" '
                '(every 5 minutes) or "30 2 * * MON-FRI" (02:30 on weekdays)',
            )
        )
    try:
        cron.check_time_zone(config.time_zone)
    except ValueError as error:
        problems.append(
            ConfigProblem(
                "time_zone", str(error), 'an IANA name, e.g. "Europe/Paris" or "UTC" (the default)'
            )
        )
    # Proto3 enums are open: a binary config may hold a number no policy has.
    if config.overlap not in config_pb2.OverlapPolicy.values():
        problems.append(
            ConfigProblem(
                "overlap",
                f"unknown overlap policy {config.overlap}",
                "OVERLAP_POLICY_SKIP or OVERLAP_POLICY_ALLOW",
            )
        )
    if config.catch_up not in config_pb2.CatchUpPolicy.values():
        problems.append(
            ConfigProblem(
                "catch_up",
                f"unknown catch-up policy {config.catch_up}",
                "CATCH_UP_POLICY_LATEST, CATCH_UP_POLICY_NONE or CATCH_UP_POLICY_ALL",
            )
        )
    if problems:
        raise ConfigError(problems)
