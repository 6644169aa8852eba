"""The idle reset in Chromium, on Playwright's clock: countdown, "I'm still here", and a reset that empties the
cart, cancels the PaymentIntent in localstripe and leaves "back" with nothing of the last customer."""
from playwright.sync_api import expect

from tests.e2e.shopper import (
    CARD_DECLINED,
    CARD_OK,
    add_to_cart,
    cart_summary,
    expect_confirmation,
    open_checkout,
    pay,
    pick_books,
)

IDLE = 10  # KIOSK_IDLE_SECONDS for these tests (its smallest allowed value)
COUNTDOWN = 15  # the warning's countdown, in webui/templates/_idle.html


def warning(page):
    return page.get_by_role("alertdialog", name="Are you still there?")


def nothing_of(page, book, kiosk):
    """The page shows nothing of the customer who had `book` in the cart."""
    assert page.url.startswith(kiosk.url)
    expect(page.locator("#payment-element")).to_have_count(0)
    expect(page.locator("#order-ref")).to_have_count(0)
    expect(page.get_by_text(book["title"])).to_have_count(0)
    badge = page.locator("#cart-count")
    if badge.count():
        expect(badge).to_have_text("0")


def shopping(start_kiosk, open_page):
    """A kiosk with a short idle timeout, a page on Playwright's clock, and a book in the cart."""
    kiosk = start_kiosk(KIOSK_IDLE_SECONDS=str(IDLE))
    page = open_page(kiosk)
    page.clock.install()
    [book] = pick_books(1)
    add_to_cart(page, book["isbn"])
    return kiosk, page, book


def test_idle_reset_cancels_the_payment_and_leaves_nothing_behind(start_kiosk, open_page, stripe_server):
    kiosk, page, book = shopping(start_kiosk, open_page)
    open_checkout(page)
    pay(page, CARD_DECLINED)  # the PaymentIntent now exists, unpaid; then the customer walks away
    expect(page.locator("#payment-message")).to_contain_text("declined")
    [intent] = stripe_server.intents()
    assert intent.status == "requires_payment_method"

    page.clock.fast_forward((IDLE - 2) * 1000)
    expect(warning(page)).to_be_hidden()
    page.clock.fast_forward(3000)
    expect(warning(page)).to_be_visible()
    expect(page.get_by_role("button", name="I’m still here")).to_be_focused()
    page.clock.fast_forward(COUNTDOWN * 1000)

    expect(page).to_have_url(kiosk.url + "/attract")
    expect(page.get_by_text("Touch to start")).to_be_visible()
    assert stripe_server.client().v1.payment_intents.retrieve(intent.id).status == "canceled"
    assert [o["status"] for o in kiosk.orders()] == ["canceled"]
    assert cart_summary(page)["count"] == 0
    for _ in range(2):  # "back" leads to nothing of the last customer
        page.go_back()
        nothing_of(page, book, kiosk)
    assert page.evaluate("sessionStorage.length") == 0


def test_i_am_still_here_keeps_the_cart(start_kiosk, open_page):
    _, page, book = shopping(start_kiosk, open_page)
    page.clock.fast_forward((IDLE + 5) * 1000)
    expect(warning(page)).to_be_visible()
    expect(page.locator("#idle-count")).to_have_text(str(COUNTDOWN - 5))
    page.get_by_role("button", name="I’m still here").click()
    expect(warning(page)).to_be_hidden()
    page.clock.fast_forward((IDLE - 1) * 1000)  # the timer started again from the tap
    expect(warning(page)).to_be_hidden()
    assert page.url.endswith(f"/book/{book['isbn']}") and cart_summary(page)["count"] == 1


def test_the_timer_runs_across_pages_that_reload_themselves(start_kiosk, open_page):
    _, page, _ = shopping(start_kiosk, open_page)
    page.clock.fast_forward(6000)
    page.reload()  # a reload is not the customer: the idle time so far still counts
    page.clock.fast_forward(5000)
    expect(warning(page)).to_be_visible()


def test_done_on_the_receipt_starts_over_and_the_receipt_is_gone(page, kiosk, stripe_server):
    [book] = pick_books(1)
    add_to_cart(page, book["isbn"])
    open_checkout(page)
    pay(page, CARD_OK)
    expect_confirmation(page)
    receipt = page.url
    page.get_by_role("button", name="Done").click()
    expect(page).to_have_url(kiosk.url + "/attract")
    page.go_back()
    nothing_of(page, book, kiosk)
    response = page.goto(receipt)  # the receipt's own address shows it no more
    assert response.status == 404 and response.headers["cache-control"] == "no-store"
    expect(page.get_by_role("heading", name="This receipt is no longer shown on the kiosk.")).to_be_visible()
    assert [o["status"] for o in kiosk.orders()] == ["paid"]
