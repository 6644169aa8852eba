"""Tax through a whole sale: the PaymentIntent's amount is the taxed total, the ledger keeps each line's class
and rate as sold, refunds apportion the tax, and the export and the day's report add back up to the ledger."""
import csv
import io
from contextlib import closing
from decimal import Decimal

import pytest

from kiosk import create_app
from kiosk.core import stamps
from kiosk.ledger import orders, reports
from tests.support.client import KioskClient
from tests.support.ledger import buy, ledger, order
from tests.support.refunds import confirm_form, review_url
from tests.support.settings import make_settings, sample_rows, write_catalog

PIN = "2468"
ADDRESS = "12 Market Street|Springfield, IL 62701"


def taxed_catalog(folder):
    """The sample catalog with a tax column: its first book zero-rated, the rest standard."""
    rows = sample_rows()
    rows[0]["tax"] = "zero"
    for row in rows[1:]:
        row["tax"] = ""
    return write_catalog(folder, rows), rows


@pytest.fixture
def shop(tmp_path, stripe_server):
    path, rows = taxed_catalog(tmp_path)
    settings = make_settings(tmp_path, stripe_server, KIOSK_CATALOG=str(path), KIOSK_TAX_RATES="standard:8.875,zero:0",
                             KIOSK_SHOP_ADDRESS=ADDRESS, KIOSK_TAX_ID="US-12-3456789", KIOSK_STAFF_PIN=PIN)
    return create_app(settings, testing=True), rows


def staff(app):
    client = KioskClient(app)
    client.token()
    client.post("/staff/login", data={"pin": PIN})
    return client


def cents(text):
    return int(Decimal(text) * 100)


def test_a_sale_charges_and_records_the_tax_as_sold(shop, stripe_server):
    app, rows = shop
    catalog = app.extensions["kiosk"].catalog
    zero, standard = catalog.get(rows[0]["isbn"]), catalog.get(rows[1]["isbn"])
    purchase = buy(app, stripe_server, {zero.isbn13: 1, standard.isbn13: 2})
    expected_tax = int((Decimal(2 * standard.price) * Decimal("8.875") / 100).quantize(Decimal(1), "ROUND_HALF_UP"))
    expected_total = zero.price + 2 * standard.price + expected_tax
    intent = stripe_server.client().v1.payment_intents.retrieve(purchase.intent)
    assert intent.amount == expected_total
    assert intent.metadata["tax"] == f"standard:8.875:{expected_tax},zero:0:0"
    assert intent.metadata["subtotal"] == str(zero.price + 2 * standard.price)
    row = order(app, purchase.reference)
    assert (row["status"], row["amount"], row["subtotal"], row["tax"], row["tax_inclusive"]) == \
        ("paid", expected_total, zero.price + 2 * standard.price, expected_tax, 0)
    with closing(ledger(app)) as db:
        assert {r["isbn"]: (r["tax_class"], r["tax_rate"]) for r in orders.lines(db, row["id"])} == \
            {zero.isbn13: ("zero", "0"), standard.isbn13: ("standard", "8.875")}
        assert [tuple(t) for t in orders.taxes(db, row["id"])] == \
            [("standard", "8.875", 2 * standard.price, expected_tax), ("zero", "0", zero.price, 0)]
    page = purchase.confirm().get_data(as_text=True)
    money = app.extensions["kiosk"].money
    for shown in ("12 Market Street", "Springfield, IL 62701", "Tax number US-12-3456789", purchase.reference,
                  purchase.intent, "Sales tax 8.875%", money(expected_tax), money(expected_total),
                  f'id="receipt-subtotal">{money(zero.price + 2 * standard.price)}'):
        assert shown in page, shown


