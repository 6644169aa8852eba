"""The purchase: a checkout attempt's payment, from Pay to paid or canceled. Every step that decides money is here.

Modelled on pretix's services (src/pretix/base/services/): a view asks for one step (pay, follow the card reader,
confirm, cancel, the idle reset), and gets back an Outcome saying what it came to; how a page says that is the
view's. The copies are held through the ledger (orders), the PaymentIntent made and asked through the gateway.

One payment in flight per customer (customer.py freezes the cart while it is under way). A new attempt for a
changed cart first asks Stripe about the old one: paid is recorded and shown, open is canceled before anything
new starts.
"""
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kiosk.core import pricing, stamps
from kiosk.core.i18n import gettext as _
from kiosk.ledger import orders, promotions
from kiosk.payments import stripe_terms, terminal
from kiosk.payments.gateway import Intent, PaymentError
from kiosk.visit import customer

log = logging.getLogger("kiosk.purchase")
# Copies are held from Pay until the payment ends. A counter has one screen, so at most MAX_HOLDING typed-card
# payments hold copies there at once, and no one script can hold the shelves empty: past that, a payment nobody
# confirmed within CONFIRM_GRACE seconds of Pay makes way (its intent canceled at Stripe first). A customer
# typing a card holds nothing yet (the intent is made at Pay), and one in 3-D Secure is never made to wait.
MAX_HOLDING = 3
CONFIRM_GRACE = 30

# What a step came to (Outcome.kind).
STARTED = "started"  # the order holds its copies and its PaymentIntent waits for the card (Outcome.intent)
HELD = "held"  # the order holds its copies; nothing was asked of Stripe yet
PAID = "paid"  # Stripe took the money and the ledger has it
CANCELED = "canceled"  # canceled at Stripe first, then in the ledger: nothing was charged
CLOSED = "closed"  # the attempt's payment had already ended, without being paid
PROCESSING = "processing"  # the bank is settling it: it cannot be changed or canceled now
UNPAID = "unpaid"  # the card did not pay it; the cart is kept for another try (detail: Stripe's reason and code)
DECLINED = "declined"  # the card reader read a card and it was declined (detail: reason, code)
WAITING = "waiting"  # the card reader waits for a card (detail: online), or Stripe did not answer (error)
STOPPED = "stopped"  # the card reader stopped waiting for this payment
NEEDS_STAFF = "needs_staff"  # closed at Stripe, but not as the ledger asked (settle marked it failed)
CART_CHANGED = "cart_changed"  # the cart is not the one the page showed (detail: notes, when stock trimmed it)
EMPTY = "empty"  # nothing to pay for
SOLD_OUT = "sold_out"  # another counter took the copies (detail: title, left)
BUSY = "busy"  # another payment at this counter holds copies, and none could make way
FAILED = "failed"  # Stripe could not be asked, or refused (Outcome.error)
NOTHING = "nothing"  # no payment of this session's to do this to
SENT = "sent"  # Stripe will email the receipt
TOO_MANY = "too_many"  # the receipt was emailed as often as it may be

RESOLVED = {"paid": PAID, "canceled": CANCELED, "open": PROCESSING}  # resolve()'s answers, as outcomes


@dataclass(frozen=True)
class Outcome:
    """What a step of a purchase came to (`kind`, above), with what a view needs to say it."""

    kind: str
    order: Any = None  # the ledger's row
    intent: Intent | None = None
    error: PaymentError | None = None
    detail: dict = field(default_factory=dict)


def pay(kiosk, db, posted, method, reader=""):
    """Start paying the attempt the page `posted`, `method`'s way (on `reader` if given): STARTED, or why not."""
    priced = customer.priced(kiosk, db)
    refused = _refusal(priced, posted)
    if refused is not None:
        return refused
    with kiosk.lock(posted):  # a double tap waits here, then finds the reader already waiting for this payment
        outcome = _payment_for_attempt(kiosk, db, posted, priced, method)
        if outcome.kind == STARTED and reader:
            outcome = _hand_over(kiosk, reader, outcome)
    return outcome


