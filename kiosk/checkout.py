"""Checkout with the Payment Element in deferred mode, and the confirmation page.

Follows Stripe's "Accept a payment — collect payment details before creating an Intent":
the page mounts Elements with mode/amount/currency, calls elements.submit(), then asks this
server for a PaymentIntent, which it creates from the cart and catalog alone.
"""
import logging

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from . import customer, orders, receipts, stripe_terms, terminal
from .db import get_db
from .i18n import gettext as _
from .i18n import ngettext
from .payments import STRIPE_JS_URL, PaymentError
from .state import current_kiosk
from .views import payment_status, reply

bp = Blueprint("checkout", __name__, url_prefix="/checkout")
log = logging.getLogger("kiosk.checkout")


def _receipt(order):
    return redirect(url_for("checkout.complete", ref=order["reference"]))


def _settle_in_flight(k, db, priced):
    """A cart that changed while its payment was under way: ask Stripe about that payment first.

    Paid shows its receipt; open is canceled, and only then may a new attempt start. Returns a response,
    or None to go on. (An unchanged cart keeps its attempt: Pay asks Stripe about that intent again.)"""
    order = customer.in_flight(k, db)
    if order is None or customer.attempt()["fingerprint"] == priced.fingerprint():
        return None
    with k.lock(order["attempt"]):
        try:
            outcome = customer.resolve(k, db, orders.get(db, order_id=order["id"]), cancel=True,
                                       note="Canceled: the cart changed before it was paid.")
        except PaymentError as exc:
            log.warning("checkout: could not ask Stripe about %s (%s)", order["reference"], exc.kind)
            return render_template("processing.html", order=order, unreachable=True), 503
    if outcome == "paid":
        return _receipt(order)
    if outcome == "open":
        return render_template("processing.html", order=order, unreachable=False)
    return None


@bp.get("/")
def checkout():
    """The payment page, or the setup screen when Stripe keys are not configured."""
    k = current_kiosk()
    if not k.settings.payments_ready:
        return render_template("setup.html", problems=k.settings.problems), 503
    db = get_db()
    orders.ping(db)  # a payment is offered only while it can be recorded: else "payments are paused"
    priced = customer.priced(k, db)
    early = _settle_in_flight(k, db, priced)
    if early is not None:
        return early  # its receipt: a note about the cart it paid for would only confuse
    for note in priced.notes:
        flash(note, "error")
    if not priced.lines:
        flash(_("Your cart is empty. Add a book before paying."), "error")
        return redirect(url_for("shop.cart"))
    attempt = customer.attempt_for(priced)
    reader = terminal.reader_id(k, db)
    order = orders.get(db, attempt=attempt) if reader else None
    # Back on this page while the reader still waits for this payment: the page follows it again.
    reader_waiting = order is not None and order["method"] == terminal.METHOD and order["status"] == "pending" \
        and bool(order["payment_intent"])
    # Stripe.js of the release train the server's API version names (payments.STRIPE_JS_URL), with only the
    # options that train defines: allowedPaymentMethodTypes replaced paymentMethodTypes in Endive.
    return render_template("checkout.html", cart=priced, attempt=attempt, reader=bool(reader),
                           reader_waiting=reader_waiting, stripe_js_url=STRIPE_JS_URL,
                           stripe_config={"publishableKey": k.settings.publishable_key, "stripeJs": STRIPE_JS_URL,
                                          "amount": priced.total, "currency": k.settings.currency.lower(),
                                          "allowedPaymentMethodTypes": list(k.settings.payment_methods),
                                          "attempt": attempt})


def _stripe_error(exc):
    return reply(payment_status(exc), exc.message, retry=exc.retryable)


