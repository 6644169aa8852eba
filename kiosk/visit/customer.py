"""The customer at the kiosk: the cart, its price, the checkout attempt, and who sees which receipt.

One payment in flight per customer: from the moment a checkout attempt asks for its PaymentIntent until
that payment is paid or canceled, the cart is frozen. The payment itself is purchase.py's.
"""
import time
import uuid
from decimal import Decimal, InvalidOperation

from flask import session

from kiosk.core import cart as cartlib
from kiosk.core import pricing
from kiosk.ledger import orders, promotions
from kiosk.ledger import stock as shelves
from kiosk.ledger.db import LedgerUnavailable
from kiosk.visit.sessions import LANGUAGE, PROMOTION_CODE, STAFF_DISCOUNT, SessionEnded, store


class PaymentInFlight(cartlib.CartError):
    """The cart cannot change while its payment is under way."""


def _ended():
    return cartlib.CartError("visit_ended", "Your visit on this kiosk has ended. Please start again.")


def _known():
    """True when this browser may have anything stored (it sent an id): saves a query for everyone else."""
    return session.had_cookie or session.stored


def cart():
    """The cart as {isbn: quantity}."""
    return store().cart(session.key) if _known() else {}


def cart_count():
    """How many books are in the cart."""
    return store().cart_count(session.key) if _known() else 0


def priced(kiosk, db):
    """The cart priced from the catalog and stock, saving any trims it had to make."""
    items = cart()
    before = dict(items)
    try:
        row = attempt() if items else None
        # Copies held by this customer's own order (a payment under way, or being asked for) are theirs.
        levels = shelves.stock_levels(db, items.keys(), attempt=row["id"] if row is not None else None)
    except LedgerUnavailable:
        # The shop's records are not answering: show the cart as it is; checkout holds the copies later.
        levels = dict.fromkeys(items, cartlib.MAX_QUANTITY)
    s = kiosk.settings
    result = cartlib.price(items, kiosk.catalog, levels, s.tax_rates, s.prices_include_tax,
                           offers(kiosk, db, row["id"] if row is not None else None))
    if items != before:
        try:
            with store().writing(session) as sdb:
                store().write_cart(sdb, session.key, before, items)
        except SessionEnded:
            return cartlib.PricedCart()
    return result


def staff_discount(kiosk):
    """The staff discount on this customer's cart (pricing.StaffDiscount), within today's cap, or None."""
    given = session.get(STAFF_DISCOUNT)
    if not isinstance(given, dict):
        return None
    try:
        percent = Decimal(str(given.get("percent")))
    except InvalidOperation:
        return None
    percent = min(percent, Decimal(kiosk.settings.staff_discount_max))
    return pricing.StaffDiscount(percent, str(given.get("reason") or "")) if percent > 0 else None


def code():
    """The promotion code this customer gave, or ""."""
    return session.get(PROMOTION_CODE) or ""


def offers(kiosk, db, attempt_id=None):
    """What this customer's cart may get (cart.Offers): the promotions running now, their code and a staff discount.

    A code use held by their own payment under way (`attempt_id`) is still theirs. With the shop's records not
    answering, no promotion: nothing can be paid then anyway (checkout asks the ledger first)."""
    try:
        running = tuple(promotions.running(db, kiosk.settings.currency, attempt_id))
    except LedgerUnavailable:
        running = ()
    return cartlib.Offers(running, code(), staff_discount(kiosk))


def _keep_offer(kiosk, db, key, value):
    """Keep the code or staff discount for this visit, refused while a payment is under way (the cart is frozen)."""
    sync(kiosk, db)
    if _paying(attempt()):
        raise PaymentInFlight("paying", "Finish or cancel this payment first: your cart is being paid for.")
    try:
        store().keep(session, key, value)
    except SessionEnded:
        raise _ended() from None


def give_code(kiosk, db, typed):
    """Check a promotion code a customer typed or scanned, and keep it for their cart; returns its promotion.

    Raises CartError saying why not: unknown, ended, used up, or a payment under way."""
    clock = time.time()
    if promotions.guessing(db, kiosk.kiosk_id, clock):
        raise cartlib.CartError("code_guessing", "Too many codes that are not ours were tried.")
    given = pricing.normalize_code(typed)
    state, promotion = promotions.by_code(db, given, kiosk.settings.currency) if given else ("unknown", None)
    if state == "unknown":
        promotions.count_wrong_code(db, kiosk.kiosk_id, clock)
    shown = given or str(typed or "")[:40].strip()
    if state == "ended":
        raise cartlib.CartError("code_ended", "The code %(given)s has ended.", given=shown)
    if state == "used_up":
        raise cartlib.CartError("code_used_up", "The code %(given)s has been used up.", given=shown)
    if promotion is None:
        raise cartlib.CartError("code_unknown", "The code %(given)s is not one of this shop's.", given=shown)
    _keep_offer(kiosk, db, PROMOTION_CODE, given)
    return promotion


def drop_code(kiosk, db):
    """Take the code off the cart."""
    _keep_offer(kiosk, db, PROMOTION_CODE, "")


def give_staff_discount(kiosk, db, percent, reason):
    """Keep a staff discount (a Decimal percent, within KIOSK_STAFF_DISCOUNT_MAX) for this customer's cart."""
    _keep_offer(kiosk, db, STAFF_DISCOUNT, {"percent": str(percent), "reason": reason} if percent else None)


