"""The customer's screens at the three sizes a shop buys (issue #25), in Chromium: every screen of a purchase with
a decline checked by tests/support/screens.py, the portrait bottom bar, the attract screen and the confirmation
above the fold, sold-out books shown as such (also when another counter sells the last copy), generated covers,
the cart's steppers, the favicon and the first covers loaded eagerly."""
import re
import shutil

import pytest
from playwright.sync_api import expect

from kiosk.ledger import stock
from tests.e2e.shopper import (
    CARD_DECLINED,
    CARD_OK,
    add_to_cart,
    catalog_rows,
    expect_confirmation,
    open_checkout,
    pay,
    pick_books,
    put_in_cart,
    usd,
)
from tests.support.screens import SIZES, problems
from tests.support.settings import SAMPLE

PORTRAIT = SIZES["portrait 1080x1920"]


def journey(page):
    """Walk a purchase with a declined card first; yields the name of each screen as it is shown."""
    [book] = pick_books(1)
    page.goto("/attract")
    yield "attract"
    page.goto("/")
    yield "home"
    page.goto("/search?q=the")
    yield "search results"
    add_to_cart(page, book["isbn"])
    page.wait_for_load_state("load")
    yield "book"
    page.goto("/cart")
    yield "cart"
    open_checkout(page)
    yield "checkout"
    pay(page, CARD_DECLINED)
    expect(page.locator("#payment-message")).to_be_visible()
    expect(page.locator("#pay")).to_be_enabled()
    yield "a declined card"
    pay(page, CARD_OK)
    expect_confirmation(page)
    page.wait_for_load_state("load")
    yield "confirmation"


@pytest.mark.parametrize("size", SIZES)
def test_every_customer_screen_fits_each_size(size, axe, open_page, kiosk, record_property):
    page = open_page(kiosk, viewport=SIZES[size])
    found = {name: problems(page) for name in journey(page)}
    wrong = {name: items for name, items in found.items() if items}
    record_property(f"kiosk customer screens at {size}",
                    f"{len(found)} screens, {sum(map(len, wrong.values()))} problems")
    assert not wrong, "\n".join(f"{name}: {item}" for name, items in wrong.items() for item in items)


