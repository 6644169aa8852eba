"""The on-screen keyboard never covers what is typed, in Chromium at the three sizes a shop buys: on every page
with a text field (customer and staff, the first-run form too) a field is tapped, typed into with the keyboard's
keys, and must stay on the glass above the keyboard; on the tablet the live search results stay in sight; and a
100-character Stripe-like key typed by touch is shown to staff and corrected mid-way before saving."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.shopper import CARD_OK, expect_confirmation, open_checkout, pay, pick_books, put_in_cart
from tests.e2e.test_setup import new_kiosk  # noqa: F401 (a fixture: the kiosk in an empty folder)
from tests.support.screens import SIZES, UNDER_KEYBOARD

PIN = "24681357"
# A secret key as long as Stripe's (about 100 characters), in the keyboard's characters, capitals included.
LONG_KEY = "sk_test_51Qx" + "".join("AbCdEfGh0123456789jkLmNoPqRsTuVwXyZ"[(i * 11) % 35] for i in range(88))


def osk(page):
    return page.get_by_role("complementary", name="On-screen keyboard")


def press(page, text):
    """Type `text` with the on-screen keyboard's keys (shift before a capital letter)."""
    keyboard = osk(page)
    for char in text:
        if char.isupper():
            keyboard.locator('[data-action="shift"]').tap()
        keyboard.locator(f'[data-key="{char.lower()}"]').tap()


def type_by_touch(page, selector, text, where):
    """Tap the field, type `text` on the on-screen keyboard (after clearing it), and check the field stays clear
    of the keyboard; the keyboard is hidden again at the end. Returns what UNDER_KEYBOARD found."""
    field = page.locator(selector)
    field.tap()
    expect(osk(page)).to_be_visible()
    expect(field).to_be_focused()
    osk(page).get_by_role("button", name="Clear").tap()
    press(page, text)
    expect(field).to_have_value(text)
    found = [f"{where} {selector}: {p}" for p in page.evaluate(UNDER_KEYBOARD)]
    osk(page).get_by_role("button", name="Hide").tap()
    expect(osk(page)).to_be_hidden()
    return found


def sign_in(page):
    page.goto("/staff/", wait_until="domcontentloaded")
    found = type_by_touch(page, "#pin", PIN, "staff sign-in")
    page.get_by_role("button", name="Unlock").tap()
    expect(page.get_by_role("button", name="Lock")).to_be_visible()
    return found


def results_in_sight(page):
    """The first live search result's cover and title are on the glass between the header and the keyboard."""
    return page.evaluate("""() => {
      const k = document.getElementById('osk').getBoundingClientRect().top;
      const header = document.querySelector('body > header').getBoundingClientRect().bottom;
      const card = document.querySelector('#results .card'), title = card && card.querySelector('.title');
      if (!title) return 'no result shown';
      const c = card.getBoundingClientRect(), t = title.getBoundingClientRect();
      const at = [c.top, t.bottom, header, k].map(Math.round);
      return c.top >= header - 1 && t.bottom <= k + 1 ? '' :
        `result ${at[0]}-${at[1]}, header ends ${at[2]}, keyboard from ${at[3]}`;
    }""")


