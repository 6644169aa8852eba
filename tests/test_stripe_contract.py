"""The fake refuses what Stripe refuses at the pinned API version (tests/support/stripe_contract.py), sent through
stripe-python as the kiosk sends it, and answers only with fields that version defines."""
import pytest
import requests
import stripe

from tests.support import stripe_contract as contract

ADDRESS = {"line1": "1 Market Street", "city": "Springfield", "postal_code": "12345", "state": "IL", "country": "US"}


@pytest.fixture
def fake(stripe_server):
    return stripe_server


@pytest.fixture
def client(fake):
    return fake.client()


def refused(fake, call, kind=stripe.InvalidRequestError):
    """The error a call raises, and the one contract violation the fake recorded for it."""
    with pytest.raises(kind) as caught:
        call()
    violations = fake.expect_violations()
    assert len(violations) == 1, violations
    return caught.value, violations[0]


def test_the_table_is_read_from_the_installed_sdk():
    assert (contract.API_VERSION, contract.SDK_VERSION) == (stripe._api_version._ApiVersion.CURRENT, stripe.VERSION)
    assert 400 < len(contract.OPERATIONS) < 2000
    assert contract.BUILD_SECONDS < 2
    create = contract.operation("POST", "/v1/payment_intents")
    fields, required = contract._fields(create.params)
    assert create.service == "PaymentIntentService.create" and required == {"amount", "currency"}
    assert "allowed_payment_method_types" in fields and "payment_method_types" not in fields
    assert "card_present" in str(fields["allowed_payment_method_types"])
    # The removed-parameter table names operations the SDK has, none of which defines the parameter any more.
    for method, path, param in contract.REMOVED:
        op = next(op for op in contract.OPERATIONS if (op.method, op.path) == (method, path))
        assert param not in contract._fields(op.params)[0]
    # The most literal path wins: confirm and search are not "retrieve/update an intent".
    assert contract.operation("POST", "/v1/payment_intents/pi_1/confirm").service == "PaymentIntentService.confirm"
    assert contract.operation("GET", "/v1/payment_intents/search").service == "PaymentIntentService.search"
    assert contract.operation("POST", "/v1/test_helpers/terminal/readers/tmr_1/present_payment_method").service == \
        "ReaderService.present_payment_method"


def test_every_operation_resolves():
    for op in contract.OPERATIONS:
        if op.params is not None:
            contract._fields(op.params)
        assert op.result is not None


def test_payment_method_types_is_refused_with_stripes_code(fake, client):
    for call in (lambda: client.v1.payment_intents.create({"amount": 100, "currency": "usd",
                                                           "payment_method_types": ["card"]}),
                 lambda: client.v1.payment_intents.update("pi_123", {"payment_method_types": ["card"]}),
                 lambda: client.v1.payment_intents.confirm("pi_123", {"payment_method_types": ["card"]})):
        error, violation = refused(fake, call)
        assert (error.http_status, error.code, error.param) == (400, "payment_method_types_no_longer_supported",
                                                                 "payment_method_types")
        assert (violation.code, violation.param) == (error.code, error.param)
    assert fake.intents() == []


@pytest.mark.parametrize("params, code, param, message", [
    ({"amount": 100, "currency": "usd", "colour": "red"}, "parameter_unknown", "colour",
     "Received unknown parameter: colour"),
    ({"amount": 100, "currency": "usd", "metadata": {"a": "b"}, "shipping": {"name": "A", "address": {"x": "1"}}},
     "parameter_unknown", "shipping[address][x]", "Received unknown parameter: shipping[address][x]"),
    ({"amount": 100, "currency": "usd", "capture_method": "sometimes"}, None, "capture_method",
     "Invalid capture_method: must be one of automatic, automatic_async, or manual"),
    ({"amount": 100, "currency": "usd", "allowed_payment_method_types": ["cash"]}, None,
     "allowed_payment_method_types[0]", None),
    ({"amount": 100}, "parameter_missing", "currency", "Missing required param: currency."),
    ({"amount": "a hundred", "currency": "usd"}, "parameter_invalid_integer", "amount", "Invalid integer: a hundred"),
    ({"amount": 100, "currency": "usd", "confirm": "perhaps"}, None, "confirm", "Invalid boolean: perhaps"),
    ({"amount": 100, "currency": "usd", "receipt_email": ""}, "parameter_invalid_empty", "receipt_email", None),
    ({"amount": 100, "currency": "usd", "expand": ["currency"]}, None, "expand[0]",
     "This property cannot be expanded (currency)."),
    ({"amount": 100, "currency": "usd", "expand": ["latest_charge.nothing"]}, None, "expand[0]",
     "This property cannot be expanded (latest_charge.nothing)."),
])
def test_create_intent_refusals(fake, client, params, code, param, message):
    error, violation = refused(fake, lambda: client.v1.payment_intents.create(params))
    assert (error.http_status, error.code, error.param) == (400, code, param)
    assert message is None or error.user_message == message
    assert (violation.method, violation.path, violation.param) == ("POST", "/v1/payment_intents", param)
    assert fake.intents() == []


