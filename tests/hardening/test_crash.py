"""Crash: `kill -9` of `python -m kiosk --headless` at each step of a purchase, then a restart on the same
ledger. Every PaymentIntent paid at Stripe ends up recorded exactly once, and the stock is right.

The steps where the kiosk is waiting on Stripe are reached with a stall from tests/support/fakestripe.py: the
kiosk is killed while it waits, which is exactly when a power cut hurts most.
"""
import threading
import time

import pytest
import requests

from kiosk.ledger import orders
from kiosk.ledger import stock as shelves
from tests.hardening.helpers import Shopper, intent_id
from tests.support.fakestripe import CREATE_INTENT, LIST_INTENTS, RETRIEVE_INTENT
from tests.support.ledger import ledger, paid_state
from tests.support.process import KioskProcess

FIGURE = ("CRASH: kill -9 at {steps} steps of a purchase; after restart {recorded} of {paid} paid intents "
          "recorded exactly once ({lost} lost, {double} double), stock right for {stock_ok} of {books} books")


@pytest.fixture
def kiosk(tmp_path, stripe_server):
    # Sweeps every 5 s (the least allowed), so the test waits for reconciliation in seconds.
    process = KioskProcess(tmp_path / "data", stripe_server, KIOSK_RECONCILE_SECONDS="5").start()
    yield process
    process.kill()
    stripe_server.clear_faults()


