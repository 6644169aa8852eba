"""Receipts, money and honesty about the state, in Chromium: the QR code and the email on the confirmation, the
print layout, a JPY purchase, the TEST MODE banner, and a checkout that retries by itself while Stripe is away."""
import re

from playwright.sync_api import expect

from tests.e2e.shopper import (
    CARD_OK,
    add_to_cart,
    cart_summary,
    enter_card,
    expect_confirmation,
    open_checkout,
    pay,
    pick_books,
)
from tests.support.stripe_api import STRIPE_JS_URL

UNAVAILABLE = "Payments are briefly unavailable. Your cart is kept; trying again in a moment."
BANNER = "TEST MODE: no real money is taken"


def buy_one(page):
    [book] = pick_books(1)
    add_to_cart(page, book["isbn"])
    open_checkout(page)
    pay(page, CARD_OK)
    return expect_confirmation(page)


def test_confirmation_offers_a_qr_code_and_a_receipt_email(page, kiosk, stripe_server):
    _, intent_id = buy_one(page)
    qr = page.get_by_role("img", name="QR code: scan it to open your receipt on your phone")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 200  # big enough for a phone camera at arm's length

    page.get_by_label("Email me the receipt (optional)").fill("reader@example.com")
    page.get_by_role("button", name="Send receipt").click()
    expect(page.locator("#receipt-email-status")).to_contain_text("reader@example.com")
    expect(page.get_by_label("Email me the receipt (optional)")).to_have_value("")  # not left for the next person
    assert stripe_server.client().v1.payment_intents.retrieve(intent_id).receipt_email == "reader@example.com"
    assert [o["email"] for o in kiosk.orders()] == [None]  # the kiosk keeps no copy, as the page says


def test_the_print_layout_is_a_paper_receipt(start_kiosk, open_page):
    kiosk = start_kiosk(KIOSK_PRINT_RECEIPTS="1")
    page = open_page(kiosk)
    amount, _intent_id = buy_one(page)
    expect(page.get_by_role("button", name="Print receipt")).to_be_visible()
    page.emulate_media(media="print")
    for hidden in (".top", ".test-banner", "#receipt-email-form", "#done", "#staff-corner"):
        expect(page.locator(hidden)).to_be_hidden()
    for shown in (".receipt-shop", "#order-ref", "#amount-charged", "#payment-intent-id", "#receipt-qr svg"):
        expect(page.locator(shown)).to_be_visible()
    expect(page.locator("#amount-charged")).to_have_text(amount)
    width = page.evaluate("document.querySelector('#receipt-qr svg').getBoundingClientRect().width")
    assert 100 <= width <= 130  # 30 mm at 96 px per inch: it fits on 80 mm paper
    pdf = page.pdf(prefer_css_page_size=True)  # the page size the stylesheet asks the printer for
    width_pt = float(re.search(rb"/MediaBox \[0 0 ([\d.]+) ", pdf).group(1))
    assert round(width_pt / 72 * 25.4) == 80  # millimetres


def test_a_jpy_purchase_charges_whole_yen(start_kiosk, open_page, stripe_server, tmp_path):
    catalog = tmp_path / "yen.csv"
    catalog.write_text("isbn,title,author,price,stock\n"
                       "9780306406157,Kokoro,Natsume Soseki,1500,4\n"
                       "9784062748681,Norwegian Wood,Haruki Murakami,980,2\n", encoding="utf-8")
    kiosk = start_kiosk(KIOSK_CURRENCY="jpy", KIOSK_LOCALE="ja_JP", KIOSK_CATALOG=str(catalog))
    page = open_page(kiosk)
    add_to_cart(page, "9780306406157", 2)
    add_to_cart(page, "9784062748681", 1)
    page.goto("/cart", wait_until="domcontentloaded")
    expect(page.locator("#cart-total")).to_have_text("￥3,980")
    open_checkout(page)
    expect(page.locator("#pay")).to_have_text("￥3,980 を支払う")  # "Pay ￥3,980" in the shop's Japanese
    pay(page, CARD_OK)
    amount, intent_id = expect_confirmation(page)
    assert amount == "￥3,980"
    intent = stripe_server.client().v1.payment_intents.retrieve(intent_id)
    assert (intent.amount, intent.currency, intent.status) == (3980, "jpy", "succeeded")
    assert [(o["amount"], o["currency"], o["status"]) for o in kiosk.orders()] == [(3980, "JPY", "paid")]


