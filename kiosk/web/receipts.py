"""Receipts on the confirmation page: a QR code of Stripe's hosted receipt, and the receipt email address."""
import re

import segno
from markupsafe import Markup

from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import lazy_gettext as _l

EMAIL_MAX = 254  # RFC 5321's limit on a whole address
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}")


def qr_svg(url):
    """An inline SVG QR code of `url`, dark on white with its quiet zone, for a phone camera."""
    code = segno.make(url, error="m", micro=False)
    svg = code.svg_inline(scale=4, dark="#000", light="#fff", svgclass="qr", omitsize=True)  # sized by CSS
    label = Markup.escape(_("QR code: scan it to open your receipt on your phone"))
    # segno's own SVG markup, with the escaped label added to it
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1))  # noqa: S704


# Cardholder verification as a card receipt names it (Charge.payment_method_details.card_present.receipt).
# Stripe's values: approval, failure, none, offline_pin, offline_pin_and_signature, online_pin, signature.
VERIFIED_BY = {"offline_pin": _l("PIN verified"), "online_pin": _l("PIN verified"), "signature": _l("Signature"),
               "offline_pin_and_signature": _l("PIN and signature"), "approval": _l("Approved by the card issuer"),
               "failure": _l("Verification failed"), "none": _l("No verification required")}


def card_lines(card):
    """What card networks require on an in-person receipt, as (label, value) pairs; none for a typed card."""
    if not card:
        return []
    lines = [(_("Card"), f"{card['brand'].upper()} •••• {card['last4']}"),
             (_("Application"), card["application"]), ("AID", card["aid"]),
             (_("Authorisation response"), card["response_code"]),
             (_("Verification"), str(VERIFIED_BY.get(card["verification"], card["verification"])))]
    return [(label, value) for label, value in lines if value]


def for_order(intent):
    """The receipt URL and its QR code for a paid order's PaymentIntent, and a card reader's receipt lines; empty
    when Stripe could not be asked (intent None)."""
    if intent is None:
        return {"receipt_url": "", "receipt_qr": "", "card_lines": []}
    url = intent.receipt_url
    return {"receipt_url": url, "receipt_qr": qr_svg(url) if url else "", "card_lines": card_lines(intent.card_present)}


def clean_email(raw):
    """A receipt address as typed, trimmed, or '' when it cannot be one."""
    email = str(raw or "").strip()
    if len(email) > EMAIL_MAX or not _EMAIL.fullmatch(email):
        return ""
    return email
