"""Before payments are set up: customers browse and are asked to pay at the counter (never shown settings, file
paths or "restart"); staff pages and the terminal say how to set the kiosk up on its own screen (issue #25)."""
import html
import re
from contextlib import closing
from types import SimpleNamespace

import pytest

from kiosk import create_app
from kiosk.__main__ import setup_hint
from tests.support.client import KioskClient, signed_in
from tests.support.ledger import ledger
from tests.support.process import KioskProcess
from tests.support.settings import make_settings

PIN = "482916"
# What a customer must never read: setting names, the settings file, key prefixes, a restart, a stack trace.
NOT_FOR_CUSTOMERS = re.compile(r"STRIPE_|KIOSK_|\.env|sk_test|pk_test|restart|Traceback|Set up this kiosk|Settings")


def keyless(tmp_path, **env):
    """An app with no Stripe keys (and, unless told, no staff PIN): a kiosk nobody has set up yet."""
    return create_app(make_settings(tmp_path, **env), testing=True)


def first_book(app):
    return app.extensions["kiosk"].catalog.books[0]


def customer_text(app, response):
    """The page as a customer reads it, checked for anything that is not for them."""
    text = response.get_data(as_text=True)
    visible = html.unescape(re.sub(r"<script\b.*?</script>|<[^>]+>", " ", text, flags=re.S))
    assert not NOT_FOR_CUSTOMERS.search(visible), NOT_FOR_CUSTOMERS.search(visible)
    settings = app.extensions["kiosk"].settings
    assert str(settings.env_file) not in text and str(settings.data_dir) not in text
    return visible


def test_customers_browse_fill_a_cart_and_are_asked_to_pay_at_the_counter(tmp_path):
    app = keyless(tmp_path)
    client = KioskClient(app)
    book = first_book(app)
    for url in ("/", f"/book/{book.isbn13}", "/cart", f"/search?q={book.title[:6]}"):
        page = client.get(url)
        assert page.status_code == 200, url
        customer_text(app, page)
    client.add(book.isbn13, 2)
    home = client.get("/").get_data(as_text=True)
    checkout = re.search(r'<a class="button primary" id="header-checkout" href="([^"]+)"', home).group(1)
    page = client.get(checkout)
    assert page.status_code == 200
    text = customer_text(app, page)
    assert "Please pay at the counter" in text and book.title in text
    assert re.search(r'id="counter-total">([^<]+)<', page.get_data(as_text=True)).group(1) == \
        app.extensions["kiosk"].money(2 * book.price)
    assert "js.stripe.com" not in page.get_data(as_text=True)  # no payment form, no Stripe.js
    assert client.get("/cart/summary").json["count"] == 2  # the cart is kept for the counter


def test_an_empty_cart_is_told_where_to_pay_too(tmp_path):
    app = keyless(tmp_path)
    page = KioskClient(app).get("/checkout/")
    assert page.status_code == 200 and "Please pay at the counter" in customer_text(app, page)


def test_the_shop_chooses_the_words(tmp_path):
    app = keyless(tmp_path, KIOSK_UNPAID_MESSAGE="Pay at the till, please")
    client = KioskClient(app)
    client.add(first_book(app).isbn13)
    text = customer_text(app, client.get("/checkout/"))
    assert "Pay at the till, please" in text and "Please pay at the counter" not in text
    assert client.post("/checkout/intent", json={"attempt": "x"}).json["error"] == "Pay at the till, please"


@pytest.mark.parametrize("path", ["/checkout/intent", "/checkout/reader"])
def test_payment_endpoints_refuse_clearly(tmp_path, path):
    app = keyless(tmp_path)
    client = KioskClient(app)
    client.add(first_book(app).isbn13)
    refused = client.post(path, json={"attempt": "0" * 32})
    assert refused.status_code == 409
    assert refused.json["error"] == "Please pay at the counter" and refused.json["reload"] is True
    # The same POST from a form (not the page's script) gets a page saying so, never a 500.
    page = client.post(path, data={"attempt": "0" * 32})
    assert page.status_code == 409 and "Please pay at the counter" in customer_text(app, page)
    with closing(ledger(app)) as db:
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0  # nothing was started


@pytest.mark.parametrize("path", ["/checkout/cancel", "/checkout/reader/cancel"])
def test_canceling_with_nothing_to_cancel_is_no_error(tmp_path, path):
    app = keyless(tmp_path)
    client = KioskClient(app)
    client.add(first_book(app).isbn13)
    assert client.post(path).status_code == 302
    status = client.get("/checkout/reader/status?attempt=x", headers={"Accept": "application/json"})
    assert status.status_code == 409 and status.json["reload"] is True  # a page from before reloads: the counter


def test_the_first_run_screen_says_how_to_set_it_up(tmp_path):
    app = keyless(tmp_path)
    client = KioskClient(app)
    assert client.get("/staff/").headers["Location"].endswith("/staff/setup")
    page = client.get("/staff/setup").get_data(as_text=True)
    notice = re.search(r'<section class="flash setup-notice".*?</section>', page, re.S).group(0)
    assert "Set up this kiosk" in notice and "press Staff" in notice
    assert "printed in the terminal" in notice and "screen key" in notice and "restart" not in notice


def test_staff_with_a_pin_are_told_to_enter_the_keys_in_settings(tmp_path):
    app = keyless(tmp_path, KIOSK_STAFF_PIN=PIN)
    sign_in = KioskClient(app).get("/staff/").get_data(as_text=True)
    assert 'id="pin"' in sign_in and 'id="setup-notice"' in sign_in and "open Settings" in sign_in
    dashboard = signed_in(app, PIN).get("/staff/").get_data(as_text=True)
    assert 'id="takings-sales"' in dashboard and "enter your Stripe secret and publishable keys" in dashboard
    assert "restart" not in dashboard


def test_a_kiosk_that_takes_payments_shows_no_notice(client):
    assert 'id="setup-notice"' not in client.get("/staff/").get_data(as_text=True)


def test_the_terminal_says_to_press_set_up_this_kiosk(tmp_path):
    no_keys = SimpleNamespace(sk="", pk="", url="")
    (tmp_path / "data").mkdir()
    kiosk = KioskProcess(tmp_path / "data", no_keys)
    try:
        kiosk.start()
        printed = kiosk.log()
    finally:
        kiosk.kill()
    assert "Set up this kiosk" in printed and "pay at the counter" in printed
    assert "restart" not in printed
    [address] = re.findall(r"to set it up, open (\S+)", printed)
    assert "/staff/screen?key=" in address and address.endswith("next=%2Fstaff%2Fsetup")


def test_the_terminal_hint_for_the_window_and_for_a_kiosk_with_a_pin(tmp_path, stripe_server):
    window = setup_hint(make_settings(tmp_path), headless=False)
    assert "press Staff in the corner of the kiosk window" in window and "Set up this kiosk" in window
    with_pin = setup_hint(make_settings(tmp_path, KIOSK_STAFF_PIN=PIN), headless=True)
    assert "in Settings, enter the Stripe keys" in with_pin and "Set up this kiosk" not in with_pin
    assert "restart" not in window + with_pin
    assert setup_hint(make_settings(tmp_path, stripe_server), headless=True) is None  # payments work: nothing to say
