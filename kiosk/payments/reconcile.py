"""Reconciliation without webhooks: at start-up and on a timer the ledger catches up with Stripe.

A kiosk has no public URL, so Stripe's webhooks cannot reach it. Instead it asks Stripe: every open
order's PaymentIntent is settled, every PaymentIntent this kiosk created (found by `kiosk_id` in its
metadata) is matched to the ledger — a paid one the ledger lost is adopted — and intents nobody paid
for are canceled. Everything goes through `orders.settle`, like the confirmation page and the webhook.
"""
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from kiosk.core import stamps, tax
from kiosk.ledger import orders, promotions
from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger.db import IntegrityError, LedgerUnavailable, get_meta, set_meta
from kiosk.payments import terminal
from kiosk.payments.gateway import PaymentError
from kiosk.payments.stripe_terms import find_refund, method_of, read_intent_metadata, request_key_of

log = logging.getLogger("kiosk.reconcile")

# Kept per counter in the shared ledger (each counter reconciles its own payments): meta key "name:kiosk_id".
WATERMARK = "reconcile_watermark"
REFUND_WATERMARK = "reconcile_refund_watermark"
LAST_SWEEP = "reconcile_last_sweep"
LAST_RESULT = "reconcile_last_result"
# With no watermark (a new or lost ledger), look this far back for the kiosk's payments.
FIRST_LOOK_BACK = 30 * 86400
# Clocks differ between the kiosk and Stripe: list a little before the watermark.
CLOCK_SKEW = 300
FIRST_SWEEP_DELAY = 2.0
# A refund written as pending but never confirmed (the kiosk stopped, or Stripe did not answer) is looked
# up at Stripe after this long, and given back if Stripe never made it.
PENDING_REFUND_GRACE = 600


@dataclass
class Report:
    """What one sweep did, by order reference or intent id."""

    settled: list = field(default_factory=list)
    adopted: list = field(default_factory=list)
    attached: list = field(default_factory=list)
    canceled: list = field(default_factory=list)
    refunds: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def __str__(self):
        parts = [f"{len(v)} {k}" for k, v in vars(self).items() if v and k != "errors"]
        if self.errors:
            parts.append(f"{len(self.errors)} could not be checked ({self.errors[0]})")
        return ", ".join(parts) or "nothing to do"

    def summary(self):
        """The sweep as counts (JSON), which the staff screen words in its own language (kiosk.web.words)."""
        counts = {k: len(v) for k, v in vars(self).items() if k != "errors"}
        return json.dumps({"counts": counts, "errors": len(self.errors),
                           "first_error": str(self.errors[0]) if self.errors else ""})


def mine(name, kiosk):
    """This counter's meta key for `name`."""
    return f"{name}:{kiosk.kiosk_id}"


def last_check(db, kiosk):
    """When this counter last swept, and what it found (for the staff screen)."""
    return get_meta(db, mine(LAST_SWEEP, kiosk)), get_meta(db, mine(LAST_RESULT, kiosk))


def adopt(db, catalog, intent, counter=None):
    """Rebuild a paid order the ledger does not know from the intent's metadata and the catalog."""
    record, lines, unknown = read_intent_metadata(intent.metadata), [], []
    for isbn, quantity in record.items:
        book = catalog.get(isbn)
        if book is None:
            unknown.append(isbn)
        price = book.price if book else 0
        lines.append({"isbn": isbn, "title": book.title if book else f"Book not in the catalog ({isbn})",
                      "unit_price": price, "quantity": quantity, "tax_class": book.tax_class if book else tax.STANDARD,
                      "discount": min(record.discounts.get(isbn, 0), price * quantity)})
    note = [f"Adopted from Stripe on {stamps.now()} UTC: the ledger had no record of this paid order."]
    listed = sum(line["unit_price"] * line["quantity"] - line["discount"] for line in lines)
    if listed != intent.amount:
        note.append(f"Line prices come from today's catalog and total {stamps.major(listed, intent.currency)}, "
                    f"not the {stamps.major(intent.amount, intent.currency)} {intent.currency} charged.")
    if unknown or not lines:
        note.append("Some books could not be identified from the payment's metadata.")
    reference = record.reference
    if not reference or orders.get(db, reference=reference) is not None:
        # Never reuse a reference that names another order.
        reference = f"{reference or 'BK'}-{intent.id[-6:].upper()}"
    order = orders.adopt_paid(db, intent=intent.id, lines=lines, currency=intent.currency, amount=intent.amount,
                              reference=reference, created_at=stamps.stamp_of(intent.created), note=" ".join(note),
                              who=(record.kiosk_id or None, counter), taxes=record.tax_lines(lines),
                              inclusive=record.inclusive, method=method_of(intent),
                              savings=promotions.savings_as_sold(db, record.savings))
    orders.settle(db, order, intent, paid_at=stamps.stamp_of(intent.created))
    log.warning("adopted %s as order %s (%s %s)", intent.id, reference, intent.amount, intent.currency)
    return orders.get(db, order_id=order["id"])


