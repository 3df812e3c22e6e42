"""Six-field cron expressions, as Kubeflow Pipelines reads them (robfig/cron, seconds first), and their next times.

    ┌ second (0-59)  ┌ minute (0-59)  ┌ hour (0-23)  ┌ day of month (1-31)  ┌ month (1-12, JAN-DEC)  ┌ day of week
    0                0                2              *                      *                        *   (0-6, SUN-SAT)

Each field: ``*``, ``?`` (day fields), a value, ``a-b``, lists ``a,b``, steps ``*/n``, ``a-b/n``, ``a/n``. As in
robfig/cron, when both day fields are restricted a day matches if EITHER matches. A 5-field (minute-first) crontab
line is rejected with the 6-field spelling it probably meant: KFP would otherwise read its minute as seconds.
Times are UTC, like the KFP scheduled-workflow controller's default.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

FIELDS = ("second", "minute", "hour", "day of month", "month", "day of week")
RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
NAMES = {
    4: {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m},
    5: {d.upper(): (i + 1) % 7 for i, d in enumerate(calendar.day_abbr)},  # day_abbr starts on Monday
}
#: How far ahead `next_after` looks before it decides an expression never fires (Feb 30 and the like).
HORIZON = timedelta(days=366 * 5)


class CronError(ValueError):
    """An expression KFP would refuse or misread; the message names the field and what is allowed."""


@dataclass(frozen=True)
class CronSchedule:
    """A parsed expression: the allowed values of each field."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def _day_matches(self, when: datetime) -> bool:
        dom = when.day in self.days
        dow = (when.weekday() + 1) % 7 in self.weekdays  # datetime: Monday=0; cron: Sunday=0
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after `after` (timezone-aware; naive times are read as UTC)."""
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        t = after.replace(microsecond=0) + timedelta(seconds=1)
        limit = after + HORIZON
        while t <= limit:
            # Coarse to fine: skip whole months, days, hours, minutes that cannot match.
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise CronError(f"cron {self.expression!r} does not fire within {HORIZON.days} days")


def _value(text: str, index: int) -> int:
    names = NAMES.get(index, {})
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise CronError(f"{FIELDS[index]} field: {text!r} is not a number"
                        + (f" or one of {sorted(names)}" if names else ""))
    return int(text)


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    """Allowed values of one field, and whether it restricts anything (``*``/``?`` do not)."""
    low, high = RANGES[index]
    if text in ("*", "?"):
        if text == "?" and index not in (3, 5):
            raise CronError(f"{FIELDS[index]} field: '?' is only allowed in the day-of-month and day-of-week fields")
        return frozenset(range(low, high + 1)), False
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            raise CronError(f"{FIELDS[index]} field: step in {part!r} must be a whole number")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(f"{FIELDS[index]} field: step in {part!r} must be >= 1")
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = _value(a, index), _value(b, index)
        else:
            start = _value(base, index)
            end = high if step_text else start  # "a/n" runs from a to the end of the range
        if not low <= start <= end <= high:
            raise CronError(f"{FIELDS[index]} field: {part!r} is outside {low}-{high} (or its range is reversed)")
        values.update(range(start, end + 1, step))
    return frozenset(values), True


def parse_cron(expression: str) -> CronSchedule:
    """Validate and parse a 6-field expression; raise `CronError` saying what is wrong and how to write it."""
    fields = expression.split()
    if len(fields) == 5:
        raise CronError(
            f"cron {expression!r} has 5 fields (a classic minute-first crontab line); Kubeflow Pipelines needs 6 "
            f"fields with SECONDS first: second minute hour day-of-month month day-of-week, e.g. "
            f"'0 {expression.strip()}'"
        )
    if len(fields) != 6:
        raise CronError(f"cron {expression!r} has {len(fields)} fields; need 6: second minute hour day-of-month month "
                        "day-of-week (e.g. '0 0 2 * * *' = every day at 02:00:00 UTC)")
    parsed = [_field(text, i) for i, text in enumerate(fields)]
    return CronSchedule(
        expression=" ".join(fields),
        seconds=parsed[0][0], minutes=parsed[1][0], hours=parsed[2][0], days=parsed[3][0], months=parsed[4][0],
        weekdays=parsed[5][0], days_restricted=parsed[3][1], weekdays_restricted=parsed[5][1],
    )
