"""The card reader (Stripe Terminal, server-driven) through the kiosk's routes: paid, declined then paid, canceled,
busy, offline, a double tap, the idle reset, switching between the reader and the typed card, and a crash after
the tap. Money is checked as money: what Stripe charged against what the ledger recorded and what stock did."""
import threading
from contextlib import closing

import pytest

from kiosk import create_app
from kiosk.ledger import orders
from kiosk.payments import reconcile
from kiosk.payments.gateway import Gateway, PaymentError
from kiosk.web import receipts
from kiosk.web.views import payment_status
from tests.support import fakestripe_terminal
from tests.support.client import KioskClient, signed_in
from tests.support.ledger import books, ledger, on_hand
from tests.support.settings import make_settings

DECLINED = "4000000000000002"


@pytest.fixture
def reader(stripe_server):
    return stripe_server.simulated_reader()


@pytest.fixture
def app(tmp_path, stripe_server, reader, ledger_url):
    """A kiosk with the reader, its ledger in SQLite or (each test runs on both) PostgreSQL."""
    database = {"KIOSK_DATABASE_URL": ledger_url} if ledger_url.startswith("postgres") else {}
    return create_app(make_settings(tmp_path, stripe_server,
                                    STRIPE_TERMINAL_READER=reader,
                                    KIOSK_STAFF_PIN="2468", **database), testing=True)


@pytest.fixture
def client(app):
    return KioskClient(app)


def order_row(app):
    with closing(ledger(app)) as db:
        rows = db.execute("SELECT * FROM orders").fetchall()
    assert len(rows) == 1
    return rows[0]


def succeeded_charges(stripe_server):
    return [(c.payment_intent, c.amount) for c in stripe_server.charges() if c.status == "succeeded"]


def held(app, isbn):
    with closing(ledger(app)) as db:
        return db.execute("SELECT held FROM stock WHERE isbn = ?", (isbn,)).fetchone()[0]


def an_isbn(app):
    return next(b.isbn13 for b in books(app) if b.stock >= 2)


def start_on_reader(client):
    isbn = an_isbn(client.app)
    client.add(isbn)
    attempt = client.start_checkout()
    reply = client.post("/checkout/reader", json={"attempt": attempt})
    return isbn, attempt, reply


def status(client, attempt):
    return client.get(f"/checkout/reader/status?attempt={attempt}").json


def test_checkout_offers_the_reader_only_when_one_is_set(tmp_path, stripe_server, reader):
    with_reader = KioskClient(create_app(make_settings(
        tmp_path / "a", stripe_server, STRIPE_TERMINAL_READER=reader), testing=True))
    without = KioskClient(create_app(make_settings(tmp_path / "b", stripe_server), testing=True))
    for c in (with_reader, without):
        c.add(an_isbn(c.app))
    assert "Pay with the card reader" in with_reader.get("/checkout/").get_data(as_text=True)
    assert "Pay with the card reader" not in without.get("/checkout/").get_data(as_text=True)
    assert without.post("/checkout/reader", json={"attempt": without.start_checkout()}).status_code == 409


def test_a_tap_pays_once_and_the_receipt_shows_what_card_networks_require(app, client, stripe_server, reader):
    isbn, attempt, reply = start_on_reader(client)
    assert reply.status_code == 200 and reply.json["waiting"] is True
    before = on_hand(app, isbn)
    pending = order_row(app)
    assert pending["method"] == "card_present" and pending["status"] == "pending" and held(app, isbn) == 1
    intent = stripe_server.client().v1.payment_intents.retrieve(pending["payment_intent"])
    assert intent.payment_method_types == ["card_present"] and intent.amount == pending["amount"]
    assert intent.metadata["kiosk_id"] and intent.metadata["order_ref"] == pending["reference"]
    assert status(client, attempt)["state"] == "waiting"

    stripe_server.tap(reader)
    answer = status(client, attempt)
    assert answer["state"] == "paid"
    page = client.get(answer["returnUrl"].replace("http://localhost", "")).get_data(as_text=True)
    paid = order_row(app)
    assert succeeded_charges(stripe_server) == [(paid["payment_intent"], paid["amount"])]
    assert paid["status"] == "paid" and on_hand(app, isbn) == before - 1 and held(app, isbn) == 0
    assert "VISA •••• 4242" in page and "A0000000031010" in page and "Stripe Credit" in page
    assert "3030" in page and "No verification required" in page