def apply_intent(db, catalog, kiosk_id, intent, report, counter=None):
    """Bring the ledger in line with one PaymentIntent; returns its order row, or None if it has none."""
    record = read_intent_metadata(intent.metadata)
    if record.kiosk_id != kiosk_id:
        return None
    order = orders.get(db, intent=intent.id)
    if order is None:
        by_reference = orders.get(db, reference=record.reference)
        # A canceled one is not attached: the customer chose another way to pay, and its order waits for that.
        if by_reference is not None and not intent.canceled and \
                orders.attach_intent(db, by_reference["id"], intent.id):
            # The kiosk stopped between creating the intent and recording it.
            report.attached.append(by_reference["reference"])
        order = orders.get(db, intent=intent.id)
    if order is None:
        if not intent.paid:
            return None
        try:
            order = adopt(db, catalog, intent, counter)
        except IntegrityError:
            # Another path (webhook, confirmation, another counter) recorded it a moment ago.
            return orders.get(db, intent=intent.id)
        report.adopted.append(order["reference"])
        return order
    if orders.settle(db, order, intent) != order["status"]:
        report.settled.append(order["reference"])
    return orders.get(db, order_id=order["id"])


def _abandon(db, kiosk, intent, order, report):
    """Cancel an intent nobody paid, then settle its order from what Stripe answers."""
    if method_of(intent) == terminal.METHOD:
        terminal.release(kiosk, db, intent.id)  # a card reader still showing the amount stops
    # If it moved on (paid, or canceled) since we looked, settle from its state now.
    intent = kiosk.gateway.cancel_or_retrieve(intent.id)
    if order is not None:
        orders.settle(db, order, intent)
    if intent.canceled:
        report.canceled.append(order["reference"] if order is not None else intent.id)
    return intent


def sweep(db, kiosk, now=None):
    """One reconciliation pass; returns a Report. Raises PaymentError only if Stripe cannot be listed."""
    now = now if now is not None else time.time()
    gateway, report = kiosk.gateway, Report()
    abandon_before = now - kiosk.settings.abandon_minutes * 60
    # A typed-card payment nobody has touched for the idle time (and a minute more) holds nothing: the kiosk's own
    # screen resets by then, so this is a browser elsewhere, or a script, holding copies.
    idle_before = now - kiosk.settings.idle_seconds - 60
    since = float(get_meta(db, mine(WATERMARK, kiosk), now - FIRST_LOOK_BACK)) - CLOCK_SKEW
    listed = {}
    for intent in gateway.list_since(since):
        # The listing is asked for `created` since then; an older one (a clock set back) is not this sweep's.
        if intent.created < since or read_intent_metadata(intent.metadata).kiosk_id != kiosk.kiosk_id:
            continue
        order = apply_intent(db, kiosk.catalog, kiosk.kiosk_id, intent, report, kiosk.settings.counter_name)
        if order is None and intent.abandonable and intent.created < abandon_before:
            # An intent of ours with no order (a lost ledger): nobody can be paying it any more.
            try:
                intent = _abandon(db, kiosk, intent, None, report)
            except PaymentError as exc:
                report.errors.append(f"{intent.id}: {exc.message}")
        listed[intent.id] = intent

    for order in orders.open_orders(db, kiosk.kiosk_id):
        try:
            intent = _settle_open(db, kiosk, order, listed, abandon_before, report)
            if intent is not None and _untouched(orders.get(db, order_id=order["id"]), intent, idle_before):
                intent = _abandon(db, kiosk, intent, orders.get(db, order_id=order["id"]), report)
        except PaymentError as exc:
            report.errors.append(f"{order['reference']}: {exc.message}")
            log.warning("reconcile %s: %s (%s)", order["reference"], exc.kind, exc.status)
            continue
        if intent is not None and intent.id in listed:
            listed[intent.id] = intent
    # Next time, list again from the oldest intent that may still be paid, so none is missed.
    still_open = [i.created for i in listed.values() if i.open]
    set_meta(db, mine(WATERMARK, kiosk), int(min([now, *still_open])))
    sweep_refunds(db, kiosk, now, report)
    set_meta(db, mine(LAST_SWEEP, kiosk), stamps.stamp_of(now))
    set_meta(db, mine(LAST_RESULT, kiosk), report.summary())
    return report


