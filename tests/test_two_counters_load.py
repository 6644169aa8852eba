"""Two busy counters on one PostgreSQL ledger, over HTTP, for two minutes: customers at each paying for carts whose
books sort one way by title and the other by ISBN, while staff at each count shelves and refund sales.

Money is checked as money: what Stripe charged and refunded against what the ledger recorded, and stock against
its movements. No deadlock, and no paid customer ever shown a 5xx."""
import random
import re
import threading
import time

import pytest
import requests

from kiosk.ledger import db as dblib
from kiosk.ledger import orders
from kiosk.ledger import stock as shelves
from tests.support.process import KioskProcess
from tests.support.refunds import confirm_form, review_url

PIN = "2468"
SECONDS = 120
CUSTOMERS = 3  # at each counter
# Title order is the reverse of ISBN order: Alice's Adventures, Anna Karenina, Anne of Green Gables.
ISBNS = ["9785872718314", "9784839998196", "9781032232416"]


class Visit:
    """One browser over HTTP: its cookies, and the CSRF token of the page it last loaded."""

    def __init__(self, url):
        self.url, self.http, self.token = url, requests.Session(), None

    def load(self, path):
        reply = self.http.get(self.url + path, timeout=30)
        found = re.search(r'name="csrf-token" content="([^"]+)"', reply.text)
        self.token = found.group(1) if found else self.token
        return reply

    def post(self, path, **kwargs):
        return self.http.post(self.url + path, headers={"X-CSRFToken": self.token}, timeout=30,
                              allow_redirects=False, **kwargs)


def _deadlocks(url):
    with dblib.connect(url) as db:
        return db.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


@pytest.fixture
def counters(tmp_path, stripe_server, pg_url):
    """Two counters as a shop runs them: each `python -m kiosk --headless` of its own, on one PostgreSQL."""
    kiosks = []
    for name in ("Front", "Back"):
        (tmp_path / name).mkdir()
        kiosks.append(KioskProcess(tmp_path / name, stripe_server, KIOSK_DATABASE_URL=pg_url, KIOSK_COUNTER_NAME=name,
                                   KIOSK_STAFF_PIN=PIN))
    try:
        for kiosk in kiosks:
            kiosk.start()
        yield kiosks
    finally:
        for kiosk in kiosks:
            kiosk.kill()


