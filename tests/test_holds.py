"""No one script can hold the shelves empty: at most a few payments hold copies at one counter, one nobody confirms
makes way for the next customer, and a hold nobody touches for the idle time is given back, its intent canceled."""
import time
from contextlib import closing

from kiosk.payments import reconcile
from kiosk.visit import purchase
from tests.support.client import KioskClient
from tests.support.ledger import books, ledger, on_hand, order


def start_paying(app, isbn, quantity):
    """A visitor (a fresh session, as a script makes one per request) adds copies and presses Pay: the reply."""
    client = KioskClient(app)
    client.add(isbn, quantity)
    return client.post("/checkout/intent", json={"attempt": client.start_checkout()})


def held(app, isbn):
    with closing(ledger(app)) as db:
        return db.execute("SELECT held FROM stock WHERE isbn = ?", (isbn,)).fetchone()["held"]


def backdate(app, reference, seconds):
    """Time passes for one order: it was last changed `seconds` earlier than the ledger says."""
    with closing(ledger(app)) as db:
        row = order(app, reference)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.mktime(time.strptime(
            row["updated_at"], "%Y-%m-%d %H:%M:%S")) - time.timezone - seconds))
        db.execute("UPDATE orders SET updated_at = ? WHERE id = ?", (stamp, row["id"]))


def test_a_script_pressing_pay_again_and_again_holds_at_most_a_few_carts(app, stripe_server):
    book = max(books(app), key=lambda b: b.stock)
    replies = [start_paying(app, book.isbn13, 1) for _ in range(12)]
    holding = [r.json["reference"] for r in replies if r.status_code == 200]
    busy = [r for r in replies if r.status_code == 409]
    assert len(holding) == purchase.MAX_HOLDING and len(busy) == 12 - purchase.MAX_HOLDING
    assert all(r.json["retry"] and "Another payment is under way" in r.json["error"] for r in busy)
    assert held(app, book.isbn13) == purchase.MAX_HOLDING
    # Half a minute on, nobody confirmed the oldest: the next customer's Pay cancels it at Stripe and takes its place.
    backdate(app, holding[0], purchase.CONFIRM_GRACE + 1)
    customer_reply = start_paying(app, book.isbn13, 2)
    assert customer_reply.status_code == 200
    oldest = order(app, holding[0])
    assert oldest["status"] == "canceled"
    assert stripe_server.client().v1.payment_intents.retrieve(oldest["payment_intent"]).status == "canceled"
    assert held(app, book.isbn13) == purchase.MAX_HOLDING - 1 + 2
    # The customer pays: Stripe charged what the ledger recorded, and the shelf gave exactly those copies.
    reference = customer_reply.json["reference"]
    intent = customer_reply.json["clientSecret"].split("_secret_")[0]
    assert stripe_server.pay(intent) == "succeeded"
    with closing(ledger(app)) as db:
        reconcile.sweep(db, app.extensions["kiosk"])
    paid = order(app, reference)
    charged = [(c.payment_intent, c.amount) for c in stripe_server.charges() if c.status == "succeeded"]
    assert paid["status"] == "paid" and charged == [(intent, paid["amount"])] and paid["amount"] == 2 * book.price
    assert on_hand(app, book.isbn13) == book.stock - 2


def test_a_hold_nobody_touches_for_the_idle_time_is_given_back(app, stripe_server):
    kiosk = app.extensions["kiosk"]
    a, b = books(app)[:2]
    idle = start_paying(app, a.isbn13, 2).json
    in_3ds = start_paying(app, b.isbn13, 1).json
    in_3ds_intent = in_3ds["clientSecret"].split("_secret_")[0]
    assert stripe_server.pay(in_3ds_intent, "4000002500003155") == "requires_action"  # the bank's challenge
    with closing(ledger(app)) as db:
        reconcile.sweep(db, kiosk)  # just now: both still hold
    assert (held(app, a.isbn13), held(app, b.isbn13)) == (2, 1)
    with closing(ledger(app)) as db:
        reconcile.sweep(db, kiosk, now=time.time() + kiosk.settings.idle_seconds + 61)
    untouched = order(app, idle["reference"])
    assert untouched["status"] == "canceled" and held(app, a.isbn13) == 0 and on_hand(app, a.isbn13) == a.stock
    assert stripe_server.client().v1.payment_intents.retrieve(untouched["payment_intent"]).status == "canceled"
    # The customer in 3-D Secure is not hurried: that hold stands until the abandon time.
    assert order(app, in_3ds["reference"])["status"] == "pending" and held(app, b.isbn13) == 1
    assert [c for c in stripe_server.charges() if c.status == "succeeded"] == []  # nothing was charged
