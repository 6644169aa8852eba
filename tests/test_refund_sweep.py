"""The refund sweep never moves past a refund it could not record: a Dashboard refund made while a kiosk refund of
the same sale is held (Stripe answered 500 to Refund) reaches the ledger once the hold is resolved."""
import time
from contextlib import closing

from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger.db import get_meta
from kiosk.payments.reconcile import PENDING_REFUND_GRACE, REFUND_WATERMARK, mine, sweep
from tests.support.ledger import books, buy, ledger, on_hand, order


def test_a_dashboard_refund_blocked_by_a_held_refund_is_recorded_after_the_hold_is_released(app, stripe_server):
    kiosk = app.extensions["kiosk"]
    book = books(app)[0]
    paid = buy(app, stripe_server, {book.isbn13: 1})
    start = time.time()
    with closing(ledger(app)) as db:
        # Staff pressed Refund and Stripe answered 500: the kiosk holds the refund, Stripe made none.
        refund_ledger.reserve_refund(db, order(app, paid.reference)["id"], amount=book.price, returned={book.isbn13: 1},
                                     request_key="a" * 32)
    # Staff then refund the same sale in the Stripe Dashboard.
    made = stripe_server.client().v1.refunds.create({"payment_intent": paid.intent})
    with closing(ledger(app)) as db:
        # The reconciler sweeps every minute through the grace time; the Dashboard refund cannot be recorded
        # while the hold takes what is left of the sale, so the watermark stays at it.
        for minute in range(0, PENDING_REFUND_GRACE // 60 + 1, 2):
            report = sweep(db, kiosk, now=start + minute * 60)
            assert made.id in " ".join(report.errors)
            assert int(get_meta(db, mine(REFUND_WATERMARK, kiosk))) <= made.created
        sweep(db, kiosk, now=start + PENDING_REFUND_GRACE + 1)  # the hold is released: Stripe made no such refund
        sweep(db, kiosk, now=start + PENDING_REFUND_GRACE + 61)
        recorded = db.execute("SELECT stripe_refund, amount, status FROM refunds").fetchall()
    # Money as money: the ledger records what Stripe refunded, once; no book is assumed back on the shelf.
    refunded_at_stripe = [(r.id, r.amount) for r in stripe_server.client().v1.refunds.list({"limit": 100}).data]
    assert [(r["stripe_refund"], r["amount"]) for r in recorded] == refunded_at_stripe == [(made.id, book.price)]
    assert recorded[0]["status"] == "succeeded"
    row = order(app, paid.reference)
    assert (row["status"], row["amount_refunded"], row["refund_pending"]) == ("refunded", book.price, 0)
    assert on_hand(app, book.isbn13) == book.stock - 1
