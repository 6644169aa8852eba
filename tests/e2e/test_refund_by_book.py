"""A refund of one book by taps, in Chromium: staff open the order, choose the copy coming back, review what it comes
to and refund it. Stripe's refund, the ledger and the shelf agree; the taps are printed for the closing note."""
import re

from playwright.sync_api import expect

from tests.support.browser import LiveKiosk
from tests.support.ledger import buy, on_hand, order
from tests.test_refund_by_book import PIN, shop_with


def test_one_book_back_by_taps(tmp_path, stripe_server, open_page, record_property):
    app, (a, b, c) = shop_with(tmp_path, stripe_server, KIOSK_TAX_RATES="standard:8.875")
    kiosk = LiveKiosk(app.extensions["kiosk"].settings)
    page = None
    try:
        sold = buy(kiosk.app, stripe_server, {a.isbn13: 1, b.isbn13: 1, c.isbn13: 1})
        page = open_page(kiosk)
        page.goto("/staff/", wait_until="domcontentloaded")
        page.get_by_label("PIN").fill(PIN)
        page.get_by_role("button", name="Unlock").click()
        page.goto(f"/staff/orders/{sold.reference}")
        taps = 0
        for locator in (page.get_by_role("group", name=re.compile(re.escape(a.title))).get_by_text("1", exact=True),
                        page.get_by_role("button", name="Review the refund")):
            locator.click()
            taps += 1
        expect(page.get_by_role("heading", level=1)).to_have_text("Refund $13.07 to the card ending 4242?")
        expect(page.locator("#review-books")).to_have_text("1 book back on the shelf.")
        assert stripe_server.client().v1.refunds.list({"payment_intent": sold.intent}).data == []
        page.get_by_role("button", name="Refund $13.07").click()
        taps += 1
        expect(page.locator("#messages")).to_contain_text("Refunded $13.07; 1 book back on the shelf.")
        made = stripe_server.client().v1.refunds.list({"payment_intent": sold.intent}).data
        assert [r.amount for r in made] == [1307]
        assert order(kiosk.app, sold.reference)["amount_refunded"] == 1307 and on_hand(kiosk.app, a.isbn13) == 5
        record_property("kiosk taps to refund one book of three, from its order page", taps)
        assert taps == 3
    finally:
        if page is not None:
            page.context.close()  # before the server stops: the page's sold-out poll would meet it down
        kiosk.server.close()
