"""The checkout page against Stripe.js of the server's release train (issue #22), in Chromium with the double.

The server speaks API version 2026-10-28.endive (kiosk.payments), so the page must load Stripe.js of the Endive
train, https://js.stripe.com/endive/stripe.js, and never the legacy unversioned /v3/, and must pass Stripe.js
only options that train defines. Which options those are is read from Stripe's published types of the train,
@stripe/stripe-js in tests/node (tests/support/stripe_types.py), not from a list kept here.
"""
from playwright.sync_api import expect

from kiosk.payments.gateway import STRIPE_JS_URL
from tests.e2e.shopper import (
    CARD_3DS,
    cents,
    expect_confirmation,
    misuse_stripe_js,
    open_checkout,
    pay,
    pick_books,
    put_in_cart,
    total_of,
    usd,
)
from tests.support.stripe_types import release_train, train_options

LEGACY_STRIPE_JS = "https://js.stripe.com/v3/"

# Which train option list each call the double records is checked against.
CHECKED_AGAINST = {"elements": "elements", "elements.create:payment": "paymentElement",
                   "elements.update": "elementsUpdate", "paymentElement.update": "paymentElementUpdate",
                   "confirmPayment": "confirmPayment"}


def stripe_js_requests(page):
    """Every URL the page asks of js.stripe.com, kept as it goes."""
    seen = []
    page.on("request", lambda request: seen.append(request.url) if "//js.stripe.com/" in request.url else None)
    return seen


def double_calls(page):
    return page.evaluate("() => window.__stripeDouble.calls")


def test_the_page_loads_the_trains_stripe_js_passes_only_its_options_and_is_paid(page, kiosk, stripe_server,
                                                                                  stripe_api):
    # The URL the server names is the one @stripe/stripe-js of the pinned train loads (its RELEASE_TRAIN).
    assert f"https://js.stripe.com/{release_train()}/stripe.js" == STRIPE_JS_URL
    options = train_options()
    requested = stripe_js_requests(page)
    first, second = pick_books(2)
    put_in_cart(page, first["isbn"])
    put_in_cart(page, second["isbn"])
    expected = total_of([(first, 1), (second, 1)])

    open_checkout(page)
    # A card that asks for 3-D Secure: the page stays while the bank asks, so the double's record of
    # confirmPayment can be read before the confirmation page replaces it.
    pay(page, CARD_3DS)
    challenge = page.get_by_role("dialog", name="3D Secure 2 Test Page")
    expect(challenge).to_be_visible()
    calls = double_calls(page)
    errors = page.evaluate("() => window.__stripeDouble.integrationErrors")
    challenge.get_by_role("button", name="Complete").click()
    amount, intent_id = expect_confirmation(page)

    # (a) Stripe.js of the train, once, and never the legacy /v3/.
    assert requested == [STRIPE_JS_URL]
    assert not any(LEGACY_STRIPE_JS in url for url in requested)
    assert page.watch.stripe_js_loads == 1

    # (b) Only options the train's types define; the payment method types under their Endive name.
    assert errors == []
    assert [c["method"] for c in calls] == ["elements", "elements.create:payment", "confirmPayment"]
    for call in calls:
        allowed = options[CHECKED_AGAINST[call["method"]]]
        assert set(call["names"]) <= set(allowed), (call["method"], sorted(set(call["names"]) - set(allowed)))
    elements, _create, confirm = calls
    assert elements["options"]["allowedPaymentMethodTypes"] == ["card"]
    assert "paymentMethodTypes" not in elements["options"]
    assert (elements["options"]["mode"], elements["options"]["amount"], elements["options"]["currency"]) == (
        "payment", cents(expected), "usd")
    assert set(confirm["options"]["confirmParams"]) <= set(options["confirmParams"])
    assert confirm["options"]["elements"] == "[Elements]" and confirm["options"]["redirect"] == "if_required"
    # The Payment Element asked Stripe for its session with the allowed types, as Stripe.js of the train does.
    [session] = stripe_api.elements_sessions
    assert session["deferred_intent[allowed_payment_method_types][0]"] == "card"
    assert not any(k.startswith("deferred_intent[payment_method_types]") for k in session)

    # (c) Paid: what Stripe charged is what the ledger holds.
    assert amount == usd(expected)
    charged = [(c.payment_intent, c.amount) for c in stripe_server.charges() if c.status == "succeeded"]
    paid = [(o["payment_intent"], o["amount"]) for o in kiosk.orders() if o["status"] == "paid"]
    assert charged == paid == [(intent_id, cents(expected))]