def on_glass(locator, height):
    """The element is shown and wholly on the glass as the page is (no scrolling)."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    return box["y"] >= 0 and box["y"] + box["height"] <= height and box["width"] > 0


def test_portrait_keeps_the_total_and_checkout_in_reach(open_page, kiosk):
    page = open_page(kiosk, viewport=PORTRAIT)
    [book] = pick_books(1)
    add_to_cart(page, book["isbn"], 2)
    total = usd(2 * float(book["price"]))
    for path in ("/", f"/book/{book['isbn']}", "/cart"):
        page.goto(path)
        bar = page.get_by_role("region", name="Your cart")
        assert on_glass(bar, PORTRAIT["height"]), path
        expect(bar).to_contain_text(total)
        checkout = bar.get_by_role("link", name="Checkout")
        assert on_glass(checkout, PORTRAIT["height"]), path
    checkout.click()
    expect(page.get_by_role("heading", name="Pay", exact=True)).to_be_visible()


@pytest.mark.parametrize("size", SIZES)
def test_touch_to_start_is_on_the_glass(size, open_page, kiosk):
    page = open_page(kiosk, viewport=SIZES[size])
    page.goto("/attract")
    assert on_glass(page.get_by_text("Touch to start"), SIZES[size]["height"])


@pytest.mark.parametrize("size", SIZES)
def test_the_confirmation_leads_with_a_tick_the_total_and_done(size, open_page, kiosk):
    page = open_page(kiosk, viewport=SIZES[size])
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    pay(page, CARD_OK)
    amount, _ = expect_confirmation(page)
    assert amount == usd(float(book["price"]))
    height = SIZES[size]["height"]
    for shown in (page.locator(".paid-tick"), page.locator("#amount-charged"),
                  page.get_by_role("button", name="No receipt, done"), page.get_by_role("button", name="Email")):
        assert on_glass(shown, height), shown
    # The shop's address and the details come after what the customer came for.
    assert page.locator("#shop-address").count() == 0 or \
        page.locator("#shop-address").bounding_box()["y"] > page.locator("#done").bounding_box()["y"]


def test_a_typed_card_decline_says_what_to_do_next(page, kiosk):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    pay(page, CARD_DECLINED)
    expect(page.locator("#payment-message")).to_have_text(
        "Your card was declined. Try another card, or ask a member of staff to pay at the counter.")


def write_catalog(tmp_path):
    """A catalog with a book that has no cover and one that is sold out (and no cover either)."""
    rows = catalog_rows()[:3]
    catalog = tmp_path / "shop.csv"
    shutil.copytree(SAMPLE.parent / "covers", tmp_path / "covers")
    lines = ["isbn,title,author,price,stock,cover"]
    lines += [f'{r["isbn"]},"{r["title"]}",{r["author"]},{r["price"]},{r["stock"]},{r["cover"]}' for r in rows]
    lines.append("9780306406157,The Quiet Shelf,Ada Example,9.00,0,")
    catalog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


SOLD = "9780306406157"


def card_of(page, title):
    return page.locator(".grid .card").filter(has=page.locator(".title", has_text=title))


def test_a_sold_out_book_shows_the_badge_and_no_add_button(start_kiosk, open_page, tmp_path):
    write_catalog(tmp_path)
    kiosk = start_kiosk(KIOSK_CATALOG=str(tmp_path / "shop.csv"))
    page = open_page(kiosk)
    for path in ("/", "/search?q=quiet"):
        page.goto(path)
        card = card_of(page, "The Quiet Shelf")
        expect(card.get_by_text("Sold out")).to_be_visible()
        expect(card.get_by_role("button")).to_have_count(0)
    page.goto("/")
    page.locator("#q").fill("quiet")  # the live results too
    expect(page).to_have_url(re.compile(r"/search\?q=quiet$"))
    expect(card_of(page, "The Quiet Shelf").get_by_text("Sold out")).to_be_visible()
    expect(card_of(page, "The Quiet Shelf").get_by_role("button")).to_have_count(0)
    page.goto(f"/book/{SOLD}")
    expect(page.locator(".book").get_by_text("Sold out")).to_be_visible()
    expect(page.get_by_role("button", name="Add to cart")).to_have_count(0)
    response = page.request.post("/cart/add", form={"isbn": SOLD, "quantity": "1"}, headers={
        "X-CSRFToken": page.locator("meta[name=csrf-token]").get_attribute("content"), "Accept": "application/json"})
    assert response.status == 409  # the server still refuses it
    answer = page.request.get(f"/sold-out?isbn={SOLD}&isbn=978-0-306-40615-7&isbn=%3Cscript%3E&isbn=9783434922599")
    assert answer.status == 200 and answer.json() == {"soldOut": [SOLD]}  # nonsense is ignored, not a 500


def test_a_book_sold_at_the_other_counter_turns_sold_out_without_a_reload(start_kiosk, open_page, tmp_path):
    [first, *_] = write_catalog(tmp_path)
    kiosk = start_kiosk(KIOSK_CATALOG=str(tmp_path / "shop.csv"))
    grid = open_page(kiosk)
    grid.goto("/")
    book_page = open_page(kiosk)
    book_page.goto(f"/book/{first['isbn']}")
    card = card_of(grid, first["title"])
    expect(card.get_by_role("button", name=re.compile("Add to cart"))).to_be_visible()
    with kiosk.app.extensions["kiosk"].ledger.connect() as db:  # the shared ledger, as the other counter writes it
        stock.count_shelf(db, first["isbn"], 0, "sold at the other counter", "test")
    expect(card.get_by_text("Sold out")).to_be_visible(timeout=8000)
    expect(card.get_by_role("button")).to_have_count(0)
    expect(book_page.locator(".book").get_by_text("Sold out")).to_be_visible(timeout=8000)
    expect(book_page.get_by_role("button", name="Add to cart")).to_be_hidden()


def test_a_book_without_a_cover_gets_one_with_its_title_and_author(start_kiosk, open_page, tmp_path):
    rows = write_catalog(tmp_path)
    kiosk = start_kiosk(KIOSK_CATALOG=str(tmp_path / "shop.csv"))
    page = open_page(kiosk)
    page.goto("/")
    cover = card_of(page, "The Quiet Shelf").locator(".made-cover")
    expect(cover).to_contain_text("The Quiet Shelf")
    expect(cover).to_contain_text("Ada Example")
    assert card_of(page, rows[0]["title"]).locator(".made-cover").count() == 0  # a real cover stays
    page.goto(f"/book/{SOLD}")
    cover = page.locator(".book .made-cover")
    expect(cover).to_contain_text("The Quiet Shelf")
    details = page.locator(".book .details").bounding_box()
    assert details["width"] >= 400  # the details have their own column, not the cover's
    put_in_cart(page, rows[0]["isbn"])
    page.goto("/cart")
    expect(page.locator("table.cart img")).to_have_count(1)  # a thumbnail per line


def test_the_cart_steppers_change_the_quantity_and_the_total(page, kiosk):
    [book] = pick_books(1, min_stock=3)
    put_in_cart(page, book["isbn"])
    page.goto("/cart")
    more = page.get_by_role("button", name=f"One more: {book['title']}")
    assert more.bounding_box()["width"] >= 48 and more.bounding_box()["height"] >= 48
    more.click()
    expect(page.locator("#cart-total")).to_have_text(usd(2 * float(book["price"])))
    expect(page.locator(f'tr[data-isbn="{book["isbn"]}"] .qty-value')).to_have_text("2")
    page.get_by_role("button", name=f"One fewer: {book['title']}").click()
    expect(page.locator("#cart-total")).to_have_text(usd(float(book["price"])))
    expect(page.locator(f'tr[data-isbn="{book["isbn"]}"] .qty-value')).to_have_text("1")


def test_the_favicon_is_served(page, kiosk):
    response = page.request.get("/favicon.ico")
    assert response.status == 200 and response.headers["content-type"].startswith("image/")
    page.goto("/")
    assert page.locator("link[rel=icon]").count() == 1


def test_the_first_row_of_covers_is_not_lazy(page, kiosk):
    page.goto("/")
    images = page.locator(".grid .card img")
    assert images.first.get_attribute("loading") != "lazy"
    assert images.first.get_attribute("fetchpriority") == "high"
    assert images.last.get_attribute("loading") == "lazy"  # below the fold they wait
