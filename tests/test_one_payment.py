"""Never charge a book twice: one payment in flight per customer, receipts that always show, intents that a
5xx cannot poison, and refunds that cannot double up. Every test checks money: what Stripe charged (or
refunded) against what the ledger recorded, and what stock did."""
import functools
import operator
import re
from contextlib import closing

import pytest
import stripe

from kiosk.ledger import orders
from kiosk.ledger import stock as shelves
from tests.support.client import KioskClient
from tests.support.fakestripe import CREATE_INTENT, LIST_INTENTS
from tests.support.ledger import books, ledger, on_hand
from tests.support.settings import make_settings

REFUNDS = ("POST", r"/v1/refunds")
PIN = "2468"


@pytest.fixture
def app(tmp_path, stripe_server):
    from kiosk import create_app
    return create_app(make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN), testing=True)


def intent_of(reply):
    return reply.json["clientSecret"].split("_secret_")[0]


def path_of(url):
    return re.sub(r"^https?://[^/]+", "", url)


def charged(stripe):
    """{order_ref: [amounts of succeeded charges]} as Stripe has them."""
    intents = {pi.id: pi for pi in stripe.intents()}
    out = {}
    for charge in stripe.charges():
        if charge.status == "succeeded":
            out.setdefault(intents[charge.payment_intent].metadata["order_ref"], []).append(charge.amount)
    return out


def paid_orders(app):
    with closing(ledger(app)) as db:
        return {r["reference"]: r["amount"] for r in db.execute("SELECT * FROM orders WHERE status = 'paid'")}


def open_payment(client):
    """Open checkout and press Pay: the intent exists and the card is being confirmed."""
    attempt = client.start_checkout()
    reply = client.post("/checkout/intent", json={"attempt": attempt})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return attempt, reply


def test_the_cart_is_frozen_while_its_payment_is_under_way(app, client, stripe_server):
    a, b = books(app)[:2]
    client.add(a.isbn13)
    attempt, reply = open_payment(client)
    # A scan, an add, a change or a removal: each is refused with the reason, and the cart stays as it was.
    refusals = [client.post("/scan", json={"code": b.isbn13}),
                client.post("/cart/add", json={"isbn": b.isbn13, "quantity": 1}),
                client.post("/cart/update", json={"isbn": a.isbn13, "quantity": 2}),
                client.post("/cart/remove", data={"isbn": a.isbn13}, headers={"Accept": "application/json"})]
    for refused in refusals:
        assert refused.status_code == 409 and "Finish or cancel this payment first" in refused.json["message"]
    assert client.get("/cart/summary").json["count"] == 1
    cart_page = client.get("/cart").get_data(as_text=True)
    assert "This cart is being paid for" in cart_page and 'id="cancel-payment"' in cart_page
    # The checkout page comes back to the same attempt, and Pay to the same intent.
    assert client.start_checkout() == attempt
    assert intent_of(client.post("/checkout/intent", json={"attempt": attempt})) == intent_of(reply)
    stripe_server.pay(intent_of(reply))
    assert client.get(path_of(reply.json["returnUrl"])).status_code == 200
    assert charged(stripe_server) == {reply.json["reference"]: [a.price]} and paid_orders(app) == {
        reply.json["reference"]: a.price}
    assert on_hand(app, a.isbn13) == a.stock - 1 and on_hand(app, b.isbn13) == b.stock
    # Paid: the cart is free again (and empty), so the next book can be added.
    assert client.get("/cart/summary").json["count"] == 0
    assert client.add(b.isbn13).status_code == 302


