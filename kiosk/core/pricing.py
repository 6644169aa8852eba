"""The pricing rule: which promotions a cart gets, what each saves, and what each line then costs.

Written down in docs/pricing.md; in short, all in integer minor units:

1. Every line starts at its list price × copies.
2. **Book promotions** (percent or amount off a book, a category or a list of ISBNs, and every "buy N, the
   cheapest M free"): each copy takes at most one. They are applied one after another, each on the copies the
   ones before left, in the order that saves the customer most: every order is tried when up to five of them
   apply to the cart (past that, the one saving most on the copies left goes next). A tie goes to the order that
   puts older promotions (lower ids) first. Percent off is rounded half up per line; amount off is per copy,
   never below zero; in a "buy N" group the copies are sorted by price, dearest first, and grouped N at a time
   (copies left over make no group and stay free for another promotion), so the cheapest M of each group are
   free: the grouping that saves the customer most.
3. **Cart promotions** (percent or amount off the whole cart): at most one, the one that saves most on what
   step 2 left (a tie goes to the lower id).
4. **The staff discount** (a percent, behind the staff PIN): on what step 3 left, with everything else.
5. A promotion applies only between its start and end, to a cart whose list prices add up to its minimum
   spend, and when it has a code, to a cart that was given that code.
6. **The split**: every saving is shared out over the copies (a "buy N" group's saving over that group's copies)
   or lines (a cart or staff saving) it came from, in proportion to what they cost before it, by largest
   remainder, so the parts add up to the saving exactly and each line knows what was paid for it. A refund of
   some copies gives back their share (tax.returns_value), so a 3-for-2 refund of one book follows the split.
7. **Tax follows**: tax is worked out on what was paid, per class, by kiosk/core/tax.py's rule, with prices
   that add tax and prices that include it alike.

The server prices every cart from the catalog and the ledger's promotions; the browser only ever sends books,
quantities and a code."""
import re
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import permutations

from kiosk.core.tax import half_up

KINDS = ("percent", "amount", "bundle")
SCOPES = ("cart", "category", "books")
CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{2,31}")
EVERY_ORDER = 5  # book promotions on one cart up to which every order of them is tried (5! = 120 orders)


def normalize_code(text):
    """A promotion code as the kiosk keeps it: upper case, no spaces ("fair 10" -> "FAIR10"); "" if it cannot be
    one."""
    code = re.sub(r"\s+", "", str(text or "")).upper()[:40]
    return code if CODE.fullmatch(code) else ""


@dataclass(frozen=True)
class Promotion:
    """One promotion as the ledger keeps it (kiosk/ledger/promotions.py); money in minor units."""

    id: int
    name: str
    kind: str  # percent | amount | bundle
    scope: str  # cart | category | books
    percent: Decimal = Decimal(0)  # percent: how much off
    amount: int = 0  # amount: off each copy (category, books) or off the cart
    buy: int = 0  # bundle: in each `buy` copies...
    free: int = 0  # ...the cheapest `free` are free
    category: str = ""
    isbns: frozenset = frozenset()
    min_spend: int = 0  # the cart's list prices must add up to this
    code: str = ""  # given only to a cart that was given this code
    max_uses: int | None = None
    uses: int = 0

    @property
    def per_book(self):
        """True when it takes copies (step 2), False for a saving on the whole cart (step 3)."""
        return self.kind == "bundle" or self.scope != "cart"

    def covers(self, line):
        """True when a cart line's book is one this promotion is for."""
        if self.scope == "category":
            return bool(line.get("category")) and line["category"].casefold() == self.category.casefold()
        if self.scope == "books":
            return line["isbn"] in self.isbns
        return True


@dataclass(frozen=True)
class StaffDiscount:
    """A percent off the cart, given by staff behind the PIN, with their reason."""

    percent: Decimal
    reason: str


@dataclass
class Saving:
    """What one promotion (or the staff discount: promotion_id None) saved on a cart."""

    promotion_id: int | None
    name: str
    amount: int
    code: str = ""
    reason: str = ""  # the staff discount's


