"""The refund service: a staff refund request reserved in the ledger, made at Stripe, then completed there (or
released, or kept held), the whole protocol in one place; views only read the form and show the outcome."""
import json
import logging
from dataclasses import dataclass

from kiosk.core import stamps
from kiosk.ledger import orders
from kiosk.ledger import refunds as refund_ledger
from kiosk.payments import stripe_terms
from kiosk.payments.gateway import PaymentError

log = logging.getLogger("kiosk.refunds")


class Refused(PaymentError):
    """Stripe answered that it did not make the refund (refused it, or reports it failed): nothing to wait for."""


@dataclass
class RefundOutcome:
    """What became of a refund request: `kind` says which, the rest is what staff are told."""

    # refunded, already_recorded (that request's refund was made), held (not confirmed: kept, not lost),
    # refused (Stripe did not make it: released), invalid (the form asks for what cannot be refunded),
    # unavailable (no payments on this kiosk)
    kind: str
    amount: int = 0  # refunded: what Stripe refunded, in minor units
    books: int = 0  # refunded: copies back in stock
    stripe_refund: str = ""  # refunded: Stripe's re_ id
    message: str = ""  # invalid: why, in words for staff
    error: PaymentError | None = None  # held or refused: what Stripe answered


def refund_order(k, db, order, amount, returned, request_key, reason=None):
    """Refund all or part of an order through Stripe, then write it to the ledger (and stock, if returned).

    The refund is written as pending first (the schema refuses more than was paid, however many forms are
    submitted at once), then made at Stripe, then completed; a form sent again after a crash finds the
    refund at Stripe by its request key instead of making a second one. `amount` is in minor units, None when
    the form's amount is not a number; `returned` maps ISBN to copies back on the shelf."""
    if k.gateway is None:
        return RefundOutcome("unavailable")
    held = refund_ledger.refund_recorded(db, request_key)
    if held is not None and held["status"] == "succeeded":
        return RefundOutcome("already_recorded")
    fresh = held is None
    if fresh:
        try:
            held = _reserve(db, order, amount, returned, request_key, reason)
        except orders.LedgerError as exc:
            return RefundOutcome("invalid", message=str(exc))
    try:
        made = _make(k, db, order, held, fresh)
    except PaymentError as exc:
        log.warning("refund of %s failed: %s (%s)", order["reference"], exc.kind, exc.status)
        if isinstance(exc, Refused):
            refund_ledger.release_refund(db, held["id"])
            return RefundOutcome("refused", error=exc)
        # No answer, or Stripe could not be asked whether an earlier try made it: it may have. Released now,
        # a press of Refund would make a second one; held, the next check with Stripe settles it.
        return RefundOutcome("held", error=exc)
    log.info("refunded %s of order %s (%s)", made.amount, order["reference"], made.id)
    return RefundOutcome("refunded", amount=made.amount, books=sum(json.loads(held["returns"]).values()),
                         stripe_refund=made.id)


def _reserve(db, order, amount, returned, request_key, reason):
    """Check a new refund request against the order and write it as pending; returns its row. Raises LedgerError."""
    if amount is None:
        raise orders.LedgerError(f"Write the refund amount as a number in {order['currency']}, "
                                 f"like {stamps.major(order['amount'], order['currency'])}.")
    refund_ledger.check_refund(db, order, amount, returned)
    refund_id = refund_ledger.reserve_refund(db, order["id"], amount=amount, returned=returned, request_key=request_key,
                                             reason=reason)
    return refund_ledger.refund_by_id(db, refund_id)


def _make(k, db, order, held, fresh):
    """Make a pending refund at Stripe (or find it there) and complete it in the ledger; raises PaymentError.

    A form sent again after a crash or a timeout first looks for its refund at Stripe (by the request key in
    the refund's metadata), so it never refunds twice. Stripe replays a 5xx for the same Idempotency-Key, so
    after one it looks too, and each reservation has its own key."""
    made = None if fresh else stripe_terms.find_refund(k.gateway, order["payment_intent"], held["request_key"])
    if made is None:
        try:
            key, request = stripe_terms.refund_key(k.kiosk_id, held["request_key"], held["id"]), held["request_key"]
            made = k.gateway.refund(order["payment_intent"], held["amount"], idempotency_key=key,
                                    metadata=stripe_terms.refund_metadata(k.kiosk_id, order["reference"], request))
        except PaymentError as exc:
            if exc.status is not None and exc.status < 500:
                raise Refused(exc.message, exc.kind, False, exc.code, exc.status) from exc
            if exc.status is None:
                raise
            made = stripe_terms.find_refund(k.gateway, order["payment_intent"], held["request_key"])
            if made is None:  # Stripe, asked, has no such refund: the 5xx made nothing
                raise Refused(exc.message, exc.kind, False, exc.code, exc.status) from exc
    if not made.made:
        raise Refused(f"Stripe reports the refund as {made.status}.", "refund_failed", False)
    refund_ledger.complete_refund(db, held["id"], stripe_refund=made.id, amount=made.amount)
    return made
