"""Double submit: many concurrent Pay taps on one checkout attempt, and many concurrent loads of its
confirmation, against the kiosk served by waitress. One PaymentIntent per attempt; one sale recorded.
"""
import threading

import pytest
import requests

from kiosk.ledger import orders
from tests.hardening.helpers import Shopper, books, hardening_app
from tests.support.ledger import ledger, paid_state
from tests.support.live import LiveServer

TAPS = 16
ROUNDS = 6
FIGURE = ("DOUBLE SUBMIT: {rounds} rounds of {taps} concurrent Pay taps made {intents} PaymentIntents "
          "for {rounds} checkout attempts; {confirms} concurrent confirmations recorded {sales} sales")


@pytest.fixture
def live(tmp_path, stripe_server):
    app = hardening_app(tmp_path, stripe_server)
    server = LiveServer(app, threads=8)
    yield app, server.url
    server.close()


def all_at_once(calls):
    """Run the calls in threads released together; returns their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_pay_taps_make_one_intent(live, stripe_server, tally):
    app, url = live
    shelf = [b for b in books(app) if b.stock >= 2]
    intents = confirms = 0
    for n in range(ROUNDS):
        shopper = Shopper(url)
        book = shelf[n]
        shopper.add(book.isbn13, 2)
        attempt = shopper.attempt()
        taps = [shopper.twin() for _ in range(TAPS)]
        replies = all_at_once([lambda s=s, attempt=attempt, shopper=shopper: s.post(
            url + "/checkout/intent", json={"attempt": attempt}, headers=shopper.headers(), timeout=30) for s in taps])
        assert all(isinstance(r, requests.Response) and r.status_code == 200 for r in replies), replies
        secrets = {r.json()["clientSecret"] for r in replies}
        assert len(secrets) == 1
        intent = secrets.pop().split("_secret_")[0]
        assert stripe_server.pay(intent) == "succeeded"
        return_url = replies[0].json()["returnUrl"]
        pages = all_at_once([lambda s=s, return_url=return_url: s.get(return_url, timeout=30) for s in taps])
        assert all(p.status_code == 200 and "Payment received" in p.text for p in pages)
        confirms += len(pages)
        db = ledger(app)
        order = orders.get(db, intent=intent)
        sales = db.execute("SELECT COUNT(*), SUM(delta) FROM stock_movements WHERE order_id = ? AND reason = 'sale'",
                           (order["id"],)).fetchone()
        db.close()
        assert order["status"] == "paid" and tuple(sales) == (1, -2)
    intents = len(stripe_server.intents())
    state = paid_state(app, stripe_server)
    db = ledger(app)
    order_rows = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    db.close()
    tally(FIGURE, rounds=ROUNDS, taps=TAPS, intents=intents, confirms=confirms, sales=state["paid"])
    assert intents == ROUNDS == order_rows == state["paid"] and state["lost"] == state["double"] == 0
