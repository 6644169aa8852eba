"""The refund service: a staff refund request reserved in the ledger, made at Stripe, then completed there (or
released, or kept held), the whole protocol in one place; views only read the form and show the outcome."""
import json
import logging
from dataclasses import dataclass, field

from kiosk.core import stamps, tax
from kiosk.core.money import to_minor
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
    # changed (the books now come to another amount than staff confirmed: nothing was made), unavailable (no
    # payments on this kiosk)
    kind: str
    amount: int = 0  # refunded: what Stripe refunded, in minor units
    books: int = 0  # refunded: copies back in stock
    stripe_refund: str = ""  # refunded: Stripe's re_ id
    message: str = ""  # invalid or changed: why, in English for the log
    # held or refused: what Stripe answered; invalid or changed: the ledger's coded refusal (words.say says it)
    error: Exception | None = None


@dataclass
class Quote:
    """A refund as staff are asked to confirm it, before anything reaches Stripe."""

    amount: int  # in minor units: what the returned books come to, or the custom amount typed
    returned: dict  # ISBN -> copies back on the shelf
    lines: list  # (order line, copies) for each book coming back
    custom: bool  # a custom amount, confirmed as such, instead of what the books come to
    books_amount: int  # what the returned books come to, tax included, whatever was typed
    paid: dict = field(default_factory=dict)  # ISBN -> what was paid for its copies coming back, without added tax

    @property
    def books(self):
        """Copies back on the shelf."""
        return sum(self.returned.values())

    @property
    def prices(self):
        """What was paid for the returned copies (after the sale's promotions), without any tax added on top."""
        return sum(self.paid.values())


def quote(db, order, returned, custom=None):
    """What a refund of the books in `returned` (ISBN -> copies) would give back: what was paid for them, tax
    included; or the amount typed in `custom` (text in major units) when staff chose a custom amount.
    Raises LedgerError with what to correct."""
    refund_ledger.check_refund(db, order, 1, returned)
    lines = [(line, returned[line["isbn"]]) for line in orders.lines(db, order["id"]) if returned.get(line["isbn"])]
    books_amount = refund_ledger.returns_amount(db, order, returned) if lines else 0
    back = refund_ledger.held_or_returned(db, order["id"])
    paid = {line["isbn"]: tax.paid_for(line, back[line["isbn"]] + copies) - tax.paid_for(line, back[line["isbn"]])
            for line, copies in lines}
    if custom is None:
        if not lines:
            raise orders.LedgerError("refund_nothing_chosen",
                                     "Choose the books coming back, or refund a custom amount.")
        return Quote(books_amount, returned, lines, False, books_amount, paid)
    amount = _custom_amount(order, custom)
    refund_ledger.check_refund(db, order, amount, returned)
    return Quote(amount, returned, lines, True, books_amount, paid)


def _custom_amount(order, text):
    """A custom amount as staff typed it, in minor units; raises LedgerError when it is not a number."""
    try:
        return to_minor(text, order["currency"])
    except ValueError:
        raise orders.LedgerError("refund_amount_unreadable",
                                 "Write the refund amount as a number in %(currency)s, like %(example)s.",
                                 currency=order["currency"],
                                 example=stamps.major(order["amount"], order["currency"])) from None


def paying_card(k, order):
    """The brand and last four digits of the card the order was paid with, as Stripe has them; ("", "") when
    Stripe cannot be asked now (the refund goes back to that card all the same)."""
    if k.gateway is None or not order["payment_intent"]:
        return "", ""
    try:
        intent = k.gateway.retrieve(order["payment_intent"])
    except PaymentError:
        return "", ""
    return intent.card_brand, intent.card_last4


def refund_order(k, db, order, returned, request_key, *, custom=None, expected=None, reason=None):
    """Refund the books in `returned` (ISBN -> copies back on the shelf) through Stripe, for what was paid for
    them (or the amount typed in `custom`, a custom refund), then write it to the ledger and stock.

    The refund is written as pending first (the schema refuses more than was paid, however many forms are
    submitted at once), then made at Stripe, then completed; a form sent again after a crash finds the
    refund at Stripe by its request key instead of making a second one. `expected` is the amount staff
    confirmed: if the books now come to another (a refund came between), nothing is made."""
    if k.gateway is None:
        return RefundOutcome("unavailable")
    held = refund_ledger.refund_recorded(db, request_key)
    if held is not None and held["status"] == "succeeded":
        return RefundOutcome("already_recorded")
    fresh = held is None
    if fresh:
        try:
            amount = None if custom is None else _custom_amount(order, custom)
            if amount is None and not any(returned.values()):
                raise orders.LedgerError("refund_nothing_chosen",
                                         "Choose the books coming back, or refund a custom amount.")
            refund_id = refund_ledger.reserve_refund(db, order["id"], amount=amount, returned=returned,
                                                     request_key=request_key, reason=reason, expected=expected)
        except refund_ledger.QuoteChanged as exc:
            return RefundOutcome("changed", message=str(exc), error=exc)
        except orders.LedgerError as exc:
            return RefundOutcome("invalid", message=str(exc), error=exc)
        held = refund_ledger.refund_by_id(db, refund_id)
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
                raise Refused(exc.message, exc.kind, False, exc.code, exc.status, decline=exc.decline,
                              params=exc.params) from exc
            if exc.status is None:
                raise
            made = stripe_terms.find_refund(k.gateway, order["payment_intent"], held["request_key"])
            if made is None:  # Stripe, asked, has no such refund: the 5xx made nothing
                raise Refused(exc.message, exc.kind, False, exc.code, exc.status, decline=exc.decline,
                              params=exc.params) from exc
    if not made.made:
        raise Refused(f"Stripe reports the refund as {made.status}.", "refund_failed", False,
                      params={"status": made.status})
    refund_ledger.complete_refund(db, held["id"], stripe_refund=made.id, amount=made.amount)
    return made