def in_background(call):
    """Run a request that will never get its answer (the kiosk dies), keeping whatever happened."""
    outcome = {}

    def run():
        try:
            outcome["reply"] = call()
        except requests.RequestException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_for(condition, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def restart(kiosk, stripe):
    """kill -9, Stripe healthy again, start on the same ledger and port."""
    kiosk.kill()
    stripe.clear_faults()
    kiosk.start()


def order_status(kiosk, intent=None, attempt=None):
    db = ledger(kiosk)
    try:
        row = orders.get(db, intent=intent) if intent else orders.get(db, attempt=attempt)
        return row["status"] if row else None
    finally:
        db.close()


def tap_pay(shopper, attempt):
    return shopper.http.post(shopper.url + "/checkout/intent", json={"attempt": attempt},
                             headers=shopper.headers(), timeout=60)


def test_kill_at_every_step_of_a_purchase(kiosk, stripe_server, tally):
    db = ledger(kiosk)
    start_stock = shelves.stock_levels(db)
    db.close()
    isbns = sorted(isbn for isbn, n in start_stock.items() if n >= 3)
    bought = {}
    steps = []

    def buy_rest(shopper, attempt, isbn):
        """The customer carries on after the restart: tap Pay, pay, see the confirmation."""
        reply = tap_pay(shopper, attempt)
        assert reply.status_code == 200, reply.text
        if not reply.json().get("paid"):
            assert stripe_server.pay(intent_id(reply.json())) == "succeeded"
        page = shopper.http.get(reply.json()["returnUrl"], timeout=30)
        assert page.status_code == 200 and "Payment received" in page.text
        bought[isbn] = bought.get(isbn, 0) + 1

    # 1. After the cart: the server-side cart survives the crash.
    shopper, isbn = Shopper(kiosk.url), isbns[0]
    shopper.add(isbn)
    restart(kiosk, stripe_server)
    assert shopper.http.get(kiosk.url + "/cart/summary", timeout=10).json()["count"] == 1
    buy_rest(shopper, shopper.attempt(), isbn)
    steps.append("after cart")

    # 2. After the pending order is written, while the kiosk waits for Stripe to create the intent.
    shopper, isbn = Shopper(kiosk.url), isbns[1]
    shopper.add(isbn)
    attempt = shopper.attempt()
    fault = stripe_server.inject("stall", CREATE_INTENT)
    in_background(lambda: tap_pay(shopper, attempt))
    wait_for(lambda: fault.hits, what="the intent request")
    assert order_status(kiosk, attempt=attempt) == "pending"
    restart(kiosk, stripe_server)
    assert order_status(kiosk, attempt=attempt) == "pending"  # kept for the retry or reconciliation
    buy_rest(shopper, attempt, isbn)
    steps.append("after pending order")

    # 3. After Stripe created the intent, before the kiosk heard of it; the customer comes back.
    shopper, isbn = Shopper(kiosk.url), isbns[2]
    shopper.add(isbn)
    attempt = shopper.attempt()
    fault = stripe_server.inject("stall", CREATE_INTENT, after=True)
    in_background(lambda: tap_pay(shopper, attempt))
    wait_for(lambda: fault.hits, what="the intent request")
    restart(kiosk, stripe_server)
    buy_rest(shopper, attempt, isbn)
    steps.append("after intent created")

    # 4. Same, but the intent gets paid while the kiosk is down and the customer never comes back
    #    (the worst case: Stripe has money the ledger never linked): reconciliation attaches and records it.
    shopper, isbn = Shopper(kiosk.url), isbns[3]
    shopper.add(isbn)
    attempt = shopper.attempt()
    fault = stripe_server.inject("stall", CREATE_INTENT, after=True)
    in_background(lambda: tap_pay(shopper, attempt))
    wait_for(lambda: fault.hits, what="the intent request")
    kiosk.kill()
    stripe_server.clear_faults()
    orphan = [pi for pi in stripe_server.intents() if pi.status == "requires_payment_method"]
    assert len(orphan) == 1 and stripe_server.pay(orphan[0].id) == "succeeded"
    kiosk.start()
    wait_for(lambda: order_status(kiosk, intent=orphan[0].id) == "paid", what="reconciliation")
    bought[isbn] = bought.get(isbn, 0) + 1
    steps.append("paid at Stripe while down, never linked")

    # 5. After the payment is confirmed at Stripe, before the confirmation page: reconciliation records it,
    #    even though Stripe answers 500 to the kiosk's first sweep after the restart.
    shopper, isbn = Shopper(kiosk.url), isbns[4]
    shopper.add(isbn)
    reply = tap_pay(shopper, shopper.attempt())
    paid_intent = intent_id(reply.json())
    assert stripe_server.pay(paid_intent) == "succeeded"
    kiosk.kill()
    down = [stripe_server.inject("500", route) for route in (LIST_INTENTS, RETRIEVE_INTENT)]
    kiosk.start()
    wait_for(lambda: down[0].hits, what="the first sweep")
    assert order_status(kiosk, intent=paid_intent) == "pending"
    stripe_server.clear_faults()
    wait_for(lambda: order_status(kiosk, intent=paid_intent) == "paid", what="reconciliation")
    bought[isbn] = bought.get(isbn, 0) + 1
    # The customer's confirmation page still works, and records nothing twice.
    assert "Payment received" in shopper.http.get(reply.json()["returnUrl"], timeout=30).text
    steps.append("after payment at Stripe")

    # 6. While the confirmation page asks Stripe (a stalled retrieval).
    shopper, isbn = Shopper(kiosk.url), isbns[5]
    shopper.add(isbn)
    reply = tap_pay(shopper, shopper.attempt())
    paid_intent = intent_id(reply.json())
    assert stripe_server.pay(paid_intent) == "succeeded"
    fault = stripe_server.inject("stall", RETRIEVE_INTENT)
    in_background(lambda: shopper.http.get(reply.json()["returnUrl"], timeout=60))
    wait_for(lambda: fault.hits, what="the confirmation's retrieval")
    restart(kiosk, stripe_server)
    wait_for(lambda: order_status(kiosk, intent=paid_intent) == "paid", what="reconciliation")
    bought[isbn] = bought.get(isbn, 0) + 1
    steps.append("during confirmation")

    # 7. After the confirmation: nothing changes, however often the kiosk restarts and reconciles.
    shopper, isbn = Shopper(kiosk.url), isbns[6]
    shopper.add(isbn)
    buy_rest(shopper, shopper.attempt(), isbn)
    restart(kiosk, stripe_server)
    time.sleep(3)  # past the start-up sweep
    restart(kiosk, stripe_server)
    time.sleep(3)
    steps.append("after confirmation")

    # Every paid intent recorded once; stock right for every book.
    state = paid_state(kiosk, stripe_server)
    db = ledger(kiosk)
    stock = shelves.stock_levels(db)
    sales = db.execute("SELECT COUNT(*), COUNT(DISTINCT order_id || isbn) FROM stock_movements "
                       "WHERE reason = 'sale'").fetchone()
    db.close()
    stock_ok = sum(stock[i] == start_stock[i] - bought.get(i, 0) for i in start_stock)
    tally(FIGURE, steps=len(steps), recorded=state["charged"] - state["lost"], paid=state["charged"],
          lost=state["lost"], double=state["double"], stock_ok=stock_ok, books=len(start_stock))
    assert state["charged"] == len(steps) == state["paid"]
    assert state["lost"] == state["double"] == 0
    assert sales[0] == sales[1] == len(steps)  # one sale movement per paid line, none twice
    assert stock_ok == len(start_stock), {i: (start_stock[i], stock[i], bought.get(i)) for i in start_stock}
