"""Signing in with KIOSK_STAFF_PIN, the lockout after wrong tries, the idle lock, and the guard on every page."""
import hmac

from flask import abort, flash, redirect, render_template, request, session, url_for

from kiosk.admin import pin as pinlib
from kiosk.admin.configure import first_run_open
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import ngettext
from kiosk.ledger.db import get_db, get_meta, set_meta, transaction
from kiosk.visit.sessions import SessionEnded, store
from kiosk.web.staff import today
from kiosk.web.staff.base import bp, log
from kiosk.web.staff.screen import own_screen
from kiosk.web.state import current_kiosk

MAX_TRIES = 5
LOCK_SECONDS = 5 * 60
IDLE_SECONDS = 5 * 60
MIN_PIN = 4
# The staff discount asks for the PIN in its own form (discount.py), at the customer's cart.
OPEN_ENDPOINTS = ("staff.index", "staff.login", "staff.lock", "staff.screen", "staff.cart_discount",
                  "staff.give_cart_discount")
# Open without a PIN only while the kiosk has no PIN and no Stripe keys (the first run).
SETUP_ENDPOINTS = ("staff.setup",)


def clock():
    """The kiosk's wall-clock time (create_app(clock=...) may pass its own)."""
    return current_kiosk().clock()


def pin_problem():
    """Why the staff area cannot open (no PIN, or one too short to protect refunds), or None."""
    settings = current_kiosk().settings
    if settings.staff_pin_hash:
        return None if pinlib.well_formed(settings.staff_pin_hash) else \
            _("KIOSK_STAFF_PIN_HASH is not a PIN hash this kiosk wrote, so the staff area stays locked.")
    pin = settings.staff_pin
    if not pin:
        return _("No staff PIN is set, so the staff area stays locked.")
    if len(pin) < MIN_PIN:
        return _("The staff PIN is shorter than %(num)d characters, so the staff area stays locked.", num=MIN_PIN)
    return None


def signed_in():
    """True while this session holds a staff sign-in used within the last 5 minutes."""
    if not session.stored:
        return False
    state = store().staff_touch(session.key, clock(), IDLE_SECONDS)
    if state == "expired":
        flash(_("The staff area locked itself after 5 minutes without use."), "info")
    return state == "in"


@bp.before_app_request
def leave_staff_area():
    """Going back to the shop ends the staff session, so a customer cannot walk in behind staff."""
    if session.stored and request.blueprint != "staff" and request.endpoint not in (None, "static") \
            and store().staff_signed_in(session.key):  # a read first: a shop page writes nothing
        store().staff_sign_out(session.key)


@bp.before_request
def guard():
    """Every staff page but the sign-in needs a PIN set and a live staff session."""
    if request.endpoint in OPEN_ENDPOINTS or (request.endpoint in SETUP_ENDPOINTS and
                                              first_run_open(current_kiosk().settings)):
        return None
    if pin_problem():
        return render_template("staff/no_pin.html", problem=pin_problem()), 403
    if not signed_in():
        if request.method == "GET":
            return redirect(url_for("staff.index"))
        abort(403)
    return None


@bp.context_processor
def staff_context():
    """Whether the staff header shows its menu and idle lock."""
    return {"signed_in": session.stored and store().staff_signed_in(session.key)}


def _source():
    """Whose wrong PINs these are, as the ledger counts them: this counter's own screen (it holds the screen key), or
    anything else. A script on the computer runs up and locks only its own count, never the screen's, and five
    tries in five minutes still stop it guessing; on a shared ledger each counter counts its own."""
    return f"{current_kiosk().kiosk_id}:{'screen' if own_screen() else 'other'}"


def _lockout(db, now, source):
    """Seconds the PIN stays locked for this source, and its wrong tries so far."""
    until = float(get_meta(db, f"staff_locked_until:{source}", 0))
    # Capped, so a clock set back cannot lock staff out for longer than one lock.
    return min(LOCK_SECONDS, max(0, until - now)), int(get_meta(db, f"staff_pin_failures:{source}", 0))


def pin_matches(typed):
    """True when `typed` is the staff PIN: its salted hash when there is one, else the plain KIOSK_STAFF_PIN."""
    settings = current_kiosk().settings
    if settings.staff_pin_hash:
        return pinlib.verify(typed, settings.staff_pin_hash)
    return hmac.compare_digest(typed.encode(), settings.staff_pin.encode())


def check_pin(db, pin):
    """Compare a PIN in constant time, counting wrong tries in the ledger; returns (ok, message, locked)."""
    now, source = clock(), _source()
    with transaction(db):  # one try at a time, even from two windows
        locked, failures = _lockout(db, now, source)
        if locked:
            minutes = -(-int(locked) // 60)
            return False, ngettext("Too many wrong PINs. Try again in %(num)d minute.",
                                   "Too many wrong PINs. Try again in %(num)d minutes.", minutes), True
        if pin_matches(pin):
            set_meta(db, f"staff_pin_failures:{source}", 0)
            return True, "", False
        failures += 1
        if failures >= MAX_TRIES:
            set_meta(db, f"staff_locked_until:{source}", now + LOCK_SECONDS)
            set_meta(db, f"staff_pin_failures:{source}", 0)
            log.warning("staff PIN: %s wrong tries from %s, locked for %s s", MAX_TRIES, source, LOCK_SECONDS)
            return False, ngettext("Too many wrong PINs. The staff area is locked for %(num)d minute.",
                                   "Too many wrong PINs. The staff area is locked for %(num)d minutes.",
                                   LOCK_SECONDS // 60), True
        set_meta(db, f"staff_pin_failures:{source}", failures)
        left = MAX_TRIES - failures
        return False, ngettext("Wrong PIN. %(num)d try left before a 5-minute lock.",
                               "Wrong PIN. %(num)d tries left before a 5-minute lock.", left), False


@bp.get("/")
def index():
    """The sign-in, or today's takings for signed-in staff; the set-up form on a kiosk not set up yet."""
    if first_run_open(current_kiosk().settings):
        return redirect(url_for("staff.setup"))
    if pin_problem():
        return render_template("staff/no_pin.html", problem=pin_problem()), 403
    if not signed_in():
        return render_template("staff/login.html")
    return today.dashboard()


@bp.post("/login")
def login():
    """Check the PIN; five wrong tries lock the staff area for five minutes."""
    if pin_problem():
        return render_template("staff/no_pin.html", problem=pin_problem()), 403
    ok, message, locked = check_pin(get_db(), request.form.get("pin", "")[:64])
    if not ok:
        flash(message, "error")
        return render_template("staff/login.html"), 429 if locked else 401
    # A fresh session id on sign-in, keeping the rest (the cart): nobody can plant a staff session.
    try:
        store().rotate(session)
        with store().writing(session) as sdb:
            store().staff_sign_in(sdb, session.key, clock())
    except SessionEnded:
        abort(403)
    log.info("staff signed in")
    return redirect(url_for("staff.index"))


@bp.post("/lock")
def lock():
    """End the staff session and go back to the shop."""
    if session.stored:
        store().staff_sign_out(session.key)
    return redirect(url_for("shop.home"))