def _refusal(priced, posted):
    """Why no payment may start for this priced cart and the attempt the page sent, or None."""
    if priced.notes:
        # A book sold out or ran short between the cart and Pay: say so, and show the new total.
        return Outcome(CART_CHANGED, detail={"notes": priced.notes})
    if not priced.lines:
        return Outcome(EMPTY)
    row = customer.attempt()
    if not posted or row is None or posted != row["id"] or row["fingerprint"] != priced.fingerprint():
        if priced.code_state == pricing.CODE_GONE:
            # The code's last use went to another customer (or it ended) since the page: say so.
            return Outcome(CART_CHANGED, detail={"notes": [_("The code %(code)s has ended or been used up. The "
                                                             "page shows your cart without it.", code=priced.code)]})
        return Outcome(CART_CHANGED)
    return None


def _payment_for_attempt(kiosk, db, attempt, priced, method):
    """The attempt's order with its open PaymentIntent for this way to pay (STARTED), or why there is none."""
    order = orders.get(db, attempt=attempt)
    if order is None:
        held = _hold(kiosk, db, attempt, priced, method)
        if held.kind != HELD:
            return held
        order = held.order
    elif order["status"] in orders.SOLD:
        return Outcome(PAID, order)
    elif order["status"] == "canceled":
        customer.close_attempt(attempt, "canceled")
        return Outcome(CLOSED, order)
    return _start(kiosk, db, order, priced, method)


def _hold(kiosk, db, attempt, priced, method):
    """Write the attempt's pending order, its copies held (HELD), or say why it cannot be."""
    try:
        room = method != "card" or make_room(kiosk, db)
    except PaymentError as exc:
        return Outcome(FAILED, error=exc)
    if not room:
        return Outcome(BUSY)
    # The pending order is committed before any client secret leaves the server.
    try:
        # The copies are held as the order is written: another counter cannot sell them meanwhile.
        order = orders.open_checkout(db, attempt=attempt, lines=priced.lines, currency=kiosk.settings.currency,
                                     who=(kiosk.kiosk_id, kiosk.settings.counter_name), taxes=priced.taxes,
                                     inclusive=priced.inclusive, method=method, savings=priced.savings)
    except orders.OutOfStock as short:
        return Outcome(SOLD_OUT, detail={"title": short.title, "left": short.available})
    except promotions.CodeUsedUp as used_up:
        # Another counter took the code's last use between the cart and Pay: nothing was charged or held.
        return Outcome(CART_CHANGED, detail={"notes": [_("The code %(code)s has just been used for the last time. "
                                                         "The page shows your cart without it.",
                                                         code=used_up.params["given"])]})
    return Outcome(HELD, order)


def _start(kiosk, db, order, priced, method):
    """Freeze the cart and find or make the held order's PaymentIntent: STARTED, or why not."""
    if not customer.begin_paying(kiosk, db, order["attempt"]):
        # The cart changed between the page and Pay (a scan, another tab): nothing was asked of Stripe.
        if not order["payment_intent"]:
            orders.mark_canceled(db, order["id"], "The cart changed before payment started.")
        return Outcome(CART_CHANGED, order)
    try:
        if order["method"] != method:
            # One intent per way to pay: the other one is canceled at Stripe before this one is made.
            switched = switch_method(kiosk, db, order, method)
            if switched != "switched":
                return Outcome(PAID if switched == "paid" else PROCESSING, order)
            order = orders.get(db, order_id=order["id"])
        intent = _open_intent(kiosk, db, order, priced, method)
    except PaymentError as exc:
        return _not_started(db, order, exc)
    if intent.paid:
        return Outcome(PAID, order, intent)
    if intent.canceled or intent.processing:
        orders.settle(db, orders.get(db, order_id=order["id"]), intent)
        customer.sync(kiosk, db)
        return Outcome(CLOSED, order, intent)
    return Outcome(STARTED, order, intent)


def _open_intent(kiosk, db, order, priced, method):
    """The order's PaymentIntent: its own, the one Stripe made on an earlier try, or a new one. Raises PaymentError."""
    intent_id = find_intent(kiosk.gateway, db, order) if order["intent_tries"] else order["payment_intent"]
    if intent_id:
        return kiosk.gateway.retrieve(intent_id)
    types = [terminal.METHOD] if method == terminal.METHOD else kiosk.settings.payment_methods
    intent = kiosk.gateway.create_intent(
        amount=order["amount"], currency=order["currency"], allowed_types=types,
        metadata=stripe_terms.intent_metadata(kiosk.kiosk_id, order["reference"], method, priced),
        description=f"{kiosk.settings.shop_name} order {order['reference']}",
        idempotency_key=stripe_terms.intent_key(kiosk.kiosk_id, order["attempt"], order["intent_tries"]))
    orders.attach_intent(db, order["id"], intent.id)
    log.info("order %s: created %s (%s) for %s", order["reference"], intent.id, method, order["amount"])
    return intent