def attempt():
    """This session's newest checkout attempt row, or None."""
    return store().latest_attempt(store().db(), session.key) if _known() else None


def _paying(row):
    return row is not None and row["paying"] is not None and row["closed"] is None


def change_cart(kiosk, db, change):
    """Run change(cart_dict) and save what it changed, in one transaction; refused while a payment is under way.

    Returns what `change` returns. Raises CartError (PaymentInFlight for a frozen cart)."""
    sync(kiosk, db)
    try:
        with store().writing(session) as sdb:
            if _paying(store().latest_attempt(sdb, session.key)):
                raise PaymentInFlight("paying", "Finish or cancel this payment first: your cart is being paid for.")
            before = store().cart(session.key)
            after = dict(before)
            result = change(after)
            store().write_cart(sdb, session.key, before, after)
    except SessionEnded:
        raise _ended() from None
    return result


def add(kiosk, db, book, quantity):
    """Add copies of a book, limited by stock; returns the new quantity in the cart."""
    # With the shop's records not answering, a book goes in the cart anyway: checkout holds the copies.
    on_hand = shelves.on_hand(db, book.isbn13, unknown=cartlib.MAX_QUANTITY)
    return change_cart(kiosk, db, lambda items: cartlib.add(items, book, quantity, on_hand))


def set_quantity(kiosk, db, book, quantity):
    """Set a line's quantity exactly, limited by stock."""
    on_hand = shelves.on_hand(db, book.isbn13, unknown=cartlib.MAX_QUANTITY)
    change_cart(kiosk, db, lambda items: cartlib.set_quantity(items, book, quantity, on_hand))


def remove(kiosk, db, book):
    """Take a book out of the cart."""
    change_cart(kiosk, db, lambda items: cartlib.remove(items, book.isbn13))


def in_flight(kiosk, db):
    """The ledger order of a payment under way for this session (pending or declined), or None."""
    row = sync(kiosk, db)
    if not _paying(row):
        return None
    return orders.get(db, attempt=row["id"])


def sync(kiosk, db):
    """Bring the newest attempt in line with its order (paid or canceled elsewhere: the cart is free again)."""
    row = attempt()
    if not _paying(row):
        return row
    order = orders.get(db, attempt=row["id"])
    if order is None or order["status"] == "canceled":
        close_attempt(row["id"], "canceled")
    elif order["status"] not in orders.OPEN:
        close_attempt(row["id"], "paid", orders.lines(db, order["id"]))
    else:
        return row
    return attempt()


def attempt_for(priced_cart):
    """This cart's checkout attempt id: the newest one if it is still open for exactly this cart, else a new one."""
    row = attempt()
    fingerprint = priced_cart.fingerprint()
    if row is not None and row["closed"] is None and row["fingerprint"] == fingerprint:
        return row["id"]
    new_id = uuid.uuid4().hex
    try:
        with store().writing(session) as sdb:
            store().open_attempt(sdb, session.key, new_id, fingerprint, time.time())
    except SessionEnded:
        raise _ended() from None
    return new_id


def begin_paying(kiosk, db, attempt_id):
    """Freeze the cart for this attempt's payment; False if the cart or the attempt changed meanwhile."""
    try:
        with store().writing(session) as sdb:
            row = store().latest_attempt(sdb, session.key)
            if row is None or row["id"] != attempt_id or row["closed"] is not None:
                return False
            items = store().cart(session.key)
            s = kiosk.settings
            if cartlib.fingerprint_of(items, kiosk.catalog, s.tax_rates, s.prices_include_tax,
                                      offers(kiosk, db, attempt_id)) != row["fingerprint"]:
                return False
            store().start_paying(sdb, attempt_id, time.time())
    except SessionEnded:
        return False
    return True


def close_attempt(attempt_id, outcome, paid_lines=()):
    """Close an attempt once: paid takes its books out of the cart, canceled frees the cart."""
    try:
        with store().writing(session) as sdb:
            done = store().close_attempt(sdb, session.key, attempt_id, outcome, time.time())
            if done and paid_lines:
                before = store().cart(session.key)
                after = dict(before)
                for line in paid_lines:
                    left = after.get(line["isbn"], 0) - line["quantity"]
                    if left > 0:
                        after[line["isbn"]] = left
                    else:
                        after.pop(line["isbn"], None)
                store().write_cart(sdb, session.key, before, after)
    except SessionEnded:
        pass  # the customer is gone; the ledger has the order


def may_see(order):
    """A receipt is shown only to the session whose checkout attempt it was."""
    return bool(order["attempt"]) and _known() and store().has_attempt(session.key, order["attempt"])


def language(offered):
    """The locale this customer chose for their visit, if the kiosk still offers it; else None."""
    chosen = session.get(LANGUAGE)
    return chosen if chosen in offered else None


def choose_language(code):
    """Keep the customer's language for the rest of their visit (the idle reset forgets it); False when the
    visit has ended meanwhile."""
    try:
        store().keep(session, LANGUAGE, code)
    except SessionEnded:
        return False
    return True


def end_visit():
    """End the session for good: a new customer comes next."""
    store().revoke(session)
