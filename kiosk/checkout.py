"""Checkout with the Payment Element in deferred mode, and the confirmation page.

Follows Stripe's "Accept a payment — collect payment details before creating an Intent":
the page mounts Elements with mode/amount/currency, calls elements.submit(), then asks this
server for a PaymentIntent, which it creates from the cart and catalog alone.
"""
import logging
import uuid

from flask import Blueprint, flash, jsonify, redirect, render_template, request, session, url_for

from . import kiosk, orders, receipts
from .db import get_db
from .i18n import gettext as _
from .payments import PaymentError
from .shop import priced_cart
from .views import error_response

bp = Blueprint("checkout", __name__, url_prefix="/checkout")
log = logging.getLogger("kiosk.checkout")
METADATA_VALUE_MAX = 500  # Stripe's limit on one metadata value


def _items_metadata(lines):
    """ISBN×quantity pairs, split across keys so no value passes Stripe's 500-character limit."""
    chunks, current = [], ""
    for line in lines:
        item = f"{line['isbn']}x{line['quantity']}"
        if current and len(current) + 1 + len(item) > METADATA_VALUE_MAX:
            chunks.append(current)
            current = item
        else:
            current = f"{current},{item}" if current else item
    chunks.append(current)
    return {("items" if i == 0 else f"items_{i + 1}"): chunk for i, chunk in enumerate(chunks)}


def _attempt(priced):
    """This session's checkout attempt for exactly this cart; a changed cart starts a new one."""
    attempt = session.get("checkout") or {}
    if attempt.get("fingerprint") != priced.fingerprint():
        attempt = {"id": uuid.uuid4().hex, "fingerprint": priced.fingerprint()}
        session["checkout"] = attempt
    return attempt


@bp.get("/")
def checkout():
    """The payment page, or the setup screen when Stripe keys are not configured."""
    k = kiosk()
    if not k.settings.payments_ready:
        return render_template("setup.html", problems=k.settings.problems), 503
    priced = priced_cart()
    for note in priced.notes:
        flash(note, "error")
    if not priced.lines:
        flash(_("Your cart is empty. Add a book before paying."), "error")
        return redirect(url_for("shop.cart"))
    attempt = _attempt(priced)
    return render_template("checkout.html", cart=priced, attempt=attempt["id"],
                           stripe_config={"publishableKey": k.settings.publishable_key,
                                          "amount": priced.total, "currency": k.settings.currency.lower(),
                                          "paymentMethodTypes": list(k.settings.payment_methods),
                                          "attempt": attempt["id"]})


def _json_error(status, message, **extra):
    return jsonify(error=message, **extra), status


@bp.post("/intent")
def create_intent():
    """Create (or return) the PaymentIntent for this checkout attempt; the amount comes from the server's cart."""
    k = kiosk()
    if not k.settings.payments_ready:
        return _json_error(503, _("Payments are not set up on this kiosk. Please ask a member of staff."))
    body = request.get_json(silent=True)
    posted = body.get("attempt") if isinstance(body, dict) else None
    attempt = session.get("checkout") or {}
    priced = priced_cart()
    if priced.notes:
        # A book sold out or ran short between the cart and Pay: say so, and show the new total.
        for note in priced.notes:
            flash(note, "error")
        return _json_error(409, " ".join(priced.notes), reload=True)
    if not priced.lines:
        return _json_error(400, _("Your cart is empty. Add a book before paying."), reload=True)
    if not posted or posted != attempt.get("id") or attempt.get("fingerprint") != priced.fingerprint():
        return _json_error(409, _("Your cart changed. The page will reload with the new total."), reload=True)
    with k.lock(attempt["id"]):
        return _intent_for_attempt(k, attempt["id"], priced)


def _intent_for_attempt(k, attempt, priced):
    db = get_db()
    order = orders.get(db, attempt=attempt)
    if order is not None and order["payment_intent"]:
        try:
            intent = k.gateway.retrieve(order["payment_intent"])
        except PaymentError as exc:
            return _json_error(503 if exc.retryable else 502, exc.message, retry=exc.retryable)
        if intent.status == "succeeded":
            return jsonify(paid=True, returnUrl=_return_url(order))
        if intent.status in ("canceled", "processing"):
            session.pop("checkout", None)
            return _json_error(409, _("This payment was already closed. The page will reload."), reload=True)
        return jsonify(clientSecret=intent.client_secret, reference=order["reference"],
                       returnUrl=_return_url(order))
    if order is None:
        # The pending order is committed before any client secret leaves the server.
        order = orders.create_pending(db, attempt=attempt, priced_lines=priced.lines, currency=k.settings.currency)
    try:
        intent = k.gateway.create_intent(
            amount=order["amount"], currency=order["currency"], payment_method_types=k.settings.payment_methods,
            metadata={"kiosk_id": k.kiosk_id, "order_ref": order["reference"], **_items_metadata(priced.lines)},
            description=f"{k.settings.shop_name} order {order['reference']}",
            idempotency_key=f"{k.kiosk_id}-{attempt}")
    except PaymentError as exc:
        log.warning("create intent for %s failed: %s (%s)", order["reference"], exc.kind, exc.status)
        return _json_error(503 if exc.retryable else 502, exc.message, retry=exc.retryable)
    orders.attach_intent(db, order["id"], intent.id)
    log.info("order %s: created %s for %s", order["reference"], intent.id, order["amount"])
    return jsonify(clientSecret=intent.client_secret, reference=order["reference"], returnUrl=_return_url(order))


def _return_url(order):
    return url_for("checkout.complete", ref=order["reference"], _external=True)


def _may_see(order):
    """A receipt is shown only to the session that paid for it."""
    return order["attempt"] == (session.get("checkout") or {}).get("id") or \
        order["reference"] in session.get("receipts", [])


@bp.get("/complete")
def complete():
    """The confirmation: the server asks Stripe itself and records the order once."""
    k = kiosk()
    reference = request.args.get("ref", "")[:20]
    db = get_db()
    order = orders.get(db, reference=reference) if reference else None
    if order is None or not _may_see(order) or not order["payment_intent"]:
        return error_response(404, _("This receipt is no longer shown on the kiosk."), _("Return to the shop."))
    intent = None
    if order["status"] not in ("paid", "refunded", "partially_refunded"):
        try:
            intent = k.gateway.retrieve(order["payment_intent"])
        except PaymentError as exc:
            log.warning("confirmation for %s: Stripe unreachable (%s)", reference, exc.kind)
            return render_template("processing.html", order=order, unreachable=True), 503
        status = orders.settle(db, order, intent)
        if status != "paid":
            if intent.status == "processing":
                return render_template("processing.html", order=order, unreachable=False)
            message = intent.last_error or _("The payment was not completed.")
            flash(_("%(message)s Your cart is kept; you can try again.", message=message), "error")
            return redirect(url_for("checkout.checkout"))
        order = orders.get(db, order_id=order["id"])
    if order["attempt"] == (session.get("checkout") or {}).get("id"):
        session.pop("checkout", None)
        session["cart"] = {}
        session["receipts"] = (session.get("receipts", []) + [order["reference"]])[-5:]
    return render_template("confirmation.html", order=order, lines=orders.lines(db, order["id"]),
                           **receipts.for_order(k.gateway, order, intent))
