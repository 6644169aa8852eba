"""Promotions in what staff read (issue #27): Close the day's gross sales, discounts, sales, refunds, net and tax,
what each promotion saved, the CSVs, and the Orders pages, money checked as money to the cent.

The day's orders are written through the ledger's own functions with their discounts and savings as the pricing
rule would have split them (figures worked out by hand below), some with tax added and one with it included."""
import csv
import io
from contextlib import closing
from decimal import Decimal

import pytest

from kiosk import create_app
from kiosk.core import stamps
from kiosk.core.pricing import Saving
from kiosk.core.tax import TaxLine
from kiosk.ledger import orders, reports
from kiosk.ledger import refunds as refund_ledger
from tests.support.client import KioskClient
from tests.support.ledger import books, ledger
from tests.support.promotions import FAIR10, THREE_FOR_TWO, add_promotion
from tests.support.settings import make_settings

PIN = "2468"
FRONT, BACK = ("kiosk_front", "Front"), ("kiosk_back", "Back")


def line(book, title, price, quantity, discount, tax_class="standard"):
    return {"isbn": book.isbn13, "title": title, "unit_price": price, "quantity": quantity, "discount": discount,
            "tax_class": tax_class}


def sell(db, attempt, lines, taxes, savings, who=FRONT, inclusive=False, method="card", pay=True):
    row = orders.open_checkout(db, attempt=attempt, lines=lines, currency="USD", who=who, inclusive=inclusive,
                               taxes=taxes, method=method, savings=savings)
    return orders.mark_paid(db, row["id"]) if pay else row


@pytest.fixture
def day(tmp_path, stripe_server, ledger_url):
    """A shop's day: four paid orders with their promotions and a staff discount, one pending, one book refunded;
    its ledger in SQLite or (each test runs on both) PostgreSQL, as the report's sums are the database's."""
    database = {"KIOSK_DATABASE_URL": ledger_url} if ledger_url.startswith("postgres") else {}
    app = create_app(make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN, KIOSK_TAX_RATES="standard:8.875",
                                   **database), testing=True)
    bundle, fair = add_promotion(app, **THREE_FOR_TWO), add_promotion(app, **FAIR10)
    a, b, c, d, e, f = [book for book in books(app) if book.stock >= 2][:6]
    eight = Decimal("8.875")
    with closing(ledger(app)) as db:
        # 3 for 2 on $12 + $9 + $7 (the $7 free, shared 300/225/175), then FAIR10's 10% of $21 (90/68/52):
        # $18.90 paid, 8.875% added ($1.68): $20.58 charged.
        first = sell(db, "a1", [line(a, "A Paperback", 1200, 1, 390), line(b, "B Paperback", 900, 1, 293),
                                line(c, "C Paperback", 700, 1, 227)],
                     [TaxLine("standard", eight, 1890, 168)],
                     [Saving(bundle, "3 for 2 on Paperbacks", 700), Saving(fair, "Book fair", 210, "FAIR10")])
        # VAT included at 20% at the back counter's reader: 2 x $20 less a 10% staff discount, $36.00 with $6.00 VAT.
        second = sell(db, "a2", [line(d, "D Hardback", 2000, 2, 400)], [TaxLine("standard", Decimal(20), 3600, 600)],
                      [Saving(None, "", 400, reason="Damaged cover")], who=BACK, inclusive=True,
                      method="card_present")
        # No promotion, zero-rated: $15.00.
        sell(db, "a3", [line(e, "E Atlas", 1500, 1, 0, "zero")], [TaxLine("zero", Decimal(0), 1500, 0)], [])
        # FAIR10 on $10 ($1.00), then 5% staff ($0.45): $8.55, 8.875% added ($0.76): $9.31.
        fourth = sell(db, "a4", [line(f, "F Poems", 1000, 1, 145)], [TaxLine("standard", eight, 855, 76)],
                      [Saving(fair, "Book fair", 100, "FAIR10"), Saving(None, "", 45, reason="Regular customer")])
        # Not paid: counts nowhere.
        pending = sell(db, "a5", [line(a, "A Paperback", 1200, 1, 1200)], [TaxLine("standard", eight, 0, 0)],
                       [Saving(bundle, "3 for 2 on Paperbacks", 1200)], pay=False)
        # One copy of B back: its $6.07 share and 8.875% on it ($0.54): $6.61, of which $0.54 tax.
        refund_id = refund_ledger.reserve_refund(db, first["id"], amount=None, returned={b.isbn13: 1},
                                                 request_key="r" * 32)
        refund_ledger.complete_refund(db, refund_id, stripe_refund="re_test_one", amount=661)
    return app, {"first": first, "second": second, "fourth": fourth, "pending": pending}, (a, b, c, d, e, f)


