"""Paying at the kiosk in Chromium: success, decline, 3-D Secure, double clicks, card validation."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.shopper import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    add_to_cart,
    cart_summary,
    cents,
    enter_card,
    expect_confirmation,
    open_checkout,
    pay,
    pick_books,
    post_json,
    put_in_cart,
    total_of,
    usd,
)


def confirms(stripe_api):
    """How many times the browser asked Stripe to confirm a PaymentIntent."""
    return sum(1 for method, path in stripe_api.calls if method == "POST" and path.endswith("/confirm"))


def only_intent(stripe_server):
    intents = stripe_server.intents()
    assert len(intents) == 1, f"expected one PaymentIntent, found {[i.id for i in intents]}"
    return intents[0]


def test_two_books_one_twice_are_charged_the_catalog_total(page, kiosk, stripe_server, stripe_api):
    first, second = pick_books(2, min_stock=2)
    expected = total_of([(first, 2), (second, 1)])
    add_to_cart(page, first["isbn"], 2)
    add_to_cart(page, second["isbn"], 1)

    open_checkout(page)
    expect(page.locator("#checkout-total")).to_have_text(usd(expected))
    assert kiosk.settings.secret_key not in page.content()  # the secret key never reaches the browser
    pay(page, CARD_OK)
    amount, intent_id = expect_confirmation(page)

    assert amount == usd(expected)
    assert re.fullmatch(r"pi_\w+", intent_id)
    for row in (first, second):
        expect(page.locator("table.cart")).to_contain_text(row["title"])
    intent = only_intent(stripe_server)
    assert (intent.id, intent.amount, intent.currency, intent.status) == (intent_id, cents(expected), "usd",
                                                                          "succeeded")
    assert f"{first['isbn']}x2" in intent.metadata["items"] and f"{second['isbn']}x1" in intent.metadata["items"]
    [order] = kiosk.orders()
    assert (order["payment_intent"], order["status"], order["amount"], order["currency"]) == (
        intent_id, "paid", cents(expected), "USD")
    assert kiosk.order_lines(order["id"]) == {first["isbn"]: 2, second["isbn"]: 1}
    assert confirms(stripe_api) == 1
    assert cart_summary(page)["count"] == 0  # the paid cart is gone

    page.reload()  # reloading the confirmation records nothing twice
    expect(page.locator("#payment-intent-id")).to_have_text(intent_id)
    assert [o["status"] for o in kiosk.orders()] == ["paid"]


def test_a_declined_card_keeps_the_cart_and_a_retry_uses_the_same_intent(page, kiosk, stripe_server, stripe_api):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    before = cart_summary(page)

    pay(page, CARD_DECLINED)
    expect(page.locator("#payment-message")).to_have_text(
        "Your card was declined. Try another card, or ask a member of staff to pay at the counter.")
    expect(page.locator("#pay")).to_be_enabled()
    assert [o["status"] for o in kiosk.orders()] == ["pending"]
    assert cart_summary(page) == before
    declined = only_intent(stripe_server)
    assert declined.status == "requires_payment_method"
    assert declined.last_payment_error.code == "card_declined"

    pay(page, CARD_OK)
    amount, intent_id = expect_confirmation(page)
    assert amount == usd(total_of([(book, 1)]))
    intent = only_intent(stripe_server)  # the server reused the attempt's PaymentIntent
    assert (intent.id, intent.status) == (declined.id, "succeeded") and intent_id == declined.id
    assert [o["status"] for o in kiosk.orders()] == ["paid"]
    assert confirms(stripe_api) == 2


def test_3d_secure_challenge_completed_pays_the_order(page, kiosk, stripe_server):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)

    pay(page, CARD_3DS)
    challenge = page.get_by_role("dialog", name="3D Secure 2 Test Page")
    expect(challenge).to_be_visible()
    assert [o["status"] for o in kiosk.orders()] == ["pending"]  # nothing is paid while the bank asks
    assert only_intent(stripe_server).status == "requires_action"
    challenge.get_by_role("button", name="Complete").click()

    amount, intent_id = expect_confirmation(page)
    assert amount == usd(total_of([(book, 1)]))
    assert only_intent(stripe_server).status == "succeeded"
    [order] = kiosk.orders()
    assert (order["payment_intent"], order["status"]) == (intent_id, "paid")


def test_3d_secure_challenge_failed_shows_stripes_message_and_allows_retry(page, kiosk, stripe_server):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)

    pay(page, CARD_3DS)
    page.get_by_role("dialog", name="3D Secure 2 Test Page").get_by_role("button", name="Fail").click()
    expect(page.locator("#payment-message")).to_have_text(re.compile(r"unable to authenticate your payment method"))
    expect(page.locator("#pay")).to_be_enabled()
    assert [o["status"] for o in kiosk.orders()] == ["pending"]
    assert only_intent(stripe_server).status == "requires_payment_method"

    pay(page, CARD_3DS)
    page.get_by_role("dialog", name="3D Secure 2 Test Page").get_by_role("button", name="Complete").click()
    _, intent_id = expect_confirmation(page)
    assert only_intent(stripe_server).id == intent_id
    assert [o["status"] for o in kiosk.orders()] == ["paid"]


@pytest.mark.parametrize("how", ["double click", "two submits"])
def test_a_double_tap_on_pay_creates_one_payment_intent(page, kiosk, stripe_server, stripe_api, how):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    intent_posts = []
    page.on("request", lambda r: intent_posts.append(r.url) if r.url.endswith("/checkout/intent") else None)

    enter_card(page, CARD_OK)
    if how == "double click":
        page.locator("#pay").dblclick()
    else:
        # Past the disabled button: two submit events straight at the form.
        page.evaluate("() => { const f = document.getElementById('payment-form'); f.requestSubmit(); "
                      "f.requestSubmit(); }")
    _, intent_id = expect_confirmation(page)

    assert only_intent(stripe_server).id == intent_id
    assert len(intent_posts) == 1 and confirms(stripe_api) == 1
    assert [o["status"] for o in kiosk.orders()] == ["paid"]


def test_two_intent_requests_at_once_share_one_payment_intent(page, kiosk, stripe_server):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    attempt = page.evaluate("() => JSON.parse(document.getElementById('stripe-config').textContent).attempt")

    answers = page.evaluate(
        """async (attempt) => {
            const csrf = document.querySelector("meta[name=csrf-token]").content;
            const post = () => fetch("/checkout/intent", {method: "POST", body: JSON.stringify({attempt}),
              headers: {"Content-Type": "application/json", "X-CSRFToken": csrf}}).then(r => r.json());
            return Promise.all([post(), post()]);
        }""", attempt)

    assert answers[0]["clientSecret"] == answers[1]["clientSecret"]
    assert only_intent(stripe_server).client_secret == answers[0]["clientSecret"]
    assert len(kiosk.orders()) == 1


def test_an_incomplete_card_is_caught_before_any_payment_intent(page, kiosk, stripe_server, stripe_api):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)

    page.locator("#pay").click()
    expect(page.locator("#payment-message")).to_have_text("Your card number is incomplete.")
    pay(page, "4242 4242 4242 4241")
    expect(page.locator("#payment-message")).to_have_text("Your card number is invalid.")
    pay(page, CARD_OK, expiry="01 / 20")
    expect(page.locator("#payment-message")).to_have_text("Your card's expiration year is in the past.")

    assert stripe_server.intents() == [] and kiosk.orders() == [] and confirms(stripe_api) == 0
    assert post_json(page, "/checkout/intent", {})[0] == 409  # and no attempt id, no intent either
    assert stripe_server.intents() == []
