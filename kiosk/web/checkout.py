"""Checkout with the Payment Element in deferred mode, and the confirmation page.

Follows Stripe's "Accept a payment — collect payment details before creating an Intent":
the page mounts Elements with mode/amount/currency, calls elements.submit(), then asks this
server for a PaymentIntent, which it creates from the cart and catalog alone. The payment itself is the purchase
service's (purchase.py): these views say what each of its outcomes means to the customer.
"""
import logging

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import lazy_gettext as _l
from kiosk.core.i18n import ngettext, page_locale
from kiosk.ledger import orders, promotions
from kiosk.ledger.db import get_db
from kiosk.payments import terminal
from kiosk.payments.gateway import STRIPE_JS_URL
from kiosk.visit import customer, purchase
from kiosk.web import receipts, words
from kiosk.web.state import current_kiosk
from kiosk.web.views import pay_at_counter, payment_status, reply

bp = Blueprint("checkout", __name__, url_prefix="/checkout")
log = logging.getLogger("kiosk.checkout")
CART_CHANGED = _l("Your cart changed. The page will reload with the new total.")
EMPTY = _l("Your cart is empty. Add a book before paying.")
# Why Pay started no payment, when the page only has to say so and reload.
REFUSED = {purchase.CART_CHANGED: (409, CART_CHANGED), purchase.EMPTY: (400, EMPTY),
           purchase.CLOSED: (409, _l("This payment was already closed. The page will reload.")),
           purchase.PROCESSING: (409, _l("This payment is being processed and cannot be changed. Please wait a "
                                         "moment."))}
# The locales the Payment Element speaks (Stripe.js's StripeElementLocale): a country's own variant where Stripe
# has one that differs from the language's ("en-GB", "pt-BR"), else the language alone ("fr", "ja").
STRIPE_REGIONAL = {"en-AU", "en-CA", "en-NZ", "en-GB", "fr-CA", "es-419", "pt-BR", "zh-HK", "zh-TW"}
STRIPE_LANGUAGES = {"ar", "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fil", "fr", "he", "hu", "hr", "id",
                    "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sl",
                    "sv", "th", "tr", "vi", "zh"}


def stripe_locale(code):
    """The Payment Element's `locale` for a Babel locale code: fr_FR -> "fr", en_GB -> "en-GB"; "auto" (the
    browser's) for a language Stripe.js does not speak."""
    tag = code.replace("_", "-")
    if tag in STRIPE_REGIONAL:
        return tag
    language = code.split("_")[0]
    return language if language in STRIPE_LANGUAGES else "auto"


def _receipt(order):
    return redirect(url_for("checkout.complete", ref=order["reference"]))


def _return_url(order):
    return url_for("checkout.complete", ref=order["reference"], _external=True)


def _processing(order, unreachable):
    """The page that waits for a payment the bank is settling, or for Stripe to answer (503)."""
    page = render_template("processing.html", order=order, unreachable=unreachable)
    return (page, 503) if unreachable else page


@bp.get("/")
def checkout():
    """The payment page; before payments are set up, the cart and where to pay for it (never the settings)."""
    k = current_kiosk()
    db = get_db()
    if not k.settings.payments_ready:
        priced = customer.priced(k, db)
        for note in priced.notes:  # a book that sold out meanwhile, as the payment page would say
            flash(note, "error")
        return render_template("pay_at_counter.html", cart=priced, message=pay_at_counter())
    orders.ping(db)  # a payment is offered only while it can be recorded: else "payments are paused"
    priced = customer.priced(k, db)
    settled = purchase.settle_in_flight(k, db, priced)
    if settled.kind == purchase.PAID:
        return _receipt(settled.order)  # a note about the cart it paid for would only confuse
    if settled.kind in (purchase.PROCESSING, purchase.FAILED):
        return _processing(settled.order, unreachable=settled.kind == purchase.FAILED)
    for note in priced.notes:
        flash(note, "error")
    if not priced.lines:
        flash(str(EMPTY), "error")
        return redirect(url_for("shop.cart"))
    attempt = customer.attempt_for(priced)
    reader = terminal.reader_id(k, db)
    # Stripe.js of the release train the server's API version names (payments.STRIPE_JS_URL), with only the
    # options that train defines: allowedPaymentMethodTypes replaced paymentMethodTypes in Endive.
    return render_template("checkout.html", cart=priced, attempt=attempt, reader=bool(reader),
                           reader_waiting=bool(reader) and purchase.reader_waiting(db, attempt),
                           stripe_js_url=STRIPE_JS_URL,
                           stripe_config={"publishableKey": k.settings.publishable_key, "stripeJs": STRIPE_JS_URL,
                                          "amount": priced.total, "currency": k.settings.currency.lower(),
                                          "allowedPaymentMethodTypes": list(k.settings.payment_methods),
                                          "locale": stripe_locale(page_locale(k.settings.locale)),
                                          "attempt": attempt})


