"""Several counters, one shop: stock and orders in a shared ledger, the last copy sold once.

The race and the catalog tests run on both SQLite and PostgreSQL; the counters-on-one-ledger tests run two
kiosks (each its own data folder, kiosk id and counter name) against one real PostgreSQL."""
import threading
from contextlib import closing
from dataclasses import replace

import pytest

from kiosk import create_app
from kiosk.core import stamps
from kiosk.core.catalog import load_catalog
from kiosk.ledger import db as dblib
from kiosk.ledger import migrations, orders, reports
from kiosk.ledger import stock as shelves
from tests.support.client import KioskClient
from tests.support.ledger import buy, ledger, on_hand, order
from tests.support.refunds import confirm_form, review_url
from tests.support.settings import SAMPLE, make_settings

CATALOG = load_catalog(SAMPLE, "USD")
BOOK = CATALOG.books[0]
LINE = {"isbn": BOOK.isbn13, "title": BOOK.title, "unit_price": BOOK.price, "quantity": 1}


@pytest.fixture
def shared(ledger_url):
    migrations.init_db(ledger_url)
    with dblib.connect(ledger_url) as db:
        shelves.sync_stock(db, CATALOG.books)
        shelves.count_shelf(db, BOOK.isbn13, 1, "the last copy", ("tests", "Front"))
    return ledger_url