def _not_started(db, order, exc):
    """FAILED, once the ledger has what Stripe's failure leaves: a 5xx is asked about next try, a refusal frees it."""
    log.warning("intent for %s failed: %s (%s)", order["reference"], exc.kind, exc.status)
    if exc.status is not None and exc.status >= 500:
        orders.bump_intent_tries(db, order["id"])
    elif not exc.retryable and not orders.get(db, order_id=order["id"])["payment_intent"]:
        # Stripe refused to make it: nothing can be paid, so the cart is free again.
        orders.mark_canceled(db, order["id"], exc.message)
        customer.close_attempt(order["attempt"], "canceled")
    return Outcome(FAILED, order, error=exc)


def _hand_over(kiosk, reader, started):
    """Hand a STARTED payment to the card reader, which then waits for the customer's card; FAILED if it cannot."""
    order, intent = started.order, started.intent
    try:
        terminal.hand_over(kiosk.gateway, reader, intent.id)
    except PaymentError as exc:
        log.warning("reader %s for %s: %s (%s)", reader, order["reference"], exc.kind, exc.code)
        return Outcome(FAILED, order, intent, error=exc)
    log.info("order %s: %s waits on reader %s for %s", order["reference"], intent.id, reader, order["amount"])
    return started


def reader_waiting(db, attempt):
    """True while the card reader waits for this attempt's payment (back on the checkout page, it follows it again)."""
    order = orders.get(db, attempt=attempt)
    return order is not None and order["method"] == terminal.METHOD and order["status"] == "pending" \
        and bool(order["payment_intent"])


def reader_status(kiosk, db, posted):
    """Where the card reader's payment for the attempt the page `posted` stands: waiting, paid, declined, stopped..."""
    row = customer.attempt()
    if row is None or row["id"] != posted or kiosk.gateway is None:
        return Outcome(CART_CHANGED)
    order = orders.get(db, attempt=row["id"])
    if order is None or order["method"] != terminal.METHOD or not order["payment_intent"]:
        return Outcome(NOTHING)
    if (settled := _ledger_closed(kiosk, db, order)) is not None:
        return settled
    try:
        intent = kiosk.gateway.retrieve(order["payment_intent"])
        if intent.closed:
            orders.settle(db, order, intent)
            # Succeeded but not for what the ledger asked (settle marked it failed): staff must look at it.
            return _ledger_closed(kiosk, db, orders.get(db, order_id=order["id"])) or Outcome(NEEDS_STAFF, order)
        reader = kiosk.gateway.reader(terminal.reader_id(kiosk, db))
    except PaymentError as exc:
        return Outcome(WAITING, order, error=exc)  # Stripe briefly unreachable: keep asking
    if reader.failed(intent.id):
        orders.settle(db, order, intent)  # the decline is on the order; its copies stay held for another try
        reason = reader.action.get("failure_message") or intent.last_error
        code = intent.last_error_code or reader.action.get("failure_code")  # the decline code says most
        return Outcome(DECLINED, order, intent, detail={"reason": reason, "code": code})
    if reader.collecting(intent.id) or intent.processing:
        return Outcome(WAITING, order, intent, detail={"online": reader.online})
    return Outcome(STOPPED, order, intent)


def _ledger_closed(kiosk, db, order):
    """PAID or CANCELED for an order the ledger has closed, else None."""
    if order["status"] in orders.SOLD:
        return Outcome(PAID, order)
    if order["status"] == "canceled":
        customer.sync(kiosk, db)
        return Outcome(CANCELED, order)
    return None


