"""Two live kiosks (`python -m kiosk --headless`, each its own data folder) on one PostgreSQL, and two customers
in Chromium paying for the last copy at the same moment: one sale, one clear "sold out", nothing charged for it."""
import re

from playwright.sync_api import expect

from kiosk.ledger import db as dblib
from kiosk.ledger import stock as shelves
from tests.e2e.shopper import (
    CARD_OK,
    cents,
    enter_card,
    expect_confirmation,
    open_checkout,
    pick_books,
    put_in_cart,
    total_of,
)
from tests.support.process import KioskProcess


def test_two_counters_two_customers_one_last_copy(tmp_path, pg_url, stripe_server, open_page):
    [book] = pick_books(1)
    counters = [KioskProcess(tmp_path / name, stripe_server, KIOSK_DATABASE_URL=pg_url, KIOSK_COUNTER_NAME=name)
                for name in ("Front", "Back")]
    try:
        for counter in counters:
            counter.data_dir.mkdir()
            counter.start()
        with dblib.connect(pg_url) as db:
            shelves.count_shelf(db, book["isbn"], 1, "the last copy", ("tests", "Front"))
        pages = [open_page(counter) for counter in counters]
        for page in pages:
            put_in_cart(page, book["isbn"])
            open_checkout(page)
            enter_card(page, CARD_OK)
        for page in pages:  # both press Pay at the same moment
            page.locator("#pay").click(no_wait_after=True)
        outcomes = []
        for page in pages:
            confirmed = page.get_by_role("heading", name="Thank you! Payment received.")
            refused = page.locator("#payment-message")
            expect(confirmed.or_(refused.filter(has_text="just sold out"))).to_be_visible(timeout=20_000)
            outcomes.append("paid" if confirmed.is_visible() else "sold out")
            if outcomes[-1] == "paid":
                expect_confirmation(page)
            else:
                page.watch.allow("409")
                expect(page).to_have_url(re.compile(r"/cart$"), timeout=10_000)  # it reloads into the cart
                expect(page.locator("#messages")).to_contain_text("has just sold out and was removed")
        assert sorted(outcomes) == ["paid", "sold out"]
        charged = [c.amount for c in stripe_server.charges() if c.status == "succeeded"]
        price = cents(total_of([(book, 1)]))
        assert charged == [price] and len(stripe_server.intents()) == 1
        with dblib.connect(pg_url) as db:
            sold = db.execute("SELECT counter, amount FROM orders WHERE status = 'paid'").fetchall()
            assert [r["amount"] for r in sold] == [price] and sold[0]["counter"] in ("Front", "Back")
            assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1  # the refused one wrote nothing
            stock = db.execute("SELECT on_hand, held FROM stock WHERE isbn = ?", (book["isbn"],)).fetchone()
            assert tuple(stock) == (0, 0)
    finally:
        for counter in counters:
            counter.kill()
