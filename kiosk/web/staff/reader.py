"""The card reader: readers registered in the Stripe account with their status, registering one from the code it
shows, and choosing the one beside this counter's screen (Stripe Terminal, server-driven)."""
import re
import uuid

from flask import flash, redirect, render_template, request, url_for

from kiosk.core.i18n import gettext as _
from kiosk.ledger.db import get_db
from kiosk.payments import stripe_terms, terminal
from kiosk.payments.gateway import PaymentError
from kiosk.web import words
from kiosk.web.staff.base import bp, log
from kiosk.web.state import current_kiosk

# What Stripe's Location address takes; line1, city and country are needed everywhere, state and postal code in
# most countries (Stripe answers which one is missing).
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")


def _guess_address(settings):
    """A start for the location form from KIOSK_SHOP_ADDRESS's lines and the locale's country."""
    lines = settings.address_lines
    country = settings.locale.split("_")[-1].upper() if "_" in settings.locale else ""
    return {"line1": lines[0] if lines else "", "line2": "", "city": lines[1] if len(lines) > 1 else "",
            "state": "", "postal_code": lines[2] if len(lines) > 2 else "", "country": country}


@bp.get("/reader")
def reader_page():
    """This counter's card reader, every reader in the account with its status, and a form to register one."""
    k, db = current_kiosk(), get_db()
    readers, locations, problem = [], [], None
    if k.gateway is None:
        problem = _("Stripe keys are not set up, so no card reader can be used yet.")
    else:
        try:
            readers, locations = k.gateway.readers(), k.gateway.locations()
        except PaymentError as exc:
            problem = _("Stripe could not be asked about the readers: %(why)s", why=words.say(exc))
    return render_template("staff/reader.html", readers=readers, locations=locations, problem=problem,
                           chosen=terminal.reader_id(k, db), from_settings=k.settings.terminal_reader,
                           address=_guess_address(k.settings), address_fields=ADDRESS_FIELDS,
                           request_key=uuid.uuid4().hex, test_keys=k.settings.test_mode)


@bp.post("/reader/choose")
def choose_reader():
    """Use this reader at this counter's checkout (or none: customers type their card)."""
    k = current_kiosk()
    reader = request.form.get("reader", "")
    if reader and not re.fullmatch(r"tmr_[A-Za-z0-9]{4,64}", reader):
        flash(_("That is not a reader id."), "error")
        return redirect(url_for("staff.reader_page"))
    terminal.choose(k, get_db(), reader)
    log.info("card reader for %s: %s", k.settings.counter_name, reader or "none")
    flash(_("This counter now uses the reader %(reader)s.", reader=reader) if reader else
          _("This counter uses no card reader: customers type their card."), "info")
    return redirect(url_for("staff.reader_page"))


def _location(k):
    """The location chosen in the form, or one made from the address typed there; None after saying why not."""
    chosen = request.form.get("location", "")
    if chosen != "new":
        return chosen or None
    address = {name: request.form.get(name, "").strip()[:200] for name in ADDRESS_FIELDS}
    address = {name: value for name, value in address.items() if value}
    address["country"] = address.get("country", "").upper()
    if not all(address.get(name) for name in ("line1", "city", "country")) or len(address["country"]) != 2:
        flash(_("A new location needs at least the street, the city and the two-letter country code (such as US "
                "or GB)."), "error")
        return None
    name = request.form.get("display_name", "").strip()[:100] or k.settings.shop_name
    return k.gateway.create_location(name, address, stripe_terms.location_key(request.form.get("request_key", "")))


@bp.post("/reader/register")
def register_reader():
    """Register a reader from the code it shows (Settings > Generate pairing code), then use it here."""
    k = current_kiosk()
    code = request.form.get("registration_code", "").strip().lower()[:64]
    label = request.form.get("label", "").strip()[:100] or k.settings.counter_name
    if k.gateway is None:
        flash(_("Set up the Stripe keys first."), "error")
        return redirect(url_for("staff.reader_page"))
    if not re.fullmatch(r"[a-z0-9-]{3,64}", code):
        flash(_("Type the registration code the reader shows (three words with dashes), or simulated-wpe for a "
                "simulated reader in test mode."), "error")
        return redirect(url_for("staff.reader_page"))
    key = request.form.get("request_key", "") or uuid.uuid4().hex  # a form sent twice registers once
    try:
        location = _location(k)
        if location is None:
            return redirect(url_for("staff.reader_page"))
        reader = k.gateway.register_reader(code, label, location, stripe_terms.reader_key(key))
    except PaymentError as exc:
        flash(_("The reader was not registered: %(why)s", why=words.say(exc)), "error")
        return redirect(url_for("staff.reader_page"))
    terminal.choose(k, get_db(), reader.id)
    log.info("registered card reader %s (%s) for %s", reader.id, label, k.settings.counter_name)
    flash(_("Reader “%(label)s” (%(reader)s) is registered, and this counter now uses it.", label=reader.label,
            reader=reader.id), "info")
    return redirect(url_for("staff.reader_page"))