@pytest.mark.parametrize("size", SIZES)
def test_the_keyboard_never_covers_the_field(size, touch, start_kiosk, open_page, new_kiosk,  # noqa: F811
                                             record_property):
    kiosk = start_kiosk(KIOSK_STAFF_PIN=PIN)
    page = open_page(kiosk, viewport=SIZES[size])
    found, fields = [], 0

    def check(selector, text, where):
        nonlocal fields
        fields += 1
        found.extend(type_by_touch(page, selector, text, where))

    page.goto("/", wait_until="domcontentloaded")
    page.locator("#q").tap()
    press(page, "time")
    expect(page.locator("#results")).to_contain_text("The Time Machine")  # search as you type
    page.wait_for_function("() => document.location.search === '?q=time'")  # the last keystroke's results
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    assert results_in_sight(page) == "", f"{size}: live results hidden: {results_in_sight(page)}"
    found.extend(f"home {p}" for p in page.evaluate(UNDER_KEYBOARD))
    page.goto("/search?q=war", wait_until="domcontentloaded")
    check("#q", "war", "search page")
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    pay(page, CARD_OK)
    expect_confirmation(page)
    check("#receipt-email", "ann@example.com", "confirmation")

    found.extend(sign_in(page))
    fields += 1
    page.goto("/staff/orders", wait_until="domcontentloaded")
    check("#order-q", "pi_123", "orders")
    page.goto("/staff/settings", wait_until="domcontentloaded")
    for selector, text in (("#f-shop_name", "Corner Books"), ("#f-secret_key", "sk_test_abc"),
                           ("#f-publishable_key", "pk_test_abc"), ("#tax-class-1", "standard"),
                           ("#tax-percent-1", "8.875"), ("#address-line-1", "12 Main St"),
                           ("#address-line-4", "Springfield"), ("#f-tax_id", "GB-123")):
        check(selector, text, "settings")
    page.goto("/staff/catalog", wait_until="domcontentloaded")
    check("#add-isbn", "9780141439518", "catalog")
    check("#catalog-q", "wells", "catalog")
    page.goto(f"/staff/catalog/book/{book['isbn']}", wait_until="domcontentloaded")
    check("#edit-title", "A new title", "book edit")
    check("#count-note", "shelf count", "book edit")
    page.goto("/staff/stock", wait_until="domcontentloaded")
    check("#stock-q", "time", "stock")
    page.goto("/staff/reader", wait_until="domcontentloaded")
    check("#registration-code", "simulated-wpe", "reader")
    check("#address-postal_code", "62701", "reader")

    fresh = new_kiosk()
    page = open_page(fresh, viewport=SIZES[size])  # check() types on this page now
    page.goto(fresh.app.extensions["kiosk"].screen_path("/staff/setup"), wait_until="domcontentloaded")
    for selector, text in (("#f-shop_name", "Corner Books"), ("#f-secret_key", "sk_test_abc"),
                           ("#f-pin", "13572468"), ("#f-pin_again", "13572468")):
        check(selector, text, "first-run setup")
    record_property(f"kiosk fields typed on the on-screen keyboard at {size}", f"{fields}, {len(found)} covered")
    assert found == []


def test_a_long_key_is_shown_and_corrected_before_saving(touch, start_kiosk, open_page):
    page = open_page(start_kiosk(KIOSK_STAFF_PIN=PIN), viewport=SIZES["tablet 1280x800"])
    sign_in(page)
    page.goto("/staff/settings", wait_until="domcontentloaded")
    field, preview = page.locator("#f-secret_key"), osk(page).locator(".osk-value")
    field.tap()
    # A slip at character 60: an extra "x", noticed at the end.
    press(page, LONG_KEY[:60] + "x" + LONG_KEY[60:])
    expect(preview).to_have_text("•" * 101)  # a password field shows dots until Show is tapped
    page.get_by_role("button", name="Show", exact=True).tap()
    expect(page.get_by_role("button", name="Show", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(field).to_be_focused()
    expect(preview).to_have_text(LONG_KEY[:60] + "x" + LONG_KEY[60:])  # what was typed, every character
    assert page.evaluate(UNDER_KEYBOARD) == []
    for _ in range(len(LONG_KEY) - 60):
        osk(page).get_by_role("button", name="Move the cursor left").tap()
    assert field.evaluate("el => el.selectionStart") == 61
    osk(page).get_by_role("button", name="Delete the last letter").tap()
    expect(field).to_have_value(LONG_KEY)
    expect(preview).to_have_text(LONG_KEY)
    assert field.evaluate("el => el.selectionStart") == 60  # the caret stays where the slip was
    osk(page).get_by_role("button", name="Move the cursor right").tap()
    press(page, "Q")
    expect(field).to_have_value(LONG_KEY[:61] + "Q" + LONG_KEY[61:])  # typed at the caret, not at the end
    osk(page).get_by_role("button", name="Delete the last letter").tap()
    expect(field).to_have_value(LONG_KEY)
    assert len(LONG_KEY) == 100


def test_a_usb_keyboard_and_a_paste_still_work_and_the_preview_follows(touch, start_kiosk, open_page):
    page = open_page(start_kiosk(KIOSK_STAFF_PIN=PIN), viewport=SIZES["landscape 1920x1080"])
    sign_in(page)
    page.goto("/staff/settings", wait_until="domcontentloaded")
    field = page.locator("#f-publishable_key")
    field.tap()
    osk(page).get_by_role("button", name="Clear").tap()
    page.keyboard.type("pk_test_")
    page.keyboard.insert_text("PastedPart")  # what a paste does to the field
    expect(field).to_have_value("pk_test_PastedPart")
    expect(osk(page).locator(".osk-value")).to_have_text("pk_test_PastedPart")
    expect(osk(page).locator(".osk-label")).to_have_text("Publishable key")
    assert re.fullmatch(r"\d+px", page.evaluate("document.body.style.paddingBottom"))  # room below the page