def sweep_refunds(db, kiosk, now, report):
    """Refunds Stripe made that the ledger lacks: ours left pending by a crash, and those made in the Dashboard.

    Any counter may record a refund of any counter's sale (its Stripe id is unique in the ledger); pending
    ones are looked up by whichever counter sweeps first after the grace period."""
    gateway = kiosk.gateway
    since = float(get_meta(db, mine(REFUND_WATERMARK, kiosk), now - FIRST_LOOK_BACK)) - CLOCK_SKEW
    watermark = now
    for refund in gateway.refunds_since(since):
        order = orders.get(db, intent=refund.payment_intent) if refund.payment_intent else None
        if refund.created < since or not refund.made or order is None or refund_ledger.refund_made(db, refund.id):
            continue  # another account's payment, or recorded already
        held = refund_ledger.refund_recorded(db, request_key_of(refund))
        try:
            if held is not None and held["status"] == "pending":
                refund_ledger.complete_refund(db, held["id"], stripe_refund=refund.id, amount=refund.amount)
            else:
                # Books refunded in the Dashboard are not assumed back on the shelf: staff count them in.
                refund_ledger.record_refund(db, order["id"], stripe_refund=refund.id, amount=refund.amount,
                                            request_key=None, returned={}, reason="Refunded in the Stripe Dashboard")
        except IntegrityError:
            continue  # another counter recorded it a moment ago
        except orders.LedgerError as exc:
            # Not recorded (a held refund of the same sale takes what is left): the watermark stays at it, so
            # the next sweeps list it again until the hold is resolved and it fits.
            report.errors.append(f"{refund.id}: {exc}")
            watermark = min(watermark, refund.created)
            continue
        report.refunds.append(order["reference"])
    set_meta(db, mine(REFUND_WATERMARK, kiosk), int(watermark))
    for held in refund_ledger.pending_refunds(db):
        if held["created_at"] > stamps.stamp_of(now - PENDING_REFUND_GRACE):
            continue  # staff may be pressing Refund again right now
        made = find_refund(gateway, held["payment_intent"], held["request_key"])
        if made is not None and made.made:
            refund_ledger.complete_refund(db, held["id"], stripe_refund=made.id, amount=made.amount)
        else:
            refund_ledger.release_refund(db, held["id"])
            log.warning("refund %s of %s was never made at Stripe; released", held["request_key"], held["reference"])
        report.refunds.append(held["reference"])


def _untouched(order, intent, idle_before):
    """True for a typed-card order still open, holding copies, that nobody has paid or touched since idle_before."""
    return order["status"] in orders.OPEN and order["method"] == "card" and \
        intent.untouched and stamps.unix_of(order["updated_at"]) < idle_before


def _settle_open(db, kiosk, order, listed, abandon_before, report):
    """Settle one open order from its intent, canceling an abandoned one; returns the intent as it ends up."""
    if not order["payment_intent"]:
        # No intent was ever recorded (and none turned up in the listing): the customer never paid.
        if order["created_at"] < stamps.stamp_of(abandon_before) and \
                orders.mark_canceled(db, order["id"], "No payment was started."):
            report.canceled.append(order["reference"])
        return None
    intent = listed.get(order["payment_intent"])
    if intent is None:
        try:
            intent = kiosk.gateway.retrieve(order["payment_intent"])
        except PaymentError as exc:
            if exc.kind != "not_found":
                raise
            if orders.mark_canceled(db, order["id"], "Stripe does not know this payment."):
                report.canceled.append(order["reference"])
            return None
    if orders.settle(db, order, intent) != order["status"]:
        report.settled.append(order["reference"])
    if intent.abandonable and intent.created < abandon_before:
        intent = _abandon(db, kiosk, intent, orders.get(db, order_id=order["id"]), report)
    return intent


class Reconciler:
    """Runs sweeps on a daemon thread: one at start-up, then every `reconcile_seconds`."""

    def __init__(self, app):
        self.app = app
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def run_once(self):
        """One sweep now; returns its Report, or None if Stripe could not be reached. Never raises."""
        kiosk = self.app.extensions["kiosk"]
        with self._lock:
            try:
                with self.app.extensions["kiosk"].ledger.connect() as db:
                    try:
                        report = sweep(db, kiosk)
                    except PaymentError as exc:
                        log.warning("reconcile: Stripe unreachable (%s); trying again next time", exc.kind)
                        set_meta(db, mine(LAST_RESULT, kiosk), json.dumps({"unreachable": exc.message}))
                        return None
                log.info("reconciled with Stripe: %s", report)
                return report
            except LedgerUnavailable as exc:
                log.warning("reconcile: %s; trying again next time", exc)
            except Exception:  # the thread must outlive any bug
                log.exception("reconcile failed; trying again next time")
        return None

    def _loop(self):
        # The start-up sweep waits for the first pages: it imports stripe-python and would share the one
        # interpreter lock with them while the kiosk is starting (bench/bench_start.py).
        self._stop.wait(FIRST_SWEEP_DELAY)
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.app.extensions["kiosk"].settings.reconcile_seconds)

    def start(self):
        """Start the timer thread (the first sweep runs FIRST_SWEEP_DELAY seconds after start-up)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
            self._thread.start()

    def stop(self, timeout=10):
        """Stop the timer thread after its current sweep."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
