"""Promotions at the kiosk (issue #27), money checked as money: what Stripe charged or refunded against the ledger's
lines, the receipt and the shelf; a code's uses counted once, given back when a payment is canceled, and its last
use taken by one counter only, on SQLite and on PostgreSQL; codes not guessed; the staff discount behind the PIN."""
import re
import threading
from contextlib import closing

import pytest

from kiosk import create_app
from kiosk.core.pricing import Saving
from kiosk.ledger import db as dblib
from kiosk.ledger import migrations, orders, promotions
from kiosk.ledger import stock as shelves
from tests.support.client import KioskClient
from tests.support.ledger import ledger, on_hand, order
from tests.support.promotions import DEFAULTS, FAIR10, THREE_FOR_TWO, add_promotion, uses
from tests.support.refunds import confirm_form, review_url
from tests.support.settings import make_settings, sample_rows, write_catalog
from tests.test_reconcile import backup, replace_ledger, sweep

PIN = "2468"
# Three paperbacks, dearest first by title, and one book that is not a paperback.
PAPERBACKS = (("A Paperback at Twelve", "12.00"), ("B Paperback at Nine", "9.00"), ("C Paperback at Seven", "7.00"))


def shop_with(tmp_path, stripe_server, **env):
    rows = sample_rows()[:4]
    for row, (title, price) in zip(rows, PAPERBACKS, strict=False):
        row.update(title=title, price=price, stock="5", category="Paperbacks")
    rows[3].update(title="D Hardback", price="20.00", stock="5", category="Hardbacks")
    path = write_catalog(tmp_path, rows)
    app = create_app(make_settings(tmp_path, stripe_server, KIOSK_CATALOG=str(path), KIOSK_STAFF_PIN=PIN, **env),
                     testing=True)
    return app, [app.extensions["kiosk"].catalog.get(row["isbn"]) for row in rows]


@pytest.fixture
def shop(tmp_path, stripe_server):
    app, books = shop_with(tmp_path, stripe_server, KIOSK_TAX_RATES="standard:8.875")
    return app, books, add_promotion(app, **THREE_FOR_TWO), add_promotion(app, **FAIR10)


def text(reply):
    return reply.get_data(as_text=True)


def with_code(app, code="FAIR10"):
    client = KioskClient(app)
    client.token()
    return client, client.post("/cart/code", data={"code": code}, headers={"Accept": "application/json"})


def line_rows(app, reference):
    with closing(ledger(app)) as db:
        found = orders.get(db, reference=reference)
        return {r["isbn"]: (r["unit_price"], r["quantity"], r["discount"], r["paid"]) for r in db.execute(
            "SELECT * FROM order_lines WHERE order_id = ?", (found["id"],))}


def savings_rows(app, reference):
    with closing(ledger(app)) as db:
        return [(r["name"], r["code"], r["amount"], r["use_counted"])
                for r in promotions.order_savings(db, order(app, reference)["id"])]