def staff(app):
    client = KioskClient(app)
    client.token()
    client.post("/staff/login", data={"pin": PIN})
    return client


def cents(text):
    return int(Decimal(text) * 100)


def text(reply):
    return reply.get_data(as_text=True)


# The day to the cent: gross 28.00 + 40.00 + 15.00 + 10.00; discounts 9.10 + 4.00 + 1.45; tax added 1.68 + 0.76,
# so gross - discounts + tax added = sales, charged 20.58 + 36.00 + 15.00 + 9.31.
TOTAL = {"orders": 4, "books": 7, "gross": 9300, "discounts": 1455, "tax_added": 244, "sales": 8089, "refunds": 661,
         "net": 7428, "tax": 844, "tax_refunded": 54, "net_tax": 790, "net_ex_tax": 6638}
PROMOTIONS = [("3 for 2 on Paperbacks", "", 1, 700), ("", "", 2, 445), ("Book fair", "FAIR10", 2, 310)]


def test_the_day_report_adds_up_gross_discounts_sales_and_tax(day):
    app, _, _ = day
    with closing(ledger(app)) as db:
        report = reports.day_report(db, stamps.today())
    assert {key: report["total"][key] for key in TOTAL} == TOTAL
    assert report["total"]["gross"] - report["total"]["discounts"] + report["total"]["tax_added"] == \
        report["total"]["sales"]
    takings = report["total"]
    assert (takings["gross"], takings["discounts"], takings["sales"], takings["net"]) == (9300, 1455, 8089, 7428)
    assert [(p["name"], p["code"], p["orders"], p["amount"]) for p in report["promotions"]] == PROMOTIONS
    assert sum(p["amount"] for p in report["promotions"]) == TOTAL["discounts"]
    per_counter = {name: (t["orders"], t["gross"], t["discounts"], t["sales"], t["refunds"], t["net"])
                   for name, t in report["counters"]}
    assert per_counter == {"Back": (1, 4000, 400, 3600, 0, 3600), "Front": (3, 5300, 1055, 4489, 661, 3828)}
    per_method = {name: (t["discounts"], t["sales"], t["tax"]) for name, t in report["methods"]}
    assert per_method == {"card": (1055, 4489, 244), "card_present": (400, 3600, 600)}
    assert [(c, r, t["taxable"], t["tax"], t["tax_refunded"]) for c, r, t in report["rates"]] == \
        [("standard", "20", 3600, 600, 0), ("standard", "8.875", 2745, 244, 54), ("zero", "0", 1500, 0, 0)]


def test_close_the_day_shows_and_exports_the_discounts(day):
    app, _, _ = day
    client, money = staff(app), app.extensions["kiosk"].money
    page = text(client.get("/staff/day"))
    for figure, key in (("day-gross", "gross"), ("day-discounts", "discounts"), ("day-tax-added", "tax_added"),
                        ("day-sales", "sales"), ("day-refunds", "refunds"), ("day-net", "net"),
                        ("day-net-tax", "net_tax")):
        assert f'id="{figure}">{money(TOTAL[key])}<' in page, figure
    promotions = page[page.index('id="day-promotions"'):].split("</table>", 1)[0]
    assert '<th scope="row">3 for 2 on Paperbacks</th><td>—</td><td>1</td><td>$7.00</td>' in promotions
    assert '<th scope="row">Staff discount</th><td>—</td><td>2</td><td>$4.45</td>' in promotions
    assert '<th scope="row">Book fair</th><td>FAIR10</td><td>2</td><td>$3.10</td>' in promotions
    assert "Damaged cover" not in page  # the staff discount's reasons stay on the orders
    methods = page[page.index('id="day-methods"'):].split("</table>", 1)[0]
    assert '<th scope="row">reader</th><td>1</td><td>$4.00</td><td>$36.00</td>' in methods
    counters = page[page.index('id="day-counters"'):].split("</table>", 1)[0]
    assert '<th scope="row">Front</th><td>3</td><td>5</td><td>$10.55</td><td>$44.89</td>' in counters

    sheet = list(csv.reader(io.StringIO(client.get("/staff/day.csv").data.decode("utf-8-sig"))))
    header, shop = sheet[0], sheet[1]
    assert shop[1] == "All counters"
    assert {key: cents(shop[header.index(column)]) for column, key in (
        ("Gross", "gross"), ("Discounts", "discounts"), ("Sales", "sales"), ("Refunds", "refunds"), ("Net", "net"),
        ("Tax", "tax"), ("Net tax", "net_tax"), ("Net without tax", "net_ex_tax"))} == \
        {key: TOTAL[key] for key in ("gross", "discounts", "sales", "refunds", "net", "tax", "net_tax", "net_ex_tax")}
    start = sheet.index([header[0], "Promotion", "Code", "Orders", "Discount", "Currency"])
    assert [(r[1], r[2], int(r[3]), cents(r[4])) for r in sheet[start + 1:]] == \
        [("3 for 2 on Paperbacks", "", 1, 700), ("Staff discount", "", 2, 445), ("Book fair", "FAIR10", 2, 310)]


