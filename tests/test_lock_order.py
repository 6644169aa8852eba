"""One lock order everywhere: two busy counters, a shelf count and refunds at once never deadlock on PostgreSQL.

Two books whose titles sort one way and whose ISBNs sort the other, so a cart held in title order and a sale
taken in ISBN order would lock the same two stock rows in opposite orders."""
import random
import threading
import time

import pytest

from kiosk.ledger import db as dblib
from kiosk.ledger import migrations, orders
from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger import stock as shelves

# Title order is the reverse of ISBN order.
BOOKS = [{"isbn": "9780000000002", "title": "Aardvarks at Dawn", "unit_price": 1200},
         {"isbn": "9780000000019", "title": "Zebras at Dusk", "unit_price": 900}]
ON_HAND = 100_000


def _deadlocks(url):
    """Deadlocks PostgreSQL has detected in this database so far (its own statistics)."""
    with dblib.connect(url) as db:
        return db.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


@pytest.fixture
def stocked(pg_url):
    migrations.init_db(pg_url)
    with dblib.connect(pg_url) as db:
        for book in BOOKS:
            db.execute("INSERT INTO stock (isbn, on_hand, catalog_qty) VALUES (?, ?, ?)",
                       (book["isbn"], ON_HAND, ON_HAND))
    return pg_url


def test_opposite_carts_sales_counts_and_refunds_at_once_never_deadlock(stocked):
    url, errors, done = stocked, [], {"sold": 0, "canceled": 0, "counted": 0, "refunded": 0}
    before = _deadlocks(url)
    start = threading.Barrier(5)

    def counter(n):
        rng = random.Random(n)
        with dblib.connect(url) as db:
            start.wait()
            for i in range(30):
                lines = [{**book, "quantity": rng.randint(1, 2)} for book in BOOKS]
                lines.sort(key=lambda ln: ln["title"], reverse=bool(n % 2))  # opposite orders at two counters
                try:
                    order = orders.open_checkout(db, attempt=f"c{n}-{i}", lines=lines, currency="USD",
                                                 who=(f"k{n}", f"Till {n}"))
                    if i % 5 == 4:
                        orders.mark_canceled(db, order["id"], "changed the cart")
                        done["canceled"] += 1
                        continue
                    orders.mark_paid(db, order["id"])
                    done["sold"] += 1
                    if i % 3 == 0:
                        refund_ledger.record_refund(db, order["id"], stripe_refund=f"re_{n}_{i}", amount=100,
                                                    request_key=f"r{n}-{i}", returned={b["isbn"]: 1 for b in BOOKS})
                        done["refunded"] += 1
                except dblib.LedgerUnavailable as exc:  # a LedgerConflict that was not run again
                    errors.append(f"counter {n}: {exc}")

    def shelf_count():
        rng = random.Random(99)
        with dblib.connect(url) as db:
            start.wait()
            for _ in range(40):
                for book in reversed(BOOKS):
                    row = db.execute("SELECT on_hand FROM stock WHERE isbn = ?", (book["isbn"],)).fetchone()
                    try:
                        shelves.count_shelf(db, book["isbn"], row["on_hand"] + rng.randint(1, 3), "shelf count",
                                          "staff")
                        done["counted"] += 1
                    except dblib.LedgerUnavailable as exc:
                        errors.append(f"shelf count: {exc}")
                time.sleep(0.005)

    threads = [threading.Thread(target=counter, args=(n,)) for n in range(4)] + [threading.Thread(target=shelf_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    time.sleep(1.1)  # PostgreSQL publishes a backend's statistics at most once a second
    deadlocks = _deadlocks(url) - before
    print(f"lock order: {done}, deadlocks {deadlocks}, errors {len(errors)}")
    assert errors == [] and deadlocks == 0
    assert done["sold"] == 96 and done["canceled"] == 24 and done["counted"] == 80
    with dblib.connect(url) as db:
        for book in BOOKS:
            stock = db.execute("SELECT on_hand, held FROM stock WHERE isbn = ?", (book["isbn"],)).fetchone()
            moved = db.execute("SELECT COALESCE(SUM(delta), 0) FROM stock_movements WHERE isbn = ?",
                               (book["isbn"],)).fetchone()[0]
            sold = db.execute("SELECT COALESCE(SUM(quantity), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id "
                              f"WHERE l.isbn = ? AND o.{orders.SOLD_SQL}", (book["isbn"],)).fetchone()[0]
            sales = db.execute("SELECT COALESCE(SUM(delta), 0) FROM stock_movements WHERE isbn = ? AND "
                               "reason = 'sale'", (book["isbn"],)).fetchone()[0]
            # Stock adds up: every copy that moved is logged, every sale taken once, nothing left held.
            assert stock["on_hand"] == ON_HAND + moved and -sales == sold and stock["held"] == 0