def test_three_paperbacks_with_fair10_agree_to_the_cent_from_the_cart_to_a_refund(shop, stripe_server):
    app, (a, b, c, _hardback), three_for_two, fair10 = shop
    client, applied = with_code(app)
    assert applied.status_code == 200 and applied.json["message"] == "Code FAIR10 added: Book fair."
    for book in (a, b, c):
        client.add(book.isbn13)
    cart = text(client.get("/cart"))
    # 3 for 2: the $7.00 book free, shared 12:9:7 (3.00, 2.25, 1.75); FAIR10: 10% of the $21.00 left, shared
    # 9.00:6.75:5.25 (0.90, 0.675 -> 0.68 as the earlier of a tie, 0.525 -> 0.52); tax 8.875% of $18.90 = $1.68.
    assert re.search(r"3 for 2 on Paperbacks</dt>\s*<dd>-\$7\.00", cart)
    assert re.search(r"Book fair \(FAIR10\)</dt>\s*<dd>-\$2\.10", cart)
    assert 'id="cart-saved">$9.10<' in cart and 'id="cart-subtotal">$18.90<' in cart
    assert 'id="cart-total">$20.58<' in cart and "Code FAIR10 is on your cart." in cart

    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()}).json
    intent_id = reply["clientSecret"].split("_secret_")[0]
    intent = stripe_server.client().v1.payment_intents.retrieve(intent_id)
    assert intent.amount == 2058
    assert intent.metadata["discount"] == "910"
    assert intent.metadata["savings"] == f"{three_for_two}:700,{fair10}:210"
    stripe_server.pay(intent_id, "4242424242424242")
    receipt = text(client.get(reply["returnUrl"].split("localhost", 1)[1]))
    assert re.search(r"3 for 2 on Paperbacks</dt>\s*<dd>-\$7\.00", receipt) and 'id="receipt-saved">$9.10<' in receipt
    assert "<strong>$20.58</strong>" in receipt

    reference = reply["reference"]
    sold = order(app, reference)
    assert (sold["status"], sold["amount"], sold["discount"], sold["subtotal"], sold["tax"]) == \
        ("paid", 2058, 910, 1890, 168)
    assert line_rows(app, reference) == {a.isbn13: (1200, 1, 390, 810), b.isbn13: (900, 1, 293, 607),
                                         c.isbn13: (700, 1, 227, 473)}
    assert savings_rows(app, reference) == [("3 for 2 on Paperbacks", None, 700, 0), ("Book fair", "FAIR10", 210, 1)]
    assert uses(app, fair10) == 1 and [on_hand(app, x.isbn13) for x in (a, b, c)] == [4, 4, 4]

    # A later change to the promotion never rewrites the sale.
    with closing(ledger(app)) as db:
        promotions.save(db, {**DEFAULTS, **FAIR10, "percent": "50"}, ("test", "Test"), fair10)
    assert line_rows(app, reference)[b.isbn13] == (900, 1, 293, 607)

    # Returning the $9.00 book gives back what was paid for it: 6.07, and 8.875% of it (0.54): 6.61.
    staff = KioskClient(app)
    staff.token()
    assert staff.post("/staff/login", data={"pin": PIN}).status_code == 302
    review = text(staff.get(review_url(reference, {b.isbn13: 1})))
    assert "Refund $6.61 to the card ending 4242?" in review
    done = text(staff.post(f"/staff/orders/{reference}/refund", data=confirm_form(review), follow_redirects=True))
    assert "Refunded $6.61; 1 book back on the shelf." in done
    refunds = stripe_server.client().v1.refunds.list({"payment_intent": intent_id}).data
    assert [r.amount for r in refunds] == [661]
    assert order(app, reference)["amount_refunded"] == 661 and on_hand(app, b.isbn13) == 5
    # The other two, one by one: the refunds add up to exactly what was charged, and the tax to the tax.
    for book, expected in ((a, "$8.82"), (c, "$5.15")):
        review = text(staff.get(review_url(reference, {book.isbn13: 1})))
        assert f"Refund {expected} to the card ending 4242?" in review
        staff.post(f"/staff/orders/{reference}/refund", data=confirm_form(review))
    assert sum(r.amount for r in stripe_server.client().v1.refunds.list({"payment_intent": intent_id}).data) == 2058
    with closing(ledger(app)) as db:
        assert db.execute("SELECT SUM(tax) FROM refunds").fetchone()[0] == 168
    assert order(app, reference)["status"] == "refunded"


def test_a_canceled_payment_gives_its_code_use_back(shop, stripe_server):
    app, (a, *_), _, fair10 = shop
    client, _ = with_code(app)
    client.add(a.isbn13)
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()}).json
    assert uses(app, fair10) == 1
    assert stripe_server.client().v1.payment_intents.retrieve(
        reply["clientSecret"].split("_secret_")[0]).amount == 1176  # 12.00 - 10% = 10.80, + 8.875% (0.96)
    assert client.post("/checkout/cancel").status_code == 302
    assert uses(app, fair10) == 0 and order(app, reply["reference"])["status"] == "canceled"
    assert savings_rows(app, reply["reference"]) == [("Book fair", "FAIR10", 120, 0)]


