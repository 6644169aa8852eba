"""The pricing rule (kiosk/core/pricing.py, docs/pricing.md) as a table: overlapping promotions, 3 for 2 with mixed
prices, the split over lines, minimum spends, codes, the staff discount, and tax on what was paid, added on top
and included, in dollars and in yen. Every amount is worked out by hand in the case's comment."""
from decimal import Decimal

import pytest

from kiosk.core import cart as cartlib
from kiosk.core import pricing, tax
from kiosk.core.catalog import Book
from kiosk.core.pricing import Promotion, StaffDiscount

PB = "Paperbacks"
THREE_FOR_TWO = Promotion(1, "3 for 2 on Paperbacks", "bundle", "category", buy=3, free=1, category="paperbacks")
FAIR10 = Promotion(2, "Book fair", "percent", "cart", percent=Decimal(10), code="FAIR10", max_uses=100)


def lines(*books):
    """Cart lines from (isbn, price, quantity, category), in the order given (the cart sorts by title)."""
    return [{"isbn": isbn, "unit_price": price, "quantity": quantity, "category": category}
            for isbn, price, quantity, category in books]


CASES = [
    # 3 for 2, three paperbacks at mixed prices: the 600 one is free, shared 1000:800:600 = 250, 200, 150.
    ("3for2 mixed", lines(("a", 1000, 1, PB), ("b", 800, 1, PB), ("c", 600, 1, PB)), [THREE_FOR_TWO], "", None,
     {"a": 250, "b": 200, "c": 150}, [(1, 600)]),
    # Four: the dearest three make the group (800 free, shared 320, 266.67 -> 267, 213.33 -> 213); 500 stays.
    ("3for2 four copies", lines(("a", 1200, 1, PB), ("b", 1000, 1, PB), ("c", 800, 1, PB), ("d", 500, 1, PB)),
     [THREE_FOR_TWO], "", None, {"a": 320, "b": 267, "c": 213, "d": 0}, [(1, 800)]),
    # Six copies of one book: two groups, two free: 2 × 700 off the line.
    ("3for2 one title", lines(("a", 700, 6, PB)), [THREE_FOR_TWO], "", None, {"a": 1400}, [(1, 1400)]),
    # Two paperbacks make no group: nothing off.
    ("3for2 too few", lines(("a", 700, 2, PB)), [THREE_FOR_TWO], "", None, {"a": 0}, []),
    # Not the category: nothing off.
    ("3for2 other category", lines(("a", 700, 3, "Children's")), [THREE_FOR_TWO], "", None, {"a": 0}, []),
    # The done-when cart: 3 for 2, then FAIR10's 10% of the 1800 left (180), shared 750:600:450 = 75, 60, 45.
    ("3for2 and FAIR10", lines(("a", 1000, 1, PB), ("b", 800, 1, PB), ("c", 600, 1, PB)),
     [THREE_FOR_TWO, FAIR10], "FAIR10", None, {"a": 325, "b": 260, "c": 195}, [(1, 600), (2, 180)]),
    # Without the code FAIR10 is not given.
    ("FAIR10 without the code", lines(("a", 1000, 1, PB)), [FAIR10], "", None, {"a": 0}, []),
    # Overlap, best for the customer: 50% off book a (500) first, then 3 for 2 on b, c, d (400 free) = 900,
    # not 3 for 2 on a, b, c (600) and nothing for a's half price = 600. The 3-for-2 split: 800:600:400 ->
    # 177.78 -> 178, 133.33 -> 133, 88.89 -> 89.
    ("overlap best order", lines(("a", 1000, 1, PB), ("b", 800, 1, PB), ("c", 600, 1, PB), ("d", 400, 1, PB)),
     [THREE_FOR_TWO, Promotion(3, "Half off a", "percent", "books", percent=Decimal(50), isbns=frozenset({"a"}))],
     "", None, {"a": 500, "b": 178, "c": 133, "d": 89}, [(3, 500), (1, 400)]),
    # Overlap where the bundle wins the copies: 3 for 2 saves 600; 50% off c alone would save 300.
    ("overlap bundle wins", lines(("a", 1000, 1, PB), ("b", 800, 1, PB), ("c", 600, 1, PB)),
     [THREE_FOR_TWO, Promotion(3, "Half off c", "percent", "books", percent=Decimal(50), isbns=frozenset({"c"}))],
     "", None, {"a": 250, "b": 200, "c": 150}, [(1, 600)]),
    # Two cart promotions: at most one, the bigger. 10% of 4000 = 400 < 500 off over 3000.
    ("cart promotions: the bigger", lines(("a", 2000, 2, "")),
     [Promotion(4, "Ten percent", "percent", "cart", percent=Decimal(10)),
      Promotion(5, "Five off 30", "amount", "cart", amount=500, min_spend=3000)], "", None, {"a": 500}, [(5, 500)]),
    # ...and below that promotion's minimum spend, the other: 10% of 2500 = 250.
    ("cart promotions: min spend", lines(("a", 2500, 1, "")),
     [Promotion(4, "Ten percent", "percent", "cart", percent=Decimal(10)),
      Promotion(5, "Five off 30", "amount", "cart", amount=500, min_spend=3000)], "", None, {"a": 250}, [(4, 250)]),
    # A tie between two cart promotions goes to the older (lower id).
    ("tie: the older", lines(("a", 1000, 1, "")),
     [Promotion(7, "B", "amount", "cart", amount=100), Promotion(6, "A", "amount", "cart", amount=100)], "", None,
     {"a": 100}, [(6, 100)]),
    # Amount off per copy never goes below zero: 200 off each, a 150 book costs nothing.
    ("amount off per copy", lines(("a", 150, 2, "Kids"), ("b", 900, 1, "Kids")),
     [Promotion(8, "Two off Kids", "amount", "category", amount=200, category="Kids")], "", None,
     {"a": 300, "b": 200}, [(8, 500)]),
    # Percent rounded once per line: 10% of 3 × 333 = 99.9 -> 100.
    ("percent per line", lines(("a", 333, 3, "Kids")),
     [Promotion(9, "Ten off Kids", "percent", "category", percent=Decimal(10), category="Kids")], "", None,
     {"a": 100}, [(9, 100)]),
    # The staff discount comes last: 3 for 2 (600), then 5% of 1800 = 90 shared 750:600:450 = 37.5 -> 38,
    # 30, 22.5 -> 22 (a tie in remainders goes to the earlier line).
    ("staff discount last", lines(("a", 1000, 1, PB), ("b", 800, 1, PB), ("c", 600, 1, PB)),
     [THREE_FOR_TWO], "", StaffDiscount(Decimal(5), "damaged corner"), {"a": 288, "b": 230, "c": 172},
     [(1, 600), (None, 90)]),
    # Yen: 3 for 2 frees 900, shared 1500:1200:900 = 375, 300, 225; then 10% of 2700 = 270, shared
    # 1125:900:675 = 112.5 -> 113 (earlier on a tie), 90, 67.5 -> 67.
    ("yen", lines(("a", 1500, 1, PB), ("b", 1200, 1, PB), ("c", 900, 1, PB)), [THREE_FOR_TWO, FAIR10], "FAIR10",
     None, {"a": 488, "b": 390, "c": 292}, [(1, 900), (2, 270)]),
]