def test_refunds_apportion_the_tax_and_the_day_adds_back_up(shop, stripe_server):
    app, rows = shop
    books = [app.extensions["kiosk"].catalog.get(r["isbn"]) for r in rows[:3]]
    first = buy(app, stripe_server, {books[0].isbn13: 1, books[1].isbn13: 1})
    second = buy(app, stripe_server, {books[2].isbn13: 3})
    client = staff(app)
    for reference, amount in ((first.reference, 500), (first.reference, None), (second.reference, 333)):
        row = order(app, reference)
        left = row["amount"] - row["amount_refunded"] if amount is None else amount
        review = client.get(review_url(reference, amount=stamps.major(left, "USD"))).get_data(as_text=True)
        page = client.post(f"/staff/orders/{reference}/refund", follow_redirects=True,
                           data=confirm_form(review)).get_data(as_text=True)
        assert "Refunded $" in page
    with closing(ledger(app)) as db:
        sold_tax = db.execute("SELECT SUM(tax) FROM orders").fetchone()[0]
        refunded = db.execute("SELECT SUM(amount), SUM(tax) FROM refunds").fetchone()
        first_row = order(app, first.reference)
        first_refund_tax = db.execute("SELECT SUM(tax) FROM refunds WHERE order_id = ?",
                                      (first_row["id"],)).fetchone()[0]
        assert first_refund_tax == first_row["tax"]  # refunded in full: all of its tax, to the cent
        report = reports.day_report(db, stamps.today())
    total = report["total"]
    charged = sum(c.amount for c in stripe_server.charges() if c.status == "succeeded")
    refunded_at_stripe = sum(r.amount for r in stripe_server.client().v1.refunds.list({"limit": 100}).data)
    assert (total["sales"], total["refunds"], total["tax"], total["tax_refunded"]) == \
        (charged, refunded_at_stripe, sold_tax, refunded[1])
    assert total["net"] == charged - refunded_at_stripe and total["net_tax"] == sold_tax - refunded[1]
    assert total["orders"] == 2 and total["books"] == 5
    assert sum(r["net_tax"] for _, _, r in report["rates"]) == total["net_tax"]
    # The day on screen and as CSV say the same.
    money = app.extensions["kiosk"].money
    page = client.get("/staff/day").get_data(as_text=True)
    for figure in ("day-sales", "day-refunds", "day-net", "day-net-tax"):
        key = {"day-sales": "sales", "day-refunds": "refunds", "day-net": "net", "day-net-tax": "net_tax"}[figure]
        assert f'id="{figure}">{money(total[key])}<' in page
    day = list(csv.reader(io.StringIO(client.get("/staff/day.csv").data.decode("utf-8-sig"))))
    assert day[0][:13] == ["Day", "Counter", "Orders", "Books", "Gross", "Discounts", "Sales", "Refunds", "Net", "Tax",
                           "Tax refunded", "Net tax", "Net without tax"]
    assert [cents(c) for c in day[1][4:13]] == [total[k] for k in ("gross", "discounts", "sales", "refunds", "net",
                                                                    "tax", "tax_refunded", "net_tax", "net_ex_tax")]
    # The export: subtotal + tax = total on every order; the per-rate columns add up to the tax.
    export = list(csv.DictReader(io.StringIO(client.get("/staff/export.csv").data.decode("utf-8-sig"))))
    for line in export:
        assert cents(line["Subtotal"]) + cents(line["Tax"]) == cents(line["Total"]) == cents(line["Amount"])
        per_rate = [cents(v) for k, v in line.items() if k.startswith("Sales tax ") and v]
        assert sum(per_rate) == cents(line["Tax"])
    assert sum(cents(line["Tax"]) for line in export) == sold_tax


def test_a_later_rate_change_leaves_sold_lines_as_sold(shop, stripe_server, tmp_path):
    app, rows = shop
    book = app.extensions["kiosk"].catalog.get(rows[1]["isbn"])
    sold = buy(app, stripe_server, {book.isbn13: 1})
    settings = make_settings(tmp_path, stripe_server, KIOSK_CATALOG=str(tmp_path / "books.csv"),
                             KIOSK_TAX_RATES="standard:9.5,zero:0")
    later = create_app(settings, testing=True)
    with closing(ledger(later)) as db:
        assert [tuple(t)[:2] for t in orders.taxes(db, order(later, sold.reference)["id"])] == [("standard", "8.875")]
    again = buy(later, stripe_server, {book.isbn13: 1})
    assert order(later, again.reference)["tax"] == int((Decimal(book.price) * Decimal("9.5") / 100)
                                                      .quantize(Decimal(1), "ROUND_HALF_UP"))


def test_without_rates_the_kiosk_looks_as_it_did(app, client):
    client.add(app.extensions["kiosk"].catalog.books[0].isbn13)
    for path in ("/cart", "/checkout/"):
        page = client.get(path).get_data(as_text=True)
        assert "Subtotal" not in page and "tax-lines" not in page and "Sales tax" not in page