def test_the_last_use_taken_meanwhile_stops_the_payment_before_anything_is_held(shop, stripe_server):
    app, (a, b, *_), _, fair10 = shop
    with closing(ledger(app)) as db:
        promotions.save(db, {**DEFAULTS, **FAIR10, "max_uses": 1}, ("test", "Test"), fair10)
    first, _ = with_code(app)
    second, _ = with_code(app)
    first.add(a.isbn13)
    second.add(b.isbn13)
    attempt = second.start_checkout()  # the second customer's page still shows the code's saving
    paying = first.post("/checkout/intent", json={"attempt": first.start_checkout()}).json
    # The first customer's own checkout keeps the code: the last use is theirs while they pay.
    assert "Book fair (FAIR10)" in text(first.get("/checkout/"))
    refused = second.post("/checkout/intent", json={"attempt": attempt})
    assert refused.status_code == 409
    assert "The code FAIR10 has ended or been used up." in refused.json["error"]
    assert uses(app, fair10) == 1 and on_hand(app, b.isbn13) == 5
    with closing(ledger(app)) as db:
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1
        assert shelves.stock_levels(db, [b.isbn13]) == {b.isbn13: 5}
    page = text(second.get("/cart"))
    assert "Code FAIR10 has ended or been used up." in page and 'id="cart-total">$9.80<' in page
    # The first payment canceled, the use is back for the second customer.
    first.post("/checkout/cancel")
    assert uses(app, fair10) == 0 and "Code FAIR10 is on your cart." in text(second.get("/cart"))
    assert paying["reference"]


def test_codes_are_checked_on_the_server_and_guessing_is_stopped(shop):
    app, _, _, fair10 = shop
    client, reply = with_code(app, "nope1")
    assert reply.status_code == 422 and reply.json["error"] == "The code NOPE1 is not one of this shop's."
    # A person posting the form reads the same on the cart.
    client.post("/cart/code", data={"code": "nope2"})
    assert "The code NOPE2 is not one of this shop" in text(client.get("/cart"))
    for n in range(promotions.WRONG_CODES - 2):
        assert with_code(app, f"GUESS{n}")[1].status_code == 422  # a new visit each time: counted all the same
    # Past the limit, even the right code is refused unread, from any visit, until the window ends.
    other, refused = with_code(app)
    assert refused.status_code == 429
    assert refused.json["error"] == "Too many codes that are not ours were tried. Please wait a minute, or ask staff."
    assert uses(app, fair10) == 0 and "FAIR10" not in text(other.get("/cart"))


def test_a_flyer_code_scanned_anywhere_goes_on_the_cart_and_a_product_barcode_is_not_a_guess(shop):
    app, (a, *_), *_ = shop
    client = KioskClient(app)
    client.token()
    client.add(a.isbn13)
    scanned = client.post("/scan", json={"code": "FAIR10"})
    assert scanned.status_code == 200 and scanned.json["message"] == "Code FAIR10 added: Book fair."
    assert scanned.json["total"] == 1176
    cup = client.post("/scan", json={"code": "012345678905"})  # a cup of coffee's UPC-A
    assert cup.status_code == 404 and "not a book we sell" in cup.json["message"]
    with closing(ledger(app)) as db:
        assert not promotions.guessing(db, app.extensions["kiosk"].kiosk_id, 0) and \
            dblib.get_meta(db, f"code_guesses:{app.extensions['kiosk'].kiosk_id}") is None


def test_the_browser_cannot_send_a_price_or_a_discount(shop, stripe_server):
    app, (a, *_), *_ = shop
    client = KioskClient(app)
    client.token()
    client.post("/cart/add", data={"isbn": a.isbn13, "quantity": "1", "price": "1", "discount": "1199"})
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout(), "amount": 1, "discount": 1199})
    assert stripe_server.client().v1.payment_intents.retrieve(
        reply.json["clientSecret"].split("_secret_")[0]).amount == 1307  # 12.00 + 8.875%


def test_a_staff_discount_needs_the_pin_a_reason_and_stays_under_the_cap(shop, stripe_server):
    app, (*_, hardback), _, _ = shop
    client = KioskClient(app)
    client.token()
    client.add(hardback.isbn13)
    assert client.post("/staff/discount", data={"percent": "10", "reason": "damaged", "pin": "0000"}
                       ).status_code == 401
    assert client.post("/staff/discount", data={"percent": "10", "reason": "", "pin": PIN}).status_code == 400
    assert client.post("/staff/discount", data={"percent": "25", "reason": "friend", "pin": PIN}).status_code == 400
    assert "Staff discount" not in text(client.get("/cart")).split("</table>")[1].split("promo-code")[0]
    given = client.post("/staff/discount", data={"percent": "10", "reason": "damaged corner", "pin": PIN})
    assert given.status_code == 302
    cart = text(client.get("/cart"))
    assert re.search(r"Staff discount</dt>\s*<dd>-\$2\.00", cart) and 'id="cart-total">$19.60<' in cart
    purchase = client.post("/checkout/intent", json={"attempt": client.start_checkout()}).json
    intent_id = purchase["clientSecret"].split("_secret_")[0]
    assert stripe_server.client().v1.payment_intents.retrieve(intent_id).amount == 1960  # 18.00 + 8.875% = 19.60
    stripe_server.pay(intent_id, "4242424242424242")
    client.get(purchase["returnUrl"].split("localhost", 1)[1])
    with closing(ledger(app)) as db:
        [row] = promotions.order_savings(db, order(app, purchase["reference"])["id"])
        assert (row["promotion_id"], row["amount"], row["reason"]) == (None, 200, "damaged corner")
    assert order(app, purchase["reference"])["amount"] == 1960