def test_unknown_route_is_404_like_stripe(fake):
    reply = requests.get(f"{fake.url}/v1/payment_intentz", headers={"Authorization": f"Bearer {fake.sk}"}, timeout=10)
    assert reply.status_code == 404
    assert reply.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/payment_intentz)")
    assert [(v.method, v.path) for v in fake.expect_violations()] == [("GET", "/v1/payment_intentz")]


def test_list_refusals(fake, client):
    error, _ = refused(fake, lambda: client.v1.payment_intents.list({"created": {"gte": "yesterday"}}))
    assert (error.code, error.param) == ("parameter_invalid_integer", "created[gte]")
    error, _ = refused(fake, lambda: client.v1.payment_intents.list({"expand": ["latest_charge"]}))
    assert error.param == "expand[0]"  # a list expands data.<field>


def test_refused_requests_keep_no_idempotent_result(fake, client):
    bad = {"amount": 100, "currency": "usd", "payment_method_types": ["card"]}
    refused(fake, lambda: client.v1.payment_intents.create(bad, {"idempotency_key": "k1"}))
    assert fake.idempotency.responses == {}


def test_compliant_calls_pass(fake, client):
    card = client.v1.payment_intents.create({"amount": 500, "currency": "usd",
                                             "allowed_payment_method_types": ["card"], "capture_method": "automatic",
                                             "metadata": {"order_ref": "BK-1"}, "description": "order"})
    assert card.payment_method_types == ["card"] and card.allowed_payment_method_types == ["card"]
    in_person = client.v1.payment_intents.create({"amount": 700, "currency": "usd",
                                                  "allowed_payment_method_types": ["card_present"]})
    assert in_person.payment_method_types == ["card_present"]
    default = client.v1.payment_intents.create({"amount": 900, "currency": "usd"})
    assert default.payment_method_types == ["card"]
    assert fake.pay(card.id) == "succeeded"
    paid = client.v1.payment_intents.retrieve(card.id, {"expand": ["latest_charge"]})
    assert paid.latest_charge.amount == 500
    listed = client.v1.payment_intents.list({"created": {"gte": paid.created - 5}, "limit": 10,
                                             "expand": ["data.latest_charge"]})
    assert card.id in [intent.id for intent in listed.data]
    refund = client.v1.refunds.create({"payment_intent": card.id, "amount": 200})
    assert [r.id for r in client.v1.refunds.list({"payment_intent": card.id})] == [refund.id]
    reader = fake.simulated_reader()
    assert client.v1.terminal.locations.list({"limit": 3}).data
    client.v1.terminal.readers.process_payment_intent(reader, {"payment_intent": in_person.id})
    client.v1.terminal.readers.cancel_action(reader)
    client.v1.terminal.readers.process_payment_intent(reader, {"payment_intent": in_person.id})
    assert fake.tap(reader).action.status == "succeeded"
    assert client.v1.terminal.readers.retrieve(reader, {"expand": ["action.process_payment_intent.payment_intent",
                                                                  "location"]}).location.address.country == "US"
    assert fake.violations == []


def test_answers_carry_only_defined_fields(fake, client):
    intent = client.v1.payment_intents.create({"amount": 500, "currency": "usd"})
    fake.pay(intent.id)
    refund = client.v1.refunds.create({"payment_intent": intent.id})
    headers = {"Authorization": f"Bearer {fake.sk}"}
    raw = requests.get(f"{fake.url}/v1/payment_intents/{intent.id}?expand[]=latest_charge", headers=headers,
                       timeout=10).json()
    assert "invoice" not in raw and "charges" not in raw and "invoice" not in raw["latest_charge"]
    assert raw["payment_method_types"] == ["card"]
    raw_refund = requests.get(f"{fake.url}/v1/refunds/{refund.id}", headers=headers, timeout=10).json()
    assert "date" not in raw_refund and raw_refund["payment_intent"] == intent.id
    assert "total_count" not in requests.get(f"{fake.url}/v1/refunds", headers=headers, timeout=10).json()
    assert fake.dropped["payment_intent.invoice"] and fake.dropped["refund.date"]


def test_decode_reads_brackets_like_stripe():
    assert contract.decode([("a[b][c]", "1"), ("l[]", "x"), ("l[]", "y"), ("m[0][k]", "v"), ("e", "")]) == \
        {"a": {"b": {"c": "1"}}, "l": {"0": "x", "1": "y"}, "m": {"0": {"k": "v"}}, "e": ""}
