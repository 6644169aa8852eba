"""Shop pages and the checkout flow through the Flask app, against localstripe."""
import re

from kiosk import create_app
from kiosk.ledger import orders
from kiosk.ledger import stock as shelves
from tests.support.client import KioskClient
from tests.support.ledger import ledger
from tests.support.settings import make_settings


def catalog(app):
    return app.extensions["kiosk"].catalog



def test_home_lists_books_with_prices(client, app):
    page = client.get("/").get_data(as_text=True)
    first = catalog(app).books[0]
    assert first.title.replace("'", "&#39;") in page and app.extensions["kiosk"].money(first.price) in page
    assert "TEST MODE" in page


def test_search_partial_and_full(client, app):
    assert "The Time Machine" in client.get("/search?q=time&partial=1").get_data(as_text=True)
    assert "<html" not in client.get("/search?q=time&partial=1").get_data(as_text=True)
    page = client.get("/search?q=nothing-like-this").get_data(as_text=True)
    assert "No books match" in page


def test_book_page_and_unknown_isbn(client, app):
    book = catalog(app).books[0]
    assert book.author in client.get(f"/book/{book.isbn13}").get_data(as_text=True)
    assert client.get("/book/9780306406158").status_code == 404
    assert client.get("/book/not-an-isbn").status_code == 404


def test_cart_add_update_remove_with_server_total(client, app):
    a, b = catalog(app).books[:2]
    client.add(a.isbn13, 2)
    client.add(b.isbn13, 1)
    page = client.get("/cart").get_data(as_text=True)
    expected = app.extensions["kiosk"].money(a.price * 2 + b.price)
    assert re.search(r'id="cart-total">([^<]+)', page).group(1) == expected
    client.post("/cart/update", data={"isbn": a.isbn13, "quantity": "1"})
    client.post("/cart/remove", data={"isbn": b.isbn13})
    summary = client.get("/cart/summary", headers={"Accept": "application/json"}).json
    assert (summary["count"], summary["total"]) == (1, a.price)


def test_cart_refuses_more_than_stock(client, app):
    book = catalog(app).books[0]
    reply = client.post("/cart/add", json={"isbn": book.isbn13, "quantity": book.stock + 1})
    assert reply.status_code == 409 and "left" in reply.json["message"]
    assert client.get("/cart/summary").json["count"] == 0


def test_post_without_csrf_token_is_refused(app):
    http = app.test_client()
    book = catalog(app).books[0]
    reply = http.post("/cart/add", data={"isbn": book.isbn13, "quantity": "1"})
    assert reply.status_code == 400 and b"Traceback" not in reply.data


def test_full_purchase_records_once(client, app, stripe_server):
    a, b = catalog(app).books[:2]
    client.add(a.isbn13, 2)
    client.add(b.isbn13, 1)
    attempt = client.start_checkout()
    reply = client.post("/checkout/intent", json={"attempt": attempt, "amount": 1, "price": 1})
    intent_id = reply.json["clientSecret"].split("_secret_")[0]
    intent = stripe_server.client().v1.payment_intents.retrieve(intent_id)
    assert intent.amount == a.price * 2 + b.price and intent.currency == "usd"
    assert set(intent.metadata["items"].split(",")) == {f"{a.isbn13}x2", f"{b.isbn13}x1"}
    with ledger(app) as db:
        order = orders.get(db, intent=intent_id)
        assert order["status"] == "pending" and order["amount"] == intent.amount
    assert stripe_server.pay(intent_id) == "succeeded"
    url = reply.json["returnUrl"].split("localhost", 1)[1]
    for _ in range(2):  # reloading the confirmation records nothing twice
        page = client.get(url).get_data(as_text=True)
        assert intent_id in page and app.extensions["kiosk"].money(intent.amount) in page
    db = ledger(app)
    assert orders.get(db, intent=intent_id)["status"] == "paid"
    assert shelves.stock_levels(db, [a.isbn13])[a.isbn13] == a.stock - 2
    assert db.execute("SELECT COUNT(*) FROM stock_movements WHERE reason = 'sale'").fetchone()[0] == 2
    assert client.get("/cart/summary").json["count"] == 0