def test_test_keys_show_the_banner_on_every_page(page, kiosk):
    [book] = pick_books(1)
    banner = page.get_by_role("note").filter(has_text=BANNER)
    for path in ("/attract", "/", f"/book/{book['isbn']}", "/cart", "/no-such-page"):
        page.goto(path, wait_until="domcontentloaded")
        expect(banner).to_be_visible()
    add_to_cart(page, book["isbn"])
    open_checkout(page)
    expect(banner).to_be_visible()
    pay(page, CARD_OK)
    expect_confirmation(page)
    expect(banner).to_be_visible()


def test_live_keys_show_no_banner(start_kiosk, open_page, stripe_server):
    kiosk = start_kiosk(stripe=False, STRIPE_SECRET_KEY="sk_live_kioskfake", STRIPE_PUBLISHABLE_KEY="pk_live_kioskfake",
                        STRIPE_API_BASE=stripe_server.url)
    page = open_page(kiosk)
    for path in ("/attract", "/"):
        page.goto(path, wait_until="domcontentloaded")
        expect(page.get_by_text("TEST MODE")).to_have_count(0)


def test_without_stripe_js_browsing_goes_on_and_checkout_retries_by_itself(page, kiosk, stripe_server):
    page.route(STRIPE_JS_URL, lambda route, request: route.abort("internetdisconnected"))
    page.watch.allow("ERR_INTERNET_DISCONNECTED")
    first, second = pick_books(2)
    add_to_cart(page, first["isbn"])  # browsing and the cart do not need Stripe
    page.goto("/", wait_until="domcontentloaded")
    page.get_by_role("button", name=f"Add to cart: {second['title']}").click()
    expect(page.locator("#messages")).to_contain_text("Added")

    page.goto("/checkout/", wait_until="domcontentloaded")
    expect(page.locator("#payment-message")).to_have_text(UNAVAILABLE)
    expect(page.locator("#pay")).to_be_disabled()
    page.evaluate("window.sameVisit = true")
    page.unroute(STRIPE_JS_URL)  # Stripe.js is reachable again: the page loads it without being reloaded
    expect(page.locator("#pay")).to_be_enabled(timeout=15_000)
    expect(page.locator("#payment-message")).to_be_hidden()
    assert page.evaluate("window.sameVisit") is True
    pay(page, CARD_OK)
    expect_confirmation(page)
    assert cart_summary(page)["count"] == 0


def test_when_stripe_cannot_be_reached_at_pay_the_page_retries_by_itself(page, kiosk, stripe_server):
    [book] = pick_books(1)
    add_to_cart(page, book["isbn"])
    open_checkout(page)
    confirm_url = "https://api.stripe.com/v1/payment_intents/*/confirm"
    page.route(confirm_url, lambda route, request: route.abort("internetdisconnected"))
    page.watch.allow("ERR_INTERNET_DISCONNECTED")
    enter_card(page, CARD_OK)
    page.locator("#pay").click()
    expect(page.locator("#payment-message")).to_have_text(UNAVAILABLE)
    expect(page.locator("#pay")).to_be_disabled()  # still working on it: no second payment can start
    assert [o["status"] for o in kiosk.orders()] == ["pending"]

    page.unroute(confirm_url)  # Stripe is back; nobody touches the screen
    _, intent_id = expect_confirmation(page)
    assert [i.id for i in stripe_server.intents()] == [intent_id]
    assert [o["status"] for o in kiosk.orders()] == ["paid"]
    expect(page).to_have_url(re.compile(r"/checkout/complete\?ref=BK-"))
