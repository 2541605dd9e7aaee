"""SLA due moments in business time, in the owner's own time zone and holiday calendar.

Days outside `business_hours.days`, the public holidays of the owner's calendar (from the maintained
`holidays` library: `SG`, `US`, `DE-BY`, observed days included) and the playbook's closure days are
skipped. A lead that arrives outside business hours starts its clock at the next opening.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from leadloop.playbook.routing import BusinessHours, Sla


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1024)
def public_holidays(calendar: str, year: int) -> frozenset[date]:
    """The public holidays of `calendar` (a country code, with a subdivision where given: `DE-BY`) in
    `year`, including the weekdays a holiday falling on a weekend is observed on."""
    import holidays  # on first use: ~0.1 s that commands which never route skip

    country, _, subdivision = calendar.partition("-")
    return frozenset(holidays.country_holidays(country, subdiv=subdivision or None, years=year))


class BusinessCalendar:
    """Business days and hours of one playbook for owners of one holiday calendar; `due` computes an
    SLA's deadline."""

    __slots__ = ("_closed", "_days", "_end", "_public", "_start")

    def __init__(self, hours: BusinessHours, holidays: frozenset[date] = frozenset(),
                 public: str | None = None) -> None:
        """`holidays`: closure days; `public`: the calendar whose public holidays are closed too."""
        self._days = hours.weekday_numbers
        self._start, self._end = hours.start, hours.end
        self._closed = holidays
        self._public = public

    def is_business_day(self, day: date) -> bool:
        if day.weekday() not in self._days or day in self._closed:
            return False
        return self._public is None or day not in public_holidays(self._public, day.year)

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        day += timedelta(days=1)
        for _ in range(3660):  # ten years of closures would be a broken calendar, not a long holiday
            if self.is_business_day(day):
                return day
            day += timedelta(days=1)
        raise ValueError("no business day within ten years: check business_hours.days and holidays")

    def _opening(self, local: datetime) -> datetime:
        """`local` itself when the business is open then, else the next opening."""
        day = local.date()
        if self.is_business_day(day):
            if local.time() < self._start:
                return _at(day, self._start, local)
            if local.time() < self._end:
                return local
        return _at(self.next_business_day(day), self._start, local)

    def due(self, sla: Sla, received: datetime, time_zone: str) -> datetime:
        """When an SLA started at `received` expires, as an aware datetime in `time_zone`.

        Business days: the end of the Nth business day after the day the lead was received (a lead
        arriving out of hours counts from the next opening). Business hours: N open hours later.
        """
        local = received.astimezone(zone(time_zone))
        start = self._opening(local)
        if sla.business_days is not None:
            day = start.date()
            for _ in range(sla.business_days):
                day = self.next_business_day(day)
            return _at(day, self._end, start)
        remaining = timedelta(hours=sla.business_hours or 0)
        cursor = start
        while True:
            close = _at(cursor.date(), self._end, cursor)
            if cursor + remaining <= close:
                return cursor + remaining
            remaining -= close - cursor
            cursor = _at(self.next_business_day(cursor.date()), self._start, cursor)


def _at(day: date, clock: time, like: datetime) -> datetime:
    """`day` at wall-clock `clock` in the same zone as `like` (DST-correct via zoneinfo)."""
    return datetime.combine(day, clock, tzinfo=like.tzinfo)
