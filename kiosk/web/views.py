"""What every page shares: template helpers and friendly error pages."""
import logging
from decimal import Decimal

from babel.numbers import format_decimal
from flask import flash, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from kiosk.admin.configure import first_run_open
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import lazy_gettext as _l
from kiosk.core.i18n import page_locale
from kiosk.ledger.db import LedgerUnavailable
from kiosk.visit import customer
from kiosk.web.security import CSRFError
from kiosk.web.state import current_kiosk

log = logging.getLogger("kiosk")

# Pages a customer reaches after their card may have been charged: the confirmation and the card reader's answer.
AFTER_PAYMENT = {"checkout.complete", "checkout.reader_status"}

FRIENDLY = {
    400: (_l("Something about that request was not right."), _l("Go back and try again.")),
    403: (_l("That action is not allowed from here."), _l("Use the kiosk screen to continue.")),
    404: (_l("We could not find that page."), _l("Return to the shop to keep browsing.")),
    405: (_l("That action is not allowed from here."), _l("Return to the shop to keep browsing.")),
    413: (_l("That request was too large."), _l("Go back and try again.")),
    421: (_l("This kiosk only answers its own address."), _l("Open the kiosk from its own window.")),
    429: (_l("Too many tries."), _l("Wait a few minutes and try again.")),
}


def whole_number(raw, max_digits, default=None):
    """A small whole number typed in ASCII digits ("²".isdigit() is true too), or `default`."""
    raw = raw or ""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= max_digits else default


def wants_json():
    """True for fetch() calls from the kiosk's own scripts."""
    return request.is_json or request.accept_mimetypes.best == "application/json"


def payment_status(exc):
    """The HTTP status for a payment that failed (payments.PaymentError): 503 to try again soon, 502 when Stripe
    refused."""
    return 503 if exc.retryable else 502


def reply(status, message, *, back=None, action=None, code=302, **data):
    """The one way a view answers with a message, for both audiences; never a stack trace.

    The kiosk's scripts (fetch) get JSON: `message` and `data`, and when it failed `error` (the same text)
    and `action`. People get the message as a flash and a redirect to `back`, or without `back` a page
    saying what went wrong and what to do."""
    if wants_json():
        body = {"message": message, **data}
        if status >= 400:
            body.update(error=message, **({"action": action} if action else {}))
        return jsonify(body), status
    if back is not None:
        flash(message, "error" if status >= 400 else "info")
        return redirect(back, code)
    return render_template("error.html", status=status, message=message, action=action), status


def pay_at_counter():
    """What a customer reads where they would pay while payments are not set up: the shop's words, or ours."""
    return current_kiosk().settings.unpaid_message or _("Please pay at the counter")


def safe_next(target, default):
    """A redirect target from a form, if it is a path on this kiosk (never another site)."""
    target = target or ""
    return target if target.startswith("/") and not target.startswith("//") else default


def init_app(app):
    """Register template helpers and error handlers."""

    @app.template_filter("money")
    def money_filter(minor):
        return current_kiosk().money(minor)

    @app.template_filter("percent")
    def percent_filter(rate):
        """A tax rate as the receipt shows it (8.875, 20), in the page's locale."""
        locale = page_locale(current_kiosk().settings.locale)
        return format_decimal(Decimal(str(rate)), format="#,##0.####", locale=locale)

    @app.context_processor
    def shared():
        # Only what the pages show: never the Settings object, which holds the secret key and the PIN.
        s = current_kiosk().settings
        return {"shop_name": s.shop_name, "test_mode": s.test_mode, "cart_count": customer.cart_count(),
                "lang": page_locale(s.locale).split("_")[0], "idle_seconds": s.idle_seconds,
                "print_receipts": s.print_receipts,
                "env_file": s.env_file, "shows_counter": s.shows_counter, "tax_label": s.tax_label,
                "shop_address": s.address_lines, "tax_id": s.tax_id, "payments_ready": s.payments_ready,
                "setup_open": first_run_open(s), "staff_pin_set": s.has_pin}

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return reply(400, _("This page was open too long or came from elsewhere."),
                     action=_("Reload the page and try again."), reload=True)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        message, action = FRIENDLY.get(exc.code, (exc.name + ".", _("Return to the shop.")))
        return reply(exc.code, str(message), action=str(action))

    @app.errorhandler(LedgerUnavailable)
    def ledger_down(exc):
        # Before a payment, nothing was charged: a payment starts only once its order is written. Browsing goes
        # on meanwhile. After one (its confirmation, the card reader's answer) the card may have been charged:
        # the customer must not be told otherwise, or they may pay again.
        action = _("This page tries again by itself; if it lasts, ask a member of staff.")
        if request.blueprint == "staff":
            message = str(exc)
        elif request.endpoint in AFTER_PAYMENT:
            message = _("Your payment may have gone through, but the shop's records cannot be reached just now, so "
                        "the receipt cannot be shown yet. Please do not pay again.")
            action = _("This page tries again by itself. If it lasts, ask a member of staff and give them the "
                       "reference %(reference)s.", reference=request.args.get("ref", "")[:20] or "—")
        else:
            message = _("Payments are paused for a moment: the shop's records cannot be reached. Your cart is "
                        "kept; nothing was charged.")
        if wants_json():
            return reply(503, message, action=action, retry=True)
        return render_template("paused.html", message=message, action=action), 503

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return reply(500, _("Something went wrong on the kiosk. Nothing was charged by this step."),
                     action=_("Please try again; if it keeps happening, ask a member of staff."))
