"""Requests in flight against Lock, the idle reset and each other, over real HTTP (waitress, worker threads):
no request that began before Lock or a reset undoes it, no line added at the same moment is lost, and two
refunds at once never refund (or restock) more than was sold. Each test checks money and stock."""
import re
import threading
import time
from contextlib import closing

import pytest
import requests

from kiosk import create_app
from kiosk.core import stamps
from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger import reports
from tests.support.client import stored_session
from tests.support.fakestripe import RETRIEVE_INTENT
from tests.support.ledger import books, buy, ledger, on_hand, order
from tests.support.live import LiveServer
from tests.support.refunds import confirm_form, review_url
from tests.support.settings import make_settings

PIN = "2468"
REFUNDS = ("POST", r"/v1/refunds")
LIST = ("GET", r"/v1/payment_intents")


@pytest.fixture
def app(tmp_path, stripe_server):
    return create_app(make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN), testing=True)


@pytest.fixture
def live(app):
    server = LiveServer(app, threads=6)
    yield server
    server.close()


class Browser:
    """One browser's cookie jar over HTTP, posting the CSRF token of its current page like the kiosk's pages."""

    def __init__(self, url):
        self.url = url
        self.http = requests.Session()
        self.token = None
        self.load("/")

    def load(self, path):
        reply = self.http.get(self.url + path, timeout=20)
        found = re.search(r'name="csrf-token" content="([^"]+)"', reply.text)
        if found:
            self.token = found.group(1)
        return reply

    def post(self, path, **kwargs):
        headers = {"X-CSRFToken": self.token, **kwargs.pop("headers", {})}
        return self.http.post(self.url + path, headers=headers, timeout=30, allow_redirects=False, **kwargs)

    def sid(self):
        return self.http.cookies.get("kiosk_sid")


def in_thread(call):
    """Run `call` in a thread; returns (thread, box) where box[0] is its result once joined."""
    box = []
    thread = threading.Thread(target=lambda: box.append(call()))
    thread.start()
    return thread, box