def test_a_staff_discount_is_capped_by_the_setting_and_off_at_zero(tmp_path, stripe_server):
    app, (a, *_) = shop_with(tmp_path, stripe_server, KIOSK_STAFF_DISCOUNT_MAX="0")
    client = KioskClient(app)
    client.token()
    client.add(a.isbn13)
    assert "staff-discount" not in text(client.get("/cart"))
    assert "Staff discounts are switched off" in text(client.get("/staff/discount"))
    assert client.post("/staff/discount", data={"percent": "5", "reason": "x", "pin": PIN}).status_code == 400


def test_a_promotion_outside_its_dates_or_switched_off_takes_nothing(shop, stripe_server):
    app, (a, b, c, _), three_for_two, _ = shop
    with closing(ledger(app)) as db:
        promotions.save(db, {**DEFAULTS, **THREE_FOR_TWO, "starts_at": "2999-01-01 00:00:00"}, ("t", "T"),
                        three_for_two)
    client = KioskClient(app)
    client.token()
    for book in (a, b, c):
        client.add(book.isbn13)
    assert "3 for 2" not in text(client.get("/cart"))
    with closing(ledger(app)) as db:
        promotions.save(db, {**DEFAULTS, **THREE_FOR_TWO, "ends_at": "2000-01-01 00:00:00"}, ("t", "T"),
                        three_for_two)
    assert "3 for 2" not in text(client.get("/cart"))
    with closing(ledger(app)) as db:
        promotions.save(db, {**DEFAULTS, **THREE_FOR_TWO}, ("t", "T"), three_for_two)
    assert "3 for 2" in text(client.get("/cart"))
    with closing(ledger(app)) as db:
        promotions.switch(db, three_for_two, False, ("t", "T"))
    assert "3 for 2" not in text(client.get("/cart"))


def test_a_paid_sale_the_ledger_lost_is_adopted_with_its_savings(shop, stripe_server, tmp_path):
    app, (a, b, c, _), _, fair10 = shop
    backup(app, tmp_path / "before.sqlite3")  # the promotions, and no sale yet
    client, _ = with_code(app)
    for book in (a, b, c):
        client.add(book.isbn13)
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()}).json
    stripe_server.pay(reply["clientSecret"].split("_secret_")[0], "4242424242424242")
    replace_ledger(app, tmp_path / "before.sqlite3")
    restarted = create_app(app.extensions["kiosk"].settings, testing=True)
    assert sweep(restarted).adopted == [reply["reference"]]
    adopted = order(restarted, reply["reference"])
    assert (adopted["status"], adopted["amount"], adopted["discount"], adopted["subtotal"], adopted["tax"]) == \
        ("paid", 2058, 910, 1890, 168)
    assert line_rows(restarted, reply["reference"]) == {a.isbn13: (1200, 1, 390, 810), b.isbn13: (900, 1, 293, 607),
                                                        c.isbn13: (700, 1, 227, 473)}
    assert savings_rows(restarted, reply["reference"]) == [("3 for 2 on Paperbacks", None, 700, 0),
                                                           ("Book fair", "FAIR10", 210, 1)]
    assert uses(restarted, fair10) == 1  # the code's use, counted once the sale is known


# --- the last use raced ---------------------------------------------------------------------------------------

LINE = {"isbn": "9780000000002", "title": "Aardvarks at Dawn", "unit_price": 1000, "quantity": 1, "discount": 100}


