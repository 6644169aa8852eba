"""The unattended kiosk through the Flask app and localstripe: attract screen, idle reset, barcode scans,
receipts (QR, email, print), the TEST MODE banner, a zero-decimal currency, and page text in gettext."""
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import segno
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from kiosk import create_app
from kiosk.core import i18n
from kiosk.core import isbn as isbnlib
from kiosk.ledger import orders
from tests.support.client import KioskClient, stored_session
from tests.support.ledger import ledger
from tests.support.settings import make_settings

CANCEL_INTENT = ("POST", r"/v1/payment_intents/pi_\w+/cancel")
RETRIEVE_INTENT = ("GET", r"/v1/payment_intents/pi_\w+")


def books(app):
    return app.extensions["kiosk"].catalog.books



def intent_of(reply):
    return reply.json["clientSecret"].split("_secret_")[0]


def open_intent(client, app, isbn=None):
    """Add a book, open checkout and create its PaymentIntent; returns the /checkout/intent answer."""
    client.add(isbn or books(app)[0].isbn13)
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()})
    assert reply.status_code == 200
    return reply


def buy(client, app, stripe_server, isbn=None):
    """A whole purchase; returns (confirmation path, PaymentIntent id)."""
    reply = open_intent(client, app, isbn)
    assert stripe_server.pay(intent_of(reply)) == "succeeded"
    path = reply.json["returnUrl"].split("localhost", 1)[1]
    assert client.get(path).status_code == 200
    return path, intent_of(reply)


def reset(client):
    return client.post("/session/reset", json={}, headers={"Accept": "application/json"})


# ---- attract screen and the idle settings the pages carry


def test_attract_screen_has_shop_name_covers_and_touch_to_start(client, app):
    page = client.get("/attract").get_data(as_text=True)
    assert "<h1 class=\"attract-shop\">Book Counter</h1>" in page
    covers = re.findall(r'<img src="/covers/([^"]+)"', page)
    assert 1 <= len(covers) <= 8 and all(c in {b.cover for b in books(app)} for c in covers)
    assert re.search(r'<a class="attract-start" id="start" href="/"[^>]*>', page) and "Touch to start" in page
    assert "TEST MODE" in page and 'id="q"' not in page  # no shop header, still the banner


def test_pages_carry_the_idle_timeout_and_the_reset_route(tmp_path, stripe_server):
    app = create_app(make_settings(tmp_path, stripe_server, KIOSK_IDLE_SECONDS="25"), testing=True)
    page = KioskClient(app).get("/").get_data(as_text=True)
    assert 'data-idle-seconds="25"' in page and 'data-reset-url="/session/reset"' in page
    assert 'id="still-here"' in page and "I’m still here" in page


def test_attract_page_finishes_a_reset_that_did_not_reach_the_server(client, app):
    assert "data-leftover" not in client.get("/attract").get_data(as_text=True)
    client.add(books(app)[0].isbn13)
    assert "data-leftover" in client.get("/attract").get_data(as_text=True)


# ---- the idle reset


def test_reset_cancels_the_open_intent_and_forgets_the_customer(client, app, stripe_server):
    reply = open_intent(client, app)
    intent_id = intent_of(reply)
    old_sid = client.http.get_cookie("kiosk_sid").value
    answer = reset(client)
    assert answer.status_code == 200 and answer.json["next"] == "/attract"
    assert stripe_server.client().v1.payment_intents.retrieve(intent_id).status == "canceled"
    with ledger(app) as db:
        order = orders.get(db, intent=intent_id)
        assert order["status"] == "canceled" and "idle reset" in order["last_error"]
    # Nothing of the customer is left under the old id, which stays refused (a tombstone, never the id itself).
    assert stored_session(app, old_sid) == {"revoked": True, "cart": {}, "staff": False, "attempts": 0,
                                            "plain id stored": False}
    assert client.get("/cart/summary").json["count"] == 0
    # The old session id leads nowhere: a browser that kept it starts empty.
    stale = app.test_client()
    stale.set_cookie("kiosk_sid", old_sid)
    assert stale.get("/cart/summary").json["count"] == 0


