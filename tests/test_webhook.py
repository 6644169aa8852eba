"""POST /stripe/webhook: Stripe's signature, the same settling code as reconciliation, replays change nothing."""
import hashlib
import hmac
import json
import threading
import time
from contextlib import closing

import pytest
from localstripe import webhooks as ls_webhooks
from werkzeug.serving import make_server

from kiosk import create_app
from tests.support.ledger import books, buy, count, ledger, on_hand, order
from tests.support.settings import make_settings

SECRET = "whsec_test_kioskwebhooksecret"


@pytest.fixture
def app(tmp_path, stripe_server):
    settings = make_settings(tmp_path, stripe_server, STRIPE_WEBHOOK_SECRET=SECRET)
    return create_app(settings, testing=True)


def signed(event, secret=SECRET, at=None):
    """The body and Stripe-Signature header Stripe sends (its documented v1 scheme: HMAC-SHA256 of "t.body")."""
    body = json.dumps(event).encode()
    at = int(at or time.time())
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={at},v1={digest}", "Content-Type": "application/json"}


def event_for(stripe_server, intent_id, kind="payment_intent.succeeded", event_id="evt_1"):
    """An event carrying the intent as localstripe has it now."""
    obj = stripe_server.client().v1.payment_intents.retrieve(intent_id).to_dict()
    return {"id": event_id, "object": "event", "type": kind, "created": int(time.time()), "data": {"object": obj}}


def post(app, body, headers):
    # No CSRF token and no session: Stripe (or `stripe listen`) sends neither.
    return app.test_client().post("/stripe/webhook", data=body, headers=headers)


def test_a_signed_event_settles_the_order_and_a_replay_changes_nothing(app, stripe_server):
    book = books(app)[0]
    purchase = buy(app, stripe_server, {book.isbn13: 1}, confirm=False)
    body, headers = signed(event_for(stripe_server, purchase.intent))
    reply = post(app, body, headers)
    assert reply.status_code == 200 and reply.json == {"received": True, "order": purchase.reference, "status": "paid"}
    assert order(app, purchase.reference)["status"] == "paid" and on_hand(app, book.isbn13) == book.stock - 1
    snapshot = dict(order(app, purchase.reference))
    for _ in range(2):
        again = post(app, body, headers)
        assert again.status_code == 200 and again.json["replayed"] is True
    # A different event about the same payment is settled by the same idempotent code.
    assert post(app, *signed(event_for(stripe_server, purchase.intent, event_id="evt_2"))).status_code == 200
    assert dict(order(app, purchase.reference)) == snapshot
    assert on_hand(app, book.isbn13) == book.stock - 1
    assert count(app, "SELECT COUNT(*) FROM stock_movements WHERE reason = 'sale'") == 1
    assert count(app, "SELECT COUNT(*) FROM webhook_events") == 2


@pytest.mark.parametrize("tamper", ["wrong secret", "changed body", "no header", "stale timestamp"])
def test_a_bad_signature_is_refused_and_changes_nothing(app, stripe_server, tamper):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, confirm=False)
    event = event_for(stripe_server, purchase.intent)
    body, headers = signed(event, secret="whsec_not_ours" if tamper == "wrong secret" else SECRET,
                           at=time.time() - 3600 if tamper == "stale timestamp" else None)
    if tamper == "changed body":
        body = body.replace(b'"evt_1"', b'"evt_9"')
    if tamper == "no header":
        headers.pop("Stripe-Signature")
    reply = post(app, body, headers)
    assert reply.status_code == 400 and "signature" in reply.json["error"]
    assert order(app, purchase.reference)["status"] == "pending"
    assert count(app, "SELECT COUNT(*) FROM webhook_events") == 0


def test_the_event_payload_is_not_trusted_over_stripe(app, stripe_server):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, pay=False)
    event = event_for(stripe_server, purchase.intent)
    event["data"]["object"]["status"] = "succeeded"  # signed, but not what Stripe says now
    reply = post(app, *signed(event))
    assert reply.status_code == 200 and order(app, purchase.reference)["status"] == "pending"


def test_a_lost_sale_is_adopted_from_a_webhook(app, stripe_server):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, confirm=False)
    with closing(ledger(app)) as db:  # the ledger lost it (restored from before the sale)
        db.execute("DELETE FROM order_lines")
        db.execute("DELETE FROM orders")
    reply = post(app, *signed(event_for(stripe_server, purchase.intent)))
    assert reply.json["status"] == "paid"
    adopted = order(app, intent=purchase.intent)
    assert adopted["adopted"] == 1 and adopted["reference"] == purchase.reference


def test_another_kiosks_payment_and_other_events_are_ignored(app, stripe_server):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, confirm=False)
    event = event_for(stripe_server, purchase.intent)
    event["data"]["object"]["metadata"]["kiosk_id"] = "kiosk_elsewhere"
    assert post(app, *signed(event)).json["ignored"] == "another kiosk"
    other = {"id": "evt_c", "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    assert post(app, *signed(other)).json["ignored"] == "customer.created"
    assert order(app, purchase.reference)["status"] == "pending"


def test_without_a_secret_the_webhook_is_off(tmp_path, stripe_server):
    app = create_app(make_settings(tmp_path, stripe_server), testing=True)
    reply = post(app, *signed({"id": "evt_1", "type": "payment_intent.succeeded"}))
    assert reply.status_code == 404 and "STRIPE_WEBHOOK_SECRET" in reply.json["error"]


def test_stripe_down_asks_for_a_retry(app, stripe_server):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, confirm=False)
    body, headers = signed(event_for(stripe_server, purchase.intent))
    stripe_server.inject("500", ("GET", rf"/v1/payment_intents/{purchase.intent}"))
    assert post(app, body, headers).status_code == 503
    assert count(app, "SELECT COUNT(*) FROM webhook_events") == 0  # not marked handled: Stripe's retry will count
    stripe_server.clear_faults()
    assert post(app, body, headers).json["status"] == "paid"


def test_events_delivered_by_localstripe_settle_the_order(app, stripe_server):
    """End to end: localstripe signs and POSTs its own event to the kiosk served over HTTP."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ls_webhooks.register_webhook("kiosk-test", f"http://127.0.0.1:{server.port}/stripe/webhook", SECRET,
                                 ["payment_intent.succeeded"])
    try:
        purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, confirm=False)
        deadline = time.time() + 10  # localstripe waits about 1 s before it sends
        while order(app, purchase.reference)["status"] != "paid" and time.time() < deadline:
            time.sleep(0.1)
        assert order(app, purchase.reference)["status"] == "paid"
        assert count(app, "SELECT COUNT(*) FROM webhook_events WHERE type = 'payment_intent.succeeded'") == 1
    finally:
        ls_webhooks._webhooks.pop("kiosk-test", None)
        server.shutdown()
        thread.join(5)
