"""The unattended kiosk: attract screen, the customer's language, idle reset, barcode scans and receipt email."""
import logging
from functools import lru_cache

from babel import Locale
from flask import Blueprint, has_request_context, jsonify, redirect, render_template, request, session, url_for

from kiosk.core import cart as cartlib
from kiosk.core import isbn as isbnlib
from kiosk.core import pricing
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import ngettext
from kiosk.core.i18n import page_locale as served_locale
from kiosk.ledger import orders
from kiosk.ledger.db import get_db
from kiosk.visit import customer, purchase
from kiosk.visit.sessions import store
from kiosk.web import receipts, words
from kiosk.web.shop import CODE_STATUS
from kiosk.web.state import current_kiosk
from kiosk.web.views import payment_status, reply, safe_next, wants_json

bp = Blueprint("experience", __name__)
log = logging.getLogger("kiosk.experience")
ATTRACT_COVERS = 8
RECEIPT_EMAILS_PER_ORDER = 3  # a typo fixed twice; more is someone using the kiosk to send mail


@bp.get("/attract")
def attract():
    """The screen an idle kiosk shows: the shop name, a few covers and "touch to start"."""
    books = [b for b in current_kiosk().catalog.books if b.cover][:ATTRACT_COVERS]
    # A reset that could not reach the server is finished here by the page's script.
    leftover = session.stored and store().has_anything(session.key)
    return render_template("attract.html", covers=books, leftover=leftover)


def page_locale():
    """The locale a request is served in: the customer's choice for their visit on customer pages; the shop's
    (KIOSK_LOCALE) for the staff area, its printed day report, and work outside a request."""
    s = current_kiosk().settings
    if not has_request_context() or request.blueprint == "staff" or request.path.startswith("/staff/"):
        return s.locale
    return customer.language(s.languages) or s.locale


@lru_cache(maxsize=16)
def _choices(offered):
    """(code, the language's own name, BCP 47 tag) per offered locale: "Français", "日本語"; with the country
    ("English (United Kingdom)") only when two offered locales share a language."""
    locales = [Locale.parse(code) for code in offered]
    shared = {loc.language for loc in locales if sum(other.language == loc.language for other in locales) > 1}
    choices = []
    for code, loc in zip(offered, locales, strict=True):
        name = loc.get_display_name(loc) if loc.language in shared else loc.get_language_name(loc)
        # Languages are capitalised as a button's label, as on Square's or an airport's language choice.
        choices.append((code, name[:1].upper() + name[1:], code.replace("_", "-")))
    return tuple(choices)


@bp.app_context_processor
def language_choices():
    """What the language buttons show: nothing for a one-language shop."""
    offered = current_kiosk().settings.languages
    if len(offered) < 2:
        return {"languages": ()}
    return {"languages": _choices(offered), "language": served_locale(offered[0])}


@bp.post("/language")
def choose_language():
    """Serve this customer's visit in one of KIOSK_LANGUAGES, then go on to the page they asked for."""
    code = request.form.get("language", "")[:20]
    if code not in current_kiosk().settings.languages:
        return reply(400, _("That language is not offered on this kiosk."),
                     action=_("Go back and choose one of the languages shown."))
    customer.choose_language(code)  # a visit that ended meanwhile gets the shop's language, as a new one would
    return redirect(safe_next(request.form.get("next"), url_for("shop.home")), 303)


@bp.post("/session/reset")
def reset():
    """Forget the customer: cancel any open payment, empty the cart, and end the session for good."""
    k = current_kiosk()
    purchase.forget(k, get_db())
    if k.on_reset is not None:
        try:
            k.on_reset()  # e.g. the window's cookies, Stripe.js's included
        except Exception:
            log.exception("idle reset: the window's own reset failed")
    target = url_for("experience.attract")
    if wants_json():
        return jsonify(next=target)
    return redirect(target, 303)


def _find_scanned(code):
    """The book for a scanned code; an ISBN-10 also finds a book listed by its ISBN-13."""
    catalog = current_kiosk().catalog
    book = catalog.get(code)
    if book is None and len(code) == 10:
        book = catalog.get(isbnlib.to_isbn13(code))
    return book