def test_reset_by_a_plain_form_lands_on_the_attract_screen(client, app):
    client.add(books(app)[0].isbn13)
    answer = client.post("/session/reset", data={})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/attract")
    assert client.get("/cart/summary").json["count"] == 0


def test_receipt_stops_showing_once_the_kiosk_has_reset(client, app, stripe_server):
    path, intent_id = buy(client, app, stripe_server)
    page = client.get(path)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    reset(client)
    gone = client.get(path)
    assert gone.status_code == 404 and intent_id not in gone.get_data(as_text=True)
    with ledger(app) as db:
        assert orders.get(db, intent=intent_id)["status"] == "paid"  # a reset never touches a paid order


def test_reset_records_a_payment_that_succeeded_just_before_it(client, app, stripe_server):
    reply = open_intent(client, app)
    intent_id = intent_of(reply)
    stripe_server.pay(intent_id)  # the customer paid, then walked away before the confirmation loaded
    reset(client)
    assert stripe_server.client().v1.payment_intents.retrieve(intent_id).status == "succeeded"
    with ledger(app) as db:
        assert orders.get(db, intent=intent_id)["status"] == "paid"


def test_reset_with_stripe_down_still_forgets_the_customer(client, app, stripe_server):
    reply = open_intent(client, app)
    cancel = stripe_server.inject("500", CANCEL_INTENT)
    stripe_server.inject("500", RETRIEVE_INTENT)
    assert reset(client).status_code == 200 and cancel.hits == 1
    assert client.get("/cart/summary").json["count"] == 0
    with ledger(app) as db:  # left for the reconciler to settle when Stripe is back
        assert orders.get(db, intent=intent_of(reply))["status"] == "pending"


def test_reset_without_a_checkout_or_without_keys(tmp_path, client, app):
    client.add(books(app)[0].isbn13)
    assert reset(client).status_code == 200 and client.get("/cart/summary").json["count"] == 0
    keyless = KioskClient(create_app(make_settings(tmp_path / "k"), testing=True))
    keyless.add(books(app)[0].isbn13)
    assert reset(keyless).status_code == 200 and keyless.get("/cart/summary").json["count"] == 0


def test_reset_needs_the_csrf_token(app):
    assert app.test_client().post("/session/reset", json={}).status_code == 400


# ---- barcode scans


def scan(client, code):
    return client.post("/scan", json={"code": code})


def isbn10_of(isbn13):
    core = isbn13[3:12]
    check = (11 - sum((10 - i) * int(d) for i, d in enumerate(core)) % 11) % 11
    return core + ("X" if check == 10 else str(check))


def test_scanning_an_isbn13_adds_the_book(client, app):
    book = books(app)[0]
    reply = scan(client, book.isbn13)
    assert reply.status_code == 200 and reply.json["isbn"] == book.isbn13 and book.title in reply.json["message"]
    assert reply.json["cart_count"] == 1 and reply.json["cart_label"] == "1 book"
    assert reply.json["total_text"] == app.extensions["kiosk"].money(book.price)
    assert scan(client, book.isbn13).json["cart_count"] == 2
    assert client.get("/cart/summary").json == {"count": 2, "total": 2 * book.price,
                                                 "total_text": app.extensions["kiosk"].money(2 * book.price)}


def test_scanning_finds_a_book_by_either_isbn_form(client, app):
    listed_as_13 = next(b for b in books(app) if len(b.isbn) == 13 and b.isbn13.startswith("978"))
    listed_as_10 = next(b for b in books(app) if len(b.isbn) == 10)
    assert scan(client, isbn10_of(listed_as_13.isbn13)).json["isbn"] == listed_as_13.isbn13
    assert scan(client, listed_as_10.isbn13).json["isbn"] == listed_as_10.isbn13
    hyphenated = f"{listed_as_10.isbn13[:3]}-{listed_as_10.isbn13[3:]}"
    assert scan(client, hyphenated).status_code == 200
    assert client.get("/cart/summary").json["count"] == 3