def _checked_attempt(k, db):
    """(attempt id, priced cart) a payment may start for, or (None, a reply saying why not)."""
    body = request.get_json(silent=True)
    posted = body.get("attempt") if isinstance(body, dict) else None
    priced = customer.priced(k, db)
    if priced.notes:
        # A book sold out or ran short between the cart and Pay: say so, and show the new total.
        for note in priced.notes:
            flash(note, "error")
        return None, reply(409, " ".join(priced.notes), reload=True)
    if not priced.lines:
        return None, reply(400, _("Your cart is empty. Add a book before paying."), reload=True)
    attempt = customer.attempt()
    if not posted or attempt is None or posted != attempt["id"] or attempt["fingerprint"] != priced.fingerprint():
        return None, reply(409, _("Your cart changed. The page will reload with the new total."), reload=True)
    return attempt["id"], priced


@bp.post("/intent")
def create_intent():
    """Create (or return) the PaymentIntent for this checkout attempt; the amount comes from the server's cart."""
    k = current_kiosk()
    if not k.settings.payments_ready:
        return reply(503, _("Payments are not set up on this kiosk. Please ask a member of staff."))
    db = get_db()
    attempt, priced = _checked_attempt(k, db)
    if attempt is None:
        return priced
    with k.lock(attempt):
        order, intent = _payment_for_attempt(k, db, attempt, priced, "card")
    if intent is None:
        return order
    return jsonify(clientSecret=intent.client_secret, reference=order["reference"], returnUrl=_return_url(order))


@bp.post("/reader")
def pay_on_reader():
    """Hand this checkout attempt's payment to the card reader, which then waits for the customer's card."""
    k = current_kiosk()
    db = get_db()
    reader = terminal.reader_id(k, db) if k.settings.payments_ready else ""
    if not reader:
        return reply(409, _("No card reader is set up on this kiosk. Please type your card instead."))
    attempt, priced = _checked_attempt(k, db)
    if attempt is None:
        return priced
    with k.lock(attempt):  # a double tap waits here, then finds the reader already waiting for this payment
        order, intent = _payment_for_attempt(k, db, attempt, priced, terminal.METHOD)
        if intent is None:
            return order
        try:
            terminal.hand_over(k.gateway, reader, intent.id)
        except PaymentError as exc:
            log.warning("reader %s for %s: %s (%s)", reader, order["reference"], exc.kind, exc.code)
            return _stripe_error(exc)
    log.info("order %s: %s waits on reader %s for %s", order["reference"], intent.id, reader, order["amount"])
    return jsonify(waiting=True, reference=order["reference"], amount=k.money(order["amount"]),
                   returnUrl=_return_url(order))


@bp.get("/reader/status")
def reader_status():
    """Where the card reader's payment stands: waiting, paid, declined (with the reason), or stopped."""
    k, db = current_kiosk(), get_db()
    row = customer.attempt()
    if row is None or row["id"] != request.args.get("attempt") or k.gateway is None:
        return reply(409, _("Your cart changed. The page will reload with the new total."), reload=True)
    order = orders.get(db, attempt=row["id"])
    if order is None or order["method"] != terminal.METHOD or not order["payment_intent"]:
        return jsonify(state="stopped", message="")
    if (settled := _reader_settled(k, db, order)) is not None:
        return settled
    try:
        intent = k.gateway.retrieve(order["payment_intent"])
        if intent.closed:
            orders.settle(db, order, intent)
            settled = _reader_settled(k, db, orders.get(db, order_id=order["id"]))
            # Succeeded but not for what the ledger asked (settle marked it failed): staff must look at it.
            return settled or jsonify(state="stopped", message=_("This payment could not be completed here. "
                                                                 "Please ask staff for help."))
        reader = k.gateway.reader(terminal.reader_id(k, db))
    except PaymentError as exc:
        return jsonify(state="waiting", message=exc.message)  # Stripe briefly unreachable: keep asking
    if reader.failed(intent.id):
        orders.settle(db, order, intent)  # the decline is on the order; its copies stay held for another try
        message = reader.action.get("failure_message") or intent.last_error or _("The card was declined.")
        return jsonify(state="declined", message=_("%(message)s Try again, or use another card.", message=message))
    if reader.collecting(intent.id) or intent.processing:
        offline = "" if reader.online else _("The card reader has gone offline. Staff: check its power and network.")
        return jsonify(state="waiting", message=offline)
    return jsonify(state="stopped", message=_("The card reader stopped waiting for this payment. Press Pay with the "
                                              "card reader to try again, or type your card."))


