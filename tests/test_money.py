"""Minor units: parsed by the currency's exponent, formatted with Babel."""
import pytest

from kiosk.core.money import format_money, to_minor


@pytest.mark.parametrize("text, currency, minor", [
    ("23.00", "usd", 2300), ("23", "USD", 2300), ("0.5", "USD", 50), ("0", "USD", 0),
    ("1500", "JPY", 1500), ("1.234", "KWD", 1234), ("19.99", "EUR", 1999),
])
def test_to_minor(text, currency, minor):
    assert to_minor(text, currency) == minor


@pytest.mark.parametrize("text, currency", [
    ("1500.5", "JPY"), ("1.001", "USD"), ("-1", "USD"), ("NaN", "USD"), ("Infinity", "USD"), ("", "USD"),
    ("1,00", "USD"),
])
def test_to_minor_refuses(text, currency):
    with pytest.raises(ValueError):
        to_minor(text, currency)


def test_format_for_locale():
    assert format_money(2300, "USD", "en_US") == "$23.00"
    assert format_money(1500, "JPY", "ja_JP") == "￥1,500"
    assert format_money(1500, "JPY", "en_US") == "¥1,500"
    assert format_money(123456, "EUR", "fr_FR").replace("\u202f", " ").replace("\xa0", " ") == "1 234,56 €"