def test_the_orders_export_lists_gross_discount_promotions_and_each_lines_paid(day):
    app, sold, _ = day
    rows = {r["Reference"]: r for r in csv.DictReader(io.StringIO(
        staff(app).get("/staff/export.csv").data.decode("utf-8-sig")))}
    first, second, fourth = (rows[sold[key]["reference"]] for key in ("first", "second", "fourth"))
    assert (cents(first["Gross"]), cents(first["Discount"]), cents(first["Subtotal"]), cents(first["Tax"]),
            cents(first["Amount"])) == (2800, 910, 1890, 168, 2058)
    assert first["Promotions"] == "3 for 2 on Paperbacks; Book fair (FAIR10)"
    assert "A Paperback" in first["Items"] and "list 12.00, discount 3.90, paid 8.10" in first["Items"]
    assert "list 9.00, discount 2.93, paid 6.07" in first["Items"]
    assert "list 7.00, discount 2.27, paid 4.73" in first["Items"]
    assert (cents(second["Gross"]), cents(second["Discount"]), cents(second["Amount"]), second["Promotions"]) == \
        (4000, 400, 3600, "Staff discount")
    assert "x2: list 40.00, discount 4.00, paid 36.00" in second["Items"]
    assert fourth["Promotions"] == "Book fair (FAIR10); Staff discount"
    assert sum(cents(r["Gross"]) - cents(r["Discount"]) == cents(r["Subtotal"]) for r in rows.values()) == len(rows)
    pending = rows[sold["pending"]["reference"]]
    assert (cents(pending["Gross"]), cents(pending["Discount"]), pending["Promotions"]) == \
        (1200, 1200, "3 for 2 on Paperbacks")


def test_the_staff_orders_pages_show_the_promotions_and_what_each_line_paid(day):
    app, sold, _ = day
    client = staff(app)
    listing = text(client.get("/staff/orders"))
    row = listing[listing.index(sold["first"]["reference"]):].split("</tr>", 1)[0]
    assert '<span class="tag">3 for 2 on Paperbacks</span> <span class="tag">Book fair (FAIR10)</span>' in row
    row = listing[listing.index(sold["second"]["reference"]):].split("</tr>", 1)[0]
    assert '<span class="tag">Staff discount</span>' in row and "Damaged cover" not in row

    page = text(client.get(f"/staff/orders/{sold['first']['reference']}"))
    assert 'id="order-gross">$28.00<' in page and 'id="order-discount">$9.10<' in page
    lines = page[page.index('id="order-lines"'):].split("</table>", 1)[0]
    for title, listed, off, paid in (("A Paperback", "$12.00", "$3.90", "$8.10"),
                                     ("B Paperback", "$9.00", "$2.93", "$6.07"),
                                     ("C Paperback", "$7.00", "$2.27", "$4.73")):
        cells = lines[lines.index(title):].split("</tr>", 1)[0]
        assert f'<td>{listed}</td><td class="line-discount">{off}</td><td class="line-paid">{paid}</td>' in cells
    savings = page[page.index('id="order-savings"'):].split("</table>", 1)[0]
    assert '<th scope="row">3 for 2 on Paperbacks</th><td>—</td><td>$7.00</td>' in savings
    assert '<th scope="row">Book fair</th><td>FAIR10</td><td>$2.10</td>' in savings
    # The books still to return say what was paid for them after the savings; B is back already.
    refund = page[page.index('id="refund-form"'):]
    assert "Copies of “A Paperback” back on the shelf ($8.10 paid for 1 after savings)" in refund
    assert "B Paperback" not in refund

    staff_page = text(client.get(f"/staff/orders/{sold['second']['reference']}"))
    savings = staff_page[staff_page.index('id="order-savings"'):].split("</table>", 1)[0]
    assert '<th scope="row">Staff discount</th><td>—</td><td>$4.00</td><td>Damaged cover</td>' in savings
    assert '<td class="line-paid">$36.00</td>' in staff_page