def test_change_the_cart_cancels_the_payment_first(app, client, stripe_server):
    a, b = books(app)[:2]
    client.add(a.isbn13)
    _, first = open_payment(client)
    answer = client.post("/checkout/cancel")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/cart")
    assert stripe_server.client().v1.payment_intents.retrieve(intent_of(first)).status == "canceled"
    client.add(b.isbn13)
    _, second = open_payment(client)
    assert intent_of(second) != intent_of(first) and second.json["reference"] != first.json["reference"]
    stripe_server.pay(intent_of(second))
    assert client.get(path_of(second.json["returnUrl"])).status_code == 200
    # The first intent is canceled and can never be paid; the second charged both books once.
    with pytest.raises(stripe.InvalidRequestError):
        stripe_server.pay(intent_of(first))
    assert charged(stripe_server) == {second.json["reference"]: [a.price + b.price]}
    assert paid_orders(app) == {second.json["reference"]: a.price + b.price}
    assert (on_hand(app, a.isbn13), on_hand(app, b.isbn13)) == (a.stock - 1, b.stock - 1)
    with closing(ledger(app)) as db:
        assert orders.get(db, reference=first.json["reference"])["status"] == "canceled"


def test_change_the_cart_after_the_card_went_through_shows_the_receipt(app, client, stripe_server):
    a = books(app)[0]
    client.add(a.isbn13)
    _, reply = open_payment(client)
    stripe_server.pay(intent_of(reply))  # paid, but the confirmation never loaded
    answer = client.post("/checkout/cancel")
    assert answer.status_code == 302 and f"ref={reply.json['reference']}" in answer.headers["Location"]
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200 and "Payment received" in page.get_data(as_text=True)
    assert stripe_server.client().v1.payment_intents.retrieve(intent_of(reply)).status == "succeeded"
    assert charged(stripe_server) == {reply.json["reference"]: [a.price]} == {
        k: [v] for k, v in paid_orders(app).items()}
    assert client.get("/cart/summary").json["count"] == 0 and on_hand(app, a.isbn13) == a.stock - 1


def test_two_tabs_pay_one_intent_and_both_show_the_receipt(app, client, stripe_server):
    a = books(app)[0]
    client.add(a.isbn13)
    attempt_a, tab_a = open_payment(client)
    attempt_b = client.start_checkout()  # the second tab opens checkout for the same cart
    tab_b = client.post("/checkout/intent", json={"attempt": attempt_b})
    assert attempt_b == attempt_a and intent_of(tab_b) == intent_of(tab_a)
    stripe_server.pay(intent_of(tab_a))
    for reply in (tab_a, tab_b):
        page = client.get(path_of(reply.json["returnUrl"]))
        assert page.status_code == 200 and intent_of(tab_a) in page.get_data(as_text=True)
    again = client.post("/checkout/intent", json={"attempt": attempt_b})  # tab B presses Pay afterwards
    assert again.status_code == 400 and again.json["reload"]  # the cart is empty: nothing more to pay
    assert len(stripe_server.intents()) == 1 and charged(stripe_server) == {tab_a.json["reference"]: [a.price]}
    assert on_hand(app, a.isbn13) == a.stock - 1


def test_a_paid_order_keeps_showing_its_receipt_to_the_session_that_paid(app, client, stripe_server):
    a, b = books(app)[:2]
    receipts = []
    for book in (a, b):
        client.add(book.isbn13)
        _, reply = open_payment(client)
        stripe_server.pay(intent_of(reply))
        receipts.append(path_of(reply.json["returnUrl"]))
        assert client.get(receipts[-1]).status_code == 200
    for path in receipts:  # the first receipt still shows after the second purchase
        assert client.get(path).status_code == 200
    stranger = KioskClient(app)
    assert all(stranger.get(path).status_code == 404 for path in receipts)
    assert sorted(functools.reduce(operator.iadd, charged(stripe_server).values(), [])) == sorted([a.price, b.price])


def test_a_cart_changed_under_a_payment_cancels_it_before_a_new_attempt(app, client, stripe_server):
    a, b = books(app)[:2]
    client.add(a.isbn13, 2)
    client.add(b.isbn13)
    _, first = open_payment(client)
    # Staff count the shelf: only one copy of A is left, so the cart the customer is paying for shrinks.
    with closing(ledger(app)) as db:
        shelves.count_shelf(db, a.isbn13, 1, "shelf count", ("tests", "Front"))
    page = client.get("/checkout/")
    assert page.status_code == 200 and "Only 1 of" in page.get_data(as_text=True)
    assert stripe_server.client().v1.payment_intents.retrieve(intent_of(first)).status == "canceled"
    attempt = re.search(r'"attempt": ?"([0-9a-f]+)"', page.get_data(as_text=True)).group(1)
    second = client.post("/checkout/intent", json={"attempt": attempt})
    stripe_server.pay(intent_of(second))
    assert client.get(path_of(second.json["returnUrl"])).status_code == 200
    assert charged(stripe_server) == {second.json["reference"]: [a.price + b.price]}
    assert paid_orders(app) == {second.json["reference"]: a.price + b.price}