def _reader_settled(k, db, order):
    """The status answer for an order the ledger has closed (paid or canceled), else None."""
    if order["status"] in orders.SOLD:
        return jsonify(state="paid", returnUrl=_return_url(order))
    if order["status"] == "canceled":
        customer.sync(k, db)
        return jsonify(state="canceled", message=_("The payment was canceled; nothing was charged."), reload=True)
    return None


def _payment_for_attempt(k, db, attempt, priced, method):
    """(order, its open PaymentIntent for this way to pay), or (a reply saying why there is none, None)."""
    order = orders.get(db, attempt=attempt)
    if order is None:
        try:
            room = method != "card" or customer.make_room(k, db)
        except PaymentError as exc:
            return _stripe_error(exc), None
        if not room:
            return reply(409, _("Another payment is under way at this counter. Please try again in a moment."),
                         retry=True), None
        # The pending order is committed before any client secret leaves the server.
        try:
            # The copies are held as the order is written: another counter cannot sell them meanwhile.
            order = orders.create_pending(db, attempt=attempt, priced_lines=priced.lines,
                                          currency=k.settings.currency, kiosk_id=k.kiosk_id,
                                          counter=k.settings.counter_name, hold=True, tax_lines=priced.taxes,
                                          inclusive=priced.inclusive, method=method)
        except orders.OutOfStock as short:
            message = _("Sorry, “%(title)s” has just sold out.", title=short.title) if not short.available else \
                ngettext("Only %(num)s copy of “%(title)s” is left.", "Only %(num)s copies of “%(title)s” are left.",
                         short.available, title=short.title)
            return reply(409, message + " " + _("Nothing was charged. The page shows your cart as it is now."),
                         reload=True), None
    elif order["status"] in orders.SOLD:
        return _paid(order), None
    elif order["status"] == "canceled":
        customer.close_attempt(attempt, "canceled")
        return _closed(), None
    if not customer.begin_paying(k, attempt):
        # The cart changed between the page and Pay (a scan, another tab): nothing was asked of Stripe.
        if not order["payment_intent"]:
            orders.mark_canceled(db, order["id"], "The cart changed before payment started.")
        return reply(409, _("Your cart changed. The page will reload with the new total."), reload=True), None
    try:
        if order["method"] != method:
            # One intent per way to pay: the other one is canceled at Stripe before this one is made.
            switched = customer.switch_method(k, db, order, method)
            if switched == "paid":
                return _paid(order), None
            if switched == "open":
                return reply(409, _("This payment is being processed and cannot be changed. Please wait a "
                                    "moment."), reload=True), None
            order = orders.get(db, order_id=order["id"])
        intent_id = customer.find_intent(k.gateway, db, order) if order["intent_tries"] else order["payment_intent"]
        if intent_id:
            intent = k.gateway.retrieve(intent_id)
        else:
            types = [terminal.METHOD] if method == terminal.METHOD else k.settings.payment_methods
            intent = k.gateway.create_intent(
                amount=order["amount"], currency=order["currency"], allowed_types=types,
                metadata=stripe_terms.intent_metadata(k.kiosk_id, order["reference"], method, priced),
                description=f"{k.settings.shop_name} order {order['reference']}",
                idempotency_key=stripe_terms.intent_key(k.kiosk_id, order["attempt"], order["intent_tries"]))
            orders.attach_intent(db, order["id"], intent.id)
            log.info("order %s: created %s (%s) for %s", order["reference"], intent.id, method, order["amount"])
    except PaymentError as exc:
        log.warning("intent for %s failed: %s (%s)", order["reference"], exc.kind, exc.status)
        if exc.status is not None and exc.status >= 500:
            orders.bump_intent_tries(db, order["id"])
        elif not exc.retryable and not orders.get(db, order_id=order["id"])["payment_intent"]:
            # Stripe refused to make it: nothing can be paid, so the cart is free again.
            orders.mark_canceled(db, order["id"], exc.message)
            customer.close_attempt(attempt, "canceled")
        return _stripe_error(exc), None
    if intent.paid:
        return _paid(order), None
    if intent.canceled or intent.processing:
        orders.settle(db, orders.get(db, order_id=order["id"]), intent)
        customer.sync(k, db)
        return _closed(), None
    return order, intent