def confirm(kiosk, db, reference):
    """The confirmation: the server asks Stripe itself and records the order once (NOTHING if not this session's)."""
    order = orders.get(db, reference=reference) if reference else None
    if order is None or not customer.may_see(order) or not order["payment_intent"]:
        return Outcome(NOTHING)
    intent = None
    if order["status"] not in orders.SOLD:
        try:
            intent = kiosk.gateway.retrieve(order["payment_intent"])
        except PaymentError as exc:
            log.warning("confirmation for %s: Stripe unreachable (%s)", reference, exc.kind)
            return Outcome(FAILED, order, error=exc)
        if orders.settle(db, order, intent) != "paid":
            if intent.processing:
                return Outcome(PROCESSING, order, intent)
            customer.sync(kiosk, db)
            return Outcome(UNPAID, order, intent, detail={"reason": intent.last_error, "code": intent.last_error_code})
        order = orders.get(db, order_id=order["id"])
    else:
        try:  # paid before this page: the intent again, for the receipt's link and a card reader's lines
            intent = kiosk.gateway.retrieve(order["payment_intent"])
        except PaymentError as exc:
            # The order and its lines are in the ledger; only the receipt's link waits for Stripe.
            log.warning("receipt for %s: Stripe unreachable (%s)", order["reference"], exc.kind)
    # Paid: its books leave the cart, once, whatever happened to the cart since.
    customer.close_attempt(order["attempt"], "paid", orders.lines(db, order["id"]))
    return Outcome(PAID, order, intent)


def settle_in_flight(kiosk, db, priced):
    """A cart that changed while its payment was under way: ask Stripe about that payment first.

    Paid is recorded (PAID); open is canceled (CANCELED), and only then may a new attempt start; PROCESSING when it
    can no longer be canceled, FAILED when Stripe cannot be asked. NOTHING for an unchanged cart, which keeps its
    attempt (Pay asks Stripe about that intent again), or no payment under way."""
    order = customer.in_flight(kiosk, db)
    if order is None or customer.attempt()["fingerprint"] == priced.fingerprint():
        return Outcome(NOTHING)
    with kiosk.lock(order["attempt"]):
        outcome = _cancel_order(kiosk, db, order, "Canceled: the cart changed before it was paid.")
    if outcome.kind == FAILED:
        log.warning("checkout: could not ask Stripe about %s (%s)", order["reference"], outcome.error.kind)
    return outcome


def cancel_in_flight(kiosk, db, note):
    """Cancel the payment under way, Stripe first so nothing is charged after it: CANCELED, or NOTHING to cancel."""
    row = customer.attempt() if kiosk.gateway is not None else None
    if row is None:
        return Outcome(NOTHING)
    # The attempt's lock first: a Pay still being handed to Stripe or the reader (the customer left the page while
    # it ran) finishes, and is then canceled too, instead of starting after this found nothing to cancel.
    with kiosk.lock(row["id"]):
        order = customer.in_flight(kiosk, db)
        if order is None:
            return Outcome(NOTHING)
        return _cancel_order(kiosk, db, order, note)


def _cancel_order(kiosk, db, order, note):
    """Cancel an order's payment, under its attempt's lock: the outcome as Stripe ends it (RESOLVED), or FAILED."""
    try:
        resolved = resolve(kiosk, db, orders.get(db, order_id=order["id"]), cancel=True, note=note)
    except PaymentError as exc:
        return Outcome(FAILED, order, error=exc)
    return Outcome(RESOLVED[resolved], order)


def forget(kiosk, db):
    """The idle reset: cancel a payment under way, then end the session for good (a new customer comes next)."""
    order = customer.in_flight(kiosk, db) if kiosk.gateway is not None else None
    outcome = Outcome(NOTHING)
    if order is not None:
        with kiosk.lock(order["attempt"]):  # never while this attempt's PaymentIntent is being created
            outcome = _cancel_order(kiosk, db, order, "Canceled by the idle reset.")
        if outcome.kind == FAILED:
            log.warning("idle reset: Stripe unreachable for %s (%s); the reconciler settles it",
                        order["reference"], outcome.error.kind)
    customer.end_visit()
    return outcome


