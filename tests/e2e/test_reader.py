"""The card reader in Chromium, against a simulated reader in the fake Stripe: paid, declined then paid, canceled,
busy, offline, and the kiosk crashing after the tap. Each checks money: what Stripe charged, what the ledger
recorded and what stock did."""
import time

from playwright.sync_api import expect

from tests.e2e.shopper import CARD_OK, expect_confirmation, open_checkout, pay, put_in_cart
from tests.support import fakestripe_terminal
from tests.support.process import KioskProcess

ISBN = "9780306406157"
CATALOG = "isbn,title,author,price,stock\n9780306406157,Good Book,Ann Author,47.10,4\n"
DECLINED = "4000000000000002"
PROMPT = "Tap, insert or swipe your card on the reader"


def shop(tmp_path, start_kiosk, stripe_server):
    catalog = tmp_path / "books.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    reader = stripe_server.simulated_reader()
    return start_kiosk(KIOSK_CATALOG=str(catalog), STRIPE_TERMINAL_READER=reader), reader


def charged(stripe_server):
    return sorted((c.payment_intent, c.amount) for c in stripe_server.charges() if c.status == "succeeded")


def on_hand(kiosk):
    return kiosk._query("SELECT on_hand, held FROM stock WHERE isbn = ?", ISBN)[0]


def to_reader(page):
    put_in_cart(page, ISBN)
    open_checkout(page)
    page.get_by_role("button", name="Pay with the card reader").click()


def test_pay_on_the_reader(tmp_path, start_kiosk, open_page, stripe_server, record_property):
    kiosk, reader = shop(tmp_path, start_kiosk, stripe_server)
    page = open_page(kiosk)
    put_in_cart(page, ISBN)
    open_checkout(page)
    started = time.monotonic()
    page.get_by_role("button", name="Pay with the card reader").click()  # tap 1, on the screen
    expect(page.locator(".reader-prompt")).to_have_text(PROMPT)
    expect(page.locator("#reader-amount")).to_have_text("$47.10")
    expect(page.locator("#payment-form")).to_have_css("pointer-events", "none")  # one way to pay at a time
    stripe_server.tap(reader)  # tap 2, the card on the reader
    amount, intent_id = expect_confirmation(page)
    seconds = time.monotonic() - started
    expect(page.locator("#card-receipt")).to_contain_text("VISA •••• 4242")
    expect(page.locator("#card-receipt")).to_contain_text("A0000000031010")
    [order] = kiosk.orders()
    assert amount == "$47.10" and (order["status"], order["method"], order["amount"]) == ("paid", "card_present", 4710)
    assert charged(stripe_server) == [(intent_id, 4710)] and intent_id == order["payment_intent"]
    assert on_hand(kiosk) == {"on_hand": 3, "held": 0}
    record_property("card reader: Pay to confirmation", f"2 taps (1 on screen, 1 card), {seconds:.1f} s")
    assert seconds < 10


def test_a_declined_card_then_another(tmp_path, start_kiosk, open_page, stripe_server):
    kiosk, reader = shop(tmp_path, start_kiosk, stripe_server)
    page = open_page(kiosk)
    to_reader(page)
    expect(page.locator(".reader-prompt")).to_be_visible()
    stripe_server.tap(reader, DECLINED)
    expect(page.locator("#reader-message")).to_contain_text("Your card was declined. Try again, or use another card.")
    expect(page.get_by_role("button", name="Pay with the card reader")).to_be_enabled()
    assert kiosk.orders()[0]["status"] == "failed" and on_hand(kiosk) == {"on_hand": 4, "held": 1}
    page.get_by_role("button", name="Pay with the card reader").click()
    expect(page.locator(".reader-prompt")).to_be_visible()
    stripe_server.tap(reader)
    _, intent_id = expect_confirmation(page)
    [order] = kiosk.orders()
    assert charged(stripe_server) == [(intent_id, 4710)] and order["status"] == "paid"
    assert [c.status for c in stripe_server.charges()].count("failed") == 1
    assert on_hand(kiosk) == {"on_hand": 3, "held": 0}


