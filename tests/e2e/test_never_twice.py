"""Never charge a book twice, in Chromium: a scan while the card is being confirmed, two tabs on one cart,
and back/forward around a payment. Each test compares what Stripe charged with what the ledger recorded
and what stock did."""
import re

from playwright.sync_api import expect

from tests.e2e.shopper import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    cart_summary,
    cents,
    expect_confirmation,
    open_checkout,
    pay,
    pick_books,
    put_in_cart,
    total_of,
    usd,
)
from tests.e2e_experience.test_scanner import scan


def charges(stripe_server):
    """Succeeded charges as {order reference: [amounts]}."""
    intents = {pi.id: pi for pi in stripe_server.intents()}
    found = {}
    for charge in stripe_server.charges():
        if charge.status == "succeeded":
            found.setdefault(intents[charge.payment_intent].metadata["order_ref"], []).append(charge.amount)
    return found


def paid(kiosk):
    return {o["reference"]: o["amount"] for o in kiosk.orders() if o["status"] == "paid"}


def on_hand(kiosk, isbn):
    return kiosk._query("SELECT on_hand FROM stock WHERE isbn = ?", isbn)[0]["on_hand"]


def test_a_scan_while_the_card_is_confirmed_never_charges_a_book_again(page, kiosk, stripe_server):
    first, second = pick_books(2)
    put_in_cart(page, first["isbn"])
    open_checkout(page)
    pay(page, CARD_3DS)
    challenge = page.get_by_role("dialog", name="3D Secure 2 Test Page")
    expect(challenge).to_be_visible()  # the bank is asking: the card is being confirmed
    scan(page, second["isbn"])
    expect(page.locator("#scan-toast")).to_contain_text("Finish or cancel this payment first")
    page.wait_for_timeout(1500)  # longer than the scanner's reload delay: the page must stay
    expect(challenge).to_be_visible()
    challenge.get_by_role("button", name="Complete").click()
    amount, _intent_id = expect_confirmation(page)
    price = cents(total_of([(first, 1)]))
    assert amount == usd(total_of([(first, 1)]))
    [reference] = paid(kiosk)
    assert charges(stripe_server) == {reference: [price]} and paid(kiosk) == {reference: price}
    assert kiosk.order_lines(kiosk.orders()[0]["id"]) == {first["isbn"]: 1}
    assert on_hand(kiosk, first["isbn"]) == int(first["stock"]) - 1
    assert on_hand(kiosk, second["isbn"]) == int(second["stock"])
    assert cart_summary(page)["count"] == 0


def test_two_tabs_on_one_cart_pay_once(page, open_page, kiosk, stripe_server):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    pay(page, CARD_3DS)
    challenge = page.get_by_role("dialog", name="3D Secure 2 Test Page")
    expect(challenge).to_be_visible()
    other = page.context.new_page()  # the same customer, a second tab
    other.goto("/cart", wait_until="domcontentloaded")
    expect(other.locator("#cart-paying")).to_contain_text("This cart is being paid for")
    other.goto("/checkout/", wait_until="domcontentloaded")
    expect(other.locator("#pay")).to_be_enabled()
    challenge.get_by_role("button", name="Complete").click()
    expect_confirmation(page)
    pay(other, CARD_OK)  # the second tab presses Pay for a cart that is paid for already
    expect(other).to_have_url(re.compile(r"/(cart|checkout/complete\?ref=BK-.*)$"))
    price = cents(total_of([(book, 1)]))
    [reference] = paid(kiosk)
    assert charges(stripe_server) == {reference: [price]} and paid(kiosk) == {reference: price}
    assert len(stripe_server.intents()) == 1
    assert on_hand(kiosk, book["isbn"]) == int(book["stock"]) - 1


def test_back_and_forward_around_a_payment_never_pay_again(page, kiosk, stripe_server):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    page.goto("/cart", wait_until="domcontentloaded")
    open_checkout(page)
    pay(page, CARD_DECLINED)  # the intent exists now, and the card was declined
    expect(page.locator("#payment-message")).to_contain_text("declined")
    page.go_back(wait_until="domcontentloaded")  # to the cart: it is frozen while that payment is open
    expect(page.locator("#cart-paying")).to_be_visible()
    page.go_forward(wait_until="domcontentloaded")  # back to the payment: the same attempt and intent
    expect(page.locator("#pay")).to_be_enabled()
    pay(page, CARD_OK)
    expect_confirmation(page)
    page.go_back(wait_until="domcontentloaded")  # from the receipt to the checkout: nothing left to pay
    expect(page).to_have_url(kiosk.url + "/cart")
    page.go_forward(wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Thank you! Payment received.")).to_be_visible()
    price = cents(total_of([(book, 1)]))
    [reference] = paid(kiosk)
    assert charges(stripe_server) == {reference: [price]} and paid(kiosk) == {reference: price}
    assert len(stripe_server.intents()) == 1
    assert on_hand(kiosk, book["isbn"]) == int(book["stock"]) - 1


def test_leaving_the_bank_page_then_changing_the_cart_cancels_that_payment(page, kiosk, stripe_server):
    first, second = pick_books(2)
    put_in_cart(page, first["isbn"])
    page.goto("/cart", wait_until="domcontentloaded")
    open_checkout(page)
    pay(page, CARD_3DS)
    expect(page.get_by_role("dialog", name="3D Secure 2 Test Page")).to_be_visible()
    page.go_back(wait_until="domcontentloaded")  # the customer leaves the bank's page unanswered
    expect(page.locator("#cart-paying")).to_be_visible()
    page.locator("#cancel-payment").click()
    expect(page.locator("#messages")).to_contain_text("The payment was canceled; nothing was charged.")
    put_in_cart(page, second["isbn"])
    open_checkout(page)
    pay(page, CARD_OK)
    expect_confirmation(page)
    price = cents(total_of([(first, 1), (second, 1)]))
    [reference] = paid(kiosk)
    assert charges(stripe_server) == {reference: [price]} and paid(kiosk) == {reference: price}
    assert sorted(i.status for i in stripe_server.intents()) == ["canceled", "succeeded"]
    assert [o["status"] for o in kiosk.orders()] == ["canceled", "paid"]
    assert on_hand(kiosk, first["isbn"]) == int(first["stock"]) - 1
