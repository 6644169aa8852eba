"""Ledger time: every stamp is UTC text the two databases sort alike; days are the kiosk's own local days. Money
amounts as staff type them (major units). No database here: the shop's pages, the ledger and i18n all use it."""
from datetime import UTC, date, datetime, time, timedelta
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


def local_day_bounds(first, last=None):
    """Ledger timestamps bounding local days `first` to `last` (inclusive), for range queries."""
    last = last or first

    def at(day):
        return datetime.combine(day, time()).astimezone(UTC).strftime(STAMP)
    return at(first), at(last + timedelta(days=1))


def today():
    """The kiosk's local date."""
    return date.today()
