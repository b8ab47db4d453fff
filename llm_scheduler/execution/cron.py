"""Cron slots in a time zone: the fire times of a schedule, computed with cronsim.

A schedule's cron expression has five fields (minute hour day-of-month month day-of-week) and is
read in its IANA time zone. The times are computed by `cronsim <https://pypi.org/project/cronsim/>`_,
which follows Debian's cron, daylight-saving quirks included, rather than by parsing cron here:

- An expression whose minute and hour fields are both fixed (``30 2 * * *``) is evaluated in
  local wall-clock time. On a spring-forward day a slot that falls in the skipped hour fires at
  the first minute after the jump (Europe/Paris, 2026-03-29: 02:30 does not exist, the slot is
  03:00 CEST); on a fall-back day a slot in the repeated hour fires once, in its first
  occurrence (2026-10-25: 02:30 CEST, not again at 02:30 CET).
- Any other expression (``*/5 * * * *``, ``30 * * * *``) runs on real elapsed time: it fires
  through the repeated hour twice and not at all in the skipped hour, as Debian's cron does.

Slots are returned as aware UTC datetimes, each strictly after the one before, so a slot always
names one instant (a run id holds it as ``YYYYMMDDTHHMMZ``).
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterator

import cronsim

__all__ = [
    "UTC",
    "check_cron",
    "check_time_zone",
    "latest_slot",
    "parse_slot",
    "slot_id",
    "slot_text",
    "slots_after",
]

UTC = datetime.UTC
_ONE_SECOND = datetime.timedelta(seconds=1)
# Beyond its last match cronsim looks 50 years ahead; no schedule needs more than this many
# consecutive non-matches to be found (an impossible date, e.g. 30 February, is refused first).
_SEARCH_WINDOWS = (
    datetime.timedelta(hours=1),
    datetime.timedelta(days=1),
    datetime.timedelta(days=32),
    datetime.timedelta(days=367),
    datetime.timedelta(days=366 * 8),
)


def check_time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The time zone of an IANA name (``Europe/Paris``); UTC for the empty name.

    Raises:
        ValueError: No such time zone (the message says what to write instead).
    """
    if not name:
        return zoneinfo.ZoneInfo("UTC")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def check_cron(expression: str) -> None:
    """Checks a five-field cron expression.

    Raises:
        ValueError: It is not one, with cronsim's reason (``Bad minute``).
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has five fields (minute hour day-of-month month day-of-week), "
            f"not {len(fields)}: {expression!r}"
        )
    try:
        iterator = cronsim.CronSim(expression, datetime.datetime(2000, 1, 1, tzinfo=UTC))
    except cronsim.CronSimError as error:
        raise ValueError(f"invalid cron expression {expression!r}: {error}") from None
    if next(iterator, None) is None:
        raise ValueError(f"cron expression {expression!r} never matches")


def slots_after(
    expression: str, zone: zoneinfo.ZoneInfo, after: datetime.datetime
) -> Iterator[datetime.datetime]:
    """The slots strictly after ``after``, in order, as UTC datetimes (endless for most crons).

    Args:
        expression: A valid five-field cron expression (`check_cron`).
        zone: The time zone it is read in.
        after: An aware datetime.
    """
    previous = after.astimezone(UTC)
    iterator = cronsim.CronSim(expression, previous.astimezone(zone))
    for found in iterator:
        slot = found.astimezone(UTC)
        # Local-time evaluation may give back an instant at or before the start (a start in the
        # second pass of a repeated hour): slots only ever move forward.
        if slot > previous:
            previous = slot
            yield slot


def latest_slot(
    expression: str,
    zone: zoneinfo.ZoneInfo,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> datetime.datetime | None:
    """The latest slot within ``[not_before, not_after]``, or None when there is none.

    Looks back through growing windows, so a long gap (a schedule every minute, not fired for a
    month) costs about as much as a short one.
    """
    if not_after < not_before:
        return None
    for window in (*_SEARCH_WINDOWS, not_after - not_before):
        start = max(not_before, not_after - window)
        found = None
        for slot in slots_after(expression, zone, start - _ONE_SECOND):
            if slot > not_after:
                break
            found = slot
        if found is not None or start == not_before:
            return found
    return None


def slot_text(slot: datetime.datetime) -> str:
    """A slot as an RFC 3339 UTC timestamp: ``2026-03-29T01:00:00Z``."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_id(slot: datetime.datetime) -> str:
    """A slot as it appears in run ids: ``20260329T0100Z``."""
    return slot.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def parse_slot(text: str) -> datetime.datetime:
    """A slot written by `slot_text`, back as a UTC datetime."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