def _paid(order):
    return jsonify(paid=True, returnUrl=_return_url(order))


def _closed():
    return reply(409, _("This payment was already closed. The page will reload."), reload=True)


def _cancel_in_flight(k, db, note, done):
    """Cancel the payment under way, Stripe first so nothing is charged after it; a response, or None when done."""
    row = customer.attempt() if k.gateway is not None else None
    if row is None:
        return None
    # The attempt's lock first: a Pay still being handed to Stripe or the reader (the customer left the page while
    # it ran) finishes, and is then canceled too, instead of starting after this found nothing to cancel.
    with k.lock(row["id"]):
        order = customer.in_flight(k, db)
        if order is None:
            return None
        try:
            outcome = customer.resolve(k, db, orders.get(db, order_id=order["id"]), cancel=True, note=note)
        except PaymentError as exc:
            flash(_("The payment could not be canceled just now: %(message)s", message=exc.message), "error")
            return redirect(url_for("checkout.checkout"))
    if outcome == "paid":
        return _receipt(order)
    if outcome == "open":
        flash(_("This payment is being processed and cannot be canceled. Please wait a moment."), "error")
        return redirect(url_for("checkout.checkout"))
    flash(done, "info")
    return None


@bp.post("/cancel")
def cancel():
    """Cancel the payment under way ("Change the cart"), then show the cart."""
    k, db = current_kiosk(), get_db()
    done = _("The payment was canceled; nothing was charged. You can change your cart.")
    return _cancel_in_flight(k, db, "Canceled by the customer to change the cart.", done) or \
        redirect(url_for("shop.cart"))


@bp.post("/reader/cancel")
def cancel_reader():
    """Cancel the payment on the card reader (Cancel, or the customer leaving the page): back to the checkout."""
    k, db = current_kiosk(), get_db()
    done = _("The payment was canceled; nothing was charged. You can pay again, on the reader or by card.")
    return _cancel_in_flight(k, db, "Canceled by the customer at the card reader.", done) or \
        redirect(url_for("checkout.checkout"))


def _return_url(order):
    return url_for("checkout.complete", ref=order["reference"], _external=True)


@bp.get("/complete")
def complete():
    """The confirmation: the server asks Stripe itself and records the order once."""
    k = current_kiosk()
    reference = request.args.get("ref", "")[:20]
    db = get_db()
    order = orders.get(db, reference=reference) if reference else None
    if order is None or not customer.may_see(order) or not order["payment_intent"]:
        return reply(404, _("This receipt is no longer shown on the kiosk."), action=_("Return to the shop."))
    intent = None
    if order["status"] not in orders.SOLD:
        try:
            intent = k.gateway.retrieve(order["payment_intent"])
        except PaymentError as exc:
            log.warning("confirmation for %s: Stripe unreachable (%s)", reference, exc.kind)
            return render_template("processing.html", order=order, unreachable=True), 503
        status = orders.settle(db, order, intent)
        if status != "paid":
            if intent.processing:
                return render_template("processing.html", order=order, unreachable=False)
            customer.sync(k, db)
            message = intent.last_error or _("The payment was not completed.")
            flash(_("%(message)s Your cart is kept; you can try again.", message=message), "error")
            return redirect(url_for("checkout.checkout"))
        order = orders.get(db, order_id=order["id"])
    # Paid: its books leave the cart, once, whatever happened to the cart since.
    customer.close_attempt(order["attempt"], "paid", orders.lines(db, order["id"]))
    return render_template("confirmation.html", order=order, lines=orders.lines(db, order["id"]),
                           order_taxes=orders.taxes(db, order["id"]),
                           **receipts.for_order(k.gateway, order, intent))