def test_two_busy_counters_with_shelf_counts_and_refunds_never_deadlock(counters, stripe_server, pg_url):
    servers = counters
    with dblib.connect(pg_url) as db:  # plenty on the shelf, so customers meet neither each other nor "sold out"
        for isbn in ISBNS:
            shelves.count_shelf(db, isbn, 5000, "stocked for the load test", ("test", "test"))
    before, deadline = _deadlocks(pg_url), time.monotonic() + SECONDS
    seen = {"intent": [], "intent_5xx": 0, "paid": 0, "paid_5xx": 0, "counts": 0, "refunds": 0, "other": []}
    lock = threading.Lock()

    def customer(url, seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            visit = Visit(url)
            visit.load("/")
            for isbn in rng.sample(ISBNS, rng.randint(2, 3)):  # in either order
                visit.post("/cart/add", data={"isbn": isbn, "quantity": str(rng.randint(1, 2))})
            attempt = re.search(r'"attempt": ?"([0-9a-f]+)"', visit.load("/checkout/").text).group(1)
            started = time.monotonic()
            reply = visit.post("/checkout/intent", json={"attempt": attempt})
            with lock:
                seen["intent"].append(time.monotonic() - started)
                seen["intent_5xx"] += reply.status_code >= 500
            if reply.status_code != 200:
                visit.http.close()
                continue
            stripe_server.pay(reply.json()["clientSecret"].split("_secret_")[0])
            receipt = visit.http.get(reply.json()["returnUrl"].replace("http://localhost", url), timeout=30)
            visit.http.close()
            with lock:  # a customer Stripe charged: the receipt, never a 5xx
                seen["paid"] += 1
                seen["paid_5xx"] += receipt.status_code >= 500
                if receipt.status_code != 200:
                    seen["other"].append(f"receipt {receipt.status_code}")

    def staff(url, seed):
        rng = random.Random(seed)
        visit = Visit(url)
        visit.load("/staff/")
        assert visit.post("/staff/login", data={"pin": PIN}).status_code == 302
        visit.load("/staff/")
        while time.monotonic() < deadline:
            for isbn in reversed(ISBNS):  # a shelf count, books in the other order
                reply = visit.post("/staff/stock", data={"isbn": isbn, "count": str(5000 + rng.randint(0, 20)),
                                                         "note": "shelf count"})
                with lock:
                    seen["counts"] += reply.status_code == 302
                    seen["other"] += [f"count {reply.status_code}"] if reply.status_code != 302 else []
            with dblib.connect(pg_url) as db:
                sold = db.execute("SELECT reference FROM orders WHERE status = 'paid' ORDER BY id DESC LIMIT 5")
                refs = [r["reference"] for r in sold]
            if refs:  # a partial refund of a recent sale, whichever counter took it, one book back on the shelf
                ref = rng.choice(refs)
                page = visit.load(f"/staff/orders/{ref}").text
                isbn = next((i for i in ISBNS if f'name="return-{i}"' in page), None)
                review = visit.load(review_url(ref, {isbn: 1})).text if isbn else ""
                if 'class="refund-confirm"' in review:  # staff review what the book comes to, then refund it
                    reply = visit.post(f"/staff/orders/{ref}/refund", data=confirm_form(review))
                    with lock:
                        seen["refunds"] += reply.status_code == 302
            time.sleep(2)

    threads = [threading.Thread(target=customer, args=(server.url, n * 10 + c))
               for n, server in enumerate(servers) for c in range(CUSTOMERS)]
    threads += [threading.Thread(target=staff, args=(server.url, 100 + n)) for n, server in enumerate(servers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 60)
    time.sleep(1.1)  # PostgreSQL publishes a backend's statistics at most once a second
    deadlocks = _deadlocks(pg_url) - before
    intents = sorted(seen["intent"])
    p95 = intents[int(len(intents) * 0.95)] if intents else 0
    charged = sum(c.amount for c in stripe_server.charges() if c.status == "succeeded")
    refunded = sum(r.amount for r in stripe_server.client().v1.refunds.list({"limit": 100}).auto_paging_iter())
    with dblib.connect(pg_url) as db:
        paid = db.execute(f"SELECT COALESCE(SUM(amount), 0) FROM orders WHERE {orders.SOLD_SQL}").fetchone()[0]
        recorded = db.execute("SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE status = 'succeeded'").fetchone()[0]
        stock = {isbn: db.execute("SELECT on_hand, held FROM stock WHERE isbn = ?", (isbn,)).fetchone()
                 for isbn in ISBNS}
        moved = {isbn: db.execute("SELECT COALESCE(SUM(delta), 0) FROM stock_movements WHERE isbn = ?",
                                  (isbn,)).fetchone()[0] for isbn in ISBNS}
        initial = {isbn: db.execute("SELECT catalog_qty FROM stock WHERE isbn = ?", (isbn,)).fetchone()[0]
                   for isbn in ISBNS}
    print(f"two counters, {CUSTOMERS} customers each, {SECONDS} s: {len(intents)} Pays, {seen['paid']} purchases, "
          f"{seen['counts']} shelf counts, {seen['refunds']} refunds; deadlocks {deadlocks}, 5xx at Pay "
          f"{seen['intent_5xx']}, 5xx to paid customers {seen['paid_5xx']}; create-intent p95 {p95 * 1000:.0f} ms; "
          f"Stripe charged {charged}, ledger paid {paid}; Stripe refunded {refunded}, ledger refunded {recorded}")
    assert deadlocks == 0 and seen["paid_5xx"] == 0 and seen["intent_5xx"] == 0 and seen["other"] == []
    assert seen["paid"] >= 20 and seen["counts"] >= 20 and seen["refunds"] >= 5
    assert charged == paid and refunded == recorded
    for isbn in ISBNS:  # every copy that moved is logged, and nothing is left held
        assert stock[isbn]["on_hand"] == initial[isbn] + moved[isbn] and stock[isbn]["held"] == 0
