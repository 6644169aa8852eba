"""Cart rules: ISBN -> quantity in the server-side session, priced only from the catalog."""
import hashlib
import json
import re
from dataclasses import dataclass, field

from kiosk.core import pricing, tax
from kiosk.core.coded import Coded
from kiosk.core.i18n import gettext as _

MAX_LINES = 30
MAX_QUANTITY = 20


class CartError(Coded):
    """A cart change that cannot be made: its code and params say why, for the customer (words.say)."""


@dataclass
class PricedCart:
    """The cart as the server prices it: lines, total in minor units, and notes on anything it had to change."""

    lines: list = field(default_factory=list)
    total: int = 0  # what the customer pays: the subtotal, plus the tax when prices do not include it
    notes: list = field(default_factory=list)
    subtotal: int = 0  # what the lines cost after their savings, added up
    taxes: list = field(default_factory=list)  # tax.TaxLine per class, [] when the shop charges no tax
    inclusive: bool = False
    savings: list = field(default_factory=list)  # pricing.Saving, in the order the rule applied them
    code: str = ""  # the promotion code the customer gave, if any
    code_state: str = ""  # what became of it (pricing.CODE_*)
    code_min_spend: int = 0  # what its promotion asks the books to come to

    @property
    def discount(self):
        """All the savings."""
        return sum(s.amount for s in self.savings)

    @property
    def gross(self):
        """The list prices added up, before any saving."""
        return self.subtotal + self.discount

    @property
    def count(self):
        """How many books in all."""
        return sum(line["quantity"] for line in self.lines)

    @property
    def tax(self):
        """All the tax on the cart (included in the total either way)."""
        return sum(t.tax for t in self.taxes)

    def fingerprint(self):
        """A digest of what is being bought and what it costs, so a changed cart never reuses an old payment."""
        return _digest([*((ln["isbn"], ln["quantity"], ln["unit_price"], ln["discount"]) for ln in self.lines),
                        *((t.tax_class, str(t.rate), t.tax) for t in self.taxes),
                        *((s.promotion_id or 0, s.name, s.code, s.amount, s.reason) for s in self.savings)])


def _digest(items):
    return hashlib.sha256(json.dumps(sorted(items, key=json.dumps)).encode()).hexdigest()[:24]


def fingerprint_of(items, catalog, rates=None, inclusive=False, offers=None):
    """The fingerprint of a raw {isbn: quantity} cart at today's prices, promotions and tax (PricedCart.fingerprint)."""
    return price(dict(items), catalog, dict(items), rates, inclusive, offers).fingerprint()


@dataclass(frozen=True)
class Offers:
    """What a cart may get: the promotions running now, the code the customer gave, and a staff discount."""

    promotions: tuple = ()
    code: str = ""
    staff: pricing.StaffDiscount | None = None


def parse_quantity(raw):
    """A quantity from a form or JSON: a whole number from 1 to MAX_QUANTITY."""
    text = str(raw).strip() if raw is not None else ""
    if not re.fullmatch(r"[0-9]{1,3}", text) or not 1 <= int(text) <= MAX_QUANTITY:
        raise CartError("quantity_range", "Choose a quantity from 1 to %(most)s.", most=MAX_QUANTITY)
    return int(text)


def _limit(book, quantity, on_hand):
    if on_hand <= 0:
        raise CartError("sold_out", "Sorry, “%(title)s” is sold out.", title=book.title)
    if quantity > on_hand:
        raise CartError("only_left", "Only %(num)s copies of “%(title)s” left.", num=on_hand, title=book.title)
    if quantity > MAX_QUANTITY:
        raise CartError("per_book_most", "At most %(most)s copies of one book per purchase.", most=MAX_QUANTITY)


def add(cart, book, quantity, on_hand):
    """Add copies of a book; returns the new quantity in the cart."""
    if book.isbn13 not in cart and len(cart) >= MAX_LINES:
        raise CartError("lines_most", "The cart holds at most %(most)s different books.", most=MAX_LINES)
    new = cart.get(book.isbn13, 0) + quantity
    _limit(book, new, on_hand)
    cart[book.isbn13] = new
    return new


def set_quantity(cart, book, quantity, on_hand):
    """Set a line's quantity exactly."""
    if book.isbn13 not in cart:
        raise CartError("not_in_cart", "That book is not in the cart.")
    _limit(book, quantity, on_hand)
    cart[book.isbn13] = quantity


def remove(cart, isbn13):
    """Drop a line; removing a missing line is fine."""
    cart.pop(isbn13, None)


def price(cart, catalog, levels, rates=None, inclusive=False, offers=None):
    """Price the cart from the catalog, stock, promotions (Offers) and tax rates, trimming lines that can no longer
    be sold. Each line gets its list total, its share of the savings (discount) and its total: what it costs."""
    offers = offers or Offers()
    priced = PricedCart(inclusive=inclusive, code=offers.code)
    for isbn13, quantity in list(cart.items()):
        book = catalog.get(isbn13)
        on_hand = levels.get(isbn13, 0)
        if book is None:
            del cart[isbn13]
            priced.notes.append(_("A book in your cart is no longer sold here and was removed."))
            continue
        if on_hand <= 0:
            del cart[isbn13]
            priced.notes.append(_("“%(title)s” has just sold out and was removed from your cart.", title=book.title))
            continue
        if quantity > on_hand:
            cart[isbn13] = quantity = on_hand
            priced.notes.append(_("Only %(num)s of “%(title)s” left; your cart now has %(num)s.", num=on_hand,
                                   title=book.title))
        priced.lines.append({"isbn": book.isbn13, "title": book.title, "author": book.author, "cover": book.cover,
                             "unit_price": book.price, "quantity": quantity, "total": book.price * quantity,
                             "available": min(on_hand, MAX_QUANTITY), "tax_class": book.tax_class,
                             "category": book.category})
    priced.lines.sort(key=lambda ln: (ln["title"].casefold(), ln["isbn"]))
    # The pricing rule (pricing.py), then tax on what each line costs after it.
    rule = pricing.price(priced.lines, offers.promotions, offers.code, offers.staff)
    for line in priced.lines:
        line["list_total"] = line["total"]
        line["discount"] = rule.discounts.get(line["isbn"], 0)
        line["total"] = line["list_total"] - line["discount"]
    priced.savings, priced.code_state, priced.code_min_spend = rule.savings, rule.code_state, rule.code_min_spend
    taxed = tax.compute(priced.lines, rates or {}, inclusive)
    priced.subtotal, priced.taxes, priced.total = taxed.subtotal, taxed.lines, taxed.total
    return priced