def _not_set_up():
    """A payment asked for before payments are set up: nothing starts, and the page reloads to say where to pay."""
    return reply(409, pay_at_counter(), reload=True)


def _stripe_error(exc):
    return reply(payment_status(exc), words.say(exc), retry=exc.retryable)


def _posted_attempt():
    """The checkout attempt id the page sent with Pay."""
    body = request.get_json(silent=True)
    return body.get("attempt") if isinstance(body, dict) else None


def _refused(outcome):
    """The reply for a Pay that started no payment (any outcome but STARTED)."""
    if outcome.kind == purchase.PAID:
        return jsonify(paid=True, returnUrl=_return_url(outcome.order))
    if outcome.kind == purchase.FAILED:
        return _stripe_error(outcome.error)
    if outcome.kind == purchase.BUSY:
        return reply(409, _("Another payment is under way at this counter. Please try again in a moment."),
                     retry=True)
    if outcome.kind == purchase.SOLD_OUT:
        return reply(409, _sold_out(**outcome.detail) + " " +
                     _("Nothing was charged. The page shows your cart as it is now."), reload=True)
    if notes := outcome.detail.get("notes"):
        # A book sold out or ran short between the cart and Pay: say so, and show the new total.
        for note in notes:
            flash(note, "error")
        return reply(409, " ".join(notes), reload=True)
    status, message = REFUSED[outcome.kind]
    return reply(status, str(message), reload=True)


def _sold_out(title, left):
    if not left:
        return _("Sorry, “%(title)s” has just sold out.", title=title)
    return ngettext("Only %(num)s copy of “%(title)s” is left.", "Only %(num)s copies of “%(title)s” are left.",
                    left, title=title)


@bp.post("/intent")
def create_intent():
    """Create (or return) the PaymentIntent for this checkout attempt; the amount comes from the server's cart."""
    k = current_kiosk()
    if not k.settings.payments_ready:
        return _not_set_up()
    outcome = purchase.pay(k, get_db(), _posted_attempt(), "card")
    if outcome.kind != purchase.STARTED:
        return _refused(outcome)
    order = outcome.order
    return jsonify(clientSecret=outcome.intent.client_secret, reference=order["reference"],
                   returnUrl=_return_url(order))


@bp.post("/reader")
def pay_on_reader():
    """Hand this checkout attempt's payment to the card reader, which then waits for the customer's card."""
    k = current_kiosk()
    if not k.settings.payments_ready:
        return _not_set_up()
    db = get_db()
    reader = terminal.reader_id(k, db)
    if not reader:
        return reply(409, _("No card reader is set up on this kiosk. Please type your card instead."))
    outcome = purchase.pay(k, db, _posted_attempt(), terminal.METHOD, reader)
    if outcome.kind != purchase.STARTED:
        return _refused(outcome)
    order = outcome.order
    return jsonify(waiting=True, reference=order["reference"], amount=k.money(order["amount"]),
                   returnUrl=_return_url(order))


