"""Refunds in the ledger: held (pending) before Stripe is asked, completed with Stripe's refund, or released; the
schema's CHECKs refuse more refunded or returned than was sold, whatever two forms do at once."""
import json

from kiosk.core import tax
from kiosk.core.stamps import now
from kiosk.ledger import stock
from kiosk.ledger.db import IntegrityError, LedgerError, retry_conflicts, transaction
from kiosk.ledger.orders import REFUNDABLE, taxes


def returned_quantities(db, order_id):
    """Copies of each book already put back on the shelf from this order."""
    rows = db.execute("SELECT isbn, SUM(delta) AS n FROM stock_movements WHERE order_id = ? AND reason = 'return' "
                      "GROUP BY isbn", (order_id,))
    return {r["isbn"]: r["n"] for r in rows}


def refunds(db, order_id):
    """The order's refunds, oldest first."""
    return db.execute("SELECT * FROM refunds WHERE order_id = ? ORDER BY id", (order_id,)).fetchall()


def held_or_returned(db, order_id):
    """Copies of each book of an order back on the shelf, or held for a refund not yet confirmed."""
    return {r["isbn"]: r["returned"] for r in
            db.execute("SELECT isbn, returned FROM order_lines WHERE order_id = ?", (order_id,))}


def refund_by_id(db, refund_id):
    """One refund row."""
    return db.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()


def refund_made(db, stripe_refund):
    """True when the ledger has a Stripe refund id already."""
    return db.execute("SELECT 1 FROM refunds WHERE stripe_refund = ?", (stripe_refund,)).fetchone() is not None


def refund_recorded(db, request_key):
    """The refund row written for a staff request (pending, succeeded or failed), or None."""
    return db.execute("SELECT * FROM refunds WHERE request_key = ?", (request_key,)).fetchone()


def check_refund(db, order, amount, returned):
    """Raise LedgerError unless `amount` and the returned copies fit what is left of the order.

    A quick answer for the form; the schema's CHECKs decide when two refunds race (reserve_refund)."""
    if order["status"] not in REFUNDABLE:
        raise LedgerError("refund_not_paid", "Order %(reference)s is %(status)s; only a paid order can be refunded.",
                          reference=order["reference"], status=order["status"])
    left = order["amount"] - order["amount_refunded"] - order["refund_pending"]
    if not 0 < amount <= left:
        raise LedgerError("refund_amount", "The refund must be more than zero and at most what is left to refund.")
    out = {line["isbn"]: line["quantity"] - line["returned"] for line in
           db.execute("SELECT isbn, quantity, returned FROM order_lines WHERE order_id = ?", (order["id"],))}
    for isbn, quantity in returned.items():
        if isbn not in out or not 0 <= quantity <= out[isbn]:
            raise LedgerError("refund_copies",
                              "More copies are marked as returned than were sold and not yet returned.")


class QuoteChanged(LedgerError):
    """What the returned books come to is not what staff were shown: another refund of the order came between."""


def returns_amount(db, order, returned):
    """What was paid for the copies in `returned` ({isbn: copies}) of an order, tax included (tax.returns_value),
    and never more than is left to refund."""
    lines = db.execute("SELECT isbn, unit_price, quantity, paid, returned, tax_class FROM order_lines "
                       "WHERE order_id = ?", (order["id"],)).fetchall()
    value = tax.returns_value(lines, taxes(db, order["id"]), returned, bool(order["tax_inclusive"]))
    return min(value, order["amount"] - order["amount_refunded"] - order["refund_pending"])


