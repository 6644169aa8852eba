"""Tax arithmetic in minor units: one rule, a table of awkward cases, refunds that add back up, and the settings."""
from decimal import Decimal

import pytest

from kiosk.core import tax
from kiosk.core.catalog import load_catalog
from kiosk.core.config import load_settings
from tests.support.settings import SAMPLE


def lines(*totals, tax_class="standard"):
    return [{"total": t, "tax_class": tax_class} for t in totals]


D = Decimal
# (what, lines, rates, prices include tax, expected subtotal, expected tax per class, expected total)
CASES = [
    ("8.875% added on $10.00", lines(1000), {"standard": D("8.875")}, False, 1000, {"standard": 89}, 1089),
    ("x.5 exactly rounds up: 5% of 10 cents", lines(10), {"standard": D("5")}, False, 10, {"standard": 1}, 11),
    ("1.5 rounds up: 5% of 30 cents", lines(30), {"standard": D("5")}, False, 30, {"standard": 2}, 32),
    ("2.5 rounds up, not to even: 5% of 50 cents", lines(50), {"standard": D("5")}, False, 50, {"standard": 3}, 53),
    ("many lines are added up first, then taxed once", lines(333, 333, 334), {"standard": D("8.875")}, False,
     1000, {"standard": 89}, 1089),
    ("a hundred 1-cent lines", lines(*[1] * 100), {"standard": D("8.875")}, False, 100, {"standard": 9}, 109),
    ("0% is no tax", lines(4710), {"standard": D("0")}, False, 4710, {"standard": 0}, 4710),
    ("a 4-decimal rate: 7.1234% of $99.99", lines(9999), {"standard": D("7.1234")}, False, 9999,
     {"standard": 712}, 10711),
    ("a rate of 100%", lines(1234), {"standard": D("100")}, False, 1234, {"standard": 1234}, 2468),
    ("two classes: books zero-rated, a tote taxed", lines(4710) + lines(2310, tax_class="gift"),
     {"standard": D("0"), "gift": D("8.875")}, False, 7020, {"gift": 205, "standard": 0}, 7225),
    ("the issue's receipt: $47.10 at 8.875% beside $23.10 at 0%", lines(4710) + lines(2310, tax_class="zero"),
     {"standard": D("8.875"), "zero": D("0")}, False, 7020, {"standard": 418, "zero": 0}, 7438),
    ("20% VAT included in £9.99: 166.5p rounds up", lines(999), {"standard": D("20")}, True, 999,
     {"standard": 167}, 999),
    ("5% VAT included in £21.00 is exactly £1.00", lines(2100), {"standard": D("5")}, True, 2100,
     {"standard": 100}, 2100),
    ("VAT included: books zero-rated, a mug at 20%", lines(1299) + lines(850, tax_class="gift"),
     {"standard": D("0"), "gift": D("20")}, True, 2149, {"gift": 142, "standard": 0}, 2149),
    ("JPY 10% added on ¥1,505: 150.5 yen rounds up", lines(1505), {"standard": D("10")}, False, 1505,
     {"standard": 151}, 1656),
    ("JPY 8% included in ¥1,080 is ¥80", lines(1080), {"standard": D("8")}, True, 1080, {"standard": 80}, 1080),
    ("no rates: no tax at all", lines(1000, 299), {}, False, 1299, {}, 1299),
]


@pytest.mark.parametrize("what,items,rates,inclusive,subtotal,per_class,total", CASES, ids=[c[0] for c in CASES])
def test_the_awkward_cases(what, items, rates, inclusive, subtotal, per_class, total):
    taxed = tax.compute(items, rates, inclusive)
    assert (taxed.subtotal, {t.tax_class: t.tax for t in taxed.lines}, taxed.total) == (subtotal, per_class, total)
    if inclusive:
        assert taxed.total == taxed.subtotal
    else:
        assert taxed.total == taxed.subtotal + taxed.tax


def test_rates_are_parsed_strictly():
    assert tax.parse_rates("standard:8.875, zero:0") == {"standard": D("8.875"), "zero": D("0")}
    assert tax.parse_rates("Standard:20,reduced:5,zero:0") == {"standard": D("20"), "reduced": D("5"), "zero": D("0")}
    assert tax.parse_rates("") == {}
    for bad in ("standard", "standard:", "standard:8,875", "standard:8.87501", "standard:101", "standard:-1",
                "a b:5", "standard:5,standard:6", "standard:abc", ":5"):
        with pytest.raises(tax.TaxRatesError):
            tax.parse_rates(bad)


@pytest.mark.parametrize("parts", [[1089], [500, 589], [1, 1, 1, 1086], [333, 333, 423]])
def test_refunds_in_parts_add_up_to_the_tax_sold(parts):
    sold = [{"tax_class": "standard", "tax": 89}, {"tax_class": "gift", "tax": 13}]
    refunded, shares = 0, {"standard": 0, "gift": 0}
    for part in parts:
        for name, amount in tax.apportion(sold, 1089, refunded, part).items():
            assert amount >= 0
            shares[name] += amount
        refunded += part
    assert shares == {"standard": 89, "gift": 13}


def test_a_malformed_rate_list_is_a_setup_problem_that_stops_payments(tmp_path):
    env = {"KIOSK_DATA_DIR": str(tmp_path), "KIOSK_CATALOG": str(SAMPLE), "STRIPE_SECRET_KEY": "sk_test_x",
           "STRIPE_PUBLISHABLE_KEY": "pk_test_x", "KIOSK_TAX_RATES": "standard=8.875"}
    settings = load_settings(environ=env, env_file=tmp_path / "none.env")
    [problem] = [p for p in settings.problems if p.setting == "KIOSK_TAX_RATES"]
    assert "like standard:8.875" in str(problem) and not problem.fatal and not settings.payments_ready
    env["KIOSK_TAX_RATES"] = "standard:8.875"
    assert load_settings(environ=env, env_file=tmp_path / "none.env").payments_ready


def test_a_row_naming_an_unknown_class_is_skipped_with_file_line_and_column(tmp_path):
    csv = tmp_path / "books.csv"
    csv.write_text("isbn,title,author,price,stock,tax\n9780306406157,Good Book,Ann,23.00,4,zero\n"
                   "9783434922599,A Mug,Bob,8.50,2,gift\n9780141439518,Plain,Cid,5.00,1,\n", encoding="utf-8")
    catalog = load_catalog(csv, "USD", {"standard": D("20"), "zero": D("0")})
    assert {b.title: b.tax_class for b in catalog.books} == {"Good Book": "zero", "Plain": "standard"}
    [warning] = catalog.warnings
    assert str(warning).startswith("books.csv, line 3, column tax: 'gift' is not a tax class")
    # Without KIOSK_TAX_RATES the column is not checked: no tax anywhere.
    assert len(load_catalog(csv, "USD").books) == 3