@pytest.mark.parametrize("code", ["9780306406157", "4006381333931", "12345678", "hello"])
def test_a_code_not_in_the_catalog_is_not_in_this_shop(client, app, code):
    assert isbnlib.normalize(code) == "" or app.extensions["kiosk"].catalog.get(code) is None
    reply = scan(client, code)
    assert reply.status_code == 404 and reply.json["message"].startswith("Not in this shop")
    assert reply.json["cart_count"] == 0


def test_a_misread_isbn_asks_for_another_scan(client, app):
    code = books(app)[0].isbn13
    misread = code[:-1] + str((int(code[-1]) + 1) % 10)
    reply = scan(client, misread)
    assert reply.status_code == 422 and "scan the barcode again" in reply.json["message"]


def test_scanning_a_sold_out_book_says_so(client, app):
    book = books(app)[0]
    with ledger(app) as db:
        db.execute("UPDATE stock SET on_hand = 0 WHERE isbn = ?", (book.isbn13,))
    reply = scan(client, book.isbn13)
    assert reply.status_code == 409 and "sold out" in reply.json["message"] and reply.json["cart_count"] == 0


def test_scan_needs_the_csrf_token(app):
    assert app.test_client().post("/scan", json={"code": books(app)[0].isbn13}).status_code == 400


# ---- receipts


def test_confirmation_shows_a_qr_code_of_stripes_receipt(client, app, stripe_server):
    path, intent_id = buy(client, app, stripe_server)
    intent = stripe_server.client().v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]})
    receipt_url = intent.latest_charge.receipt_url
    assert receipt_url.startswith("https://")
    page = client.get(path).get_data(as_text=True)
    svg = re.search(r'<figure class="receipt-qr" id="receipt-qr">\s*(<svg.*?</svg>)', page, re.S).group(1)
    expected = segno.make(receipt_url, error="m", micro=False).svg_inline(scale=4, dark="#000", light="#fff",
                                                                         svgclass="qr", omitsize=True)
    assert svg.replace(' role="img" aria-label="QR code: scan it to open your receipt on your phone"', "") == expected


def test_confirmation_without_stripe_still_shows_the_order(client, app, stripe_server):
    path, intent_id = buy(client, app, stripe_server)
    stripe_server.inject("500", RETRIEVE_INTENT)
    page = client.get(path)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and intent_id in text and "<svg" not in text and "cannot be shown" in text


def receipt_ref(client, path):
    return re.search(r'id="order-ref">([^<]+)<', client.get(path).get_data(as_text=True)).group(1)


def test_receipt_email_is_set_on_the_payment_intent(client, app, stripe_server):
    path, intent_id = buy(client, app, stripe_server)
    reply = client.post("/receipt/email", data={"ref": receipt_ref(client, path), "email": " reader@example.com "},
                        headers={"Accept": "application/json"})
    assert reply.status_code == 200 and "reader@example.com" in reply.json["message"]
    assert "test mode" in reply.json["message"]  # honest: Stripe sends receipts in live mode only
    assert stripe_server.client().v1.payment_intents.retrieve(intent_id).receipt_email == "reader@example.com"
    with ledger(app) as db:  # Stripe keeps the address to send the receipt; the kiosk keeps none
        assert orders.get(db, intent=intent_id)["email"] is None


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "two@@example.com", "x" * 250 + "@example.com"])
def test_a_bad_receipt_email_is_refused(client, app, stripe_server, email):
    path, intent_id = buy(client, app, stripe_server)
    reply = client.post("/receipt/email", data={"ref": receipt_ref(client, path), "email": email},
                        headers={"Accept": "application/json"})
    assert reply.status_code == 400 and "email address" in reply.json["message"]
    assert stripe_server.client().v1.payment_intents.retrieve(intent_id).receipt_email is None


def test_receipt_email_without_script_flashes_on_the_receipt(client, app, stripe_server):
    path, _ = buy(client, app, stripe_server)
    reply = client.post("/receipt/email", data={"ref": receipt_ref(client, path), "email": "a@example.org"})
    assert reply.status_code == 303 and reply.headers["Location"].endswith(path)
    page = client.get(path).get_data(as_text=True)
    assert "a@example.org" not in page and "Saved. In test mode Stripe does not send the email" in page


