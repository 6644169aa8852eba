"""The Stripe.js double itself: it must refuse the misuse real Stripe.js refuses, or the checkout tests could
pass on a page that breaks against the real thing."""
from playwright.sync_api import expect

from tests.e2e.shopper import misuse_stripe_js, open_checkout, pick_books, put_in_cart

MISUSES = """(pk) => {
    const fresh = () => {
        const stripe = Stripe(pk);
        const elements = stripe.elements({mode: "payment", amount: 1000, currency: "usd"});
        const element = elements.create("payment");
        const box = document.createElement("div");
        document.body.appendChild(box);
        element.mount(box);
        return {stripe, elements, element, box};
    };
    const confirm = {clientSecret: "pi_123_secret_456", confirmParams: {return_url: location.href},
                     redirect: "if_required"};
    const tries = {
        secretKey: () => Stripe("sk_test_123"),
        noAmount: () => Stripe(pk).elements({mode: "payment", currency: "usd"}),
        badCurrency: () => Stripe(pk).elements({mode: "payment", amount: 100, currency: "USD"}),
        fractionalAmount: () => Stripe(pk).elements({mode: "payment", amount: 10.5, currency: "usd"}),
        mountTwice: () => { const f = fresh(); f.element.mount(f.box); },
        mountNowhere: () => Stripe(pk).elements({mode: "payment", amount: 1, currency: "usd"})
            .create("payment").mount("#no-such-element"),
        twoPaymentElements: () => { const f = fresh(); f.elements.create("payment"); },
        confirmBeforeSubmit: () => { const f = fresh(); f.stripe.confirmPayment({elements: f.elements, ...confirm}); },
        confirmWithoutSecret: () => { const f = fresh(); f.stripe.confirmPayment({elements: f.elements,
            confirmParams: confirm.confirmParams, redirect: "if_required"}); },
        confirmWithoutReturnUrl: () => { const f = fresh(); f.stripe.confirmPayment({elements: f.elements,
            clientSecret: confirm.clientSecret, redirect: "if_required"}); },
        confirmOtherElements: () => { const a = fresh(), b = fresh();
            a.stripe.confirmPayment({elements: b.elements, ...confirm}); },
        retrieveBadSecret: () => Stripe(pk).retrievePaymentIntent("pi_123"),
    };
    const out = {};
    for (const [name, attempt] of Object.entries(tries)) {
        try { attempt(); out[name] = null; } catch (e) { out[name] = e.name; }
    }
    return [out, window.__stripeDouble.integrationErrors.length];
}"""


def test_the_double_throws_an_integration_error_for_each_misuse(page, kiosk):
    outcome, recorded = misuse_stripe_js(page, MISUSES, kiosk.settings.publishable_key)

    assert outcome == dict.fromkeys(outcome, "IntegrationError")
    assert recorded == len(outcome)


def test_the_double_validates_the_card_fields_on_submit(page, kiosk):
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    element = page.locator("#payment-element")

    element.get_by_label("Card number").fill("4242 4242 4242 4242")
    element.get_by_label("Expiration date").fill("13 / 34")
    page.locator("#pay").click()
    expect(page.locator("#payment-message")).to_have_text("Your card's expiration date is invalid.")
    expect(element.get_by_label("Expiration date")).to_have_attribute("aria-invalid", "true")
    expect(element.get_by_label("Security code")).to_have_attribute("aria-invalid", "true")
    expect(element.get_by_label("Card number")).to_have_attribute("aria-invalid", "false")
