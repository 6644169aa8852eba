"""The card reader beside the screen (Stripe Terminal, server-driven): which reader this counter uses, handing
it a payment, and stopping it.

Follows Stripe's "Collect card payments" guide for the server-driven integration: the server creates a
card_present PaymentIntent, calls process_payment_intent on the reader, and follows the reader's action and
the intent until the customer has tapped, inserted or swiped.
"""
import logging

from kiosk.ledger.db import LedgerUnavailable, get_meta, set_meta
from kiosk.payments.gateway import PaymentError

log = logging.getLogger("kiosk.terminal")
METHOD = "card_present"


def _key(kiosk):
    return f"terminal_reader:{kiosk.kiosk_id}"


def reader_id(kiosk, db):
    """The reader this counter uses: the one staff chose here, else STRIPE_TERMINAL_READER, else ''."""
    try:
        chosen = get_meta(db, _key(kiosk))
    except LedgerUnavailable:
        chosen = None
    return kiosk.settings.terminal_reader if chosen is None else chosen


def choose(kiosk, db, reader):
    """Make `reader` (a tmr_ id, or '' for none) this counter's card reader."""
    set_meta(db, _key(kiosk), reader)


def hand_over(gateway, reader, intent_id):
    """Ask the reader to collect this payment, unless it already waits for it: a double tap starts one action."""
    current = gateway.reader(reader)
    if current.waiting_only(intent_id):
        return current
    if not current.online:
        raise PaymentError("The card reader is offline.", "reader_offline", True)
    return gateway.process_on_reader(reader, intent_id)


def release(kiosk, db, intent_id):
    """Stop the reader waiting for this payment. A courtesy: canceling the PaymentIntent is what makes sure no tap
    can pay it, so a reader that cannot be reached is only logged."""
    reader = reader_id(kiosk, db)
    if not reader or not intent_id:
        return
    try:
        if kiosk.gateway.reader(reader).waiting_only(intent_id):
            kiosk.gateway.cancel_reader_action(reader)
    except PaymentError as exc:
        log.warning("could not stop reader %s waiting for %s (%s)", reader, intent_id, exc.kind)
