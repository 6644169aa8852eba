"""Money as integer minor units, converted and formatted with Babel."""
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache

from babel.numbers import format_currency, get_currency_precision


@cache  # a handful of currencies, asked for each amount a year's export writes
def exponent(currency):
    """Digits after the decimal point for a currency: 2 for USD, 0 for JPY."""
    return get_currency_precision(currency.upper())


def to_minor(text, currency):
    """Parse a major-unit decimal string ("23.00", "1500") into integer minor units, or raise ValueError."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a number")
    digits = exponent(currency)
    if value.as_tuple().exponent < -digits:
        raise ValueError(f"{text!r} has more than {digits} decimal places for {currency.upper()}")
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    if value >= 10 ** 12:
        # No price is this large, and "1e999990" would take minutes to turn into an int (or overflow).
        raise ValueError(f"{text!r} is too large")
    return int(value.scaleb(digits))


@lru_cache(maxsize=4096)  # a page shows dozens of prices from a few hundred distinct ones; Babel is slow
def format_money(minor, currency, locale):
    """Format integer minor units for a locale: 2300 USD en_US -> '$23.00'."""
    major = Decimal(minor).scaleb(-exponent(currency))
    return format_currency(major, currency.upper(), locale=locale)