def email_receipt(kiosk, db, order, email, most):
    """Set receipt_email on a paid order's PaymentIntent, so Stripe emails its receipt (live mode), `most` times."""
    if not orders.count_receipt_email(db, order["id"], most):
        return Outcome(TOO_MANY, order)
    try:
        kiosk.gateway.update_receipt_email(order["payment_intent"], email)
    except PaymentError as exc:
        orders.uncount_receipt_email(db, order["id"])
        log.warning("receipt email for %s failed: %s", order["reference"], exc.kind)
        return Outcome(FAILED, order, error=exc)
    return Outcome(SENT, order)


def find_intent(gateway, db, order):
    """The order's PaymentIntent id, looking Stripe up by order reference when the ledger has none."""
    if order["payment_intent"]:
        return order["payment_intent"]
    found = stripe_terms.find_intent(gateway, order["reference"], since=stamps.unix_of(order["created_at"]))
    if found is None or found.canceled:
        return None  # a canceled one (the customer chose another way to pay) can never be paid
    orders.attach_intent(db, order["id"], found.id)
    return orders.get(db, order_id=order["id"])["payment_intent"]


def release_if_untouched(kiosk, db, order, note):
    """Cancel an order's payment if nobody is paying it (never confirmed, or declined and not tried again), giving
    its copies back; True when it was released. Raises PaymentError when Stripe cannot be asked."""
    intent_id = find_intent(kiosk.gateway, db, order)
    if intent_id is not None and not kiosk.gateway.retrieve(intent_id).untouched:
        return False  # in 3-D Secure, processing, paid or canceled: not for this to decide
    return resolve(kiosk, db, order, cancel=True, note=note) == "canceled"


def make_room(kiosk, db):
    """True when this counter may hold copies for one more typed-card payment (see MAX_HOLDING)."""
    held = orders.holding_orders(db, kiosk.kiosk_id)
    if len(held) < MAX_HOLDING:
        return True
    for order in held:  # least recently changed first
        if stamps.unix_of(order["updated_at"]) <= time.time() - CONFIRM_GRACE and release_if_untouched(
                kiosk, db, order, "Canceled: nobody paid it, and another customer was paying at this counter."):
            log.warning("order %s: released its copies for a new payment at this counter", order["reference"])
            return True
    return False


def _cancel(kiosk, db, order, intent_id):
    """Cancel an order's PaymentIntent (the card reader stops showing the amount first); the intent as it ends up.

    A payment that succeeded a moment ago is not canceled: cancel_or_retrieve answers its state then."""
    if order["method"] == terminal.METHOD:
        terminal.release(kiosk, db, intent_id)
    return kiosk.gateway.cancel_or_retrieve(intent_id)


def switch_method(kiosk, db, order, method):
    """Pay an order another way (the card reader, or typing the card): its PaymentIntent is canceled at Stripe
    first, then the order forgets it, keeping its copies held. 'switched', or 'paid'/'open' when the old payment
    went through or is being processed. Raises PaymentError when Stripe cannot be asked."""
    intent_id = find_intent(kiosk.gateway, db, order)
    if intent_id:
        intent = _cancel(kiosk, db, order, intent_id)
        if not intent.canceled:
            status = orders.settle(db, orders.get(db, order_id=order["id"]), intent)
            return "paid" if status in orders.SOLD else "open"
    return "switched" if orders.switch_method(db, order["id"], method, intent_id) else "open"


def resolve(kiosk, db, order, *, cancel, note):
    """Ask Stripe where an order's payment stands, canceling it if `cancel`: 'paid', 'canceled' or 'open'.

    Paid and canceled close this session's attempt. Raises PaymentError when Stripe cannot be asked, so a
    payment is never taken for closed while it might still go through."""
    gateway = kiosk.gateway
    intent_id = find_intent(gateway, db, order)
    if intent_id is None:
        if not cancel:
            return "open"
        orders.mark_canceled(db, order["id"], note)
        customer.close_attempt(order["attempt"], "canceled")
        return "canceled"
    intent = _cancel(kiosk, db, order, intent_id) if cancel else gateway.retrieve(intent_id)
    order = orders.get(db, order_id=order["id"])
    if intent.canceled:
        orders.mark_canceled(db, order["id"], note)
        customer.close_attempt(order["attempt"], "canceled")
        return "canceled"
    if orders.settle(db, order, intent) in orders.SOLD:
        customer.close_attempt(order["attempt"], "paid", orders.lines(db, order["id"]))
        return "paid"
    return "open"