@pytest.mark.parametrize(("name", "cart", "promotions", "code", "staff", "discounts", "savings"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_pricing_table(name, cart, promotions, code, staff, discounts, savings):
    result = pricing.price(cart, promotions, code, staff)
    assert result.discounts == discounts
    assert [(s.promotion_id, s.amount) for s in result.savings] == savings
    # The split adds up to the savings exactly, and no line costs less than nothing.
    assert sum(result.discounts.values()) == result.total == sum(a for _, a in savings)
    assert all(0 <= result.discounts[ln["isbn"]] <= ln["unit_price"] * ln["quantity"] for ln in cart)


def test_every_order_is_tried_the_same_way_whatever_order_the_promotions_come_in():
    cart = lines(("a", 1000, 1, PB), ("b", 800, 1, PB), ("c", 600, 1, PB), ("d", 400, 1, PB))
    half = Promotion(3, "Half off a", "percent", "books", percent=Decimal(50), isbns=frozenset({"a"}))
    assert pricing.price(cart, [THREE_FOR_TWO, half]) == pricing.price(cart, [half, THREE_FOR_TWO])


@pytest.mark.parametrize(("code", "promotions", "cart", "state"), [
    ("FAIR10", [FAIR10], lines(("a", 1000, 1, PB)), pricing.CODE_APPLIED),
    # A bigger automatic cart promotion wins: the code is beaten, and said to be.
    ("FAIR10", [FAIR10, Promotion(4, "Fifteen", "percent", "cart", percent=Decimal(15))],
     lines(("a", 1000, 1, PB)), pricing.CODE_BEATEN),
    ("BIG", [Promotion(5, "Big spend", "amount", "cart", amount=500, min_spend=3000, code="BIG")],
     lines(("a", 1000, 1, PB)), pricing.CODE_SHORT),
    ("KIDS", [Promotion(6, "Kids", "percent", "category", percent=Decimal(20), category="Kids", code="KIDS")],
     lines(("a", 1000, 1, PB)), pricing.CODE_NOTHING),
    # No longer running (or used up): not among the promotions at all.
    ("FAIR10", [], lines(("a", 1000, 1, PB)), pricing.CODE_GONE),
])
def test_what_becomes_of_a_code(code, promotions, cart, state):
    assert pricing.price(cart, promotions, code).code_state == state


@pytest.mark.parametrize(("rates", "inclusive", "subtotal", "tax_amount", "total"), [
    # Tax added on top, on what was paid: 1620 × 8.875% = 143.775 -> 144.
    ({"standard": Decimal("8.875")}, False, 1620, 144, 1764),
    # VAT included in the prices: 1620 × 20/120 = 270 of the 1620 paid.
    ({"standard": Decimal(20)}, True, 1620, 270, 1620),
])
def test_tax_follows_the_discount(rates, inclusive, subtotal, tax_amount, total):
    catalog = {isbn: Book(isbn, isbn, f"Book {isbn}", "A. Writer", price, 5, category=PB)
               for isbn, price in (("9780000000002", 1000), ("9780000000019", 800), ("9780000000026", 600))}
    items = dict.fromkeys(catalog, 1)
    priced = cartlib.price(items, catalog, dict.fromkeys(catalog, 5), rates, inclusive,
                           cartlib.Offers((THREE_FOR_TWO, FAIR10), "FAIR10"))
    assert (priced.gross, priced.discount, priced.subtotal, priced.tax, priced.total) == \
        (2400, 780, subtotal, tax_amount, total)
    assert [ln["total"] for ln in priced.lines] == [675, 540, 405]  # Book 978..02, ..19, ..26 by title
    # A refund of the 800 book gives back its share: 540, and with tax added its tax on 540 in turn.
    sold = [{"isbn": ln["isbn"], "unit_price": ln["unit_price"], "quantity": 1, "paid": ln["total"], "returned": 0,
             "tax_class": "standard"} for ln in priced.lines]
    taxes = [{"tax_class": t.tax_class, "rate": str(t.rate)} for t in priced.taxes]
    back = tax.returns_value(sold, taxes, {"9780000000019": 1}, inclusive)
    assert back == (540 if inclusive else 540 + 48)  # 540 × 8.875% = 47.925 -> 48
    assert tax.returns_value(sold, taxes, {ln["isbn"]: 1 for ln in sold}, inclusive) == total


def test_the_split_is_exact_and_never_above_a_weight():
    assert pricing.split(100, [1, 1, 1]) == [34, 33, 33]
    assert pricing.split(0, [5, 5]) == [0, 0]
    assert pricing.split(7, [0, 10, 0]) == [0, 7, 0]
    assert pricing.split(10, [10, 0]) == [10, 0]


@pytest.mark.parametrize(("typed", "kept"), [("fair10", "FAIR10"), (" FAIR 10 ", "FAIR10"), ("ab", ""),
                                             ("FAIR_10", ""), ("x" * 41, "")])
def test_codes_are_kept_in_one_spelling(typed, kept):
    assert pricing.normalize_code(typed) == kept