def test_twenty_counters_racing_for_five_uses_take_exactly_five(ledger_url):
    migrations.init_db(ledger_url)
    with dblib.connect(ledger_url) as db:
        db.execute("INSERT INTO stock (isbn, on_hand, catalog_qty) VALUES (?, 100, 100)", (LINE["isbn"],))
        code_id = promotions.save(db, {**DEFAULTS, **FAIR10, "max_uses": 5}, ("t", "T"))
    saving = Saving(code_id, "Book fair", 100, "FAIR10")
    barrier, outcomes = threading.Barrier(20), []

    def counter(n):
        with dblib.connect(ledger_url) as db:
            barrier.wait()
            try:
                orders.open_checkout(db, attempt=f"race-{n}", lines=[LINE], currency="USD",
                                     who=(f"kiosk_{n % 2}", f"Till {n % 2}"), savings=[saving])
                outcomes.append("held")
            except promotions.CodeUsedUp:
                outcomes.append("used up")

    threads = [threading.Thread(target=counter, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("held") == 5 and outcomes.count("used up") == 15
    with dblib.connect(ledger_url) as db:
        counted = promotions.get(db, code_id)["uses"]
        assert counted == 5
        # The fifteen refusals wrote nothing and held nothing.
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 5
        assert db.execute("SELECT SUM(use_counted) FROM order_discounts").fetchone()[0] == 5
        assert db.execute("SELECT held FROM stock").fetchone()[0] == 5
        # One canceled gives its use back; paid after all, it takes it again past the limit (paid is paid).
        first = db.execute("SELECT id FROM orders ORDER BY id LIMIT 1").fetchone()[0]
        orders.mark_canceled(db, first, "walked away")
        assert promotions.get(db, code_id)["uses"] == 4
        orders.open_checkout(db, attempt="late", lines=[LINE], currency="USD", savings=[saving])
        orders.mark_paid(db, first)
        assert promotions.get(db, code_id)["uses"] == 6
        assert db.execute("SELECT SUM(use_counted) FROM order_discounts").fetchone()[0] == 6
    where = "PostgreSQL" if ledger_url.startswith("postgres") else "SQLite"
    print(f"code race on {where}: 20 counters for 5 uses, {outcomes.count('held')} took one, "
          f"{outcomes.count('used up')} refused; uses counted {counted}")


def test_two_counters_on_postgresql_press_pay_for_the_last_use_at_once(tmp_path, stripe_server, pg_url):
    counters = []
    for name in ("Front", "Back"):
        folder = tmp_path / name
        folder.mkdir()
        app, books = shop_with(folder, stripe_server, KIOSK_DATABASE_URL=pg_url, KIOSK_COUNTER_NAME=name)
        counters.append((app, books))
    app, books = counters[0]
    code_id = add_promotion(app, **{**FAIR10, "max_uses": 1})
    customers = []
    for counter_app, counter_books in counters:
        client, reply = with_code(counter_app)
        assert reply.status_code == 200
        client.add(counter_books[3].isbn13)
        customers.append((client, client.start_checkout()))
    barrier, replies = threading.Barrier(2), []

    def press_pay(client, attempt):
        barrier.wait()
        replies.append(client.post("/checkout/intent", json={"attempt": attempt}))

    threads = [threading.Thread(target=press_pay, args=customer) for customer in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in replies) == [200, 409]
    [paying] = [r.json for r in replies if r.status_code == 200]
    [refused] = [r.json for r in replies if r.status_code == 409]
    assert "FAIR10" in refused["error"] and "without it" in refused["error"]
    intent = stripe_server.client().v1.payment_intents.retrieve(paying["clientSecret"].split("_secret_")[0])
    assert intent.amount == 1800  # 20.00 - 10%
    assert uses(app, code_id) == 1
    with closing(ledger(app)) as db:
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1
    print(f"last use raced by two counters on PostgreSQL: uses counted {uses(app, code_id)} of 1")


def test_amounts_off_are_kept_in_the_shop_currency_only(tmp_path, stripe_server):
    app, (a, *_) = shop_with(tmp_path, stripe_server)
    add_promotion(app, name="Two off", kind="amount", scope="cart", amount=200, currency="EUR")
    client = KioskClient(app)
    client.token()
    client.add(a.isbn13)
    # The promotion in another currency is set aside, as a catalog entry's price is.
    assert 'id="cart-total">$12.00<' in text(client.get("/cart"))
