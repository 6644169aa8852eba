"""The shop's records unreachable right after the customer paid: the customer is never told "nothing was
charged" (they might pay again), and once the database answers the receipt shows and the ledger has the sale once.
PostgreSQL is the real one, stopped and started (tests/support/pgcluster.py)."""
import pytest

from kiosk import create_app
from tests.support.client import KioskClient
from tests.support.ledger import buy, on_hand, order, paid_state
from tests.support.settings import make_settings

DOWN = "Your payment may have gone through"


@pytest.fixture
def app(tmp_path, stripe_server, pg_url):
    return create_app(make_settings(tmp_path, stripe_server, KIOSK_DATABASE_URL=pg_url,
                                    KIOSK_STAFF_PIN="2468"), testing=True)


def test_the_confirmation_with_the_ledger_down_never_says_nothing_was_charged(app, stripe_server, pg_cluster):
    book = app.extensions["kiosk"].catalog.books[0]
    before = on_hand(app, book.isbn13)
    purchase = buy(app, stripe_server, {book.isbn13: 1}, confirm=False)  # Stripe charged it
    pg_cluster.stop_server("fast")
    try:
        page = purchase.confirm()
        text = page.get_data(as_text=True)
        assert page.status_code == 503 and DOWN in text and "Please do not pay again" in text
        assert purchase.reference in text  # what to tell staff
        assert "nothing was charged" not in text and "Traceback" not in text
        status = KioskClient(app).get("/").status_code  # browsing goes on meanwhile
        assert status == 200
    finally:
        pg_cluster.start_server()
    page = purchase.confirm()
    assert page.status_code == 200 and purchase.intent in page.get_data(as_text=True)
    paid = order(app, purchase.reference)
    assert paid["status"] == "paid" and on_hand(app, book.isbn13) == before - 1
    state = paid_state(app, stripe_server)
    assert state["lost"] == 0 and state["double"] == 0 and state["charged"] == 1 == state["paid"]