def test_a_cart_changed_under_a_payment_that_went_through_shows_its_receipt(app, client, stripe_server):
    a, b = books(app)[:2]
    client.add(a.isbn13, 2)
    client.add(b.isbn13)
    _, first = open_payment(client)
    stripe_server.pay(intent_of(first))
    with closing(ledger(app)) as db:
        shelves.count_shelf(db, a.isbn13, 1, "shelf count", ("tests", "Front"))
    answer = client.get("/checkout/")
    assert answer.status_code == 302 and f"ref={first.json['reference']}" in answer.headers["Location"]
    assert client.get(answer.headers["Location"]).status_code == 200
    assert charged(stripe_server) == {first.json["reference"]: [2 * a.price + b.price]}
    assert paid_orders(app) == {first.json["reference"]: 2 * a.price + b.price}
    assert client.get("/cart/summary").json["count"] == 0  # paid is paid, even past the shelf


@pytest.mark.parametrize("after", [False, True], ids=["before-creating", "after-creating"])
def test_a_5xx_at_intent_creation_does_not_poison_the_attempt(app, client, stripe_server, after):
    a = books(app)[0]
    client.add(a.isbn13)
    attempt = client.start_checkout()
    fault = stripe_server.inject("500", CREATE_INTENT, after=after, times=1)
    refused = client.post("/checkout/intent", json={"attempt": attempt})
    assert refused.status_code == 503 and refused.json["retry"] and fault.hits == 1
    assert len(stripe_server.intents()) == int(after)
    reply = client.post("/checkout/intent", json={"attempt": attempt})  # the customer taps Pay again
    assert reply.status_code == 200, reply.get_data(as_text=True)
    # Stripe replays the 500 for the first key: the second try looked the intent up first, then used a new
    # key, so the intent made before the 500 is the one paid, never a second.
    assert len(stripe_server.intents()) == 1
    stripe_server.pay(intent_of(reply))
    assert client.get(path_of(reply.json["returnUrl"])).status_code == 200
    assert charged(stripe_server) == {reply.json["reference"]: [a.price]} and paid_orders(app) == {
        reply.json["reference"]: a.price}
    assert on_hand(app, a.isbn13) == a.stock - 1


def test_a_5xx_replayed_for_the_same_key_is_what_stripe_does(stripe_server):
    """The fake keeps Stripe's promise: the same Idempotency-Key gets the same 500 again."""
    stripe_server.inject("500", CREATE_INTENT, times=1)
    client = stripe_server.client()
    params = {"amount": 100, "currency": "usd", "allowed_payment_method_types": ["card"]}
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            client.v1.payment_intents.create(params, {"idempotency_key": "same-key"})
    assert client.v1.payment_intents.create(params, {"idempotency_key": "new-key"}).amount == 100


def test_an_intent_lookup_that_fails_leaves_the_order_for_the_next_tap(app, client, stripe_server):
    a = books(app)[0]
    client.add(a.isbn13)
    attempt = client.start_checkout()
    stripe_server.inject("500", CREATE_INTENT, times=1)
    assert client.post("/checkout/intent", json={"attempt": attempt}).status_code == 503
    listing = stripe_server.inject("500", LIST_INTENTS, times=1)
    assert client.post("/checkout/intent", json={"attempt": attempt}).status_code == 503 and listing.hits == 1
    assert stripe_server.intents() == []
    reply = client.post("/checkout/intent", json={"attempt": attempt})
    assert reply.status_code == 200 and len(stripe_server.intents()) == 1