@dataclass
class Priced:
    """The rule's answer: each line's discount, the savings in the order they were applied, and what became of the
    cart's code (CODE_* below)."""

    discounts: dict = field(default_factory=dict)  # isbn -> minor units off the line
    savings: list = field(default_factory=list)
    code_state: str = ""
    code_min_spend: int = 0  # the code's promotion's minimum spend, to say what a cart short of it needs

    @property
    def total(self):
        """All the savings."""
        return sum(s.amount for s in self.savings)


CODE_APPLIED = "applied"  # the code's promotion is one of the savings
CODE_BEATEN = "beaten"  # it applies, but the cart's other promotions save more on the same books
CODE_SHORT = "short"  # the cart does not reach the code's minimum spend
CODE_GONE = "gone"  # it is no longer running, or its last use was taken
CODE_NOTHING = "nothing"  # it would save nothing on this cart (not its books, or not enough of them)


def split(amount, weights):
    """`amount` shared out in proportion to `weights` by largest remainder (earlier first on a tie): whole minor
    units that add up to `amount` exactly, none above its weight when `amount` <= sum(weights)."""
    whole = sum(weights)
    if not whole or not amount:
        return [0] * len(weights)
    shares = [amount * w // whole for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % whole), i))
    for i in by_remainder[:amount - sum(shares)]:
        shares[i] += 1
    return shares


@dataclass
class _Copy:
    isbn: str
    price: int
    taken: bool = False
    off: int = 0


def _offer(promotion, copies, lines_by_isbn):
    """What a book promotion would save on the copies not yet taken: ({copy index: minor units off}, taken
    indexes)."""
    eligible = [i for i, c in enumerate(copies) if not c.taken and promotion.covers(lines_by_isbn[c.isbn])]
    if promotion.kind == "bundle":
        eligible.sort(key=lambda i: (-copies[i].price, copies[i].isbn, i))
        full = len(eligible) - len(eligible) % promotion.buy
        offs = {}
        for start in range(0, full, promotion.buy):
            group = eligible[start:start + promotion.buy]
            saving = sum(copies[i].price for i in group[-promotion.free:])
            offs.update(zip(group, split(saving, [copies[i].price for i in group]), strict=True))
        return offs, eligible[:full]
    if promotion.kind == "amount":
        return {i: min(promotion.amount, copies[i].price) for i in eligible}, eligible
    # Percent: rounded once per line, and that line's saving shared over its copies.
    offs, by_isbn = {}, {}
    for i in eligible:
        by_isbn.setdefault(copies[i].isbn, []).append(i)
    for group in by_isbn.values():
        saving = half_up(Decimal(sum(copies[i].price for i in group)) * promotion.percent / 100)
        offs.update(zip(group, split(saving, [copies[i].price for i in group]), strict=True))
    return offs, eligible


def _on_cart(promotion, payable):
    """What a cart promotion saves on a cart that costs `payable`."""
    if promotion.kind == "amount":
        return min(promotion.amount, payable)
    return half_up(Decimal(payable) * promotion.percent / 100)


def _copies(lines):
    return [_Copy(ln["isbn"], ln["unit_price"]) for ln in lines for _ in range(ln["quantity"])]


def _apply_in_turn(turns, lines, lines_by_isbn):
    """Book promotions applied one after another, each on the copies the ones before left: (copies, savings)."""
    copies, savings = _copies(lines), []
    for promotion in turns:
        offs, taken = _offer(promotion, copies, lines_by_isbn)
        if sum(offs.values()):
            for i in taken:
                copies[i].taken = True
            for i, off in offs.items():
                copies[i].off += off
            savings.append(Saving(promotion.id, promotion.name, sum(offs.values()), promotion.code))
    return copies, savings


def _biggest_first(candidates, lines, lines_by_isbn):
    """An order for many promotions: the one that saves most on the copies left goes next (a tie: the older)."""
    turns, waiting, copies = [], list(candidates), _copies(lines)
    while waiting:
        best = max(waiting, key=lambda p: (sum(_offer(p, copies, lines_by_isbn)[0].values()), -p.id))
        turns.append(best)
        waiting.remove(best)
        copies = _apply_in_turn(turns, lines, lines_by_isbn)[0]
    return turns


def _book_savings(promotions, lines, lines_by_isbn, discounts):
    """Step 2: every order of the book promotions that save anything is tried (up to EVERY_ORDER of them; past that,
    the biggest saving first), and the cart gets the order that saves most; a tie goes to the order that comes
    first with the promotions sorted oldest first. Fills `discounts` (isbn -> off) and returns the savings."""
    candidates = sorted((p for p in promotions if sum(_offer(p, _copies(lines), lines_by_isbn)[0].values())),
                        key=lambda p: p.id)
    turns = permutations(candidates) if len(candidates) <= EVERY_ORDER else \
        [_biggest_first(candidates, lines, lines_by_isbn)]
    best = None
    for turn in turns:
        copies, savings = _apply_in_turn(turn, lines, lines_by_isbn)
        if best is None or sum(s.amount for s in savings) > sum(s.amount for s in best[1]):
            best = (copies, savings)
    copies, savings = best or (_copies(lines), [])
    for ln in lines:
        discounts[ln["isbn"]] = 0
    for c in copies:
        discounts[c.isbn] += c.off
    return savings


def price(lines, promotions, code="", staff=None):
    """Apply the rule to priced cart lines (dicts with isbn, unit_price, quantity and category) and the
    promotions running now (a promotion with a code counts only when `code` is it). Returns a Priced."""
    result = Priced()
    list_total = sum(ln["unit_price"] * ln["quantity"] for ln in lines)
    lines_by_isbn = {ln["isbn"]: ln for ln in lines}
    code_promotion = next((p for p in promotions if code and p.code == code), None)
    usable = [p for p in promotions if (not p.code or p.code == code) and list_total >= p.min_spend]

    # Step 2: book promotions, in the order that saves most.
    result.savings.extend(_book_savings([p for p in usable if p.per_book], lines, lines_by_isbn, result.discounts))

    # Steps 3 and 4: one cart promotion, then the staff discount, each shared over the lines.
    def on_lines(saving):
        payable = [ln["unit_price"] * ln["quantity"] - result.discounts[ln["isbn"]] for ln in lines]
        for ln, off in zip(lines, split(saving.amount, payable), strict=True):
            result.discounts[ln["isbn"]] += off
        result.savings.append(saving)

    payable = list_total - sum(result.discounts.values())
    offers = [(p, _on_cart(p, payable)) for p in sorted(usable, key=lambda p: p.id) if not p.per_book]
    if offers:
        best, saving = max(offers, key=lambda o: (o[1], -o[0].id))
        if saving:
            on_lines(Saving(best.id, best.name, saving, best.code))
    if staff is not None and staff.percent > 0:
        payable = list_total - sum(result.discounts.values())
        saving = half_up(Decimal(payable) * staff.percent / 100)
        if saving:
            on_lines(Saving(None, "", saving, reason=staff.reason))

    if code_promotion is not None:
        result.code_state = _code_state(code_promotion, result, list_total, lines)
        result.code_min_spend = code_promotion.min_spend
    elif code:
        result.code_state = CODE_GONE
    return result


def _code_state(promotion, result, list_total, lines):
    if any(s.promotion_id == promotion.id for s in result.savings):
        return CODE_APPLIED
    if list_total < promotion.min_spend:
        return CODE_SHORT
    if promotion.per_book:
        alone = sum(_offer(promotion, _copies(lines), {ln["isbn"]: ln for ln in lines})[0].values())
    else:
        alone = _on_cart(promotion, list_total)
    return CODE_BEATEN if alone else CODE_NOTHING