def test_a_declined_card_is_explained_and_the_reader_takes_the_next_one(app, client, stripe_server, reader):
    isbn, attempt, _ = start_on_reader(client)
    stripe_server.tap(reader, DECLINED)
    answer = status(client, attempt)
    assert answer["state"] == "declined" and "Your card was declined." in answer["message"]
    declined = order_row(app)
    assert declined["status"] == "failed" and held(app, isbn) == 1  # the copy stays theirs for the next try
    assert client.get("/cart/summary").json["count"] == 1  # the cart is kept
    again = client.post("/checkout/reader", json={"attempt": attempt})
    assert again.status_code == 200 and status(client, attempt)["state"] == "waiting"
    stripe_server.tap(reader)
    assert status(client, attempt)["state"] == "paid"
    paid = order_row(app)
    assert paid["payment_intent"] == declined["payment_intent"]  # one intent, one charge
    assert succeeded_charges(stripe_server) == [(paid["payment_intent"], paid["amount"])]
    failed = [c for c in stripe_server.charges() if c.status == "failed"]
    assert len(failed) == 1 and held(app, isbn) == 0


def test_a_tap_for_another_amount_is_never_recorded_as_paid_and_the_status_answers(app, client, stripe_server,
                                                                                      reader):
    """Stripe charged what the ledger did not ask for: the order is failed for staff, asked about once per poll."""
    isbn, attempt, _ = start_on_reader(client)
    before = on_hand(app, isbn)
    with closing(ledger(app)) as db:  # as if the order had been changed under the intent
        db.execute("UPDATE orders SET amount = amount + 1")
    stripe_server.tap(reader)
    for _ in range(2):
        answer = status(client, attempt)
        assert answer["state"] == "stopped" and "ask staff" in answer["message"]
    failed = order_row(app)
    assert failed["status"] == "failed" and "Amount mismatch" in failed["last_error"]
    assert succeeded_charges(stripe_server) == [(failed["payment_intent"], failed["amount"] - 1)]
    assert on_hand(app, isbn) == before and held(app, isbn) == 0  # never the sale: the copy is back


def test_cancel_stops_the_reader_and_gives_the_copy_back(app, client, stripe_server, reader):
    isbn, _, _ = start_on_reader(client)
    before = on_hand(app, isbn)
    reply = client.post("/checkout/reader/cancel")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/checkout/")
    row = order_row(app)
    assert row["status"] == "canceled" and held(app, isbn) == 0 and on_hand(app, isbn) == before
    assert stripe_server.client().v1.terminal.readers.retrieve(reader).action is None
    assert stripe_server.client().v1.payment_intents.retrieve(row["payment_intent"]).status == "canceled"
    with pytest.raises(Exception, match="no action waiting"):
        stripe_server.tap(reader)  # nothing left on the reader to pay
    assert succeeded_charges(stripe_server) == []


@pytest.mark.parametrize(("state", "said"), [({"busy": True}, "busy"), ({"offline": True}, "offline")])
def test_a_busy_or_offline_reader_is_said_plainly_and_the_card_form_still_works(app, client, stripe_server, reader,
                                                                               state, said):
    stripe_server.set_reader(reader, **state)
    isbn, attempt, reply = start_on_reader(client)
    assert reply.status_code == 503 and said in reply.json["error"] and "type your card" in reply.json["error"]
    intent = client.post("/checkout/intent", json={"attempt": attempt})
    assert intent.status_code == 200
    card_intent = intent.json["clientSecret"].split("_secret_")[0]
    assert stripe_server.pay(card_intent) == "succeeded"
    assert client.get(f"/checkout/complete?ref={intent.json['reference']}").status_code == 200
    row = order_row(app)
    assert (row["status"], row["method"], row["payment_intent"]) == ("paid", "card", card_intent)
    assert succeeded_charges(stripe_server) == [(card_intent, row["amount"])]
    # The reader's intent made before it answered is canceled, so no later tap could pay it.
    others = [pi for pi in stripe_server.intents() if pi.id != card_intent]
    assert [pi.status for pi in others] == ["canceled"] and f"{others[0].id} canceled" in row["note"]
    assert held(app, isbn) == 0


