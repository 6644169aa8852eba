"""The fake refuses what Stripe refuses at the pinned API version (tests/support/stripe_contract.py), sent through
stripe-python as the kiosk sends it, and answers only with fields that version defines."""
import pytest
import requests
import stripe

from tests.support import stripe_contract as contract

ADDRESS = {"line1": "1 Market Street", "city": "Springfield", "postal_code": "12345", "state": "IL", "country": "US"}


def refused(stripe_server, call, kind=stripe.InvalidRequestError):
    """The error a call raises, and the one contract violation the fake recorded for it."""
    with pytest.raises(kind) as caught:
        call()
    violations = stripe_server.expect_violations()
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


def test_payment_method_types_is_refused_with_stripes_code(stripe_server, stripe_client):
    for call in (lambda: stripe_client.v1.payment_intents.create({"amount": 100, "currency": "usd",
                                                           "payment_method_types": ["card"]}),
                 lambda: stripe_client.v1.payment_intents.update("pi_123", {"payment_method_types": ["card"]}),
                 lambda: stripe_client.v1.payment_intents.confirm("pi_123", {"payment_method_types": ["card"]})):
        error, violation = refused(stripe_server, call)
        assert (error.http_status, error.code, error.param) == (400, "payment_method_types_no_longer_supported",
                                                                 "payment_method_types")
        assert (violation.code, violation.param) == (error.code, error.param)
    assert stripe_server.intents() == []


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
def test_create_intent_refusals(stripe_server, stripe_client, params, code, param, message):
    error, violation = refused(stripe_server, lambda: stripe_client.v1.payment_intents.create(params))
    assert (error.http_status, error.code, error.param) == (400, code, param)
    assert message is None or error.user_message == message
    assert (violation.method, violation.path, violation.param) == ("POST", "/v1/payment_intents", param)
    assert stripe_server.intents() == []


def test_unknown_route_is_404_like_stripe(stripe_server):
    reply = requests.get(f"{stripe_server.url}/v1/payment_intentz",
                         headers={"Authorization": f"Bearer {stripe_server.sk}"}, timeout=10)
    assert reply.status_code == 404
    assert reply.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/payment_intentz)")
    assert [(v.method, v.path) for v in stripe_server.expect_violations()] == [("GET", "/v1/payment_intentz")]


def test_list_refusals(stripe_server, stripe_client):
    error, _ = refused(stripe_server, lambda: stripe_client.v1.payment_intents.list({"created": {"gte": "yesterday"}}))
    assert (error.code, error.param) == ("parameter_invalid_integer", "created[gte]")
    error, _ = refused(stripe_server, lambda: stripe_client.v1.payment_intents.list({"expand": ["latest_charge"]}))
    assert error.param == "expand[0]"  # a list expands data.<field>


def test_refused_requests_keep_no_idempotent_result(stripe_server, stripe_client):
    bad = {"amount": 100, "currency": "usd", "payment_method_types": ["card"]}
    refused(stripe_server, lambda: stripe_client.v1.payment_intents.create(bad, {"idempotency_key": "k1"}))
    assert stripe_server.idempotency.responses == {}


def test_compliant_calls_pass(stripe_server, stripe_client):
    card = stripe_client.v1.payment_intents.create({"amount": 500, "currency": "usd",
                                             "allowed_payment_method_types": ["card"], "capture_method": "automatic",
                                             "metadata": {"order_ref": "BK-1"}, "description": "order"})
    assert card.payment_method_types == ["card"] and card.allowed_payment_method_types == ["card"]
    in_person = stripe_client.v1.payment_intents.create({"amount": 700, "currency": "usd",
                                                  "allowed_payment_method_types": ["card_present"]})
    assert in_person.payment_method_types == ["card_present"]
    default = stripe_client.v1.payment_intents.create({"amount": 900, "currency": "usd"})
    assert default.payment_method_types == ["card"]
    assert stripe_server.pay(card.id) == "succeeded"
    paid = stripe_client.v1.payment_intents.retrieve(card.id, {"expand": ["latest_charge"]})
    assert paid.latest_charge.amount == 500
    listed = stripe_client.v1.payment_intents.list({"created": {"gte": paid.created - 5}, "limit": 10,
                                             "expand": ["data.latest_charge"]})
    assert card.id in [intent.id for intent in listed.data]
    refund = stripe_client.v1.refunds.create({"payment_intent": card.id, "amount": 200})
    assert [r.id for r in stripe_client.v1.refunds.list({"payment_intent": card.id})] == [refund.id]
    reader = stripe_server.simulated_reader()
    assert stripe_client.v1.terminal.locations.list({"limit": 3}).data
    stripe_client.v1.terminal.readers.process_payment_intent(reader, {"payment_intent": in_person.id})
    stripe_client.v1.terminal.readers.cancel_action(reader)
    stripe_client.v1.terminal.readers.process_payment_intent(reader, {"payment_intent": in_person.id})
    assert stripe_server.tap(reader).action.status == "succeeded"
    expand = ["action.process_payment_intent.payment_intent", "location"]
    assert stripe_client.v1.terminal.readers.retrieve(reader, {"expand": expand}).location.address.country == "US"
    assert stripe_server.violations == []


def test_answers_carry_only_defined_fields(stripe_server, stripe_client):
    intent = stripe_client.v1.payment_intents.create({"amount": 500, "currency": "usd"})
    stripe_server.pay(intent.id)
    refund = stripe_client.v1.refunds.create({"payment_intent": intent.id})
    headers = {"Authorization": f"Bearer {stripe_server.sk}"}
    raw = requests.get(f"{stripe_server.url}/v1/payment_intents/{intent.id}?expand[]=latest_charge", headers=headers,
                       timeout=10).json()
    assert "invoice" not in raw and "charges" not in raw and "invoice" not in raw["latest_charge"]
    assert raw["payment_method_types"] == ["card"]
    raw_refund = requests.get(f"{stripe_server.url}/v1/refunds/{refund.id}", headers=headers, timeout=10).json()
    assert "date" not in raw_refund and raw_refund["payment_intent"] == intent.id
    assert "total_count" not in requests.get(f"{stripe_server.url}/v1/refunds", headers=headers, timeout=10).json()
    assert stripe_server.dropped["payment_intent.invoice"] and stripe_server.dropped["refund.date"]


def test_decode_reads_brackets_like_stripe():
    assert contract.decode([("a[b][c]", "1"), ("l[]", "x"), ("l[]", "y"), ("m[0][k]", "v"), ("e", "")]) == \
        {"a": {"b": {"c": "1"}}, "l": {"0": "x", "1": "y"}, "m": {"0": {"k": "v"}}, "e": ""}