def _reserve(db, order_id, amount, returned, request_key, reason, expected=None):
    """Hold `amount` (None: what the returned books come to) and the returned copies against the order, in the
    caller's transaction.

    The schema refuses more refunded (or held) than paid, and more copies back than were sold, so two
    refunds submitted at the same moment cannot both pass, whatever Python checked before. The order's row is
    read locked (the lock order: the order first), so what the books come to is worked out from the lines as
    they are, not as another refund left them a moment before."""
    order = db.execute(f"SELECT * FROM orders WHERE id = ?{db.for_update}", (order_id,)).fetchone()
    if amount is None:
        amount = returns_amount(db, order, returned)
        if expected is not None and amount != expected:
            raise QuoteChanged("refund_quote_changed", "Another refund of this order was made meanwhile, so these "
                               "books now come to a different amount. Check the new amount, then refund.")
    check_refund(db, order, amount, returned)
    try:
        db.execute("UPDATE orders SET refund_pending = refund_pending + ?, updated_at = ? WHERE id = ?",
                   (amount, now(), order_id))
        for isbn, quantity in sorted(returned.items()):
            if quantity > 0:
                db.execute("UPDATE order_lines SET returned = returned + ? WHERE order_id = ? AND isbn = ?",
                           (quantity, order_id, isbn))
    except IntegrityError:
        raise LedgerError("refund_race", "Another refund of this order was made at the same moment; "
                          "what is left to refund has changed. Open the order again.") from None
    back = {isbn: q for isbn, q in returned.items() if q > 0}
    # The tax inside the refund, apportioned per class, so the day's tax refunded is true to the pence.
    shares = tax.apportion(taxes(db, order_id), order["amount"],
                           order["amount_refunded"] + order["refund_pending"], amount)
    return db.execute("INSERT INTO refunds (order_id, amount, restocked, reason, request_key, status, "
                      "returns, created_at, tax, taxes) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) RETURNING id",
                      (order_id, amount, sum(back.values()), reason, request_key,
                       json.dumps(back, sort_keys=True), now(), sum(shares.values()),
                       json.dumps(shares, sort_keys=True))).fetchone()[0]


@retry_conflicts
def reserve_refund(db, order_id, *, amount, returned, request_key, reason=None, expected=None):
    """Write a pending refund before Stripe is asked to make it; returns its row id. Raises LedgerError.

    `amount` None refunds what the returned books come to; then `expected`, when given, is the amount staff
    were shown, and QuoteChanged is raised if the books now come to another."""
    with transaction(db):
        return _reserve(db, order_id, amount, returned, request_key, reason, expected)


def _complete(db, refund, stripe_refund, amount):
    """A pending refund Stripe made: money and returned books move, in the caller's transaction."""
    if not db.execute("UPDATE refunds SET status = 'succeeded', stripe_refund = ?, amount = ? "
                      "WHERE id = ? AND status = 'pending'", (stripe_refund, amount, refund["id"])).rowcount:
        return False
    stamp = now()
    db.execute("UPDATE orders SET refund_pending = refund_pending - ?, amount_refunded = amount_refunded + ?, "
               "updated_at = ?, status = CASE WHEN amount_refunded + ? >= amount THEN 'refunded' "
               "ELSE 'partially_refunded' END WHERE id = ?",
               (refund["amount"], amount, stamp, amount, refund["order_id"]))
    for isbn, quantity in sorted(json.loads(refund["returns"]).items()):
        stock.move(db, isbn, quantity, "return", order_id=refund["order_id"], refund_id=refund["id"],
                   note="returned with a refund")
    return True


@retry_conflicts
def complete_refund(db, refund_id, *, stripe_refund, amount):
    """Record that Stripe made a pending refund; False if it was settled already."""
    with transaction(db):
        return _complete(db, refund_by_id(db, refund_id), stripe_refund, amount)


@retry_conflicts
def release_refund(db, refund_id):
    """Stripe did not make a pending refund: give back the amount and copies it held, and forget it."""
    with transaction(db):
        refund = db.execute("SELECT * FROM refunds WHERE id = ? AND status = 'pending'", (refund_id,)).fetchone()
        if refund is None:
            return False
        db.execute("UPDATE orders SET refund_pending = refund_pending - ?, updated_at = ? WHERE id = ?",
                   (refund["amount"], now(), refund["order_id"]))
        for isbn, quantity in sorted(json.loads(refund["returns"]).items()):
            db.execute("UPDATE order_lines SET returned = returned - ? WHERE order_id = ? AND isbn = ?",
                       (quantity, refund["order_id"], isbn))
        db.execute("DELETE FROM refunds WHERE id = ?", (refund_id,))
    return True


def pending_refunds(db):
    """Refunds written but not yet confirmed by Stripe, with their order's PaymentIntent, oldest first."""
    return db.execute("SELECT r.*, o.payment_intent, o.reference FROM refunds r JOIN orders o ON o.id = r.order_id "
                      "WHERE r.status = 'pending' ORDER BY r.id").fetchall()


@retry_conflicts
def record_refund(db, order_id, *, stripe_refund, amount, request_key, returned, reason=None):
    """Write a refund Stripe already made, in one go; False if it (or its request) was already recorded."""
    with transaction(db):
        if db.execute("SELECT 1 FROM refunds WHERE stripe_refund = ? OR request_key = ?",
                      (stripe_refund, request_key)).fetchone():
            return False
        refund_id = _reserve(db, order_id, amount, returned, request_key, reason)
        return _complete(db, refund_by_id(db, refund_id), stripe_refund, amount)
