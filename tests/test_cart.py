"""Cart rules: quantities limited by stock, prices only from the catalog."""
import pytest

from kiosk.core import cart as cartlib
from kiosk.core.catalog import Book, Catalog


def book(isbn13, price=1000, title=None):
    return Book(isbn=isbn13, isbn13=isbn13, title=title or isbn13, author="A", price=price, stock=5)


A, B = book("9780306406157", 1250, "Alpha"), book("9780140449136", 999, "Beta")
CATALOG = Catalog(path=".", currency="USD", books=[A, B])


def test_add_accumulates_up_to_stock():
    cart = {}
    assert cartlib.add(cart, A, 2, on_hand=3) == 2
    with pytest.raises(cartlib.CartError, match="Only 3"):
        cartlib.add(cart, A, 2, on_hand=3)
    assert cart == {A.isbn13: 2}


def test_sold_out_cannot_be_added():
    with pytest.raises(cartlib.CartError, match="sold out"):
        cartlib.add({}, A, 1, on_hand=0)


@pytest.mark.parametrize("raw", ["0", "-1", "1.5", "abc", "", None, "21", "9999", " 2 x"])
def test_quantity_must_be_a_whole_number_in_range(raw):
    with pytest.raises(cartlib.CartError):
        cartlib.parse_quantity(raw)


def test_quantity_parses():
    assert cartlib.parse_quantity(" 3 ") == 3 and cartlib.parse_quantity(20) == 20


def test_line_cap():
    cart = {f"x{i}": 1 for i in range(cartlib.MAX_LINES)}
    with pytest.raises(cartlib.CartError, match="at most"):
        cartlib.add(cart, A, 1, on_hand=5)


def test_set_and_remove():
    cart = {A.isbn13: 1}
    cartlib.set_quantity(cart, A, 4, on_hand=4)
    assert cart[A.isbn13] == 4
    with pytest.raises(cartlib.CartError):
        cartlib.set_quantity(cart, B, 1, on_hand=4)
    cartlib.remove(cart, A.isbn13)
    cartlib.remove(cart, A.isbn13)
    assert cart == {}


def test_price_uses_catalog_prices_and_trims_what_cannot_be_sold():
    cart = {A.isbn13: 3, B.isbn13: 2, "9781234567897": 1}
    priced = cartlib.price(cart, CATALOG, {A.isbn13: 2, B.isbn13: 5})
    assert [(ln["title"], ln["quantity"], ln["total"]) for ln in priced.lines] == \
        [("Alpha", 2, 2500), ("Beta", 2, 1998)]
    assert priced.total == 4498 and priced.count == 4
    assert cart == {A.isbn13: 2, B.isbn13: 2}
    assert len(priced.notes) == 2


def test_sold_out_line_is_removed_with_a_note():
    cart = {A.isbn13: 1}
    priced = cartlib.price(cart, CATALOG, {A.isbn13: 0})
    assert priced.lines == [] and cart == {} and "sold out" in priced.notes[0]


def test_fingerprint_changes_with_the_cart():
    one = cartlib.price({A.isbn13: 1}, CATALOG, {A.isbn13: 5})
    two = cartlib.price({A.isbn13: 2}, CATALOG, {A.isbn13: 5})
    assert one.fingerprint() != two.fingerprint()
    assert one.fingerprint() == cartlib.price({A.isbn13: 1}, CATALOG, {A.isbn13: 5}).fingerprint()