@bp.get("/reader/status")
def reader_status():
    """Where the card reader's payment stands: waiting, paid, declined (with the reason), or stopped."""
    outcome = purchase.reader_status(current_kiosk(), get_db(), request.args.get("attempt"))
    kind = outcome.kind
    if kind == purchase.CART_CHANGED:
        return reply(409, str(CART_CHANGED), reload=True)
    if kind == purchase.PAID:
        return jsonify(state="paid", returnUrl=_return_url(outcome.order))
    if kind == purchase.CANCELED:
        return jsonify(state="canceled", message=_("The payment was canceled; nothing was charged."), reload=True)
    if kind == purchase.WAITING:
        return jsonify(state="waiting", message=_reader_waiting(outcome))
    if kind == purchase.DECLINED:
        message = words.decline(outcome.detail.get("code"), outcome.detail["reason"])
        return jsonify(state="declined", message=_("%(message)s Try again, or use another card.", message=message))
    if kind == purchase.NEEDS_STAFF:
        return jsonify(state="stopped", message=_("This payment could not be completed here. Please ask staff for "
                                                  "help."))
    if kind == purchase.STOPPED:
        return jsonify(state="stopped", message=_("The card reader stopped waiting for this payment. Press Pay with "
                                                  "the card reader to try again, or type your card."))
    return jsonify(state="stopped", message="")  # no payment on the reader


def _reader_waiting(outcome):
    """What the page says while the reader waits: Stripe's message when it did not answer, or that it is offline."""
    if outcome.error is not None:
        return words.say(outcome.error)  # Stripe briefly unreachable: the page keeps asking
    if not outcome.detail["online"]:
        return _("The card reader has gone offline. Staff: check its power and network.")
    return ""


def _cancel_in_flight(note, done):
    """Cancel the payment under way (purchase.cancel_in_flight); a response, or None when done."""
    outcome = purchase.cancel_in_flight(current_kiosk(), get_db(), note)
    if outcome.kind == purchase.PAID:
        return _receipt(outcome.order)
    if outcome.kind == purchase.FAILED:
        flash(_("The payment could not be canceled just now: %(message)s", message=words.say(outcome.error)), "error")
        return redirect(url_for("checkout.checkout"))
    if outcome.kind == purchase.PROCESSING:
        flash(_("This payment is being processed and cannot be canceled. Please wait a moment."), "error")
        return redirect(url_for("checkout.checkout"))
    if outcome.kind == purchase.CANCELED:
        flash(done, "info")
    return None


@bp.post("/cancel")
def cancel():
    """Cancel the payment under way ("Change the cart"), then show the cart."""
    done = _("The payment was canceled; nothing was charged. You can change your cart.")
    return _cancel_in_flight("Canceled by the customer to change the cart.", done) or redirect(url_for("shop.cart"))


@bp.post("/reader/cancel")
def cancel_reader():
    """Cancel the payment on the card reader (Cancel, or the customer leaving the page): back to the checkout."""
    done = _("The payment was canceled; nothing was charged. You can pay again, on the reader or by card.")
    return _cancel_in_flight("Canceled by the customer at the card reader.", done) or \
        redirect(url_for("checkout.checkout"))


@bp.get("/complete")
def complete():
    """The confirmation: the server asks Stripe itself and records the order once (purchase.confirm)."""
    k, db = current_kiosk(), get_db()
    outcome = purchase.confirm(k, db, request.args.get("ref", "")[:20])
    order = outcome.order
    if outcome.kind == purchase.NOTHING:
        return reply(404, _("This receipt is no longer shown on the kiosk."), action=_("Return to the shop."))
    if outcome.kind in (purchase.PROCESSING, purchase.FAILED):
        return _processing(order, unreachable=outcome.kind == purchase.FAILED)
    if outcome.kind == purchase.UNPAID:
        message = words.decline(outcome.detail.get("code"), outcome.detail["reason"]) if outcome.detail["reason"] \
            else _("The payment was not completed.")
        flash(_("%(message)s Your cart is kept; you can try again.", message=message), "error")
        return redirect(url_for("checkout.checkout"))
    return render_template("confirmation.html", order=order, lines=orders.lines(db, order["id"]),
                           order_taxes=orders.taxes(db, order["id"]),
                           order_savings=promotions.order_savings(db, order["id"]),
                           **receipts.for_order(outcome.intent))
