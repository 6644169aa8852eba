"""Ledger time: every stamp is UTC text the two databases sort alike; days are local days in the shop's time zone
(KIOSK_TIMEZONE, passed in as a tzinfo; None is the process's own). Money amounts as staff type them (major units).
No database here: the shop's pages, the ledger and i18n all use it."""
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from kiosk.core.money import exponent

STAMP = "%Y-%m-%d %H:%M:%S"


def now():
    """UTC timestamp as stored in the ledger."""
    return datetime.now(UTC).strftime(STAMP)


def major(minor, currency):
    """Minor units as a plain decimal in major units ("12.99", "1500"), for forms, notes and spreadsheets."""
    digits = exponent(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def stamp_of(unix):
    """A Unix time as a ledger timestamp."""
    return datetime.fromtimestamp(unix, UTC).strftime(STAMP)


def parse_stamp(stamp):
    """A ledger timestamp as an aware UTC datetime, or None when it is empty or not one."""
    try:
        return datetime.strptime(stamp or "", STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def unix_of(stamp):
    """A ledger timestamp as a Unix time."""
    return parse_stamp(stamp).timestamp()


def local_time(stamp, zone=None):
    """A ledger timestamp as an aware datetime in `zone`, or None when it is empty or not one."""
    moment = parse_stamp(stamp)
    return moment.astimezone(zone) if moment else None


def local_day_bounds(first, last=None, zone=None):
    """Ledger timestamps bounding local days `first` to `last` (inclusive) in `zone`, for range queries.

    Each day runs from its own local midnight to the next, so a day with a DST change has 23 or 25 hours."""
    last = last or first

    def at(day):
        # Midnight in a DST gap (fold 0) takes the offset before the change: the first moment the day has.
        # No zone: a naive midnight, which astimezone() reads as the process's local time.
        return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC).strftime(STAMP)
    return at(first), at(last + timedelta(days=1))


def day_hours(day, zone=None):
    """How many hours local day `day` has in `zone`: 24, or 23 or 25 (23.5 on Lord Howe) when the clocks change."""
    start, end = (parse_stamp(stamp) for stamp in local_day_bounds(day, zone=zone))
    return (end - start) / timedelta(hours=1)


def today(zone=None):
    """The date now in `zone` (None: the process's local date)."""
    return datetime.now(zone).date()