def test_double_click_reuses_one_intent(client, app, stripe_server):
    client.add(catalog(app).books[0].isbn13)
    attempt = client.start_checkout()
    secrets = {client.post("/checkout/intent", json={"attempt": attempt}).json["clientSecret"] for _ in range(3)}
    assert len(secrets) == 1 and len(stripe_server.intents()) == 1


def test_changed_cart_needs_a_reload(client, app, stripe_server):
    a, b = catalog(app).books[:2]
    client.add(a.isbn13)
    attempt = client.start_checkout()
    client.add(b.isbn13)
    reply = client.post("/checkout/intent", json={"attempt": attempt})
    assert reply.status_code == 409 and reply.json["reload"] and stripe_server.intents() == []


def test_decline_then_retry_on_the_same_intent(client, app, stripe_server):
    client.add(catalog(app).books[0].isbn13)
    attempt = client.start_checkout()
    first = client.post("/checkout/intent", json={"attempt": attempt}).json
    intent_id = first["clientSecret"].split("_secret_")[0]
    assert stripe_server.pay(intent_id, card="4000000000000002") == "requires_payment_method"
    reply = client.get(first["returnUrl"].split("localhost", 1)[1])
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/checkout/")
    assert "declined" in client.get("/checkout/").get_data(as_text=True)
    assert client.get("/cart/summary").json["count"] == 1
    again = client.post("/checkout/intent", json={"attempt": attempt}).json
    assert again["clientSecret"] == first["clientSecret"]
    assert stripe_server.pay(intent_id) == "succeeded"
    assert "Payment received" in client.get(first["returnUrl"].split("localhost", 1)[1]).get_data(as_text=True)


def test_empty_cart_cannot_check_out(client, stripe_server):
    reply = client.get("/checkout/")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/cart")
    assert client.post("/checkout/intent", json={"attempt": "x"}).status_code == 400
    assert stripe_server.intents() == []


def test_receipt_is_only_shown_to_its_session(client, app, stripe_server):
    client.add(catalog(app).books[0].isbn13)
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()}).json
    stripe_server.pay(reply["clientSecret"].split("_secret_")[0])
    url = reply["returnUrl"].split("localhost", 1)[1]
    assert client.get(url).status_code == 200
    stranger = KioskClient(app)
    assert stranger.get(url).status_code == 404


def test_stripe_down_keeps_the_cart(tmp_path, stripe_server):
    settings = make_settings(tmp_path, stripe_server, STRIPE_API_BASE="http://127.0.0.1:9")
    app = create_app(settings, testing=True)
    client = KioskClient(app)
    client.add(catalog(app).books[0].isbn13)
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()})
    assert reply.status_code == 503 and "briefly unavailable" in reply.json["error"] and reply.json["retry"]
    assert client.get("/cart/summary").json["count"] == 1
    with ledger(app) as db:
        assert db.execute("SELECT status FROM orders").fetchone()["status"] == "pending"


def test_missing_keys_ask_the_customer_to_pay_at_the_counter(tmp_path):
    app = create_app(make_settings(tmp_path), testing=True)
    client = KioskClient(app)
    assert client.get("/").status_code == 200
    client.add(catalog(app).books[0].isbn13)
    page = client.get("/checkout/")
    assert page.status_code == 200 and "Please pay at the counter" in page.get_data(as_text=True)
    assert "STRIPE_" not in page.get_data(as_text=True) and "Traceback" not in page.get_data(as_text=True)
    refused = client.post("/checkout/intent", json={"attempt": "x"})
    assert refused.status_code == 409 and refused.json["error"] == "Please pay at the counter"


def test_secret_key_never_reaches_a_page(client, app, stripe_server):
    client.add(catalog(app).books[0].isbn13)
    for url in ("/", "/cart", "/checkout/"):
        assert stripe_server.sk not in client.get(url).get_data(as_text=True)
    assert stripe_server.pk in client.get("/checkout/").get_data(as_text=True)