def test_twenty_counters_holding_the_last_copy_at_once_make_one_hold(shared):
    barrier, outcomes = threading.Barrier(20), []

    def counter(n):
        with dblib.connect(shared) as db:
            barrier.wait()
            try:
                orders.open_checkout(db, attempt=f"race-{n}", lines=[LINE], currency="USD",
                                     who=(f"kiosk_{n}", f"Till {n}"))
                outcomes.append("held")
            except orders.OutOfStock as short:
                outcomes.append(("sold out", short.available))

    threads = [threading.Thread(target=counter, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("held") == 1 and outcomes.count(("sold out", 0)) == 19
    with dblib.connect(shared) as db:
        stock = db.execute("SELECT on_hand, held FROM stock WHERE isbn = ?", (BOOK.isbn13,)).fetchone()
        assert tuple(stock) == (1, 1)
        # The nineteen refusals wrote nothing: one order, with its line.
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM order_lines").fetchone()[0] == 1
    where = "PostgreSQL" if shared.startswith("postgres") else "SQLite"
    print(f"race on {where}: 20 counters, {outcomes.count('held')} hold, {outcomes.count(('sold out', 0))} sold out")


def test_a_hold_becomes_the_sale_or_goes_back_to_the_shelf(shared):
    with dblib.connect(shared) as db:
        first = orders.open_checkout(db, attempt="a", lines=[LINE], currency="USD")
        with pytest.raises(orders.OutOfStock):
            orders.open_checkout(db, attempt="b", lines=[LINE], currency="USD")
        assert shelves.stock_levels(db, [BOOK.isbn13]) == {BOOK.isbn13: 0}
        assert shelves.stock_levels(db, [BOOK.isbn13], order_id=first["id"]) == {BOOK.isbn13: 1}  # its own
        orders.mark_canceled(db, first["id"], "the customer walked away")
        assert shelves.stock_levels(db, [BOOK.isbn13]) == {BOOK.isbn13: 1}
        second = orders.open_checkout(db, attempt="c", lines=[LINE], currency="USD")
        assert orders.mark_paid(db, second["id"])["status"] == "paid"
        row = db.execute("SELECT on_hand, held FROM stock WHERE isbn = ?", (BOOK.isbn13,)).fetchone()
        assert tuple(row) == (0, 0) and orders.get(db, order_id=second["id"])["oversold"] == 0
        # Paid is paid: an order whose hold was released (abandoned) and then paid after all still stands.
        assert orders.mark_paid(db, first["id"])["status"] == "paid"
        assert orders.get(db, order_id=first["id"])["oversold"] == 1
        assert db.execute("SELECT on_hand FROM stock WHERE isbn = ?", (BOOK.isbn13,)).fetchone()[0] == -1


def test_a_counter_starting_with_the_same_or_an_edited_sheet_never_undoes_sales(shared):
    with dblib.connect(shared) as db:
        sold = orders.open_checkout(db, attempt="s", lines=[LINE], currency="USD")
        orders.mark_paid(db, sold["id"])
        catalog_qty = db.execute("SELECT catalog_qty FROM stock WHERE isbn = ?", (BOOK.isbn13,)).fetchone()[0]
        shelves.sync_stock(db, CATALOG.books)  # another counter starts with the same file
        assert db.execute("SELECT on_hand FROM stock WHERE isbn = ?", (BOOK.isbn13,)).fetchone()[0] == 0
    delivered = [replace(b, stock=catalog_qty + 3) if b.isbn13 == BOOK.isbn13 else b for b in CATALOG.books]
    # Two counters start with the sheet edited to three more copies: the three are added once.
    threads = [threading.Thread(target=lambda: shelves.sync_stock(dblib.connect(shared), delivered)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with dblib.connect(shared) as db:
        assert db.execute("SELECT on_hand FROM stock WHERE isbn = ?", (BOOK.isbn13,)).fetchone()[0] == 3
        assert db.execute("SELECT COUNT(*) FROM stock_movements WHERE reason = 'catalog' AND isbn = ?",
                          (BOOK.isbn13,)).fetchone()[0] == 1


@pytest.fixture
def counters(tmp_path, stripe_server, pg_url):
    """Two kiosks, Front and Back, each its own data folder and kiosk id, on one PostgreSQL ledger."""
    apps = []
    for name in ("Front", "Back"):
        settings = make_settings(tmp_path / name, stripe_server, KIOSK_DATABASE_URL=pg_url, KIOSK_COUNTER_NAME=name,
                                 KIOSK_STAFF_PIN="2468")
        apps.append(create_app(settings, testing=True))
    return apps


def staff(app):
    client = KioskClient(app)
    client.token()
    assert client.post("/staff/login", data={"pin": "2468"}).status_code == 302
    return client


def test_two_counters_share_stock_orders_and_refunds(counters, stripe_server):
    front, back = counters
    assert front.extensions["kiosk"].kiosk_id != back.extensions["kiosk"].kiosk_id
    book = next(b for b in front.extensions["kiosk"].catalog.books if b.stock >= 3)
    at_front = buy(front, stripe_server, {book.isbn13: 1})
    at_back = buy(back, stripe_server, {book.isbn13: 2})
    assert on_hand(front, book.isbn13) == on_hand(back, book.isbn13) == book.stock - 3
    assert (order(front, at_back.reference)["counter"], order(back, at_front.reference)["counter"]) == ("Back", "Front")
    # Any counter's staff area sees the whole shop: both orders, takings per counter and in all.
    page = staff(front).get("/staff/").get_data(as_text=True)
    assert 'id="takings-by-counter"' in page and "Front" in page and "Back" in page
    assert front.extensions["kiosk"].money(3 * book.price) in page
    orders_page = staff(back).get("/staff/orders").get_data(as_text=True)
    assert at_front.reference in orders_page and at_back.reference in orders_page
    with closing(ledger(front)) as db:
        report = reports.day_report(db, stamps.today())
        assert report["total"]["sales"] == 3 * book.price
        assert [(name, t["sales"]) for name, t in report["counters"]] == \
            [("Back", 2 * book.price), ("Front", book.price)]
    # A refund at the front counter of a sale made at the back one.
    client = staff(front)
    form = confirm_form(client.get(review_url(at_back.reference, {book.isbn13: 1})).get_data(as_text=True))
    page = client.post(f"/staff/orders/{at_back.reference}/refund", follow_redirects=True,
                       data=form).get_data(as_text=True)
    assert "Refunded $" in page
    made = stripe_server.client().v1.refunds.list({"payment_intent": at_back.intent}).data
    assert [r.amount for r in made] == [book.price]
    assert order(back, at_back.reference)["amount_refunded"] == book.price
    assert on_hand(back, book.isbn13) == book.stock - 2
    # The CSV says which counter took each order.
    csv_text = staff(back).get("/staff/export.csv").data.decode("utf-8-sig")
    assert '"Counter"' in csv_text and '"Front"' in csv_text and '"Back"' in csv_text


def test_the_second_customer_for_the_last_copy_is_told_before_paying(counters, stripe_server):
    front, back = counters
    book = front.extensions["kiosk"].catalog.books[0]
    with closing(ledger(front)) as db:
        shelves.count_shelf(db, book.isbn13, 1, "the last copy", ("tests", "Front"))
    first, second = KioskClient(front), KioskClient(back)
    for client in (first, second):
        client.add(book.isbn13)  # both see the copy
    attempts = [c.start_checkout() for c in (first, second)]
    paying = first.post("/checkout/intent", json={"attempt": attempts[0]})
    assert paying.status_code == 200
    refused = second.post("/checkout/intent", json={"attempt": attempts[1]})
    assert refused.status_code == 409 and "just sold out" in refused.json["error"] and refused.json["reload"]
    assert len(stripe_server.intents()) == 1  # nothing was asked of Stripe for the second
    page = second.get("/cart").get_data(as_text=True)
    assert "has just sold out and was removed" in page
    stripe_server.pay(paying.json["clientSecret"].split("_secret_")[0])
    assert first.get(paying.json["returnUrl"].split("localhost", 1)[1]).status_code == 200
    assert on_hand(back, book.isbn13) == 0
    assert [c.amount for c in stripe_server.charges() if c.status == "succeeded"] == [book.price]


def test_each_counter_reconciles_its_own_payments_and_adopts_a_lost_one_once(counters, stripe_server):
    front, back = counters
    book = front.extensions["kiosk"].catalog.books[1]
    paid = buy(front, stripe_server, {book.isbn13: 1}, confirm=False)  # paid, the confirmation never opened
    back.extensions["kiosk"].reconciler.run_once()
    assert order(front, paid.reference)["status"] == "pending"  # not the back counter's payment
    for app in (front, back, front):
        app.extensions["kiosk"].reconciler.run_once()
    row = order(front, paid.reference)
    assert row["status"] == "paid" and row["counter"] == "Front"
    with closing(ledger(front)) as db:
        assert db.execute("SELECT COUNT(*) FROM stock_movements WHERE order_id = ? AND reason = 'sale'",
                          (row["id"],)).fetchone()[0] == 1
    assert on_hand(back, book.isbn13) == book.stock - 1


def test_with_postgresql_stopped_the_shop_browses_and_payments_pause_then_recover(counters, stripe_server,
                                                                                   pg_cluster):
    front, _ = counters
    book = front.extensions["kiosk"].catalog.books[2]
    customer = KioskClient(front)
    customer.add(book.isbn13)
    attempt = customer.start_checkout()
    pg_cluster.stop_server("fast")
    try:
        assert customer.get("/").status_code == 200  # browsing goes on
        page = customer.get(f"/book/{book.isbn13}")
        assert page.status_code == 200 and "Stock cannot be checked just now" in page.get_data(as_text=True)
        assert customer.get("/cart").status_code == 200
        paused = customer.post("/checkout/intent", json={"attempt": attempt})
        assert paused.status_code == 503 and paused.json["retry"] and "Payments are paused" in paused.json["error"]
        assert "Traceback" not in paused.get_data(as_text=True)
        assert stripe_server.intents() == []  # no payment that could not be recorded
        checkout = customer.get("/checkout/")
        assert checkout.status_code == 503 and "Payments are paused" in checkout.get_data(as_text=True)
        assert "--check" not in checkout.get_data(as_text=True)
        staff_page = KioskClient(front).get("/staff/")
        assert staff_page.status_code in (200, 503) and "Traceback" not in staff_page.get_data(as_text=True)
    finally:
        pg_cluster.start_server()
    reply = customer.post("/checkout/intent", json={"attempt": attempt})  # it recovers by itself
    assert reply.status_code == 200, reply.get_data(as_text=True)
    stripe_server.pay(reply.json["clientSecret"].split("_secret_")[0])
    assert customer.get(reply.json["returnUrl"].split("localhost", 1)[1]).status_code == 200
    assert order(front, reply.json["reference"])["status"] == "paid"
    assert on_hand(front, book.isbn13) == book.stock - 1
    assert [c.amount for c in stripe_server.charges() if c.status == "succeeded"] == [book.price]


def test_two_kiosks_of_one_name_are_counted_apart_and_warned_about(tmp_path, stripe_server, pg_url):
    apps = [create_app(make_settings(
        tmp_path / f"till{n}", stripe_server, KIOSK_DATABASE_URL=pg_url, KIOSK_COUNTER_NAME="Front",
        KIOSK_STAFF_PIN="2468"), testing=True) for n in (1, 2)]
    first, second = (app.extensions["kiosk"] for app in apps)
    # The second to start sees the first: warned at start and on its staff screen.
    [warning] = [p for p in second.settings.problems if p.setting == "KIOSK_COUNTER_NAME"]
    assert first.kiosk_id in warning.message and warning.warning
    assert "also the name of another kiosk" in staff(apps[1]).get("/staff/").get_data(as_text=True)
    book = next(b for b in first.catalog.books if b.stock >= 3)
    buy(apps[0], stripe_server, {book.isbn13: 1})
    buy(apps[1], stripe_server, {book.isbn13: 2})
    with closing(ledger(apps[0])) as db:
        labels = {first.kiosk_id: f"Front ({first.kiosk_id})", second.kiosk_id: f"Front ({second.kiosk_id})"}
        expected = sorted([(labels[first.kiosk_id], book.price, 1), (labels[second.kiosk_id], 2 * book.price, 1)])
        report = reports.day_report(db, stamps.today())
        assert [(name, t["sales"], t["orders"]) for name, t in report["counters"]] == expected
        # The counters add up to the shop.
        assert sum(t["sales"] for _, t in report["counters"]) == report["total"]["sales"] == 3 * book.price
    # Close the day's CSV too: two rows, not one "Front".
    csv_text = staff(apps[0]).get(f"/staff/day.csv?date={stamps.today().isoformat()}").data.decode("utf-8-sig")
    assert csv_text.count("Front (kiosk_") == 2
