"""Refunds through Stripe: written as pending first, made at Stripe, then completed in the ledger."""
from . import orders, stripe_terms
from .payments import PaymentError


class Refused(PaymentError):
    """Stripe answered that it did not make the refund (refused it, or reports it failed): nothing to wait for."""


def make(k, db, order, held, fresh):
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
    orders.complete_refund(db, held["id"], stripe_refund=made.id, amount=made.amount)
    return made