def _scan_reply(status, message, **extra):
    count = customer.cart_count()
    return reply(status, message, cart_count=count, cart_label=ngettext("%(num)s book", "%(num)s books", count),
                 **extra)


def _promotion_code(raw):
    """True when a scan may be a promotion code from a flyer: one the kiosk could keep, and not a product's barcode
    (8, 12 or 13 digits: a cup of coffee is not a code, and is not counted as a wrong one)."""
    text = raw.strip()
    return bool(pricing.normalize_code(text)) and not (text.isdigit() and len(text) in (8, 12, 13))


def _scanned_code(raw):
    """A flyer's code scanned anywhere in the shop goes on the cart (customer.give_code checks it); None when it is
    no code of the shop's, which is then "not in this shop" like any other barcode."""
    k, db = current_kiosk(), get_db()
    try:
        promotion = customer.give_code(k, db, raw)
    except cartlib.CartError as exc:
        if exc.code == "code_unknown":
            return None
        return _scan_reply(CODE_STATUS.get(exc.code, 409), words.say(exc), code=raw.strip())
    priced = customer.priced(k, db)
    return _scan_reply(200, _("Code %(code)s added: %(name)s.", code=promotion.code, name=promotion.name),
                       code=promotion.code, total=priced.total, total_text=k.money(priced.total))


@bp.post("/scan")
def scan():
    """A barcode scanned anywhere in the shop: add that book to the cart, or say it is not sold here."""
    body = request.get_json(silent=True)
    raw = str(body.get("code", "")) if isinstance(body, dict) else ""
    code = isbnlib.normalize(raw[:40])
    looks_like_isbn = len(code) == 10 or code.startswith(("978", "979"))
    if not looks_like_isbn and _promotion_code(raw[:40]) and (as_code := _scanned_code(raw[:40])) is not None:
        return as_code
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
    k, db = current_kiosk(), get_db()
    try:
        customer.add(k, db, book, 1)
    except cartlib.CartError as exc:
        return _scan_reply(409, words.say(exc), code=code, title=book.title)
    priced = customer.priced(k, db)
    return _scan_reply(200, _("Added “%(title)s” to your cart.", title=book.title), code=code,
                       title=book.title, isbn=book.isbn13, cover=book.cover, total=priced.total,
                       total_text=current_kiosk().money(priced.total))


@bp.post("/receipt/email")
def receipt_email():
    """Have Stripe email the paid order's receipt (purchase.email_receipt; live mode only)."""
    k = current_kiosk()
    db = get_db()
    reference = request.form.get("ref", "")[:20]
    order = orders.get(db, reference=reference) if reference else None
    if order is None or not customer.may_see(order) or order["status"] != "paid":
        return reply(404, _("This receipt is no longer shown on the kiosk."), action=_("Return to the shop."))
    back = url_for("checkout.complete", ref=order["reference"])
    email = receipts.clean_email(request.form.get("email"))
    if not email:
        return _receipt_reply(back, 400, _("That does not look like an email address. Check it and try again."))
    outcome = purchase.email_receipt(k, db, order, email, RECEIPT_EMAILS_PER_ORDER)
    if outcome.kind == purchase.TOO_MANY:
        return _receipt_reply(back, 429, _("This receipt was emailed %(num)s times already; it is not sent again.",
                                           num=RECEIPT_EMAILS_PER_ORDER))
    if outcome.kind == purchase.FAILED:
        return _receipt_reply(back, payment_status(outcome.error),
                              _("The receipt could not be sent just now. Please try again in a moment."))
    return _receipt_reply(back, 200, _receipt_sent(email if wants_json() else None))


def _receipt_sent(email):
    """The answer to a receipt sent. Only the page's script is shown the address: a message for the next page
    waits in the session store or a cookie, and the kiosk keeps no copy of a customer's address."""
    if current_kiosk().settings.test_mode:
        return _("Saved. In test mode Stripe does not send the email; in live mode it goes to %(email)s.",
                 email=email) if email else \
            _("Saved. In test mode Stripe does not send the email; in live mode it goes to the address you typed.")
    return _("Stripe will email your receipt to %(email)s.", email=email) if email else \
        _("Receipt sent: Stripe will email it to the address you typed.")


def _receipt_reply(back, status, message):
    return reply(status, message, back=back, code=303, ok=status == 200)
