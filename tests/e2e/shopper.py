"""What a customer does at the kiosk, as browser steps; and the catalog read straight from its CSV, so the
tests' expected totals never come from the code under test."""
import csv
import re
from decimal import Decimal

from playwright.sync_api import expect

from tests.support.settings import SAMPLE

CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"
CARD_3DS = "4000 0025 0000 3155"


def catalog_rows():
    """The sample catalog's rows as the CSV has them, with 13-digit ISBNs only (no conversion needed)."""
    with open(SAMPLE, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if len(row["isbn"]) == 13]


def pick_books(count, min_stock=1):
    """`count` different rows with at least `min_stock` copies, each with a different price."""
    chosen, prices = [], set()
    for row in catalog_rows():
        if int(row["stock"]) >= min_stock and row["price"] not in prices:
            chosen.append(row)
            prices.add(row["price"])
        if len(chosen) == count:
            return chosen
    raise AssertionError("the sample catalog has too few books for this test")


def total_of(items):
    """The total of [(row, quantity)] in dollars, from the CSV's decimal prices."""
    return sum((Decimal(row["price"]) * quantity for row, quantity in items), Decimal("0"))


def usd(amount):
    """Dollars as en_US shows them: $1,234.50."""
    return f"${amount:,.2f}"


def cents(amount):
    """Dollars to Stripe's minor units."""
    return int(amount * 100)


def add_to_cart(page, isbn, quantity=1):
    """Open the book's page, choose the quantity and add it (by ids, not words: any shop language)."""
    page.goto(f"/book/{isbn}", wait_until="domcontentloaded")
    page.locator("#quantity").select_option(str(quantity))
    page.locator("form.add button[type=submit]").click()
    expect(page.locator("#messages .flash")).to_have_text(re.compile(r"\S"))


def csrf_token(page):
    """The session's CSRF token, read from a kiosk page fetched alongside the browser (same cookies)."""
    html = page.request.get("/cart").text()
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def put_in_cart(page, isbn, quantity=1):
    """Add a book through the cart endpoint the book page posts to: the same server rules, one page load
    fewer (the book page itself is exercised by the tests that use add_to_cart)."""
    response = page.request.post("/cart/add", form={"isbn": isbn, "quantity": str(quantity)},
                                 headers={"X-CSRFToken": csrf_token(page), "Accept": "application/json"})
    assert response.ok, response.text()


def open_checkout(page):
    """Go to the payment page and wait for the Payment Element to be ready (Pay enabled)."""
    page.goto("/checkout/", wait_until="domcontentloaded")
    expect(page.locator("h1[data-cart-page]")).to_be_visible()  # by id, not words: any shop language
    expect(page.locator("#pay")).to_be_enabled()


def enter_card(page, number, expiry="12 / 34", cvc="123"):
    """Type a card into the Payment Element."""
    element = page.locator("#payment-element")
    element.get_by_label("Card number").fill(number)
    element.get_by_label("Expiration date").fill(expiry)
    element.get_by_label("Security code").fill(cvc)


def pay(page, number, **card):
    """Enter a card and press Pay."""
    enter_card(page, number, **card)
    page.locator("#pay").click()


def expect_confirmation(page):
    """Wait for the confirmation page; returns (amount text, PaymentIntent id)."""
    expect(page.locator("h1#thanks")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/checkout/complete\?ref=BK-"))
    return page.locator("#amount-charged").inner_text(), page.locator("#payment-intent-id").inner_text()


def cart_summary(page):
    """The server's view of this browser's cart: {count, total, total_text}."""
    response = page.request.get("/cart/summary")
    assert response.ok
    return response.json()


def post_json(page, url, body):
    """POST JSON from inside the page, with its CSRF token, as the checkout script does: (status, JSON)."""
    return page.evaluate(
        """async ([url, body]) => {
            const csrf = document.querySelector("meta[name=csrf-token]").content;
            const r = await fetch(url, {method: "POST", body: JSON.stringify(body),
              headers: {"Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf}});
            return [r.status, await r.json()];
        }""", [url, body])


def misuse_stripe_js(page, script, arg):
    """Open the checkout with one book (the page's own Stripe.js calls must raise nothing), then run `script`, which
    misuses Stripe.js on purpose: the IntegrationErrors it provokes are allowed. Returns what the script returns."""
    page.watch.allow("IntegrationError")
    [book] = pick_books(1)
    put_in_cart(page, book["isbn"])
    open_checkout(page)
    return page.evaluate(script, arg)
