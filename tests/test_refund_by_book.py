"""Refunds by the book (issue #25): staff choose the books coming back; the refund is what was paid for them, tax
included, shown for confirmation before anything reaches Stripe; a custom amount only as its own confirmed choice.
Money is checked as money: what Stripe refunded, what the ledger recorded and what went back on the shelf."""
from contextlib import closing
from decimal import Decimal

import pytest

from kiosk import create_app
from kiosk.core import tax
from tests.support.client import signed_in
from tests.support.ledger import buy, ledger, on_hand, order
from tests.support.refunds import confirm_form, review_url
from tests.support.settings import make_settings, sample_rows, write_catalog

PIN = "2468"
PRICES = ("12.00", "15.99", "18.00")  # 45.99 + 8.875% = 50.07, the order


def shop_with(tmp_path, stripe_server, **env):
    rows = sample_rows()[:3]
    for row, price in zip(rows, PRICES, strict=True):
        row["price"], row["stock"] = price, "5"
    path = write_catalog(tmp_path, rows)
    settings = make_settings(tmp_path, stripe_server, KIOSK_CATALOG=str(path), KIOSK_STAFF_PIN=PIN, **env)
    app = create_app(settings, testing=True)
    return app, [app.extensions["kiosk"].catalog.get(row["isbn"]) for row in rows]


@pytest.fixture
def shop(tmp_path, stripe_server):
    return shop_with(tmp_path, stripe_server, KIOSK_TAX_RATES="standard:8.875")


def staff(app):
    return signed_in(app, PIN)


def page_of(reply):
    return reply.get_data(as_text=True)


def stripe_refunded(stripe_server, intent):
    return [r.amount for r in stripe_server.client().v1.refunds.list({"payment_intent": intent}).data]


def ledger_refunds(app, reference):
    with closing(ledger(app)) as db:
        return [dict(r) for r in db.execute("SELECT r.* FROM refunds r JOIN orders o ON o.id = r.order_id "
                                            "WHERE o.reference = ? ORDER BY r.id", (reference,))]


def test_one_book_of_three_refunds_that_books_price_and_tax_after_a_review(shop, stripe_server):
    app, (a, b, c) = shop
    sold = buy(app, stripe_server, {a.isbn13: 1, b.isbn13: 1, c.isbn13: 1})
    assert order(app, sold.reference)["amount"] == 5007
    client = staff(app)
    form_page = page_of(client.get(f"/staff/orders/{sold.reference}"))
    assert 'name="amount"' in form_page and 'value="5007"' not in form_page and "50.07</" not in form_page.split(
        'id="refund-form"')[1].split("</form>")[0]  # no amount pre-filled with the whole order
    review = page_of(client.get(review_url(sold.reference, {a.isbn13: 1})))
    assert "Refund $13.07 to the card ending 4242?" in review and "1 book back on the shelf." in review
    # Nothing has reached Stripe, the ledger or the shelf while staff look at the review.
    assert stripe_refunded(stripe_server, sold.intent) == [] and ledger_refunds(app, sold.reference) == []
    assert on_hand(app, a.isbn13) == 4
    page = page_of(client.post(f"/staff/orders/{sold.reference}/refund", data=confirm_form(review),
                               follow_redirects=True))
    assert "Refunded $13.07; 1 book back on the shelf." in page
    assert stripe_refunded(stripe_server, sold.intent) == [1307]
    row = order(app, sold.reference)
    assert (row["status"], row["amount_refunded"], row["refund_pending"]) == ("partially_refunded", 1307, 0)
    [made] = ledger_refunds(app, sold.reference)
    assert (made["amount"], made["restocked"], made["status"]) == (1307, 1, "succeeded")
    assert (on_hand(app, a.isbn13), on_hand(app, b.isbn13), on_hand(app, c.isbn13)) == (5, 4, 4)


def test_returns_in_parts_give_back_exactly_what_was_paid(shop, stripe_server):
    app, (a, b, c) = shop
    sold = buy(app, stripe_server, {a.isbn13: 2, b.isbn13: 1, c.isbn13: 3})
    charged = order(app, sold.reference)["amount"]
    client = staff(app)
    for returned in ({a.isbn13: 1}, {c.isbn13: 2}, {a.isbn13: 1, b.isbn13: 1, c.isbn13: 1}):
        client.post(f"/staff/orders/{sold.reference}/refund",
                    data=confirm_form(page_of(client.get(review_url(sold.reference, returned)))))
    refunded = stripe_refunded(stripe_server, sold.intent)
    assert sorted(refunded) == sorted([1307, 3919, charged - 1307 - 3919]) and sum(refunded) == charged
    row = order(app, sold.reference)
    assert (row["status"], row["amount_refunded"]) == ("refunded", charged)
    with closing(ledger(app)) as db:
        assert sum(r["tax"] for r in ledger_refunds(app, sold.reference)) == row["tax"]
        assert db.execute("SELECT SUM(returned) FROM order_lines").fetchone()[0] == 6
    assert (on_hand(app, a.isbn13), on_hand(app, b.isbn13), on_hand(app, c.isbn13)) == (5, 5, 5)