def test_a_double_tap_starts_one_reader_action(app, client, stripe_server, reader):
    isbn = an_isbn(app)
    client.add(isbn)
    attempt = client.start_checkout()
    client.token()
    replies = []
    gate = threading.Barrier(3)

    def press():
        gate.wait()
        replies.append(client.post("/checkout/reader", json={"attempt": attempt}).status_code)

    threads = [threading.Thread(target=press) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    processed = [r for r in stripe_server.requests if r[0] == "POST" and r[1].endswith("/process_payment_intent")]
    assert replies == [200, 200, 200] and len(processed) == 1
    assert len(stripe_server.intents()) == 1


def test_the_idle_reset_stops_the_reader(app, client, stripe_server, reader):
    isbn, _, _ = start_on_reader(client)
    assert client.post("/session/reset").status_code == 303
    row = order_row(app)
    assert row["status"] == "canceled" and held(app, isbn) == 0
    assert stripe_server.client().v1.terminal.readers.retrieve(reader).action is None


def test_typed_card_then_the_reader_cancels_the_card_intent_first(app, client, stripe_server, reader):
    isbn = an_isbn(app)
    client.add(isbn)
    attempt = client.start_checkout()
    card = client.post("/checkout/intent", json={"attempt": attempt}).json["clientSecret"].split("_secret_")[0]
    assert client.post("/checkout/reader", json={"attempt": attempt}).status_code == 200
    assert stripe_server.client().v1.payment_intents.retrieve(card).status == "canceled"
    stripe_server.tap(reader)
    assert status(client, attempt)["state"] == "paid"
    row = order_row(app)
    assert row["method"] == "card_present" and row["payment_intent"] != card
    assert succeeded_charges(stripe_server) == [(row["payment_intent"], row["amount"])]


def test_a_crash_after_the_tap_is_recovered_by_the_reconciler(app, client, stripe_server, reader):
    isbn, _, _ = start_on_reader(client)
    before = on_hand(app, isbn)
    stripe_server.tap(reader)  # ...and the kiosk stops before it asks again
    restarted = create_app(app.extensions["kiosk"].settings, testing=True)
    with restarted.app_context():
        from kiosk.ledger.db import get_db
        report = reconcile.sweep(get_db(), restarted.extensions["kiosk"])
    row = order_row(app)
    assert row["reference"] in report.settled and row["status"] == "paid" and row["method"] == "card_present"
    assert succeeded_charges(stripe_server) == [(row["payment_intent"], row["amount"])]
    assert on_hand(app, isbn) == before - 1 and held(app, isbn) == 0


def test_gateway_terminal_calls(stripe_server, reader):
    gateway = Gateway(stripe_server.sk, stripe_server.url, timeout=5, retries=0)
    location = gateway.create_location("Shop", {"line1": "2 Main St", "city": "Town", "postal_code": "99999",
                                                "state": "CA", "country": "US"}, "loc-1")
    assert (location, "Shop") in gateway.locations()
    registered = gateway.register_reader("simulated-wpe", "Till 2", location, "reg-1")
    assert registered.id.startswith("tmr_") and registered.label == "Till 2" and registered.online
    assert {r.id for r in gateway.readers()} == {reader, registered.id}
    intent = gateway.create_intent(amount=1234, currency="usd", allowed_types=["card_present"],
                                   metadata={}, description="t", idempotency_key="k-1")
    waiting = gateway.process_on_reader(registered.id, intent.id)
    assert waiting.waiting_for(intent.id) == "in_progress" and waiting.waiting_for("pi_other") is None
    assert gateway.cancel_reader_action(registered.id).action == {}
    fakestripe_terminal.set_busy(registered.id)
    with pytest.raises(PaymentError) as busy:
        gateway.process_on_reader(registered.id, intent.id)
    assert (busy.value.kind, busy.value.retryable, payment_status(busy.value)) == ("reader_busy", True, 503)
    fakestripe_terminal.set_busy(registered.id, False)
    fakestripe_terminal.set_offline(registered.id)
    with pytest.raises(PaymentError) as offline:
        gateway.process_on_reader(registered.id, intent.id)
    assert offline.value.kind == "reader_offline" and "offline" in offline.value.message
    with pytest.raises(PaymentError) as bad_code:
        gateway.register_reader("not-a-code", "x", location, "reg-2")
    assert bad_code.value.kind == "invalid"
    fakestripe_terminal.set_offline(registered.id, False)
    gateway.process_on_reader(registered.id, intent.id)
    stripe_server.tap(registered.id, "4000056655665556")
    paid = gateway.retrieve(intent.id)
    assert paid.status == "succeeded" and paid.amount == 1234 and paid.payment_method_types == ("card_present",)
    assert paid.card_present["last4"] == "5556" and paid.card_present["brand"] == "visa"


def test_adopted_reader_payments_are_marked_as_reader(app, stripe_server, reader):
    """A tapped payment the ledger never heard of (a lost ledger) is adopted as a reader sale."""
    kiosk = app.extensions["kiosk"]
    isbn = an_isbn(app)
    price = kiosk.catalog.get(isbn).price
    intent = kiosk.gateway.create_intent(amount=price, currency="usd", allowed_types=["card_present"],
                                         metadata={"kiosk_id": kiosk.kiosk_id, "order_ref": "BK-LOST",
                                                   "items": f"{isbn}x1"}, description="lost", idempotency_key="lost")
    kiosk.gateway.process_on_reader(reader, intent.id)
    stripe_server.tap(reader)
    with app.app_context():
        from kiosk.ledger.db import get_db
        report = reconcile.sweep(get_db(), kiosk)
    row = order_row(app)
    assert report.adopted == ["BK-LOST"] and row["method"] == "card_present" and row["amount"] == price
    assert orders.SOLD[0] == row["status"]


def test_staff_see_which_sales_were_on_the_reader(app, client, stripe_server, reader):
    isbn, attempt, _ = start_on_reader(client)
    stripe_server.tap(reader)
    assert status(client, attempt)["state"] == "paid"
    card_buyer = KioskClient(app)
    card_buyer.add(isbn)
    intent = card_buyer.post("/checkout/intent", json={"attempt": card_buyer.start_checkout()}).json
    assert stripe_server.pay(intent["clientSecret"].split("_secret_")[0]) == "succeeded"
    assert card_buyer.get(f"/checkout/complete?ref={intent['reference']}").status_code == 200
    staff = signed_in(app, "2468")
    price = app.extensions["kiosk"].catalog.get(isbn).price
    money = app.extensions["kiosk"].money(price)
    day = staff.get("/staff/day").get_data(as_text=True)
    section = day[day.index('id="day-methods"'):]
    none = app.extensions["kiosk"].money(0)  # no discount on either
    assert f"<th scope=\"row\">reader</th><td>1</td><td>{none}</td><td>{money}</td>" in section
    assert f"<th scope=\"row\">typed card</th><td>1</td><td>{none}</td><td>{money}</td>" in section
    listing = staff.get("/staff/orders").get_data(as_text=True)
    assert listing.count("<td>reader</td>") == 1 and listing.count("<td>typed card</td>") == 1
    csv_text = staff.get("/staff/export.csv").get_data(as_text=True)
    assert '"Paid by"' in csv_text and '"reader"' in csv_text and '"typed card"' in csv_text


@pytest.mark.parametrize(("method", "said"), [("offline_pin_and_signature", "PIN and signature"),
                                              ("approval", "Approved by the card issuer"),
                                              ("online_pin", "PIN verified"), ("failure", "Verification failed")])
def test_every_verification_method_stripe_sends_is_named_on_the_receipt(app, method, said):
    card = {"brand": "visa", "last4": "4242", "application": "VISA CREDIT", "aid": "A0000000031010",
            "response_code": "00", "verification": method}
    with app.test_request_context():
        assert ("Verification", said) in receipts.card_lines(card)
