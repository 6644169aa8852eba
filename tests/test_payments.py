"""The payments gateway against localstripe, through the real stripe-python client."""
import pytest

from kiosk.payments.gateway import Gateway, PaymentError


@pytest.fixture
def gateway(stripe_server):
    return Gateway(stripe_server.sk, stripe_server.url, timeout=5, retries=0)


def create(gateway, key="attempt-1", amount=2300, **extra):
    return gateway.create_intent(amount=amount, currency="USD", allowed_types=["card"],
                                 metadata={"kiosk_id": "k1", "order_ref": "BK-TEST"},
                                 description="test order", idempotency_key=key, **extra)


def test_create_retrieve_cancel(gateway, stripe_server):
    intent = create(gateway)
    assert intent.id.startswith("pi_") and intent.client_secret.startswith(intent.id + "_secret_")
    assert (intent.amount, intent.currency, intent.status) == (2300, "USD", "requires_payment_method")
    again = gateway.retrieve(intent.id)
    assert (again.id, again.metadata["order_ref"]) == (intent.id, "BK-TEST")
    assert gateway.cancel(intent.id).status == "canceled"
    assert gateway.retrieve(intent.id).status == "canceled"


def test_paid_intent_carries_its_receipt(gateway, stripe_server):
    intent = create(gateway)
    assert stripe_server.pay(intent.id) == "succeeded"
    paid = gateway.retrieve(intent.id)
    assert paid.status == "succeeded" and paid.receipt_url.startswith("https://")


def test_idempotent_replay_returns_the_same_intent(gateway, stripe_server):
    # localstripe ignores Idempotency-Key; tests/support/fakestripe.py replays like real Stripe.
    replays = stripe_server.idempotency.replays
    first = create(gateway, key="same")
    second = create(gateway, key="same")
    assert first.id == second.id and len(stripe_server.intents()) == 1
    assert stripe_server.idempotency.replays == replays + 1
    with pytest.raises(PaymentError) as err:
        create(gateway, key="same", amount=999)
    assert err.value.kind == "idempotency"
    assert create(gateway, key="other").id != first.id


def test_declined_card_leaves_an_error_message(gateway, stripe_server):
    intent = create(gateway)
    assert stripe_server.pay(intent.id, card="4000000000000002") == "requires_payment_method"
    assert "declined" in gateway.retrieve(intent.id).last_error


def test_list_since_finds_our_intents(gateway, stripe_server):
    ids = {create(gateway, key=f"k{i}").id for i in range(3)}
    assert ids <= {i.id for i in gateway.list_since(0, limit=2)}


def test_errors_become_payment_errors(stripe_server):
    with pytest.raises(PaymentError) as err:
        Gateway("sk_test_x", stripe_server.url, retries=0).retrieve("pi_doesnotexist")
    assert err.value.kind == "not_found"
    with pytest.raises(PaymentError) as err:
        Gateway("sk_test_x", "http://127.0.0.1:9", timeout=1, retries=0).retrieve("pi_x")
    assert err.value.retryable and "briefly unavailable" in err.value.message


def test_only_the_gateway_imports_stripe():
    from pathlib import Path
    package = Path(__file__).resolve().parent.parent / "kiosk"
    importers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                       if any(line.strip().startswith(("import stripe", "from stripe"))
                              for line in p.read_text().splitlines()))
    assert importers == ["payments/gateway.py"]