def test_the_legacy_v3_stripe_js_is_not_served(page, kiosk):
    """A page still loading /v3/ gets nothing: the request is refused and counted as leaving the machine."""
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    # Provoked below, on purpose: the request refused, and Chromium's console line about it.
    page.watch.allow(f"request left the machine: GET {LEGACY_STRIPE_JS}")
    page.watch.allow("Failed to load resource: net::ERR_INTERNET_DISCONNECTED")
    outcome = page.evaluate("""(url) => new Promise((resolve) => {
        const script = document.createElement("script");
        script.src = url;
        script.onload = () => resolve("loaded");
        script.onerror = () => resolve("failed");
        document.head.appendChild(script);
    })""", LEGACY_STRIPE_JS)
    assert outcome == "failed"
    assert f"request left the machine: GET {LEGACY_STRIPE_JS}" in page.watch.errors


MISUSES = """([pk, secret]) => {
    const base = {mode: "payment", amount: 1000, currency: "usd"};
    const fresh = () => {
        const stripe = Stripe(pk);
        const elements = stripe.elements({...base, allowedPaymentMethodTypes: ["card"]});
        const element = elements.create("payment");
        const box = document.createElement("div");
        document.body.appendChild(box);
        element.mount(box);
        return {stripe, elements, element};
    };
    const confirm = {clientSecret: secret, confirmParams: {return_url: location.href}, redirect: "if_required"};
    const tries = {
        elementsPaymentMethodTypes: () => Stripe(pk).elements({...base, paymentMethodTypes: ["card"]}),
        elementsUnknownOption: () => Stripe(pk).elements({...base, notAStripeOption: true}),
        createPaymentMethodTypes: () => Stripe(pk).elements(base)
            .create("payment", {layout: "tabs", paymentMethodTypes: ["card"]}),
        updatePaymentMethodTypes: () => fresh().elements.update({paymentMethodTypes: ["card"]}),
        updateUnknownOption: () => fresh().elements.update({notAStripeOption: 1}),
        elementUpdateUnknownOption: () => fresh().element.update({wallets: {applePay: "never"}}),
        confirmUnknownOption: () => { const f = fresh();
            f.stripe.confirmPayment({elements: f.elements, ...confirm, notAStripeOption: 1}); },
        confirmParamsUnknown: () => { const f = fresh();
            f.stripe.confirmPayment({elements: f.elements, ...confirm,
                                     confirmParams: {return_url: location.href, payment_method_types: ["card"]}}); },
    };
    const out = {};
    for (const [name, attempt] of Object.entries(tries)) {
        try { attempt(); out[name] = null; } catch (e) { out[name] = e.name + ": " + e.message; }
    }
    // What the train does define goes through.
    const fine = fresh();
    fine.elements.update({allowedPaymentMethodTypes: ["card"], amount: 1200});
    fine.element.update({layout: "accordion"});
    return [out, window.__stripeDouble.integrationErrors.length, window.__stripeDouble.release];
}"""


def test_the_double_throws_on_options_the_train_does_not_define(page, kiosk):
    outcome, recorded, release = misuse_stripe_js(page, MISUSES, [kiosk.settings.publishable_key, "pi_123_secret_456"])

    assert release == release_train() == "endive"
    assert all((v or "").startswith("IntegrationError: ") for v in outcome.values()), outcome
    assert recorded == len(outcome)
    assert "Use allowedPaymentMethodTypes instead" in outcome["elementsPaymentMethodTypes"]
    assert "Use allowedPaymentMethodTypes instead" in outcome["updatePaymentMethodTypes"]
    assert "notAStripeOption" in outcome["elementsUnknownOption"]
    # wallets can be set when the Payment Element is created, not updated (elements/payment.d.ts).
    assert "wallets" in outcome["elementUpdateUnknownOption"]
    assert "payment_method_types" in outcome["confirmParamsUnknown"]
