"""What the checkout refuses or ignores in Chromium: forged prices, an empty cart, a kiosk without Stripe keys."""
from playwright.sync_api import expect

from tests.e2e.shopper import (
    CARD_OK,
    add_to_cart,
    cart_summary,
    cents,
    expect_confirmation,
    open_checkout,
    pay,
    pick_books,
    post_json,
    put_in_cart,
    total_of,
    usd,
)
from tests.support.stripe_api import STRIPE_JS_URL


def test_a_forged_amount_or_price_is_ignored(page, kiosk, stripe_server):
    first, second = pick_books(2)
    add_to_cart(page, first["isbn"])
    # A hand-made add-to-cart with a price of one cent: the server prices from the catalog.
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    forged = page.request.post("/cart/add", headers={"X-CSRFToken": csrf, "Accept": "application/json"},
                               form={"isbn": second["isbn"], "quantity": "1", "price": "0.01", "amount": "1"})
    assert forged.ok
    expected = total_of([(first, 1), (second, 1)])
    assert cart_summary(page)["total"] == cents(expected)

    open_checkout(page)
    attempt = page.evaluate("() => JSON.parse(document.getElementById('stripe-config').textContent).attempt")
    status, answer = post_json(page, "/checkout/intent", {
        "attempt": attempt, "amount": 1, "currency": "jpy", "price": 1, "total": 1,
        "items": [{"isbn": first["isbn"], "quantity": 1, "price": 1}], "payment_method_types": ["klarna"]})
    assert status == 200 and answer["clientSecret"].startswith("pi_")
    [intent] = stripe_server.intents()
    assert (intent.amount, intent.currency) == (cents(expected), "usd")
    assert sorted(intent.metadata["items"].split(",")) == sorted([f"{first['isbn']}x1", f"{second['isbn']}x1"])
    assert [o["amount"] for o in kiosk.orders()] == [cents(expected)]

    pay(page, CARD_OK)  # the page's own Pay goes on with the same, honest intent
    amount, intent_id = expect_confirmation(page)
    assert amount == usd(expected) and intent_id == intent.id
    assert len(stripe_server.intents()) == 1


def test_an_empty_cart_cannot_check_out(page, kiosk, stripe_server):
    page.goto("/checkout/")
    expect(page).to_have_url(kiosk.url + "/cart")
    expect(page.locator("#messages")).to_contain_text("Your cart is empty. Add a book before paying.")
    status, answer = post_json(page, "/checkout/intent", {"attempt": "0" * 32})
    assert status == 400 and "cart is empty" in answer["error"]
    assert stripe_server.intents() == [] and kiosk.orders() == []


def test_a_cart_emptied_in_another_tab_is_refused_at_pay(page, kiosk, stripe_server):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    page.clock.install()  # so the page's reload delay can be skipped below
    open_checkout(page)
    other = page.context.new_page()
    other.goto("/cart")
    other.get_by_role("button", name=f"Remove {book['title']}").click()
    expect(other.locator(".empty")).to_have_text("Your cart is empty.")

    page.bring_to_front()  # Chromium throttles a background tab's timers
    pay(page, CARD_OK)
    expect(page.locator("#payment-message")).to_have_text("Your cart is empty. Add a book before paying.")
    page.clock.fast_forward(3000)
    expect(page).to_have_url(kiosk.url + "/cart")  # the page reloads and the server sends it to the cart
    assert stripe_server.intents() == [] and kiosk.orders() == []


def test_without_keys_browsing_works_and_checkout_asks_to_pay_at_the_counter(start_kiosk, open_page, stripe_server):
    kiosk = start_kiosk(stripe=False)
    page = open_page(kiosk)
    first, second = pick_books(2)

    page.goto("/", wait_until="domcontentloaded")
    expect(page.get_by_role("link", name=first["title"])).to_be_visible()
    page.get_by_label("Search by title, author or ISBN").fill(second["title"][:12])  # search as you type
    expect(page.locator("#results")).to_contain_text(second["title"])
    add_to_cart(page, first["isbn"], 2)
    page.goto("/cart")
    expect(page.locator("#cart-total")).to_have_text(usd(total_of([(first, 2)])))

    response = page.goto("/checkout/")
    assert response.status == 200
    expect(page.get_by_role("heading", name="Please pay at the counter")).to_be_visible()
    expect(page.locator("#counter-total")).to_have_text(usd(total_of([(first, 2)])))
    assert page.watch.stripe_js_loads == 0  # no Stripe.js without keys
    status, answer = post_json(page, "/checkout/intent", {"attempt": "0" * 32})
    assert status == 409 and answer["error"] == "Please pay at the counter"
    page.get_by_role("link", name="Back to the books").click()
    expect(page.get_by_role("link", name=first["title"])).to_be_visible()
    assert cart_summary(page)["count"] == 2  # the cart waits for staff to set up payments
    assert stripe_server.intents() == [] and kiosk.orders() == []


def test_when_stripe_js_cannot_load_the_checkout_says_so_and_recovers(page, kiosk):
    page.watch.allow("ERR_INTERNET_DISCONNECTED")  # the failed script loads themselves
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    page.route(STRIPE_JS_URL, lambda route, request: route.abort("internetdisconnected"))
    page.clock.install()

    page.goto("/checkout/", wait_until="domcontentloaded")
    expect(page.locator("#payment-message")).to_contain_text("Payments are briefly unavailable. Your cart is kept")
    expect(page.locator("#pay")).to_be_disabled()

    page.unroute(STRIPE_JS_URL)  # Stripe is back: the page loads Stripe.js by itself on its next try
    page.clock.fast_forward(3000)
    expect(page.locator("#pay")).to_be_enabled()
    expect(page.locator("#payment-message")).to_be_hidden()
    assert page.watch.stripe_js_loads == 1


def test_a_publishable_key_stripe_refuses_shows_a_message_not_a_form(start_kiosk, open_page, stripe_api):
    kiosk = start_kiosk(STRIPE_PUBLISHABLE_KEY="pk_test_anotheraccount000000000000")
    page = open_page(kiosk)
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])

    page.goto("/checkout/", wait_until="domcontentloaded")
    expect(page.locator("#payment-message")).to_contain_text("Payments are briefly unavailable")
    expect(page.locator("#pay")).to_be_disabled()
    assert stripe_api.problems == ["GET /v1/elements/sessions: unknown publishable key"]
    stripe_api.problems.clear()


def test_stripe_unreachable_at_pay_keeps_the_cart_and_the_page_retries(page, kiosk, stripe_server):
    page.watch.allow("ERR_INTERNET_DISCONNECTED")  # the failed confirmation itself
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    page.clock.install()
    open_checkout(page)
    confirm_url = "https://api.stripe.com/v1/payment_intents/*/confirm"
    page.route(confirm_url, lambda route, request: route.abort("internetdisconnected"))

    pay(page, CARD_OK)
    expect(page.locator("#payment-message")).to_contain_text("Payments are briefly unavailable. Your cart is kept")
    expect(page.locator("#pay")).to_be_disabled()  # the page is on it: no second tap needed
    assert [o["status"] for o in kiosk.orders()] == ["pending"] and cart_summary(page)["count"] == 1

    page.unroute(confirm_url)
    page.clock.fast_forward(3000)
    _, intent_id = expect_confirmation(page)
    assert [i.id for i in stripe_server.intents()] == [intent_id]  # the retry reused the intent
    assert [o["status"] for o in kiosk.orders()] == ["paid"]