def test_prices_including_vat_refund_the_price(tmp_path, stripe_server):
    app, (a, b, _c) = shop_with(tmp_path, stripe_server, KIOSK_TAX_RATES="standard:20", KIOSK_PRICES_INCLUDE_TAX="1")
    sold = buy(app, stripe_server, {a.isbn13: 1, b.isbn13: 2})
    client = staff(app)
    review = page_of(client.get(review_url(sold.reference, {b.isbn13: 1})))
    assert "Refund $15.99 to the card ending 4242?" in review
    client.post(f"/staff/orders/{sold.reference}/refund", data=confirm_form(review))
    assert stripe_refunded(stripe_server, sold.intent) == [1599] and on_hand(app, b.isbn13) == 4


def test_a_custom_amount_is_its_own_confirmed_choice_and_never_more_than_is_left(shop, stripe_server):
    app, (a, b, _c) = shop
    sold = buy(app, stripe_server, {a.isbn13: 1, b.isbn13: 1})
    client = staff(app)
    review = page_of(client.get(review_url(sold.reference, {a.isbn13: 1}, amount="5.00")))
    assert "A custom amount: $5.00 instead of what the books come to ($13.07)." in review
    assert "Refund the custom amount, $5.00" in review
    form = confirm_form(review)
    assert (form["mode"], form["amount"]) == ("custom", "5.00")
    client.post(f"/staff/orders/{sold.reference}/refund", data=form)
    assert stripe_refunded(stripe_server, sold.intent) == [500] and on_hand(app, a.isbn13) == 5
    left = order(app, sold.reference)["amount"] - 500
    too_much = page_of(client.get(review_url(sold.reference, amount=f"{(left + 1) / 100:.2f}"),
                                  follow_redirects=True))
    assert "at most what is left" in too_much and 'class="refund-confirm"' not in too_much
    not_a_number = page_of(client.get(review_url(sold.reference, amount="ten"), follow_redirects=True))
    assert "Write the refund amount as a number in USD" in not_a_number
    nothing = page_of(client.get(review_url(sold.reference, {}), follow_redirects=True))
    assert "Choose the books coming back" in nothing
    assert stripe_refunded(stripe_server, sold.intent) == [500]


def test_a_refund_made_meanwhile_sends_staff_back_to_a_new_review(shop, stripe_server):
    app, (a, b, _c) = shop
    sold = buy(app, stripe_server, {a.isbn13: 1, b.isbn13: 1})
    client = staff(app)
    first = confirm_form(page_of(client.get(review_url(sold.reference, {a.isbn13: 1}))))
    assert first["expected"] == "1307"
    # At another counter, a custom refund leaves less than the book came to.
    left = order(app, sold.reference)["amount"]
    other = confirm_form(page_of(client.get(review_url(sold.reference, amount=f"{(left - 1000) / 100:.2f}"))))
    client.post(f"/staff/orders/{sold.reference}/refund", data=other)
    page = page_of(client.post(f"/staff/orders/{sold.reference}/refund", data=first, follow_redirects=True))
    assert "now come to a different amount" in page and "Refund $10.00 to the card ending 4242?" in page
    assert stripe_refunded(stripe_server, sold.intent) == [left - 1000] and on_hand(app, a.isbn13) == 4


@pytest.mark.parametrize(("lines", "rates", "inclusive", "returning", "expected"), [
    # one class, tax added: the book's price and its rate, rounded half up
    ([("a", 1200, 1, 0, "standard"), ("b", 1599, 1, 0, "standard"), ("c", 1800, 1, 0, "standard")],
     {"standard": "8.875"}, False, {"a": 1}, 1307),
    # the last copies back give back exactly what is left of the class's tax
    ([("a", 1200, 1, 1, "standard"), ("b", 1599, 1, 0, "standard"), ("c", 1800, 1, 0, "standard")],
     {"standard": "8.875"}, False, {"b": 1, "c": 1}, 5007 - 1307),
    # two classes: zero-rated books give back their price only
    ([("a", 1299, 2, 0, "zero"), ("b", 1550, 1, 0, "standard")], {"standard": "8.875", "zero": "0"}, False,
     {"a": 1, "b": 1}, 1299 + 1550 + 138),
    # tax included (VAT): the price is what was paid
    ([("a", 1000, 3, 0, "standard")], {"standard": "20"}, True, {"a": 2}, 2000),
    # yen, no minor digits: 1,500 yen at 10% is 1,650
    ([("a", 1500, 2, 0, "standard")], {"standard": "10"}, False, {"a": 1}, 1650),
])
def test_what_returned_books_come_to(lines, rates, inclusive, returning, expected):
    rows = [{"isbn": i, "unit_price": p, "quantity": q, "paid": p * q, "returned": r, "tax_class": c}
            for i, p, q, r, c in lines]
    sold = tax.compute([{"total": r["unit_price"] * r["quantity"], "tax_class": r["tax_class"]} for r in rows],
                       {name: Decimal(rate) for name, rate in rates.items()}, inclusive)
    tax_lines = [{"tax_class": t.tax_class, "rate": str(t.rate), "taxable": t.taxable, "tax": t.tax}
                 for t in sold.lines]
    assert tax.returns_value(rows, tax_lines, returning, inclusive) == expected
    everything = {r["isbn"]: r["quantity"] - r["returned"] for r in rows}
    if not any(r["returned"] for r in rows):  # all of it back at once is the whole sale
        assert tax.returns_value(rows, tax_lines, everything, inclusive) == sold.total
