"""The staff discount on a customer's cart: a percent off, up to KIOSK_STAFF_DISCOUNT_MAX, with a reason, given at
the kiosk behind the staff PIN (typed here, counted against the same lockout as the sign-in), and priced by the
pricing rule after every promotion (kiosk/core/pricing.py)."""
from decimal import Decimal

from flask import flash, redirect, render_template, request, url_for

from kiosk.core import cart as cartlib
from kiosk.core.i18n import gettext as _
from kiosk.ledger.db import get_db
from kiosk.visit import customer
from kiosk.web import words
from kiosk.web.staff.base import bp, log
from kiosk.web.staff.signin import check_pin, pin_problem
from kiosk.web.state import current_kiosk
from kiosk.web.views import whole_number


def _choices(most):
    """The percent buttons staff choose from: 5, 10, 15... up to the cap, and the cap itself."""
    return sorted({*range(5, most + 1, 5), most}) if most > 0 else []


def _page(status=200, reason=""):
    k = current_kiosk()
    return render_template("staff/discount.html", choices=_choices(k.settings.staff_discount_max),
                           most=k.settings.staff_discount_max, given=customer.staff_discount(k),
                           problem=pin_problem(), reason=reason), status


@bp.get("/discount")
def cart_discount():
    """The staff discount form for the cart on this screen."""
    return _page()


@bp.post("/discount")
def give_cart_discount():
    """Give (or take off, percent 0) the staff discount on this screen's cart, once the PIN is right."""
    k, db = current_kiosk(), get_db()
    percent = whole_number(request.form.get("percent", ""), 3)
    reason = request.form.get("reason", "").strip()[:200]
    if percent is None or not 0 <= percent <= k.settings.staff_discount_max:
        flash(_("Choose a discount from the buttons, at most %(most)s%%.", most=k.settings.staff_discount_max), "error")
        return _page(400, reason)
    if percent and not reason:
        flash(_("Say why the customer gets a discount (for example: damaged copy, staff purchase)."), "error")
        return _page(400, reason)
    if percent or customer.staff_discount(k) is not None:
        if pin_problem():
            return _page(403, reason)
        ok, message, locked = check_pin(db, request.form.get("pin", "")[:64])
        if not ok:
            flash(message, "error")
            return _page(429 if locked else 401, reason)
    try:
        customer.give_staff_discount(k, db, Decimal(percent), reason)
    except cartlib.CartError as exc:
        flash(words.say(exc), "error")
        return _page(409, reason)
    log.info("staff discount of %s%% on a cart (%s)", percent, reason)
    flash(_("Staff discount of %(percent)s%% on the cart.", percent=percent) if percent else
          _("The staff discount was taken off the cart."), "info")
    return redirect(url_for("shop.cart"))
