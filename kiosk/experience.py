"""The unattended kiosk: attract screen, idle reset, barcode scans and receipt email."""
import logging

from flask import Blueprint, flash, jsonify, redirect, render_template, request, session, url_for

from . import cart as cartlib
from . import isbn as isbnlib
from . import kiosk, orders, receipts
from .checkout import _may_see
from .db import get_db
from .i18n import gettext as _
from .i18n import ngettext
from .payments import PaymentError
from .shop import current_cart, priced_cart
from .views import error_response, wants_json

bp = Blueprint("experience", __name__)
log = logging.getLogger("kiosk.experience")
ATTRACT_COVERS = 8


@bp.get("/attract")
def attract():
    """The screen an idle kiosk shows: the shop name, a few covers and "touch to start"."""
    books = [b for b in kiosk().catalog.books if b.cover][:ATTRACT_COVERS]
    # A reset that could not reach the server is finished here by the page's script.
    leftover = bool(session.get("cart") or session.get("checkout") or session.get("receipts"))
    return render_template("attract.html", covers=books, leftover=leftover)


def _cancel_open_payment(k, db, attempt_id):
    """Cancel the PaymentIntent of an unpaid checkout attempt at Stripe and in the ledger."""
    order = orders.get(db, attempt=attempt_id)
    if order is None or order["status"] not in orders.OPEN:
        return
    if not order["payment_intent"]:
        orders.mark_canceled(db, order["id"], "Canceled by the idle reset before payment started.")
        return
    try:
        # A payment that succeeded a moment ago is not canceled: settle it from Stripe's answer.
        intent = k.gateway.cancel_or_retrieve(order["payment_intent"])
    except PaymentError as exc:
        log.warning("idle reset: Stripe unreachable for %s (%s); the reconciler settles it",
                    order["payment_intent"], exc.kind)
        return
    if intent.status == "canceled":
        orders.mark_canceled(db, order["id"], "Canceled by the idle reset.")
    else:
        orders.settle(db, order, intent)


@bp.post("/session/reset")
def reset():
    """Forget the customer: cancel any open payment, empty the cart, and give the session a new id."""
    k = kiosk()
    attempt = (session.get("checkout") or {}).get("id")
    if attempt and k.gateway is not None:
        with k.lock(attempt):  # never at the same time as this attempt's PaymentIntent is being created
            _cancel_open_payment(k, get_db(), attempt)
    session.reset()
    if k.on_reset is not None:
        try:
            k.on_reset()  # e.g. the window's cookies, Stripe.js's included
        except Exception:  # noqa: BLE001 - the customer is forgotten already; the next one must not wait
            log.exception("idle reset: the window's own reset failed")
    target = url_for("experience.attract")
    if wants_json():
        return jsonify(next=target)
    return redirect(target, 303)


def _find_scanned(code):
    """The book for a scanned code; an ISBN-10 also finds a book listed by its ISBN-13."""
    catalog = kiosk().catalog
    book = catalog.get(code)
    if book is None and len(code) == 10:
        book = catalog.get(isbnlib.to_isbn13(code))
    return book


def _scan_reply(status, message, **extra):
    count = sum(current_cart().values())
    return jsonify(message=message, cart_count=count, cart_label=ngettext("%(num)s book", "%(num)s books", count),
                   **extra), status


@bp.post("/scan")
def scan():
    """A barcode scanned anywhere in the shop: add that book to the cart, or say it is not sold here."""
    body = request.get_json(silent=True)
    raw = str(body.get("code", "")) if isinstance(body, dict) else ""
    code = isbnlib.normalize(raw[:40])
    looks_like_isbn = len(code) == 10 or code.startswith(("978", "979"))
    if not looks_like_isbn:
        # Any other barcode (a cup of coffee, a gift card) is not something this shop sells.
        return _scan_reply(404, _("Not in this shop: barcode %(code)s is not a book we sell.",
                                  code=raw[:40].strip()), code=raw[:40].strip())
    if not isbnlib.is_valid(code):
        return _scan_reply(422, _("That scan did not read correctly. Please scan the barcode again."), code=code)
    book = _find_scanned(code)
    if book is None:
        return _scan_reply(404, _("Not in this shop: we do not sell the book with barcode %(code)s. "
                                  "Ask a member of staff if you think we should.", code=code), code=code)
    try:
        on_hand = orders.stock_levels(get_db(), [book.isbn13]).get(book.isbn13, 0)
        cartlib.add(current_cart(), book, 1, on_hand)
    except cartlib.CartError as exc:
        return _scan_reply(409, str(exc), code=code, title=book.title)
    session.modified = True
    priced = priced_cart()
    return _scan_reply(200, _("Added “%(title)s” to your cart.", title=book.title), code=code,
                       title=book.title, isbn=book.isbn13, cover=book.cover, total=priced.total,
                       total_text=kiosk().money(priced.total))


@bp.post("/receipt/email")
def receipt_email():
    """Set receipt_email on the paid PaymentIntent, so Stripe emails its receipt (live mode only)."""
    k = kiosk()
    db = get_db()
    reference = request.form.get("ref", "")[:20]
    order = orders.get(db, reference=reference) if reference else None
    if order is None or not _may_see(order) or order["status"] != "paid":
        return error_response(404, _("This receipt is no longer shown on the kiosk."), _("Return to the shop."))
    back = url_for("checkout.complete", ref=order["reference"])
    email = receipts.clean_email(request.form.get("email"))
    if not email:
        return _receipt_reply(back, 400, _("That does not look like an email address. Check it and try again."))
    try:
        k.gateway.update_receipt_email(order["payment_intent"], email)
    except PaymentError as exc:
        log.warning("receipt email for %s failed: %s", order["reference"], exc.kind)
        return _receipt_reply(back, 503 if exc.retryable else 502,
                              _("The receipt could not be sent just now. Please try again in a moment."))
    orders.set_email(db, order["id"], email)
    if k.settings.test_mode:
        message = _("Saved. In test mode Stripe does not send the email; in live mode it goes to %(email)s.",
                    email=email)
    else:
        message = _("Stripe will email your receipt to %(email)s.", email=email)
    return _receipt_reply(back, 200, message)


def _receipt_reply(back, status, message):
    if wants_json():
        return jsonify(message=message, ok=status == 200), status
    flash(message, "info" if status == 200 else "error")
    return redirect(back, 303)