def test_receipt_email_only_for_the_paying_session_and_paid_orders(client, app, stripe_server):
    path, intent_id = buy(client, app, stripe_server)
    ref = receipt_ref(client, path)
    stranger = KioskClient(app)
    assert stranger.post("/receipt/email", data={"ref": ref, "email": "x@example.com"}).status_code == 404
    reset(client)
    client._token = None  # the new session has a new CSRF token
    assert client.post("/receipt/email", data={"ref": ref, "email": "x@example.com"}).status_code == 404
    assert stripe_server.client().v1.payment_intents.retrieve(intent_id).receipt_email is None


def test_print_button_only_where_a_receipt_printer_is_set_up(tmp_path, stripe_server):
    for flag, shown in (("", False), ("1", True)):
        app = create_app(make_settings(tmp_path / f"p{flag}", stripe_server,
                                       KIOSK_PRINT_RECEIPTS=flag), testing=True)
        client = KioskClient(app)
        path, _ = buy(client, app, stripe_server)
        assert ("data-print" in client.get(path).get_data(as_text=True)) is shown


# ---- honesty: TEST MODE


def test_test_mode_banner_on_every_page_with_test_keys(client, app, stripe_server):
    book = books(app)[0]
    client.add(book.isbn13)
    urls = ["/attract", "/", "/search?q=a", f"/book/{book.isbn13}", "/cart", "/checkout/", "/no-such-page"]
    pages = [client.get(url) for url in urls]
    path, _ = buy(client, app, stripe_server, book.isbn13)
    pages.append(client.get(path))
    for url, page in zip([*urls, path], pages, strict=False):
        assert page.status_code in (200, 404), url
        assert "TEST MODE: no real money is taken" in page.get_data(as_text=True), url


def test_no_banner_with_live_keys(tmp_path, stripe_server):
    settings = make_settings(tmp_path, None, STRIPE_SECRET_KEY="sk_live_kioskfake", STRIPE_PUBLISHABLE_KEY="pk_live_x",
                             STRIPE_API_BASE=stripe_server.url)
    client = KioskClient(create_app(settings, testing=True))
    for url in ("/attract", "/", "/cart"):
        assert "TEST MODE" not in client.get(url).get_data(as_text=True)


# ---- a zero-decimal currency, end to end


def jpy_app(tmp_path, stripe_server):
    catalog = tmp_path / "books.csv"
    catalog.write_text("isbn,title,author,price,stock\n"
                       "9780306406157,Kokoro,Natsume Soseki,1500,4\n"
                       "9784062748681,Norwegian Wood,Haruki Murakami,980,2\n", encoding="utf-8")
    settings = make_settings(tmp_path, stripe_server, KIOSK_CURRENCY="jpy", KIOSK_LOCALE="ja_JP",
                             KIOSK_CATALOG=str(catalog))
    return create_app(settings, testing=True)


def test_jpy_is_right_from_catalog_to_receipt(tmp_path, stripe_server):
    app = jpy_app(tmp_path, stripe_server)
    client = KioskClient(app)
    assert "￥1,500" in client.get("/book/9780306406157").get_data(as_text=True)
    client.add("9780306406157", 2)
    assert scan(client, "9784062748681").json["total_text"] == "￥3,980"
    assert re.search(r'id="cart-total">([^<]+)', client.get("/cart").get_data(as_text=True)).group(1) == "￥3,980"
    config = re.search(r'id="stripe-config">([^<]+)<', client.get("/checkout/").get_data(as_text=True)).group(1)
    assert (json.loads(config)["amount"], json.loads(config)["currency"]) == (3980, "jpy")  # what Stripe.js gets
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()})
    intent = stripe_server.client().v1.payment_intents.retrieve(intent_of(reply))
    assert (intent.amount, intent.currency) == (3980, "jpy")
    stripe_server.pay(intent.id)
    page = client.get(reply.json["returnUrl"].split("localhost", 1)[1]).get_data(as_text=True)
    assert re.search(r'id="amount-charged">([^<]+)', page).group(1) == "￥3,980"
    assert "￥1,500" in page and "￥3,000" in page and '<html lang="ja">' in page
    with ledger(app) as db:
        assert orders.get(db, intent=intent.id)["amount"] == 3980