def wait_for(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def stripe_charged(stripe):
    return sorted(c.amount for c in stripe.charges() if c.status == "succeeded")


def ledger_paid(app):
    with closing(ledger(app)) as db:
        return sorted(r[0] for r in db.execute("SELECT amount FROM orders WHERE status IN ('paid', "
                                               "'partially_refunded', 'refunded')"))


def signed_in_browser(live):
    staff = Browser(live.url)
    assert staff.post("/staff/login", data={"pin": PIN}).status_code == 302
    staff.load("/staff/")
    return staff


def test_lock_wins_over_a_slow_check_now_that_began_before_it(app, live, stripe_server):
    book = books(app)[0]
    paid = buy(app, stripe_server, {book.isbn13: 1}, confirm=False)  # paid at Stripe, not yet recorded
    staff = signed_in_browser(live)
    slow = stripe_server.inject("stall", LIST, times=1, seconds=2)  # Stripe answers, slowly
    thread, box = in_thread(lambda: staff.post("/staff/reconcile"))
    wait_for(lambda: slow.hits == 1)
    assert staff.post("/staff/lock").status_code == 302  # staff lock while Check now still waits on Stripe
    thread.join(30)
    assert box[0].status_code == 302
    # The slow request finished its sweep, and the staff area stays locked.
    for path in ("/staff/orders", "/staff/stock"):
        reply = staff.http.get(live.url + path, allow_redirects=False, timeout=10)
        assert reply.status_code == 302 and reply.headers["Location"].endswith("/staff/")
    assert "Enter the staff PIN" in staff.load("/staff/").text or 'name="pin"' in staff.load("/staff/").text
    assert stored_session(app, staff.sid())["staff"] is False
    assert order(app, paid.reference)["status"] == "paid"
    assert stripe_charged(stripe_server) == ledger_paid(app) == [book.price]
    assert on_hand(app, book.isbn13) == book.stock - 1


def test_the_idle_reset_wins_over_a_slow_confirmation_that_began_before_it(app, live, stripe_server):
    book = books(app)[0]
    customer = Browser(live.url)
    customer.post("/cart/add", data={"isbn": book.isbn13, "quantity": "1"})
    page = customer.load("/checkout/").text
    attempt = re.search(r'"attempt": ?"([0-9a-f]+)"', page).group(1)
    reply = customer.post("/checkout/intent", json={"attempt": attempt}).json()
    stripe_server.pay(reply["clientSecret"].split("_secret_")[0])
    old_sid = customer.sid()
    slow = stripe_server.inject("stall", RETRIEVE_INTENT, times=1, seconds=2)
    thread, box = in_thread(lambda: customer.http.get(re.sub(r"^https?://[^/]+", live.url, reply["returnUrl"]),
                                                      timeout=30))
    wait_for(lambda: slow.hits == 1)
    reset = customer.post("/session/reset", json={}, headers={"Accept": "application/json"})
    assert reset.status_code == 200
    thread.join(30)
    late = box[0]
    assert late.status_code == 200 and "kiosk_sid" not in late.headers.get("Set-Cookie", "")
    # Nothing of the customer under the old id, whatever the late answer did; the browser starts empty.
    assert stored_session(app, old_sid) == {"revoked": True, "cart": {}, "staff": False, "attempts": 0,
                                            "plain id stored": False}
    stale = requests.Session()
    stale.cookies.set("kiosk_sid", old_sid)
    assert stale.get(live.url + "/cart/summary", timeout=10).json()["count"] == 0
    assert customer.http.get(live.url + "/cart/summary", timeout=10).json()["count"] == 0
    assert stripe_charged(stripe_server) == ledger_paid(app) == [book.price]
    assert on_hand(app, book.isbn13) == book.stock - 1


def test_books_added_at_the_same_moment_are_all_kept(app, live):
    customer = Browser(live.url)
    chosen = [b for b in books(app) if b.stock >= 1][:8]
    barrier = threading.Barrier(len(chosen))

    def add(book):
        barrier.wait()
        return customer.post("/cart/add", json={"isbn": book.isbn13, "quantity": 1}).status_code

    threads = [in_thread(lambda b=b: add(b)) for b in chosen]
    for thread, _ in threads:
        thread.join(30)
    assert [box[0] for _, box in threads] == [200] * len(chosen)
    assert stored_session(app, customer.sid())["cart"] == {b.isbn13: 1 for b in chosen}


def refund_form(staff, reference, book):
    return confirm_form(staff.load(review_url(reference, {book.isbn13: 1})).text)


def test_two_refunds_at_once_never_refund_or_restock_more_than_was_sold(app, live, stripe_server):
    book = books(app)[0]
    paid = buy(app, stripe_server, {book.isbn13: 1})
    staff = signed_in_browser(live)
    forms = [refund_form(staff, paid.reference, book) for _ in range(2)]  # two forms (two windows), two keys
    stripe_server.inject("stall", REFUNDS, times=1, seconds=1.5)  # the first is still at Stripe ...
    barrier = threading.Barrier(2)

    def refund(form):
        barrier.wait()
        return staff.post(f"/staff/orders/{paid.reference}/refund", data=form)

    threads = [in_thread(lambda f=f: refund(f)) for f in forms]  # ... when the second arrives
    for thread, _ in threads:
        thread.join(30)
    made = stripe_server.client().v1.refunds.list({"payment_intent": paid.intent}).data
    assert [r.amount for r in made] == [book.price]
    row = order(app, paid.reference)
    assert (row["status"], row["amount_refunded"], row["refund_pending"]) == ("refunded", book.price, 0)
    assert on_hand(app, book.isbn13) == book.stock  # sold one, one back: never two
    with closing(ledger(app)) as db:
        assert db.execute("SELECT COUNT(*), SUM(amount) FROM refunds").fetchone()[:] == (1, book.price)
        assert db.execute("SELECT returned FROM order_lines").fetchone()[0] == 1


def test_the_ledger_itself_refuses_more_refunded_or_returned_than_sold(app, stripe_server):
    from kiosk.ledger.db import IntegrityError
    book = books(app)[0]
    paid = buy(app, stripe_server, {book.isbn13: 1})
    with closing(ledger(app)) as db:
        with pytest.raises(IntegrityError):
            db.execute("UPDATE orders SET amount_refunded = amount + 1 WHERE reference = ?", (paid.reference,))
        with pytest.raises(IntegrityError):
            db.execute("UPDATE orders SET refund_pending = amount, amount_refunded = 1 WHERE reference = ?",
                       (paid.reference,))
        with pytest.raises(IntegrityError):
            db.execute("UPDATE order_lines SET returned = quantity + 1")


def sold_with_refund_form(app, stripe_server):
    """A book sold, staff signed in, and the request key of that order's refund form."""
    from tests.support.client import KioskClient
    book = books(app)[0]
    paid = buy(app, stripe_server, {book.isbn13: 1})
    staff = KioskClient(app)
    staff.token()
    staff.post("/staff/login", data={"pin": PIN})
    form = confirm_form(staff.get(review_url(paid.reference, {book.isbn13: 1})).get_data(as_text=True))
    return book, paid, staff, form


def test_a_refund_form_sent_again_after_a_crash_finds_the_refund_at_stripe(app, stripe_server):
    book, paid, staff, form = sold_with_refund_form(app, stripe_server)
    key = form["request"]
    # The kiosk wrote the refund, Stripe made it, and the kiosk died before writing that down.
    with closing(ledger(app)) as db:
        refund_ledger.reserve_refund(db, order(app, paid.reference)["id"], amount=book.price,
                                     returned={book.isbn13: 1}, request_key=key)
    stripe_server.client().v1.refunds.create({"payment_intent": paid.intent, "amount": book.price,
                                               "metadata": {"request_key": key}})
    page = staff.post(f"/staff/orders/{paid.reference}/refund", data=form,
                      follow_redirects=True).get_data(as_text=True)
    assert "Refunded $" in page
    made = stripe_server.client().v1.refunds.list({"payment_intent": paid.intent}).data
    assert [r.amount for r in made] == [book.price]
    row = order(app, paid.reference)
    assert (row["status"], row["amount_refunded"], row["refund_pending"]) == ("refunded", book.price, 0)
    assert on_hand(app, book.isbn13) == book.stock


def test_refunds_made_in_the_stripe_dashboard_reach_the_ledger(app, stripe_server):
    a, b = books(app)[:2]
    first = buy(app, stripe_server, {a.isbn13: 1})
    second = buy(app, stripe_server, {b.isbn13: 2})
    client = stripe_server.client()
    client.v1.refunds.create({"payment_intent": first.intent})  # all of it, in the Dashboard
    client.v1.refunds.create({"payment_intent": second.intent, "amount": 100})  # part of it
    app.extensions["kiosk"].reconciler.run_once()
    app.extensions["kiosk"].reconciler.run_once()  # a second sweep records nothing twice
    rows = {ref: order(app, ref) for ref in (first.reference, second.reference)}
    assert (rows[first.reference]["status"], rows[first.reference]["amount_refunded"]) == ("refunded", a.price)
    assert (rows[second.reference]["status"], rows[second.reference]["amount_refunded"]) == \
        ("partially_refunded", 100)
    refunded_at_stripe = sum(r.amount for r in client.v1.refunds.list({"limit": 100}).data)
    with closing(ledger(app)) as db:
        assert db.execute("SELECT SUM(amount) FROM refunds").fetchone()[0] == refunded_at_stripe == a.price + 100
        takings = reports.day_report(db, stamps.today())["total"]
        assert "Stripe Dashboard" in db.execute("SELECT reason FROM refunds LIMIT 1").fetchone()[0]
    assert takings["net"] == a.price + 2 * b.price - a.price - 100
    # No book is assumed back on the shelf: staff count the returns in.
    assert (on_hand(app, a.isbn13), on_hand(app, b.isbn13)) == (a.stock - 1, b.stock - 2)


def test_a_refund_stripe_never_made_is_given_back_by_the_reconciler(app, stripe_server):
    from kiosk.payments.reconcile import PENDING_REFUND_GRACE, sweep
    book = books(app)[0]
    paid = buy(app, stripe_server, {book.isbn13: 1})
    with closing(ledger(app)) as db:
        refund_ledger.reserve_refund(db, order(app, paid.reference)["id"], amount=book.price,
                                     returned={book.isbn13: 1}, request_key="f" * 32)
        sweep(db, app.extensions["kiosk"])  # too recent: staff may be retrying it
        assert order(app, paid.reference)["refund_pending"] == book.price
        sweep(db, app.extensions["kiosk"], now=time.time() + PENDING_REFUND_GRACE + 1)
    row = order(app, paid.reference)
    assert (row["status"], row["amount_refunded"], row["refund_pending"]) == ("paid", 0, 0)
    assert stripe_server.client().v1.refunds.list({"payment_intent": paid.intent}).data == []
    assert on_hand(app, book.isbn13) == book.stock - 1


def test_a_page_that_changes_nothing_writes_nothing(app, live, stripe_server):
    store = app.extensions["sessions"]
    for _ in range(50):  # a page anywhere on the machine, sending cookieless requests
        for path in ("/", "/search?q=time", f"/book/{books(app)[0].isbn13}", "/cart", "/checkout/", "/attract"):
            requests.get(live.url + path, timeout=10)
    assert store.db().execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    customer = Browser(live.url)
    customer.post("/cart/add", data={"isbn": books(app)[0].isbn13, "quantity": "1"})
    customer.load("/cart")  # shows (and so uses up) the "Added" message
    # PRAGMA data_version moves when any other connection commits to the file.
    sessions_db, ledger_db = store.db(), ledger(app)
    before = [db.execute("PRAGMA data_version").fetchone()[0] for db in (sessions_db, ledger_db)]
    for path in ("/", "/search?q=time", f"/book/{books(app)[1].isbn13}", "/cart", "/attract", "/cart/summary"):
        assert customer.load(path).status_code == 200
    assert [db.execute("PRAGMA data_version").fetchone()[0] for db in (sessions_db, ledger_db)] == before
    ledger_db.close()
    # The message a cookieless visitor is given still reaches the next page.
    visitor = requests.Session()
    page = visitor.get(live.url + "/checkout/", timeout=10)
    assert page.url.endswith("/cart") and "Your cart is empty. Add a book before paying." in page.text
    assert store.db().execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1


def test_a_refund_whose_lookup_fails_stays_held_and_is_never_made_twice(app, stripe_server):
    """Made at Stripe, its answer lost; the next press cannot ask Stripe (429): released then, a third press would
    have refunded it again. Held, the third press finds the one refund."""
    book, paid, staff, form = sold_with_refund_form(app, stripe_server)

    def press():  # the same form sent again, as the browser's back button and Refund do
        return staff.post(f"/staff/orders/{paid.reference}/refund", data=form,
                          follow_redirects=True).get_data(as_text=True)

    refunds_route = ("POST", r"/v1/refunds")
    stripe_server.inject("drop", refunds_route, after=True, times=1)
    assert "not confirmed" in press()
    stripe_server.clear_faults()
    stripe_server.inject("429", ("GET", r"/v1/refunds"))
    page = press()
    assert "not confirmed" in page and "nothing was recorded" not in page
    assert order(app, paid.reference)["refund_pending"] == book.price  # still held
    stripe_server.clear_faults()
    press()
    made = stripe_server.client().v1.refunds.list({"payment_intent": paid.intent}).data
    assert [r.amount for r in made] == [book.price]  # one refund at Stripe, whatever was pressed
    row = order(app, paid.reference)
    assert (row["status"], row["amount_refunded"], row["refund_pending"]) == ("refunded", book.price, 0)
    assert on_hand(app, book.isbn13) == book.stock
