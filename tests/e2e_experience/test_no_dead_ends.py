"""A kiosk not set up yet, in Chromium at the three screen sizes: the customer presses Checkout and is asked to pay
at the counter (a screen that fits and passes axe), and the staff corner leads to Set up this kiosk and its steps."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.shopper import add_to_cart, cart_summary, pick_books, total_of, usd
from tests.support.screens import SIZES, problems


@pytest.mark.parametrize("size", SIZES)
def test_checkout_before_setup_says_pay_at_the_counter(size, axe, start_kiosk, open_page, record_property):
    kiosk = start_kiosk(stripe=False)
    page = open_page(kiosk, viewport=SIZES[size])
    [book] = pick_books(1)
    add_to_cart(page, book["isbn"], 2)
    page.goto("/", wait_until="domcontentloaded")
    page.locator("#header-checkout").click()
    expect(page.get_by_role("heading", name="Please pay at the counter", level=1)).to_be_visible()
    expect(page.locator("#counter-total")).to_have_text(usd(total_of([(book, 2)])))
    shown = page.locator("main").inner_text()
    assert not re.search(r"STRIPE_|\.env|restart|Settings|Set up this kiosk", shown), shown
    found = problems(page)
    record_property(f"kiosk pay-at-the-counter screen at {size}", f"{len(found)} problems")
    assert found == []
    assert page.watch.stripe_js_loads == 0 and kiosk.orders() == []

    page.get_by_role("link", name="Back to the books").click()
    assert cart_summary(page)["count"] == 2  # the cart waits for the counter
    page.locator("#staff-corner").click()
    expect(page.get_by_role("heading", name="Set up this kiosk", level=1)).to_be_visible()
    notice = page.locator("#setup-notice")
    expect(notice).to_contain_text("press Staff in the corner")
    expect(notice).to_contain_text("printed in the terminal")