def test_cancel_stops_the_reader(tmp_path, start_kiosk, open_page, stripe_server):
    kiosk, reader = shop(tmp_path, start_kiosk, stripe_server)
    page = open_page(kiosk)
    to_reader(page)
    expect(page.locator(".reader-prompt")).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#messages")).to_contain_text("The payment was canceled; nothing was charged.")
    expect(page.get_by_role("button", name="Pay with the card reader")).to_be_visible()
    assert stripe_server.client().v1.terminal.readers.retrieve(reader).action is None
    [order] = kiosk.orders()
    assert order["status"] == "canceled" and charged(stripe_server) == []
    assert on_hand(kiosk) == {"on_hand": 4, "held": 0}


def test_leaving_the_page_stops_the_reader(tmp_path, start_kiosk, open_page, stripe_server):
    kiosk, reader = shop(tmp_path, start_kiosk, stripe_server)
    page = open_page(kiosk)
    to_reader(page)
    expect(page.locator(".reader-prompt")).to_be_visible()
    page.goto("/", wait_until="domcontentloaded")  # the customer walks off to browse
    deadline = time.monotonic() + 10
    while kiosk.orders()[0]["status"] != "canceled" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kiosk.orders()[0]["status"] == "canceled" and on_hand(kiosk) == {"on_hand": 4, "held": 0}
    assert stripe_server.client().v1.terminal.readers.retrieve(reader).action is None and charged(stripe_server) == []


def test_busy_then_offline_reader_is_said_and_the_card_form_pays(tmp_path, start_kiosk, open_page, stripe_server):
    kiosk, reader = shop(tmp_path, start_kiosk, stripe_server)
    page = open_page(kiosk)
    fakestripe_terminal.set_busy(reader)
    to_reader(page)
    expect(page.locator("#reader-message")).to_contain_text("The card reader is busy with another payment.")
    fakestripe_terminal.set_busy(reader, False)
    fakestripe_terminal.set_offline(reader)
    page.get_by_role("button", name="Pay with the card reader").click()
    expect(page.locator("#reader-message")).to_contain_text("The card reader is offline.")
    pay(page, CARD_OK)
    _, intent_id = expect_confirmation(page)
    [order] = kiosk.orders()
    assert (order["method"], order["status"]) == ("card", "paid") and charged(stripe_server) == [(intent_id, 4710)]
    assert on_hand(kiosk) == {"on_hand": 3, "held": 0}
    assert [pi.status for pi in stripe_server.intents() if pi.id != intent_id] == ["canceled"]


def test_a_crash_after_the_tap_loses_nothing(tmp_path, open_page, stripe_server):
    catalog = tmp_path / "books.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    reader = stripe_server.simulated_reader()
    (tmp_path / "data").mkdir()
    kiosk = KioskProcess(tmp_path / "data", stripe_server, catalog=catalog, STRIPE_TERMINAL_READER=reader).start()
    try:
        page = open_page(kiosk)
        page.watch.allow("ERR_CONNECTION_REFUSED")  # the page asks while the kiosk is down
        page.watch.allow("ERR_CONNECTION_RESET")  # ... or was asking at the moment it was killed
        to_reader(page)
        expect(page.locator(".reader-prompt")).to_be_visible()
        kiosk.kill()  # the power goes...
        stripe_server.tap(reader)  # ...as the customer taps
        kiosk.start()  # the reconciler's start-up sweep settles the payment
        _, intent_id = expect_confirmation(page)
        from tests.support.ledger import ledger
        with ledger(kiosk) as db:
            order = dict(db.execute("SELECT * FROM orders").fetchone())
            stock = dict(db.execute("SELECT on_hand, held FROM stock WHERE isbn = ?", (ISBN,)).fetchone())
        assert (order["status"], order["method"], order["payment_intent"]) == ("paid", "card_present", intent_id)
        assert charged(stripe_server) == [(intent_id, 4710)] and stock == {"on_hand": 3, "held": 0}
    finally:
        kiosk.kill()