# ---- page text in one place, ready for translation

ROOT = Path(__file__).resolve().parent.parent
POT = ROOT / "translations" / "messages.pot"


def extracted_ids(path):
    with open(path, "rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}


def test_messages_pot_holds_every_text_in_the_code(tmp_path):
    out = tmp_path / "fresh.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(ROOT / "translations" / "babel.cfg"),
                                "-k", "lazy_gettext", "-k", "_l", "--no-location", "-o", str(out), str(ROOT)])
    missing = extracted_ids(out) - extracted_ids(POT)
    assert len(extracted_ids(out)) > 100
    assert not missing, f"translations/messages.pot is stale (see translations/README.md): {sorted(missing)[:5]}"


class VisibleText(HTMLParser):
    """Text a customer sees or hears: text nodes and labelling attributes, less scripts and keyboard keys."""

    SKIP = frozenset({"script", "style", "svg"})
    LABELS = ("aria-label", "placeholder", "alt", "title")

    def __init__(self):
        super().__init__()
        self.labels, self.text, self._skip = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.labels += [attrs[a] for a in self.LABELS if attrs.get(a)]
        if tag in self.SKIP or "data-key" in attrs:
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)  # a message may hold markup: its pieces join up again in "".join()


def test_every_page_text_comes_from_the_translation_catalog(tmp_path, stripe_server, monkeypatch):
    # A pseudo-translation wraps every message in ⟦…⟧; any text left outside one was not run through gettext.
    with open(POT, "rb") as f:
        catalog = read_po(f, locale="fr")
    for message in catalog:
        if message.id:
            message.string = (tuple(f"⟦{p}⟧" for p in message.id) if message.pluralizable else f"⟦{message.id}⟧")
    folder = tmp_path / "translations" / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "messages.mo", "wb") as f:
        write_mo(f, catalog)
    settings = make_settings(tmp_path, stripe_server, KIOSK_LOCALE="fr_FR", KIOSK_CURRENCY="eur")
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path / "translations")  # this test's catalog, not the shop's
    app = create_app(settings, testing=True)
    client = KioskClient(app)
    book = books(app)[0]
    pages = {url: client.get(url) for url in ("/attract", "/", f"/book/{book.isbn13}", "/search?q=zzzz",
                                              "/no-such-page")}
    client.add(book.isbn13)
    pages["/cart"], pages["/checkout/"] = client.get("/cart"), client.get("/checkout/")
    path, intent_id = buy(client, app, stripe_server, book.isbn13)
    pages[path] = client.get(path)
    data = sorted({b.title for b in books(app)} | {b.author for b in books(app)} | {b.category for b in books(app)}
                  | {b.description for b in books(app)}
                  | {app.extensions["kiosk"].settings.shop_name, intent_id, receipt_ref(client, path)} - {""},
                  key=len, reverse=True)
    for url, page in pages.items():
        parser = VisibleText()
        parser.feed(page.get_data(as_text=True))
        assert "⟦TEST MODE: no real money is taken⟧" in "".join(parser.text), url
        for chunk in [*parser.labels, "".join(parser.text)]:
            rest = re.sub(r"⟦[^⟧]*⟧", " ", chunk)
            for value in data:
                rest = rest.replace(value, " ")
            leftover = re.findall(r"[^\d\W_€]+", rest)
            assert not leftover, f"{url}: text outside gettext: {leftover[:8]}"


def test_reset_calls_the_windows_own_reset(client, app):
    cleared = []
    app.extensions["kiosk"].on_reset = lambda: cleared.append(True)
    client.add(books(app)[0].isbn13)
    assert reset(client).status_code == 200 and cleared == [True]
